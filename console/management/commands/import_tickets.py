"""manage.py import_tickets FILE.jsonl: one ticket per line, all or nothing."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from console.api.serializers import TicketInput
from orchestration.services.tickets import DuplicateTicket, NewTicket, ingest_tickets

MAX_ERRORS_SHOWN = 20


def _describe(errors: object, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        lines = []
        for name, value in errors.items():
            lines.extend(_describe(value, f"{prefix}{name}: "))
        return lines
    if isinstance(errors, list):
        return [f"{prefix}{e}" for e in errors]
    return [f"{prefix}{errors}"]


class Command(BaseCommand):
    help = (
        "Import tickets from a JSON-lines file and start a run for each. "
        "Nothing is stored if any line is invalid."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("file", type=Path)
        parser.add_argument("--channel", default="import")

    def handle(self, *args: object, **options: object) -> None:
        path: Path = options["file"]  # type: ignore[assignment]
        try:
            # Only "\n" ends a line: JSON allows U+2028 and the like unescaped in a string,
            # and str.splitlines() would break the line there. A leading BOM is dropped.
            raw_lines = path.read_text(encoding="utf-8-sig").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        problems: list[str] = []
        tickets: list[NewTicket] = []
        for number, line in enumerate(raw_lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not valid JSON ({exc.msg}, column {exc.colno})")
                continue
            if not isinstance(data, dict):
                problems.append(f"line {number}: must be a JSON object")
                continue
            data.setdefault("channel", options["channel"])
            serializer = TicketInput(data=data)
            if not serializer.is_valid():
                problems.extend(f"line {number}: {p}" for p in _describe(serializer.errors))
                continue
            tickets.append(serializer.to_new_ticket())
        if problems:
            shown = problems[:MAX_ERRORS_SHOWN]
            more = len(problems) - len(shown)
            raise CommandError(
                f"{path}: nothing imported; fix these and run again:\n  "
                + "\n  ".join(shown)
                + (f"\n  ... and {more} more" if more else "")
            )
        if not tickets:
            raise CommandError(f"{path}: no tickets in the file")
        try:
            stored = ingest_tickets(tickets=tickets, actor_label=f"import:{path.name}")
        except DuplicateTicket as exc:
            raise CommandError(f"{path}: nothing imported; {exc}") from exc
        self.stdout.write(f"imported {len(stored)} tickets from {path}; each has started a run")
