"""Engine benchmark: overhead per step against a bare Celery chain and LangGraph, pause and
resume latency against LangGraph's interrupt(), and support-desk throughput with the median
time each agent takes per ticket.

    make bench          # or: .venv/bin/python -m tests.bench.engine_bench --rounds 5
    make bench BENCH_ARGS="--throughput-only"   # only the support desk, 1 and 2 workers

Needs PostgreSQL and Redis on loopback (BENCH_DATABASE_URL, BENCH_REDIS_URL override) and the
bench extra (`pip install -e '.[bench]'`: langgraph and its PostgreSQL checkpointer). It
creates and migrates its own database, starts its own worker processes, prints a table of
medians over the rounds and writes them to var/bench-engine.json. Every figure is measured in
this one run on this machine: compare ratios, not absolute times across machines."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/switchboard_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.update(
    DATABASE_URL=DATABASE_URL,
    REDIS_URL=REDIS_URL,
    SECRET_KEY="bench-only",
    DJANGO_SETTINGS_MODULE="console.settings",
    CELERY_TASK_LOG_LEVEL="WARNING",
    LOG_LEVEL="WARNING",
)
sys.path.insert(0, str(ROOT))

NOOP5 = {
    "name": "bench_noop5",
    "start": "n1",
    "nodes": [
        {"name": f"n{i}", "kind": "agent", "agent": "noop", "edges": [{"to": f"n{i + 1}"}]}
        for i in range(1, 5)
    ]
    + [{"name": "n5", "kind": "agent", "agent": "noop", "edges": [{"to": "end"}]}],
}
PAUSE = {
    "name": "bench_pause",
    "start": "before",
    "nodes": [
        {"name": "before", "kind": "agent", "agent": "noop", "edges": [{"to": "ask"}]},
        {
            "name": "ask",
            "kind": "human",
            "edges": [
                {"to": "after", "when": {"approved": True}},
                {"to": "end", "when": {"approved": False}},
            ],
        },
        {"name": "after", "kind": "agent", "agent": "noop", "edges": [{"to": "end"}]},
    ],
}


def prepare_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True, env=os.environ
    )


def start_workers(count: int) -> list[subprocess.Popen]:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.bench.bench_app",
                "worker",
                "--pool",
                "solo",
                "--hostname",
                f"bench{i}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=os.environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    time.sleep(4)  # let them connect and import
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=20)


def wait_for(predicate, timeout: float = 60.0, pause: float = 0.01):
    """Poll until ``predicate`` holds. The times themselves are not taken by polling: each
    measured system stamps its own end (a run's finished_at, a task's created_at, the last
    Celery task's clock reading), so the poll only has to notice that it has ended, and can
    do so seldom enough not to crowd the worker off one of the machine's two cores."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    raise TimeoutError("benchmark condition not reached")


def bench_engine_steps(runs: int) -> float:
    """Milliseconds per step of the engine, a 5-node no-op workflow run by one worker."""
    from orchestration.models import Run, Ticket
    from orchestration.services.runs import start_run
    from orchestration.services.workflows import ensure_workflow_version

    workflow = ensure_workflow_version(definition=NOOP5, config={})
    ticket = Ticket.objects.create(subject="bench", body="bench", customer_email="b@example.com")
    samples = []
    for _ in range(runs):
        started = time.time()
        run = start_run(ticket=ticket, workflow=workflow)
        finished = wait_for(
            lambda run=run: (
                Run.objects.filter(pk=run.pk, status="succeeded")
                .values_list("finished_at", flat=True)
                .first()
            )
        )
        samples.append((finished.timestamp() - started) * 1000 / 5)
    return statistics.median(samples)


def bench_celery_chain(runs: int) -> float:
    """Milliseconds per task of a bare Celery chain of 5 trivial tasks, one worker."""
    import redis
    from celery import chain

    from tests.bench.bench_app import done_task, noop_task

    client = redis.Redis.from_url(REDIS_URL)
    samples = []
    for _ in range(runs):
        key = f"bench:{uuid.uuid4()}"
        started = time.time()
        chain(noop_task.s(0), noop_task.s(), noop_task.s(), noop_task.s(), done_task.s(key)).delay()
        finished = float(wait_for(lambda key=key: client.get(key)))
        samples.append((finished - started) * 1000 / 5)
    return statistics.median(samples)


def _langgraph(checkpointer):
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    class State(TypedDict):
        n: int

    def noop(state: State) -> dict:
        return {}

    def ask(state: State) -> dict:
        interrupt("approve?")
        return {}

    five = StateGraph(State)
    for i in range(1, 6):
        five.add_node(f"n{i}", noop)
    five.add_edge(START, "n1")
    for i in range(1, 5):
        five.add_edge(f"n{i}", f"n{i + 1}")
    five.add_edge("n5", END)

    pause = StateGraph(State)
    pause.add_node("before", noop)
    pause.add_node("ask", ask)
    pause.add_node("after", noop)
    pause.add_edge(START, "before")
    pause.add_edge("before", "ask")
    pause.add_edge("ask", "after")
    pause.add_edge("after", END)
    return five.compile(checkpointer=checkpointer), pause.compile(checkpointer=checkpointer)


def bench_langgraph(runs: int, durability: str) -> tuple[float, float, float]:
    """LangGraph with its PostgreSQL checkpointer: ms per node of the 5-node graph, and the
    pause (to the interrupt) and resume (Command(resume=...) to the end) latencies.

    ``durability`` "sync" writes each checkpoint before the next node starts, the guarantee
    Switchboard gives (a step is committed before the next one runs); LangGraph's default,
    "async", writes it while the next node runs. Both are measured."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.types import Command

    with PostgresSaver.from_conn_string(DATABASE_URL) as checkpointer:
        checkpointer.setup()
        five, pause = _langgraph(checkpointer)
        steps, pauses, resumes = [], [], []
        for _ in range(runs):
            config = {"configurable": {"thread_id": str(uuid.uuid4())}}
            started = time.perf_counter()
            five.invoke({"n": 0}, config, durability=durability)
            steps.append((time.perf_counter() - started) * 1000 / 5)
            config = {"configurable": {"thread_id": str(uuid.uuid4())}}
            started = time.perf_counter()
            result = pause.invoke({"n": 0}, config, durability=durability)
            assert "__interrupt__" in result
            pauses.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            pause.invoke(Command(resume="ok"), config, durability=durability)
            resumes.append((time.perf_counter() - started) * 1000)
    return statistics.median(steps), statistics.median(pauses), statistics.median(resumes)


def bench_engine_pause(runs: int) -> tuple[float, float]:
    """Switchboard: ms from start to the run waiting for a person, and from the person's
    decision to the run finished, with one worker."""
    from django.contrib.auth.models import User

    from orchestration.models import HumanTask, Run, Ticket
    from orchestration.services.decisions import decide_task
    from orchestration.services.runs import start_run
    from orchestration.services.workflows import ensure_workflow_version

    workflow = ensure_workflow_version(definition=PAUSE, config={})
    ticket = Ticket.objects.create(subject="bench", body="bench", customer_email="b@example.com")
    person, _ = User.objects.get_or_create(username="bench-operator")
    pauses, resumes = [], []
    for _ in range(runs):
        started = time.time()
        run = start_run(ticket=ticket, workflow=workflow)
        task_id, opened = wait_for(
            lambda run=run: (
                HumanTask.objects.filter(run=run, status="open")
                .values_list("pk", "created_at")
                .first()
            )
        )
        pauses.append((opened.timestamp() - started) * 1000)
        started = time.time()
        decide_task(task_id=task_id, actor=person, action="approve")
        finished = wait_for(
            lambda run=run: (
                Run.objects.filter(pk=run.pk, status="succeeded")
                .values_list("finished_at", flat=True)
                .first()
            )
        )
        resumes.append((finished.timestamp() - started) * 1000)
    return statistics.median(pauses), statistics.median(resumes)


def bench_throughput(tickets: int) -> tuple[float, dict[str, float]]:
    """Support-desk tickets per second through A-D with the local models, and the median
    milliseconds each agent took per ticket (its step's span)."""
    from orchestration import dataset
    from orchestration.engine.states import RunStatus
    from orchestration.models import Run
    from orchestration.services.tickets import NewTicket, ingest_tickets

    _, test = dataset.split()
    batch = [
        NewTicket(
            subject=test[n % len(test)].subject,
            body=test[n % len(test)].body,
            customer_email=test[n % len(test)].customer_email,
        )
        for n in range(tickets)
    ]
    started = time.perf_counter()
    stored = ingest_tickets(tickets=batch, actor_label="bench")
    ids = [t.pk for t in stored]
    settled = [RunStatus.SUCCEEDED, RunStatus.WAITING_HUMAN, RunStatus.FAILED]
    wait_for(
        lambda: Run.objects.filter(ticket_id__in=ids, status__in=settled).count() == tickets,
        timeout=600,
        pause=0.05,
    )
    per_second = tickets / (time.perf_counter() - started)
    from orchestration.models import Span

    durations: dict[str, list[float]] = {}
    for name, ms in Span.objects.filter(run__ticket_id__in=ids, kind="agent").values_list(
        "name", "duration_ms"
    ):
        durations.setdefault(name.removeprefix("invoke_agent "), []).append(ms)
    return per_second, {a: round(statistics.median(v), 2) for a, v in sorted(durations.items())}


def ensure_support_desk() -> None:
    from orchestration import dataset
    from orchestration.models import PolicyVersion
    from orchestration.services.knowledge import load_resolved_tickets, upsert_articles
    from orchestration.services.policies import train_triage_version

    upsert_articles(rows=dataset.articles())
    load_resolved_tickets(tickets=dataset.split()[0])
    if not PolicyVersion.objects.filter(agent="triage", status="active").exists():
        train_triage_version()
    try:
        from orchestration.services.policies import train_decider_version
    except ImportError:  # a version of the code before the decider had a model
        return
    if not PolicyVersion.objects.filter(agent="decider", status="active").exists():
        train_decider_version()


def earn_everywhere() -> None:
    from orchestration.engine.autonomy import AutonomyPolicy
    from orchestration.models import AutonomyEvidence
    from orchestration.services.autonomy import reassess_category
    from orchestration.workflows.support_desk import CONFIG

    policy = AutonomyPolicy.from_config(CONFIG)
    for category in ("billing", "account_access", "bug", "how_to", "feature_request",
                     "cancellation"):  # fmt: skip
        AutonomyEvidence.objects.bulk_create(
            AutonomyEvidence(
                workflow="support_desk",
                category=category,
                source="history",
                right=True,
                score=0.9,
                ref=f"bench {i}",
            )
            for i in range(100)
        )
        reassess_category(category=category, policy=policy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=40, help="runs per round")
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument(
        "--throughput-only", action="store_true", help="only the support desk's throughput"
    )
    parser.add_argument(
        "--earned",
        action="store_true",
        help="every category a hard rule does not hold has earned autonomy, so that drafts the "
        "decider recommends go out alone (a new desk is in shadow mode: every ticket stops at "
        "a person)",
    )
    args = parser.parse_args()
    prepare_database()
    import django

    django.setup()
    ensure_support_desk()
    if args.earned:
        earn_everywhere()
    rounds = {
        k: []
        for k in (
            "engine",
            "celery",
            "pause",
            "resume",
            *(f"lg_{mode}_{m}" for mode in ("sync", "async") for m in ("step", "pause", "resume")),
        )
    }
    workers = start_workers(1)
    try:
        for _ in range(0 if args.throughput_only else args.rounds):
            rounds["engine"].append(bench_engine_steps(args.runs))
            rounds["celery"].append(bench_celery_chain(args.runs))
            pause, resume = bench_engine_pause(args.runs)
            rounds["pause"].append(pause)
            rounds["resume"].append(resume)
            for mode in ("sync", "async"):
                step, lg_pause, lg_resume = bench_langgraph(args.runs, mode)
                rounds[f"lg_{mode}_step"].append(step)
                rounds[f"lg_{mode}_pause"].append(lg_pause)
                rounds[f"lg_{mode}_resume"].append(lg_resume)
        one_worker, per_agent = bench_throughput(args.tickets)
    finally:
        stop_workers(workers)
    workers = start_workers(2)
    try:
        two_workers, _ = bench_throughput(args.tickets)
    finally:
        stop_workers(workers)
    throughput = {
        "tickets_per_second_1_worker": round(one_worker, 1),
        "tickets_per_second_2_workers": round(two_workers, 1),
        "median_ms_per_agent": per_agent,
        "tickets": args.tickets,
        "earned": args.earned,
    }
    if args.throughput_only:
        print(json.dumps(throughput, indent=2))
        (ROOT / "var").mkdir(exist_ok=True)
        (ROOT / "var" / "bench-throughput.json").write_text(json.dumps(throughput, indent=2))
        return
    median = {k: round(statistics.median(v), 3) for k, v in rounds.items()}
    report = {
        **median,
        "engine_vs_celery": round(median["engine"] / median["celery"], 2),
        "engine_vs_langgraph_sync_step": round(median["engine"] / median["lg_sync_step"], 2),
        "engine_vs_langgraph_async_step": round(median["engine"] / median["lg_async_step"], 2),
        "pause_plus_resume_ms": round(median["pause"] + median["resume"], 2),
        "langgraph_sync_pause_plus_resume_ms": round(
            median["lg_sync_pause"] + median["lg_sync_resume"], 2
        ),
        "langgraph_async_pause_plus_resume_ms": round(
            median["lg_async_pause"] + median["lg_async_resume"], 2
        ),
        **throughput,
        "rounds": args.rounds,
        "runs_per_round": args.runs,
    }
    print(json.dumps(report, indent=2))
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench-engine.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
