from django.core.management.base import BaseCommand, CommandError

from orchestration.services.audit import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit trail's hash chain and report the first broken event."

    def handle(self, *args: object, **options: object) -> None:
        report = verify_chain()
        if not report.intact:
            raise CommandError(
                f"audit trail broken at event #{report.first_bad_sequence}: {report.problem}"
            )
        self.stdout.write(f"audit trail intact: {report.events} events")
