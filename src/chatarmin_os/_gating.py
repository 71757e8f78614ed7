"""Feature gating shared by the web-framework integrations (FastAPI, Django).

One place decides, for both frameworks, how a request is gated and how its usage is
tracked, so a change of the underlying calls happens here once:

* the gate asks ``features.check_by_external_org_id(org, feature)``; a ``NotFoundError``
  is an unknown organisation when ``companies.get_by_product_link`` finds none (a refusal),
  anything else (an unknown feature code) is a bug and raised;
* the verdict: not enabled -> ``feature_not_enabled`` (403), ``remaining < quantity`` or
  ``can_use`` false -> ``feature_limit_reached`` (402), ChatarminOS unreachable or failing
  -> ``unavailable`` (503), no org id on the request -> ``missing_org_id`` (400);
* tracking after the response hands the event to the client's usage buffer
  (``billing.track_usage_later`` by org id) when one is configured, else calls
  ``billing.track_usage(external_org_id=...)`` (the org's company comes from the cache the
  gate filled), with an idempotency key derived from the request; errors are logged, never
  raised.

Each I/O step has an async and a blocking twin side by side (the integrations use the async
client in async views and the blocking one in sync views). :class:`LoopClients` keeps one
async client per event loop, for servers that run each request in a loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from ._exceptions import ChatarminOSError, InvalidInputError, NotFoundError
from ._ids import new_idempotency_key
from ._logs import logger
from ._models import FeatureAccess

if TYPE_CHECKING:
    from ._async.client import AsyncChatarminOS
    from ._sync.client import ChatarminOS

__all__ = [
    "DEFAULT_STATUSES",
    "Gate",
    "LoopClients",
    "Refusal",
    "RefusalReason",
    "acheck",
    "atrack",
    "check",
    "idempotency_key",
    "track",
]

RefusalReason = Literal[
    "missing_org_id", "unknown_org", "feature_not_enabled", "feature_limit_reached", "unavailable"
]
"""Why a gate refused a request; also the ``error`` field of the refusal's JSON body."""

DEFAULT_STATUSES: Mapping[RefusalReason, int] = {
    "missing_org_id": 400,
    "unknown_org": 403,
    "feature_not_enabled": 403,
    "feature_limit_reached": 402,
    "unavailable": 503,
}
"""The HTTP status of each refusal unless ``statuses=`` says otherwise."""

_REASONS = frozenset(get_args(RefusalReason))


@dataclass(frozen=True)
class Refusal:
    """A request the gate refused: why, with which status, and what ChatarminOS said.

    ``body()`` is the JSON the integrations answer with, e.g. ``{"error":
    "feature_limit_reached", "feature": "ai_credit", "message": "...", "remaining": 0,
    "limit": 100, "requested": 1}``.
    """

    reason: RefusalReason
    """Why: ``missing_org_id``, ``unknown_org``, ``feature_not_enabled``,
    ``feature_limit_reached`` or ``unavailable``."""
    feature: str
    """The feature code that was gated."""
    status: int
    """The HTTP status to answer with."""
    message: str
    """A short sentence for humans (no secrets, no internals)."""
    quantity: int = 1
    """The quantity the gate asked for."""
    external_org_id: str | None = None
    """The org id taken from the request, when there was one."""
    access: FeatureAccess | None = field(default=None, repr=False)
    """ChatarminOS's answer, for ``feature_not_enabled`` and ``feature_limit_reached``."""

    def body(self) -> dict[str, Any]:
        """The JSON body of the refusal."""
        body: dict[str, Any] = {
            "error": self.reason,
            "feature": self.feature,
            "message": self.message,
        }
        if self.reason == "feature_limit_reached" and self.access is not None:
            body["remaining"] = self.access.remaining
            body["limit"] = self.access.quantity_limit
            body["requested"] = self.quantity
        return body


@dataclass(frozen=True)
class Gate:
    """The settings of one ``require_feature(...)``, checked when it is declared."""

    feature: str
    quantity: int = 1
    statuses: Mapping[RefusalReason, int] = field(default_factory=lambda: dict(DEFAULT_STATUSES))

    @classmethod
    def create(
        cls,
        feature: str,
        *,
        quantity: int = 1,
        statuses: Mapping[RefusalReason, int] | None = None,
    ) -> Gate:
        """Validate the arguments of ``require_feature`` (``TypeError``/``ValueError``)."""
        if not isinstance(feature, str) or not feature.strip():
            raise ValueError(f"feature must be a non-empty feature code, got {feature!r}")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError(f"quantity must be an int >= 1, got {quantity!r}")
        merged: dict[RefusalReason, int] = dict(DEFAULT_STATUSES)
        for reason, status in (statuses or {}).items():
            if reason not in _REASONS:
                raise ValueError(
                    f"statuses: unknown refusal {reason!r}; known: {', '.join(sorted(_REASONS))}"
                )
            if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
                raise ValueError(
                    f"statuses[{reason!r}] must be an HTTP error status, got {status!r}"
                )
            merged[reason] = status
        return cls(feature, quantity, merged)

    def refuse(
        self,
        reason: RefusalReason,
        message: str,
        org: str | None = None,
        access: FeatureAccess | None = None,
    ) -> Refusal:
        """A :class:`Refusal` of this gate."""
        return Refusal(
            reason, self.feature, self.statuses[reason], message, self.quantity, org, access
        )

    def missing_org(self) -> Refusal:
        """The request named no organisation."""
        return self.refuse("missing_org_id", "The request does not name an organisation.")

    def judge(self, org: str, access: FeatureAccess) -> FeatureAccess | Refusal:
        """``access`` when it allows ``quantity`` more, else the refusal."""
        if not access.is_enabled:
            return self.refuse(
                "feature_not_enabled",
                f"The feature {self.feature} is not enabled for this organisation.",
                org,
                access,
            )
        short = access.remaining is not None and access.remaining < self.quantity
        if short or not access.can_use:
            return self.refuse(
                "feature_limit_reached",
                f"The usage limit of {self.feature} is reached.",
                org,
                access,
            )
        return access

    def unavailable(self, org: str, error: ChatarminOSError) -> Refusal:
        """ChatarminOS could not answer; the error is logged, not shown."""
        logger.warning(
            "Feature gate %s: ChatarminOS unavailable: %s: %s",
            self.feature,
            type(error).__name__,
            error,
        )
        return self.refuse(
            "unavailable", "Feature entitlements are unavailable, please retry later.", org
        )

    def unknown_org(self, org: str) -> Refusal:
        """No company is linked to the org id."""
        return self.refuse("unknown_org", "This organisation is not known to ChatarminOS.", org)


# -- the gate: one check per request ---------------------------------------------------------


async def acheck(client: AsyncChatarminOS, gate: Gate, org: str) -> FeatureAccess | Refusal:
    """Gate ``org`` with the async client: its access, or the refusal."""
    try:
        access = await client.features.check_by_external_org_id(org, gate.feature)
    except InvalidInputError:
        raise
    except NotFoundError as error:
        try:
            company = await client.companies.get_by_product_link(external_org_id=org)
        except ChatarminOSError as lookup_error:
            return gate.unavailable(org, lookup_error)
        if company is None:
            return gate.unknown_org(org)
        raise error  # the org is known: the feature code is wrong
    except ChatarminOSError as error:
        return gate.unavailable(org, error)
    return gate.judge(org, access)


def check(client: ChatarminOS, gate: Gate, org: str) -> FeatureAccess | Refusal:
    """Gate ``org`` with the blocking client: its access, or the refusal."""
    try:
        access = client.features.check_by_external_org_id(org, gate.feature)
    except InvalidInputError:
        raise
    except NotFoundError as error:
        try:
            company = client.companies.get_by_product_link(external_org_id=org)
        except ChatarminOSError as lookup_error:
            return gate.unavailable(org, lookup_error)
        if company is None:
            return gate.unknown_org(org)
        raise error  # the org is known: the feature code is wrong
    except ChatarminOSError as error:
        return gate.unavailable(org, error)
    return gate.judge(org, access)


# -- usage after the response ------------------------------------------------------------------


def idempotency_key(feature: str, request_key: str | None) -> str:
    """The idempotency key of a request's usage of ``feature``.

    The request's own ``Idempotency-Key`` header when it sent one (a client retrying the
    same request is then counted once), else a fresh UUIDv7; prefixed with the feature code
    because ChatarminOS keeps keys per company, across features.
    """
    key = request_key.strip() if request_key else ""
    return f"{feature}:{key or new_idempotency_key()}"


def _track_failed(feature: str, org: str, error: ChatarminOSError) -> None:
    logger.warning(
        "Usage of %s for org %s not tracked: %s: %s", feature, org, type(error).__name__, error
    )


def _not_found(feature: str, org: str, error: NotFoundError) -> None:
    if error.path == "companies.getByProductLink":  # no company is linked to the org
        logger.warning("Usage of %s not tracked: org %s is not linked", feature, org)
    else:
        _track_failed(feature, org, error)


async def atrack(client: AsyncChatarminOS, feature: str, org: str, quantity: int, key: str) -> None:
    """Track ``quantity`` of ``feature`` for ``org`` (async); errors are logged, not raised.

    With a usage buffer configured (``usage_buffer=``), ``billing.track_usage_later`` by org
    id (looked up when sent); else ``billing.track_usage(external_org_id=...)``: one round
    trip once the gate's check (or the cache) knows the org's company.
    """
    try:
        if client._usage_buffer_options is not None:
            await client.billing.track_usage_later(
                external_org_id=org, feature_code=feature, quantity=quantity, idempotency_key=key
            )
            return
        await client.billing.track_usage(
            external_org_id=org, feature_code=feature, quantity=quantity, idempotency_key=key
        )
    except NotFoundError as error:
        _not_found(feature, org, error)
    except ChatarminOSError as error:
        _track_failed(feature, org, error)


def track(client: ChatarminOS, feature: str, org: str, quantity: int, key: str) -> None:
    """The blocking twin of :func:`atrack`."""
    try:
        if client._usage_buffer_options is not None:
            client.billing.track_usage_later(
                external_org_id=org, feature_code=feature, quantity=quantity, idempotency_key=key
            )
            return
        client.billing.track_usage(
            external_org_id=org, feature_code=feature, quantity=quantity, idempotency_key=key
        )
    except NotFoundError as error:
        _not_found(feature, org, error)
    except ChatarminOSError as error:
        _track_failed(feature, org, error)


# -- one async client per event loop ----------------------------------------------------------


class LoopClients:
    """One async client per running event loop, made on first use (thread-safe).

    An httpx pool belongs to the loop that opened its connections, and some servers run each
    request in a new loop (Django's async views under WSGI, Starlette's ``TestClient``
    outside ``with``): each loop gets its own client, dropped with the loop. Under trio,
    which has one loop per run, one client is kept.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncChatarminOS] = (
            weakref.WeakKeyDictionary()
        )
        self._other: AsyncChatarminOS | None = None

    def get(self, make: Callable[[], AsyncChatarminOS]) -> AsyncChatarminOS:
        """The running loop's client, made with ``make()`` the first time."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            client = self._by_loop.get(loop) if loop is not None else self._other
            if client is None:
                client = make()
                if loop is not None:
                    self._by_loop[loop] = client
                else:
                    self._other = client
            return client

    def clear(self) -> None:
        """Forget every client (they close with their loops)."""
        with self._lock:
            self._by_loop = weakref.WeakKeyDictionary()
            self._other = None
