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
            f"{active['scenarios']} scenarios: {active['test_tickets']} tickets of the shipped "
            f"test split, {active['hard_tickets']} of the harder split, "
            f"{active['decided_tickets']} decided tickets held out from learning"
        )
        scores = candidate["scores"] if candidate else None
        title = f"{candidate['agent']} v{candidate['version']}" if candidate else ""
        head = f"{'metric':<26}{'test':>9}{'hard':>9}"
        if scores:
            head += f"{title + ' test':>18}{'hard':>9}  gate"
        self.stdout.write(head)
        for name in evaluation.SPLIT_METRICS:
            line = f"{name:<26}{_show(name, active.get(name)):>9}"
            line += f"{_show(name, active.get(f'hard_{name}')):>9}"
            if scores:
                line += f"{_show(name, scores.get(name)):>18}"
                line += f"{_show(name, scores.get(f'hard_{name}')):>9}"
                line += "  " + _mark(verdict, name, f"hard_{name}")
            self.stdout.write(line)
        for split in ("", "hard_"):
            interval = active.get(f"{split}wrong_auto_send") or {}
            if interval:
                self.stdout.write(
                    f"{(split or 'test_') + 'wrong auto-sends':<26}{interval['count']} of "
                    f"{interval['of']} sent alone (95% interval {interval['low']:.1%} to "
                    f"{interval['high']:.1%})"
                )
        for name in (
            "decided_category_accuracy",
            "edit_rate",
            "instruction_recall",
            "instruction_false_positive_rate",
        ):
            line = f"{name:<26}{_show(name, active.get(name)):>9}"
            if scores:
                line += f"{'':>9}{_show(name, scores.get(name)):>18}{'':>9}  "
                line += _mark(verdict, name)
            self.stdout.write(line)
        if verdict is not None:
            self.stdout.write(
                "passes the gate"
                if verdict.passed
                else "fails the gate: " + ", ".join(verdict.failures)
            )


def _mark(verdict: evaluation.Verdict | None, *names: str) -> str:
    if verdict is None:
        return ""
    checks = [verdict.checks[n]["ok"] for n in names if n in verdict.checks]
    if not checks:
        return ""
    return "ok" if all(checks) else "WORSE"


def _show(name: str, value: Any) -> str:
    if value is None or isinstance(value, dict):
        return "–"
    if name == "hard_rule_auto_sent":
        return str(value)
    return f"{value:.1%}"
