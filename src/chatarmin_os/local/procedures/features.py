"""``features.*``: a company's access to the catalog's features, and its limits."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..._wire import FEATURE_SOURCES, dumps
from .._checks import ID, OPTIONAL_ID, F, Obj, boolean, enum, integer, json_object, timestamp
from .._registry import mutation, query
from .._shapes import access as shape_access
from .._store import Store, format_ts, parse_ts

__all__ = [
    "all_access",
    "check",
    "check_by_external_org_id",
    "get_access_by_external_org_id",
    "list_access",
    "load_access",
    "save_access",
    "set_access",
]


def load_access(store: Store, company_id: str, feature_code: str) -> dict[str, Any]:
    """The company's stored access to a feature, or the default: disabled, no limits."""
    row = store.one(
        "SELECT * FROM feature_access WHERE company_id = ? AND feature_code = ?",
        (company_id, feature_code),
    )
    return _state(row)


def _state(row: sqlite3.Row | None) -> dict[str, Any]:
    if row is None:
        return {
            "is_enabled": False,
            "quantity_limit": None,
            "included_quantity": None,
            "config_values": {},
            "source": "manual",
            "valid_until": None,
            "current_usage": 0,
        }
    return {
        "is_enabled": bool(row["is_enabled"]),
        "quantity_limit": row["quantity_limit"],
        "included_quantity": row["included_quantity"],
        "config_values": json.loads(row["config_values"]),
        "source": row["source"],
        "valid_until": parse_ts(row["valid_until"]),
        "current_usage": row["current_usage"],
    }


def save_access(store: Store, company_id: str, feature_code: str, state: dict[str, Any]) -> None:
    """Write a company's access to a feature (insert or replace)."""
    valid_until = state["valid_until"]
    store.execute(
        "INSERT OR REPLACE INTO feature_access (company_id, feature_code, is_enabled,"
        " quantity_limit, included_quantity, config_values, source, valid_until,"
        " current_usage, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            company_id,
            feature_code,
            int(state["is_enabled"]),
            state["quantity_limit"],
            state["included_quantity"],
            dumps(state["config_values"]),
            state["source"],
            format_ts(valid_until) if valid_until is not None else None,
            state["current_usage"],
            store.stamp,
        ),
    )


def all_access(store: Store, company_id: str) -> list[dict[str, Any]]:
    """``FeatureAccessDetail`` of every catalog feature for a company, by feature code."""
    stored = {
        row["feature_code"]: row
        for row in store.rows("SELECT * FROM feature_access WHERE company_id = ?", (company_id,))
    }
    return [
        shape_access(feature, _state(stored.get(feature["code"])), store.now, detail=True)
        for feature in store.rows("SELECT * FROM features ORDER BY code")
    ]


def _check(store: Store, company_id: str, feature_code: str) -> dict[str, Any]:
    feature = store.feature(feature_code)
    state = load_access(store, company_id, feature["code"])
    return shape_access(feature, state, store.now, detail=False)


@query("features.check", input=Obj({"companyId": ID, "featureCode": ID}))
def check(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``features.check``."""
    return _check(store, store.company(args["companyId"])["id"], args["featureCode"])


@query("features.listAccess", input=Obj({"companyId": ID}))
def list_access(store: Store, args: dict[str, Any]) -> list[dict[str, Any]]:
    """``features.listAccess``."""
    return all_access(store, store.company(args["companyId"])["id"])


def _one_of_company_or_org(values: dict[str, Any]) -> tuple[str, str] | None:
    """``features.setAccess`` takes exactly one of ``companyId`` and ``externalOrgId``."""
    given = [key for key in ("companyId", "externalOrgId") if key in values]
    if not given:
        return ("companyId", "required (or give externalOrgId instead)")
    if len(given) > 1:
        return ("externalOrgId", "give either companyId or externalOrgId, not both")
    return None


@mutation(
    "features.setAccess",
    input=Obj(
        {
            "companyId": OPTIONAL_ID,
            "externalOrgId": OPTIONAL_ID,
            "featureCode": ID,
            "isEnabled": F(boolean),
            "quantityLimit": F(integer(0), nullable=True),
            "includedQuantity": F(integer(0), nullable=True),
            "config": F(json_object),
            "source": F(enum(*FEATURE_SOURCES)),
            "validUntil": F(timestamp, nullable=True),
        },
        rule=_one_of_company_or_org,
    ),
)
def set_access(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``features.setAccess``: only the given fields change; ``config`` is merged key by key."""
    if "companyId" in args:
        company = store.company(args["companyId"])
    else:
        company = store.linked_company_or_404(args["externalOrgId"])
    feature = store.feature(args["featureCode"])
    state = load_access(store, company["id"], feature["code"])
    for key, column in (
        ("isEnabled", "is_enabled"),
        ("quantityLimit", "quantity_limit"),
        ("includedQuantity", "included_quantity"),
        ("validUntil", "valid_until"),
    ):
        if key in args:
            state[column] = args[key]
    if "config" in args:
        state["config_values"] = {**state["config_values"], **args["config"]}
    state["source"] = args.get("source", "manual")
    save_access(store, company["id"], feature["code"], state)
    return shape_access(feature, state, store.now, detail=True)


@query("features.getAccessByExternalOrgId", input=Obj({"externalOrgId": ID}))
def get_access_by_external_org_id(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``features.getAccessByExternalOrgId``."""
    company = store.linked_company_or_404(args["externalOrgId"])
    return {"companyId": company["id"], "features": all_access(store, company["id"])}


@query("features.checkByExternalOrgId", input=Obj({"externalOrgId": ID, "featureCode": ID}))
def check_by_external_org_id(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``features.checkByExternalOrgId``."""
    return _check(
        store, store.linked_company_or_404(args["externalOrgId"])["id"], args["featureCode"]
    )
