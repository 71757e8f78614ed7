"""The aiohttp integration under aiohttp's own test server, against the local ChatarminOS.

In-process (the local client handed to ``setup``) for the gate's answers and holds; over
HTTP (the live server, a client from the environment on aiohttp's transport) for the
application's own client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.support.needs import require

require("aiohttp", "aiohttp")

from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from chatarmin_os import AsyncChatarminOS, NotFoundError  # noqa: E402
from chatarmin_os._aiohttp_transport import AioHttpTransport, DefaultAioHttpClient  # noqa: E402
from chatarmin_os.aiohttp import (  # noqa: E402
    ChatarminOSAiohttp,
    Refusal,
    feature_access,
    get_client,
    require_feature,
    setup,
)
from chatarmin_os.testing import ChatarminOSServer, LocalChatarminOS  # noqa: E402

ORG = {"X-Org-Id": "org_1"}
Run = Callable[[TestClient[web.Request, web.Application]], Awaitable[None]]


def serve(app: web.Application, run: Run) -> None:
    """Run ``run(http)`` against ``app`` on aiohttp's test server (startup to cleanup)."""

    async def main() -> None:
        async with TestClient(TestServer(app)) as http:
            await run(http)

    asyncio.run(main())


async def answer(request: web.Request, feature: str = "ai_credit") -> web.Response:
    access = feature_access(request, feature)
    return web.json_response({"remaining": access.remaining})


def gated_app(client: AsyncChatarminOS, **gate: Any) -> web.Application:
    """``/ai`` gated on ai_credit, ``/sso`` on sso, and the ways a handler fails."""
    app = web.Application()
    setup(app, client=client)
    ai_credit = require_feature("ai_credit", external_org_id="X-Org-Id", **gate)

    @ai_credit
    async def ai(request: web.Request) -> web.Response:
        return await answer(request)

    @require_feature("sso", external_org_id="X-Org-Id")
    async def sso(request: web.Request) -> web.Response:
        return await answer(request, "sso")

    @ai_credit
    async def returns_500(request: web.Request) -> web.Response:
        return web.json_response({"error": "failed"}, status=500)

    @ai_credit
    async def raises_500(request: web.Request) -> web.Response:
        raise web.HTTPInternalServerError()

    @ai_credit
    async def breaks(request: web.Request) -> web.Response:
        raise RuntimeError("the handler broke")

    @ai_credit
    async def redirects(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    app.router.add_post("/ai", ai)
    app.router.add_get("/sso", sso)
    app.router.add_post("/returns_500", returns_500)
    app.router.add_post("/raises_500", raises_500)
    app.router.add_post("/breaks", breaks)
    app.router.add_post("/redirects", redirects)
    return app


@pytest.fixture
def company_id(chatarmin_os_local: LocalChatarminOS) -> str:
    """org_1 on the free tier, ai_credit limited to 3."""
    return chatarmin_os_local.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 3}
    )


def test_refusals_and_holds(
    chatarmin_os_local: LocalChatarminOS, company_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = chatarmin_os_local.async_client()

    async def run(http: TestClient[web.Request, web.Application]) -> None:
        for path in ["/returns_500", "/raises_500", "/breaks"] * 2:  # each hold released
            assert (await http.post(path, headers=ORG)).status >= 500
        redirect = await http.post("/redirects", headers=ORG, allow_redirects=False)
        assert redirect.status == 302  # a success: committed
        remaining = []
        for _ in range(2):
            ok = await http.post("/ai", headers=ORG)
            assert ok.status == 200
            remaining.append((await ok.json())["remaining"])
        assert remaining == [2, 1]
        limit = await http.post("/ai", headers=ORG)
        assert limit.status == 402
        assert await limit.json() == {
            "error": "feature_limit_reached",
            "feature": "ai_credit",
            "message": "The usage limit of ai_credit is reached.",
            "remaining": 0,
            "limit": 3,
            "requested": 1,
        }
        sso = await http.get("/sso", headers=ORG)
        assert sso.status == 403
        assert (await sso.json())["error"] == "feature_not_enabled"
        missing = await http.post("/ai")
        assert (missing.status, (await missing.json())["error"]) == (400, "missing_org_id")
        unknown = await http.post("/ai", headers={"X-Org-Id": "org_nobody"})
        assert (unknown.status, (await unknown.json())["error"]) == (403, "unknown_org")
        assert await client.flush() == 0

    with caplog.at_level(logging.ERROR):
        serve(gated_app(client, track=True), run)
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)
    assert len(chatarmin_os_local.usage_events(company_id)) == 3


def test_holds_under_concurrent_requests(
    chatarmin_os_local: LocalChatarminOS, company_id: str
) -> None:
    client = chatarmin_os_local.async_client()
    statuses: list[int] = []

    async def run(http: TestClient[web.Request, web.Application]) -> None:
        async def one() -> None:
            statuses.append((await http.post("/ai", headers=ORG)).status)

        await asyncio.gather(*(one() for _ in range(15)))
        assert await client.flush() == 0

    serve(gated_app(client, track=True), run)
    assert sorted(statuses) == [200] * 3 + [402] * 12
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)


def test_meter_before(chatarmin_os_local: LocalChatarminOS, company_id: str) -> None:
    client = chatarmin_os_local.async_client()

    async def run(http: TestClient[web.Request, web.Application]) -> None:
        assert (await http.post("/returns_500", headers=ORG)).status == 500  # charged
        chatarmin_os_local.assert_usage(company_id, "ai_credit", 1)  # at once, no flush
        headers = {**ORG, "Idempotency-Key": "r1"}
        assert await (await http.post("/ai", headers=headers)).json() == {"remaining": 2}
        assert (await http.post("/ai", headers=ORG)).status == 200
        assert (await http.post("/ai", headers=ORG)).status == 402

    serve(gated_app(client, track=True, meter="before"), run)
    events = chatarmin_os_local.usage_events(company_id)
    assert [event["idempotencyKey"] for event in events][1] == "ai_credit:r1"
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)


def test_check_only_tracks_nothing_statuses_and_on_refusal(
    chatarmin_os_local: LocalChatarminOS, company_id: str
) -> None:
    chatarmin_os_local.add_company("Empty", external_org_id="org_0", limits={"ai_credit": 0})
    client = chatarmin_os_local.async_client()

    def teapot(request: web.Request, refusal: Refusal) -> web.Response:
        return web.json_response({"why": refusal.reason}, status=418)

    app = gated_app(client, statuses={"feature_limit_reached": 429})

    @require_feature("ai_credit", external_org_id=lambda r: r.query.get("org"), on_refusal=teapot)
    async def by_query(request: web.Request) -> web.Response:
        return await answer(request)

    async def from_path(request: web.Request) -> str | None:
        return request.match_info.get("org")

    @require_feature("ai_credit", external_org_id=from_path, quantity=3)
    async def by_path(request: web.Request) -> web.Response:
        return await answer(request)

    app.router.add_get("/query", by_query)
    app.router.add_get("/orgs/{org}", by_path)

    async def run(http: TestClient[web.Request, web.Application]) -> None:
        for _ in range(4):
            assert (await http.post("/ai", headers=ORG)).status == 200
        assert (await http.post("/ai", headers={"X-Org-Id": "org_0"})).status == 429
        teapot_answer = await http.get("/query?org=org_0")
        assert (teapot_answer.status, await teapot_answer.json()) == (
            418,
            {"why": "feature_limit_reached"},
        )
        assert await (await http.get("/query?org=org_1")).json() == {"remaining": 3}
        assert (await http.get("/orgs/org_1")).status == 200
        assert (await http.get("/orgs/org_0")).status == 402

    serve(app, run)
    assert chatarmin_os_local.usage_events() == []


def test_an_unknown_feature_code_raises(
    chatarmin_os_local: LocalChatarminOS, company_id: str
) -> None:
    client = chatarmin_os_local.async_client()
    app = web.Application()
    setup(app, client=client)
    raised: list[BaseException] = []

    @require_feature("no_such", external_org_id="X-Org-Id")
    async def typo(request: web.Request) -> web.Response:
        return web.Response(text="never")

    @web.middleware
    async def keep(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except NotFoundError as error:
            raised.append(error)
            raise

    app.middlewares.append(keep)
    app.router.add_get("/typo", typo)

    async def run(http: TestClient[web.Request, web.Application]) -> None:
        assert (await http.get("/typo", headers=ORG)).status == 500

    serve(app, run)
    [error] = raised
    assert 'Feature "no_such"' in str(error)


def test_the_app_owns_a_client_on_aiohttp(
    chatarmin_os_server: ChatarminOSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chatarmin_os.aiohttp

    made: list[DefaultAioHttpClient] = []

    def recording() -> DefaultAioHttpClient:
        made.append(DefaultAioHttpClient())
        return made[-1]

    monkeypatch.setattr(chatarmin_os.aiohttp, "DefaultAioHttpClient", recording)
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", limits={"ai_credit": 5})
    app = web.Application()
    extension = setup(app, max_retries=0)
    seen: list[AsyncChatarminOS] = []

    @require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
    async def index(request: web.Request) -> web.Response:
        seen.append(get_client(request))
        return await answer(request)

    sub = web.Application()  # a sub-application finds its parent's client
    sub.router.add_get("/", index)
    app.add_subapp("/sub", sub)
    app.router.add_get("/", index)

    async def run(http: TestClient[web.Request, web.Application]) -> None:
        assert await (await http.get("/", headers=ORG)).json() == {"remaining": 5}
        assert await (await http.get("/sub/", headers=ORG)).json() == {"remaining": 4}

    serve(app, run)
    first, second = seen
    assert first is second and first.max_retries == 0 and first.is_closed
    [http_client] = made  # the client sent through aiohttp, closed with the app
    assert isinstance(http_client._transport, AioHttpTransport) and http_client.is_closed
    assert first.cache is not None
    company = chatarmin_os_server.client().companies.get_by_product_link(external_org_id="org_1")
    assert company is not None
    chatarmin_os_server.assert_usage(company.id, "ai_credit", 2)  # flushed on cleanup
    with pytest.raises(RuntimeError, match="not running"):
        assert extension.client is None


def test_declaration_errors(chatarmin_os_local: LocalChatarminOS) -> None:
    client = chatarmin_os_local.async_client()
    with pytest.raises(TypeError, match="either client= or client options"):
        ChatarminOSAiohttp(client=client, api_key="os_sk_x")
    with pytest.raises(TypeError, match="client must be an AsyncChatarminOS"):
        ChatarminOSAiohttp(client="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="header name must not be empty"):
        require_feature("ai_credit", external_org_id=" ")
    with pytest.raises(TypeError, match="external_org_id must be"):
        require_feature("ai_credit", external_org_id=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give track=True"):
        require_feature("ai_credit", external_org_id="X", meter="before")

    @require_feature("ai_credit", external_org_id="X-Org-Id")
    async def index(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()  # no setup(app)
    app.router.add_get("/", index)
    raised: list[BaseException] = []

    @web.middleware
    async def keep(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except RuntimeError as error:
            raised.append(error)
            raise

    app.middlewares.append(keep)

    async def run(http: TestClient[web.Request, web.Application]) -> None:
        assert (await http.get("/", headers=ORG)).status == 500

    serve(app, run)
    assert "call chatarmin_os.aiohttp.setup(app) first" in str(raised[0])
