"""``require_feature(..., track=True)``: the hold taken in the gate, committed or released by
the status of the answer (the lifespan's ASGI wrapper), and ``meter="before"``.

In-process: ``AsyncChatarminOS`` on the local engine, handed to the lifespan.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.needs import require

require("fastapi", "fastapi")

from fastapi import Depends, FastAPI, HTTPException, Request, Response  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from chatarmin_os import AsyncChatarminOS, FeatureAccess  # noqa: E402
from chatarmin_os.fastapi import ChatarminOSLifespan, flush, require_feature  # noqa: E402
from chatarmin_os.testing import ChatarminOSServer, LocalChatarminOS  # noqa: E402

ORG = {"X-Org-Id": "org_1"}
FAILURES = ["http_exception", "unhandled", "json_response", "injected_response", "conflict"]


def holding_app(client: AsyncChatarminOS, **gate: Any) -> FastAPI:
    """``/ok`` and the five ways an endpoint fails, each gated on ai_credit with a hold."""
    app = FastAPI(lifespan=ChatarminOSLifespan(client=client))
    credit = Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True, **gate))

    @app.post("/ok")
    async def ok(access: FeatureAccess = credit) -> dict[str, Any]:
        return {"remaining": access.remaining}

    @app.post("/http_exception", dependencies=[credit])
    async def http_exception() -> None:
        raise HTTPException(500, "failed")

    @app.post("/unhandled", dependencies=[credit])
    async def unhandled() -> None:
        raise RuntimeError("the endpoint broke")

    @app.post("/json_response", dependencies=[credit])
    async def json_response() -> JSONResponse:
        return JSONResponse({"error": "failed"}, status_code=500)

    @app.post("/injected_response", dependencies=[credit])
    async def injected_response(response: Response) -> dict[str, str]:
        response.status_code = 500
        return {"error": "failed"}

    @app.post("/conflict", dependencies=[credit])
    async def conflict() -> JSONResponse:
        return JSONResponse({"error": "conflict"}, status_code=409)

    return app


@pytest.fixture
def company_id(chatarmin_os_local: LocalChatarminOS) -> str:
    """org_1 with ai_credit limited to 3."""
    return chatarmin_os_local.add_company("Acme", external_org_id="org_1", limits={"ai_credit": 3})


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_answer_releases_the_hold(
    chatarmin_os_async_client: AsyncChatarminOS,
    chatarmin_os_local: LocalChatarminOS,
    company_id: str,
    failure: str,
) -> None:
    app = holding_app(chatarmin_os_async_client)
    with TestClient(app, raise_server_exceptions=False) as http:
        for _ in range(5):  # more failures than the limit: each hold is given back
            assert http.post(f"/{failure}", headers=ORG).status_code >= 400
        answers = [http.post("/ok", headers=ORG) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 402]
        assert [answer.json()["remaining"] for answer in answers[:3]] == [3, 2, 1]
        assert flush(http) == 0
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)
    assert len(chatarmin_os_local.usage_events(company_id)) == 3


def test_holds_are_exact_under_concurrent_requests(
    chatarmin_os_async_client: AsyncChatarminOS,
    chatarmin_os_local: LocalChatarminOS,
    company_id: str,
) -> None:
    import anyio
    import httpx

    app = holding_app(chatarmin_os_async_client)
    statuses: list[int] = []

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as http,
            anyio.create_task_group() as group,
        ):

            async def one() -> None:
                statuses.append((await http.post("/ok", headers=ORG)).status_code)

            for _ in range(12):
                group.start_soon(one)
        await chatarmin_os_async_client.flush()

    anyio.run(main)
    assert sorted(statuses) == [200] * 3 + [402] * 9
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)


def test_meter_before_charges_in_the_gate(
    chatarmin_os_async_client: AsyncChatarminOS,
    chatarmin_os_local: LocalChatarminOS,
    company_id: str,
) -> None:
    app = holding_app(chatarmin_os_async_client, meter="before")
    with TestClient(app, raise_server_exceptions=False) as http:
        assert http.post("/ok", headers=ORG).json() == {"remaining": 3}
        chatarmin_os_local.assert_usage(company_id, "ai_credit", 1)  # metered, no flush
        assert http.post("/json_response", headers=ORG).status_code == 500  # charged anyway
        assert http.post("/ok", headers={**ORG, "Idempotency-Key": "r1"}).json() == {"remaining": 1}
        refused = http.post("/ok", headers=ORG)
    assert refused.status_code == 402
    assert refused.json()["detail"] == {
        "error": "feature_limit_reached",
        "feature": "ai_credit",
        "message": "The usage limit of ai_credit is reached.",
        "remaining": 0,
        "limit": 3,
        "requested": 1,
    }
    events = chatarmin_os_local.usage_events(company_id)
    assert [event["quantity"] for event in events] == [1, 1, 1]
    assert events[2]["idempotencyKey"] == "ai_credit:r1"


def test_meter_needs_track() -> None:
    with pytest.raises(ValueError, match=r"give track=True"):
        require_feature("ai_credit", external_org_id="X-Org-Id", meter="before")
    with pytest.raises(ValueError, match="meter must be"):
        require_feature("ai_credit", external_org_id="X-Org-Id", track=True, meter="later")  # type: ignore[arg-type]


def test_a_refused_hold_of_a_disabled_feature_is_403(
    chatarmin_os_async_client: AsyncChatarminOS, chatarmin_os_local: LocalChatarminOS
) -> None:
    chatarmin_os_local.add_company("Free", external_org_id="org_2", tier="free")
    app = FastAPI(lifespan=ChatarminOSLifespan(client=chatarmin_os_async_client))

    @app.get(
        "/sso",
        dependencies=[Depends(require_feature("sso", external_org_id="X-Org-Id", track=True))],
    )
    async def sso() -> str:
        return "ok"

    with TestClient(app) as http:
        answer = http.get("/sso", headers={"X-Org-Id": "org_2"})
        unknown = http.get("/sso", headers={"X-Org-Id": "org_nobody"})
    assert (answer.status_code, answer.json()["detail"]["error"]) == (403, "feature_not_enabled")
    assert (unknown.status_code, unknown.json()["detail"]["error"]) == (403, "unknown_org")


def test_without_the_lifespan_an_exception_releases(
    chatarmin_os_local: LocalChatarminOS, company_id: str
) -> None:
    """No lifespan: settled when the endpoint returns (committed) or raises (released)."""
    client = chatarmin_os_local.async_client()
    app = FastAPI()
    credit = Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True))

    @app.post("/ok", dependencies=[credit])
    async def ok() -> str:
        return "ok"

    @app.post("/fails", dependencies=[credit])
    async def fails() -> None:
        raise HTTPException(500, "failed")

    from chatarmin_os.fastapi import get_client

    app.dependency_overrides[get_client] = lambda: client
    http = TestClient(app)
    assert [http.post("/fails", headers=ORG).status_code for _ in range(4)] == [500] * 4
    assert [http.post("/ok", headers=ORG).status_code for _ in range(4)] == [200, 200, 200, 402]
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)  # sent at once


def test_a_revoked_api_key_is_a_500_logged_once(
    chatarmin_os_server: ChatarminOSServer, caplog: pytest.LogCaptureFixture
) -> None:
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", limits={"ai_credit": 3})
    app = FastAPI(
        lifespan=ChatarminOSLifespan(
            api_key="os_sk_revoked", base_url=chatarmin_os_server.base_url, max_retries=0
        )
    )

    @app.get(
        "/",
        dependencies=[
            Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True))
        ],
    )
    async def index() -> str:
        return "ok"

    with TestClient(app) as http, caplog.at_level(logging.INFO, logger="chatarmin_os"):
        answers = [http.get("/", headers=ORG) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [500, 500, 500]
    assert answers[0].json()["detail"] == {
        "error": "misconfigured",
        "feature": "ai_credit",
        "message": "Feature entitlements are unavailable: misconfigured.",
    }
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "refuses this service's API key (AuthenticationError)" in errors[0].getMessage()
    assert "os_sk_revoked" not in caplog.text
    assert "answering from the cache" not in caplog.text
    assert "unavailable" not in caplog.text


def test_flush_needs_the_test_client_entered(chatarmin_os_async_client: AsyncChatarminOS) -> None:
    app = FastAPI(lifespan=ChatarminOSLifespan(client=chatarmin_os_async_client))
    with pytest.raises(RuntimeError, match="needs the TestClient entered"):
        flush(TestClient(app))
    with TestClient(app) as http:
        assert flush(http, timeout=5) == 0


def test_an_outage_with_nothing_cached_says_so(
    chatarmin_os_server: ChatarminOSServer, caplog: pytest.LogCaptureFixture
) -> None:
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", limits={"ai_credit": 3})
    app = FastAPI(lifespan=ChatarminOSLifespan(max_retries=0))  # the cache on, from the env

    @app.get("/", dependencies=[Depends(require_feature("ai_credit", external_org_id="X-Org-Id"))])
    async def index() -> str:
        return "ok"

    chatarmin_os_server.faults.fail_next("features.checkByExternalOrgId", status=503)
    with TestClient(app) as http, caplog.at_level(logging.INFO, logger="chatarmin_os"):
        answer = http.get("/", headers=ORG)
    assert (answer.status_code, answer.json()["detail"]["error"]) == (503, "unavailable")
    assert "cannot be reached" in caplog.text and "nothing cached to answer with" in caplog.text
    assert "answering from the cache" not in caplog.text


def test_a_client_gone_or_a_cancelled_request_releases_the_hold(
    chatarmin_os_async_client: AsyncChatarminOS,
    chatarmin_os_local: LocalChatarminOS,
    company_id: str,
) -> None:
    import anyio

    app = FastAPI(lifespan=ChatarminOSLifespan(client=chatarmin_os_async_client))
    credit = Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True))
    entered = anyio.Event()

    @app.post("/notices", dependencies=[credit])
    async def notices(request: Request) -> dict[str, bool]:
        return {"gone": await request.is_disconnected()}  # answers 200 to nobody

    @app.post("/ok", dependencies=[credit])
    async def ok() -> str:
        return "ok"

    @app.post("/waits", dependencies=[credit])
    async def waits() -> None:
        entered.set()
        await anyio.sleep_forever()

    def scope(path: str) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"x-org-id", b"org_1")],
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1),
        }

    async def main() -> list[int]:
        sent: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []  # the client is gone: receive says so

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async with app.router.lifespan_context(app):
            await app(scope("/notices"), receive, send)  # type: ignore[arg-type]
            assert sent[0]["status"] == 200
            async with anyio.create_task_group() as group:
                group.start_soon(app, scope("/waits"), receive, send)  # type: ignore[arg-type]
                await entered.wait()
                group.cancel_scope.cancel()  # the server cancels the request
            statuses = []
            for _ in range(4):
                sent.clear()
                messages.append({"type": "http.request", "body": b"", "more_body": False})
                await app(scope("/ok"), receive, send)  # type: ignore[arg-type]
                statuses.append(sent[0]["status"])
            await chatarmin_os_async_client.flush()
            return statuses

    # Wrapped by the lifespan when it runs through the app; here it is run directly.
    assert anyio.run(main) == [200, 200, 200, 402]
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)
