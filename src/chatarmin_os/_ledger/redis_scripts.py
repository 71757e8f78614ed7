"""The ledger in Redis: where an entry lives, and one Lua script per operation.

Each (product, company, feature) has five keys sharing one hash tag (so a Redis Cluster
keeps them on one node): ``e``, a hash of the figures (``loaded``, ``stale``, ``enabled``,
``limit`` — empty for none —, ``reported``, and the running sums ``held`` and ``flying``);
``h``/``hq``, the holds (a sorted set of hold ids by expiry, and their quantities); and
``f``/``fq``, the same for usage in flight, by idempotency key. A script checks and changes
them atomically, so processes and hosts sharing the Redis see one quota. Expired holds and
flights are purged by the scripts themselves; every write renews the keys' idle expiry.
Times are the clients' wall clocks (``time.time()``), in seconds.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .rules import HoldOutcome, HoldVerdict, LedgerFigures

__all__ = [
    "ACKNOWLEDGE",
    "COMMIT",
    "DROP",
    "FIGURES",
    "HOLD",
    "LOAD",
    "REFUSE",
    "RELEASE",
    "LedgerKeys",
    "parse_figures",
    "parse_hold",
]

_COMMON = """
local e, h, hq, f, fq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function touch(idle)
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], idle) end
end
local function purge(z, q, field, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 1000)
  while #gone > 0 do
    local total = 0
    local qs = redis.call('HMGET', q, unpack(gone))
    for i = 1, #gone do
      if qs[i] then total = total + tonumber(qs[i]) end
    end
    redis.call('ZREM', z, unpack(gone))
    redis.call('HDEL', q, unpack(gone))
    redis.call('HINCRBY', e, field, -total)
    gone = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 1000)
  end
end
local function forget(z, q, field, id)
  local qty = redis.call('HGET', q, id)
  if not qty then return 0 end
  redis.call('HDEL', q, id)
  redis.call('ZREM', z, id)
  redis.call('HINCRBY', e, field, -tonumber(qty))
  return 1
end
"""

HOLD = (
    _COMMON
    + """
-- ARGV: now, hold id, quantity, expires, refresh, idle ms
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', e, 'loaded', 'stale', 'enabled', 'limit', 'reported')
if not v[1] or v[2] == '1' or now - tonumber(v[1]) >= tonumber(ARGV[5]) then
  return {'miss'}
end
if v[3] ~= '1' then return {'disabled'} end
if v[4] == '' then return {'unlimited'} end
purge(h, hq, 'held', now)
purge(f, fq, 'flying', now)
local limit = tonumber(v[4])
local s = redis.call('HMGET', e, 'held', 'flying')
local left = limit - tonumber(v[5]) - tonumber(s[1] or '0') - tonumber(s[2] or '0')
local qty = tonumber(ARGV[3])
if qty > left then return {'refused', left, limit} end
redis.call('ZADD', h, ARGV[4], ARGV[2])
redis.call('HSET', hq, ARGV[2], qty)
redis.call('HINCRBY', e, 'held', qty)
touch(ARGV[6])
return {'held', left - qty, limit}
"""
)

LOAD = (
    _COMMON
    + """
-- ARGV: now, limit ('' for none), usage, enabled ('1'/'0'), refresh, idle ms
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', e, 'loaded', 'stale', 'reported')
local usage = tonumber(ARGV[3])
if v[1] and v[2] ~= '1' and now - tonumber(v[1]) < tonumber(ARGV[5]) then
  usage = math.max(usage, tonumber(v[3]))
end
redis.call('HSET', e, 'loaded', ARGV[1], 'stale', '0', 'enabled', ARGV[4], 'limit', ARGV[2],
  'reported', usage)
redis.call('HSETNX', e, 'held', 0)
redis.call('HSETNX', e, 'flying', 0)
touch(ARGV[6])
return 1
"""
)

COMMIT = (
    _COMMON
    + """
-- ARGV: hold id, quantity, idempotency key, expires, idle ms, now
local ends = redis.call('ZSCORE', h, ARGV[1])
local had = forget(h, hq, 'held', ARGV[1])
if ends and tonumber(ends) <= tonumber(ARGV[6]) then had = 0 end
local qty = tonumber(ARGV[2])
if qty > 0 then
  forget(f, fq, 'flying', ARGV[3])
  redis.call('ZADD', f, ARGV[4], ARGV[3])
  redis.call('HSET', fq, ARGV[3], qty)
  redis.call('HINCRBY', e, 'flying', qty)
  touch(ARGV[5])
end
return had
"""
)

RELEASE = (
    _COMMON
    + """
-- ARGV: hold id
return forget(h, hq, 'held', ARGV[1])
"""
)

ACKNOWLEDGE = (
    _COMMON
    + """
-- ARGV: idempotency key, usage ('' when unknown)
forget(f, fq, 'flying', ARGV[1])
if ARGV[2] ~= '' and redis.call('EXISTS', e) == 1 then
  local reported = tonumber(redis.call('HGET', e, 'reported') or '0')
  local usage = tonumber(ARGV[2])
  if usage > reported then redis.call('HSET', e, 'reported', usage) end
end
return 1
"""
)

REFUSE = (
    _COMMON
    + """
-- ARGV: idempotency key
forget(f, fq, 'flying', ARGV[1])
if redis.call('EXISTS', e) == 1 then redis.call('HSET', e, 'stale', '1') end
return 1
"""
)

DROP = (
    _COMMON
    + """
-- ARGV: idempotency key
return forget(f, fq, 'flying', ARGV[1])
"""
)

FIGURES = (
    _COMMON
    + """
-- ARGV: now
if redis.call('EXISTS', e) == 0 then return false end
local now = tonumber(ARGV[1])
purge(h, hq, 'held', now)
purge(f, fq, 'flying', now)
return redis.call('HMGET', e, 'limit', 'reported', 'held', 'flying', 'enabled')
"""
)


class LedgerKeys:
    """The Redis keys of one product's ledger entries."""

    __slots__ = ("base",)

    def __init__(self, prefix: str, product: str) -> None:
        self.base = f"{prefix}:{product}:q"

    def slot(self, company_id: str, feature_code: str) -> list[str]:
        """The five keys of one (company, feature), with one hash tag."""
        tag = hashlib.sha256(f"{company_id}\n{feature_code}".encode()).hexdigest()[:32]
        head = f"{self.base}:{{{tag}}}"
        return [f"{head}:e", f"{head}:h", f"{head}:hq", f"{head}:f", f"{head}:fq"]


_OUTCOMES: dict[str, HoldOutcome] = {
    name: name for name in ("held", "refused", "miss", "disabled", "unlimited")
}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_hold(reply: Any) -> HoldVerdict:
    """The :class:`HoldVerdict` of a ``HOLD`` reply."""
    text = _text(reply[0])
    outcome = _OUTCOMES.get(text)
    if outcome is None:
        raise ValueError(f"unexpected ledger reply {text[:20]!r}")
    if outcome == "held" or outcome == "refused":
        return HoldVerdict(outcome, remaining=int(reply[1]), limit=int(reply[2]))
    return HoldVerdict(outcome)


def parse_figures(reply: Any) -> LedgerFigures | None:
    """The :class:`LedgerFigures` of a ``FIGURES`` reply (``None``: no entry)."""
    if not reply:
        return None
    limit, reported, held, flying, enabled = (_text(v) if v is not None else "" for v in reply)
    return LedgerFigures(
        limit=int(limit) if limit else None,
        reported=int(reported or 0),
        held=int(held or 0),
        in_flight=int(flying or 0),
        enabled=enabled == "1",
    )
