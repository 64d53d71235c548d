"""Gate benchmark: what ``call_tool`` itself costs per call, the tool's own time left out.

    make bench-gate     # or: .venv/bin/python -m tests.bench.gate_bench --calls 200 --rounds 5

Needs PostgreSQL on loopback (BENCH_DATABASE_URL overrides); creates and migrates its own
database. A no-op built-in tool ``bench_noop`` is registered in this process, granted to agent
"bench" with one constraint and no approval, and called through the gate with a fresh
idempotency key each time; so is ``bench_noop_write``, the same tool marked as a write that is
not idempotent. Each call is timed end to end, less the time its handler measured for itself,
for four cases: an allowed call (state read, call recorded, executed, completed and audited),
the same of the tool that is not idempotent (whose record must reach the disk before it
runs), a repeat under a key that already succeeded (its recorded result reused) and a call
denied by the constraint; on the single-statement path and on the ORM path
(ENGINE_SINGLE_STATEMENT_WRITES off). Medians and 90th percentiles are taken per round and
their medians over the rounds reported; the database round trips of one call of each kind
are counted three ways: statements through Django's cursors, statements run by
``statements.run_statement`` (which bypass Django) and, on the wire, every answered request
libpq sends (BEGIN, COMMIT and savepoints included). Prints JSON and writes
var/bench-gate.json. Other processes on the machine show up as noise: compare the rounds."""

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

# Importing the engine bench sets DATABASE_URL, REDIS_URL, SECRET_KEY and the settings module.
from tests.bench.engine_bench import ROOT, prepare_database

TOOL, WRITE_TOOL, AGENT, LIMIT = "bench_noop", "bench_noop_write", "bench", 1_000_000
PATHS = {"single_statement": True, "orm": False}
CASES = ("allowed", "allowed_not_idempotent", "replayed", "denied")
_handler_seconds = [0.0]


def _noop(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = {"ok": True}
    _handler_seconds[0] = time.perf_counter() - started
    return result


def register_tool() -> None:
    """Put ``bench_noop`` and ``bench_noop_write`` in the catalogue and grant them to the
    bench agent."""
    from django.contrib.auth.models import User

    from tools_registry.builtin import BUILTIN_TOOLS, BuiltinTool
    from tools_registry.catalog import sync_builtin_tools
    from tools_registry.grants import GrantTerms, change_grant, grant_tool
    from tools_registry.models import Grant, Tool

    schemas = dict(
        input_schema={
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 0}},
            "required": ["n"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        },
    )
    BUILTIN_TOOLS[TOOL] = BuiltinTool(
        name=TOOL,
        title="Do nothing",
        description="Answers at once; measures the gate.",
        risk="read",
        handler=_noop,
        **schemas,
    )
    BUILTIN_TOOLS[WRITE_TOOL] = BuiltinTool(
        name=WRITE_TOOL,
        title="Do nothing, once",
        description="Answers at once, as if it acted; measures the gate for a write.",
        risk="write",
        idempotent=False,
        handler=_noop,
        **schemas,
    )
    sync_builtin_tools()
    terms = GrantTerms(
        constraints=[{"path": "n", "op": "lte", "value": str(LIMIT)}],
        approval=Grant.Approval.NEVER,
        reason="gate benchmark",
    )
    for name in (TOOL, WRITE_TOOL):
        tool = Tool.objects.get(name=name)
        held = Grant.objects.filter(agent=AGENT, tool=tool, revoked_at__isnull=True).first()
        if held is None:
            grant_tool(agent=AGENT, tool_id=tool.pk, terms=terms, actor=None, actor_label="bench")
        else:  # an earlier run's grant: pin it to the definition and terms of this one
            operator, _ = User.objects.get_or_create(username="bench-operator")
            change_grant(grant_id=held.pk, terms=terms, actor=operator)


def call(case: str, key: str) -> float:
    """One call through the gate; milliseconds spent outside the tool's handler."""
    from tools_registry.gateway import ToolDenied, call_tool

    n = LIMIT + 1 if case == "denied" else 1
    _handler_seconds[0] = 0.0
    started = time.perf_counter()
    try:
        name = WRITE_TOOL if case == "allowed_not_idempotent" else TOOL
        result = call_tool(name=name, agent=AGENT, arguments={"n": n}, idempotency_key=key)
    except ToolDenied:
        result = {"denied": True}
    elapsed = time.perf_counter() - started
    expected: dict[str, Any] = {"ok": True, "replayed": case == "replayed"}
    if case == "denied":
        expected = {"denied": True}
    assert result == expected, (case, result)
    return (elapsed - _handler_seconds[0]) * 1000


def run_case(case: str, count: int, succeeded: list[str]) -> list[float]:
    """``count`` calls of ``case``; allowed calls leave their keys for the replays."""
    samples = []
    for i in range(count):
        key = succeeded[i % len(succeeded)] if case == "replayed" else f"bench:{uuid.uuid4()}"
        samples.append(call(case, key))
        if case == "allowed":
            succeeded.append(key)
    return samples


def round_trips(action: Callable[[], Any]) -> dict[str, int]:
    """Requests ``action`` makes of the database: Django cursor statements, run_statement
    calls, and every request libpq sends and waits for (its ReadyForQuery answers)."""
    from django.db import connection
    from psycopg import pq

    from orchestration.services import statements

    counts = {"django_statements": 0, "run_statement": 0}

    def counted(execute, sql, params, many, context):
        counts["django_statements"] += 1
        return execute(sql, params, many, context)

    original = statements.run_statement

    def run_statement(sql, params):
        counts["run_statement"] += 1
        return original(sql, params)

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        statements.run_statement = run_statement
        try:
            with connection.execute_wrapper(counted):
                action()
        finally:
            statements.run_statement = original
            pgconn.untrace()
        trace.seek(0)
        wire = sum(1 for line in trace if line.split("\t")[2:3] == ["ReadyForQuery"])
    return {**counts, "wire_round_trips": wire}


def percentile90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per case per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=50, help="calls per case and path")
    args = parser.parse_args()
    prepare_database()
    import django

    django.setup()
    from django.conf import settings

    register_tool()
    succeeded: list[str] = []
    for single in PATHS.values():
        settings.ENGINE_SINGLE_STATEMENT_WRITES = single
        for case in CASES:
            run_case(case, args.warmup, succeeded)
    per_round: dict[str, dict[str, list[float]]] = {
        f"{path}_{case}": {"median": [], "p90": []} for path in PATHS for case in CASES
    }
    for n in range(args.rounds):
        # Alternate which path goes first, so a burst of load elsewhere hits both alike.
        for path in list(PATHS)[:: 1 if n % 2 == 0 else -1]:
            settings.ENGINE_SINGLE_STATEMENT_WRITES = PATHS[path]
            fresh: list[str] = []
            for case in CASES:
                samples = run_case(case, args.calls, fresh)
                per_round[f"{path}_{case}"]["median"].append(statistics.median(samples))
                per_round[f"{path}_{case}"]["p90"].append(percentile90(samples))
    trips = {}
    for path, single in PATHS.items():
        settings.ENGINE_SINGLE_STATEMENT_WRITES = single
        key = f"bench:{uuid.uuid4()}"
        trips[f"{path}_allowed"] = round_trips(lambda key=key: call("allowed", key))
        trips[f"{path}_allowed_not_idempotent"] = round_trips(
            lambda: call("allowed_not_idempotent", f"bench:{uuid.uuid4()}")
        )
        trips[f"{path}_replayed"] = round_trips(lambda key=key: call("replayed", key))
        trips[f"{path}_denied"] = round_trips(lambda: call("denied", f"bench:{uuid.uuid4()}"))
    settings.ENGINE_SINGLE_STATEMENT_WRITES = True
    report: dict[str, Any] = {
        "overhead_ms": {
            name: {
                "median": round(statistics.median(v["median"]), 3),
                "p90": round(statistics.median(v["p90"]), 3),
                "round_medians": [round(m, 3) for m in v["median"]],
            }
            for name, v in per_round.items()
        },
        "round_trips": trips,
        "target_ms": 2.0,
        "within_target": {
            case: statistics.median(per_round[f"single_statement_{case}"]["median"]) < 2.0
            for case in CASES
        },
        "calls_per_case": args.calls,
        "rounds": args.rounds,
        "warmup_per_case": args.warmup,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report, indent=2))
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench-gate.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
