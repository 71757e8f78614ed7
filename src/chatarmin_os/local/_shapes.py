"""Stored rows -> the wire contract's output shapes (camelCase dicts, datetimes for timestamps).

The local server's own idea of the contract's shapes: plain dicts, never the SDK's result
models, so the SDK's parsing is tested against an independent writer.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from ._store import parse_ts

__all__ = [
    "access",
    "company",
    "contact",
    "link",
    "subscription",
    "tier",
    "tier_summary",
]


def company(row: sqlite3.Row) -> dict[str, Any]:
    """``Company``."""
    return {
        "id": row["id"],
        "shortId": row["short_id"],
        "name": row["name"],
        "domain": row["domain"],
        "createdAt": parse_ts(row["created_at"]),
    }


def contact(row: sqlite3.Row, is_new: bool | None = None) -> dict[str, Any]:
    """``Contact`` (+ ``isNew`` when given)."""
    out: dict[str, Any] = {
        "id": row["id"],
        "companyId": row["company_id"],
        "email": row["email"],
        "name": row["name"],
        "role": row["role"],
        "isPrimary": bool(row["is_primary"]),
        "avatarUrl": row["avatar_url"],
        "metadata": json.loads(row["metadata"]),
        "createdAt": parse_ts(row["created_at"]),
        "updatedAt": parse_ts(row["updated_at"]),
    }
    if is_new is not None:
        out["isNew"] = is_new
    return out


def link(row: sqlite3.Row) -> dict[str, Any]:
    """``ProductLink``."""
    return {
        "id": row["id"],
        "companyId": row["company_id"],
        "externalOrgId": row["external_org_id"],
        "label": row["label"],
        "externalUserId": row["external_user_id"],
        "createdAt": parse_ts(row["created_at"]),
    }


def access(
    feature: sqlite3.Row, state: dict[str, Any], now: datetime, *, detail: bool
) -> dict[str, Any]:
    """``FeatureAccess`` or, with ``detail``, ``FeatureAccessDetail``.

    ``state`` is a company's access to ``feature`` (see ``procedures.features.load_access``);
    ``validUntil`` at or before ``now`` means not enabled.
    """
    valid_until: datetime | None = state["valid_until"]
    enabled = bool(state["is_enabled"]) and (valid_until is None or valid_until > now)
    limit: int | None = state["quantity_limit"]
    usage: int = state["current_usage"]
    out: dict[str, Any] = {
        "featureCode": feature["code"],
        "isEnabled": enabled,
        "canUse": enabled and (limit is None or usage < limit),
        "hasQuantity": bool(feature["metered"]),
        "currentUsage": usage,
        "quantityLimit": limit,
        "includedQuantity": state["included_quantity"],
        "remaining": None if limit is None else limit - usage,
    }
    if detail:
        out["featureName"] = feature["name"]
        out["configValues"] = state["config_values"]
        out["source"] = state["source"]
        out["validUntil"] = valid_until
    return out


def tier_summary(row: sqlite3.Row) -> dict[str, Any]:
    """``TierSummary``."""
    return {"code": row["code"], "name": row["name"], "description": row["description"]}


def tier(row: sqlite3.Row, features: list[sqlite3.Row]) -> dict[str, Any]:
    """``Tier``: ``features`` are its ``tier_features`` rows with ``feature_name``, in order."""
    base_fee = None
    price_ids: list[str] = []
    if row["base_price_id"] is not None:
        base_fee = {
            "stripe": {
                "priceId": row["base_price_id"],
                "unitAmount": row["base_unit_amount"],
                "currency": row["base_currency"],
                "interval": row["base_interval"],
            }
        }
        price_ids.append(row["base_price_id"])
    price_ids.extend(item["stripe_price_id"] for item in features if item["stripe_price_id"])
    return {
        **tier_summary(row),
        "baseFee": base_fee,
        "features": [
            {
                "code": item["feature_code"],
                "name": item["feature_name"],
                "configValues": json.loads(item["config_values"]),
            }
            for item in features
        ],
        "stripePriceIds": price_ids,
    }


def subscription(row: sqlite3.Row) -> dict[str, Any]:
    """``Subscription``: a ``subscriptions`` row joined with its tier's ``tier_name``."""
    return {
        "id": row["id"],
        "stripeSubscriptionId": row["stripe_subscription_id"],
        "status": row["status"],
        "displayName": row["display_name"],
        "tier": (
            {"code": row["tier_code"], "name": row["tier_name"]}
            if row["tier_name"] is not None
            else None
        ),
        "currentPeriodEnd": parse_ts(row["current_period_end"]),
    }
