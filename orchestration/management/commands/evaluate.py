import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orchestration.learning import evaluation
from orchestration.models import PolicyVersion
from orchestration.services.learning import learning_settings
from orchestration.services.replay import AgentMemo
from orchestration.services.workflows import support_desk_version


class Command(BaseCommand):
    help = (
        "Score the agents as they are (the active versions) on the evaluation library, and a "
        "candidate version beside them with the gate's verdict. Exits 1 if the candidate "
        "fails the gate. Writes nothing."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--candidate", type=int, help="id of a version to score beside")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: object, **options: Any) -> None:
        candidate = None
        if options["candidate"] is not None:
            candidate = PolicyVersion.objects.defer("artifact").filter(pk=options["candidate"])
            candidate = candidate.first()
            if candidate is None:
                raise CommandError(f"No version has id {options['candidate']}.")
        workflow = support_desk_version()
        library = evaluation.scenario_library()
        memo = AgentMemo()
        active = evaluation.score(evaluation.play(library, workflow, {}, memo))
        report: dict[str, Any] = {"active": active}
        verdict = None
        if candidate is not None:
            scores = evaluation.score(
                evaluation.play(library, workflow, {candidate.agent: candidate}, memo)
            )
            allowed = 1 - learning_settings().target_precision
            verdict = evaluation.gate(scores, active, allowed_wrong=allowed)
            report["candidate"] = {
                "agent": candidate.agent,
                "version": candidate.version,
                "scores": scores,
                "verdict": verdict.as_dict(),
            }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._table(active, report.get("candidate"), verdict)
        if verdict is not None and not verdict.passed:
            raise SystemExit(1)

    def _table(
        self,
        active: dict[str, Any],
        candidate: dict[str, Any] | None,
        verdict: evaluation.Verdict | None,
    ) -> None:
        self.stdout.write(
            f"{active['scenarios']} scenarios: {active['test_tickets']} held-out test tickets, "
            f"{active['decided_tickets']} decided tickets held out from learning"
        )
        title = f"{candidate['agent']} v{candidate['version']}" if candidate else ""
        self.stdout.write(f"{'metric':<28}{'active':>10}{title:>18}  gate")
        for name in evaluation.REPORTED:
            now = _show(active.get(name))
            new = _show(candidate["scores"].get(name)) if candidate else ""
            mark = ""
            if verdict is not None and name in verdict.checks:
                mark = "ok" if verdict.checks[name]["ok"] else "WORSE"
            self.stdout.write(f"{name:<28}{now:>10}{new:>18}  {mark}")
        if verdict is not None:
            self.stdout.write(
                "passes the gate"
                if verdict.passed
                else "fails the gate: " + ", ".join(verdict.failures)
            )


def _show(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"
