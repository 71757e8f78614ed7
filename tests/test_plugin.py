"""The pytest plugin, used the way a user would: from their own test files."""

from __future__ import annotations

import pytest

USER_APP = '''
from chatarmin_os import ChatarminOS, PreconditionFailedError


def summarise(client: ChatarminOS, org_id: str) -> str:
    """The user's feature: costs one AI credit, refuses when the plan is used up."""
    access = client.features.check_by_external_org_id(org_id, "ai_credit")
    if not access.can_use:
        return "upgrade"
    company = client.companies.get_by_product_link(external_org_id=org_id)
    assert company is not None
    try:
        client.billing.track_usage(company_id=company.id, feature_code="ai_credit", quantity=1)
    except PreconditionFailedError:
        return "upgrade"
    return "summary"
'''

USER_TESTS = """
import asyncio

from chatarmin_os.local import LocalEngine
from chatarmin_os.testing import LocalChatarminOS

import app


def test_metered(chatarmin_os_local, chatarmin_os_client):
    company_id = chatarmin_os_local.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 2}
    )
    assert app.summarise(chatarmin_os_client, "org_1") == "summary"
    assert app.summarise(chatarmin_os_client, "org_1") == "summary"
    assert app.summarise(chatarmin_os_client, "org_1") == "upgrade"
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 2)
    assert [e["quantity"] for e in chatarmin_os_local.usage_events(company_id)] == [1, 1]


def test_each_test_starts_empty(chatarmin_os_client):
    assert chatarmin_os_client.companies.get_by_product_link(external_org_id="org_1") is None


def test_custom_tier_and_feature(chatarmin_os_local, chatarmin_os_client):
    chatarmin_os_local.add_feature("exports", metered=True)
    chatarmin_os_local.add_tier("team", {"exports": {"limit": 5, "included": 1}, "sso": {}})
    company_id = chatarmin_os_local.add_company("Team Co", tier="team")
    access = chatarmin_os_client.features.check(company_id=company_id, feature_code="exports")
    assert (access.is_enabled, access.quantity_limit, access.included_quantity) == (True, 5, 1)
    assert chatarmin_os_client.features.check(company_id=company_id, feature_code="sso").is_enabled


def test_async_client(chatarmin_os_local, chatarmin_os_async_client):
    company_id = chatarmin_os_local.add_company(features=["sso"])

    async def main():
        return await chatarmin_os_async_client.features.check(
            company_id=company_id, feature_code="sso"
        )

    assert asyncio.run(main()).can_use is True


def test_assert_usage_explains_a_mismatch(chatarmin_os_local, chatarmin_os_client):
    company_id = chatarmin_os_local.add_company(limits={"ai_credit": None})
    chatarmin_os_client.billing.track_usage(
        company_id=company_id, feature_code="ai_credit", quantity=3, idempotency_key="k1"
    )
    try:
        chatarmin_os_local.assert_usage(company_id, "ai_credit", 4)
    except AssertionError as error:
        assert "expected 4 ai_credit" in str(error)
        assert "got 3" in str(error)
        assert "3 (key k1)" in str(error)
    else:
        raise AssertionError("assert_usage did not fail")


def test_outside_the_fixtures():
    local = LocalChatarminOS(LocalEngine())
    with local.client() as client:
        assert [t.code for t in client.tiers.list()] == ["free", "pro", "enterprise"]
    local.close()
"""


def test_a_users_tests_run_with_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app=USER_APP, test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6)


def test_a_failing_usage_assertion_fails_the_users_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fail="""
def test_wrong(chatarmin_os_local):
    company_id = chatarmin_os_local.add_company()
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 1)
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected 1 ai_credit tracked for *, got 0; events: none*"])


def test_the_fixtures_flush_buffered_usage_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_buffered='''
import asyncio

import pytest


@pytest.fixture
def checked_after_teardown(chatarmin_os_local):
    """Set up before the client fixture, so torn down after it: sees what it flushed."""
    company_id = chatarmin_os_local.add_company(limits={"ai_credit": None})
    yield company_id
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 3)


def test_sync(checked_after_teardown, chatarmin_os_client):
    for _ in range(3):
        chatarmin_os_client.billing.track_usage_later(
            company_id=checked_after_teardown, feature_code="ai_credit", quantity=1
        )


def test_async(checked_after_teardown, chatarmin_os_async_client):
    async def main():
        for _ in range(3):
            await chatarmin_os_async_client.billing.track_usage_later(
                company_id=checked_after_teardown, feature_code="ai_credit", quantity=1
            )

    asyncio.run(main())


def test_assert_after_flush(chatarmin_os_local, chatarmin_os_client):
    company_id = chatarmin_os_local.add_company(limits={"ai_credit": None})
    chatarmin_os_client.billing.track_usage_later(
        company_id=company_id, feature_code="ai_credit", quantity=2
    )
    assert chatarmin_os_client.flush() == 0
    chatarmin_os_local.assert_usage(company_id, "ai_credit", 2)
'''
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)


def test_assert_usage_lists_only_the_last_events_of_many() -> None:
    from chatarmin_os.testing import LocalChatarminOS

    local = LocalChatarminOS()
    company_id = local.add_company(limits={"ai_credit": None})
    with local.client() as client:
        for index in range(25):
            client.billing.track_usage(
                company_id=company_id,
                feature_code="ai_credit",
                quantity=1,
                idempotency_key=f"k{index}",
            )
    with pytest.raises(AssertionError) as info:
        local.assert_usage(company_id, "ai_credit", 26)
    message = str(info.value)
    assert "got 25; events: 25 in all, the last 20: 1 (key k5), " in message
    assert message.endswith("1 (key k24)")
    assert "(key k4)" not in message
    local.close()
