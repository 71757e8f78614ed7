"""Django integration: the client from settings, one per process, and a feature-gate decorator.

Install with ``pip install "chatarmin-os[django]"``. ``import chatarmin_os`` never imports
this module.

Settings (all optional; the keys are the client's keyword arguments in upper case)::

    CHATARMIN_OS = {
        "API_KEY": "os_sk_...",  # default: $OS_API_KEY
        "BASE_URL": "https://os.chatarmin.com/api/v1",  # default: $CHATARMIN_OS_BASE_URL
        "TIMEOUT": 10.0,
        "MAX_RETRIES": 2,
        "CACHE": CacheOptions(fallback={"sso": "closed"}),  # default True: the cache on
    }

Views::

    from chatarmin_os.django import feature_access, require_feature

    @require_feature("ai_credit", external_org_id="X-Org-Id")
    def summarise(request):
        access = feature_access(request, "ai_credit")
        return JsonResponse({"remaining": access.remaining})

:func:`get_client` (blocking views, scripts, Celery tasks) and :func:`get_async_client`
(async views) give the process's client; both are rebuilt after a fork, when the
``CHATARMIN_OS`` setting changes (``override_settings`` in tests) and when ``OS_API_KEY`` or
``CHATARMIN_OS_BASE_URL`` change.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

try:
    from asgiref.sync import (
        iscoroutinefunction,  # also sees views marked as coroutines
        sync_to_async,
    )
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.signals import setting_changed
    from django.http import HttpRequest, HttpResponse, JsonResponse
except ImportError as _error:
    raise ImportError(
        'chatarmin_os.django needs Django: pip install "chatarmin-os[django]"'
    ) from _error

import anyio

from . import _fork, _gating
from ._async import _gate as _async_gate
from ._async.client import AsyncChatarminOS
from ._gating import Gate, LoopClients, Meter, Refusal, RefusalReason, org_getter, org_value
from ._models import FeatureAccess
from ._sync import _gate as _sync_gate
from ._sync.client import ChatarminOS

__all__ = [
    "SETTING",
    "Meter",
    "Refusal",
    "RefusalReason",
    "client_options",
    "feature_access",
    "get_async_client",
    "get_client",
    "require_feature",
    "reset_clients",
]

SETTING = "CHATARMIN_OS"
"""The name of the Django setting read by :func:`client_options`."""

_ACCESS_ATTRIBUTE = "chatarmin_access"

_View = TypeVar("_View", bound=Callable[..., Any])
OrgIdSource = str | Callable[[HttpRequest], str | Awaitable[str | None] | None]


# -- the client ---------------------------------------------------------------------------


def client_options() -> dict[str, Any]:
    """The client's keyword arguments from ``settings.CHATARMIN_OS`` (keys lower-cased).

    Missing keys fall back to the client's defaults: ``OS_API_KEY``,
    ``CHATARMIN_OS_BASE_URL``, 30 s timeout, 2 retries; and the entitlement cache is on
    (``"CACHE": True``) unless the settings give ``"CACHE"``.
    """
    raw = getattr(settings, SETTING, None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"settings.{SETTING} must be a dict")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ImproperlyConfigured(f"settings.{SETTING}: keys must be strings, got {key!r}")
        options[key.lower()] = value
    return options


def _environment_key() -> tuple[str | None, str | None]:
    """What a process's clients depend on besides settings: the environment."""
    return os.environ.get("OS_API_KEY"), os.environ.get("CHATARMIN_OS_BASE_URL")


_T = TypeVar("_T", ChatarminOS, AsyncChatarminOS)


def _build(cls: type[_T]) -> _T:
    # The one place client options are turned into a client: the entitlement cache is on
    # unless the settings say otherwise ("CACHE": None turns it off).
    options = {"cache": True, **client_options()}
    try:
        return cls(**options)
    except TypeError as error:
        raise ImproperlyConfigured(f"settings.{SETTING}: {error}") from None


class _Clients:
    """The process's clients: one blocking client, one async client per event loop."""

    lock: threading.Lock
    key: tuple[str | None, str | None] | None
    sync: ChatarminOS | None
    by_loop: LoopClients

    def __init__(self) -> None:
        self._after_fork_in_child()

    def _after_fork_in_child(self) -> None:
        """No clients, fresh locks: at import, and in a forked child (parent's pool untouched)."""
        self.lock = threading.Lock()
        self.key = None
        self.sync = None
        self.by_loop = LoopClients()

    def forget(self) -> None:
        """Drop the clients (lock held), closing the blocking one (a forked child starts with
        none, so it never closes its parent's pool)."""
        if self.sync is not None:
            self.sync.close()
        self.sync = None
        self.by_loop.clear()
        self.key = None

    def current(self) -> None:
        """Forget the clients when the environment changed (lock held)."""
        key = _environment_key()
        if key != self.key:
            self.forget()
            self.key = key


_clients = _Clients()
_fork.register(_clients)  # a forked child starts with no clients and free locks


def get_client() -> ChatarminOS:
    """The process's blocking :class:`~chatarmin_os.ChatarminOS`, made from settings on first use.

    Share it between threads; each process (a gunicorn or Celery worker after the fork) makes
    its own. Raises ``ImproperlyConfigured`` for unknown options and
    :class:`~chatarmin_os.ChatarminOSError` when no API key is configured.
    """
    with _clients.lock:
        _clients.current()
        if _clients.sync is None:
            _clients.sync = _build(ChatarminOS)
        return _clients.sync


def get_async_client() -> AsyncChatarminOS:
    """The :class:`~chatarmin_os.AsyncChatarminOS` of the running event loop, for async views.

    Under ASGI there is one loop, so one client per process; a WSGI server running async
    views gives each request its own loop, and each loop its own client.
    """
    with _clients.lock:
        _clients.current()
    return _clients.by_loop.get(lambda: _build(AsyncChatarminOS))


def reset_clients() -> None:
    """Forget the clients so the next call builds them anew from settings (closes the blocking one).

    Called on Django's ``setting_changed`` for ``CHATARMIN_OS``.
    """
    with _clients.lock:
        _clients.forget()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING:
        reset_clients()


setting_changed.connect(_on_setting_changed, dispatch_uid="chatarmin_os.django.reset_clients")


# -- the gate -----------------------------------------------------------------------------


def feature_access(request: HttpRequest, feature: str) -> FeatureAccess:
    """The :class:`~chatarmin_os.FeatureAccess` a ``require_feature`` gate found for ``feature``.

    Raises ``LookupError`` when the view has no gate on that feature.
    """
    found: dict[str, FeatureAccess] = getattr(request, _ACCESS_ATTRIBUTE, {})
    try:
        return found[feature]
    except KeyError:
        raise LookupError(f"no require_feature({feature!r}) gate ran for this request") from None


def _remember(request: HttpRequest, access: FeatureAccess) -> None:
    found: dict[str, FeatureAccess] | None = getattr(request, _ACCESS_ATTRIBUTE, None)
    if found is None:
        found = {}
        setattr(request, _ACCESS_ATTRIBUTE, found)
    found[access.feature_code] = access


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_thread(function: Callable[_P, _R]) -> Callable[_P, Awaitable[_R]]:
    """``function`` run in a worker thread (not the one thread of sync views)."""
    return sync_to_async(function, thread_sensitive=False)


def require_feature(
    feature: str,
    *,
    external_org_id: OrgIdSource,
    quantity: int = 1,
    track: bool = False,
    meter: Meter = "after",
    statuses: Mapping[RefusalReason, int] | None = None,
    on_refusal: Callable[[HttpRequest, Refusal], HttpResponse] | None = None,
) -> Callable[[_View], _View]:
    """Decorate a view (sync or async) so it runs only when the org may use ``feature``.

    Args:
        feature: the feature code.
        external_org_id: a request header name (``"X-Org-Id"``) or a function of the
            request returning the org id or ``None`` (it may be async for async views).
        quantity: how much the request needs; fewer remaining is ``feature_limit_reached``.
        track: take ``quantity`` of usage in the gate (see ``meter``), with an idempotency
            key from the request's ``Idempotency-Key`` header, else random.
        meter: with ``track=True``: ``"after"`` (default) holds ``quantity`` before the view
            (``billing.reserve``) and commits it when the view answered with a status below
            400, releasing it after an error status or an exception; ``"before"`` meters it
            before the view (``billing.track_usage``: one round trip, exact across processes
            without Redis, charged even when the view then fails).
        statuses: other HTTP statuses for refusals, e.g. ``{"feature_limit_reached": 429}``.
        on_refusal: build the response of a refusal yourself (default: a ``JsonResponse`` of
            ``refusal.body()`` with ``refusal.status``).

    The view reads the access with :func:`feature_access`. Refusals: no org id -> 400
    ``missing_org_id``; unknown org -> 403 ``unknown_org``; not enabled -> 403
    ``feature_not_enabled``; fewer than ``quantity`` left -> 402 ``feature_limit_reached``;
    ChatarminOS unreachable -> 503 ``unavailable``; an invalid or revoked API key -> 500
    ``misconfigured`` (logged once at ERROR). Class-based views:
    ``method_decorator(require_feature(...), name="dispatch")``.
    """
    gate = Gate.create(feature, quantity=quantity, statuses=statuses, track=track, meter=meter)
    org_of = org_getter(external_org_id)

    def respond(request: HttpRequest, refusal: Refusal) -> HttpResponse:
        if on_refusal is not None:
            return on_refusal(request, refusal)
        return JsonResponse(refusal.body(), status=refusal.status)

    def key_of(request: HttpRequest) -> str:
        return _gating.idempotency_key(gate.feature, request.headers.get("Idempotency-Key"))

    def decorator(view: _View) -> _View:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                found = org_of(request)
                org = org_value(await found if inspect.isawaitable(found) else found)
                if org is None:
                    return respond(request, gate.missing_org())
                if gate.meter is None:  # a check: the loop's own client
                    checked = await _async_gate.admit(get_async_client(), gate, org, "")
                    if isinstance(checked, Refusal):
                        return respond(request, checked)
                    _remember(request, checked.access)
                    return await view(request, *args, **kwargs)
                # Usage goes through the process's blocking client, whose ledger and usage
                # buffer outlive the event loop (a WSGI server gives each request its own).
                outcome = await _in_thread(_sync_gate.admit)(
                    get_client(), gate, org, key_of(request)
                )
                if isinstance(outcome, Refusal):
                    return respond(request, outcome)
                _remember(request, outcome.access)
                try:
                    response = await view(request, *args, **kwargs)
                except BaseException:
                    with anyio.CancelScope(shield=True):
                        await _in_thread(outcome.settle)(False)
                    raise
                ok = _gating.succeeded(getattr(response, "status_code", 500))
                await _in_thread(outcome.settle)(ok)
                return response

            return cast(_View, async_view)

        @functools.wraps(view)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            org = org_value(org_of(request))
            if org is None:
                return respond(request, gate.missing_org())
            outcome = _sync_gate.admit(get_client(), gate, org, key_of(request))
            if isinstance(outcome, Refusal):
                return respond(request, outcome)
            _remember(request, outcome.access)
            try:
                response = view(request, *args, **kwargs)
            except BaseException:
                outcome.settle(False)
                raise
            outcome.settle(_gating.succeeded(getattr(response, "status_code", 500)))
            return response

        return cast(_View, sync_view)

    return decorator
