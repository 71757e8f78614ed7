"""The FastAPI integration through FastAPI's own TestClient, against the local ChatarminOS.

In-process (``AsyncChatarminOS`` on the local engine, handed to the lifespan) for the gate's
answers, and over HTTP (the live server, clients from the environment) for the lifespan's
own client and the fallback without a lifespan.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import pytest

from tests.support.needs import require

require("fastapi", "fastapi")

from fastapi import BackgroundTasks, Depends, FastAPI, Header, HTTPException, Request  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from chatarmin_os import AsyncChatarminOS, FeatureAccess, NotFoundError  # noqa: E402
from chatarmin_os.fastapi import (  # noqa: E402
    ChatarminOSLifespan,
    FeatureRefused,
    Refusal,
    flush,
    get_client,
    require_feature,
    track_usage_after_response,
)
from chatarmin_os.testing import ChatarminOSServer, LocalChatarminOS  # noqa: E402

ORG = {"X-Org-Id": "org_1"}


@pytest.fixture
def company_id(chatarmin_os_local: LocalChatarminOS) -> str:
    """org_1 on the free tier, ai_credit limited to 2."""
    return chatarmin_os_local.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 2}
    )


def gated_app(client: AsyncChatarminOS, **gate: Any) -> FastAPI:
    """An app with one endpoint gated on ai_credit (and one on sso)."""
    app = FastAPI(lifespan=ChatarminOSLifespan(client=client))
    options: dict[str, Any] = {"external_org_id": "X-Org-Id", **gate}

    # A default, not Annotated: with postponed annotations FastAPI evaluates an annotation
    # in the module's globals, where ``options`` does not exist.
    ai_credit = Depends(require_feature("ai_credit", **options))

    @app.post("/ai")
    async def ai(access: FeatureAccess = ai_credit) -> dict[str, Any]:
        return {"remaining": access.remaining, "feature": access.feature_code}

    @app.get("/sso", dependencies=[Depends(require_feature("sso", external_org_id="X-Org-Id"))])
    async def sso() -> dict[str, bool]:
        return {"sso": True}

    return app


@pytest.fixture
def http(chatarmin_os_async_client: AsyncChatarminOS, company_id: str) -> Iterator[TestClient]:
    with TestClient(gated_app(chatarmin_os_async_client, track=True)) as http:
        yield http


def test_enabled_not_enabled_and_at_limit(
    http: TestClient, chatarmin_os_local: LocalChatarminOS, company_id: str
) -> None:
    first = http.post("/ai", headers=ORG)
    assert (first.status_code, first.json()) == (200, {"remaining": 2, "feature": "ai_credit"})
    assert http.post("/ai", headers=ORG).json() == {"remaining": 1, "feature": "ai_credit"}
    limit = http.post("/ai", headers=ORG)
    assert limit.status_code == 402
    assert limit.json() == {
        "detail": {
            "error": "feature_limit_reached",
            "feature": "ai_credit",
            "message": "The usage limit of ai_credit is reached.",
            "remaining": 0,
            "limit": 2,
            "requested": 1,
        }
    }
    sso = http.get("/sso", headers=ORG)
    assert sso.status_code == 403
    assert sso.json() == {
        "detail": {
            "error": "feature_not_enabled",
            "feature": "sso",
            "message": "The feature sso is not enabled for this organisation.",
        }
    }
    assert flush(http) == 0  # the commits went through the client's usage buffer
    events = chatarmin_os_local.usage_events(company_id, "ai_credit")
    assert [event["quantity"] for event in events] == [1, 1]
    assert all(event["idempotencyKey"].startswith("ai_credit:") for event in events)
    assert events[0]["idempotencyKey"] != events[1]["idempotencyKey"]


def test_missing_and_unknown_org(http: TestClient, chatarmin_os_local: LocalChatarminOS) -> None:
    missing = http.post("/ai")
    assert missing.status_code == 400
    assert missing.json()["detail"] == {
        "error": "missing_org_id",
        "feature": "ai_credit",
        "message": "The request does not name an organisation.",
    }
    unknown = http.post("/ai", headers={"X-Org-Id": "org_nobody"})
    assert unknown.status_code == 403
    assert unknown.json()["detail"]["error"] == "unknown_org"
    assert chatarmin_os_local.usage_events() == []


def test_the_idempotency_key_comes_from_the_request(
    http: TestClient, chatarmin_os_local: LocalChatarminOS, company_id: str
) -> None:
    headers = {**ORG, "Idempotency-Key": "req-7"}
    assert http.post("/ai", headers=headers).status_code == 200
    assert http.post("/ai", headers=headers).status_code == 200  # the caller's retry
    assert flush(http) == 0
    events = chatarmin_os_local.usage_events(company_id)
    assert [(e["quantity"], e["idempotencyKey"]) for e in events] == [(1, "ai_credit:req-7")]


def test_quantity(chatarmin_os_async_client: AsyncChatarminOS, company_id: str) -> None:
    with TestClient(gated_app(chatarmin_os_async_client, quantity=3)) as http:
        short = http.post("/ai", headers=ORG)
    assert short.status_code == 402
    assert (short.json()["detail"]["remaining"], short.json()["detail"]["requested"]) == (2, 3)


def test_nothing_is_tracked_without_track_or_when_the_endpoint_fails(
    chatarmin_os_async_client: AsyncChatarminOS,
    chatarmin_os_local: LocalChatarminOS,
    company_id: str,
) -> None:
    app = gated_app(chatarmin_os_async_client)

    @app.post("/fails")
    async def fails(
        access: Annotated[
            FeatureAccess,
            Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True)),
        ],
    ) -> None:
        raise HTTPException(409, "the endpoint failed")

    with TestClient(app) as http:
        assert http.post("/ai", headers=ORG).status_code == 200
        assert http.post("/fails", headers=ORG).status_code == 409
    assert chatarmin_os_local.usage_events() == []


def test_statuses_and_on_refusal(
    chatarmin_os_async_client: AsyncChatarminOS, chatarmin_os_local: LocalChatarminOS
) -> None:
    chatarmin_os_local.add_company("Empty", external_org_id="org_0", limits={"ai_credit": 0})
    with TestClient(
        gated_app(chatarmin_os_async_client, statuses={"feature_limit_reached": 429})
    ) as http:
        assert http.post("/ai", headers={"X-Org-Id": "org_0"}).status_code == 429

    def teapot(refusal: Refusal) -> Exception:
        return HTTPException(418, {"why": refusal.reason, "org": refusal.external_org_id})

    with TestClient(gated_app(chatarmin_os_async_client, on_refusal=teapot)) as http:
        answer = http.post("/ai", headers={"X-Org-Id": "org_0"})
    assert (answer.status_code, answer.json()) == (
        418,
        {"detail": {"why": "feature_limit_reached", "org": "org_0"}},
    )


def test_chatarmin_os_unavailable_is_503_after_the_retries(
    chatarmin_os_local: LocalChatarminOS, company_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = chatarmin_os_local.async_client()  # retries record their waits, no sleeping
    chatarmin_os_local.faults.fail_next("features.checkByExternalOrgId", times=3, status=503)
    with TestClient(gated_app(client)) as http, caplog.at_level(logging.WARNING):
        answer = http.post("/ai", headers=ORG)
    assert answer.status_code == 503
    assert answer.json()["detail"]["error"] == "unavailable"
    assert len(chatarmin_os_local.retry_waits) == 2
    assert "ChatarminOS unavailable: InternalServerError" in caplog.text

    chatarmin_os_local.faults.timeout_next("features.checkByExternalOrgId", times=2)
    with TestClient(gated_app(client)) as http:
        assert http.post("/ai", headers=ORG).status_code == 200  # the third attempt answered


def test_tracking_errors_are_logged_not_raised(
    chatarmin_os_local: LocalChatarminOS, company_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``track_usage_after_response``: an amount tracked after the answer."""
    client = chatarmin_os_local.async_client()
    app = FastAPI(lifespan=ChatarminOSLifespan(client=client))

    @app.post("/ai")
    async def ai(
        background_tasks: BackgroundTasks,
        client: Annotated[AsyncChatarminOS, Depends(get_client)],
        access: Annotated[
            FeatureAccess, Depends(require_feature("ai_credit", external_org_id="X-Org-Id"))
        ],
    ) -> None:
        track_usage_after_response(
            background_tasks,
            client,
            feature="ai_credit",
            external_org_id="org_1",
            quantity=1,
            idempotency_key="ai_credit:r1",
        )

    chatarmin_os_local.faults.fail_next("billing.trackUsage", status=412, message="limit")
    with TestClient(app) as http, caplog.at_level(logging.WARNING):
        assert http.post("/ai", headers=ORG).status_code == 200
    assert chatarmin_os_local.usage_events() == []
    assert "Usage of ai_credit for org org_1 not tracked: PreconditionFailedError" in caplog.text


def test_an_unknown_feature_code_raises(
    chatarmin_os_async_client: AsyncChatarminOS, company_id: str
) -> None:
    app = FastAPI(lifespan=ChatarminOSLifespan(client=chatarmin_os_async_client))

    @app.get(
        "/typo", dependencies=[Depends(require_feature("no_such", external_org_id="X-Org-Id"))]
    )
    async def typo() -> None:
        return None

    with TestClient(app) as http, pytest.raises(NotFoundError, match='Feature "no_such"'):
        http.get("/typo", headers=ORG)


def test_org_id_sources(
    chatarmin_os_async_client: AsyncChatarminOS, chatarmin_os_local: LocalChatarminOS
) -> None:
    chatarmin_os_local.add_company("Acme", external_org_id="org_1", features=["sso"])

    async def from_path(request: Request) -> str | None:
        return request.path_params.get("org")

    def org_header(x_tenant: Annotated[str | None, Header()] = None) -> str | None:
        return x_tenant

    app = FastAPI(lifespan=ChatarminOSLifespan(client=chatarmin_os_async_client))
    sync_source = require_feature(
        "sso", external_org_id=lambda request: request.query_params.get("org")
    )
    async_source = require_feature("sso", external_org_id=from_path)
    dependency_source = require_feature("sso", external_org_id=Depends(org_header))

    @app.get("/query", dependencies=[Depends(sync_source)])
    async def query() -> str:
        return "ok"

    @app.get("/path/{org}", dependencies=[Depends(async_source)])
    async def by_path(org: str) -> str:
        return "ok"

    @app.get("/dependency", dependencies=[Depends(dependency_source)])
    async def dependency() -> str:
        return "ok"

    with TestClient(app) as http:
        assert http.get("/query?org=org_1").json() == "ok"
        assert http.get("/query").status_code == 400
        assert http.get("/path/org_1").json() == "ok"
        assert http.get("/path/org_2").status_code == 403
        assert http.get("/dependency", headers={"X-Tenant": "org_1"}).json() == "ok"
        assert http.get("/dependency").status_code == 400


def test_the_header_appears_in_openapi(chatarmin_os_async_client: AsyncChatarminOS) -> None:
    [parameter] = gated_app(chatarmin_os_async_client).openapi()["paths"]["/ai"]["post"][
        "parameters"
    ]
    assert (parameter["name"], parameter["in"], parameter["required"]) == (
        "X-Org-Id",
        "header",
        False,
    )


USER_MODULE = """
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI

from chatarmin_os import FeatureAccess
from chatarmin_os.fastapi import ChatarminOSLifespan, require_feature

app = FastAPI(lifespan=ChatarminOSLifespan())
AICredit = Annotated[FeatureAccess, Depends(require_feature("ai_credit", external_org_id="X-Org-Id"))]


@app.get("/annotated")
async def annotated(access: AICredit) -> dict[str, int | None]:
    return {"remaining": access.remaining}


@app.get("/default")
async def default(
    access: FeatureAccess = Depends(require_feature("ai_credit", external_org_id="X-Org-Id")),
) -> dict[str, int | None]:
    return {"remaining": access.remaining}
"""


def test_a_user_module_with_postponed_annotations(
    tmp_path: Path, chatarmin_os_server: ChatarminOSServer
) -> None:
    """``from __future__ import annotations`` + ``Annotated`` or a default: both resolve."""
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", limits={"ai_credit": 9})
    path = tmp_path / "user_app_future.py"
    path.write_text(USER_MODULE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("user_app_future", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["user_app_future"] = module
    try:
        spec.loader.exec_module(module)
        with TestClient(module.app) as http:
            assert http.get("/annotated", headers=ORG).json() == {"remaining": 9}
            assert http.get("/default", headers=ORG).json() == {"remaining": 9}
            assert http.get("/default").status_code == 400
    finally:
        del sys.modules["user_app_future"]


def test_the_lifespan_owns_a_client_from_the_environment(
    chatarmin_os_server: ChatarminOSServer,
) -> None:
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", limits={"ai_credit": 5})
    seen: list[AsyncChatarminOS] = []

    @asynccontextmanager
    async def users_lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        seen.append(app.state.chatarmin_os)  # ours runs first: the client is ready
        yield {"greeting": "hello"}

    app = FastAPI(lifespan=ChatarminOSLifespan(users_lifespan, max_retries=0, timeout=5.0))

    @app.get("/")
    async def index(
        request: Request,
        client: Annotated[AsyncChatarminOS, Depends(get_client)],
        access: Annotated[
            FeatureAccess, Depends(require_feature("ai_credit", external_org_id="X-Org-Id"))
        ],
    ) -> dict[str, Any]:
        return {
            "greeting": request.state.greeting,
            "same": client is request.app.state.chatarmin_os,
            "remaining": access.remaining,
        }

    with TestClient(app) as http:
        assert http.get("/", headers=ORG).json() == {
            "greeting": "hello",
            "same": True,
            "remaining": 5,
        }
        [client] = seen
        assert (client.max_retries, client.timeout) == (0, 5.0)
        assert str(client.base_url) == chatarmin_os_server.base_url + "/"
    assert client.is_closed
    assert not hasattr(app.state, "chatarmin_os")


def test_a_given_client_stays_open(chatarmin_os_server: ChatarminOSServer) -> None:
    given = chatarmin_os_server.async_client()
    app = FastAPI(lifespan=ChatarminOSLifespan(client=given))
    with TestClient(app):
        assert app.state.chatarmin_os is given
    assert not given.is_closed


def test_without_the_lifespan_clients_come_from_the_environment(
    chatarmin_os_server: ChatarminOSServer,
) -> None:
    """A TestClient outside ``with`` runs each request in a new event loop."""
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", limits={"ai_credit": 5})
    app = FastAPI()

    @app.get(
        "/",
        dependencies=[
            Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True))
        ],
    )
    async def index() -> str:
        return "ok"

    http = TestClient(app)
    assert [http.get("/", headers=ORG).status_code for _ in range(3)] == [200, 200, 200]
    company = chatarmin_os_server.client().companies.get_by_product_link(external_org_id="org_1")
    assert company is not None
    chatarmin_os_server.assert_usage(company.id, "ai_credit", 3)


def test_dependency_overrides_replace_the_client(
    chatarmin_os_local: LocalChatarminOS, company_id: str
) -> None:
    app = FastAPI()  # no lifespan, no environment: the override is the only client

    @app.get("/", dependencies=[Depends(require_feature("ai_credit", external_org_id="X-Org-Id"))])
    async def index() -> str:
        return "ok"

    client = chatarmin_os_local.async_client()
    app.dependency_overrides[get_client] = lambda: client
    assert TestClient(app).get("/", headers=ORG).json() == "ok"


def test_declaration_errors(chatarmin_os_async_client: AsyncChatarminOS) -> None:
    with pytest.raises(ValueError, match="quantity must be"):
        require_feature("ai_credit", external_org_id="X-Org-Id", quantity=True)
    with pytest.raises(ValueError, match="header name must not be empty"):
        require_feature("ai_credit", external_org_id=" ")
    with pytest.raises(TypeError, match="external_org_id must be"):
        require_feature("ai_credit", external_org_id=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="either client= or client options"):
        ChatarminOSLifespan(client=chatarmin_os_async_client, api_key="os_sk_x")
    with pytest.raises(TypeError, match="client must be an AsyncChatarminOS"):
        ChatarminOSLifespan(client="nope")  # type: ignore[arg-type]


def test_the_refusal_is_an_http_exception() -> None:
    refusal = Refusal("unknown_org", "sso", 403, "Unknown.", external_org_id="org_9")
    error = FeatureRefused(refusal)
    assert isinstance(error, HTTPException)
    assert (error.status_code, error.detail, error.refusal) == (
        403,
        {"error": "unknown_org", "feature": "sso", "message": "Unknown."},
        refusal,
    )
