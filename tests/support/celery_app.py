"""The Celery app the Celery tests run in real workers (not a test module).

Outside ``tests.integrations`` (whose package imports pytest): a worker starts faster.

    celery -A tests.support.celery_app worker ...

Configured from the environment the test gives the worker: ``CELERY_TEST_BROKER`` (a Redis
URL, also where tasks report), ``OS_API_KEY`` / ``CHATARMIN_OS_BASE_URL`` (the local server),
``CELERY_TEST_SPOOL`` (a usage spool file, optional), ``CELERY_TEST_FLUSH_INTERVAL`` and
``CELERY_TEST_LEDGER`` (a Redis URL for the quota ledger of ``gated``, optional).

Each task meters one unit of ``ai_credit`` with ``usage_key("meter")`` as its idempotency key
(``later``: through the usage buffer), may raise once after metering (``fail_once``: it is
autoretried at once), then reports ``INDEX PID CLIENT WORKER`` (its index, its process, the id
of the client it used and the worker's name) with ``RPUSH TO`` and adds its index to the set ``TO-set``.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery, Task

from chatarmin_os import CacheOptions, UsageBufferOptions
from chatarmin_os.celery import ChatarminOSCelery, FeatureRefused

BROKER = os.environ.get("CELERY_TEST_BROKER", "memory://")
LEDGER = os.environ.get("CELERY_TEST_LEDGER")

app = Celery("chatarmin_os_celery_tests", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

chatarmin = ChatarminOSCelery(
    app,
    usage_buffer=UsageBufferOptions(
        spool=os.environ.get("CELERY_TEST_SPOOL") or None,
        # Long by default: what a worker buffered is still buffered when it shuts down.
        flush_interval=float(os.environ.get("CELERY_TEST_FLUSH_INTERVAL", "60")),
        close_timeout=30,
    ),
    shutdown_timeout=30,
    # The quota ledger of require_feature in Redis (one quota for every child), when given.
    cache=CacheOptions(redis_url=LEDGER) if LEDGER else None,
)

_reports: dict[int, redis.Redis] = {}


def report(index: int, to: str, worker: str) -> None:
    """Tell the test this task is done (one Redis connection per process)."""
    connection = _reports.get(os.getpid())
    if connection is None:
        connection = _reports[os.getpid()] = redis.Redis.from_url(BROKER)
    line = f"{index} {os.getpid()} {id(chatarmin.client)} {worker}"
    with connection.pipeline(transaction=True) as both:  # the line is there once the index is
        both.rpush(to, line)
        both.sadd(f"{to}-set", index)
        both.execute()


class Flaky(Exception):
    """A task's first run fails after metering."""


def _meter(
    task: Task[Any, Any], company_id: str, index: int, fail_once: bool, later: bool, to: str
) -> None:
    track = (
        chatarmin.client.billing.track_usage_later
        if later
        else chatarmin.client.billing.track_usage
    )
    track(
        company_id=company_id,
        feature_code="ai_credit",
        quantity=1,
        idempotency_key=chatarmin.usage_key("meter"),
    )
    if fail_once and task.request.retries == 0:
        raise Flaky(index)
    report(index, to, task.request.hostname or "?")


@app.task(
    bind=True,
    autoretry_for=(Flaky,),
    retry_backoff=False,
    retry_kwargs={"countdown": 0, "max_retries": 3},
)
def meter(
    self: Task[Any, Any], company_id: str, index: int, fail_once: bool, later: bool, to: str
) -> None:
    """Meter one unit (autoretried once when ``fail_once``)."""
    _meter(self, company_id, index, fail_once, later, to)


@app.task(bind=True, acks_late=True)
def meter_late(
    self: Task[Any, Any], company_id: str, index: int, fail_once: bool, later: bool, to: str
) -> None:
    """Meter one unit, acknowledged only once done (redelivered after a lost worker)."""
    _meter(self, company_id, index, fail_once, later, to)


@app.task(
    bind=True,
    autoretry_for=(Flaky,),
    retry_backoff=False,
    retry_kwargs={"countdown": 0, "max_retries": 3},
)
def gated(
    self: Task[Any, Any], company_id: str, index: int, fail_once: bool, later: bool, to: str
) -> None:
    """One unit through ``require_feature`` (failing inside it once when ``fail_once``: the
    hold is released and the task retried); reports ``ok`` or the refusal's reason in place
    of the worker's name."""
    try:
        with chatarmin.require_feature("ai_credit", company_id=company_id):
            if fail_once and self.request.retries == 0:
                raise Flaky(index)
        outcome = "ok"
    except FeatureRefused as refused:
        outcome = refused.reason
    report(index, to, outcome)
