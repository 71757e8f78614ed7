"""The procedures of the local ChatarminOS, run inside one SQLite transaction each.

:class:`Ops` is created per call with the connection (a transaction already open), the
caller's product id and the call's clock reading; :data:`HANDLERS` maps each procedure
path to the method implementing it. Inputs arrive validated (see ``_inputs``).
"""

from __future__ import annotations

import difflib
import json
import re
import sqlite3
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ._errors import ProcedureError
from ._validate import format_ts, parse_ts

__all__ = ["HANDLERS", "Ops", "normalize_name", "similarity", "slugify"]

ACTIVE_SUBSCRIPTION_STATUSES = ("active", "trialing")
"""Subscription statuses that count as active (listed by getStatus, grant their tier)."""

DEFAULT_MIN_CONFIDENCE = 0.8
"""``companies.smartLink``'s default ``minConfidence``; ``onboard`` always uses it."""

MAX_SUGGESTIONS = 5
"""At most this many suggestions are returned."""

CANDIDATE_THRESHOLD = 50.0
"""A company scoring at least this is a smart-link candidate."""

LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "gmbh",
        "mbh",
        "ltd",
        "limited",
        "llc",
        "llp",
        "corp",
        "corporation",
        "co",
        "ag",
        "kg",
        "ug",
        "plc",
        "bv",
        "nv",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "oy",
        "pty",
    }
)
"""Words dropped from company names before fuzzy matching."""


def slugify(name: str) -> str:
    """``"Acme, Inc."`` → ``"acme-inc"`` (ASCII, lowercase, non-alphanumerics → ``-``)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:60].strip("-") or "company"


def normalize_name(name: str) -> str:
    """Lower case, punctuation and legal suffixes dropped, whitespace collapsed."""
    lowered = unicodedata.normalize("NFKC", name).lower()
    lowered = re.sub(r"['’.]", "", lowered)
    lowered = re.sub(r"[\W_]+", " ", lowered)
    words = lowered.split()
    kept = [word for word in words if word not in LEGAL_SUFFIXES]
    return " ".join(kept or words)


def similarity(left: str, right: str) -> float:
    """1.0 when equal, else ``difflib.SequenceMatcher`` ratio."""
    if left == right:
        return 1.0
    return difflib.SequenceMatcher(None, left, right).ratio()


def _domain_key(domain: str | None) -> str:
    """A domain compared case-insensitively (``""`` when missing)."""
    return (domain or "").strip().lower()


def _json(value: Any) -> str:
    """Compact JSON text for storage."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _new_id() -> str:
    """A fresh uuid4 string."""
    return str(uuid.uuid4())


class Ops:
    """The procedures, bound to one open transaction, one product and one instant."""

    def __init__(self, conn: sqlite3.Connection, product_id: str, now: datetime) -> None:
        """Bind to ``conn`` (inside ``BEGIN IMMEDIATE``), the caller's product and ``now``."""
        self.conn = conn
        self.product = product_id
        self.now = now
        self.stamp = format_ts(now)

    # -- small helpers -------------------------------------------------------------------

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """First row of a query, or ``None``."""
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Every row of a query."""
        return list(self.conn.execute(sql, params).fetchall())

    def company(self, company_id: str) -> sqlite3.Row:
        """The company, or ``NOT_FOUND``."""
        row = self.one("SELECT * FROM companies WHERE id = ?", (company_id,))
        if row is None:
            raise ProcedureError("NOT_FOUND", f'Company "{company_id}" not found')
        return row

    def linked_company(self, external_org_id: str) -> sqlite3.Row | None:
        """The company this product linked ``external_org_id`` to, if any."""
        return self.one(
            "SELECT c.* FROM product_links l JOIN companies c ON c.id = l.company_id"
            " WHERE l.product_id = ? AND l.external_org_id = ?",
            (self.product, external_org_id),
        )

    def require_linked(self, external_org_id: str) -> sqlite3.Row:
        """The linked company, or ``NOT_FOUND``."""
        row = self.linked_company(external_org_id)
        if row is None:
            raise ProcedureError(
                "NOT_FOUND", f'No company is linked to externalOrgId "{external_org_id}"'
            )
        return row

    def feature(self, code: str) -> sqlite3.Row:
        """The catalog feature, or ``NOT_FOUND``."""
        row = self.one("SELECT * FROM features WHERE code = ?", (code,))
        if row is None:
            raise ProcedureError("NOT_FOUND", f'Feature "{code}" not found')
        return row

    def tier(self, code: str) -> sqlite3.Row:
        """The catalog tier, or ``NOT_FOUND``."""
        row = self.one("SELECT * FROM tiers WHERE code = ?", (code,))
        if row is None:
            raise ProcedureError("NOT_FOUND", f'Tier "{code}" not found')
        return row

    # -- shapes --------------------------------------------------------------------------

    @staticmethod
    def company_out(row: sqlite3.Row) -> dict[str, Any]:
        """``Company``."""
        return {
            "id": row["id"],
            "shortId": row["short_id"],
            "name": row["name"],
            "domain": row["domain"],
            "createdAt": parse_ts(row["created_at"]),
        }

    @staticmethod
    def contact_out(row: sqlite3.Row, is_new: bool | None = None) -> dict[str, Any]:
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

    @staticmethod
    def link_out(row: sqlite3.Row) -> dict[str, Any]:
        """``ProductLink``."""
        return {
            "id": row["id"],
            "companyId": row["company_id"],
            "externalOrgId": row["external_org_id"],
            "label": row["label"],
            "externalUserId": row["external_user_id"],
            "createdAt": parse_ts(row["created_at"]),
        }

    # -- companies and links -------------------------------------------------------------

    def create_company(
        self, name: str, domain: str | None, created_at: datetime | None
    ) -> sqlite3.Row:
        """Insert a company with a unique ``shortId`` slug (``acme-inc``, ``acme-inc-2``, ...)."""
        base = slugify(name)
        short_id, number = base, 2
        while self.one("SELECT 1 FROM companies WHERE short_id = ?", (short_id,)) is not None:
            short_id, number = f"{base}-{number}", number + 1
        company_id = _new_id()
        self.conn.execute(
            "INSERT INTO companies (id, short_id, name, domain, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                company_id,
                short_id,
                name,
                (domain or "").strip() or None,
                format_ts(created_at) if created_at is not None else self.stamp,
                self.stamp,
            ),
        )
        return self.company(company_id)

    def create_link(
        self,
        company_id: str,
        external_org_id: str,
        label: str | None,
        external_user_id: str | None,
    ) -> dict[str, Any]:
        """Link ``external_org_id`` (this product) to a company; ``CONFLICT`` when linked."""
        if self.linked_company(external_org_id) is not None:
            raise ProcedureError(
                "CONFLICT", f'externalOrgId "{external_org_id}" is already linked to a company'
            )
        link_id = _new_id()
        self.conn.execute(
            "INSERT INTO product_links (id, product_id, company_id, external_org_id, label,"
            " external_user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                link_id,
                self.product,
                company_id,
                external_org_id,
                label,
                external_user_id,
                self.stamp,
            ),
        )
        row = self.one("SELECT * FROM product_links WHERE id = ?", (link_id,))
        assert row is not None
        return self.link_out(row)

    def get_by_product_link(self, args: dict[str, Any]) -> dict[str, Any] | None:
        """``companies.getByProductLink``: the linked company or ``None``."""
        row = self.linked_company(args["externalOrgId"])
        return self.company_out(row) if row is not None else None

    def create_company_proc(self, args: dict[str, Any]) -> dict[str, Any]:
        """``companies.create``: company, optional product link and primary contact."""
        external_org_id = args.get("externalOrgId")
        if external_org_id is not None and self.linked_company(external_org_id) is not None:
            raise ProcedureError(
                "CONFLICT", f'externalOrgId "{external_org_id}" is already linked to a company'
            )
        row = self.create_company(args["name"], args.get("domain"), args.get("createdAt"))
        if external_org_id is not None:
            self.create_link(row["id"], external_org_id, args.get("label"), None)
        if "contactEmail" in args:
            contact: dict[str, Any] = {"email": args["contactEmail"], "isPrimary": True}
            if "contactName" in args:
                contact["name"] = args["contactName"]
            self.upsert_contact(row["id"], contact)
        return self.company_out(row)

    def update_company(self, args: dict[str, Any]) -> dict[str, Any]:
        """``companies.update``: only the given fields change (``domain: ""`` clears it)."""
        row = self.company(args["companyId"])
        changes: dict[str, Any] = {}
        if "name" in args:
            changes["name"] = args["name"]
        if "domain" in args:
            changes["domain"] = args["domain"].strip() or None
        if "createdAt" in args:
            changes["created_at"] = format_ts(args["createdAt"])
        changes["updated_at"] = self.stamp
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self.conn.execute(
            f"UPDATE companies SET {assignments} WHERE id = ?", (*changes.values(), row["id"])
        )
        return self.company_out(self.company(row["id"]))

    def smart_link_result(
        self,
        external_org_id: str,
        label: str | None,
        hints: dict[str, Any],
        min_confidence: float,
    ) -> dict[str, Any]:
        """Score every company against the hints and link / suggest (see the contract)."""
        existing = self.linked_company(external_org_id)
        if existing is not None:
            return {
                "status": "already_linked",
                "companyId": existing["id"],
                "customerName": existing["name"],
                "confidence": 100.0,
                "suggestions": [],
            }
        hint_name = normalize_name(hints.get("companyName") or "")
        hint_domain = _domain_key(hints.get("domain"))
        email_domains = {email.rsplit("@", 1)[1].lower() for email in hints.get("emails", [])}
        scored: list[tuple[float, str, sqlite3.Row]] = []
        if hint_name or hint_domain or email_domains:
            for company in self.rows("SELECT * FROM companies ORDER BY seq"):
                options: list[tuple[float, str]] = []
                domain = _domain_key(company["domain"])
                if domain and domain == hint_domain:
                    options.append((95.0, "domain"))
                if hint_name:
                    company_name = normalize_name(company["name"])
                    if company_name:
                        options.append(
                            (round(80.0 * similarity(hint_name, company_name), 1), "name")
                        )
                if domain and domain in email_domains:
                    options.append((70.0, "email_domain"))
                if options:
                    score, matched_by = max(options, key=lambda option: option[0])
                    if score >= CANDIDATE_THRESHOLD:
                        scored.append((score, matched_by, company))
        if not scored:
            return {
                "status": "no_match",
                "companyId": None,
                "customerName": None,
                "confidence": None,
                "suggestions": [],
            }
        # Best first; ties keep the order companies were created in.
        scored.sort(key=lambda item: -item[0])
        top_score, _, top = scored[0]
        unique_top = len(scored) == 1 or scored[1][0] < top_score
        if unique_top and top_score >= round(min_confidence * 100.0, 6):
            self.create_link(top["id"], external_org_id, label, None)
            return {
                "status": "linked",
                "companyId": top["id"],
                "customerName": top["name"],
                "confidence": top_score,
                "suggestions": [],
            }
        return {
            "status": "suggestions",
            "companyId": None,
            "customerName": None,
            "confidence": None,
            "suggestions": [
                {
                    "companyId": company["id"],
                    "name": company["name"],
                    "domain": company["domain"],
                    "confidence": score,
                    "matchedBy": matched_by,
                }
                for score, matched_by, company in scored[:MAX_SUGGESTIONS]
            ],
        }

    def smart_link(self, args: dict[str, Any]) -> dict[str, Any]:
        """``companies.smartLink``."""
        return self.smart_link_result(
            args["externalOrgId"],
            args["label"],
            args.get("hints", {}),
            args.get("minConfidence", DEFAULT_MIN_CONFIDENCE),
        )

    def links_create(self, args: dict[str, Any]) -> dict[str, Any]:
        """``links.create``."""
        company = self.company(args["companyId"])
        return self.create_link(
            company["id"], args["externalOrgId"], args.get("label"), args.get("externalUserId")
        )

    def links_reset(self, args: dict[str, Any]) -> dict[str, Any]:
        """``links.reset``: this product's links; optionally their companies' contacts and MRR."""
        linked = "SELECT company_id FROM product_links WHERE product_id = ?"
        contacts_deleted = 0
        if args.get("deleteContacts", False):
            cursor = self.conn.execute(
                f"DELETE FROM contacts WHERE company_id IN ({linked})", (self.product,)
            )
            contacts_deleted = cursor.rowcount
        reset_mrr = bool(args.get("resetMrr", False))
        if reset_mrr:
            self.conn.execute(
                f"UPDATE companies SET mrr_cents = 0, updated_at = ? WHERE id IN ({linked})",
                (self.stamp, self.product),
            )
        cursor = self.conn.execute(
            "DELETE FROM product_links WHERE product_id = ?", (self.product,)
        )
        return {
            "linksDeleted": cursor.rowcount,
            "contactsDeleted": contacts_deleted,
            "mrrReset": reset_mrr,
        }

    # -- contacts ------------------------------------------------------------------------

    def upsert_contact(self, company_id: str, item: dict[str, Any]) -> tuple[str, bool]:
        """Create or update the contact (company, lower(email)); returns ``(id, is_new)``."""
        email: str = item["email"]
        row = self.one(
            "SELECT * FROM contacts WHERE company_id = ? AND email_key = ?",
            (company_id, email.lower()),
        )
        if row is None:
            contact_id, is_new = _new_id(), True
            self.conn.execute(
                "INSERT INTO contacts (id, company_id, email, email_key, name, role, is_primary,"
                " avatar_url, metadata, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    contact_id,
                    company_id,
                    email,
                    email.lower(),
                    item.get("name"),
                    item.get("role"),
                    int(item.get("isPrimary", False)),
                    item.get("avatarUrl"),
                    _json(item.get("metadata", {})),
                    self.stamp,
                    self.stamp,
                ),
            )
        else:
            contact_id, is_new = row["id"], False
            changes: dict[str, Any] = {}
            for key, column in (("name", "name"), ("role", "role"), ("avatarUrl", "avatar_url")):
                if key in item:
                    changes[column] = item[key]
            if "isPrimary" in item:
                changes["is_primary"] = int(item["isPrimary"])
            if "metadata" in item:
                changes["metadata"] = _json(item["metadata"])
            changes["updated_at"] = self.stamp
            assignments = ", ".join(f"{column} = ?" for column in changes)
            self.conn.execute(
                f"UPDATE contacts SET {assignments} WHERE id = ?", (*changes.values(), contact_id)
            )
        if item.get("isPrimary") is True:
            self.conn.execute(
                "UPDATE contacts SET is_primary = 0, updated_at = ?"
                " WHERE company_id = ? AND id != ? AND is_primary = 1",
                (self.stamp, company_id, contact_id),
            )
        return contact_id, is_new

    def contact_row(self, contact_id: str) -> sqlite3.Row:
        """A contact by id (it exists)."""
        row = self.one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        assert row is not None
        return row

    def has_primary(self, company_id: str) -> bool:
        """Whether the company has a primary contact."""
        return (
            self.one(
                "SELECT 1 FROM contacts WHERE company_id = ? AND is_primary = 1", (company_id,)
            )
            is not None
        )

    def contacts_create(self, args: dict[str, Any]) -> dict[str, Any]:
        """``contacts.create``: upsert one contact."""
        company = self.company(args["companyId"])
        item = {key: value for key, value in args.items() if key != "companyId"}
        contact_id, is_new = self.upsert_contact(company["id"], item)
        return self.contact_out(self.contact_row(contact_id), is_new)

    def contacts_bulk_upsert(self, args: dict[str, Any]) -> dict[str, Any]:
        """``contacts.bulkUpsert``: each contact upserted in order; final state returned."""
        company = self.company(args["companyId"])
        results = [self.upsert_contact(company["id"], item) for item in args["contacts"]]
        created = sum(1 for _, is_new in results if is_new)
        return {
            "created": created,
            "updated": len(results) - created,
            "contacts": [
                self.contact_out(self.contact_row(contact_id), is_new)
                for contact_id, is_new in results
            ],
        }

    def contacts_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``contacts.list``: primary first, then in creation order."""
        company = self.company(args["companyId"])
        where = " AND is_primary = 1" if args.get("primaryOnly", False) else ""
        return [
            self.contact_out(row)
            for row in self.rows(
                f"SELECT * FROM contacts WHERE company_id = ?{where}"
                " ORDER BY is_primary DESC, created_at, seq",
                (company["id"],),
            )
        ]

    # -- feature access ------------------------------------------------------------------

    def load_access(self, company_id: str, feature_code: str) -> dict[str, Any]:
        """The stored access row as a dict, or the disabled default."""
        row = self.one(
            "SELECT * FROM feature_access WHERE company_id = ? AND feature_code = ?",
            (company_id, feature_code),
        )
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

    def save_access(self, company_id: str, feature_code: str, state: dict[str, Any]) -> None:
        """Write an access row (insert or replace)."""
        valid_until = state["valid_until"]
        self.conn.execute(
            "INSERT OR REPLACE INTO feature_access (company_id, feature_code, is_enabled,"
            " quantity_limit, included_quantity, config_values, source, valid_until,"
            " current_usage, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                company_id,
                feature_code,
                int(state["is_enabled"]),
                state["quantity_limit"],
                state["included_quantity"],
                _json(state["config_values"]),
                state["source"],
                format_ts(valid_until) if valid_until is not None else None,
                state["current_usage"],
                self.stamp,
            ),
        )

    def is_enabled(self, state: dict[str, Any]) -> bool:
        """Enabled and not expired (``validUntil`` in the past or now = expired)."""
        valid_until: datetime | None = state["valid_until"]
        return bool(state["is_enabled"]) and (valid_until is None or valid_until > self.now)

    def access_out(
        self, feature: sqlite3.Row, state: dict[str, Any], *, detail: bool
    ) -> dict[str, Any]:
        """``FeatureAccess`` or, with ``detail``, ``FeatureAccessDetail``."""
        enabled = self.is_enabled(state)
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
            out["validUntil"] = state["valid_until"]
        return out

    def all_access(self, company_id: str) -> list[dict[str, Any]]:
        """Every catalog feature's detail for a company, by feature code."""
        return [
            self.access_out(feature, self.load_access(company_id, feature["code"]), detail=True)
            for feature in self.rows("SELECT * FROM features ORDER BY code")
        ]

    def features_check(self, args: dict[str, Any]) -> dict[str, Any]:
        """``features.check``."""
        company = self.company(args["companyId"])
        feature = self.feature(args["featureCode"])
        return self.access_out(
            feature, self.load_access(company["id"], feature["code"]), detail=False
        )

    def features_list_access(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``features.listAccess``."""
        return self.all_access(self.company(args["companyId"])["id"])

    def features_set_access(self, args: dict[str, Any]) -> dict[str, Any]:
        """``features.setAccess``: only the given fields change; ``config`` merged."""
        if "companyId" in args:
            company = self.company(args["companyId"])
        else:
            company = self.require_linked(args["externalOrgId"])
        feature = self.feature(args["featureCode"])
        state = self.load_access(company["id"], feature["code"])
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
        self.save_access(company["id"], feature["code"], state)
        return self.access_out(feature, state, detail=True)

    def features_by_org(self, args: dict[str, Any]) -> dict[str, Any]:
        """``features.getAccessByExternalOrgId``."""
        company = self.require_linked(args["externalOrgId"])
        return {"companyId": company["id"], "features": self.all_access(company["id"])}

    def features_check_by_org(self, args: dict[str, Any]) -> dict[str, Any]:
        """``features.checkByExternalOrgId``."""
        company = self.require_linked(args["externalOrgId"])
        feature = self.feature(args["featureCode"])
        return self.access_out(
            feature, self.load_access(company["id"], feature["code"]), detail=False
        )

    # -- usage ---------------------------------------------------------------------------

    def track_usage(self, args: dict[str, Any]) -> dict[str, Any]:
        """``billing.trackUsage``: count usage within the limit, idempotent per company."""
        company = self.company(args["companyId"])
        feature = self.feature(args["featureCode"])
        key: str | None = args.get("idempotencyKey")
        if key is not None:
            seen = self.one(
                "SELECT result FROM usage_events WHERE company_id = ? AND idempotency_key = ?",
                (company["id"], key),
            )
            if seen is not None:
                first: dict[str, Any] = json.loads(seen["result"])
                return {**first, "duplicate": True}
        code = feature["code"]
        if not feature["metered"]:
            raise ProcedureError(
                "BAD_REQUEST",
                f'featureCode: feature "{code}" is not metered; usage cannot be tracked',
            )
        state = self.load_access(company["id"], code)
        if not self.is_enabled(state):
            expired = bool(state["is_enabled"])
            raise ProcedureError(
                "FORBIDDEN",
                f'Feature "{code}" is not enabled for this company'
                + (" (its access expired)" if expired else ""),
            )
        quantity: int = args["quantity"]
        usage: int = state["current_usage"]
        limit: int | None = state["quantity_limit"]
        if limit is not None and usage + quantity > limit:
            raise ProcedureError(
                "PRECONDITION_FAILED",
                f"Usage limit exceeded for {code}: {usage} + {quantity} > {limit}",
            )
        usage += quantity
        self.conn.execute(
            "UPDATE feature_access SET current_usage = ?, updated_at = ?"
            " WHERE company_id = ? AND feature_code = ?",
            (usage, self.stamp, company["id"], code),
        )
        included: int | None = state["included_quantity"]
        result: dict[str, Any] = {
            "featureCode": code,
            "currentUsage": usage,
            "quantityLimit": limit,
            "includedQuantity": included,
            "remaining": None if limit is None else limit - usage,
            "billableQuantity": max(0, usage - (included or 0)),
            "isAtLimit": limit is not None and usage >= limit,
            "duplicate": False,
        }
        self.conn.execute(
            "INSERT INTO usage_events (id, company_id, feature_code, quantity, idempotency_key,"
            " metadata, result, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _new_id(),
                company["id"],
                code,
                quantity,
                key,
                _json(args.get("metadata", {})),
                _json(result),
                self.stamp,
            ),
        )
        return result

    # -- tiers ---------------------------------------------------------------------------

    def apply_tier(
        self, company_id: str, tier_code: str, overrides: dict[str, dict[str, Any]]
    ) -> int:
        """Set every feature of the tier on the company; returns how many were set."""
        self.tier(tier_code)
        tier_features = self.rows(
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
            state = self.load_access(company_id, code)
            state.update(
                is_enabled=True,
                quantity_limit=limit,
                included_quantity=included,
                config_values=config,
                source="subscription",
                valid_until=None,
            )
            self.save_access(company_id, code, state)
        return len(tier_features)

    def tiers_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """``tiers.list``: catalog order."""
        return [
            {"code": row["code"], "name": row["name"], "description": row["description"]}
            for row in self.rows("SELECT * FROM tiers ORDER BY position")
        ]

    def tiers_get(self, args: dict[str, Any]) -> dict[str, Any]:
        """``tiers.get``: with base fee, features and Stripe price ids."""
        tier = self.tier(args["tierCode"])
        features = self.rows(
            "SELECT tf.*, f.name AS feature_name FROM tier_features tf"
            " JOIN features f ON f.code = tf.feature_code WHERE tf.tier_code = ?"
            " ORDER BY tf.position",
            (tier["code"],),
        )
        base_fee = None
        price_ids: list[str] = []
        if tier["base_price_id"] is not None:
            base_fee = {
                "stripe": {
                    "priceId": tier["base_price_id"],
                    "unitAmount": tier["base_unit_amount"],
                    "currency": tier["base_currency"],
                    "interval": tier["base_interval"],
                }
            }
            price_ids.append(tier["base_price_id"])
        price_ids.extend(row["stripe_price_id"] for row in features if row["stripe_price_id"])
        return {
            "code": tier["code"],
            "name": tier["name"],
            "description": tier["description"],
            "baseFee": base_fee,
            "features": [
                {
                    "code": row["feature_code"],
                    "name": row["feature_name"],
                    "configValues": json.loads(row["config_values"]),
                }
                for row in features
            ],
            "stripePriceIds": price_ids,
        }

    def tiers_apply(self, args: dict[str, Any]) -> dict[str, Any]:
        """``tiers.applyTier``."""
        company = self.company(args["companyId"])
        applied = self.apply_tier(company["id"], args["tierCode"], args.get("features", {}))
        return {
            "companyId": company["id"],
            "tierCode": args["tierCode"],
            "featuresApplied": applied,
        }

    # -- Stripe --------------------------------------------------------------------------

    def set_customer(self, company_id: str, customer_id: str | None) -> None:
        """Record the company's Stripe customer (its billing profile)."""
        if customer_id is not None:
            self.conn.execute(
                "UPDATE companies SET stripe_customer_id = ?, updated_at = ? WHERE id = ?",
                (customer_id, self.stamp, company_id),
            )

    def insert_subscription(
        self,
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
            tier = self.one("SELECT name FROM tiers WHERE code = ?", (tier_code,))
            display_name = tier["name"] if tier is not None else None
        subscription_id = _new_id()
        self.conn.execute(
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
                self.stamp,
            ),
        )
        return subscription_id

    def claim(self, company_id: str, session_id: str) -> tuple[dict[str, Any], str]:
        """Claim a completed checkout session; returns the result and the owner company id."""
        session = self.one("SELECT * FROM checkout_sessions WHERE id = ?", (session_id,))
        if session is None:
            raise ProcedureError("NOT_FOUND", f'Checkout session "{session_id}" not found')
        if session["status"] != "complete":
            raise ProcedureError(
                "PRECONDITION_FAILED",
                f'Checkout session "{session_id}" is not complete (status: {session["status"]})',
            )
        stripe_id: str = session["stripe_subscription_id"]
        existing = self.one(
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
        stripe_sub = self.one("SELECT * FROM stripe_subscriptions WHERE id = ?", (stripe_id,))
        customer = session["stripe_customer_id"] or (
            stripe_sub["customer_id"] if stripe_sub else None
        )
        tier_code: str | None = session["tier_code"]
        subscription_id = self.insert_subscription(
            company_id,
            stripe_subscription_id=stripe_id,
            stripe_customer_id=customer,
            checkout_session_id=session_id,
            status="active",
            tier_code=tier_code,
            display_name=stripe_sub["display_name"] if stripe_sub else None,
            current_period_end=stripe_sub["current_period_end"] if stripe_sub else None,
        )
        self.set_customer(company_id, customer)
        applied = self.apply_tier(company_id, tier_code, {}) if tier_code is not None else 0
        result = {
            "subscriptionId": subscription_id,
            "alreadyClaimed": False,
            "tierCode": tier_code,
            "featuresApplied": applied,
        }
        return result, company_id

    def claim_checkout(self, args: dict[str, Any]) -> dict[str, Any]:
        """``billing.claimCheckout``."""
        company = self.company(args["companyId"])
        result, _ = self.claim(company["id"], args["checkoutSessionId"])
        return result

    def link_subscription_result(
        self,
        company_id: str,
        stripe_id: str,
        customer_id: str | None,
        tier_code: str | None,
        display_name: str | None,
    ) -> dict[str, Any]:
        """Link a Stripe subscription (catalog, or trusted ``sub_…``) and apply its tier."""
        if tier_code is not None:
            self.tier(tier_code)
        existing = self.one(
            "SELECT * FROM subscriptions WHERE stripe_subscription_id = ?", (stripe_id,)
        )
        if existing is not None:
            if existing["company_id"] != company_id:
                raise ProcedureError(
                    "CONFLICT", f'Stripe subscription "{stripe_id}" is linked to another company'
                )
            return {"subscriptionId": existing["id"], "alreadyLinked": True, "featuresApplied": 0}
        known = self.one("SELECT * FROM stripe_subscriptions WHERE id = ?", (stripe_id,))
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
        subscription_id = self.insert_subscription(
            company_id,
            stripe_subscription_id=stripe_id,
            stripe_customer_id=customer,
            checkout_session_id=None,
            status=status,
            tier_code=tier,
            display_name=display,
            current_period_end=period_end,
        )
        self.set_customer(company_id, customer)
        applied = 0
        if tier is not None and status in ACTIVE_SUBSCRIPTION_STATUSES:
            applied = self.apply_tier(company_id, tier, {})
        return {
            "subscriptionId": subscription_id,
            "alreadyLinked": False,
            "featuresApplied": applied,
        }

    def link_subscription(self, args: dict[str, Any]) -> dict[str, Any]:
        """``billing.linkSubscription``."""
        company = self.company(args["companyId"])
        return self.link_subscription_result(
            company["id"],
            args["stripeSubscriptionId"],
            args.get("stripeCustomerId"),
            args.get("tierCode"),
            args.get("displayName"),
        )

    def billing_status(self, args: dict[str, Any]) -> dict[str, Any]:
        """``billing.getStatus``."""
        company = self.company(args["companyId"])
        subscriptions = self.rows(
            "SELECT s.*, t.name AS tier_name FROM subscriptions s"
            " LEFT JOIN tiers t ON t.code = s.tier_code WHERE s.company_id = ? ORDER BY s.seq",
            (company["id"],),
        )
        enabled = sum(1 for feature in self.all_access(company["id"]) if feature["isEnabled"])
        return {
            "companyId": company["id"],
            "hasBillingProfile": company["stripe_customer_id"] is not None or bool(subscriptions),
            "activeSubscriptions": [
                {
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
                for row in subscriptions
                if row["status"] in ACTIVE_SUBSCRIPTION_STATUSES
            ],
            "enabledFeaturesCount": enabled,
        }

    # -- onboarding ----------------------------------------------------------------------

    def onboard(self, args: dict[str, Any]) -> dict[str, Any]:
        """``onboard``: smart-link or create, then claim, link, apply tier, upsert contact."""
        external_org_id: str = args["externalOrgId"]
        hints: dict[str, Any] = args.get("hints", {})
        link = self.smart_link_result(external_org_id, args["label"], hints, DEFAULT_MIN_CONFIDENCE)
        if link["status"] in ("already_linked", "linked"):
            company = self.company(link["companyId"])
            link_status = link["status"]
        else:
            candidates = (hints.get("companyName"), hints.get("domain"), external_org_id)
            name = next(c.strip() for c in candidates if c is not None and c.strip())
            company = self.create_company(name, hints.get("domain"), args.get("createdAt"))
            self.create_link(company["id"], external_org_id, args["label"], None)
            link_status = "created"
        company_id: str = company["id"]
        billing: dict[str, Any] | None = None
        if any(key in args for key in ("checkoutSessionId", "stripeSubscriptionId", "tierCode")):
            billing = {
                "claimed": False,
                "linked": False,
                "tierApplied": False,
                "subscriptionId": None,
            }
            if "checkoutSessionId" in args:
                claimed, owner = self.claim(company_id, args["checkoutSessionId"])
                if owner == company_id:
                    billing["claimed"] = True
                    billing["subscriptionId"] = claimed["subscriptionId"]
                    if not claimed["alreadyClaimed"] and claimed["tierCode"] is not None:
                        billing["tierApplied"] = True
            if "stripeSubscriptionId" in args:
                linked = self.link_subscription_result(
                    company_id,
                    args["stripeSubscriptionId"],
                    args.get("stripeCustomerId"),
                    args.get("tierCode"),
                    None,
                )
                billing["linked"] = True
                billing["subscriptionId"] = linked["subscriptionId"]
                if linked["featuresApplied"] > 0:
                    billing["tierApplied"] = True
            if "tierCode" in args:
                self.apply_tier(company_id, args["tierCode"], {})
                billing["tierApplied"] = True
        if "stripeCustomerId" in args and "stripeSubscriptionId" not in args:
            self.set_customer(company_id, args["stripeCustomerId"])
        if "contactEmail" in args:
            contact: dict[str, Any] = {"email": args["contactEmail"]}
            if "contactName" in args:
                contact["name"] = args["contactName"]
            if not self.has_primary(company_id):
                contact["isPrimary"] = True
            self.upsert_contact(company_id, contact)
        return {
            "companyId": company_id,
            "companyName": company["name"],
            "linkStatus": link_status,
            "billingStatus": billing,
        }


Handler = Callable[[Ops, dict[str, Any]], Any]
"""A procedure implementation: ``(ops, validated input) -> output``."""

HANDLERS: dict[str, Handler] = {
    "companies.getByProductLink": Ops.get_by_product_link,
    "companies.create": Ops.create_company_proc,
    "companies.update": Ops.update_company,
    "companies.smartLink": Ops.smart_link,
    "contacts.create": Ops.contacts_create,
    "contacts.bulkUpsert": Ops.contacts_bulk_upsert,
    "contacts.list": Ops.contacts_list,
    "features.check": Ops.features_check,
    "features.listAccess": Ops.features_list_access,
    "features.setAccess": Ops.features_set_access,
    "features.getAccessByExternalOrgId": Ops.features_by_org,
    "features.checkByExternalOrgId": Ops.features_check_by_org,
    "billing.trackUsage": Ops.track_usage,
    "billing.claimCheckout": Ops.claim_checkout,
    "billing.linkSubscription": Ops.link_subscription,
    "billing.getStatus": Ops.billing_status,
    "tiers.list": Ops.tiers_list,
    "tiers.get": Ops.tiers_get,
    "tiers.applyTier": Ops.tiers_apply,
    "links.create": Ops.links_create,
    "links.reset": Ops.links_reset,
    "onboard": Ops.onboard,
}
"""The implementation of every procedure path."""
