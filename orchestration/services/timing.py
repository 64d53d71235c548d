"""A step's soft time limit, enforced by the worker process itself (any pool, solo included)."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


class StepTimedOut(Exception):
    """The step ran past its soft time limit; worth another try, like a timeout."""

    kind = "transient"


# How soon an interrupt that could not be delivered safely is tried again.
RETRY_SECONDS = 0.05


def _busy(outer_depth: int) -> bool:
    """Whether the step is inside a transaction it opened (its commit is still to come) or
    the connection is in the middle of a command: no moment to raise."""
    if len(connection.atomic_blocks) > outer_depth:
        return True
    info = getattr(connection.connection, "info", None)  # psycopg; SQLite has none
    return info is not None and info.transaction_status == psycopg.pq.TransactionStatus.ACTIVE


@contextmanager
def soft_time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with StepTimedOut once it has run ``seconds``.

    Neither a database command nor a transaction the step opened is cut in half (that would
    leave the connection unusable or the commit's outcome unknown): a limit that passes
    during one takes effect as soon as it is over. Only a process's
    main thread receives signals; elsewhere (the embedded default runs steps in the web
    server's threads) the soft limit is not enforced, and the hard limit, the step's lease,
    still is."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return
    message = f"the step ran past its soft time limit of {seconds:g} s"
    outer_depth = len(connection.atomic_blocks)  # transactions the caller already had open
    in_query = False
    expired = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal expired
        expired = True
        if in_query or _busy(outer_depth):
            # Not now: a commit or query cut in half leaves the connection unusable. Ask
            # again shortly; a query that ends meanwhile raises on its way out.
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
            return
        raise StepTimedOut(message)

    def finish_queries_first(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal in_query
        in_query = True
        try:
            result = execute(sql, params, many, context)
        finally:
            in_query = False
        if expired and not _busy(outer_depth):
            raise StepTimedOut(message)
        return result

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with connection.execute_wrapper(finish_queries_first):
            yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
