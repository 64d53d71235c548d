from django.core.management.base import BaseCommand

from orchestration.services.learning_cycle import run_learning_cycle


class Command(BaseCommand):
    help = "Run a learning cycle now: make candidate versions, score them, promote as set."

    def handle(self, *args: object, **options: object) -> None:
        cycle = run_learning_cycle(trigger="command")
        if cycle is None:
            self.stdout.write("A learning cycle is running already; nothing was started.")
            return
        self.stdout.write(f"learning cycle {cycle.pk}: {cycle.decisions} decisions read")
        for agent, outcome in cycle.summary.get("agents", {}).items():
            if outcome.get("candidate") is None:
                self.stdout.write(f"  {agent}: no candidate ({outcome.get('why')})")
                continue
            verdict = (
                "passed"
                if outcome.get("passed")
                else "rejected: " + ", ".join(outcome.get("failures", []))
            )
            promoted = ", promoted" if outcome.get("promoted") else ""
            self.stdout.write(f"  {agent}: candidate v{outcome['candidate']} {verdict}{promoted}")
