"""Celery integration: one client per worker process, usage keys that survive retries.

Install with ``pip install "chatarmin-os[celery]"``. ``import chatarmin_os`` never imports
this module.

Example::

    from celery import Celery

    from chatarmin_os.celery import ChatarminOSCelery

    app = Celery("jobs", broker="redis://localhost:6379/0")
    chatarmin = ChatarminOSCelery(app)  # ChatarminOS() from the environment, per process

    @app.task(autoretry_for=(ConnectionError,), acks_late=True)
    def summarise(company_id: str) -> None:
        ...  # the work
        chatarmin.client.billing.track_usage(
            company_id=company_id,
            feature_code="ai_credit",
            quantity=1,
            idempotency_key=chatarmin.usage_key("summary"),  # the same on every retry
        )

A task that spends a metered feature can hold the quota before the work and meter it after,
the same on every retry::

    @app.task(autoretry_for=(FeatureUnavailable,), retry_backoff=True, acks_late=True)
    def summarise(company_id: str) -> None:
        with chatarmin.require_feature("ai_credit", company_id=company_id):
            ...  # the work; an exception releases the hold, a clean exit meters it

The client is made in each worker process after the fork (``worker_process_init``, else on
first use), never shared with the parent, and flushed and closed when that process ends
(``worker_process_shutdown`` for prefork children, including those ``--max-tasks-per-child``
replaces; ``worker_shutdown`` for the solo and threads pools; the interpreter's exit
otherwise), each within ``shutdown_timeout`` seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

try:
    from celery import Celery, signals
    from celery import current_task as _current_task
except ImportError as _error:
    raise ImportError(
        'chatarmin_os.celery needs Celery: pip install "chatarmin-os[celery]"'
    ) from _error

from ._exceptions import (
    APIConnectionError,
    ChatarminOSError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
)
from ._logs import logger
from ._sync._reservation import Reservation
from ._sync.client import ChatarminOS

__all__ = [
    "USAGE_KEY_NAMESPACE",
    "ChatarminOSCelery",
    "FeatureRefused",
    "FeatureRefusedReason",
    "FeatureUnavailable",
    "NotInTaskError",
    "task_usage_key",
]

USAGE_KEY_NAMESPACE = uuid.UUID("6f1c3a52-8d4e-5b7a-9c21-4e0f7d2b8a63")
"""The UUIDv5 namespace of :func:`task_usage_key`: keys are ``uuid5(namespace, id:operation)``."""

DEFAULT_SHUTDOWN_TIMEOUT = 10.0
"""Seconds a worker process waits at its end for its buffered usage to be sent."""


class NotInTaskError(ChatarminOSError, RuntimeError):
    """``usage_key()`` was called outside a running Celery task (no task id to derive from).

    Catchable as ``RuntimeError`` too.
    """


FeatureRefusedReason = Literal[
    "not_found", "feature_not_enabled", "feature_limit_reached", "unavailable"
]
"""Why :meth:`ChatarminOSCelery.require_feature` refused: the company, org or feature is
unknown; the feature is not enabled; its limit would be passed; ChatarminOS could not be
asked (network, timeout, 429, 5xx: worth a retry)."""


class FeatureRefused(ChatarminOSError):
    """A task's :meth:`ChatarminOSCelery.require_feature` refused to run the work.

    :attr:`reason` says why; the error ChatarminOS (or the quota ledger) gave is the
    ``__cause__``. Nothing was held and nothing is metered.
    """

    def __init__(self, message: str, *, reason: FeatureRefusedReason, feature: str) -> None:
        super().__init__(message)
        self.reason: FeatureRefusedReason = reason
        """``not_found``, ``feature_not_enabled``, ``feature_limit_reached`` or ``unavailable``."""
        self.feature = feature
        """The feature code that was required."""


class FeatureUnavailable(FeatureRefused):
    """The refusal worth retrying: ChatarminOS could not be asked (network, timeout, 429,
    5xx). Give it to ``autoretry_for=(FeatureUnavailable,)``."""


def _refusal(error: ChatarminOSError, feature: str) -> FeatureRefused | None:
    """The refusal a reserve error means, or ``None`` (raise it as it is: e.g. a wrong API key)."""
    if isinstance(error, PreconditionFailedError):
        return FeatureRefused(
            f"Usage limit reached for {feature}", reason="feature_limit_reached", feature=feature
        )
    if isinstance(error, PermissionDeniedError):
        return FeatureRefused(
            f"Feature {feature} is not enabled", reason="feature_not_enabled", feature=feature
        )
    if isinstance(error, NotFoundError):
        return FeatureRefused(
            f"Unknown company, org or feature for {feature}", reason="not_found", feature=feature
        )
    if isinstance(error, (APIConnectionError, InternalServerError, RateLimitError)):
        return FeatureUnavailable(
            f"ChatarminOS is unavailable to check {feature}", reason="unavailable", feature=feature
        )
    return None


def task_usage_key(task_id: str, operation: str) -> str:
    """The idempotency key of ``operation`` in the task ``task_id``: a UUIDv5, as text.

    The same for every run of that task (retries and redeliveries keep the task id), and
    different for another task or another operation.
    """
    if not isinstance(task_id, str) or not task_id:
        raise InvalidInputError("task_id", "must be a non-empty string")
    if not isinstance(operation, str) or not operation.strip():
        raise InvalidInputError("operation", "must be a non-empty string")
    return str(uuid.uuid5(USAGE_KEY_NAMESPACE, f"{task_id}:{operation}"))


def _running_task_id() -> str | None:
    """The id of the task running in this thread, if any (not for a task called directly)."""
    request = getattr(_current_task, "request", None)  # the proxy of no task has none
    task_id = getattr(request, "id", None)
    return task_id if isinstance(task_id, str) and task_id else None


class ChatarminOSCelery:
    """Owns one :class:`~chatarmin_os.ChatarminOS` per Celery worker process.

    ``ChatarminOSCelery(app, **client_options)``: ``client_options`` are the keyword
    arguments of ``ChatarminOS`` (without them the key and URL come from ``OS_API_KEY`` /
    ``CHATARMIN_OS_BASE_URL``); ``client_factory`` makes the client instead (tests:
    ``lambda: ChatarminOS.local(engine)``). Use :attr:`client` inside tasks and
    :meth:`usage_key` for the idempotency key of what a task meters.

    Each process gets its own client: made in a prefork child at ``worker_process_init``
    (after the fork) or on first use, never the parent's; shared by the threads of the
    threads pool (the client is thread-safe). At the end of a process it is flushed for at
    most ``shutdown_timeout`` seconds, then closed (see the module docstring for when);
    closing waits at most the usage buffer's ``close_timeout`` more, and only for events
    still pending then (kept in the spool, if any, for the next process).
    """

    def __init__(
        self,
        app: Celery,
        *,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        client_factory: Callable[[], ChatarminOS] | None = None,
        **client_options: Any,
    ) -> None:
        if client_factory is not None and client_options:
            raise TypeError("give either client_factory= or client options, not both")
        if (
            isinstance(shutdown_timeout, bool)
            or not isinstance(shutdown_timeout, (int, float))
            or not 0 <= shutdown_timeout <= 1_000_000
        ):
            raise InvalidInputError("shutdown_timeout", "must be seconds from 0 to 1,000,000")
        self.app = app
        """The Celery app."""
        self.shutdown_timeout = float(shutdown_timeout)
        """Seconds a process's end waits for its buffered usage (then the client closes)."""
        self._factory: Callable[[], ChatarminOS] = client_factory or (
            lambda: ChatarminOS(**client_options)
        )
        self._options = client_options
        self._lock = threading.Lock()
        self._client: ChatarminOS | None = None
        self._inherited: list[ChatarminOS] = []  # a parent's, kept (not closed) in a child
        self._pid = os.getpid()  # the process self._client was made in
        # Celery holds receivers weakly by default: these live as long as the app.
        signals.worker_process_init.connect(self._on_process_init, weak=False)
        signals.worker_process_shutdown.connect(self._on_process_end, weak=False)
        signals.worker_shutdown.connect(self._on_process_end, weak=False)
        atexit.register(self._on_exit)
        if hasattr(os, "register_at_fork"):  # the child starts without a client
            os.register_at_fork(after_in_child=self._after_fork_in_child)

    def __repr__(self) -> str:
        return f"<ChatarminOSCelery app={self.app.main!r} options={sorted(self._options)}>"

    @property
    def client(self) -> ChatarminOS:
        """This process's client, made on first use in it (never one from a parent process)."""
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                if self._client is not None:  # a parent's: its state was reset in this child
                    self._inherited.append(self._client)
                self._pid = os.getpid()
                self._client = self._factory()
            return self._client

    def usage_key(self, operation: str) -> str:
        """The idempotency key of ``operation`` in the running task (see :func:`task_usage_key`).

        Derived from the task's id, so every retry (``autoretry_for``, ``self.retry()``)
        and every redelivery (``acks_late``) of the task sends the same key and its usage
        counts once. Give each thing a task meters its own ``operation`` name.
        Raises :class:`NotInTaskError` outside a task run by a worker (or ``apply()``).
        """
        task_id = _running_task_id()
        if task_id is None:
            raise NotInTaskError(
                "usage_key() needs a running Celery task: call it inside a task "
                "(or use task_usage_key(task_id, operation))"
            )
        return task_usage_key(task_id, operation)

    @contextlib.contextmanager
    def require_feature(
        self,
        feature: str,
        *,
        company_id: str | None = None,
        external_org_id: str | None = None,
        quantity: int = 1,
        operation: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Iterator[Reservation]:
        """Hold ``quantity`` of ``feature`` for the work inside ``with``; meter it after.

        ``client.billing.reserve(...)`` with the idempotency key ``usage_key(operation or
        f"gate:{feature}")``: a retried or redelivered task sends the same key, so its usage
        counts once. A clean exit commits (``reservation.commit(n)`` inside meters less), an
        exception releases the hold. Refused before the work with :class:`FeatureRefused`
        (``reason`` says why), or :class:`FeatureUnavailable` when ChatarminOS could not be
        asked — give that one to ``autoretry_for``. Give exactly one of ``company_id`` /
        ``external_org_id``; outside a task it raises :class:`NotInTaskError`.
        """
        key = self.usage_key(operation or f"gate:{feature}")
        try:
            reservation = self.client.billing.reserve(
                feature_code=feature,
                quantity=quantity,
                company_id=company_id,
                external_org_id=external_org_id,
                idempotency_key=key,
                metadata=metadata,
            )
        except ChatarminOSError as error:
            refusal = _refusal(error, feature)
            if refusal is None:
                raise
            raise refusal from error
        with reservation:
            yield reservation

    def close(self, timeout: float | None = None) -> int:
        """Flush this process's client for at most ``timeout`` seconds (default
        ``shutdown_timeout``), then close it; return how many usage events were still pending.

        What the worker signals call; safe to call more than once. A later use of
        :attr:`client` makes a new client.
        """
        with self._lock:
            client = self._client if self._pid == os.getpid() else None
            self._client = None
        if client is None:
            return 0
        left = 0
        try:
            left = client.flush(self.shutdown_timeout if timeout is None else timeout)
            if left:
                logger.warning(
                    "Celery worker process %d ends with %d usage events not sent yet",
                    os.getpid(),
                    left,
                )
        except ChatarminOSError as exc:  # never breaks a worker's shutdown
            logger.error("Flushing usage at the worker's end failed: %s", exc)
        finally:
            client.close()
        return left

    # -- worker signals ----------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        # The child must not use (nor close) the parent's client: forget it, lock and all.
        self._lock = threading.Lock()
        if self._client is not None:
            self._inherited.append(self._client)
        self._client = None
        self._pid = os.getpid()

    def _on_process_init(self, **signal_kwargs: Any) -> None:
        """``worker_process_init``: make this process's client now, after the fork."""
        try:
            _ = self.client
        except ChatarminOSError as exc:  # made again on first use, which then raises
            logger.error("Making the ChatarminOS client for a worker process failed: %s", exc)

    def _on_process_end(self, **signal_kwargs: Any) -> None:
        """``worker_process_shutdown`` / ``worker_shutdown``: flush and close, bounded."""
        self.close()

    def _on_exit(self) -> None:
        self.close()
