"""The SQLite schema of the local ChatarminOS and the code that writes its catalog.

Timestamps are stored as fixed-width UTC ISO-8601 text (see ``_store.format_ts``), JSON maps
as text, booleans as 0/1. Companies and contacts are global; product links and idempotency
keys are per product (``product_id`` is a hash of the API key, never the key). Companies
carry their domain and normalised name as indexed keys, ``company_name_grams`` the
trigrams of that name and ``name_gram_counts`` how common each trigram is: smart linking
finds its candidates through them.

Version 2 added those keys and the per-product idempotency keys; a version-1 database is
upgraded in place when it is opened (its existing idempotency keys stay unscoped: a later
call with the same key is counted).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ._store import format_ts

__all__ = [
    "SCHEMA_VERSION",
    "catalog_is_empty",
    "create_schema",
    "dangling_references",
    "write_catalog",
]

SCHEMA_VERSION = "2"
"""Version of the tables below, kept in ``meta``; a database of another version is refused."""

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS features (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT,
        metered INTEGER NOT NULL,
        position INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tiers (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT,
        position INTEGER NOT NULL,
        base_price_id TEXT,
        base_unit_amount INTEGER,
        base_currency TEXT,
        base_interval TEXT)""",
    """CREATE TABLE IF NOT EXISTS tier_features (
        tier_code TEXT NOT NULL,
        feature_code TEXT NOT NULL,
        position INTEGER NOT NULL,
        quantity_limit INTEGER,
        included_quantity INTEGER,
        config_values TEXT NOT NULL,
        stripe_price_id TEXT,
        PRIMARY KEY (tier_code, feature_code))""",
    """CREATE TABLE IF NOT EXISTS checkout_sessions (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        stripe_subscription_id TEXT,
        stripe_customer_id TEXT,
        tier_code TEXT)""",
    """CREATE TABLE IF NOT EXISTS stripe_subscriptions (
        id TEXT PRIMARY KEY,
        customer_id TEXT,
        status TEXT NOT NULL,
        tier_code TEXT,
        display_name TEXT,
        current_period_end TEXT)""",
    """CREATE TABLE IF NOT EXISTS companies (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        short_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        domain TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        mrr_cents INTEGER NOT NULL DEFAULT 0,
        stripe_customer_id TEXT,
        domain_key TEXT,
        name_key TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS company_name_grams (
        gram TEXT NOT NULL,
        company_seq INTEGER NOT NULL,
        PRIMARY KEY (gram, company_seq)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS short_id_counters (
        base TEXT PRIMARY KEY,
        next INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS name_gram_counts (
        gram TEXT PRIMARY KEY,
        companies INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS product_links (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        product_id TEXT NOT NULL,
        company_id TEXT NOT NULL REFERENCES companies (id),
        external_org_id TEXT NOT NULL,
        label TEXT,
        external_user_id TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (product_id, external_org_id))""",
    """CREATE TABLE IF NOT EXISTS contacts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        company_id TEXT NOT NULL REFERENCES companies (id),
        email TEXT NOT NULL,
        email_key TEXT NOT NULL,
        name TEXT,
        role TEXT,
        is_primary INTEGER NOT NULL DEFAULT 0,
        avatar_url TEXT,
        metadata TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (company_id, email_key))""",
    """CREATE TABLE IF NOT EXISTS feature_access (
        company_id TEXT NOT NULL REFERENCES companies (id),
        feature_code TEXT NOT NULL,
        is_enabled INTEGER NOT NULL,
        quantity_limit INTEGER,
        included_quantity INTEGER,
        config_values TEXT NOT NULL,
        source TEXT NOT NULL,
        valid_until TEXT,
        current_usage INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (company_id, feature_code))""",
    # Written on every billing.trackUsage: as few indexes as possible (each is a page per
    # commit); rows are never deleted, so the plain rowid keeps insertion order.
    """CREATE TABLE IF NOT EXISTS usage_events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        company_id TEXT NOT NULL REFERENCES companies (id),
        feature_code TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        idempotency_key TEXT,
        metadata TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at TEXT NOT NULL,
        product_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS subscriptions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        company_id TEXT NOT NULL REFERENCES companies (id),
        stripe_subscription_id TEXT UNIQUE,
        stripe_customer_id TEXT,
        checkout_session_id TEXT UNIQUE,
        status TEXT NOT NULL,
        tier_code TEXT,
        display_name TEXT,
        current_period_end TEXT,
        created_at TEXT NOT NULL)""",
)


_INDEXES = (
    "CREATE INDEX IF NOT EXISTS companies_domain_key ON companies (domain_key)",
    "CREATE INDEX IF NOT EXISTS companies_name_key ON companies (name_key)",
    "CREATE INDEX IF NOT EXISTS company_name_grams_company ON company_name_grams (company_seq)",
    """CREATE UNIQUE INDEX IF NOT EXISTS usage_events_key
        ON usage_events (product_id, company_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL""",
    "CREATE INDEX IF NOT EXISTS subscriptions_company ON subscriptions (company_id)",
)


def _upgrade_from_1(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2: the companies' matching keys and trigrams; per-product idempotency."""
    from .procedures.companies import domain_key, index_name, normalize_name

    conn.execute("ALTER TABLE companies ADD COLUMN domain_key TEXT")
    conn.execute("ALTER TABLE companies ADD COLUMN name_key TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE usage_events ADD COLUMN product_id TEXT")
    conn.execute("DROP INDEX IF EXISTS usage_events_idempotency")
    for seq, name, domain in conn.execute("SELECT seq, name, domain FROM companies").fetchall():
        key = normalize_name(name)
        conn.execute(
            "UPDATE companies SET domain_key = ?, name_key = ? WHERE seq = ?",
            (domain_key(domain), key, seq),
        )
        index_name(conn, seq, None, key)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table (idempotent), upgrade an older schema, check the version.

    Runs inside the caller's transaction. Raises ``RuntimeError`` for a database written
    by a newer version of chatarmin-os.
    """
    for statement in _DDL:
        conn.execute(statement)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is not None and row[0] == "1":
        _upgrade_from_1(conn)
    elif row is not None and row[0] != SCHEMA_VERSION:
        raise RuntimeError(
            f"the database uses schema version {row[0]}, this version of chatarmin-os knows "
            f"up to {SCHEMA_VERSION}; use a new database file or a newer chatarmin-os"
        )
    for statement in _INDEXES:
        conn.execute(statement)
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
    )


def catalog_is_empty(conn: sqlite3.Connection) -> bool:
    """Whether no feature and no tier is stored yet."""
    features = conn.execute("SELECT COUNT(*) FROM features").fetchone()[0]
    tiers = conn.execute("SELECT COUNT(*) FROM tiers").fetchone()[0]
    return bool(features == 0 and tiers == 0)


def _next_position(conn: sqlite3.Connection, table: str) -> int:
    """One past the largest ``position`` in ``table``."""
    value = conn.execute(f"SELECT COALESCE(MAX(position), -1) + 1 FROM {table}").fetchone()[0]
    return int(value)


def write_catalog(conn: sqlite3.Connection, catalog: dict[str, Any], *, replace: bool) -> None:
    """Store a normalised catalog; ``replace`` first deletes the stored catalog.

    Without ``replace`` entries are upserted: a feature or tier with a known code replaces
    the stored one in place (a tier's feature list is replaced as a whole), new ones are
    appended. Companies, their access rows, usage and subscriptions are never touched.
    """
    if replace:
        for table in (
            "features",
            "tiers",
            "tier_features",
            "checkout_sessions",
            "stripe_subscriptions",
        ):
            conn.execute(f"DELETE FROM {table}")
    for feature in catalog["features"]:
        row = conn.execute(
            "SELECT position FROM features WHERE code = ?", (feature["code"],)
        ).fetchone()
        position = row[0] if row is not None else _next_position(conn, "features")
        conn.execute(
            "INSERT OR REPLACE INTO features (code, name, description, metered, position)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                feature["code"],
                feature["name"],
                feature["description"],
                int(feature["metered"]),
                position,
            ),
        )
    for tier in catalog["tiers"]:
        row = conn.execute("SELECT position FROM tiers WHERE code = ?", (tier["code"],)).fetchone()
        position = row[0] if row is not None else _next_position(conn, "tiers")
        fee = tier["baseFee"] or {}
        conn.execute(
            "INSERT OR REPLACE INTO tiers (code, name, description, position, base_price_id,"
            " base_unit_amount, base_currency, base_interval) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tier["code"],
                tier["name"],
                tier["description"],
                position,
                fee.get("priceId"),
                fee.get("unitAmount"),
                fee.get("currency"),
                fee.get("interval"),
            ),
        )
        conn.execute("DELETE FROM tier_features WHERE tier_code = ?", (tier["code"],))
        for index, tf in enumerate(tier["features"]):
            conn.execute(
                "INSERT INTO tier_features (tier_code, feature_code, position, quantity_limit,"
                " included_quantity, config_values, stripe_price_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    tier["code"],
                    tf["featureCode"],
                    index,
                    tf["quantityLimit"],
                    tf["includedQuantity"],
                    json.dumps(tf["configValues"]),
                    tf["stripePriceId"],
                ),
            )
    for session in catalog["checkoutSessions"]:
        conn.execute(
            "INSERT OR REPLACE INTO checkout_sessions (id, status, stripe_subscription_id,"
            " stripe_customer_id, tier_code) VALUES (?, ?, ?, ?, ?)",
            (
                session["id"],
                session["status"],
                session["stripeSubscriptionId"],
                session["stripeCustomerId"],
                session["tierCode"],
            ),
        )
    for sub in catalog["stripeSubscriptions"]:
        period_end = sub["currentPeriodEnd"]
        conn.execute(
            "INSERT OR REPLACE INTO stripe_subscriptions (id, customer_id, status, tier_code,"
            " display_name, current_period_end) VALUES (?, ?, ?, ?, ?, ?)",
            (
                sub["id"],
                sub["customerId"],
                sub["status"],
                sub["tierCode"],
                sub["displayName"],
                format_ts(period_end) if period_end is not None else None,
            ),
        )


def dangling_references(conn: sqlite3.Connection) -> list[str]:
    """Catalog references that point nowhere (checked after :meth:`LocalEngine.seed`)."""
    problems: list[str] = []
    for tier_code, feature_code in conn.execute(
        "SELECT tier_code, feature_code FROM tier_features"
        " WHERE feature_code NOT IN (SELECT code FROM features) ORDER BY tier_code, position"
    ):
        problems.append(f"tier {tier_code!r} lists unknown feature {feature_code!r}")
    for table, label in (
        ("checkout_sessions", "checkout session"),
        ("stripe_subscriptions", "Stripe subscription"),
    ):
        for ident, tier_code in conn.execute(
            f"SELECT id, tier_code FROM {table}"
            " WHERE tier_code IS NOT NULL AND tier_code NOT IN (SELECT code FROM tiers) ORDER BY id"
        ):
            problems.append(f"{label} {ident!r} names unknown tier {tier_code!r}")
    return problems
