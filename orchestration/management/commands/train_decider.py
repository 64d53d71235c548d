from django.core.management.base import BaseCommand

from orchestration.services.policies import train_decider_version


class Command(BaseCommand):
    help = (
        "Train the decider's starting estimate on the shipped training split's cross-fitted "
        "replay and make it active."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--candidate", action="store_true", help="store it without activating")

    def handle(self, *args: object, **options: object) -> None:
        version = train_decider_version(activate=not options["candidate"])
        state = "candidate" if options["candidate"] else "active"
        metrics = version.metrics
        self.stdout.write(
            f"decider v{version.version} ({state}): AUC {metrics['auc']:.3f}, Brier "
            f"{metrics['brier']:.3f} on the cross-fitted replay of {metrics['examples']} tickets"
        )
