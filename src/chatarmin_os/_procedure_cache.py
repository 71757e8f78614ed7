"""What the entitlement cache does for each procedure: the one table of caching rules.

Beside :data:`~chatarmin_os._procedures.PROCEDURES`, and read only by the cache. Every
procedure a resource sends through ``client._call_cached`` has a rule here; procedures
without one go through ``client._call`` and the cache never sees them. Three kinds of rules:

* :class:`Fills`: a query the cache answers. ``fields`` are the input's wire names whose
  values make its key (the kind names which of the cache's keys: ``"check"``,
  ``"org_check"``, ``"list_access"``, ``"org_access"``, ``"mapping"``); ``fallback`` names
  the input field holding the feature whose fallback policy may answer during an outage.
* :class:`Drops`: a mutation, and what it makes wrong (dropped here, in Redis and in the
  other processes, after the call, answered or not: an unanswered write may have been
  applied).
* :class:`TracksUsage`: ``billing.trackUsage``: its answer makes the cached quotas of the
  company's feature exact; a refusal (a limit, a disabled feature) expires them.

A new cached procedure is one line in :data:`CACHE_RULES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

__all__ = ["CACHE_RULES", "MAPPING_PATH", "MISS", "CacheRule", "Drops", "Fills", "TracksUsage"]

KeyKind: TypeAlias = Literal["check", "org_check", "list_access", "org_access", "mapping"]

_LETTERS: Final[dict[str, str]] = {
    "check": "c",
    "org_check": "oc",
    "list_access": "l",
    "org_access": "a",
    "mapping": "o",
}


@dataclass(frozen=True, slots=True)
class Fills:
    """A query the cache answers: the key it fills, made of these input fields' values."""

    kind: KeyKind
    fields: tuple[str, ...]
    fallback: str | None = None
    letter: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "letter", _LETTERS[self.kind])

    def key_of(self, payload: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The cache key of an input (``("c", company, feature)``, ...); ``None`` when a
        value is no string (such an input has no entry: it is checked, then refused)."""
        fields = self.fields
        first = payload.get(fields[0])
        if type(first) is not str:
            return None
        if len(fields) == 1:
            return (self.letter, first)
        second = payload.get(fields[1])
        return (self.letter, first, second) if type(second) is str else None


@dataclass(frozen=True, slots=True)
class Drops:
    """A mutation's invalidation: which entries go once it was sent.

    ``company``/``org``: the input fields naming the company whose entries and the org whose
    mapping go (absent or ``None`` in an input: nothing). ``company_record``: the company's
    org mappings go too (they hold its name and domain). ``org_company``: when the input
    names only the org, its company (looked up through the cached
    ``companies.getByProductLink``) goes too; when that lookup fails, everything goes.
    ``all_orgs``: every org mapping. ``result_company``: the answer's attribute naming a
    company whose entries go once answered.
    """

    company: str | None = None
    org: str | None = None
    company_record: bool = False
    org_company: bool = False
    all_orgs: bool = False
    result_company: str | None = None


@dataclass(frozen=True, slots=True)
class TracksUsage:
    """A usage call: its ``UsageResult`` updates the cached quotas of the input's company and
    feature; ``PRECONDITION_FAILED``/``FORBIDDEN`` marks them stale."""

    company: str
    feature: str


CacheRule: TypeAlias = Fills | Drops | TracksUsage

CACHE_RULES: Final[dict[str, CacheRule]] = {
    # queries: the key each fills
    "features.check": Fills("check", ("companyId", "featureCode"), fallback="featureCode"),
    "features.checkByExternalOrgId": Fills(
        "org_check", ("externalOrgId", "featureCode"), fallback="featureCode"
    ),
    "features.listAccess": Fills("list_access", ("companyId",)),
    "features.getAccessByExternalOrgId": Fills("org_access", ("externalOrgId",)),
    "companies.getByProductLink": Fills("mapping", ("externalOrgId",)),
    # mutations: what each drops
    "companies.create": Drops(org="externalOrgId"),
    "companies.update": Drops(company="companyId", company_record=True),
    "companies.smartLink": Drops(org="externalOrgId"),
    "features.setAccess": Drops(company="companyId", org="externalOrgId", org_company=True),
    "billing.trackUsage": TracksUsage(company="companyId", feature="featureCode"),
    "billing.claimCheckout": Drops(company="companyId"),
    "billing.linkSubscription": Drops(company="companyId"),
    "tiers.applyTier": Drops(company="companyId"),
    "links.create": Drops(company="companyId", org="externalOrgId"),
    "links.reset": Drops(all_orgs=True),
    "onboard": Drops(org="externalOrgId", result_company="company_id"),
}
"""Procedure path -> its caching rule (every procedure sent through ``_call_cached``)."""

MISS: Final[Any] = object()
"""What the cache's hit path answers when it cannot (``None`` is an answer: an unlinked org)."""

MAPPING_PATH: Final = "companies.getByProductLink"
"""The query that says which company an org is linked to (``org_company``, org checks)."""
