"""The live-server fixture and fault injection, used the way a user would: from their test files."""

from __future__ import annotations

import pytest

USER_APP = '''
"""The user's app: it makes its own client from OS_API_KEY / CHATARMIN_OS_BASE_URL."""
from chatarmin_os import ChatarminOS, ChatarminOSError


def remaining(org_id, **options):
    with ChatarminOS(**options) as client:
        try:
            return client.features.check_by_external_org_id(org_id, "ai_credit").remaining
        except ChatarminOSError as error:
            return type(error).__name__


def spend(org_id, **options):
    with ChatarminOS(**options) as client:
        company = client.companies.get_by_product_link(external_org_id=org_id)
        return client.billing.track_usage(
            company_id=company.id, feature_code="ai_credit", quantity=1
        )
'''

USER_TESTS = """
import os

import httpx
import pytest

from chatarmin_os import APIConnectionError, APITimeoutError, ChatarminOS, RateLimitError

import app

SEEN = {}


def test_the_environment_points_at_the_server(chatarmin_os_server):
    assert chatarmin_os_server.base_url.startswith("http://127.0.0.1:")
    assert chatarmin_os_server.base_url.endswith("/api/v1")
    assert os.environ["CHATARMIN_OS_BASE_URL"] == chatarmin_os_server.base_url
    assert os.environ["OS_API_KEY"] == chatarmin_os_server.api_key == "os_sk_local_dev"
    SEEN["base_url"] = chatarmin_os_server.base_url


def test_the_server_is_gone_after_its_test():
    assert "CHATARMIN_OS_BASE_URL" not in os.environ and "OS_API_KEY" not in os.environ
    with pytest.raises(httpx.ConnectError):
        httpx.get(SEEN["base_url"] + "/tiers.list")


def test_an_app_with_its_own_client(chatarmin_os_server):
    company_id = chatarmin_os_server.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 2}
    )
    assert app.remaining("org_1") == 2
    assert app.spend("org_1").remaining == 1
    chatarmin_os_server.assert_usage(company_id, "ai_credit", 1)


def test_the_server_shares_the_local_chatarmin_os(chatarmin_os_local, chatarmin_os_server):
    company_id = chatarmin_os_local.add_company("Acme", external_org_id="org_1", tier="pro")
    assert app.remaining("org_1") == 10000
    app.spend("org_1")
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 1)
    assert chatarmin_os_server.faults is chatarmin_os_local.faults


def test_retries_see_a_503_with_retry_after(chatarmin_os_server):
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", tier="free")
    chatarmin_os_server.faults.fail_next(
        "features.checkByExternalOrgId", times=2, status=503, retry_after=1
    )
    waits = []
    assert app.remaining("org_1", sleep=waits.append) == 100
    assert waits == [1.0, 1.0]
    assert [(f.procedure, f.kind, f.status) for f in chatarmin_os_server.faults.fired] == [
        ("features.checkByExternalOrgId", "status", 503)
    ] * 2
    assert chatarmin_os_server.faults.pending() == []


def test_too_many_429s_reach_the_app(chatarmin_os_server):
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", tier="free")
    chatarmin_os_server.faults.fail_next(
        "features.checkByExternalOrgId", times=3, status=429, retry_after=0
    )
    waits = []
    assert app.remaining("org_1", sleep=waits.append) == "RateLimitError"
    assert waits == [0.0, 0.0]
    assert app.remaining("org_1") == 100  # the faults are used up


def test_a_dropped_answer_is_retried_with_the_same_key(chatarmin_os_server):
    company_id = chatarmin_os_server.add_company("Acme", external_org_id="org_1", tier="free")
    chatarmin_os_server.faults.drop_next("billing.trackUsage")
    waits = []
    usage = app.spend("org_1", sleep=waits.append)
    assert usage.duplicate is True  # applied before the drop; the retry was recognised
    assert len(waits) == 1
    chatarmin_os_server.assert_usage(company_id, "ai_credit", 1)


def test_a_dropped_mutation_without_a_key_is_not_retried(chatarmin_os_server):
    chatarmin_os_server.faults.drop_next("companies.create")
    with ChatarminOS() as client, pytest.raises(APIConnectionError, match="RemoteProtocolError"):
        client.companies.create(name="Acme")
    # It was applied before the answer was dropped: the next "Acme" is the second one.
    assert chatarmin_os_server.client().companies.create(name="Acme").short_id == "acme-2"


def test_a_timeout_over_http(chatarmin_os_server):
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", tier="free")
    chatarmin_os_server.faults.timeout_next("features.checkByExternalOrgId")
    with ChatarminOS(timeout=0.2, max_retries=0) as client, pytest.raises(APITimeoutError):
        client.features.check_by_external_org_id("org_1", "ai_credit")
    assert app.remaining("org_1") == 100  # the server let go of the held request


def test_in_process_clients_see_the_faults(chatarmin_os_local, chatarmin_os_client):
    company_id = chatarmin_os_local.add_company(limits={"ai_credit": 10})
    chatarmin_os_local.faults.timeout_next("billing.trackUsage", applied=True)
    usage = chatarmin_os_client.billing.track_usage(
        company_id=company_id, feature_code="ai_credit", quantity=1
    )
    assert usage.duplicate is True
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 1)
    assert len(chatarmin_os_local.retry_waits) == 1  # recorded, not slept
    chatarmin_os_local.faults.fail_next("tiers.list", code="TOO_MANY_REQUESTS", times=3)
    with pytest.raises(RateLimitError, match="TOO_MANY_REQUESTS"):
        chatarmin_os_client.tiers.list()
"""


def test_the_live_server_and_faults_from_a_users_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_API_KEY", raising=False)
    monkeypatch.delenv("CHATARMIN_OS_BASE_URL", raising=False)
    pytester.makepyfile(app=USER_APP, test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=10)


def test_a_users_async_app_against_the_live_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_async="""
import asyncio

from chatarmin_os import AsyncChatarminOS


def test_async(chatarmin_os_server):
    chatarmin_os_server.add_company("Acme", external_org_id="org_1", tier="free")
    chatarmin_os_server.faults.fail_next("features.checkByExternalOrgId", status=502)
    waits = []

    async def main():
        async def sleep(seconds):
            waits.append(seconds)

        async with AsyncChatarminOS(sleep=sleep) as client:
            return await client.features.check_by_external_org_id("org_1", "ai_credit")

    assert asyncio.run(main()).remaining == 100
    assert len(waits) == 1
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
