"""``companies.*``: create, update, look up, and smart-link companies.

Smart linking scores companies against hints (see :func:`smart_link_result`). It does not
score every company: the ``companies`` table keeps each company's domain and normalised
name as indexed keys, and ``company_name_grams`` the trigrams of the normalised name, so a
call finds its candidates by index — companies with the hint's domain or an e-mail domain,
and at most :data:`MAX_NAME_CANDIDATES` companies sharing the most name trigrams with the
hint — and scores only those.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import unicodedata
from datetime import datetime
from typing import Any

from .._checks import ID, LABEL, OPTIONAL_ID, F, Obj, array, email, ident, number, text, timestamp
from .._errors import ProcedureError
from .._registry import mutation, query
from .._shapes import company as shape_company
from .._store import Store, format_ts, new_id
from .contacts import upsert_contact
from .links import create_link

__all__ = [
    "HINTS",
    "create",
    "create_company",
    "get_by_product_link",
    "index_name",
    "name_grams",
    "normalize_name",
    "smart_link",
    "smart_link_result",
    "update",
]

DEFAULT_MIN_CONFIDENCE = 0.8
"""``companies.smartLink``'s default ``minConfidence``; ``onboard`` always uses it."""

MAX_SUGGESTIONS = 5
"""At most this many suggestions are returned."""

CANDIDATE_THRESHOLD = 50.0
"""A company scoring at least this is a smart-link candidate."""

MAX_NAME_CANDIDATES = 50
"""Fuzzy name matching scores at most this many companies: those sharing the most trigrams."""

GRAM_POSTINGS_BUDGET = 5000
"""How many (trigram, company) index entries one name lookup reads at most, rarest first."""

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
"""Words dropped from company names before matching."""

HINTS = Obj(
    {
        "companyName": F(text(max_length=1000)),
        "domain": F(text(max_length=1000)),
        "emails": F(array(email, max_items=1000)),
    }
)
"""``Hints``: what ``companies.smartLink`` and ``onboard`` match companies by."""


# -- names, domains and their index ----------------------------------------------------------


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


def name_grams(key: str) -> set[str]:
    """The trigrams of a normalised name, padded with a space at both ends (none for ``""``)."""
    if not key:
        return set()
    padded = f" {key} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def domain_key(domain: str | None) -> str | None:
    """A domain as it is compared: trimmed, lower case; ``None`` when missing or empty."""
    return (domain or "").strip().lower() or None


def index_name(conn: sqlite3.Connection, seq: int, old_key: str | None, key: str) -> None:
    """Index company ``seq``'s normalised name ``key`` (replacing ``old_key``'s trigrams)."""
    if old_key:
        old = [(gram,) for gram in name_grams(old_key)]
        conn.execute("DELETE FROM company_name_grams WHERE company_seq = ?", (seq,))
        conn.executemany(
            "UPDATE name_gram_counts SET companies = companies - 1 WHERE gram = ?", old
        )
    grams = name_grams(key)
    conn.executemany(
        "INSERT INTO company_name_grams (gram, company_seq) VALUES (?, ?)",
        [(gram, seq) for gram in grams],
    )
    conn.executemany(
        "INSERT INTO name_gram_counts (gram, companies) VALUES (?, 1)"
        " ON CONFLICT (gram) DO UPDATE SET companies = companies + 1",
        [(gram,) for gram in grams],
    )


def _free_short_id(store: Store, base: str) -> str:
    """``base``, else ``base-N`` with the next N not taken (remembered per base, so that the
    thousandth "Acme" does not try 999 taken ids first)."""

    def taken(short_id: str) -> bool:
        return store.one("SELECT 1 FROM companies WHERE short_id = ?", (short_id,)) is not None

    if not taken(base):
        return base
    row = store.one("SELECT next FROM short_id_counters WHERE base = ?", (base,))
    number = row[0] if row is not None else 2
    while taken(f"{base}-{number}"):
        number += 1
    store.execute(
        "INSERT INTO short_id_counters (base, next) VALUES (?, ?)"
        " ON CONFLICT (base) DO UPDATE SET next = excluded.next",
        (base, number + 1),
    )
    return f"{base}-{number}"


def create_company(
    store: Store, name: str, domain: str | None, created_at: datetime | None
) -> sqlite3.Row:
    """Insert a company with a unique ``shortId`` slug (``acme-inc``, ``acme-inc-2``, ...)."""
    short_id = _free_short_id(store, slugify(name))
    key = normalize_name(name)
    cursor = store.execute(
        "INSERT INTO companies (id, short_id, name, domain, domain_key, name_key, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id(),
            short_id,
            name,
            (domain or "").strip() or None,
            domain_key(domain),
            key,
            format_ts(created_at) if created_at is not None else store.stamp,
            store.stamp,
        ),
    )
    seq = cursor.lastrowid
    assert seq is not None
    index_name(store.conn, seq, None, key)
    row = store.one("SELECT * FROM companies WHERE seq = ?", (seq,))
    assert row is not None
    return row


# -- smart linking ---------------------------------------------------------------------------


def _candidates(
    store: Store, hint_name: str, hint_domain: str | None, email_domains: set[str]
) -> list[sqlite3.Row]:
    """The companies worth scoring against the hints, found by index, in creation order.

    By domain: the first few companies of each domain (they all score the same). By name:
    the companies with exactly the hint's normalised name, and the
    :data:`MAX_NAME_CANDIDATES` sharing the most of its rarest trigrams (grams shared by
    more than :data:`GRAM_POSTINGS_BUDGET` companies in total are left out, as stop words).
    """
    seqs: set[int] = set()
    enough = MAX_SUGGESTIONS + 1  # within one domain every company scores the same
    for domain in sorted(email_domains | ({hint_domain} if hint_domain else set())):
        seqs.update(
            row[0]
            for row in store.rows(
                "SELECT seq FROM companies WHERE domain_key = ? ORDER BY seq LIMIT ?",
                (domain, enough),
            )
        )
    if hint_name:
        seqs.update(
            row[0]
            for row in store.rows("SELECT seq FROM companies WHERE name_key = ?", (hint_name,))
        )
        grams = sorted(name_grams(hint_name))
        marks = ", ".join("?" * len(grams))
        counts = store.rows(
            f"SELECT companies, gram FROM name_gram_counts WHERE gram IN ({marks})"
            " AND companies > 0 ORDER BY companies, gram",
            grams,
        )
        chosen: list[str] = []
        postings = 0
        for companies, gram in counts:
            if chosen and postings + companies > GRAM_POSTINGS_BUDGET:
                break
            chosen.append(gram)
            postings += companies
        if chosen:
            marks = ", ".join("?" * len(chosen))
            seqs.update(
                row[0]
                for row in store.rows(
                    f"SELECT company_seq FROM company_name_grams WHERE gram IN ({marks})"
                    " GROUP BY company_seq ORDER BY COUNT(*) DESC, company_seq LIMIT ?",
                    (*chosen, MAX_NAME_CANDIDATES),
                )
            )
    if not seqs:
        return []
    ordered = sorted(seqs)
    marks = ", ".join("?" * len(ordered))
    return store.rows(f"SELECT * FROM companies WHERE seq IN ({marks}) ORDER BY seq", ordered)


def _name_score(hint_name: str, company_key: str) -> float:
    """``80 ×`` the names' ``difflib`` similarity ratio, rounded to one decimal; 0 when it
    cannot reach the threshold."""
    if hint_name == company_key:
        return 80.0
    matcher = difflib.SequenceMatcher(None, hint_name, company_key)
    needed = CANDIDATE_THRESHOLD / 80.0
    if matcher.real_quick_ratio() < needed or matcher.quick_ratio() < needed:
        return 0.0  # cheap upper bounds: it cannot be a candidate on its name
    return round(80.0 * matcher.ratio(), 1)


def smart_link_result(
    store: Store,
    external_org_id: str,
    label: str | None,
    hints: dict[str, Any],
    min_confidence: float,
) -> dict[str, Any]:
    """Score companies against the hints and link or suggest (the contract's rules).

    Scores: hint domain = company domain → 95; a hint e-mail's domain = company domain →
    70; name → 80 × similarity of the normalised names. Candidates score >= 50; a single
    best candidate at or above ``min_confidence × 100`` is linked, otherwise up to five
    are suggested, best first (ties in creation order).
    """
    existing = store.linked_company(external_org_id)
    if existing is not None:
        return {
            "status": "already_linked",
            "companyId": existing["id"],
            "customerName": existing["name"],
            "confidence": 100.0,
            "suggestions": [],
        }
    hint_name = normalize_name(hints.get("companyName") or "")
    hint_domain = domain_key(hints.get("domain"))
    email_domains = {address.rsplit("@", 1)[1].lower() for address in hints.get("emails", [])}
    scored: list[tuple[float, str, sqlite3.Row]] = []
    for company in _candidates(store, hint_name, hint_domain, email_domains):
        options: list[tuple[float, str]] = []
        company_domain = company["domain_key"]
        if company_domain is not None and company_domain == hint_domain:
            options.append((95.0, "domain"))
        if hint_name and company["name_key"]:
            options.append((_name_score(hint_name, company["name_key"]), "name"))
        if company_domain is not None and company_domain in email_domains:
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
    scored.sort(key=lambda item: -item[0])  # stable: ties keep the creation order
    top_score, _, top = scored[0]
    unique_top = len(scored) == 1 or scored[1][0] < top_score
    if unique_top and top_score >= round(min_confidence * 100.0, 6):
        create_link(store, top["id"], external_org_id, label)
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


# -- the procedures --------------------------------------------------------------------------


@query("companies.getByProductLink", input=Obj({"externalOrgId": ID}))
def get_by_product_link(store: Store, args: dict[str, Any]) -> dict[str, Any] | None:
    """``companies.getByProductLink``: the linked company or ``None``."""
    row = store.linked_company(args["externalOrgId"])
    return shape_company(row) if row is not None else None


@mutation(
    "companies.create",
    input=Obj(
        {
            "name": ID,
            "domain": LABEL,
            "externalOrgId": OPTIONAL_ID,
            "label": LABEL,
            "contactEmail": F(email),
            "contactName": LABEL,
            "createdAt": F(timestamp),
        }
    ),
)
def create(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``companies.create``: the company, its product link and its primary contact."""
    external_org_id = args.get("externalOrgId")
    if external_org_id is not None and store.linked_company(external_org_id) is not None:
        raise ProcedureError(
            "CONFLICT", f'externalOrgId "{external_org_id}" is already linked to a company'
        )
    row = create_company(store, args["name"], args.get("domain"), args.get("createdAt"))
    if external_org_id is not None:
        create_link(store, row["id"], external_org_id, args.get("label"))
    if "contactEmail" in args:
        contact: dict[str, Any] = {"email": args["contactEmail"], "isPrimary": True}
        if "contactName" in args:
            contact["name"] = args["contactName"]
        upsert_contact(store, row["id"], contact)
    return shape_company(row)


@mutation(
    "companies.update",
    input=Obj({"companyId": ID, "name": F(ident), "domain": LABEL, "createdAt": F(timestamp)}),
)
def update(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``companies.update``: only the given fields change (``domain: ""`` clears it)."""
    row = store.company(args["companyId"])
    changes: dict[str, Any] = {}
    if "name" in args:
        changes["name"] = args["name"]
        changes["name_key"] = normalize_name(args["name"])
    if "domain" in args:
        changes["domain"] = args["domain"].strip() or None
        changes["domain_key"] = domain_key(args["domain"])
    if "createdAt" in args:
        changes["created_at"] = format_ts(args["createdAt"])
    changes["updated_at"] = store.stamp
    assignments = ", ".join(f"{column} = ?" for column in changes)
    store.execute(
        f"UPDATE companies SET {assignments} WHERE seq = ?", (*changes.values(), row["seq"])
    )
    if "name_key" in changes:
        index_name(store.conn, row["seq"], row["name_key"], changes["name_key"])
    return shape_company(store.company(row["id"]))


@mutation(
    "companies.smartLink",
    input=Obj(
        {
            "externalOrgId": ID,
            "label": F(text(max_length=1000), required=True),
            "hints": F(HINTS),
            "minConfidence": F(number(0, 1)),
        }
    ),
)
def smart_link(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``companies.smartLink``."""
    return smart_link_result(
        store,
        args["externalOrgId"],
        args["label"],
        args.get("hints", {}),
        args.get("minConfidence", DEFAULT_MIN_CONFIDENCE),
    )
