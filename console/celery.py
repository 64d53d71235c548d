"""The Celery application.

Workers: ``celery -A console worker``; beat: ``celery -A console beat``."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("switchboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task unless
# told to reuse them; a new connection costs more than a whole step. Workers keep theirs and
# let Django retire them as it does for requests (CONN_MAX_AGE, health checks), below.
app.conf["CELERY_DB_REUSE_MAX"] = 1_000_000
app.autodiscover_tasks()


@task_prerun.connect
def _retire_broken_or_old_connections(task: Any = None, **kwargs: Any) -> None:
    """What Django does at the start of each request: drop a connection that failed (the
    database restarted) or passed CONN_MAX_AGE, so the task opens a fresh one. A connection
    that raised no error is trusted without a ping: a step that meets a dead one fails with
    OperationalError, is retried, and this drops the connection first. A task run in-process
    (eagerly) shares its caller's connection and transaction, and is left alone."""
    from django.db import connections

    if task is None or getattr(task.request, "is_eager", False):
        return
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()
        connection.health_check_done = True
