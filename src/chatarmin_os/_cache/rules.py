"""The cache's rules for values: keys, outages, provenance, the margin rule, usage updates, TTLs."""

from __future__ import annotations

import math
import random
from typing import Any, TypeAlias

from .._exceptions import APIConnectionError, APIStatusError
from .._models import (
    Company,
    FeatureAccessBase,
    OrgFeatureAccess,
    Provenance,
    UsageResult,
)

__all__ = [
    "Key",
    "answer",
    "apply_usage",
    "company_of",
    "describe_key",
    "is_outage",
    "margin_units",
    "near_limit",
    "ttl_with_jitter",
    "with_provenance",
]

Key: TypeAlias = tuple[str, ...]


def is_outage(error: BaseException) -> bool:
    """Whether a failed call means ChatarminOS cannot answer (no answer, or a 5xx).

    Authentication, input and other 4xx errors, and answers of the wrong shape, are not: they
    are raised, never answered from the cache.
    """
    if isinstance(error, APIConnectionError):
        return True
    return isinstance(error, APIStatusError) and error.status_code >= 500


def describe_key(key: Key) -> str:
    """A key for log lines: ``check company/feature``, ``org org_1``, ..."""
    kind = {"c": "check", "l": "list_access", "a": "org_access", "o": "org", "oc": "org_check"}
    return f"{kind.get(key[0], key[0])} {'/'.join(key[1:])}"


def with_provenance(value: Any, provenance: Provenance) -> Any:
    """A copy of a cached value whose access answers say ``provenance``.

    Feature accesses (frozen) are copied with the new provenance; a list is copied item by
    item; an ``OrgFeatureAccess`` with its features; a ``Company`` is copied (it is not
    frozen: the caller may change theirs); ``None`` stays ``None``.
    """
    if isinstance(value, FeatureAccessBase):
        if value._provenance == provenance:
            return value
        copy = value.model_copy()
        copy.__pydantic_private__["_provenance"] = provenance  # type: ignore[index]
        return copy
    if isinstance(value, list):
        return [with_provenance(item, provenance) for item in value]
    if isinstance(value, OrgFeatureAccess):
        copy_org = value.model_copy(
            update={"features": [with_provenance(f, provenance) for f in value.features]}
        )
        copy_org.__pydantic_private__["_provenance"] = provenance  # type: ignore[index]
        return copy_org
    if isinstance(value, Company):
        return value.model_copy()
    return value


def answer(value: Any) -> Any:
    """What a fresh hit returns: the frozen access itself, or a copy of anything mutable."""
    if isinstance(value, FeatureAccessBase) or value is None:
        return value
    if isinstance(value, list):
        return list(value)
    if isinstance(value, OrgFeatureAccess):
        copy = value.model_copy(update={"features": list(value.features)})
        copy.__pydantic_private__["_provenance"] = "cache"  # type: ignore[index]
        return copy
    if isinstance(value, Company):
        return value.model_copy()
    return value


def company_of(key: Key, value: Any) -> str | None:
    """The company an entry belongs to (for invalidation and usage updates)."""
    kind = key[0]
    if kind in ("c", "l"):
        return key[1]
    if isinstance(value, OrgFeatureAccess):
        return value.company_id
    if isinstance(value, Company):
        return value.id
    return None


def margin_units(margin: float, quantity_limit: int) -> int:
    """How close to its limit an access must be for checks to go to the server."""
    return math.ceil(margin * quantity_limit) if margin > 0 else 0


def near_limit(value: Any, margin: float) -> bool:
    """Whether a cached value must not answer as fresh (the margin rule)."""
    if isinstance(value, FeatureAccessBase):
        return _near(value, margin)
    if isinstance(value, list):
        return any(isinstance(f, FeatureAccessBase) and _near(f, margin) for f in value)
    if isinstance(value, OrgFeatureAccess):
        return any(_near(f, margin) for f in value.features)
    return False


def _near(access: FeatureAccessBase, margin: float) -> bool:
    remaining, limit = access.remaining, access.quantity_limit
    if remaining is None or limit is None or remaining <= 0:
        return False
    return remaining <= margin_units(margin, limit)


def _usage_applies(access: FeatureAccessBase, usage: UsageResult) -> bool | None:
    """True: apply; False: older than what is cached (expire instead); None: other feature."""
    if access.feature_code != usage.feature_code:
        return None
    return not usage.duplicate and usage.current_usage >= access.current_usage


def _with_usage(access: Any, usage: UsageResult) -> Any:
    limit = usage.quantity_limit
    copy = access.model_copy(
        update={
            "current_usage": usage.current_usage,
            "quantity_limit": limit,
            "included_quantity": usage.included_quantity,
            "remaining": usage.remaining,
            "can_use": access.is_enabled and (limit is None or usage.current_usage < limit),
        }
    )
    copy.__pydantic_private__["_provenance"] = access._provenance
    return copy


def apply_usage(value: Any, usage: UsageResult) -> tuple[Any, bool]:
    """``value`` with ``usage`` applied, and whether it may still answer as fresh.

    Returns ``(value, True)`` untouched when ``usage`` is for another feature; ``(value,
    False)`` when ``usage`` is older than what is cached or a duplicate's first answer (the
    entry then expires: the next check asks the server).
    """
    if isinstance(value, FeatureAccessBase):
        verdict = _usage_applies(value, usage)
        if verdict is None:
            return value, True
        return (_with_usage(value, usage), True) if verdict else (value, False)
    if isinstance(value, list):
        items, fresh = [], True
        for item in value:
            new, ok = apply_usage(item, usage)
            items.append(new)
            fresh = fresh and ok
        return items, fresh
    if isinstance(value, OrgFeatureAccess):
        features, fresh = apply_usage(value.features, usage)
        copy = value.model_copy(update={"features": features})
        copy.__pydantic_private__["_provenance"] = value._provenance  # type: ignore[index]
        return copy, fresh
    return value, True


def ttl_with_jitter(ttl: float, jitter: float) -> float:
    return ttl * (1.0 + jitter * (2.0 * random.random() - 1.0)) if jitter else ttl
