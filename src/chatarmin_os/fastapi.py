"""FastAPI integration: one client per app, feature gates as dependencies that hold the usage.

Install with ``pip install "chatarmin-os[fastapi]"``. ``import chatarmin_os`` never imports
this module.

Example::

    from typing import Annotated

    from fastapi import Depends, FastAPI

    from chatarmin_os import FeatureAccess
    from chatarmin_os.fastapi import ChatarminOSLifespan, require_feature

    app = FastAPI(lifespan=ChatarminOSLifespan())  # AsyncChatarminOS() from the environment

    AICredit = Annotated[
        FeatureAccess, Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True))
    ]

    @app.post("/summaries")
    async def summarise(access: AICredit) -> dict[str, int | None]:
        return {"remaining": access.remaining}

Refusals are raised as :class:`FeatureRefused`, an ``HTTPException`` whose ``detail`` is the
refusal's body, so FastAPI answers e.g. ``403 {"detail": {"error": "feature_not_enabled",
"feature": "ai_credit", "message": "..."}}``. With ``track=True`` the gate holds the usage
and :class:`ChatarminOSLifespan` commits it once the answer went out with a status below 400
(it wraps the app's ASGI stack to see the status), releasing it otherwise.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependencies' annotations
# at runtime, so they must be real objects, not strings.

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

try:
    from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request
    from fastapi.params import Depends as DependsParam
except ImportError as _error:
    raise ImportError(
        'chatarmin_os.fastapi needs FastAPI: pip install "chatarmin-os[fastapi]"'
    ) from _error

from ._asgi_settle import SettleAfterAnswer, register
from ._async._gate import admit, track
from ._async.client import AsyncChatarminOS
from ._gating import (
    Gate,
    LoopClients,
    Meter,
    Refusal,
    RefusalReason,
    check_given_client,
    idempotency_key,
    org_value,
)
from ._logs import logger
from ._models import FeatureAccess

if TYPE_CHECKING:
    from starlette.testclient import TestClient

__all__ = [
    "ChatarminOSLifespan",
    "FeatureRefused",
    "Meter",
    "Refusal",
    "RefusalReason",
    "flush",
    "get_client",
    "require_feature",
    "track_usage_after_response",
]

STATE_ATTRIBUTE = "chatarmin_os"
"""The client lives at ``app.state.chatarmin_os``."""

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]
OrgIdSource = str | Callable[[Request], str | Awaitable[str | None] | None] | DependsParam


class ChatarminOSLifespan:
    """A FastAPI lifespan that owns one :class:`~chatarmin_os.AsyncChatarminOS` for the app.

    Pass it as ``FastAPI(lifespan=ChatarminOSLifespan(...))``. At startup it makes the client
    from ``client_options`` (the keyword arguments of ``AsyncChatarminOS``; without them the
    key and URL come from ``OS_API_KEY`` / ``CHATARMIN_OS_BASE_URL``) and puts it at
    ``app.state.chatarmin_os``; at shutdown it closes it. The client has the entitlement
    cache on unless you pass ``cache=`` (e.g. ``cache=CacheOptions(fallback=...)``, or
    ``cache=None`` for none). ``lifespan`` is your own lifespan,
    run inside ours (so it can use the client already); its state is passed on.
    ``client=`` hands over a client you made (tests: ``AsyncChatarminOS.local(engine)``);
    it is yours and is not closed.
    """

    def __init__(
        self,
        lifespan: Lifespan | None = None,
        *,
        client: AsyncChatarminOS | None = None,
        **client_options: Any,
    ) -> None:
        check_given_client(client, client_options, AsyncChatarminOS)
        self._lifespan = lifespan
        self._client = client
        self._options = client_options

    def __repr__(self) -> str:
        return f"<ChatarminOSLifespan options={sorted(self._options)}>"

    def make_client(self) -> AsyncChatarminOS:
        """The client for one run of the app (the one given, or a new one).

        A new one has the entitlement cache on (``cache=True``) unless ``cache=`` is among
        the options (``cache=None`` turns it off).
        """
        if self._client is not None:
            return self._client
        return AsyncChatarminOS(**{"cache": True, **self._options})

    def __call__(self, app: FastAPI) -> AbstractAsyncContextManager[Any]:
        """Run the app with the client: what FastAPI calls at startup."""
        return self._run(app)

    @asynccontextmanager
    async def _run(self, app: FastAPI) -> AsyncIterator[Any]:
        client = self.make_client()
        setattr(app.state, STATE_ATTRIBUTE, client)
        _settle_after_answers(app)
        try:
            if self._lifespan is None:
                yield None
            else:
                async with self._lifespan(app) as state:
                    yield state
        finally:
            if getattr(app.state, STATE_ATTRIBUTE, None) is client:
                delattr(app.state, STATE_ATTRIBUTE)
            if client is not self._client:
                await client.aclose()


def _settle_after_answers(app: FastAPI) -> None:
    """Wrap the app's ASGI stack (built by now when the lifespan runs through it) so the holds of
    ``require_feature(..., track=True)`` are settled by the status of the answer."""
    stack = app.middleware_stack
    if stack is None:  # the lifespan was run directly, not through the app
        stack = app.build_middleware_stack()
    if not isinstance(stack, SettleAfterAnswer):
        app.middleware_stack = SettleAfterAnswer(stack)


def flush(http: "TestClient", timeout: float | None = 30.0) -> int:
    """Flush the lifespan's client from a sync test: ``flush(http)`` with the
    ``TestClient`` entered (``with TestClient(app) as http``).

    Runs ``await app.state.chatarmin_os.flush(timeout)`` in the ``TestClient``'s event loop
    (the client belongs to it) and returns what it returns: ``0`` once every usage event
    enqueued so far was answered. Raises ``RuntimeError`` outside ``with``.
    """
    portal = http.portal
    client = getattr(getattr(http.app, "state", None), STATE_ATTRIBUTE, None)
    if portal is None or not isinstance(client, AsyncChatarminOS):
        raise RuntimeError("flush(http) needs the TestClient entered: with TestClient(app) as http")
    return portal.call(client.flush, timeout)


_FALLBACK_ATTRIBUTE = "chatarmin_os_without_lifespan"


def _app_client(request: Request) -> AsyncChatarminOS:
    state = request.app.state
    client = getattr(state, STATE_ATTRIBUTE, None)
    if client is None:
        # No lifespan ran (no ChatarminOSLifespan, or a TestClient outside ``with``, which
        # runs each request in a new event loop): clients from the environment, per loop.
        clients = getattr(state, _FALLBACK_ATTRIBUTE, None)
        if clients is None:
            logger.info("No ChatarminOSLifespan on this app: clients from the environment")
            clients = LoopClients()
            setattr(state, _FALLBACK_ATTRIBUTE, clients)
        return clients.get(AsyncChatarminOS)
    if not isinstance(client, AsyncChatarminOS):
        raise TypeError(f"app.state.{STATE_ATTRIBUTE} is not an AsyncChatarminOS")
    return client


async def get_client(request: Request) -> AsyncChatarminOS:
    """Dependency: the app's :class:`~chatarmin_os.AsyncChatarminOS`.

    The lifespan's client; without :class:`ChatarminOSLifespan` (or while it is not running,
    as with a ``TestClient`` used outside ``with``), one made from the environment per event
    loop on first use. Override it in tests
    with ``app.dependency_overrides[get_client] = lambda: my_client``.
    """
    return _app_client(request)


class FeatureRefused(HTTPException):
    """The HTTP error a gate raises: ``detail`` is ``refusal.body()``."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(status_code=refusal.status, detail=refusal.body())
        self.refusal = refusal
        """The :class:`~chatarmin_os.fastapi.Refusal`: reason, feature, status, access."""


def track_usage_after_response(
    background_tasks: BackgroundTasks,
    client: AsyncChatarminOS,
    *,
    feature: str,
    external_org_id: str,
    quantity: int = 1,
    idempotency_key: str,
) -> None:
    """Track usage once the response is sent (a background task); errors are logged.

    For an amount known only at the end of your endpoint (``require_feature(...,
    track=True)`` holds its quantity in the gate instead). With a usage buffer the event is
    handed to it (``track_usage_later``), else ``billing.track_usage`` is called.
    """
    background_tasks.add_task(track, client, feature, external_org_id, quantity, idempotency_key)


def _org_parameter(source: OrgIdSource) -> inspect.Parameter | None:
    """The dependency's parameter that receives the org id, when FastAPI provides it."""
    if isinstance(source, DependsParam):
        return inspect.Parameter(
            "external_org_id", inspect.Parameter.KEYWORD_ONLY, default=source, annotation=Any
        )
    if isinstance(source, str):
        if not source.strip():
            raise ValueError("external_org_id: a header name must not be empty")
        return inspect.Parameter(
            "external_org_id",
            inspect.Parameter.KEYWORD_ONLY,
            default=Header(default=None, alias=source),
            annotation=str | None,
        )
    if callable(source):
        return None
    raise TypeError(
        "external_org_id must be a header name, a function of the request, or Depends(...)"
    )


async def _org_from(source: OrgIdSource, request: Request, given: Any) -> str | None:
    value: Any = given
    if not isinstance(source, (str, DependsParam)):
        value = source(request)
        if inspect.isawaitable(value):
            value = await value
    return org_value(value)


def require_feature(
    feature: str,
    *,
    external_org_id: OrgIdSource,
    quantity: int = 1,
    track: bool = False,
    meter: Meter = "after",
    statuses: Mapping[RefusalReason, int] | None = None,
    on_refusal: Callable[[Refusal], Exception] | None = None,
) -> Callable[..., AsyncIterator[FeatureAccess]]:
    """A dependency that gates the endpoint on ``feature`` and returns its ``FeatureAccess``.

    Use it as ``Depends(require_feature("ai_credit", external_org_id="X-Org-Id"))``, in the
    endpoint's parameters (``Annotated[FeatureAccess, Depends(...)]``) or its
    ``dependencies=[...]``. The access is the org's as it was before this request.

    Args:
        feature: the feature code.
        external_org_id: where the request names its organisation: a header name
            (``"X-Org-Id"``), a function of the ``Request`` returning the id or ``None``
            (sync or async), or ``Depends(your_dependency)`` returning it.
        quantity: how much the request needs; fewer remaining is ``feature_limit_reached``.
        track: take ``quantity`` of usage in the gate (see ``meter``). The idempotency key
            derives from the request's ``Idempotency-Key`` header, else is random.
        meter: with ``track=True``: ``"after"`` (default) holds ``quantity`` in the gate
            (``billing.reserve``: no round trip on a ledger hit) and commits it once the
            answer went out with a status below 400, releasing it after an error status,
            an exception or a cancellation; ``"before"`` meters it in the gate
            (``billing.track_usage``: one round trip, exact across processes without Redis,
            charged even when the endpoint then fails).
        statuses: other HTTP statuses for refusals, e.g. ``{"feature_limit_reached": 429}``.
        on_refusal: turn a :class:`Refusal` into the exception to raise (your own shape);
            default :class:`FeatureRefused`.

    Refusals: no org id -> 400 ``missing_org_id``; an org ChatarminOS does not know -> 403
    ``unknown_org``; not enabled -> 403 ``feature_not_enabled``; fewer than ``quantity``
    left (or no hold possible) -> 402 ``feature_limit_reached``; ChatarminOS unreachable
    or failing -> 503 ``unavailable`` (logged); an invalid or revoked API key -> 500
    ``misconfigured`` (logged once at ERROR). An unknown feature code raises
    ``NotFoundError`` (a bug).

    The status of the answer is seen by :class:`ChatarminOSLifespan`, which wraps the app's
    ASGI stack at startup; without it (no lifespan, or a ``TestClient`` outside ``with``)
    the hold is committed when the endpoint returns and released when it raises (a returned
    error status is then committed), and sent at once.
    """
    gate = Gate.create(feature, quantity=quantity, statuses=statuses, track=track, meter=meter)
    source = external_org_id
    org_parameter = _org_parameter(source)

    def refused(refusal: Refusal) -> Exception:
        return on_refusal(refusal) if on_refusal is not None else FeatureRefused(refusal)

    # FastAPI fills these keyword arguments by the signature set below (``external_org_id``
    # only when FastAPI reads the org id: a header or a Depends).
    async def require(
        *,
        request: Request,
        client: AsyncChatarminOS,
        external_org_id: Any = None,
    ) -> AsyncIterator[FeatureAccess]:
        org = await _org_from(source, request, external_org_id)
        if org is None:
            raise refused(gate.missing_org())
        key = idempotency_key(gate.feature, request.headers.get("idempotency-key"))
        outcome = await admit(client, gate, org, key)
        if isinstance(outcome, Refusal):
            raise refused(outcome)
        lifespans = getattr(request.app.state, STATE_ATTRIBUTE, None) is client
        if outcome.reservation is None or (lifespans and register(request.scope, outcome)):
            yield outcome.access  # nothing held, or settled by the status of the answer
            return
        # Not the running lifespan's client: settled when the endpoint returns or raises,
        # and sent at once (the client may be one of a loop that ends with this request).
        try:
            yield outcome.access
        except BaseException:
            with anyio.CancelScope(shield=True):
                await outcome.settle(False)
            raise
        await outcome.settle(True)
        await client.flush()

    parameters = [
        inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
        inspect.Parameter(
            "client",
            inspect.Parameter.KEYWORD_ONLY,
            default=Depends(get_client),
            annotation=AsyncChatarminOS,
        ),
    ]
    if org_parameter is not None:
        parameters.append(org_parameter)
    require.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=FeatureAccess
    )
    require.__name__ = require.__qualname__ = f"require_feature_{gate.feature}"
    require.__doc__ = f"Gate on the feature {gate.feature!r} (chatarmin_os.fastapi)."
    return require
