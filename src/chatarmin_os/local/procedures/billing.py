"""``billing.*``: metered usage, Stripe checkout claims and subscriptions, billing status.

The local server cannot reach Stripe: checkout sessions and Stripe subscriptions come from
its catalog, and an unknown ``sub_…`` id given to ``billing.linkSubscription`` is trusted as
an active subscription.

Idempotency of ``billing.trackUsage``: a key is remembered per product (API key) and
company, with the call's ``featureCode``, ``quantity`` and ``metadata`` (a missing
``metadata`` is ``{}``). The same key with the same three answers the first call's figures
with ``duplicate: true`` and counts nothing; with any of them different it is ``CONFLICT``
naming the key, and counts nothing. A refused call (``FORBIDDEN``, ``PRECONDITION_FAILED``,
``BAD_REQUEST``) leaves no trace of its key. Usage never passes 2**53 - 1, the largest count
a JavaScript client reads exactly: beyond it a call is refused as over a limit.
"""

from __future__ import annotations

import json
from typing import Any

from ..._wire import MAX_SAFE_INTEGER, dumps
from .._checks import ID, LABEL, OPTIONAL_ID, F, Obj, integer, json_object
from .._errors import ProcedureError
from .._registry import mutation, query
from .._shapes import subscription as shape_subscription
from .._store import Store, new_id, parse_ts
from .features import all_access
from .tiers import set_tier_features

__all__ = [
    "ACTIVE_SUBSCRIPTION_STATUSES",
    "attach_subscription",
    "claim",
    "claim_checkout",
    "get_status",
    "link_subscription",
    "set_customer",
    "track_usage",
]

ACTIVE_SUBSCRIPTION_STATUSES = ("active", "trialing")
"""Subscription statuses that count as active (listed by getStatus, grant their tier)."""


# Made once: json.dumps with options builds an encoder on every call (most of its cost here).
_ENCODE_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True
).encode


def _json(value: Any, *, canonical: bool = False) -> str:
    return _ENCODE_CANONICAL(value) if canonical else dumps(value)


def _quoted(key: str) -> str:
    return json.dumps(key if len(key) <= 100 else key[:97] + "...", ensure_ascii=False)


# -- usage -----------------------------------------------------------------------------------

# The feature (metered?), the company's access to it (its limits and usage; all NULL without
# an access row, which reads as "not enabled") and the first call with this key (its figures),
# for ?1 company, ?2 feature, ?3 product, ?4 key; no row when the company or the feature
# does not exist.
_COUNTING_STATE = """
    SELECT f.metered, a.is_enabled, a.quantity_limit,
           a.included_quantity, a.valid_until, a.current_usage,
           e.feature_code, e.quantity, e.metadata, e.result
    FROM companies c
    JOIN features f ON f.code = ?2
    LEFT JOIN feature_access a ON a.company_id = c.id AND a.feature_code = f.code
    LEFT JOIN usage_events e
        ON e.product_id = ?3 AND e.company_id = c.id AND e.idempotency_key = ?4
    WHERE c.id = ?1
"""


def _usage_result(code: str, usage: int, limit: int | None, included: int | None) -> dict[str, Any]:
    """``billing.trackUsage``'s answer: the figures after counting, and what follows."""
    return {
        "featureCode": code,
        "currentUsage": usage,
        "quantityLimit": limit,
        "includedQuantity": included,
        "remaining": None if limit is None else limit - usage,
        "billableQuantity": max(0, usage - (included or 0)),
        "isAtLimit": limit is not None and usage >= limit,
        "duplicate": False,
    }


def _or_empty(value: int | None) -> str:
    return "" if value is None else str(value)


def _first_answer(code: str, stored: str) -> dict[str, Any]:
    """What the first call with a key answered, from its stored form: the usage after it, its
    limit and included quantity, ``"12,100,"`` (empty: none), the rest follows from them.
    (Databases written before stored the whole answer as JSON, three times the bytes of
    every event's row; those rows are read as they are.)"""
    if stored.startswith("{"):
        first: dict[str, Any] = json.loads(stored)
        return first
    usage, limit, included = stored.split(",")
    return _usage_result(
        code, int(usage), int(limit) if limit else None, int(included) if included else None
    )


@mutation(
    "billing.trackUsage",
    input=Obj(
        {
            "companyId": ID,
            "featureCode": ID,
            "quantity": F(integer(1), required=True),
            "idempotencyKey": OPTIONAL_ID,
            "metadata": F(json_object),
        }
    ),
)
def track_usage(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``billing.trackUsage``: count usage within the limit, idempotent per product and company."""
    company_id: str = args["companyId"]
    code: str = args["featureCode"]
    quantity: int = args["quantity"]
    metadata: dict[str, Any] = args.get("metadata", {})
    key: str | None = args.get("idempotencyKey")
    # One statement for everything counting reads (this runs for every event): the feature,
    # the company's access to it, and the first call with this key, if any.
    row = store.one(_COUNTING_STATE, (company_id, code, store.product, key))
    if row is None:  # no such company, or no such feature: say which
        store.company(company_id, "id")
        store.feature(code, "code")
        raise AssertionError("unreachable: the company and the feature exist")
    metered, is_enabled, limit, included, valid_until, usage = row[:6]
    seen_feature, seen_quantity, seen_metadata, seen_result = row[6:]
    if seen_result is not None:
        assert key is not None
        different = [
            name
            for name, same in (
                ("featureCode", seen_feature == code),
                ("quantity", seen_quantity == quantity),
                (
                    "metadata",
                    _json(json.loads(seen_metadata), canonical=True)
                    == _json(metadata, canonical=True),
                ),
            )
            if not same
        ]
        if different:
            raise ProcedureError(
                "CONFLICT",
                f"Idempotency key {_quoted(key)} was already used with another "
                f"{', '.join(different)}; use a new key for a different call",
            )
        return {**_first_answer(seen_feature, seen_result), "duplicate": True}
    if not metered:
        raise ProcedureError(
            "BAD_REQUEST", f'featureCode: feature "{code}" is not metered; usage cannot be tracked'
        )
    expiry = parse_ts(valid_until)
    if not is_enabled or (expiry is not None and expiry <= store.now):
        raise ProcedureError(
            "FORBIDDEN",
            f'Feature "{code}" is not enabled for this company'
            + (" (its access expired)" if is_enabled else ""),
        )
    ceiling = MAX_SAFE_INTEGER if limit is None else min(limit, MAX_SAFE_INTEGER)
    if usage + quantity > ceiling:  # unlimited still stops where JavaScript numbers do
        raise ProcedureError(
            "PRECONDITION_FAILED",
            f"Usage limit exceeded for {code}: {usage} + {quantity} > {ceiling}",
        )
    usage += quantity
    store.execute(
        "UPDATE feature_access SET current_usage = ?, updated_at = ?"
        " WHERE company_id = ? AND feature_code = ?",
        (usage, store.stamp, company_id, code),
    )
    result = _usage_result(code, usage, limit, included)
    store.execute(
        "INSERT INTO usage_events (id, product_id, company_id, feature_code, quantity,"
        " idempotency_key, metadata, result, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id(),
            store.product,
            company_id,
            code,
            quantity,
            key,
            _json(metadata) if metadata else "{}",
            f"{usage},{_or_empty(limit)},{_or_empty(included)}",  # see _first_answer
            store.stamp,
        ),
    )
    return result


# -- Stripe ----------------------------------------------------------------------------------


def set_customer(store: Store, company_id: str, customer_id: str | None) -> None:
    """Record the company's Stripe customer (its billing profile)."""
    if customer_id is not None:
        store.execute(
            "UPDATE companies SET stripe_customer_id = ?, updated_at = ? WHERE id = ?",
            (customer_id, store.stamp, company_id),
        )


def _insert_subscription(
    store: Store,
    company_id: str,
    *,
    stripe_subscription_id: str,
    stripe_customer_id: str | None,
    checkout_session_id: str | None,
    status: str,
    tier_code: str | None,
    display_name: str | None,
    current_period_end: str | None,
) -> str:
    """Store a subscription record; returns its (uuid) id."""
    if display_name is None and tier_code is not None:
        tier = store.one("SELECT name FROM tiers WHERE code = ?", (tier_code,))
        display_name = tier["name"] if tier is not None else None
    subscription_id = new_id()
    store.execute(
        "INSERT INTO subscriptions (id, company_id, stripe_subscription_id, stripe_customer_id,"
        " checkout_session_id, status, tier_code, display_name, current_period_end, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            subscription_id,
            company_id,
            stripe_subscription_id,
            stripe_customer_id,
            checkout_session_id,
            status,
            tier_code,
            display_name,
            current_period_end,
            store.stamp,
        ),
    )
    return subscription_id


def claim(store: Store, company_id: str, session_id: str) -> tuple[dict[str, Any], str]:
    """Claim a completed checkout session; returns the result and the owner company's id.

    A session whose Stripe subscription is already recorded counts as claimed (by its
    owner, which may be another company).
    """
    session = store.one("SELECT * FROM checkout_sessions WHERE id = ?", (session_id,))
    if session is None:
        raise ProcedureError("NOT_FOUND", f'Checkout session "{session_id}" not found')
    if session["status"] != "complete":
        raise ProcedureError(
            "PRECONDITION_FAILED",
            f'Checkout session "{session_id}" is not complete (status: {session["status"]})',
        )
    stripe_id: str = session["stripe_subscription_id"]
    existing = store.one(
        "SELECT * FROM subscriptions WHERE checkout_session_id = ? OR stripe_subscription_id = ?"
        " ORDER BY seq LIMIT 1",
        (session_id, stripe_id),
    )
    if existing is not None:
        result = {
            "subscriptionId": existing["id"],
            "alreadyClaimed": True,
            "tierCode": existing["tier_code"] or session["tier_code"],
            "featuresApplied": 0,
        }
        return result, existing["company_id"]
    stripe_sub = store.one("SELECT * FROM stripe_subscriptions WHERE id = ?", (stripe_id,))
    customer = session["stripe_customer_id"] or (stripe_sub["customer_id"] if stripe_sub else None)
    tier_code: str | None = session["tier_code"]
    subscription_id = _insert_subscription(
        store,
        company_id,
        stripe_subscription_id=stripe_id,
        stripe_customer_id=customer,
        checkout_session_id=session_id,
        status="active",
        tier_code=tier_code,
        display_name=stripe_sub["display_name"] if stripe_sub else None,
        current_period_end=stripe_sub["current_period_end"] if stripe_sub else None,
    )
    set_customer(store, company_id, customer)
    applied = set_tier_features(store, company_id, tier_code, {}) if tier_code is not None else 0
    result = {
        "subscriptionId": subscription_id,
        "alreadyClaimed": False,
        "tierCode": tier_code,
        "featuresApplied": applied,
    }
    return result, company_id


def attach_subscription(
    store: Store,
    company_id: str,
    stripe_id: str,
    customer_id: str | None,
    tier_code: str | None,
    display_name: str | None,
) -> dict[str, Any]:
    """Link a Stripe subscription (from the catalog, or a trusted ``sub_…``); apply its tier.

    A tier is applied only for an ``active`` or ``trialing`` subscription. A
    ``stripeCustomerId`` contradicting the catalog, and an unknown id not starting with
    ``sub_``, are ``BAD_REQUEST``; a subscription linked to another company is ``CONFLICT``.
    """
    if tier_code is not None:
        store.tier(tier_code)
    existing = store.one(
        "SELECT * FROM subscriptions WHERE stripe_subscription_id = ?", (stripe_id,)
    )
    if existing is not None:
        if existing["company_id"] != company_id:
            raise ProcedureError(
                "CONFLICT", f'Stripe subscription "{stripe_id}" is linked to another company'
            )
        return {"subscriptionId": existing["id"], "alreadyLinked": True, "featuresApplied": 0}
    known = store.one("SELECT * FROM stripe_subscriptions WHERE id = ?", (stripe_id,))
    if known is not None:
        if customer_id is not None and known["customer_id"] not in (None, customer_id):
            raise ProcedureError(
                "BAD_REQUEST",
                f'stripeCustomerId: Stripe subscription "{stripe_id}" belongs to customer'
                f' "{known["customer_id"]}", not "{customer_id}"',
            )
        customer = customer_id or known["customer_id"]
        status: str = known["status"]
        tier = tier_code or known["tier_code"]
        display = display_name or known["display_name"]
        period_end = known["current_period_end"]
    elif stripe_id.startswith("sub_"):
        # The local server cannot ask Stripe: an unknown sub_… id is trusted as active.
        customer, status, tier, display, period_end = (
            customer_id,
            "active",
            tier_code,
            display_name,
            None,
        )
    else:
        raise ProcedureError(
            "BAD_REQUEST",
            f'stripeSubscriptionId: unknown Stripe subscription "{stripe_id}" (the local server'
            ' knows its catalog\'s subscriptions and trusts other ids starting with "sub_")',
        )
    subscription_id = _insert_subscription(
        store,
        company_id,
        stripe_subscription_id=stripe_id,
        stripe_customer_id=customer,
        checkout_session_id=None,
        status=status,
        tier_code=tier,
        display_name=display,
        current_period_end=period_end,
    )
    set_customer(store, company_id, customer)
    applied = 0
    if tier is not None and status in ACTIVE_SUBSCRIPTION_STATUSES:
        applied = set_tier_features(store, company_id, tier, {})
    return {"subscriptionId": subscription_id, "alreadyLinked": False, "featuresApplied": applied}


@mutation("billing.claimCheckout", input=Obj({"companyId": ID, "checkoutSessionId": ID}))
def claim_checkout(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``billing.claimCheckout``."""
    result, _ = claim(store, store.company(args["companyId"])["id"], args["checkoutSessionId"])
    return result


@mutation(
    "billing.linkSubscription",
    input=Obj(
        {
            "companyId": ID,
            "stripeSubscriptionId": ID,
            "stripeCustomerId": OPTIONAL_ID,
            "tierCode": OPTIONAL_ID,
            "displayName": LABEL,
        }
    ),
)
def link_subscription(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``billing.linkSubscription``."""
    return attach_subscription(
        store,
        store.company(args["companyId"])["id"],
        args["stripeSubscriptionId"],
        args.get("stripeCustomerId"),
        args.get("tierCode"),
        args.get("displayName"),
    )


@query("billing.getStatus", input=Obj({"companyId": ID}))
def get_status(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``billing.getStatus``: the billing profile, active subscriptions, enabled features."""
    company = store.company(args["companyId"])
    subscriptions = store.rows(
        "SELECT s.*, t.name AS tier_name FROM subscriptions s"
        " LEFT JOIN tiers t ON t.code = s.tier_code WHERE s.company_id = ? ORDER BY s.seq",
        (company["id"],),
    )
    enabled = sum(1 for feature in all_access(store, company["id"]) if feature["isEnabled"])
    return {
        "companyId": company["id"],
        "hasBillingProfile": company["stripe_customer_id"] is not None or bool(subscriptions),
        "activeSubscriptions": [
            shape_subscription(row)
            for row in subscriptions
            if row["status"] in ACTIVE_SUBSCRIPTION_STATUSES
        ],
        "enabledFeaturesCount": enabled,
    }
