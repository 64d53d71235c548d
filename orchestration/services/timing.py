"""A step's soft time limit, enforced by the worker process itself (any pool, solo included)."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


class StepTimedOut(Exception):
    """The step ran past its soft time limit; worth another try, like a timeout."""

    kind = "transient"


@contextmanager
def soft_time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with StepTimedOut once it has run ``seconds``.

    A database query is never cut in half (that would leave the connection unusable): a
    limit that passes during one takes effect as soon as the query returns. Only a process's
    main thread receives signals; elsewhere (the embedded default runs steps in the web
    server's threads) the soft limit is not enforced, and the hard limit, the step's lease,
    still is."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return
    message = f"the step ran past its soft time limit of {seconds:g} s"
    in_query = False
    expired = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal expired
        expired = True
        if not in_query:
            raise StepTimedOut(message)

    def finish_queries_first(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        nonlocal in_query
        in_query = True
        try:
            result = execute(sql, params, many, context)
        finally:
            in_query = False
        if expired:
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
