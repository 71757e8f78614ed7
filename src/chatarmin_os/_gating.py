"""Feature gating shared by the web-framework integrations (FastAPI, Django, aiohttp).

What a gate decides, for every framework, in one place; the calls it makes are in
``_async/_gate.py`` (and its generated blocking twin):

* the gate asks ``features.check_by_external_org_id(org, feature)``; a ``NotFoundError``
  is an unknown organisation when ``companies.get_by_product_link`` finds none (a refusal),
  anything else (an unknown feature code) is a bug and raised;
* the verdict: not enabled -> ``feature_not_enabled`` (403), ``remaining < quantity`` or
  ``can_use`` false -> ``feature_limit_reached`` (402), ChatarminOS unreachable or failing
  -> ``unavailable`` (503), an invalid or revoked API key -> ``misconfigured`` (500, logged
  once at ERROR), no org id on the request -> ``missing_org_id`` (400);
* with ``track=True`` the gate then takes the usage: ``meter="after"`` holds it with
  ``billing.reserve`` (committed after a successful answer, released otherwise),
  ``meter="before"`` meters it at once with ``billing.track_usage``; their refusals
  (``PreconditionFailedError``, ``PermissionDeniedError``, an unlinked org) are the same
  refusals as the check's.

:class:`LoopClients` keeps one async client per event loop, for servers that run each
request in a loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from ._exceptions import (
    AuthenticationError,
    ChatarminOSError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from ._ids import new_idempotency_key
from ._logs import logger
from ._models import FeatureAccess

if TYPE_CHECKING:
    from ._async.client import AsyncChatarminOS

__all__ = [
    "DEFAULT_STATUSES",
    "Gate",
    "LoopClients",
    "Meter",
    "Refusal",
    "RefusalReason",
    "check_given_client",
    "idempotency_key",
    "org_getter",
    "org_value",
    "succeeded",
]

RefusalReason = Literal[
    "missing_org_id",
    "unknown_org",
    "feature_not_enabled",
    "feature_limit_reached",
    "unavailable",
    "misconfigured",
]
"""Why a gate refused a request; also the ``error`` field of the refusal's JSON body."""

Meter = Literal["after", "before"]
"""When a tracking gate (``track=True``) takes the usage: ``"after"`` holds it in the gate
(``billing.reserve``) and meters it after a successful answer; ``"before"`` meters it in
the gate (``billing.track_usage``), charged even when the endpoint then fails."""

DEFAULT_STATUSES: Mapping[RefusalReason, int] = {
    "missing_org_id": 400,
    "unknown_org": 403,
    "feature_not_enabled": 403,
    "feature_limit_reached": 402,
    "unavailable": 503,
    "misconfigured": 500,
}
"""The HTTP status of each refusal unless ``statuses=`` says otherwise."""

_REASONS = frozenset(get_args(RefusalReason))
_METERS = frozenset(get_args(Meter))

_UNLINKED_PATH = "companies.getByProductLink"
"""The ``path`` of the ``NotFoundError`` of an org no company is linked to."""


def succeeded(status: int) -> bool:
    """Whether an answer with this HTTP status is a success: its usage is committed."""
    return status < 400


@dataclass(frozen=True)
class Refusal:
    """A request the gate refused: why, with which status, and what ChatarminOS said.

    ``body()`` is the JSON the integrations answer with, e.g. ``{"error":
    "feature_limit_reached", "feature": "ai_credit", "message": "...", "remaining": 0,
    "limit": 100, "requested": 1}``.
    """

    reason: RefusalReason
    """Why: ``missing_org_id``, ``unknown_org``, ``feature_not_enabled``,
    ``feature_limit_reached``, ``unavailable`` or ``misconfigured``."""
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


_reported_lock = threading.Lock()
_reported: set[str] = set()


def _report_once(where: str, error: ChatarminOSError) -> None:
    """Log a configuration error at ERROR, once per process and ChatarminOS URL."""
    with _reported_lock:
        if where in _reported:
            return
        _reported.add(where)
    logger.error(
        "Feature gates: ChatarminOS at %s refuses this service's API key (%s); every gated "
        "request answers 500 until the key is fixed",
        where,
        type(error).__name__,
    )


@dataclass(frozen=True)
class Gate:
    """The settings of one ``require_feature(...)``, checked when it is declared."""

    feature: str
    quantity: int = 1
    statuses: Mapping[RefusalReason, int] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    meter: Meter | None = None
    """How the usage is taken: ``None`` (not tracked by the gate), ``"after"``, ``"before"``."""

    @classmethod
    def create(
        cls,
        feature: str,
        *,
        quantity: int = 1,
        statuses: Mapping[RefusalReason, int] | None = None,
        track: bool = False,
        meter: Meter = "after",
    ) -> Gate:
        """Validate the arguments of ``require_feature`` (``TypeError``/``ValueError``)."""
        if not isinstance(feature, str) or not feature.strip():
            raise ValueError(f"feature must be a non-empty feature code, got {feature!r}")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValueError(f"quantity must be an int >= 1, got {quantity!r}")
        if not isinstance(track, bool):
            raise TypeError(f"track must be True or False, got {track!r}")
        if meter not in _METERS:
            raise ValueError(f'meter must be "after" or "before", got {meter!r}')
        if meter != "after" and not track:
            raise ValueError('meter="before" meters the usage: give track=True with it')
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
        return cls(feature, quantity, merged, meter if track else None)

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

    def not_enabled(self, org: str, access: FeatureAccess | None) -> Refusal:
        """The org's plan does not include the feature."""
        return self.refuse(
            "feature_not_enabled",
            f"The feature {self.feature} is not enabled for this organisation.",
            org,
            access,
        )

    def limit_reached(self, org: str, access: FeatureAccess) -> Refusal:
        """Fewer than ``quantity`` left."""
        return self.refuse(
            "feature_limit_reached", f"The usage limit of {self.feature} is reached.", org, access
        )

    def judge(self, org: str, access: FeatureAccess) -> FeatureAccess | Refusal:
        """``access`` when it allows ``quantity`` more, else the refusal."""
        if not access.is_enabled:
            return self.not_enabled(org, access)
        short = access.remaining is not None and access.remaining < self.quantity
        if short or not access.can_use:
            return self.limit_reached(org, access)
        return access

    def failed(self, org: str, error: ChatarminOSError, where: str) -> Refusal:
        """ChatarminOS could not answer (``unavailable``, logged) or refused this service's
        API key (``misconfigured``, logged once at ERROR); the error is not shown."""
        if isinstance(error, AuthenticationError):
            _report_once(where, error)
            return self.refuse(
                "misconfigured", "Feature entitlements are unavailable: misconfigured.", org
            )
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

    def usage_refused(
        self, org: str, access: FeatureAccess, error: ChatarminOSError, where: str
    ) -> Refusal:
        """The refusal of a hold or of metering in the gate (``billing.reserve`` or
        ``billing.track_usage`` raised ``error``), after the check let the request pass.

        Raises ``error`` itself when it is a bug (bad input, an unknown feature code).
        """
        if isinstance(error, PreconditionFailedError):
            remaining = access.remaining
            if remaining is not None:  # what the check saw; the hold or the server saw less
                remaining = max(0, min(remaining, self.quantity - 1))
            short = access.model_copy(update={"remaining": remaining, "can_use": False})
            return self.limit_reached(org, short)
        if isinstance(error, PermissionDeniedError):
            return self.not_enabled(org, access.model_copy(update={"is_enabled": False}))
        if isinstance(error, NotFoundError):
            if error.path == _UNLINKED_PATH:
                return self.unknown_org(org)
            raise error
        if isinstance(error, InvalidInputError):
            raise error
        return self.failed(org, error, where)

    def before(self, access: FeatureAccess, remaining_after: int | None) -> FeatureAccess:
        """The access the endpoint sees once its usage is held or metered: the figures
        before this request, as the hold or the server knew them (``remaining_after`` is
        what is left after it)."""
        if remaining_after is None or access.quantity_limit is None:
            return access
        before = remaining_after + self.quantity
        return access.model_copy(
            update={"remaining": before, "current_usage": access.quantity_limit - before}
        )


def org_value(value: Any) -> str | None:
    """The org id a request named (stripped), ``None`` for none; ``TypeError`` for a non-str."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"the org id must be a str or None, got {type(value).__name__}")
    return value.strip() or None


def org_getter(source: Any) -> Callable[[Any], Any]:
    """A function of the request for ``external_org_id=``: a header name (read from
    ``request.headers``) or the caller's own function."""
    if isinstance(source, str):
        if not source.strip():
            raise ValueError("external_org_id: a header name must not be empty")
        return lambda request: request.headers.get(source)
    if callable(source):
        return cast("Callable[[Any], Any]", source)
    raise TypeError("external_org_id must be a header name or a function of the request")


def check_given_client(client: object, options: Mapping[str, Any], kind: type) -> None:
    """An integration gets a client of ``kind`` or options to make one, not both."""
    if client is not None and options:
        raise TypeError("give either client= or client options, not both")
    if client is not None and not isinstance(client, kind):
        raise TypeError(f"client must be an {kind.__name__}, got {type(client).__name__}")


def idempotency_key(feature: str, request_key: str | None) -> str:
    """The idempotency key of a request's usage of ``feature``.

    The request's own ``Idempotency-Key`` header when it sent one (a client retrying the
    same request is then counted once), else a fresh UUIDv7; prefixed with the feature code
    because ChatarminOS keeps keys per company, across features.
    """
    key = request_key.strip() if request_key else ""
    return f"{feature}:{key or new_idempotency_key()}"


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
