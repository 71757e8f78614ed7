"""The entitlement cache: what the async and the blocking client share (no I/O, no waiting).

One concept per module: :mod:`.options` (:class:`CacheOptions`, :class:`CacheStats`, the
counters), :mod:`.rules` (keys, provenance, the margin rule, usage updates, outages),
:mod:`.memory` (the in-process LRU), :mod:`.outage` (when to try the server again),
:mod:`.redis_layout` (keys, encodings, Lua), :mod:`.redis_level` and :mod:`.core` (the cores
the twins in ``_async/_cache.py``, ``_async/_redis.py`` and their generated ``_sync/``
copies inherit). Which procedures the cache answers and what each write drops is declared in
:mod:`chatarmin_os._procedure_cache`.

The rules, in one place (the README's "Gating in the hot path" says the same for users):

* **Keys.** One cache per product (a hash of the API key and the base URL; never the key
  itself). In it: ``("c", company_id, feature_code)`` for ``features.check`` (and
  ``check_by_external_org_id``, once the org's company is known), ``("l", company_id)`` for
  ``features.list_access``, ``("a", external_org_id)`` for
  ``features.get_access_by_external_org_id`` and ``("o", external_org_id)`` for
  ``companies.get_by_product_link`` (the org -> company mapping, ``None`` included).
* **Fresh.** An entry answers for ``ttl`` seconds (± ``jitter``) after it was fetched; with
  Redis, the in-process copy for at most ``local_ttl`` seconds before it is read again.
* **Margin.** An access whose ``remaining`` is above 0 and at most ``ceil(margin ×
  quantity_limit)`` is never answered from the cache (it is stored already expired): the
  check goes to the server, because other processes may have used what is left.
* **Usage.** A ``UsageResult`` replaces usage, limit, included quantity, remaining and
  ``can_use`` of the company's cached entries for that feature when its usage is at least the
  cached one (later answers win); an older or duplicate answer expires them instead.
* **Outage.** A connection failure or a 5xx: an entry fetched less than ``max_stale`` seconds
  ago answers with ``provenance="stale"``; without one, the feature's fallback policy answers
  (``provenance="fallback"``); otherwise the error is raised. While the outage lasts, such
  answers are given without asking the server; from 1 s after the failure (doubling to 15 s)
  one background request at a time tries again, and its success ends the outage.
"""

from __future__ import annotations

from .options import CacheOptions, CacheStats, FallbackPolicy

__all__ = ["CacheOptions", "CacheStats", "FallbackPolicy"]
