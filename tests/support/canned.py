"""Canned answers: a valid one for every procedure, a recording mock server that gives them,
and the answers other tests give (``METERED_ACCESS``, ``UNLIMITED_USAGE``, ...), one constant
each, so a test never builds its own copy.

``OUTPUTS`` and ``CannedServer`` are used by the failure and fuzz tests: whatever the caller passed, a call that is not refused
reaches this server and gets a well-formed answer, so any error it raises is the SDK's.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.helpers import BASE_URL, envelope

T = "2024-01-15T10:30:00.000Z"
COMPANY = {"id": "c1", "shortId": "acme", "name": "Acme", "domain": None, "createdAt": T}
CONTACT = {
    "id": "p1",
    "companyId": "c1",
    "email": "a@acme.com",
    "name": None,
    "role": None,
    "isPrimary": False,
    "avatarUrl": None,
    "metadata": {},
    "createdAt": T,
    "updatedAt": T,
}
UPSERTED = {**CONTACT, "isNew": True}
ACCESS = {
    "featureCode": "ai_credit",
    "isEnabled": True,
    "canUse": True,
    "hasQuantity": True,
    "currentUsage": 1,
    "quantityLimit": 10,
    "includedQuantity": 5,
    "remaining": 9,
}
DETAIL = {**ACCESS, "featureName": "AI", "configValues": {}, "source": "manual", "validUntil": None}

OUTPUTS: dict[str, Any] = {
    "companies.getByProductLink": COMPANY,
    "companies.create": COMPANY,
    "companies.update": COMPANY,
    "companies.smartLink": {
        "status": "no_match",
        "companyId": None,
        "customerName": None,
        "confidence": None,
        "suggestions": [],
    },
    "contacts.create": UPSERTED,
    "contacts.bulkUpsert": {"created": 1, "updated": 0, "contacts": [UPSERTED]},
    "contacts.list": [CONTACT],
    "features.check": ACCESS,
    "features.listAccess": [DETAIL],
    "features.setAccess": DETAIL,
    "features.getAccessByExternalOrgId": {"companyId": "c1", "features": [DETAIL]},
    "features.checkByExternalOrgId": ACCESS,
    "billing.trackUsage": {
        "featureCode": "ai_credit",
        "currentUsage": 1,
        "quantityLimit": None,
        "includedQuantity": None,
        "remaining": None,
        "billableQuantity": 0,
        "isAtLimit": False,
    },
    "billing.claimCheckout": {
        "subscriptionId": "s1",
        "alreadyClaimed": False,
        "tierCode": None,
        "featuresApplied": 1,
    },
    "billing.linkSubscription": {
        "subscriptionId": "s1",
        "alreadyLinked": False,
        "featuresApplied": 1,
    },
    "billing.getStatus": {
        "companyId": "c1",
        "hasBillingProfile": False,
        "activeSubscriptions": [],
        "enabledFeaturesCount": 0,
    },
    "tiers.list": [{"code": "free", "name": "Free", "description": None}],
    "tiers.get": {
        "code": "free",
        "name": "Free",
        "description": None,
        "baseFee": None,
        "features": [],
        "stripePriceIds": [],
    },
    "tiers.applyTier": {"companyId": "c1", "tierCode": "free", "featuresApplied": 1},
    "links.create": {
        "id": "l1",
        "companyId": "c1",
        "externalOrgId": "o1",
        "label": None,
        "externalUserId": None,
        "createdAt": T,
    },
    "links.reset": {"linksDeleted": 0, "contactsDeleted": 0, "mrrReset": False},
    "onboard": {
        "companyId": "c1",
        "companyName": "Acme",
        "linkStatus": "created",
        "billingStatus": None,
    },
}
"""A valid output (plain JSON, as on the wire) of every procedure."""


# -- canned answers: one constant each, imported by every test that gives it --------------

METERED_ACCESS: dict[str, Any] = {
    "featureCode": "ai_credit",
    "isEnabled": True,
    "canUse": True,
    "hasQuantity": True,
    "currentUsage": 5,
    "quantityLimit": 100,
    "includedQuantity": 50,
    "remaining": 95,
}
"""A ``features.check`` result: 5 of 100 used (50 included), 95 left."""

METERED_ACCESS_ANSWER = envelope(METERED_ACCESS, "json")
""":data:`METERED_ACCESS` in a tRPC success body (plain JSON)."""

UNMETERED_ACCESS: dict[str, Any] = {
    "featureCode": "ai_credit",
    "isEnabled": True,
    "canUse": True,
    "hasQuantity": True,
    "currentUsage": 1,
    "quantityLimit": None,
    "includedQuantity": None,
    "remaining": None,
}
"""A ``features.check`` result without a limit (one unit used)."""

SSO_ACCESS: dict[str, Any] = {
    "featureCode": "sso",
    "isEnabled": True,
    "canUse": True,
    "hasQuantity": False,
    "currentUsage": 0,
    "quantityLimit": None,
    "includedQuantity": None,
    "remaining": None,
}
"""A ``features.check`` result of an on/off feature (no quantity)."""

UNMETERED_ACCESS_ANSWER = envelope(UNMETERED_ACCESS, "json")
""":data:`UNMETERED_ACCESS` in a tRPC success body (plain JSON)."""

UNLIMITED_USAGE: dict[str, Any] = {
    "featureCode": "ai_credit",
    "currentUsage": 1,
    "quantityLimit": None,
    "includedQuantity": None,
    "remaining": None,
    "billableQuantity": 1,
    "isAtLimit": False,
    "duplicate": False,
}
"""A ``billing.trackUsage`` result without a limit (the first unit counted)."""

UNLIMITED_USAGE_ANSWER = envelope(UNLIMITED_USAGE, "json")
""":data:`UNLIMITED_USAGE` in a tRPC success body (plain JSON)."""

SIXTH_UNIT_USAGE: dict[str, Any] = {
    **UNLIMITED_USAGE,
    "currentUsage": 6,
    "billableQuantity": 6,
}
"""A ``billing.trackUsage`` result without a limit, six units counted."""

METERED_USAGE: dict[str, Any] = {
    "featureCode": "ai_credit",
    "currentUsage": 10,
    "quantityLimit": 100,
    "includedQuantity": 5,
    "remaining": 90,
    "billableQuantity": 5,
    "isAtLimit": False,
    "duplicate": False,
}
"""A ``billing.trackUsage`` result: 10 of 100 used (5 included, 5 billable), 90 left."""

USAGE_AT_LIMIT: dict[str, Any] = {
    "featureCode": "ai_credit",
    "currentUsage": 1,
    "quantityLimit": 1,
    "includedQuantity": 0,
    "remaining": 0,
    "billableQuantity": 1,
    "isAtLimit": True,
    "duplicate": False,
}
"""A ``billing.trackUsage`` result that reached its limit of 1."""


def procedure_of(request: httpx.Request) -> str:
    """The procedure a request calls (the path after the base URL)."""
    return request.url.path.rsplit("/", 1)[-1]


class CannedServer:
    """A ``MockTransport`` handler: records every request, answers each with its output."""

    def __init__(self, transformer: str = "json") -> None:
        self.transformer = transformer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        output = OUTPUTS[procedure_of(request)]
        return httpx.Response(200, json=envelope(output, self.transformer))


def wire_json(request: httpx.Request) -> Any:
    """The JSON a request carries (query ``input`` or body); strict UTF-8, as a server reads it."""
    if request.method == "GET":
        assert str(request.url).startswith(f"{BASE_URL}/")
        values = parse_qs(urlsplit(str(request.url)).query, errors="strict").get("input")
        return None if values is None else json.loads(values[0])
    return json.loads(request.content.decode("utf-8"))
