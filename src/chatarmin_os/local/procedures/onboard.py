"""``onboard``: one call that smart-links or creates the company, then sets up its billing."""

from __future__ import annotations

from typing import Any

from .._checks import ID, LABEL, OPTIONAL_ID, F, Obj, email, text, timestamp
from .._registry import mutation
from .._store import Store
from .billing import attach_subscription, claim, set_customer
from .companies import DEFAULT_MIN_CONFIDENCE, HINTS, create_company, smart_link_result
from .contacts import has_primary, upsert_contact
from .links import create_link
from .tiers import set_tier_features

__all__ = ["onboard"]


@mutation(
    "onboard",
    input=Obj(
        {
            "externalOrgId": ID,
            "label": F(text(max_length=1000), required=True),
            "hints": F(HINTS),
            "tierCode": OPTIONAL_ID,
            "checkoutSessionId": OPTIONAL_ID,
            "stripeSubscriptionId": OPTIONAL_ID,
            "stripeCustomerId": OPTIONAL_ID,
            "contactEmail": F(email),
            "contactName": LABEL,
            "createdAt": F(timestamp),
        }
    ),
)
def onboard(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``onboard``: smart-link or create, then claim, link, apply the tier, upsert the contact.

    ``already_linked`` and ``linked`` keep the smart-linked company; anything else creates
    one (named after ``hints.companyName``, else the domain, else the org id) and links it.
    ``billingStatus.claimed`` is true when the session's subscription belongs to this
    company; ``tierApplied`` when any tier was applied by this call. ``stripeCustomerId``
    without ``stripeSubscriptionId`` sets the billing profile; ``contactName`` without
    ``contactEmail`` is ignored. One transaction: a failing step leaves nothing behind.
    """
    external_org_id: str = args["externalOrgId"]
    hints: dict[str, Any] = args.get("hints", {})
    link = smart_link_result(store, external_org_id, args["label"], hints, DEFAULT_MIN_CONFIDENCE)
    if link["status"] in ("already_linked", "linked"):
        company = store.company(link["companyId"])
        link_status = link["status"]
    else:
        candidates = (hints.get("companyName"), hints.get("domain"), external_org_id)
        name = next(c.strip() for c in candidates if c is not None and c.strip())
        company = create_company(store, name, hints.get("domain"), args.get("createdAt"))
        create_link(store, company["id"], external_org_id, args["label"])
        link_status = "created"
    company_id: str = company["id"]
    billing: dict[str, Any] | None = None
    if any(key in args for key in ("checkoutSessionId", "stripeSubscriptionId", "tierCode")):
        billing = {"claimed": False, "linked": False, "tierApplied": False, "subscriptionId": None}
        if "checkoutSessionId" in args:
            claimed, owner = claim(store, company_id, args["checkoutSessionId"])
            if owner == company_id:
                billing["claimed"] = True
                billing["subscriptionId"] = claimed["subscriptionId"]
                if not claimed["alreadyClaimed"] and claimed["tierCode"] is not None:
                    billing["tierApplied"] = True
        if "stripeSubscriptionId" in args:
            linked = attach_subscription(
                store,
                company_id,
                args["stripeSubscriptionId"],
                args.get("stripeCustomerId"),
                args.get("tierCode"),
                None,
            )
            billing["linked"] = True
            billing["subscriptionId"] = linked["subscriptionId"]
            if linked["featuresApplied"] > 0:  # the subscription's tier: tierCode, if given
                billing["tierApplied"] = True
        if "tierCode" in args and not (billing["linked"] and billing["tierApplied"]):
            set_tier_features(store, company_id, args["tierCode"], {})
            billing["tierApplied"] = True
    if "stripeCustomerId" in args and "stripeSubscriptionId" not in args:
        set_customer(store, company_id, args["stripeCustomerId"])
    if "contactEmail" in args:
        contact: dict[str, Any] = {"email": args["contactEmail"]}
        if "contactName" in args:
            contact["name"] = args["contactName"]
        if not has_primary(store, company_id):
            contact["isPrimary"] = True
        upsert_contact(store, company_id, contact)
    return {
        "companyId": company_id,
        "companyName": company["name"],
        "linkStatus": link_status,
        "billingStatus": billing,
    }
