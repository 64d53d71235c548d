"""Live updates to open console pages, sent after the transaction that caused them commits."""

import asyncio
import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

QUEUE_GROUP = "approval-queue"


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def publish_on_commit(group: str, event: str, **fields: object) -> None:
    """Tell every page subscribed to ``group`` that ``event`` happened. Delivery is best
    effort: a page that misses it still shows the truth on its next load."""
    message = {"type": "console.event", "event": event, **fields}
    transaction.on_commit(lambda: _send(group, message))


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        # One process (the embedded default): the layer's queues live on the server's loop.
        try:
            async_to_sync(layer.group_send)(group, message)
        except Exception:
            logger.warning("live update to %s was not delivered", group, exc_info=True)
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _sender_loop())
    future.add_done_callback(lambda done: _log_failure(done, group))


def _log_failure(done: "Future[None]", group: str) -> None:
    # The database already holds the truth; a lost ping only delays a page until it reloads.
    if done.exception() is not None:
        logger.warning("live update to %s was not delivered: %r", group, done.exception())


_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on a daemon thread, sends every update to the channel
    layer over one kept Redis connection. The caller (a worker between two steps, a web
    request) only hands the send over: a fresh loop and connection per send cost ~5 ms."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():  # a forked worker needs its own
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="live-updates", daemon=True).start()
        return _loop
