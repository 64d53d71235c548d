"""Replay a finished run from a step as a dry run and print each new output beside the old."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestration.services.replay import ReplayError, replay_run


class Command(BaseCommand):
    help = "Replay a finished run from step N (dry run: nothing is sent or saved)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int)
        parser.add_argument("--from-step", type=int, default=1, dest="from_step")

    def handle(self, *args: object, run_id: int, from_step: int, **options: object) -> None:
        try:
            replay = replay_run(run_id=run_id, from_sequence=from_step)
        except ReplayError as problem:
            raise CommandError(str(problem)) from None
        for step in replay.steps:
            mark = "changed" if step.changed else "same"
            self.stdout.write(f"step {step.sequence} {step.node} ({step.source}): {mark}")
            if step.changed:
                self.stdout.write(f"  original: {json.dumps(step.original, sort_keys=True)}")
                self.stdout.write(f"  replayed: {json.dumps(step.replayed, sort_keys=True)}")
            for problem in step.problems:
                self.stdout.write(f"  problem: {problem}")
        self.stdout.write(
            f"{len(replay.steps)} steps replayed, {len(replay.changed)} changed; {replay.ending}."
        )
