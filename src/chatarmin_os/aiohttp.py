"""aiohttp integration: one client per application, feature gates for handlers.

Install with ``pip install "chatarmin-os[aiohttp]"``. ``import chatarmin_os`` never imports
this module.

Example::

    from aiohttp import web

    from chatarmin_os.aiohttp import feature_access, require_feature, setup

    app = web.Application()
    setup(app)  # AsyncChatarminOS() from the environment, on aiohttp's own connection pool

    @require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
    async def summarise(request: web.Request) -> web.Response:
        access = feature_access(request, "ai_credit")
        return web.json_response({"credits_before": access.remaining})

    app.router.add_post("/summaries", summarise)

Refusals are answered as JSON (``refusal.body()``) with the refusal's status, e.g. ``402
{"error": "feature_limit_reached", "feature": "ai_credit", ...}``: the same refusals,
statuses, holds and ``meter=`` as ``chatarmin_os.fastapi.require_feature``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

try:
    from aiohttp import web
except ImportError as _error:
    raise ImportError(
        'chatarmin_os.aiohttp needs aiohttp: pip install "chatarmin-os[aiohttp]"'
    ) from _error

import anyio

from ._aiohttp_transport import DefaultAioHttpClient
from ._async._gate import Admission, admit
from ._async.client import AsyncChatarminOS
from ._gating import (
    Gate,
    Meter,
    Refusal,
    RefusalReason,
    check_given_client,
    idempotency_key,
    org_getter,
    org_value,
    succeeded,
)
from ._models import FeatureAccess

__all__ = [
    "ChatarminOSAiohttp",
    "Handler",
    "Meter",
    "Refusal",
    "RefusalReason",
    "feature_access",
    "get_client",
    "require_feature",
    "setup",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp request handler."""

OrgIdSource = str | Callable[[web.Request], str | Awaitable[str | None] | None]


class ChatarminOSAiohttp:
    """Gives an aiohttp application one :class:`~chatarmin_os.AsyncChatarminOS` for its life.

    ``ChatarminOSAiohttp(app, **client_options)`` (or :func:`setup`) adds a cleanup context
    (``app.cleanup_ctx``): on startup it makes the client from ``client_options`` (the
    keyword arguments of ``AsyncChatarminOS``; without them ``OS_API_KEY`` and
    ``CHATARMIN_OS_BASE_URL``), on cleanup it closes it, which flushes its usage buffer.
    The client sends through aiohttp (``http_client=DefaultAioHttpClient()``) and has the
    entitlement cache on (``cache=True``) unless the options say otherwise. ``client=``
    hands over a client you made (tests: ``chatarmin_os_local.async_client()``); it is
    yours and is not closed.
    """

    def __init__(
        self,
        app: web.Application | None = None,
        *,
        client: AsyncChatarminOS | None = None,
        **client_options: Any,
    ) -> None:
        check_given_client(client, client_options, AsyncChatarminOS)
        self._given = client
        self._options = client_options
        self._client: AsyncChatarminOS | None = None
        if app is not None:
            self.setup(app)

    def __repr__(self) -> str:
        return f"<ChatarminOSAiohttp options={sorted(self._options)}>"

    def setup(self, app: web.Application) -> None:
        """Register with ``app`` (before it starts): its key and its cleanup context."""
        app[EXTENSION] = self
        app.cleanup_ctx.append(self._lifetime)

    @property
    def client(self) -> AsyncChatarminOS:
        """The running application's client (``RuntimeError`` before startup, after cleanup)."""
        if self._client is None:
            raise RuntimeError("the application is not running: no ChatarminOS client yet")
        return self._client

    async def _lifetime(self, app: web.Application) -> AsyncIterator[None]:
        if self._given is not None:
            self._client = self._given
            try:
                yield
            finally:
                self._client = None
            return
        # Ours: on aiohttp's transport (closed here: a passed http_client stays open) with
        # the entitlement cache on, unless the options say otherwise.
        options = {"cache": True, **self._options}
        http = None if "http_client" in options else DefaultAioHttpClient()
        if http is not None:
            options["http_client"] = http
        client = self._client = AsyncChatarminOS(**options)
        try:
            yield
        finally:
            self._client = None
            try:
                await client.aclose()
            finally:
                if http is not None:
                    await http.aclose()


EXTENSION = web.AppKey("chatarmin_os", ChatarminOSAiohttp)
"""Where the application keeps its :class:`ChatarminOSAiohttp`."""

_ACCESS = web.RequestKey("chatarmin_os_access", dict)


def setup(
    app: web.Application, *, client: AsyncChatarminOS | None = None, **client_options: Any
) -> ChatarminOSAiohttp:
    """Give ``app`` one client for its life: ``ChatarminOSAiohttp(app, ...)``."""
    return ChatarminOSAiohttp(app, client=client, **client_options)


def get_client(request: web.Request) -> AsyncChatarminOS:
    """The application's :class:`~chatarmin_os.AsyncChatarminOS` (sub-applications find
    their parent's). ``RuntimeError`` when :func:`setup` was not called for the app."""
    try:
        extension = request.config_dict[EXTENSION]
    except KeyError:
        raise RuntimeError(
            "no ChatarminOS client: call chatarmin_os.aiohttp.setup(app) first"
        ) from None
    return extension.client


def feature_access(request: web.Request, feature: str) -> FeatureAccess:
    """The :class:`~chatarmin_os.FeatureAccess` a ``require_feature`` gate found for
    ``feature`` (as it was before this request). ``LookupError`` without that gate."""
    found: dict[str, FeatureAccess] = request.get(_ACCESS, {})
    try:
        return found[feature]
    except KeyError:
        raise LookupError(f"no require_feature({feature!r}) gate ran for this request") from None


async def _org_of(source: Callable[[web.Request], Any], request: web.Request) -> str | None:
    value = source(request)
    return org_value(await value if inspect.isawaitable(value) else value)


async def _settle(admission: Admission, ok: bool) -> None:
    with anyio.CancelScope(shield=True):  # a cancelled handler still gives its hold back
        await admission.settle(ok)


def require_feature(
    feature: str,
    *,
    external_org_id: OrgIdSource,
    quantity: int = 1,
    track: bool = False,
    meter: Meter = "after",
    statuses: Mapping[RefusalReason, int] | None = None,
    on_refusal: Callable[[web.Request, Refusal], web.StreamResponse] | None = None,
) -> Callable[[Handler], Handler]:
    """Decorate a handler so it runs only when the org may use ``feature``.

    Args:
        feature: the feature code.
        external_org_id: a request header name (``"X-Org-Id"``) or a function of the
            request returning the org id or ``None`` (sync or async), e.g.
            ``lambda request: request.match_info.get("org_id")``.
        quantity: how much the request needs; fewer remaining is ``feature_limit_reached``.
        track: take ``quantity`` of usage in the gate (see ``meter``), with an idempotency
            key from the request's ``Idempotency-Key`` header, else random.
        meter: with ``track=True``: ``"after"`` (default) holds ``quantity`` before the
            handler (``billing.reserve``) and commits it when the handler answered with a
            status below 400 (returned or raised as a ``web.HTTPException``), releasing it
            after an error status, any other exception or a cancellation; ``"before"``
            meters it before the handler (``billing.track_usage``: one round trip, exact
            across processes without Redis, charged even when the handler then fails).
        statuses: other HTTP statuses for refusals, e.g. ``{"feature_limit_reached": 429}``.
        on_refusal: build the response of a refusal yourself (default: a JSON response of
            ``refusal.body()`` with ``refusal.status``).

    The handler reads the access with :func:`feature_access`. Refusals: no org id -> 400
    ``missing_org_id``; unknown org -> 403 ``unknown_org``; not enabled -> 403
    ``feature_not_enabled``; fewer than ``quantity`` left -> 402 ``feature_limit_reached``;
    ChatarminOS unreachable -> 503 ``unavailable``; an invalid or revoked API key -> 500
    ``misconfigured`` (logged once at ERROR). An unknown feature code raises
    ``NotFoundError`` (a bug).
    """
    gate = Gate.create(feature, quantity=quantity, statuses=statuses, track=track, meter=meter)
    org_source = org_getter(external_org_id)

    def respond(request: web.Request, refusal: Refusal) -> web.StreamResponse:
        if on_refusal is not None:
            return on_refusal(request, refusal)
        return web.json_response(refusal.body(), status=refusal.status)

    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def gated(request: web.Request) -> web.StreamResponse:
            org = await _org_of(org_source, request)
            if org is None:
                return respond(request, gate.missing_org())
            key = idempotency_key(gate.feature, request.headers.get("Idempotency-Key"))
            outcome = await admit(get_client(request), gate, org, key)
            if isinstance(outcome, Refusal):
                return respond(request, outcome)
            found = request.get(_ACCESS)
            if found is None:
                found = request[_ACCESS] = {}
            found[gate.feature] = outcome.access
            try:
                response = await handler(request)
            except web.HTTPException as error:  # raised answers: a redirect is a success
                await _settle(outcome, succeeded(error.status))
                raise
            except BaseException:
                await _settle(outcome, False)
                raise
            await _settle(outcome, succeeded(response.status))
            return response

        return gated

    return decorator
