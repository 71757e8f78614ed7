"""The Django integration through Django's test client, against the local ChatarminOS over HTTP.

The clients come from the environment the ``chatarmin_os_server`` fixture sets (no
``CHATARMIN_OS`` setting) unless a test overrides the setting; every test gets a fresh
server, so this also proves the process's clients follow a changed environment.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import pytest

from tests.support import django_settings
from tests.support.needs import require

require("django", "django")

django_settings.configure()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from chatarmin_os import ChatarminOS, ChatarminOSError, NotFoundError  # noqa: E402
from chatarmin_os.django import (  # noqa: E402
    client_options,
    get_async_client,
    get_client,
    require_feature,
    reset_clients,
)
from chatarmin_os.testing import ChatarminOSServer  # noqa: E402

ORG = {"headers": {"X-Org-Id": "org_1"}}


@pytest.fixture
def server(chatarmin_os_server: ChatarminOSServer) -> ChatarminOSServer:
    """The live server with org_1 on the free tier, ai_credit limited to 2."""
    chatarmin_os_server.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 2}
    )
    return chatarmin_os_server


@pytest.fixture
def http() -> Client:
    return Client()


def company_of(server: ChatarminOSServer, org: str) -> str:
    company = server.client().companies.get_by_product_link(external_org_id=org)
    assert company is not None
    return company.id


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_enabled_not_enabled_and_at_limit(
    server: ChatarminOSServer, http: Client, kind: str
) -> None:
    first = http.get(f"/{kind}/ai/", **ORG)
    assert (first.status_code, first.json()) == (200, {"remaining": 2, "enabled": True})
    second = http.get(f"/{kind}/ai/", **ORG)
    assert (second.status_code, second.json()) == (200, {"remaining": 1, "enabled": True})
    third = http.get(f"/{kind}/ai/", **ORG)
    assert third.status_code == 402
    assert third["Content-Type"] == "application/json"
    assert third.json() == {
        "error": "feature_limit_reached",
        "feature": "ai_credit",
        "message": "The usage limit of ai_credit is reached.",
        "remaining": 0,
        "limit": 2,
        "requested": 1,
    }
    sso = http.get(f"/{kind}/sso/", **ORG)
    assert sso.status_code == 403
    assert sso.json() == {
        "error": "feature_not_enabled",
        "feature": "sso",
        "message": "The feature sso is not enabled for this organisation.",
    }
    assert get_client().flush() == 0  # the commits went through the usage buffer
    server.assert_usage(company_of(server, "org_1"), "ai_credit", 2)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_missing_and_unknown_org(server: ChatarminOSServer, http: Client, kind: str) -> None:
    missing = http.get(f"/{kind}/ai/")
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "missing_org_id",
        "feature": "ai_credit",
        "message": "The request does not name an organisation.",
    }
    assert http.get(f"/{kind}/ai/", headers={"X-Org-Id": "  "}).status_code == 400
    unknown = http.get(f"/{kind}/ai/", headers={"X-Org-Id": "org_nobody"})
    assert unknown.status_code == 403
    assert unknown.json() == {
        "error": "unknown_org",
        "feature": "ai_credit",
        "message": "This organisation is not known to ChatarminOS.",
    }
    assert server.usage_events() == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_org_from_a_function_and_quantity(
    server: ChatarminOSServer, http: Client, kind: str
) -> None:
    server.add_company("Big", external_org_id="org_big", limits={"ai_credit": 5})
    assert http.get(f"/{kind}/five/?org=org_big").json() == {"remaining": 5, "enabled": True}
    short = http.get(f"/{kind}/five/?org=org_1")  # 2 left, 5 asked
    assert short.status_code == 402
    assert (short.json()["remaining"], short.json()["requested"]) == (2, 5)
    assert http.get(f"/{kind}/five/").status_code == 400


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_usage_is_tracked_once_per_idempotency_key(
    server: ChatarminOSServer, http: Client, kind: str
) -> None:
    headers = {"X-Org-Id": "org_1", "Idempotency-Key": "req-42"}
    assert http.get(f"/{kind}/ai/", headers=headers).status_code == 200
    assert http.get(f"/{kind}/ai/", headers=headers).status_code == 200  # a client's retry
    assert get_client().flush() == 0
    company_id = company_of(server, "org_1")
    assert [(e["quantity"], e["idempotencyKey"]) for e in server.usage_events(company_id)] == [
        (1, "ai_credit:req-42")
    ]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_failed_view_is_not_tracked(server: ChatarminOSServer, http: Client, kind: str) -> None:
    assert http.get(f"/{kind}/fails/", **ORG).status_code == 500
    assert server.usage_events() == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_failed_views_release_their_holds(
    server: ChatarminOSServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    http = Client(raise_request_exception=False)
    for _ in range(3):  # more failures than the limit of 2: each hold is given back
        assert http.get(f"/{kind}/fails/", **ORG).status_code == 500
        assert http.get(f"/{kind}/breaks/", **ORG).status_code == 500
    answers = [http.get(f"/{kind}/ai/", **ORG) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 402]
    assert [answer.json()["remaining"] for answer in answers[:2]] == [2, 1]
    assert get_client().flush() == 0
    server.assert_usage(company_of(server, "org_1"), "ai_credit", 2)


def test_meter_before_charges_in_the_gate(server: ChatarminOSServer, http: Client) -> None:
    company_id = company_of(server, "org_1")
    assert http.get("/async/before/", **ORG).status_code == 500  # charged anyway
    server.assert_usage(company_id, "ai_credit", 1)  # metered in the gate, no flush
    assert http.get("/sync/before/", **ORG).json() == {"remaining": 1, "enabled": True}
    refused = http.get("/sync/before/", **ORG)
    assert (refused.status_code, refused.json()["error"]) == (402, "feature_limit_reached")
    server.assert_usage(company_id, "ai_credit", 2)


def test_a_revoked_api_key_answers_500(
    server: ChatarminOSServer, http: Client, caplog: pytest.LogCaptureFixture
) -> None:
    options = {"API_KEY": "os_sk_revoked", "BASE_URL": server.base_url, "MAX_RETRIES": 0}
    with override_settings(CHATARMIN_OS=options), caplog.at_level(logging.INFO):
        answers = [http.get(f"/{kind}/ai/", **ORG) for kind in ("sync", "async", "sync")]
    assert [answer.status_code for answer in answers] == [500, 500, 500]
    assert answers[0].json()["error"] == "misconfigured"
    assert "os_sk_revoked" not in caplog.text
    assert "answering from the cache" not in caplog.text


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_chatarmin_os_unavailable_answers_503(
    server: ChatarminOSServer, http: Client, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(CHATARMIN_OS={"MAX_RETRIES": 0}):
        server.faults.fail_next("features.checkByExternalOrgId", status=503)
        with caplog.at_level(logging.WARNING, logger="chatarmin_os"):
            refused = http.get(f"/{kind}/ai/", **ORG)
    assert refused.status_code == 503
    assert refused.json() == {
        "error": "unavailable",
        "feature": "ai_credit",
        "message": "Feature entitlements are unavailable, please retry later.",
    }
    assert "ChatarminOS unavailable: InternalServerError" in caplog.text
    assert server.api_key not in caplog.text


def test_tracking_errors_are_logged_not_raised(
    server: ChatarminOSServer, http: Client, caplog: pytest.LogCaptureFixture
) -> None:
    server.faults.fail_next("billing.trackUsage", status=400, message="refused")
    with caplog.at_level(logging.WARNING, logger="chatarmin_os"):
        assert http.get("/sync/ai/", **ORG).status_code == 200
        assert get_client().flush() == 0
    assert server.usage_events() == []
    # The commit went through the usage buffer: its refusal goes to on_error (else the log).
    assert "refused: BadRequestError" in caplog.text
    assert "feature_code='ai_credit'" in caplog.text


def test_statuses_and_on_refusal(server: ChatarminOSServer, http: Client) -> None:
    server.faults.clear()
    server.add_company("Empty", external_org_id="org_0", limits={"ai_credit": 0})
    assert http.get("/sync/429/", headers={"X-Org-Id": "org_0"}).status_code == 429
    teapot = http.get("/sync/teapot/", **ORG)
    assert (teapot.status_code, teapot.json()) == (
        418,
        {"why": "feature_not_enabled", "org": "org_1"},
    )


def test_two_gates_on_one_view(server: ChatarminOSServer, http: Client) -> None:
    assert http.get("/sync/two/", **ORG).json() == {"ai_credit": 2, "team_seats": 3}


def test_an_unknown_feature_code_is_a_bug_not_a_refusal(server: ChatarminOSServer) -> None:
    http = Client(raise_request_exception=True)
    with pytest.raises(NotFoundError, match='Feature "no_such_feature" not found'):
        http.get("/sync/typo/", **ORG)


def test_settings_configure_the_client(
    server: ChatarminOSServer, http: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_API_KEY")
    monkeypatch.delenv("CHATARMIN_OS_BASE_URL")
    reset_clients()
    with pytest.raises(ChatarminOSError, match="No API key"):
        get_client()
    options = {"API_KEY": server.api_key, "BASE_URL": server.base_url, "TIMEOUT": 7.5}
    with override_settings(CHATARMIN_OS=options):
        assert client_options() == {
            "api_key": server.api_key,
            "base_url": server.base_url,
            "timeout": 7.5,
        }
        client = get_client()
        assert (str(client.base_url), client.timeout) == (server.base_url + "/", 7.5)
        assert get_client() is client
        assert http.get("/sync/ai/", **ORG).status_code == 200
        with override_settings(CHATARMIN_OS={**options, "MAX_RETRIES": 0}):
            changed = get_client()
            assert changed is not client and changed.max_retries == 0
        assert client.is_closed  # replaced on the setting change, and closed
    with pytest.raises(ChatarminOSError, match="No API key"):
        get_client()


def test_bad_settings_are_improperly_configured(server: ChatarminOSServer) -> None:
    with override_settings(CHATARMIN_OS={"RETRIES": 3}):
        with pytest.raises(ImproperlyConfigured, match=r"CHATARMIN_OS: .*retries"):
            get_client()
    with override_settings(CHATARMIN_OS=["API_KEY"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            get_client()


def test_clients_follow_the_environment(server: ChatarminOSServer) -> None:
    client = get_client()
    assert str(client.base_url) == server.base_url + "/"
    with ChatarminOSServer() as other:
        os.environ.update(other.environ())  # restored by the fixture's monkeypatch
        moved = get_client()
        assert moved is not client and str(moved.base_url) == other.base_url + "/"
        assert client.is_closed


def test_one_async_client_per_event_loop(server: ChatarminOSServer) -> None:
    async def twice() -> tuple[Any, Any]:
        return get_async_client(), get_async_client()

    first, again = asyncio.run(twice())
    assert first is again
    other, _ = asyncio.run(twice())
    assert other is not first


def test_a_forked_child_makes_its_own_client(server: ChatarminOSServer) -> None:
    parent = get_client()
    assert len(parent.tiers.list()) == 3  # a pooled connection is open now
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            child = get_client()
            ok = child is not parent and not parent.is_closed and len(child.tiers.list()) == 3
            status = 0 if ok else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert get_client() is parent
    assert len(parent.tiers.list()) == 3  # the parent's pool is intact


def test_declaration_errors() -> None:
    with pytest.raises(ValueError, match="feature must be"):
        require_feature("", external_org_id="X-Org-Id")
    with pytest.raises(ValueError, match="quantity must be"):
        require_feature("ai_credit", external_org_id="X-Org-Id", quantity=0)
    with pytest.raises(ValueError, match="header name must not be empty"):
        require_feature("ai_credit", external_org_id="")
    with pytest.raises(TypeError, match="external_org_id must be"):
        require_feature("ai_credit", external_org_id=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown refusal 'limit'"):
        require_feature("ai_credit", external_org_id="X", statuses={"limit": 429})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="must be an HTTP error status"):
        require_feature("ai_credit", external_org_id="X", statuses={"unavailable": 200})


def test_the_blocking_client_is_a_chatarmin_os(server: ChatarminOSServer) -> None:
    assert isinstance(get_client(), ChatarminOS)
