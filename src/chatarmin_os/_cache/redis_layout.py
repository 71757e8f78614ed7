"""The cache's Redis layout: keys, entry and message encodings, Lua scripts, loading ``redis``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from .._exceptions import ConfigurationError
from .._models import (
    Company,
    FeatureAccess,
    FeatureAccessBase,
    FeatureAccessDetail,
    OrgFeatureAccess,
    UsageResult,
)
from .options import redacted_url
from .rules import Key, apply_usage

REDIS_TIMEOUT = 0.5
"""Seconds a Redis command (or connecting) may take before Redis counts as unreachable."""
REDIS_FIRST_BACKOFF = 0.5
REDIS_MAX_BACKOFF = 30.0

# -- Redis layout --------------------------------------------------------------------------
#
# Everything of one product lives under  chatarmin_os:cache:1:<product>  ("1" is the
# format: a new SDK that changes it reads and writes other keys). Two kinds of hashes:
#
#   <P>:c:<company_id>   chk:<feature>  an access (features.check)
#                        use:<feature>  the latest usage result ("<usage>|<json>")
#                        lst            features.list_access
#                        acc:<org>      features.get_access_by_external_org_id
#                        _g             the hash's generation
#   <P>:o:<org_id>       map            companies.get_by_product_link (a company or null)
#                        _g
#
# An entry is "<unix time fetched>|<the answer as JSON, wire names>". A hash expires
# (PEXPIRE) max(ttl, max_stale) after its last write. Invalidating a company or an org is
# one script: delete the hash and bump its generation; a load writes its answer only when
# the generation is the one it read before asking the server, so an answer that raced an
# invalidation is never stored. Changes are published on <P>:events for the other processes.

REDIS_PREFIX = "chatarmin_os:cache:1"

SET_IF_GENERATION = """
local g = redis.call('HGET', KEYS[1], '_g') or '0'
if g ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

INVALIDATE = """
for i, key in ipairs(KEYS) do
  local g = tonumber(redis.call('HGET', key, '_g') or '0') + 1
  redis.call('DEL', key)
  redis.call('HSET', key, '_g', g)
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""

# A later usage result replaces the overlay; an earlier one (a lower usage) means the cached
# figures cannot be trusted: the overlay, the access and the lists go, and loads ask again.
RECORD_USAGE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local u = tonumber(string.match(old, '^(%-?%d+)|'))
  if u and tonumber(ARGV[3]) < u then
    redis.call('HDEL', KEYS[1], ARGV[1], ARGV[2], 'lst')
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisKeys:
    """Where each cache key lives in Redis, for one product."""

    __slots__ = ("base", "channel")

    def __init__(self, product: str) -> None:
        self.base = f"{REDIS_PREFIX}:{product}"
        self.channel = f"{self.base}:events"

    def company(self, company_id: str) -> str:
        return f"{self.base}:c:{company_id}"

    def org(self, org: str) -> str:
        return f"{self.base}:o:{org}"

    def orgs_pattern(self) -> str:
        return f"{_glob_escape(self.base)}:o:*"

    def all_pattern(self) -> str:
        return f"{_glob_escape(self.base)}:*"

    def location(self, key: Key, company: str | None) -> tuple[str, str] | None:
        """The (hash, field) of a cache key; ``None`` when it has no place in Redis yet
        (an org's access before its company is known)."""
        kind = key[0]
        if kind == "c":
            return self.company(key[1]), f"chk:{key[2]}"
        if kind == "l":
            return self.company(key[1]), "lst"
        if kind == "o":
            return self.org(key[1]), "map"
        if kind == "a" and company is not None:
            return self.company(company), f"acc:{key[1]}"
        return None


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def encode_entry(value: Any, fetched_wall: float) -> str:
    """A cached answer as stored in Redis: ``"<unix time fetched>|<the answer as JSON>"``."""
    return f"{fetched_wall!r}|{json.dumps(_dump(value), separators=(',', ':'))}"


def _dump(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value.model_dump(mode="json", by_alias=True)


_list_of_details: Any = None


def decode_entry(kind: str, raw: bytes) -> tuple[Any, float]:
    """A Redis entry as (value with provenance ``"cache"``, unix time it was fetched).

    Raises ``ValueError`` (pydantic's ``ValidationError`` is one) for an entry this SDK
    cannot read.
    """
    global _list_of_details
    head, _, body = raw.partition(b"|")
    fetched = float(head)
    value: Any
    if kind == "c":
        value = FeatureAccess.model_validate_json(body)
    elif kind == "l":
        if _list_of_details is None:
            from pydantic import TypeAdapter

            _list_of_details = TypeAdapter(list[FeatureAccessDetail])
        value = _list_of_details.validate_json(body)
    elif kind == "a":
        value = OrgFeatureAccess.model_validate_json(body)
    elif kind == "o":
        value = None if body == b"null" else Company.model_validate_json(body)
    else:  # pragma: no cover - every kind is listed above
        raise ValueError(f"unknown cache kind {kind!r}")
    _mark_cached(value)
    return value, fetched


def _mark_cached(value: Any) -> None:
    """Say ``provenance="cache"`` on a value just decoded (nobody else holds it: no copy)."""
    if isinstance(value, (FeatureAccessBase, OrgFeatureAccess)):
        value.__pydantic_private__["_provenance"] = "cache"  # type: ignore[index]
        if isinstance(value, OrgFeatureAccess):
            for feature in value.features:
                _mark_cached(feature)
    elif isinstance(value, list):
        for item in value:
            _mark_cached(item)


def encode_usage(usage: UsageResult, wall: float) -> str:
    """A usage overlay: ``"<current_usage>|<json>"`` (Lua compares the number)."""
    data = {
        "t": wall,
        "f": usage.feature_code,
        "u": usage.current_usage,
        "q": usage.quantity_limit,
        "i": usage.included_quantity,
        "r": usage.remaining,
    }
    return f"{usage.current_usage}|{json.dumps(data, separators=(',', ':'))}"


def decode_usage(raw: bytes | str) -> tuple[UsageResult, float]:
    """An overlay as a ``UsageResult`` (enough of one to apply) and the unix time written."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    doc = json.loads(text.partition("|")[2])
    usage = UsageResult.model_construct(
        feature_code=doc["f"],
        current_usage=int(doc["u"]),
        quantity_limit=doc["q"],
        included_quantity=doc["i"],
        remaining=doc["r"],
        billable_quantity=0,
        is_at_limit=False,
        duplicate=False,
    )
    return usage, float(doc["t"])


def apply_overlays(value: Any, fetched_wall: float, overlays: Iterable[bytes | str | None]) -> Any:
    """``value`` with every usage overlay written after it was fetched applied."""
    for raw in overlays:
        if raw is None:
            continue
        try:
            usage, written = decode_usage(raw)
        except (ValueError, KeyError, TypeError):
            continue
        if written >= fetched_wall:
            new, fresh = apply_usage(value, usage)
            if fresh:
                value = new
    return value


def encode_message(src: str, ops: list[list[str]]) -> str:
    """A change published to the other processes: who sent it and what to drop."""
    return json.dumps({"src": src, "ops": ops}, separators=(",", ":"))


def decode_message(raw: bytes | str) -> tuple[str, list[list[str]]]:
    doc = json.loads(raw)
    ops = doc.get("ops")
    if not isinstance(ops, list):
        raise ValueError("no ops")
    return str(doc.get("src", "")), [op for op in ops if isinstance(op, list) and op]


def check_redis_url(url: str) -> None:
    """Parse ``url`` as the ``redis`` package will (``ConfigurationError`` when it cannot)."""
    try:
        _import_redis("redis.connection").parse_url(url)
    except ValueError as error:
        raise ConfigurationError(
            f"cache: redis_url {redacted_url(url)} cannot be used: {str(error)[:100]}"
        ) from None


def load_redis() -> Any:
    """The ``redis`` package (the blocking client)."""
    return _import_redis("redis")


def load_async_redis() -> Any:
    """``redis.asyncio`` (the asyncio client)."""
    return _import_redis("redis.asyncio")


def _import_redis(name: str) -> Any:
    from importlib import import_module

    try:
        return import_module(name)
    except ImportError:
        raise ConfigurationError(
            'cache: redis_url needs the redis package: pip install "chatarmin-os[redis]"'
        ) from None


_BLOCKING = object()


def redis_loop() -> object | None:
    """The blocking client's Redis works in any thread: always the same marker."""
    return _BLOCKING


def async_redis_loop() -> object | None:
    """The running asyncio loop (``redis.asyncio`` needs one), or ``None`` (e.g. under trio)."""
    import sys

    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    loop: object | None = asyncio._get_running_loop()
    return loop


def wall_clock() -> float:
    """Seconds since the epoch: the time entries carry between processes."""
    return time.time()
