"""Live updates to open console pages, sent after the transaction that caused them commits."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

QUEUE_GROUP = "approval-queue"


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def publish_on_commit(group: str, event: str, **fields: object) -> None:
    """Tell every page subscribed to ``group`` that ``event`` happened. Delivery is best
    effort: a page that misses it still shows the truth on its next load."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(
                group, {"type": "console.event", "event": event, **fields}
            )
        except Exception:  # the database already holds the truth; a lost ping only delays a page
            logger.warning("live update %s to %s was not delivered", event, group, exc_info=True)

    transaction.on_commit(send)
