"""The Celery app for benchmark workers: the project's app plus a no-op agent and the trivial
tasks of a bare Celery chain. Start with `celery -A tests.bench.bench_app worker`."""

import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402

from console.celery import app  # noqa: E402
from orchestration.agents import registry  # noqa: E402
from orchestration.agents.base import AgentContext, AgentResult  # noqa: E402

_redis = redis.Redis.from_url(settings.REDIS_URL)


def noop_agent(ctx: AgentContext) -> AgentResult:
    return AgentResult(output={})


registry.AGENTS["noop"] = noop_agent


@app.task(name="bench.noop")
def noop_task(value: int = 0) -> int:
    return value


@app.task(name="bench.done")
def done_task(value: int, key: str) -> None:
    _redis.set(key, repr(time.time()))  # the chain's end, stamped by the worker itself


__all__ = ["app"]


@app.task(name="bench.stamp", acks_late=True)
def stamp_task(key: str) -> None:
    _redis.set(key, repr(time.time()))
