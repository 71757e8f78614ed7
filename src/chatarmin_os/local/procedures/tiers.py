"""``tiers.*``: the catalog's subscription tiers, and applying one to a company."""

from __future__ import annotations

import json
from typing import Any

from .._checks import ID, F, Invalid, Obj, integer, json_object, mapping
from .._errors import ProcedureError
from .._registry import mutation, query
from .._shapes import tier as shape_tier
from .._shapes import tier_summary as shape_tier_summary
from .._store import Store
from .features import load_access, save_access

__all__ = ["apply_tier", "get", "list_", "set_tier_features"]


def set_tier_features(
    store: Store, company_id: str, tier_code: str, overrides: dict[str, dict[str, Any]]
) -> int:
    """Give the company every feature of the tier (source ``subscription``); returns how many.

    Each feature's limits and ``configValues`` are the tier's, then the overrides:
    ``included_quantity`` → ``includedQuantity``, ``max_quantity`` → ``quantityLimit``, any
    other key merged into ``configValues``. Usage is kept; ``validUntil`` is cleared.
    """
    store.tier(tier_code)
    tier_features = store.rows(
        "SELECT tf.* FROM tier_features tf JOIN features f ON f.code = tf.feature_code"
        " WHERE tf.tier_code = ? ORDER BY tf.position",
        (tier_code,),
    )
    codes = {row["feature_code"] for row in tier_features}
    for code in overrides:
        if code not in codes:
            raise ProcedureError(
                "BAD_REQUEST",
                f'features.{code}: feature "{code}" is not part of tier "{tier_code}"',
            )
    for row in tier_features:
        code = row["feature_code"]
        limit: int | None = row["quantity_limit"]
        included: int | None = row["included_quantity"]
        config: dict[str, Any] = json.loads(row["config_values"])
        for key, value in overrides.get(code, {}).items():
            if key == "included_quantity":
                included = value
            elif key == "max_quantity":
                limit = value
            else:
                config[key] = value
        state = load_access(store, company_id, code)
        state.update(
            is_enabled=True,
            quantity_limit=limit,
            included_quantity=included,
            config_values=config,
            source="subscription",
            valid_until=None,
        )
        save_access(store, company_id, code, state)
    return len(tier_features)


def _override(value: Any, path: str) -> dict[str, Any]:
    """A per-feature override of ``tiers.applyTier``: free-form, two keys with known types."""
    result = json_object(value, path)
    issues: list[tuple[str, str]] = []
    for key in ("included_quantity", "max_quantity"):
        if key in result and result[key] is not None:
            try:
                integer(0)(result[key], f"{path}.{key}")
            except Invalid as error:
                issues.extend(error.issues)
    if issues:
        raise Invalid(issues)
    return result


@query("tiers.list", input=None)
def list_(store: Store, args: dict[str, Any]) -> list[dict[str, Any]]:
    """``tiers.list``: in catalog order."""
    return [shape_tier_summary(row) for row in store.rows("SELECT * FROM tiers ORDER BY position")]


@query("tiers.get", input=Obj({"tierCode": ID}))
def get(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``tiers.get``: with its base fee, features and Stripe price ids."""
    tier = store.tier(args["tierCode"])
    features = store.rows(
        "SELECT tf.*, f.name AS feature_name FROM tier_features tf"
        " JOIN features f ON f.code = tf.feature_code WHERE tf.tier_code = ?"
        " ORDER BY tf.position",
        (tier["code"],),
    )
    return shape_tier(tier, features)


@mutation(
    "tiers.applyTier",
    input=Obj({"tierCode": ID, "companyId": ID, "features": F(mapping(_override))}),
)
def apply_tier(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``tiers.applyTier`` (the SDK's ``tiers.apply``)."""
    company = store.company(args["companyId"])
    applied = set_tier_features(store, company["id"], args["tierCode"], args.get("features", {}))
    return {"companyId": company["id"], "tierCode": args["tierCode"], "featuresApplied": applied}
