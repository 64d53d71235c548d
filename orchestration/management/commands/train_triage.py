from django.core.management.base import BaseCommand

from orchestration.services.policies import metrics_summary, train_triage_version


class Command(BaseCommand):
    help = "Train the triage classifier on the shipped training split and make it active."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--candidate", action="store_true", help="store it without activating")

    def handle(self, *args: object, **options: object) -> None:
        version = train_triage_version(activate=not options["candidate"])
        state = "candidate" if options["candidate"] else "active"
        self.stdout.write(
            f"triage v{version.version} ({state}): {metrics_summary(version.metrics)}"
        )
