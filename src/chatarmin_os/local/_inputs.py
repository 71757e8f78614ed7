"""Input validators of every procedure of the wire contract (camelCase keys, strict)."""

from __future__ import annotations

from typing import Any

from ._validate import (
    F,
    Invalid,
    Obj,
    array,
    boolean,
    email,
    enum,
    ident,
    integer,
    json_object,
    mapping,
    number,
    text,
    timestamp,
)

__all__ = ["INPUTS", "NO_INPUT"]

SOURCES = ("subscription", "manual", "trial", "api")
"""Where a feature access row came from."""

_hints = Obj(
    {
        "companyName": F(text(max_length=1000)),
        "domain": F(text(max_length=1000)),
        "emails": F(array(email, max_items=1000)),
    }
)

_contact_fields = {
    "email": F(email, required=True),
    "name": F(text(max_length=1000)),
    "role": F(text(max_length=1000)),
    "isPrimary": F(boolean),
    "avatarUrl": F(text(max_length=4000)),
    "metadata": F(json_object),
}


def _one_of_company_or_org(values: dict[str, Any]) -> tuple[str, str] | None:
    """``features.setAccess`` takes exactly one of ``companyId`` and ``externalOrgId``."""
    given = [key for key in ("companyId", "externalOrgId") if key in values]
    if not given:
        return ("companyId", "required (or give externalOrgId instead)")
    if len(given) > 1:
        return ("externalOrgId", "give either companyId or externalOrgId, not both")
    return None


def _tier_override(value: Any, path: str) -> dict[str, Any]:
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


def _no_input(value: Any, path: str) -> dict[str, Any]:
    """A procedure without input ignores whatever it is given, as ``@trpc/server`` does."""
    return {}


NO_INPUT = _no_input
"""Validator of procedures that take no input."""

_company_id = F(ident, required=True)
_external_org_id = F(ident, required=True)
_feature_code = F(ident, required=True)
_domain = F(text(max_length=1000))

INPUTS: dict[str, Any] = {
    "companies.getByProductLink": Obj({"externalOrgId": _external_org_id}),
    "companies.create": Obj(
        {
            "name": F(ident, required=True),
            "domain": _domain,
            "externalOrgId": F(ident),
            "label": F(text(max_length=1000)),
            "contactEmail": F(email),
            "contactName": F(text(max_length=1000)),
            "createdAt": F(timestamp),
        }
    ),
    "companies.update": Obj(
        {
            "companyId": _company_id,
            "name": F(ident),
            "domain": _domain,
            "createdAt": F(timestamp),
        }
    ),
    "companies.smartLink": Obj(
        {
            "externalOrgId": _external_org_id,
            "label": F(text(max_length=1000), required=True),
            "hints": F(_hints),
            "minConfidence": F(number(0, 1)),
        }
    ),
    "contacts.create": Obj({"companyId": _company_id, **_contact_fields}),
    "contacts.bulkUpsert": Obj(
        {
            "companyId": _company_id,
            "contacts": F(array(Obj(_contact_fields), min_items=1, max_items=1000), required=True),
        }
    ),
    "contacts.list": Obj({"companyId": _company_id, "primaryOnly": F(boolean)}),
    "features.check": Obj({"companyId": _company_id, "featureCode": _feature_code}),
    "features.listAccess": Obj({"companyId": _company_id}),
    "features.setAccess": Obj(
        {
            "companyId": F(ident),
            "externalOrgId": F(ident),
            "featureCode": _feature_code,
            "isEnabled": F(boolean),
            "quantityLimit": F(integer(0), nullable=True),
            "includedQuantity": F(integer(0), nullable=True),
            "config": F(json_object),
            "source": F(enum(*SOURCES)),
            "validUntil": F(timestamp, nullable=True),
        },
        rule=_one_of_company_or_org,
    ),
    "features.getAccessByExternalOrgId": Obj({"externalOrgId": _external_org_id}),
    "features.checkByExternalOrgId": Obj(
        {"externalOrgId": _external_org_id, "featureCode": _feature_code}
    ),
    "billing.trackUsage": Obj(
        {
            "companyId": _company_id,
            "featureCode": _feature_code,
            "quantity": F(integer(1), required=True),
            "idempotencyKey": F(ident),
            "metadata": F(json_object),
        }
    ),
    "billing.claimCheckout": Obj(
        {"companyId": _company_id, "checkoutSessionId": F(ident, required=True)}
    ),
    "billing.linkSubscription": Obj(
        {
            "companyId": _company_id,
            "stripeSubscriptionId": F(ident, required=True),
            "stripeCustomerId": F(ident),
            "tierCode": F(ident),
            "displayName": F(text(max_length=1000)),
        }
    ),
    "billing.getStatus": Obj({"companyId": _company_id}),
    "tiers.list": NO_INPUT,
    "tiers.get": Obj({"tierCode": F(ident, required=True)}),
    "tiers.applyTier": Obj(
        {
            "tierCode": F(ident, required=True),
            "companyId": _company_id,
            "features": F(mapping(_tier_override)),
        }
    ),
    "links.create": Obj(
        {
            "companyId": _company_id,
            "externalOrgId": _external_org_id,
            "label": F(text(max_length=1000)),
            "externalUserId": F(ident),
        }
    ),
    "links.reset": Obj({"deleteContacts": F(boolean), "resetMrr": F(boolean)}),
    "onboard": Obj(
        {
            "externalOrgId": _external_org_id,
            "label": F(text(max_length=1000), required=True),
            "hints": F(_hints),
            "tierCode": F(ident),
            "checkoutSessionId": F(ident),
            "stripeSubscriptionId": F(ident),
            "stripeCustomerId": F(ident),
            "contactEmail": F(email),
            "contactName": F(text(max_length=1000)),
            "createdAt": F(timestamp),
        }
    ),
}
"""Validator of each procedure's input: ``(input, "") -> cleaned dict``."""
