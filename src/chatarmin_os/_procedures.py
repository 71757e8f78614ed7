"""Every procedure of the API and its kind: the one table both the SDK and the local server read.

A query is sent as ``GET``, a mutation as ``POST``. ``NO_INPUT`` lists the procedures that take
no input at all (a query without ``input``).
"""

from __future__ import annotations

from typing import Final

from ._wire import Kind

__all__ = ["NO_INPUT", "PROCEDURES"]

PROCEDURES: Final[dict[str, Kind]] = {
    "companies.getByProductLink": "query",
    "companies.create": "mutation",
    "companies.update": "mutation",
    "companies.smartLink": "mutation",
    "contacts.create": "mutation",
    "contacts.bulkUpsert": "mutation",
    "contacts.list": "query",
    "features.check": "query",
    "features.listAccess": "query",
    "features.setAccess": "mutation",
    "features.getAccessByExternalOrgId": "query",
    "features.checkByExternalOrgId": "query",
    "billing.trackUsage": "mutation",
    "billing.claimCheckout": "mutation",
    "billing.linkSubscription": "mutation",
    "billing.getStatus": "query",
    "tiers.list": "query",
    "tiers.get": "query",
    "tiers.applyTier": "mutation",
    "links.create": "mutation",
    "links.reset": "mutation",
    "onboard": "mutation",
}
"""Procedure path -> kind, for every procedure of the API."""

NO_INPUT: Final[frozenset[str]] = frozenset({"tiers.list"})
"""Procedures that take no input (nothing is sent as ``input``)."""
