"""The catalog of a local ChatarminOS: features, tiers and the Stripe objects it knows.

The local server cannot reach Stripe, so checkout sessions and Stripe subscriptions come
from this catalog. A seed file is a JSON object with camelCase keys; every section is
optional (missing = empty) and every object rejects unknown keys::

    {
      "$comment": "free text, ignored",
      "version": 1,
      "features": [
        {"code": "ai_credit", "name": "AI Credits", "description": "…", "metered": true}
      ],
      "tiers": [
        {
          "code": "pro", "name": "Pro", "description": "…",
          "baseFee": {"priceId": "price_pro_base", "unitAmount": 4900,
                      "currency": "eur", "interval": "month"},
          "features": [
            {"featureCode": "ai_credit", "includedQuantity": 1000, "quantityLimit": 10000,
             "configValues": {}, "stripePriceId": "price_pro_ai_credit"}
          ]
        }
      ],
      "checkoutSessions": [
        {"id": "cs_test_pro_completed", "status": "complete",
         "stripeSubscriptionId": "sub_test_pro", "stripeCustomerId": "cus_test_pro",
         "tierCode": "pro"}
      ],
      "stripeSubscriptions": [
        {"id": "sub_test_pro", "customerId": "cus_test_pro", "status": "active",
         "tierCode": "pro", "displayName": "Pro Plan",
         "currentPeriodEnd": "2030-01-01T00:00:00.000Z"}
      ]
    }

Field rules (``?`` = optional, default in brackets):

- feature: ``code``, ``name``, ``description?`` [null], ``metered?`` [false] (metered
  features count usage and report ``hasQuantity: true``).
- tier: ``code``, ``name``, ``description?`` [null], ``baseFee?`` [null] =
  ``{priceId, unitAmount (cents, int >= 0), currency, interval (day|week|month|year)}``,
  ``features?`` [[]].
- tier feature: ``featureCode`` (a feature of the catalog), ``quantityLimit?`` [null =
  unlimited], ``includedQuantity?`` [null], ``configValues?`` [{}], ``stripePriceId?`` [null].
- checkout session: ``id``, ``status`` (complete|open|expired), ``stripeSubscriptionId?``
  (required when complete), ``stripeCustomerId?``, ``tierCode?`` (a tier of the catalog).
- Stripe subscription: ``id``, ``customerId?``, ``status?`` [active] (a Stripe status),
  ``tierCode?``, ``displayName?``, ``currentPeriodEnd?`` (ISO-8601 with a timezone).

Order matters: ``tiers.list`` lists tiers in file order; a tier's features keep theirs.
"""

from __future__ import annotations

import json
from importlib import resources
from os import PathLike
from typing import Any

from ._checks import (
    F,
    Invalid,
    Obj,
    array,
    boolean,
    enum,
    ident,
    integer,
    json_object,
    text,
    timestamp,
)

__all__ = ["SeedError", "default_catalog", "load_seed", "normalize_catalog"]

STRIPE_SUBSCRIPTION_STATUSES = (
    "active",
    "trialing",
    "past_due",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "unpaid",
    "paused",
)
"""Stripe subscription statuses a catalog may use."""


class SeedError(ValueError):
    """A seed file or seed mapping is not a valid catalog; the message names the field."""


_FEATURE = Obj(
    {
        "code": F(ident, required=True),
        "name": F(ident, required=True),
        "description": F(text(), nullable=True),
        "metered": F(boolean),
    }
)
_BASE_FEE = Obj(
    {
        "priceId": F(ident, required=True),
        "unitAmount": F(integer(0), required=True),
        "currency": F(ident, required=True),
        "interval": F(enum("day", "week", "month", "year"), required=True),
    }
)
_TIER_FEATURE = Obj(
    {
        "featureCode": F(ident, required=True),
        "quantityLimit": F(integer(0), nullable=True),
        "includedQuantity": F(integer(0), nullable=True),
        "configValues": F(json_object),
        "stripePriceId": F(ident, nullable=True),
    }
)
_TIER = Obj(
    {
        "code": F(ident, required=True),
        "name": F(ident, required=True),
        "description": F(text(), nullable=True),
        "baseFee": F(_BASE_FEE, nullable=True),
        "features": F(array(_TIER_FEATURE)),
    }
)
_SESSION = Obj(
    {
        "id": F(ident, required=True),
        "status": F(enum("complete", "open", "expired"), required=True),
        "stripeSubscriptionId": F(ident, nullable=True),
        "stripeCustomerId": F(ident, nullable=True),
        "tierCode": F(ident, nullable=True),
    },
    rule=lambda s: (
        ("stripeSubscriptionId", "required when the checkout session is complete")
        if s["status"] == "complete" and s.get("stripeSubscriptionId") is None
        else None
    ),
)
_SUBSCRIPTION = Obj(
    {
        "id": F(ident, required=True),
        "customerId": F(ident, nullable=True),
        "status": F(enum(*STRIPE_SUBSCRIPTION_STATUSES)),
        "tierCode": F(ident, nullable=True),
        "displayName": F(text(), nullable=True),
        "currentPeriodEnd": F(timestamp, nullable=True),
    }
)
_CATALOG = Obj(
    {
        "$comment": F(text(max_length=100_000)),
        "version": F(enum(1)),
        "features": F(array(_FEATURE)),
        "tiers": F(array(_TIER)),
        "checkoutSessions": F(array(_SESSION)),
        "stripeSubscriptions": F(array(_SUBSCRIPTION)),
    }
)


def _duplicates(items: list[dict[str, Any]], key: str, where: str) -> list[tuple[str, str]]:
    """Issues for repeated values of ``key`` in a section."""
    seen: set[str] = set()
    issues: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        if item[key] in seen:
            issues.append((f"{where}[{index}].{key}", f"duplicate {key} {item[key]!r}"))
        seen.add(item[key])
    return issues


def normalize_catalog(data: Any, *, source: str = "seed", partial: bool = False) -> dict[str, Any]:
    """Validate a catalog mapping and return it with every default filled in.

    ``partial`` skips the checks that a tier's features and the tiers named by checkout
    sessions and subscriptions exist in ``data`` itself (:meth:`LocalEngine.seed` checks
    them against the live database instead). Raises :class:`SeedError`.
    """
    try:
        raw = _CATALOG(data, "")
    except Invalid as error:
        raise SeedError(f"{source}: {error}") from None
    features = [
        {
            "code": f["code"],
            "name": f["name"],
            "description": f.get("description"),
            "metered": f.get("metered", False),
        }
        for f in raw.get("features", [])
    ]
    tiers = [
        {
            "code": t["code"],
            "name": t["name"],
            "description": t.get("description"),
            "baseFee": t.get("baseFee"),
            "features": [
                {
                    "featureCode": tf["featureCode"],
                    "quantityLimit": tf.get("quantityLimit"),
                    "includedQuantity": tf.get("includedQuantity"),
                    "configValues": tf.get("configValues", {}),
                    "stripePriceId": tf.get("stripePriceId"),
                }
                for tf in t.get("features", [])
            ],
        }
        for t in raw.get("tiers", [])
    ]
    sessions = [
        {
            "id": s["id"],
            "status": s["status"],
            "stripeSubscriptionId": s.get("stripeSubscriptionId"),
            "stripeCustomerId": s.get("stripeCustomerId"),
            "tierCode": s.get("tierCode"),
        }
        for s in raw.get("checkoutSessions", [])
    ]
    subscriptions = [
        {
            "id": s["id"],
            "customerId": s.get("customerId"),
            "status": s.get("status", "active"),
            "tierCode": s.get("tierCode"),
            "displayName": s.get("displayName"),
            "currentPeriodEnd": s.get("currentPeriodEnd"),
        }
        for s in raw.get("stripeSubscriptions", [])
    ]
    issues = (
        _duplicates(features, "code", "features")
        + _duplicates(tiers, "code", "tiers")
        + _duplicates(sessions, "id", "checkoutSessions")
        + _duplicates(subscriptions, "id", "stripeSubscriptions")
    )
    for t_index, tier in enumerate(tiers):
        issues += _duplicates(tier["features"], "featureCode", f"tiers[{t_index}].features")
    if not partial:
        feature_codes = {f["code"] for f in features}
        tier_codes = {t["code"] for t in tiers}
        for t_index, tier in enumerate(tiers):
            for f_index, tf in enumerate(tier["features"]):
                if tf["featureCode"] not in feature_codes:
                    issues.append(
                        (
                            f"tiers[{t_index}].features[{f_index}].featureCode",
                            f"unknown feature {tf['featureCode']!r}",
                        )
                    )
        for where, items in (
            ("checkoutSessions", sessions),
            ("stripeSubscriptions", subscriptions),
        ):
            for index, item in enumerate(items):
                if item["tierCode"] is not None and item["tierCode"] not in tier_codes:
                    issues.append(
                        (f"{where}[{index}].tierCode", f"unknown tier {item['tierCode']!r}")
                    )
    if issues:
        raise SeedError(f"{source}: {Invalid(issues)}")
    return {
        "features": features,
        "tiers": tiers,
        "checkoutSessions": sessions,
        "stripeSubscriptions": subscriptions,
    }


def load_seed(path: str | PathLike[str]) -> dict[str, Any]:
    """Read and validate a seed file (see the module docstring for the format).

    Returns the normalised catalog (every default filled in, ``currentPeriodEnd`` as an
    aware UTC datetime). Raises :class:`SeedError` naming the file and the bad field.
    """
    name = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise SeedError(f"{name}: cannot read the seed file: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SeedError(f"{name}: not valid JSON: {error}") from None
    return normalize_catalog(data, source=name)


def default_catalog() -> dict[str, Any]:
    """The built-in catalog (``default_catalog.json``), normalised."""
    resource = resources.files("chatarmin_os.local").joinpath("default_catalog.json")
    data = json.loads(resource.read_text(encoding="utf-8"))
    return normalize_catalog(data, source="default_catalog.json")
