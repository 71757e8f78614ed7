"""The cache's options and rules on their own (``chatarmin_os._cache``): configuration checks,
jitter, the margin, usage application, the Redis encoding, provenance on the models."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import pytest

from chatarmin_os import (
    AsyncChatarminOS,
    CacheOptions,
    ChatarminOS,
    ConfigurationError,
    FeatureAccess,
    FeatureAccessBase,
    FeatureAccessDetail,
    UsageResult,
)
from chatarmin_os._cache.redis_layout import (
    apply_overlays,
    decode_entry,
    decode_message,
    encode_entry,
    encode_message,
    encode_usage,
)
from chatarmin_os._cache.rules import (
    apply_usage,
    is_outage,
    margin_units,
    near_limit,
    ttl_with_jitter,
)
from tests.support.helpers import API_KEY

ACCESS = FeatureAccess(
    feature_code="ai_credit",
    is_enabled=True,
    can_use=True,
    has_quantity=True,
    current_usage=10,
    quantity_limit=100,
    included_quantity=50,
    remaining=90,
)


def usage(current: int, *, limit: int | None = 100, duplicate: bool = False) -> UsageResult:
    return UsageResult(
        feature_code="ai_credit",
        current_usage=current,
        quantity_limit=limit,
        included_quantity=50,
        remaining=None if limit is None else limit - current,
        billable_quantity=max(0, current - 50),
        is_at_limit=limit is not None and current >= limit,
        duplicate=duplicate,
    )


# -- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 0}, "ttl must be above 0, got 0"),
        ({"ttl": float("nan")}, "ttl must be above 0"),
        ({"ttl": "5"}, "ttl must be a number, got str"),
        ({"jitter": 1.0}, "jitter must be at least 0 and below 1, got 1.0"),
        ({"max_stale": -1}, "max_stale must be at least 0"),
        ({"margin": 1}, "margin must be at least 0 and below 1"),
        ({"local_ttl": True}, "local_ttl must be a number, got bool"),
        ({"max_entries": 0}, "max_entries must be an int of at least 1, got 0"),
        ({"max_entries": 1.5}, "max_entries must be an int of at least 1"),
        ({"clock": 3}, "clock must be a function"),
        (
            {"redis_url": "http://cache:6379"},
            "redis_url must start with redis://, rediss:// or unix://",
        ),
        ({"redis_url": 6379}, "redis_url must be a string, got int"),
        ({"fallback": "ajar"}, "fallback['*'] must be 'open', 'closed', a FeatureAccess or a dict"),
        ({"fallback": ["open"]}, "fallback must be 'open', 'closed' or a dict"),
        ({"fallback": {"sso": 1}}, "fallback['sso'] must be 'open', 'closed'"),
        ({"fallback": {"": "open"}}, "fallback keys must be feature codes"),
        (
            {"fallback": {"sso": {"remaining": "lots"}}},
            "fallback['sso']: remaining: Input should be a valid integer",
        ),
    ],
)
def test_bad_options_are_refused_when_made(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CacheOptions(**options)
    assert message in str(info.value)


@pytest.mark.parametrize("cache", ["yes", 1, object()])
def test_cache_must_be_none_true_or_options(cache: Any) -> None:
    with pytest.raises(ConfigurationError, match="cache must be None, True or a CacheOptions"):
        ChatarminOS(api_key=API_KEY, cache=cache)
    with pytest.raises(ConfigurationError, match="cache must be None, True or a CacheOptions"):
        AsyncChatarminOS(api_key=API_KEY, cache=cache)


def test_a_redis_url_redis_cannot_parse_is_refused_when_made() -> None:
    with pytest.raises(ConfigurationError) as info:
        ChatarminOS(api_key=API_KEY, cache=CacheOptions(redis_url="redis://:pw@cache:port/0"))
    assert str(info.value) == (
        "cache: redis_url (not shown) cannot be used: Port could not be cast to integer value "
        "as 'port'"
    )


def test_true_and_false_and_none() -> None:
    assert CacheOptions.resolve(True) == CacheOptions()
    assert CacheOptions.resolve(None) is None and CacheOptions.resolve(False) is None
    with ChatarminOS(api_key=API_KEY, cache=True) as client:
        assert client.cache is not None and client.cache.options == CacheOptions()
    with ChatarminOS(api_key=API_KEY, cache=False) as client:
        assert client.cache is None


def test_the_defaults() -> None:
    options = CacheOptions()
    assert (options.ttl, options.jitter, options.max_entries, options.max_stale) == (
        5.0,
        0.1,
        10_000,
        600.0,
    )
    assert (options.margin, options.local_ttl, options.redis_url, options.fallback) == (
        0.05,
        1.0,
        None,
        None,
    )


def test_stats_read_as_attributes_items_or_a_dict() -> None:
    from chatarmin_os import CacheStats

    stats = CacheStats(hits=3, redis_errors=1, entries=2)
    assert (stats.hits, stats["hits"], stats.as_dict()["redis_errors"]) == (3, 3, 1)
    assert list(stats.as_dict()) == [
        "hits",
        "misses",
        "stale",
        "fallback",
        "refreshes",
        "coalesced",
        "usage_updates",
        "invalidations",
        "evictions",
        "redis_hits",
        "redis_misses",
        "redis_errors",
        "entries",
    ]
    with pytest.raises(KeyError):
        stats["nope"]


def test_the_repr_never_shows_a_redis_password() -> None:
    options = CacheOptions(redis_url="redis://:hunter2@cache.internal:6380/2", fallback="open")
    assert "hunter2" not in repr(options)
    assert "redis_url='redis://cache.internal:6380'" in repr(options)
    assert "fallback=['*']" in repr(options)


def test_fallback_values() -> None:
    options = CacheOptions(
        fallback={
            "sso": "open",
            "ai_credit": ACCESS,
            "team_seats": {"isEnabled": True, "canUse": True, "remaining": 3},
        }
    )
    sso, ai, seats = (options.fallback_for(f) for f in ("sso", "ai_credit", "team_seats"))
    assert options.fallback_for("other") is None
    assert sso is not None and (sso.is_enabled, sso.can_use, sso.remaining) == (True, True, None)
    assert ai is not None and ai == ACCESS and ai is not ACCESS
    assert seats is not None and (seats.is_enabled, seats.remaining, seats.quantity_limit) == (
        True,
        3,
        None,
    )
    assert {a.source for a in (sso, ai, seats)} == {"fallback"}
    assert CacheOptions(fallback="closed").fallback_for("x") == FeatureAccess(
        feature_code="x",
        is_enabled=False,
        can_use=False,
        has_quantity=False,
        current_usage=0,
        quantity_limit=None,
        included_quantity=None,
        remaining=None,
    )


# -- rules ---------------------------------------------------------------------------------


def test_jitter_stays_within_its_fraction() -> None:
    values = [ttl_with_jitter(5.0, 0.1) for _ in range(2000)]
    assert 4.5 <= min(values) < 4.6 and 5.4 < max(values) <= 5.5
    assert ttl_with_jitter(5.0, 0) == 5.0


@pytest.mark.parametrize(
    ("remaining", "limit", "margin", "near"),
    [
        (90, 100, 0.05, False),
        (6, 100, 0.05, False),
        (5, 100, 0.05, True),
        (1, 100, 0.05, True),
        (0, 100, 0.05, False),  # used up: cached (a denial until the limit changes)
        (-3, 100, 0.05, False),
        (1, 3, 0.05, True),  # at least one unit
        (2, 3, 0.05, False),
        (1, 100, 0, False),
        (None, None, 0.05, False),  # unlimited
    ],
)
def test_the_margin(remaining: int | None, limit: int | None, margin: float, near: bool) -> None:
    access = ACCESS.model_copy(update={"remaining": remaining, "quantity_limit": limit})
    assert near_limit(access, margin) is near
    assert near_limit([access], margin) is near


def test_margin_units() -> None:
    assert [margin_units(0.05, n) for n in (1, 19, 20, 21, 100, 10_000)] == [1, 1, 1, 2, 5, 500]
    assert margin_units(0, 100) == 0


def test_apply_usage() -> None:
    later, fresh = apply_usage(ACCESS, usage(40))
    assert fresh and (later.current_usage, later.remaining, later.can_use) == (40, 60, True)
    full, _ = apply_usage(ACCESS, usage(100))
    assert (full.remaining, full.can_use) == (0, False)
    unlimited, _ = apply_usage(ACCESS, usage(200, limit=None))
    assert (unlimited.remaining, unlimited.quantity_limit, unlimited.can_use) == (None, None, True)
    older, fresh = apply_usage(ACCESS, usage(9))
    assert older is ACCESS and not fresh
    duplicate, fresh = apply_usage(ACCESS, usage(40, duplicate=True))
    assert duplicate is ACCESS and not fresh
    other, fresh = apply_usage(ACCESS.model_copy(update={"feature_code": "sso"}), usage(40))
    assert other.current_usage == 10 and fresh
    disabled, _ = apply_usage(ACCESS.model_copy(update={"is_enabled": False}), usage(40))
    assert disabled.can_use is False


def test_is_outage() -> None:
    import httpx

    from chatarmin_os import (
        APIConnectionError,
        APIResponseValidationError,
        APITimeoutError,
        AuthenticationError,
        InternalServerError,
        RateLimitError,
    )

    request = httpx.Request("GET", "https://x.test/")

    def status(cls: Any, code: int) -> Any:
        return cls("x", response=httpx.Response(code), path="p", code=None)

    assert is_outage(APIConnectionError(request=request))
    assert is_outage(APITimeoutError(request))
    assert is_outage(status(InternalServerError, 502))
    assert not is_outage(status(AuthenticationError, 401))
    assert not is_outage(status(RateLimitError, 429))
    assert not is_outage(APIResponseValidationError("x", path="p", response=httpx.Response(200)))


# -- the Redis encoding --------------------------------------------------------------------


def test_entries_round_trip_with_server_extras() -> None:
    access = FeatureAccess.model_validate({**ACCESS.model_dump(by_alias=True), "region": "eu"})
    raw = encode_entry(access, 1700000000.25).encode()
    assert raw.startswith(b"1700000000.25|{")
    value, fetched = decode_entry("c", raw)
    assert value == access and value.model_extra == {"region": "eu"}
    assert (value.source, fetched) == ("cache", 1700000000.25)
    assert decode_entry("o", encode_entry(None, 1.0).encode()) == (None, 1.0)
    with pytest.raises(ValueError):
        decode_entry("c", b"garbage")


def test_usage_overlays_apply_only_after_the_entry_was_fetched() -> None:
    overlay = encode_usage(usage(40), 2000.0).encode()
    assert overlay.startswith(b"40|")
    assert apply_overlays(ACCESS, 1999.0, [overlay]).remaining == 60
    assert apply_overlays(ACCESS, 2001.0, [overlay]) is ACCESS  # the entry is newer
    assert apply_overlays(ACCESS, 1999.0, [b"junk", None]) is ACCESS


def test_messages_round_trip() -> None:
    raw = encode_message("me", [["c", "c1"], ["u", "c1", "ai_credit"], ["orgs"]])
    assert decode_message(raw) == ("me", [["c", "c1"], ["u", "c1", "ai_credit"], ["orgs"]])
    with pytest.raises(ValueError):
        decode_message('{"src": "x"}')


# -- provenance on the models --------------------------------------------------------------


def test_provenance_is_not_data() -> None:
    assert "source" not in FeatureAccess.model_fields
    assert "source" not in ACCESS.model_dump() and ACCESS.source == "live"
    detail = FeatureAccessDetail.model_validate(
        {
            **ACCESS.model_dump(by_alias=True),
            "featureName": "AI",
            "configValues": {},
            "source": "trial",
            "validUntil": None,
        }
    )
    assert (detail.source, detail.provenance) == ("trial", "live")
    assert isinstance(detail, FeatureAccessBase) and not isinstance(detail, FeatureAccess)
    copy = pickle.loads(pickle.dumps(ACCESS))
    assert copy == ACCESS and copy.source == "live"


def test_import_stays_light_and_redis_is_imported_only_for_redis_url() -> None:
    code = (
        "import sys, chatarmin_os\n"
        "from chatarmin_os import CacheOptions, ChatarminOS\n"
        "ChatarminOS(api_key='os_sk_x', cache=CacheOptions(fallback='open')).close()\n"
        "assert 'redis' not in sys.modules, 'redis imported without redis_url'\n"
        "ChatarminOS(api_key='os_sk_x', cache=CacheOptions(redis_url='redis://127.0.0.1:1')).close()\n"
        "assert 'redis' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_caching_rule_is_for_a_procedure_of_its_kind() -> None:
    from chatarmin_os._procedure_cache import CACHE_RULES, Drops, Fills, TracksUsage
    from chatarmin_os._procedures import PROCEDURES

    for path, rule in CACHE_RULES.items():
        kind = PROCEDURES[path]
        assert kind == ("query" if isinstance(rule, Fills) else "mutation"), path
        if isinstance(rule, Fills):
            assert rule.fallback is None or rule.fallback in rule.fields, path
    assert isinstance(CACHE_RULES["billing.trackUsage"], TracksUsage)
    assert CACHE_RULES["links.reset"] == Drops(all_orgs=True)
    assert CACHE_RULES["features.check"].key_of({"companyId": "c", "featureCode": "f"}) == (  # type: ignore[union-attr]
        "c",
        "c",
        "f",
    )
    assert CACHE_RULES["features.check"].key_of({"companyId": 1, "featureCode": "f"}) is None  # type: ignore[union-attr]
