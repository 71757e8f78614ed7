"""Tests of the local ChatarminOS engine, through ``LocalEngine.call`` with a fixed clock."""

from __future__ import annotations

import difflib
import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chatarmin_os._procedures import NO_INPUT
from chatarmin_os.local import (
    DEFAULT_API_KEY,
    PROCEDURES,
    LocalEngine,
    ProcedureError,
    SeedError,
    default_catalog,
    load_seed,
)
from chatarmin_os.local._registry import REGISTRY, mutation, query
from chatarmin_os.local.procedures import companies as companies_module
from tests.support.helpers import T0, Clock

KEY = DEFAULT_API_KEY
OTHER_KEY = "os_sk_other_product"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> Iterator[LocalEngine]:
    eng = LocalEngine(api_keys=(KEY, OTHER_KEY), clock=clock)
    yield eng
    eng.close()


def call(engine: LocalEngine, path: str, input: Any = None, *, key: str | None = KEY) -> Any:
    return engine.call(path, input, api_key=key)


def fails(
    engine: LocalEngine, code: str, path: str, input: Any = None, *, key: str | None = KEY
) -> str:
    with pytest.raises(ProcedureError) as info:
        engine.call(path, input, api_key=key)
    assert info.value.code == code, info.value
    return info.value.message


def company(engine: LocalEngine, name: str = "Acme Inc", **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = call(engine, "companies.create", {"name": name, **extra})
    return result


def enable(engine: LocalEngine, company_id: str, feature: str = "ai_credit", **fields: Any) -> Any:
    return call(
        engine,
        "features.setAccess",
        {"companyId": company_id, "featureCode": feature, "isEnabled": True, **fields},
    )


def track(engine: LocalEngine, company_id: str, quantity: int = 1, **extra: Any) -> Any:
    return call(
        engine,
        "billing.trackUsage",
        {"companyId": company_id, "featureCode": "ai_credit", "quantity": quantity, **extra},
    )


# -- procedures, auth, paths -------------------------------------------------------------


def test_procedures_table() -> None:
    assert len(PROCEDURES) == 22
    assert PROCEDURES["tiers.applyTier"] == "mutation"
    assert PROCEDURES["onboard"] == "mutation"
    assert PROCEDURES["tiers.list"] == "query"
    assert PROCEDURES["companies.getByProductLink"] == "query"
    assert PROCEDURES["companies.smartLink"] == "mutation"
    assert {kind for kind in PROCEDURES.values()} == {"query", "mutation"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_the_registry_is_the_shared_table_and_one_module_per_namespace() -> None:
    # The server declares each procedure once; the SDK reads chatarmin_os._procedures.
    assert {path: p.kind for path, p in REGISTRY.items()} == PROCEDURES
    assert {path for path, p in REGISTRY.items() if p.input is None} == NO_INPUT
    for path, procedure in REGISTRY.items():
        namespace, _, name = path.rpartition(".")
        # features.check is chatarmin_os.local.procedures.features.check, onboard is onboard.onboard
        module = f"chatarmin_os.local.procedures.{namespace or name}"
        assert procedure.handler.__module__ == module, path
        expected = _snake(name)
        assert procedure.handler.__name__ in (expected, expected + "_"), path


def test_a_declaration_disagreeing_with_the_shared_table_fails_at_import() -> None:
    with pytest.raises(RuntimeError, match="declared as a mutation"):
        mutation("features.check", input=None)
    with pytest.raises(RuntimeError, match="does not exist"):
        query("features.nope", input=None)
    with pytest.raises(RuntimeError, match="NO_INPUT"):
        query("tiers.get", input=None)
    with pytest.raises(RuntimeError, match="declared twice"):
        query("tiers.list", input=None)


def test_auth_failures(engine: LocalEngine) -> None:
    assert "Missing" in fails(engine, "UNAUTHORIZED", "tiers.list", key=None)
    fails(engine, "UNAUTHORIZED", "tiers.list", key="os_sk_wrong")
    fails(engine, "UNAUTHORIZED", "tiers.list", key="")
    # Authentication comes before the path and the input are looked at.
    fails(engine, "UNAUTHORIZED", "nope.nothing", key=None)
    fails(engine, "UNAUTHORIZED", "billing.trackUsage", {"quantity": 0}, key="bad")


def test_unknown_path(engine: LocalEngine) -> None:
    message = fails(engine, "NOT_FOUND", "tiers.apply", {})
    assert message == 'No procedure found on path "tiers.apply"'
    fails(engine, "NOT_FOUND", "", None)


def test_engine_never_keeps_the_key(tmp_path: Path) -> None:
    db = tmp_path / "os.db"
    eng = LocalEngine(str(db), api_keys=["os_sk_secret_value"])
    call(eng, "companies.create", {"name": "X", "externalOrgId": "o"}, key="os_sk_secret_value")
    eng.close()
    assert b"os_sk_secret_value" not in db.read_bytes()
    assert "secret" not in repr(eng)


# -- strict validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload", "expected"),
    [
        (
            "billing.trackUsage",
            {"companyId": "c", "featureCode": "f", "quantity": 0},
            "quantity: must be an integer >= 1 (got 0)",
        ),
        (
            "billing.trackUsage",
            {"companyId": "c", "featureCode": "f", "quantity": True},
            "quantity: must be an integer >= 1 (got true)",
        ),
        (
            "billing.trackUsage",
            {"companyId": "c", "featureCode": "f", "quantity": 1.0},
            "quantity: must be an integer >= 1 (got 1.0)",
        ),
        ("billing.trackUsage", {"companyId": "c", "featureCode": "f"}, "quantity: required"),
        (
            "billing.trackUsage",
            {"companyId": "c", "featureCode": "f", "quantity": 1, "extra": 1},
            "extra: unknown field",
        ),
        (
            "features.check",
            {"companyId": "", "featureCode": "f"},
            'companyId: must be a non-empty string (got "")',
        ),
        (
            "features.check",
            {"companyId": "   ", "featureCode": "f"},
            "companyId: must be a non-empty string",
        ),
        (
            "features.check",
            {"companyId": 5, "featureCode": "f"},
            "companyId: must be a non-empty string (got 5)",
        ),
        (
            "companies.smartLink",
            {"externalOrgId": "o", "label": "L", "minConfidence": 1.5},
            "minConfidence: must be a number between 0 and 1 (got 1.5)",
        ),
        (
            "companies.smartLink",
            {"externalOrgId": "o", "label": "L", "minConfidence": -0.1},
            "minConfidence: must be a number between 0 and 1",
        ),
        (
            "companies.smartLink",
            {"externalOrgId": "o", "label": "L", "hints": {"emails": ["nope"]}},
            'hints.emails[0]: must be an email address (got "nope")',
        ),
        ("companies.smartLink", {"externalOrgId": "o"}, "label: required"),
        (
            "contacts.bulkUpsert",
            {"companyId": "c", "contacts": []},
            "contacts: must hold 1 to 1000 items (got 0)",
        ),
        (
            "contacts.bulkUpsert",
            {"companyId": "c", "contacts": [{"email": "a@b.co"}] * 1001},
            "contacts: must hold 1 to 1000 items (got 1001)",
        ),
        (
            "contacts.bulkUpsert",
            {"companyId": "c", "contacts": [{"email": "a@b.co"}, {"mail": "x"}]},
            "contacts[1].mail: unknown field; contacts[1].email: required",
        ),
        (
            "contacts.create",
            {"companyId": "c", "email": "a@b.co", "metadata": []},
            "metadata: must be an object (got an array)",
        ),
        (
            "features.setAccess",
            {"featureCode": "f"},
            "companyId: required (or give externalOrgId instead)",
        ),
        (
            "features.setAccess",
            {"companyId": "c", "externalOrgId": "o", "featureCode": "f"},
            "externalOrgId: give either companyId or externalOrgId, not both",
        ),
        (
            "features.setAccess",
            {"companyId": "c", "featureCode": "f", "source": "stripe"},
            'source: must be one of "subscription", "manual", "trial", "api" (got "stripe")',
        ),
        (
            "features.setAccess",
            {"companyId": "c", "featureCode": "f", "quantityLimit": -1},
            "quantityLimit: must be an integer >= 0 (got -1)",
        ),
        (
            "features.setAccess",
            {"companyId": "c", "featureCode": "f", "isEnabled": 1},
            "isEnabled: must be a boolean (got 1)",
        ),
        (
            "features.setAccess",
            {"companyId": "c", "featureCode": "f", "validUntil": "2025-12-31T00:00:00"},
            "validUntil: must be an ISO-8601 timestamp with a UTC offset, e.g. "
            '2024-01-15T10:30:00.000Z (got "2025-12-31T00:00:00")',
        ),
        (
            "features.setAccess",
            {"companyId": "c", "featureCode": "f", "validUntil": datetime(2025, 1, 1)},
            "validUntil: must be an ISO-8601 timestamp with a UTC offset",
        ),
        (
            "features.setAccess",
            {"companyId": "c", "featureCode": "f", "validUntil": "2025-02-30T00:00:00Z"},
            "validUntil: must be an ISO-8601 timestamp with a UTC offset",
        ),
        ("companies.create", {"name": "A", "domain": None}, "domain: must be a string (got null)"),
        (
            "companies.create",
            {"name": "A", "createdAt": "yesterday"},
            "createdAt: must be an ISO-8601 timestamp",
        ),
        ("companies.create", {}, "name: required"),
        (
            "tiers.applyTier",
            {
                "tierCode": "pro",
                "companyId": "c",
                "features": {"ai_credit": {"max_quantity": "10"}},
            },
            'features.ai_credit.max_quantity: must be an integer >= 0 (got "10")',
        ),
        ("features.listAccess", None, "input: must be an object (got null)"),
        ("features.listAccess", [1], "input: must be an object (got an array)"),
        ("links.reset", {"deleteContacts": "yes"}, 'deleteContacts: must be a boolean (got "yes")'),
    ],
)
def test_strict_validation(engine: LocalEngine, path: str, payload: Any, expected: str) -> None:
    assert fails(engine, "BAD_REQUEST", path, payload).startswith(expected)


def test_timestamps_accept_z_offsets_and_aware_datetimes(engine: LocalEngine) -> None:
    a = company(engine, "A", createdAt="2024-01-15T10:30:00.000Z")
    b = company(engine, "B", createdAt="2024-01-15T12:30:00+02:00")
    c = company(
        engine, "C", createdAt=datetime(2024, 1, 15, 5, 30, tzinfo=timezone(timedelta(hours=-5)))
    )
    d = company(engine, "D")
    for created in (a, b, c):
        assert created["createdAt"] == T0
        assert created["createdAt"].tzinfo is not None
        assert created["createdAt"].utcoffset() == timedelta(0)
    assert d["createdAt"] == T0  # the clock


def test_no_input_procedures(engine: LocalEngine) -> None:
    assert [t["code"] for t in call(engine, "tiers.list", None)] == ["free", "pro", "enterprise"]
    assert call(engine, "tiers.list", {}) == call(engine, "tiers.list", None)
    assert call(engine, "links.reset", None) == {
        "linksDeleted": 0,
        "contactsDeleted": 0,
        "mrrReset": False,
    }
    assert call(engine, "links.reset", {})["linksDeleted"] == 0


LONE = "\ud800"
"""What JSON's ``"\\ud800"`` decodes to: not Unicode text, and SQLite cannot store it."""


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("companies.create", {"name": LONE}, "name"),
        ("companies.create", {"name": "Acme", "domain": f"a{LONE}.com"}, "domain"),
        ("companies.create", {"name": "Acme", "contactEmail": f"{LONE}@acme.com"}, "contactEmail"),
        ("companies.getByProductLink", {"externalOrgId": LONE}, "externalOrgId"),
        ("onboard", {"externalOrgId": "o", "label": LONE}, "label"),
        ("onboard", {"externalOrgId": "o", "label": "L", "hints": {"companyName": LONE}}, "hints"),
        (
            "contacts.create",
            {"companyId": "c", "email": "a@b.co", "metadata": {"k": [LONE]}},
            "metadata.k[0]",
        ),
        (
            "contacts.create",
            {"companyId": "c", "email": "a@b.co", "metadata": {LONE: 1}},
            "metadata",
        ),
        (
            "billing.trackUsage",
            {"companyId": "c", "featureCode": "f", "quantity": 1, "idempotencyKey": LONE},
            "idempotencyKey",
        ),
        (
            "tiers.applyTier",
            {"tierCode": "pro", "companyId": "c", "features": {LONE: {}}},
            "features",
        ),
    ],
)
def test_a_lone_surrogate_in_any_string_is_a_bad_request(
    engine: LocalEngine, path: str, payload: Any, field: str
) -> None:
    message = fails(engine, "BAD_REQUEST", path, payload)
    assert message.startswith(field)
    assert "Unicode" in message
    message.encode("utf-8")  # the message itself is sendable
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "o"}) is None


def test_an_unknown_field_named_with_a_lone_surrogate_is_reported_sendably(
    engine: LocalEngine,
) -> None:
    message = fails(engine, "BAD_REQUEST", "tiers.get", {"tierCode": "pro", LONE: 1})
    assert message == "\\ud800: unknown field"
    message.encode("utf-8")


def test_a_validation_message_lists_at_most_ten_issues(engine: LocalEngine) -> None:
    contacts = [{"email": f"not-an-address-{i}"} for i in range(50)]
    message = fails(
        engine, "BAD_REQUEST", "contacts.bulkUpsert", {"companyId": "c", "contacts": contacts}
    )
    assert message.count("must be an email address") == 10
    assert message.endswith("; and 40 more")


# -- companies ---------------------------------------------------------------------------


def test_create_company_short_ids_unique(engine: LocalEngine) -> None:
    first = company(engine, "Acme Inc")
    assert uuid.UUID(first["id"]).version == 4
    assert first == {
        "id": first["id"],
        "shortId": "acme-inc",
        "name": "Acme Inc",
        "domain": None,
        "createdAt": T0,
    }
    assert company(engine, "Acme, Inc.")["shortId"] == "acme-inc-2"
    assert company(engine, "ACME inc")["shortId"] == "acme-inc-3"
    assert company(engine, "  Müller & Söhne GmbH ")["shortId"] == "muller-sohne-gmbh"
    assert company(engine, "!!!")["shortId"] == "company"
    # A name whose slug looks like a numbered one is skipped over.
    assert company(engine, "Acme Inc 4")["shortId"] == "acme-inc-4"
    assert company(engine, "Acme Inc")["shortId"] == "acme-inc-5"


def test_the_thousandth_namesake_costs_what_the_second_did(engine: LocalEngine) -> None:
    conn = engine._conn
    assert conn is not None
    statements: list[str] = []
    for _ in range(300):
        statements.clear()
        conn.set_trace_callback(statements.append)
        try:
            last = company(engine, "Acme")
        finally:
            conn.set_trace_callback(None)
    assert last["shortId"] == "acme-300"
    lookups = sum("FROM companies WHERE short_id =" in sql for sql in statements)
    assert 1 <= lookups <= 3


def test_create_company_with_link_and_contact(engine: LocalEngine) -> None:
    created = company(
        engine,
        "Acme Inc",
        domain="acme.com",
        externalOrgId="org_1",
        label="My Product",
        contactEmail="John@Acme.com",
        contactName="John Doe",
    )
    assert created["domain"] == "acme.com"
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "org_1"}) == created
    [contact] = call(engine, "contacts.list", {"companyId": created["id"]})
    assert contact["email"] == "John@Acme.com"
    assert contact["name"] == "John Doe"
    assert contact["isPrimary"] is True


def test_create_company_conflict_leaves_nothing(engine: LocalEngine) -> None:
    company(engine, "Acme Inc", externalOrgId="org_1")
    message = fails(
        engine, "CONFLICT", "companies.create", {"name": "Acme Inc", "externalOrgId": "org_1"}
    )
    assert "org_1" in message
    # Nothing was created: the next "Acme Inc" gets the second slug.
    assert company(engine, "Acme Inc")["shortId"] == "acme-inc-2"


def test_get_by_product_link_not_linked(engine: LocalEngine) -> None:
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "nope"}) is None


def test_update_company(engine: LocalEngine, clock: Clock) -> None:
    created = company(engine, "Acme Inc", domain="acme.com")
    clock.advance(days=1)
    updated = call(
        engine,
        "companies.update",
        {"companyId": created["id"], "createdAt": "2023-06-01T00:00:00.000Z"},
    )
    assert updated["createdAt"] == datetime(2023, 6, 1, tzinfo=timezone.utc)
    assert updated["name"] == "Acme Inc"
    assert updated["domain"] == "acme.com"
    assert updated["shortId"] == "acme-inc"
    renamed = call(engine, "companies.update", {"companyId": created["id"], "name": "Acme Corp"})
    assert renamed["name"] == "Acme Corp"
    assert renamed["shortId"] == "acme-inc"  # stable
    fails(engine, "NOT_FOUND", "companies.update", {"companyId": "missing", "name": "X"})


def test_products_are_separate_but_companies_shared(engine: LocalEngine) -> None:
    created = company(engine, "Acme Inc", externalOrgId="org_1")
    assert (
        call(engine, "companies.getByProductLink", {"externalOrgId": "org_1"}, key=OTHER_KEY)
        is None
    )
    # The other product may link the same org id to the same (shared) company.
    link = call(
        engine,
        "links.create",
        {"companyId": created["id"], "externalOrgId": "org_1", "label": "Other"},
        key=OTHER_KEY,
    )
    assert link["companyId"] == created["id"]
    assert call(engine, "links.reset", key=OTHER_KEY)["linksDeleted"] == 1
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "org_1"}) == created


# -- smart linking -----------------------------------------------------------------------


def smart(
    engine: LocalEngine, org: str = "org_x", min_confidence: float | None = None, **hints: Any
) -> Any:
    payload: dict[str, Any] = {"externalOrgId": org, "label": "My Product", "hints": hints}
    if min_confidence is not None:
        payload["minConfidence"] = min_confidence
    return call(engine, "companies.smartLink", payload)


def test_smart_link_no_match(engine: LocalEngine) -> None:
    company(engine, "Acme Inc", domain="acme.com")
    assert smart(engine, companyName="Zebra Logistics", domain="zebra.io") == {
        "status": "no_match",
        "companyId": None,
        "customerName": None,
        "confidence": None,
        "suggestions": [],
    }
    assert (
        call(engine, "companies.smartLink", {"externalOrgId": "o", "label": "L"})["status"]
        == "no_match"
    )


def test_smart_link_by_domain_then_already_linked(engine: LocalEngine) -> None:
    acme = company(engine, "Acme Inc", domain="Acme.com")
    company(engine, "Acme Labs", domain="acmelabs.com")
    result = smart(engine, domain="ACME.COM", companyName="Something Else")
    assert result == {
        "status": "linked",
        "companyId": acme["id"],
        "customerName": "Acme Inc",
        "confidence": 95.0,
        "suggestions": [],
    }
    link = call(engine, "companies.getByProductLink", {"externalOrgId": "org_x"})
    assert link["id"] == acme["id"]
    again = smart(engine, companyName="Totally Different")
    assert again == {
        "status": "already_linked",
        "companyId": acme["id"],
        "customerName": "Acme Inc",
        "confidence": 100.0,
        "suggestions": [],
    }


def test_smart_link_name_normalisation(engine: LocalEngine) -> None:
    acme = company(engine, "ACME, Inc.")
    result = smart(engine, companyName="Acme GmbH")
    assert result["status"] == "linked"
    assert result["companyId"] == acme["id"]
    assert result["confidence"] == 80.0


def test_smart_link_email_domain_with_min_confidence(engine: LocalEngine) -> None:
    acme = company(engine, "Acme Inc", domain="acme.com")
    below = smart(engine, "org_a", emails=["bob@ACME.com", "x@gmail.com"])
    assert below["status"] == "suggestions"
    assert below["suggestions"] == [
        {
            "companyId": acme["id"],
            "name": "Acme Inc",
            "domain": "acme.com",
            "confidence": 70.0,
            "matchedBy": "email_domain",
        }
    ]
    # 0.7 * 100 is 70.00000000000001 in floating point: still a match.
    linked = smart(engine, "org_b", min_confidence=0.7, emails=["bob@acme.com"])
    assert linked["status"] == "linked"
    assert linked["confidence"] == 70.0


def test_smart_link_fuzzy_name_suggestion(engine: LocalEngine) -> None:
    company(engine, "Acme Industries")
    result = smart(engine, companyName="Acme Industry")
    expected = round(
        80 * difflib.SequenceMatcher(None, "acme industry", "acme industries").ratio(), 1
    )
    assert result["status"] == "suggestions"
    assert result["suggestions"][0]["matchedBy"] == "name"
    assert result["suggestions"][0]["confidence"] == expected
    assert 50 <= expected < 80
    relaxed = smart(engine, "org_2", min_confidence=0.5, companyName="Acme Industry")
    assert relaxed["status"] == "linked"
    assert relaxed["confidence"] == expected


def test_smart_link_tie_gives_suggestions(engine: LocalEngine) -> None:
    one = company(engine, "Acme")
    two = company(engine, "Acme GmbH")
    result = smart(engine, companyName="Acme Inc", min_confidence=0.1)
    assert result["status"] == "suggestions"
    assert [s["companyId"] for s in result["suggestions"]] == [one["id"], two["id"]]
    assert {s["confidence"] for s in result["suggestions"]} == {80.0}
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "org_x"}) is None


def test_smart_link_suggestions_capped_and_ordered(engine: LocalEngine) -> None:
    names = [
        "Acme Corporation Group",
        "Acme Cloud",
        "Acme Clouds",
        "Acme Clod",
        "Acme Clo",
        "Acme Cl",
        "Acme C",
    ]
    ids = {name: company(engine, name)["id"] for name in names}
    by_domain = company(engine, "Unrelated", domain="acme-cloud.io")
    result = smart(engine, companyName="Acme Cloudy", domain="acme-cloud.io", min_confidence=1.0)
    assert result["status"] == "suggestions"
    suggestions = result["suggestions"]
    assert len(suggestions) == 5
    assert suggestions[0] == {
        "companyId": by_domain["id"],
        "name": "Unrelated",
        "domain": "acme-cloud.io",
        "confidence": 95.0,
        "matchedBy": "domain",
    }
    confidences = [s["confidence"] for s in suggestions]
    assert confidences == sorted(confidences, reverse=True)
    scores = {
        name: round(80 * difflib.SequenceMatcher(None, "acme cloudy", name.lower()).ratio(), 1)
        for name in names
    }
    best_names = sorted(names, key=lambda n: -scores[n])[:4]
    assert [s["companyId"] for s in suggestions[1:]] == [ids[n] for n in best_names]
    assert all(s["matchedBy"] == "name" for s in suggestions[1:])


def test_smart_link_follows_renames_and_domain_changes(engine: LocalEngine) -> None:
    acme = company(engine, "Acme Inc", domain="acme.com")
    call(
        engine,
        "companies.update",
        {"companyId": acme["id"], "name": "Zebra Logistics", "domain": "zebra.io"},
    )
    assert smart(engine, "o1", companyName="Acme")["status"] == "no_match"
    assert smart(engine, "o2", domain="acme.com")["status"] == "no_match"
    assert smart(engine, "o3", companyName="Zebra Logistics GmbH")["companyId"] == acme["id"]
    assert smart(engine, "o4", domain="ZEBRA.io")["companyId"] == acme["id"]
    call(engine, "companies.update", {"companyId": acme["id"], "domain": ""})
    assert smart(engine, "o5", domain="zebra.io")["status"] == "no_match"


def test_smart_link_scores_only_indexed_candidates(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 300 similar names: a hint's name is scored against the exact match and at most 50
    # others (those sharing the most trigrams), not against every company.
    for i in range(300):
        company(engine, f"Company {i:03d}", domain="big.example")
    target = company(engine, "Company 777")
    scored: list[str] = []
    original = companies_module._name_score

    def counting(hint: str, key: str) -> float:
        scored.append(key)
        return original(hint, key)

    monkeypatch.setattr(companies_module, "_name_score", counting)
    exact = smart(engine, companyName="Company 777", min_confidence=1.0)
    assert exact["status"] == "suggestions"  # "Company 077" etc. score high too
    assert exact["suggestions"][0]["companyId"] == target["id"]
    assert exact["suggestions"][0]["confidence"] == 80.0
    assert "company 777" in scored
    assert len(scored) <= companies_module.MAX_NAME_CANDIDATES + 1
    # 300 companies share one domain: they all score 95, the first five are suggested.
    scored.clear()
    by_domain = smart(engine, "o2", domain="big.example")
    assert [s["confidence"] for s in by_domain["suggestions"]] == [95.0] * 5
    assert len(scored) == 0


# -- contacts ----------------------------------------------------------------------------


def test_contacts_upsert_case_insensitive_and_partial(engine: LocalEngine, clock: Clock) -> None:
    acme = company(engine)
    first = call(
        engine,
        "contacts.create",
        {
            "companyId": acme["id"],
            "email": "Alice@Acme.com",
            "name": "Alice",
            "role": "CEO",
            "avatarUrl": "https://example.com/a.png",
            "metadata": {"slackId": "U1", "a": 1},
        },
    )
    assert first["isNew"] is True
    assert first["isPrimary"] is False
    assert first["createdAt"] == first["updatedAt"] == T0
    clock.advance(minutes=5)
    second = call(
        engine,
        "contacts.create",
        {"companyId": acme["id"], "email": "alice@ACME.COM", "role": "CTO", "metadata": {"b": 2}},
    )
    assert second["isNew"] is False
    assert second["id"] == first["id"]
    assert second["name"] == "Alice"  # not given: unchanged
    assert second["role"] == "CTO"
    assert second["avatarUrl"] == "https://example.com/a.png"
    assert second["metadata"] == {"b": 2}  # replaced
    assert second["createdAt"] == T0
    assert second["updatedAt"] == T0 + timedelta(minutes=5)
    assert len(call(engine, "contacts.list", {"companyId": acme["id"]})) == 1
    fails(engine, "NOT_FOUND", "contacts.create", {"companyId": "nope", "email": "a@b.co"})


def test_contacts_one_primary_and_list_order(engine: LocalEngine) -> None:
    acme = company(engine)
    cid = acme["id"]
    for email in ("a@acme.com", "b@acme.com", "c@acme.com"):
        call(engine, "contacts.create", {"companyId": cid, "email": email})
    call(engine, "contacts.create", {"companyId": cid, "email": "b@acme.com", "isPrimary": True})
    assert [c["email"] for c in call(engine, "contacts.list", {"companyId": cid})] == [
        "b@acme.com",
        "a@acme.com",
        "c@acme.com",
    ]
    call(engine, "contacts.create", {"companyId": cid, "email": "c@acme.com", "isPrimary": True})
    listed = call(engine, "contacts.list", {"companyId": cid})
    assert [(c["email"], c["isPrimary"]) for c in listed] == [
        ("c@acme.com", True),
        ("a@acme.com", False),
        ("b@acme.com", False),
    ]
    [primary] = call(engine, "contacts.list", {"companyId": cid, "primaryOnly": True})
    assert primary["email"] == "c@acme.com"
    fails(engine, "NOT_FOUND", "contacts.list", {"companyId": "nope"})


def test_contacts_bulk_upsert(engine: LocalEngine) -> None:
    acme = company(engine)
    call(engine, "contacts.create", {"companyId": acme["id"], "email": "alice@acme.com"})
    result = call(
        engine,
        "contacts.bulkUpsert",
        {
            "companyId": acme["id"],
            "contacts": [
                {"email": "ALICE@acme.com", "name": "Alice", "role": "CEO", "isPrimary": True},
                {"email": "bob@acme.com", "name": "Bob", "role": "CTO"},
                {"email": "carol@acme.com", "name": "Carol", "isPrimary": True},
            ],
        },
    )
    assert result["created"] == 2
    assert result["updated"] == 1
    assert [(c["email"], c["isNew"], c["isPrimary"]) for c in result["contacts"]] == [
        ("alice@acme.com", False, False),  # final state: carol became primary after
        ("bob@acme.com", True, False),
        ("carol@acme.com", True, True),
    ]
    assert result["contacts"][0]["name"] == "Alice"
    fails(
        engine,
        "NOT_FOUND",
        "contacts.bulkUpsert",
        {"companyId": "x", "contacts": [{"email": "a@b.co"}]},
    )


# -- feature access ----------------------------------------------------------------------


def test_check_defaults_and_not_found(engine: LocalEngine) -> None:
    acme = company(engine)
    assert call(
        engine, "features.check", {"companyId": acme["id"], "featureCode": "ai_credit"}
    ) == {
        "featureCode": "ai_credit",
        "isEnabled": False,
        "canUse": False,
        "hasQuantity": True,
        "currentUsage": 0,
        "quantityLimit": None,
        "includedQuantity": None,
        "remaining": None,
    }
    assert (
        call(engine, "features.check", {"companyId": acme["id"], "featureCode": "sso"})[
            "hasQuantity"
        ]
        is False
    )
    assert "nope" in fails(
        engine, "NOT_FOUND", "features.check", {"companyId": acme["id"], "featureCode": "nope"}
    )
    fails(engine, "NOT_FOUND", "features.check", {"companyId": "nope", "featureCode": "sso"})


def test_list_access_covers_catalog(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"], "sso")
    listed = call(engine, "features.listAccess", {"companyId": acme["id"]})
    assert [f["featureCode"] for f in listed] == sorted(
        f["code"] for f in default_catalog()["features"]
    )
    by_code = {f["featureCode"]: f for f in listed}
    assert by_code["sso"]["isEnabled"] is True
    assert by_code["api_access"] == {
        "featureCode": "api_access",
        "isEnabled": False,
        "canUse": False,
        "hasQuantity": False,
        "currentUsage": 0,
        "quantityLimit": None,
        "includedQuantity": None,
        "remaining": None,
        "featureName": "API Access",
        "configValues": {},
        "source": "manual",
        "validUntil": None,
    }
    fails(engine, "NOT_FOUND", "features.listAccess", {"companyId": "nope"})


def test_set_access_merge_and_null_semantics(engine: LocalEngine) -> None:
    acme = company(engine, externalOrgId="org_1")
    first = call(
        engine,
        "features.setAccess",
        {
            "companyId": acme["id"],
            "featureCode": "ai_credit",
            "isEnabled": True,
            "quantityLimit": 1000,
            "includedQuantity": 100,
            "config": {"model": "gpt-4", "maxTokens": 4096},
            "source": "trial",
            "validUntil": "2025-12-31T00:00:00.000Z",
        },
    )
    assert first["source"] == "trial"
    assert first["remaining"] == 1000
    assert first["canUse"] is True
    assert first["validUntil"] == datetime(2025, 12, 31, tzinfo=timezone.utc)
    second = call(
        engine,
        "features.setAccess",
        {
            "externalOrgId": "org_1",
            "featureCode": "ai_credit",
            "config": {"maxTokens": 8000, "extra": None},
        },
    )
    assert second["configValues"] == {"model": "gpt-4", "maxTokens": 8000, "extra": None}
    assert second["quantityLimit"] == 1000  # not given: unchanged
    assert second["includedQuantity"] == 100
    assert second["isEnabled"] is True
    assert second["source"] == "manual"  # no source given
    assert second["validUntil"] == datetime(2025, 12, 31, tzinfo=timezone.utc)
    third = call(
        engine,
        "features.setAccess",
        {
            "companyId": acme["id"],
            "featureCode": "ai_credit",
            "quantityLimit": None,
            "validUntil": None,
            "includedQuantity": None,
        },
    )
    assert third["quantityLimit"] is None
    assert third["remaining"] is None
    assert third["includedQuantity"] is None
    assert third["validUntil"] is None
    assert third["featureName"] == "AI Credits"
    fails(
        engine,
        "NOT_FOUND",
        "features.setAccess",
        {"externalOrgId": "unlinked", "featureCode": "sso"},
    )
    fails(
        engine, "NOT_FOUND", "features.setAccess", {"companyId": acme["id"], "featureCode": "nope"}
    )


def test_set_access_new_row_only_config_stays_disabled(engine: LocalEngine) -> None:
    acme = company(engine)
    row = call(
        engine,
        "features.setAccess",
        {"companyId": acme["id"], "featureCode": "team_seats", "config": {"maxSeats": 50}},
    )
    assert row["isEnabled"] is False
    assert row["configValues"] == {"maxSeats": 50}


def test_valid_until_expiry(engine: LocalEngine, clock: Clock) -> None:
    acme = company(engine)
    enable(engine, acme["id"], quantityLimit=10, validUntil=(T0 + timedelta(hours=1)).isoformat())
    check = {"companyId": acme["id"], "featureCode": "ai_credit"}
    assert call(engine, "features.check", check)["isEnabled"] is True
    assert track(engine, acme["id"], 2)["currentUsage"] == 2
    clock.advance(hours=1)
    expired = call(engine, "features.check", check)
    assert expired["isEnabled"] is False
    assert expired["canUse"] is False
    assert expired["currentUsage"] == 2
    assert "expired" in fails(engine, "FORBIDDEN", "billing.trackUsage", {**check, "quantity": 1})
    assert call(engine, "billing.getStatus", {"companyId": acme["id"]})["enabledFeaturesCount"] == 0
    assert len(engine.usage_events(acme["id"])) == 1


def test_by_external_org_id(engine: LocalEngine) -> None:
    acme = company(engine, externalOrgId="org_1")
    enable(engine, acme["id"], quantityLimit=5)
    result = call(engine, "features.getAccessByExternalOrgId", {"externalOrgId": "org_1"})
    assert result["companyId"] == acme["id"]
    assert len(result["features"]) == 7
    access = call(
        engine,
        "features.checkByExternalOrgId",
        {"externalOrgId": "org_1", "featureCode": "ai_credit"},
    )
    assert access["remaining"] == 5
    assert "featureName" not in access
    fails(engine, "NOT_FOUND", "features.getAccessByExternalOrgId", {"externalOrgId": "nope"})
    fails(
        engine,
        "NOT_FOUND",
        "features.checkByExternalOrgId",
        {"externalOrgId": "nope", "featureCode": "sso"},
    )
    fails(
        engine,
        "NOT_FOUND",
        "features.checkByExternalOrgId",
        {"externalOrgId": "org_1", "featureCode": "nope"},
    )
    # Another product does not see this product's link.
    fails(
        engine,
        "NOT_FOUND",
        "features.getAccessByExternalOrgId",
        {"externalOrgId": "org_1"},
        key=OTHER_KEY,
    )


# -- usage -------------------------------------------------------------------------------


def test_track_usage_not_enabled_is_forbidden(engine: LocalEngine) -> None:
    acme = company(engine)
    assert "ai_credit" in fails(
        engine,
        "FORBIDDEN",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "ai_credit", "quantity": 1},
    )
    enable(engine, acme["id"], isEnabled=False)
    fails(
        engine,
        "FORBIDDEN",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "ai_credit", "quantity": 1},
    )
    for company_id, feature, missing in [
        (acme["id"], "nope", 'Feature "nope" not found'),
        ("nope", "ai_credit", 'Company "nope" not found'),
        ("nope", "nope", 'Company "nope" not found'),  # the company is looked at first
    ]:
        assert (
            fails(
                engine,
                "NOT_FOUND",
                "billing.trackUsage",
                {"companyId": company_id, "featureCode": feature, "quantity": 1},
            )
            == missing
        )
    enable(engine, acme["id"], "sso")
    assert "not metered" in fails(
        engine,
        "BAD_REQUEST",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "sso", "quantity": 1},
    )
    assert engine.usage_events() == []


def test_track_usage_figures_and_limit(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"], quantityLimit=100, includedQuantity=50)
    result = track(engine, acme["id"], 98, metadata={"model": "gpt-4"})
    assert result == {
        "featureCode": "ai_credit",
        "currentUsage": 98,
        "quantityLimit": 100,
        "includedQuantity": 50,
        "remaining": 2,
        "billableQuantity": 48,
        "isAtLimit": False,
        "duplicate": False,
    }
    message = fails(
        engine,
        "PRECONDITION_FAILED",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "ai_credit", "quantity": 5},
    )
    assert message == "Usage limit exceeded for ai_credit: 98 + 5 > 100"
    check = call(engine, "features.check", {"companyId": acme["id"], "featureCode": "ai_credit"})
    assert check["currentUsage"] == 98  # nothing counted
    at_limit = track(engine, acme["id"], 2)
    assert at_limit["isAtLimit"] is True
    assert at_limit["remaining"] == 0
    assert (
        call(engine, "features.check", {"companyId": acme["id"], "featureCode": "ai_credit"})[
            "canUse"
        ]
        is False
    )
    events = engine.usage_events(acme["id"], "ai_credit")
    assert [(e["quantity"], e["metadata"]) for e in events] == [(98, {"model": "gpt-4"}), (2, {})]
    assert events[0] == {
        "companyId": acme["id"],
        "featureCode": "ai_credit",
        "quantity": 98,
        "idempotencyKey": None,
        "metadata": {"model": "gpt-4"},
        "createdAt": T0,
    }
    assert engine.usage_events(feature_code="team_seats") == []


def test_track_usage_unlimited(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"])
    result = track(engine, acme["id"], 10_000)
    assert result["remaining"] is None
    assert result["isAtLimit"] is False
    assert result["billableQuantity"] == 10_000


def test_idempotency_returns_first_figures(engine: LocalEngine) -> None:
    acme = company(engine)
    other = company(engine, "Other")
    enable(engine, acme["id"], quantityLimit=100)
    enable(engine, other["id"], quantityLimit=100)
    first = track(engine, acme["id"], 5, idempotencyKey="req_1")
    track(engine, acme["id"], 3)
    again = track(engine, acme["id"], 5, idempotencyKey="req_1")
    assert again == {**first, "duplicate": True}
    assert again["currentUsage"] == 5
    # Same key, other company: counted.
    assert track(engine, other["id"], 5, idempotencyKey="req_1")["duplicate"] is False
    assert (
        call(engine, "features.check", {"companyId": acme["id"], "featureCode": "ai_credit"})[
            "currentUsage"
        ]
        == 8
    )
    assert [e["idempotencyKey"] for e in engine.usage_events(acme["id"])] == ["req_1", None]


def test_a_first_answer_stored_as_json_by_an_earlier_version_is_still_answered(
    engine: LocalEngine,
) -> None:
    acme = company(engine)
    enable(engine, acme["id"], quantityLimit=100, includedQuantity=10)
    first = track(engine, acme["id"], 5, idempotencyKey="req_1")
    assert first == {
        "featureCode": "ai_credit",
        "currentUsage": 5,
        "quantityLimit": 100,
        "includedQuantity": 10,
        "remaining": 95,
        "billableQuantity": 0,
        "isAtLimit": False,
        "duplicate": False,
    }
    conn = engine._open_conn()
    [stored] = conn.execute("SELECT result FROM usage_events").fetchone()
    assert stored == "5,100,10"  # the figures; the rest of the answer follows from them
    # As earlier versions stored it: the whole answer, as JSON (a figure changed to tell).
    conn.execute("UPDATE usage_events SET result = ?", (json.dumps({**first, "remaining": 7}),))
    again = track(engine, acme["id"], 5, idempotencyKey="req_1")
    assert again == {**first, "remaining": 7, "duplicate": True}


def test_an_idempotency_key_reused_for_another_call_is_a_conflict(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"], quantityLimit=100)
    enable(engine, acme["id"], "team_seats", quantityLimit=100)
    first = track(engine, acme["id"], 5, idempotencyKey="req_1", metadata={"a": 1, "b": [2]})
    # The same call again (metadata keys in another order): a duplicate.
    again = track(engine, acme["id"], 5, idempotencyKey="req_1", metadata={"b": [2], "a": 1})
    assert again == {**first, "duplicate": True}
    for change, named in [
        ({"quantity": 6}, "quantity"),
        ({"featureCode": "team_seats"}, "featureCode"),
        ({"metadata": {"a": 1}}, "metadata"),
        ({"metadata": {"a": True, "b": [2]}}, "metadata"),  # true is not 1
        ({"quantity": 6, "featureCode": "team_seats"}, "featureCode, quantity"),
    ]:
        payload = {
            "companyId": acme["id"],
            "featureCode": "ai_credit",
            "quantity": 5,
            "idempotencyKey": "req_1",
            "metadata": {"a": 1, "b": [2]},
            **change,
        }
        message = fails(engine, "CONFLICT", "billing.trackUsage", payload)
        assert message == (
            f'Idempotency key "req_1" was already used with another {named}; '
            "use a new key for a different call"
        )
    # Nothing was counted by the refused calls; a key per feature works.
    assert [e["quantity"] for e in engine.usage_events(acme["id"])] == [5]
    other = track(
        engine, acme["id"], 5, idempotencyKey="req_1:team_seats", featureCode="team_seats"
    )
    assert other["duplicate"] is False


def test_a_missing_metadata_is_the_empty_object_for_idempotency(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"])
    first = track(engine, acme["id"], 1, idempotencyKey="k")
    assert track(engine, acme["id"], 1, idempotencyKey="k", metadata={})["duplicate"] is True
    assert first["duplicate"] is False


def test_idempotency_keys_are_per_product(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"])
    track(engine, acme["id"], 2, idempotencyKey="req_1")
    other = call(
        engine,
        "billing.trackUsage",
        {
            "companyId": acme["id"],
            "featureCode": "ai_credit",
            "quantity": 3,
            "idempotencyKey": "req_1",
        },
        key=OTHER_KEY,
    )
    assert other["duplicate"] is False
    assert other["currentUsage"] == 5


def test_unlimited_usage_stops_at_the_largest_safe_integer(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"], quantityLimit=None)
    top = 2**53 - 1
    assert track(engine, acme["id"], top)["currentUsage"] == top
    message = fails(
        engine,
        "PRECONDITION_FAILED",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "ai_credit", "quantity": 1},
    )
    assert message == f"Usage limit exceeded for ai_credit: {top} + 1 > {top}"


def test_a_refused_call_leaves_no_trace_of_its_key(engine: LocalEngine) -> None:
    acme = company(engine)
    fails(
        engine,
        "FORBIDDEN",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "ai_credit", "quantity": 5, "idempotencyKey": "k"},
    )
    enable(engine, acme["id"], quantityLimit=3)
    fails(
        engine,
        "PRECONDITION_FAILED",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "ai_credit", "quantity": 5, "idempotencyKey": "k"},
    )
    fails(
        engine,
        "BAD_REQUEST",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "sso", "quantity": 5, "idempotencyKey": "k"},
    )
    enable(engine, acme["id"], quantityLimit=10)
    result = track(engine, acme["id"], 5, idempotencyKey="k")
    assert (result["currentUsage"], result["duplicate"]) == (5, False)


def test_concurrent_usage_never_exceeds_limit(clock: Clock) -> None:
    engine = LocalEngine(clock=clock)
    try:
        acme = company(engine)
        enable(engine, acme["id"], quantityLimit=100)
        accepted: list[int] = []
        refused: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(50):
                try:
                    track(engine, acme["id"], 1)
                    with lock:
                        accepted.append(1)
                except ProcedureError as error:
                    with lock:
                        refused.append(error.code)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(accepted) == 100
        assert refused == ["PRECONDITION_FAILED"] * 300
        check = call(
            engine, "features.check", {"companyId": acme["id"], "featureCode": "ai_credit"}
        )
        assert check["currentUsage"] == 100
        assert len(engine.usage_events(acme["id"])) == 100
    finally:
        engine.close()


# -- tiers -------------------------------------------------------------------------------


def test_tiers_list_and_get(engine: LocalEngine) -> None:
    tiers = call(engine, "tiers.list")
    assert [(t["code"], t["name"]) for t in tiers] == [
        ("free", "Free"),
        ("pro", "Pro"),
        ("enterprise", "Enterprise"),
    ]
    assert all(isinstance(t["description"], str) for t in tiers)
    free = call(engine, "tiers.get", {"tierCode": "free"})
    assert free["baseFee"] is None
    assert free["stripePriceIds"] == []
    assert free["features"] == [
        {"code": "ai_credit", "name": "AI Credits", "configValues": {}},
        {"code": "team_seats", "name": "Team Seats", "configValues": {"maxSeats": 3}},
        {"code": "api_access", "name": "API Access", "configValues": {}},
    ]
    pro = call(engine, "tiers.get", {"tierCode": "pro"})
    assert pro["baseFee"] == {
        "stripe": {
            "priceId": "price_pro_base",
            "unitAmount": 4900,
            "currency": "eur",
            "interval": "month",
        }
    }
    assert pro["stripePriceIds"] == ["price_pro_base", "price_pro_ai_credit"]
    enterprise = call(engine, "tiers.get", {"tierCode": "enterprise"})
    assert enterprise["baseFee"]["stripe"]["unitAmount"] == 49900
    assert len(enterprise["features"]) == 7
    fails(engine, "NOT_FOUND", "tiers.get", {"tierCode": "platinum"})


def test_apply_tier_with_overrides(engine: LocalEngine) -> None:
    acme = company(engine)
    enable(engine, acme["id"], "sso", config={"keep": True})
    result = call(
        engine,
        "tiers.applyTier",
        {
            "tierCode": "pro",
            "companyId": acme["id"],
            "features": {
                "ai_credit": {"included_quantity": 500, "model": "gpt-4"},
                "team_seats": {"max_quantity": 10, "maxSeats": 10},
            },
        },
    )
    assert result == {"companyId": acme["id"], "tierCode": "pro", "featuresApplied": 5}
    by_code = {
        f["featureCode"]: f for f in call(engine, "features.listAccess", {"companyId": acme["id"]})
    }
    assert by_code["ai_credit"]["includedQuantity"] == 500
    assert by_code["ai_credit"]["quantityLimit"] == 10000
    assert by_code["ai_credit"]["configValues"] == {"model": "gpt-4"}
    assert by_code["ai_credit"]["source"] == "subscription"
    assert by_code["team_seats"]["quantityLimit"] == 10
    assert by_code["team_seats"]["configValues"] == {"maxSeats": 10}
    assert by_code["custom_branding"]["isEnabled"] is True
    assert by_code["sso"]["source"] == "manual"  # not in the tier: untouched
    assert by_code["priority_support"]["isEnabled"] is False
    message = fails(
        engine,
        "BAD_REQUEST",
        "tiers.applyTier",
        {"tierCode": "free", "companyId": acme["id"], "features": {"sso": {"x": 1}}},
    )
    assert message.startswith("features.sso:")
    fails(engine, "NOT_FOUND", "tiers.applyTier", {"tierCode": "platinum", "companyId": acme["id"]})
    fails(engine, "NOT_FOUND", "tiers.applyTier", {"tierCode": "pro", "companyId": "nope"})


def test_apply_tier_keeps_usage(engine: LocalEngine) -> None:
    acme = company(engine)
    call(engine, "tiers.applyTier", {"tierCode": "free", "companyId": acme["id"]})
    track(engine, acme["id"], 100)
    fails(
        engine,
        "PRECONDITION_FAILED",
        "billing.trackUsage",
        {"companyId": acme["id"], "featureCode": "ai_credit", "quantity": 1},
    )
    call(engine, "tiers.applyTier", {"tierCode": "pro", "companyId": acme["id"]})
    assert track(engine, acme["id"], 1)["currentUsage"] == 101


# -- Stripe ------------------------------------------------------------------------------


def test_claim_checkout(engine: LocalEngine) -> None:
    acme = company(engine)
    status = call(engine, "billing.getStatus", {"companyId": acme["id"]})
    assert status == {
        "companyId": acme["id"],
        "hasBillingProfile": False,
        "activeSubscriptions": [],
        "enabledFeaturesCount": 0,
    }
    claim = {"companyId": acme["id"], "checkoutSessionId": "cs_test_pro_completed"}
    first = call(engine, "billing.claimCheckout", claim)
    assert first["alreadyClaimed"] is False
    assert first["tierCode"] == "pro"
    assert first["featuresApplied"] == 5
    assert uuid.UUID(first["subscriptionId"])
    status = call(engine, "billing.getStatus", {"companyId": acme["id"]})
    assert status["hasBillingProfile"] is True
    assert status["enabledFeaturesCount"] == 5
    assert status["activeSubscriptions"] == [
        {
            "id": first["subscriptionId"],
            "stripeSubscriptionId": "sub_test_pro",
            "status": "active",
            "displayName": "Pro Plan",
            "tier": {"code": "pro", "name": "Pro"},
            "currentPeriodEnd": datetime(2030, 1, 1, tzinfo=timezone.utc),
        }
    ]
    again = call(engine, "billing.claimCheckout", claim)
    assert again == {
        "subscriptionId": first["subscriptionId"],
        "alreadyClaimed": True,
        "tierCode": "pro",
        "featuresApplied": 0,
    }
    other = company(engine, "Other")
    by_other = call(
        engine,
        "billing.claimCheckout",
        {"companyId": other["id"], "checkoutSessionId": "cs_test_pro_completed"},
    )
    assert by_other["alreadyClaimed"] is True
    assert by_other["subscriptionId"] == first["subscriptionId"]
    assert (
        call(engine, "billing.getStatus", {"companyId": other["id"]})["enabledFeaturesCount"] == 0
    )
    fails(
        engine,
        "NOT_FOUND",
        "billing.claimCheckout",
        {"companyId": acme["id"], "checkoutSessionId": "cs_nope"},
    )
    assert "not complete" in fails(
        engine,
        "PRECONDITION_FAILED",
        "billing.claimCheckout",
        {"companyId": acme["id"], "checkoutSessionId": "cs_test_open"},
    )
    fails(
        engine,
        "NOT_FOUND",
        "billing.claimCheckout",
        {"companyId": "nope", "checkoutSessionId": "cs_test_open"},
    )


def test_link_subscription(engine: LocalEngine) -> None:
    acme = company(engine)
    other = company(engine, "Other")
    payload = {"companyId": acme["id"], "stripeSubscriptionId": "sub_test_existing_pro"}
    first = call(engine, "billing.linkSubscription", payload)
    assert first["alreadyLinked"] is False
    assert first["featuresApplied"] == 5
    again = call(engine, "billing.linkSubscription", {**payload, "tierCode": "enterprise"})
    assert again == {
        "subscriptionId": first["subscriptionId"],
        "alreadyLinked": True,
        "featuresApplied": 0,
    }
    assert call(engine, "billing.getStatus", {"companyId": acme["id"]})["enabledFeaturesCount"] == 5
    assert "another company" in fails(
        engine, "CONFLICT", "billing.linkSubscription", {**payload, "companyId": other["id"]}
    )
    # An id outside the catalog that looks like a Stripe id is trusted as active.
    trusted = call(
        engine,
        "billing.linkSubscription",
        {
            "companyId": other["id"],
            "stripeSubscriptionId": "sub_real_123",
            "stripeCustomerId": "cus_1",
            "tierCode": "enterprise",
            "displayName": "Ent",
        },
    )
    assert trusted["featuresApplied"] == 7
    status = call(engine, "billing.getStatus", {"companyId": other["id"]})
    assert status["hasBillingProfile"] is True
    [sub] = status["activeSubscriptions"]
    assert sub["displayName"] == "Ent"
    assert sub["tier"] == {"code": "enterprise", "name": "Enterprise"}
    assert sub["currentPeriodEnd"] is None
    no_tier = call(
        engine,
        "billing.linkSubscription",
        {"companyId": other["id"], "stripeSubscriptionId": "sub_no_tier"},
    )
    assert no_tier["featuresApplied"] == 0
    fails(
        engine,
        "BAD_REQUEST",
        "billing.linkSubscription",
        {"companyId": acme["id"], "stripeSubscriptionId": "bogus"},
    )
    fails(
        engine,
        "BAD_REQUEST",
        "billing.linkSubscription",
        {
            "companyId": acme["id"],
            "stripeSubscriptionId": "sub_test_pro",
            "stripeCustomerId": "cus_wrong",
        },
    )
    fails(
        engine,
        "NOT_FOUND",
        "billing.linkSubscription",
        {"companyId": acme["id"], "stripeSubscriptionId": "sub_x", "tierCode": "platinum"},
    )
    fails(engine, "NOT_FOUND", "billing.getStatus", {"companyId": "nope"})


# -- links -------------------------------------------------------------------------------


def test_links_create_and_reset(engine: LocalEngine) -> None:
    acme = company(engine, contactEmail="a@acme.com")
    beta = company(engine, "Beta", contactEmail="b@beta.com")
    gamma = company(engine, "Gamma", contactEmail="c@gamma.com")
    link = call(
        engine,
        "links.create",
        {
            "companyId": acme["id"],
            "externalOrgId": "org_1",
            "label": "Store Vienna",
            "externalUserId": "user_1",
        },
    )
    assert link == {
        "id": link["id"],
        "companyId": acme["id"],
        "externalOrgId": "org_1",
        "label": "Store Vienna",
        "externalUserId": "user_1",
        "createdAt": T0,
    }
    plain = call(engine, "links.create", {"companyId": beta["id"], "externalOrgId": "org_2"})
    assert plain["label"] is None
    assert plain["externalUserId"] is None
    fails(engine, "CONFLICT", "links.create", {"companyId": beta["id"], "externalOrgId": "org_1"})
    fails(engine, "NOT_FOUND", "links.create", {"companyId": "nope", "externalOrgId": "org_9"})
    call(
        engine, "links.create", {"companyId": gamma["id"], "externalOrgId": "org_3"}, key=OTHER_KEY
    )
    result = call(engine, "links.reset", {"deleteContacts": True, "resetMrr": True})
    assert result == {"linksDeleted": 2, "contactsDeleted": 2, "mrrReset": True}
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "org_1"}) is None
    assert call(engine, "contacts.list", {"companyId": acme["id"]}) == []
    assert len(call(engine, "contacts.list", {"companyId": gamma["id"]})) == 1
    assert (
        call(engine, "companies.getByProductLink", {"externalOrgId": "org_3"}, key=OTHER_KEY)["id"]
        == gamma["id"]
    )
    # Companies survive a reset.
    assert call(engine, "features.listAccess", {"companyId": acme["id"]})


# -- onboarding --------------------------------------------------------------------------


def test_onboard_create_then_already_linked(engine: LocalEngine) -> None:
    result = call(
        engine,
        "onboard",
        {
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "hints": {"companyName": "Acme Inc", "domain": "acme.com"},
            "tierCode": "free",
            "contactEmail": "john@acme.com",
            "contactName": "John Doe",
            "createdAt": "2024-01-01T00:00:00Z",
        },
    )
    assert result["linkStatus"] == "created"
    assert result["companyName"] == "Acme Inc"
    assert result["billingStatus"] == {
        "claimed": False,
        "linked": False,
        "tierApplied": True,
        "subscriptionId": None,
    }
    created = call(engine, "companies.getByProductLink", {"externalOrgId": "org_abc123"})
    assert created["id"] == result["companyId"]
    assert created["domain"] == "acme.com"
    assert created["createdAt"] == datetime(2024, 1, 1, tzinfo=timezone.utc)
    [contact] = call(engine, "contacts.list", {"companyId": result["companyId"]})
    assert (contact["email"], contact["name"], contact["isPrimary"]) == (
        "john@acme.com",
        "John Doe",
        True,
    )
    assert (
        call(
            engine, "features.check", {"companyId": result["companyId"], "featureCode": "ai_credit"}
        )["quantityLimit"]
        == 100
    )
    again = call(
        engine,
        "onboard",
        {"externalOrgId": "org_abc123", "label": "My Product", "contactEmail": "jane@acme.com"},
    )
    assert again == {
        "companyId": result["companyId"],
        "companyName": "Acme Inc",
        "linkStatus": "already_linked",
        "billingStatus": None,
    }
    contacts = call(engine, "contacts.list", {"companyId": result["companyId"]})
    assert [(c["email"], c["isPrimary"]) for c in contacts] == [
        ("john@acme.com", True),
        ("jane@acme.com", False),
    ]


def test_onboard_links_existing_company_by_domain(engine: LocalEngine) -> None:
    acme = company(engine, "Acme Inc", domain="acme.com")
    result = call(
        engine, "onboard", {"externalOrgId": "org_1", "label": "P", "hints": {"domain": "acme.com"}}
    )
    assert result == {
        "companyId": acme["id"],
        "companyName": "Acme Inc",
        "linkStatus": "linked",
        "billingStatus": None,
    }
    assert call(engine, "contacts.list", {"companyId": acme["id"]}) == []


def test_onboard_name_fallbacks(engine: LocalEngine) -> None:
    by_domain = call(
        engine, "onboard", {"externalOrgId": "org_1", "label": "P", "hints": {"domain": "zeta.io"}}
    )
    assert by_domain["companyName"] == "zeta.io"
    blank = call(
        engine,
        "onboard",
        {"externalOrgId": "org_3", "label": "P", "hints": {"companyName": " ", "domain": "eta.io"}},
    )
    assert blank["companyName"] == "eta.io"
    by_org = call(engine, "onboard", {"externalOrgId": "org_2", "label": "P"})
    assert by_org["companyName"] == "org_2"
    assert by_org["linkStatus"] == "created"


def test_onboard_checkout_then_tier(engine: LocalEngine) -> None:
    result = call(
        engine,
        "onboard",
        {
            "externalOrgId": "org_1",
            "label": "P",
            "hints": {"companyName": "Acme"},
            "checkoutSessionId": "cs_test_enterprise_completed",
            "tierCode": "free",
        },
    )
    billing = result["billingStatus"]
    assert billing["claimed"] is True
    assert billing["linked"] is False
    assert billing["tierApplied"] is True
    status = call(engine, "billing.getStatus", {"companyId": result["companyId"]})
    assert status["activeSubscriptions"][0]["id"] == billing["subscriptionId"]
    assert status["activeSubscriptions"][0]["tier"]["code"] == "enterprise"
    by_code = {
        f["featureCode"]: f
        for f in call(engine, "features.listAccess", {"companyId": result["companyId"]})
    }
    assert by_code["ai_credit"]["quantityLimit"] == 100  # free applied on top
    assert by_code["sso"]["isEnabled"] is True  # from the enterprise claim


def test_onboard_with_stripe_subscription(engine: LocalEngine) -> None:
    result = call(
        engine,
        "onboard",
        {
            "externalOrgId": "org_1",
            "label": "P",
            "hints": {"companyName": "Acme"},
            "stripeSubscriptionId": "sub_live_1",
            "stripeCustomerId": "cus_1",
            "tierCode": "pro",
        },
    )
    billing = result["billingStatus"]
    assert billing["linked"] is True
    assert billing["claimed"] is False
    assert billing["tierApplied"] is True
    status = call(engine, "billing.getStatus", {"companyId": result["companyId"]})
    assert status["activeSubscriptions"][0]["tier"] == {"code": "pro", "name": "Pro"}
    assert status["enabledFeaturesCount"] == 5


def test_onboard_failure_rolls_back_everything(engine: LocalEngine) -> None:
    payload = {
        "externalOrgId": "org_1",
        "label": "P",
        "hints": {"companyName": "Acme Inc"},
        "tierCode": "pro",
        "checkoutSessionId": "cs_missing",
        "contactEmail": "a@acme.com",
    }
    fails(engine, "NOT_FOUND", "onboard", payload)
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "org_1"}) is None
    fails(
        engine,
        "NOT_FOUND",
        "onboard",
        {**payload, "checkoutSessionId": "cs_test_pro_completed", "tierCode": "platinum"},
    )
    fails(
        engine, "PRECONDITION_FAILED", "onboard", {**payload, "checkoutSessionId": "cs_test_open"}
    )
    assert call(engine, "companies.getByProductLink", {"externalOrgId": "org_1"}) is None
    # No company was left behind: smart linking finds nothing and the slug is still free.
    assert smart(engine, "org_probe", companyName="Acme Inc")["status"] == "no_match"
    assert company(engine, "Acme Inc")["shortId"] == "acme-inc"
    # And the checkout session was not claimed by the rolled-back company.
    other = company(engine, "Other")
    claimed = call(
        engine,
        "billing.claimCheckout",
        {"companyId": other["id"], "checkoutSessionId": "cs_test_pro_completed"},
    )
    assert claimed["alreadyClaimed"] is False


# -- persistence and seeds ---------------------------------------------------------------


def test_file_database_persists(tmp_path: Path, clock: Clock) -> None:
    db = str(tmp_path / "os.db")
    first = LocalEngine(db, clock=clock)
    acme = company(first, externalOrgId="org_1")
    enable(first, acme["id"], quantityLimit=10)
    track(first, acme["id"], 3, idempotencyKey="k1")
    first.close()
    with pytest.raises(RuntimeError):
        first.call("tiers.list", None, api_key=KEY)
    second = LocalEngine(db, clock=clock)
    try:
        assert call(second, "companies.getByProductLink", {"externalOrgId": "org_1"}) == acme
        assert track(second, acme["id"], 3, idempotencyKey="k1")["duplicate"] is True
        assert (
            call(second, "features.check", {"companyId": acme["id"], "featureCode": "ai_credit"})[
                "currentUsage"
            ]
            == 3
        )
        assert len(second.usage_events(acme["id"])) == 1
        assert len(call(second, "tiers.list")) == 3
    finally:
        second.close()


def test_two_engines_share_a_file_database(tmp_path: Path, clock: Clock) -> None:
    db = str(tmp_path / "shared.db")
    engines = [LocalEngine(db, clock=clock), LocalEngine(db, clock=clock)]
    try:
        acme = company(engines[0])
        enable(engines[1], acme["id"], quantityLimit=30)
        accepted: list[int] = []
        refused: list[str] = []
        lock = threading.Lock()

        def worker(eng: LocalEngine) -> None:
            for _ in range(20):
                try:
                    track(eng, acme["id"], 1)
                    with lock:
                        accepted.append(1)
                except ProcedureError as error:
                    with lock:
                        refused.append(error.code)

        threads = [threading.Thread(target=worker, args=(eng,)) for eng in engines * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(accepted) == 30
        assert refused == ["PRECONDITION_FAILED"] * 50
        for eng in engines:
            check = call(
                eng, "features.check", {"companyId": acme["id"], "featureCode": "ai_credit"}
            )
            assert check["currentUsage"] == 30
    finally:
        for eng in engines:
            eng.close()


def test_seed_replaces_catalog_and_persists(tmp_path: Path) -> None:
    db = str(tmp_path / "os.db")
    seed = {
        "features": [{"code": "widgets", "name": "Widgets", "metered": True}],
        "tiers": [
            {
                "code": "basic",
                "name": "Basic",
                "features": [{"featureCode": "widgets", "quantityLimit": 5}],
            }
        ],
    }
    LocalEngine(db, seed=seed).close()
    reopened = LocalEngine(db)  # no seed: keeps the stored catalog
    try:
        assert call(reopened, "tiers.list") == [
            {"code": "basic", "name": "Basic", "description": None}
        ]
        acme = company(reopened)
        assert [
            f["featureCode"]
            for f in call(reopened, "features.listAccess", {"companyId": acme["id"]})
        ] == ["widgets"]
        fails(
            reopened,
            "NOT_FOUND",
            "billing.claimCheckout",
            {"companyId": acme["id"], "checkoutSessionId": "cs_test_pro_completed"},
        )
    finally:
        reopened.close()


def test_live_seed_adds_entries(engine: LocalEngine) -> None:
    engine.seed(
        {
            "tiers": [
                {
                    "code": "trial",
                    "name": "Trial",
                    "features": [{"featureCode": "ai_credit", "quantityLimit": 10}],
                }
            ],
            "checkoutSessions": [
                {
                    "id": "cs_trial",
                    "status": "complete",
                    "stripeSubscriptionId": "sub_trial",
                    "tierCode": "trial",
                }
            ],
        }
    )
    assert [t["code"] for t in call(engine, "tiers.list")] == ["free", "pro", "enterprise", "trial"]
    acme = company(engine)
    claimed = call(
        engine, "billing.claimCheckout", {"companyId": acme["id"], "checkoutSessionId": "cs_trial"}
    )
    assert claimed["featuresApplied"] == 1
    with pytest.raises(SeedError, match="unknown feature 'nope'"):
        engine.seed(
            {"tiers": [{"code": "bad", "name": "Bad", "features": [{"featureCode": "nope"}]}]}
        )
    assert len(call(engine, "tiers.list")) == 4  # nothing stored


def test_load_seed(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(
        json.dumps(
            {
                "features": [{"code": "a", "name": "A"}],
                "tiers": [{"code": "t", "name": "T", "features": [{"featureCode": "a"}]}],
            }
        )
    )
    loaded = load_seed(path)
    assert loaded["features"] == [{"code": "a", "name": "A", "description": None, "metered": False}]
    assert loaded["tiers"][0]["features"][0] == {
        "featureCode": "a",
        "quantityLimit": None,
        "includedQuantity": None,
        "configValues": {},
        "stripePriceId": None,
    }
    path.write_text(
        json.dumps(
            {"tiers": [{"code": "t", "name": "T", "features": [{"featureCode": "missing"}]}]}
        )
    )
    with pytest.raises(
        SeedError, match=r"tiers\[0\]\.features\[0\]\.featureCode: unknown feature 'missing'"
    ):
        load_seed(path)
    path.write_text(json.dumps({"features": [{"code": "a", "name": "A", "color": "red"}]}))
    with pytest.raises(SeedError, match=r"features\[0\]\.color: unknown field"):
        load_seed(path)
    path.write_text(json.dumps({"checkoutSessions": [{"id": "cs", "status": "complete"}]}))
    with pytest.raises(SeedError, match=r"checkoutSessions\[0\]\.stripeSubscriptionId: required"):
        load_seed(path)
    path.write_text("{not json")
    with pytest.raises(SeedError, match="not valid JSON"):
        load_seed(path)
    with pytest.raises(SeedError, match="cannot read"):
        load_seed(tmp_path / "missing.json")
    with pytest.raises(SeedError):
        LocalEngine(seed={"features": "nope"})


V1_COMPANIES = """CREATE TABLE companies (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    short_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, domain TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, mrr_cents INTEGER NOT NULL DEFAULT 0, stripe_customer_id TEXT)"""
V1_USAGE = """CREATE TABLE usage_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    company_id TEXT NOT NULL REFERENCES companies (id), feature_code TEXT NOT NULL,
    quantity INTEGER NOT NULL, idempotency_key TEXT, metadata TEXT NOT NULL,
    result TEXT NOT NULL, created_at TEXT NOT NULL)"""


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        {V1_COMPANIES};
        INSERT INTO companies (id, short_id, name, domain, created_at, updated_at)
            VALUES ('c1', 'acme-inc', 'ACME, Inc.', 'Acme.com', '2024-01-15T10:30:00.000000+00:00',
                    '2024-01-15T10:30:00.000000+00:00');
        {V1_USAGE};
        CREATE UNIQUE INDEX usage_events_idempotency ON usage_events (company_id, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        INSERT INTO usage_events (id, company_id, feature_code, quantity, idempotency_key,
            metadata, result, created_at)
            VALUES ('e1', 'c1', 'ai_credit', 1, 'old', '{{}}', '{{}}',
                    '2024-01-15T10:30:00.000000+00:00');
        """
    )
    conn.close()
    engine = LocalEngine(str(db), clock=clock)
    try:
        assert smart(engine, "o1", companyName="Acme")["companyId"] == "c1"
        assert smart(engine, "o2", domain="acme.COM")["companyId"] == "c1"
        enable(engine, "c1")
        # The old, unscoped key does not match a call made now: it is counted.
        assert track(engine, "c1", 1, idempotencyKey="old")["duplicate"] is False
        assert track(engine, "c1", 1, idempotencyKey="old")["duplicate"] is True
        assert [e["idempotencyKey"] for e in engine.usage_events("c1")] == ["old", "old"]
    finally:
        engine.close()
    again = LocalEngine(str(db), clock=clock)  # opening a version-2 database changes nothing
    again.close()


def test_a_database_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "v9.db"
    LocalEngine(str(db)).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="schema version 9"):
        LocalEngine(str(db))


def test_a_database_file_runs_in_wal_mode(tmp_path: Path) -> None:
    with LocalEngine(str(tmp_path / "os.db")) as engine:
        conn = engine._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with LocalEngine(str(tmp_path / "full.db"), synchronous="full") as engine:
        conn = engine._conn
        assert conn is not None
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(ValueError, match="synchronous"):
        LocalEngine(synchronous="off")  # type: ignore[arg-type]


def test_default_catalog_contents() -> None:
    catalog = default_catalog()
    features = {f["code"]: f for f in catalog["features"]}
    assert features["ai_credit"]["metered"] and features["team_seats"]["metered"]
    assert not features["sso"]["metered"]
    assert [s["id"] for s in catalog["checkoutSessions"]] == [
        "cs_test_pro_completed",
        "cs_test_enterprise_completed",
        "cs_test_open",
    ]
    assert [s["id"] for s in catalog["stripeSubscriptions"]] == [
        "sub_test_pro",
        "sub_test_enterprise",
        "sub_test_existing_pro",
    ]


def test_a_procedure_without_input_ignores_any_input(engine: LocalEngine) -> None:
    # As @trpc/server does: tiers.list answers the same with or without an input.
    assert call(engine, "tiers.list", {"x": 1}) == call(engine, "tiers.list")


def test_a_batch_of_mutations_commits_once_and_a_failing_call_leaves_nothing() -> None:
    engine = LocalEngine()
    key = DEFAULT_API_KEY
    company = engine.call("companies.create", {"name": "Batch Inc"}, api_key=key)["id"]
    engine.call("tiers.applyTier", {"tierCode": "free", "companyId": company}, api_key=key)
    with engine.batch():
        first = engine.call(
            "billing.trackUsage",
            {"companyId": company, "featureCode": "ai_credit", "quantity": 60},
            api_key=key,
        )
        with pytest.raises(ProcedureError) as info:  # 60 + 60 > the free tier's 100
            engine.call(
                "billing.trackUsage",
                {"companyId": company, "featureCode": "ai_credit", "quantity": 60},
                api_key=key,
            )
        last = engine.call(
            "billing.trackUsage",
            {"companyId": company, "featureCode": "ai_credit", "quantity": 40},
            api_key=key,
        )
    assert info.value.code == "PRECONDITION_FAILED"
    assert (first["currentUsage"], last["currentUsage"]) == (60, 100)
    assert [event["quantity"] for event in engine.usage_events(company)] == [60, 40]


def test_a_batch_that_fails_as_a_whole_leaves_nothing() -> None:
    engine = LocalEngine()
    key = DEFAULT_API_KEY
    with pytest.raises(RuntimeError), engine.batch():
        engine.call("companies.create", {"name": "Never Inc"}, api_key=key)
        raise RuntimeError("the server stopped mid-batch")

    def names() -> list[str]:
        rows = engine._open_conn().execute("SELECT name FROM companies ORDER BY name")
        return [row[0] for row in rows]

    assert names() == []
    with engine.batch():  # the engine is usable again
        engine.call("companies.create", {"name": "Later Inc"}, api_key=key)
    assert names() == ["Later Inc"]


def test_the_calls_of_a_batch_share_one_instant() -> None:
    readings: list[datetime] = []

    def ticking() -> datetime:  # a clock that moves a second each time it is read
        readings.append(T0 + timedelta(seconds=len(readings)))
        return readings[-1]

    engine = LocalEngine(clock=ticking)
    key = DEFAULT_API_KEY
    with engine.batch():
        made = [engine.call("companies.create", {"name": name}, api_key=key) for name in "AB"]
        company = made[0]["id"]
        engine.call(
            "features.setAccess",
            {"companyId": company, "featureCode": "ai_credit", "isEnabled": True},
            api_key=key,
        )
        for _ in range(3):
            engine.call(
                "billing.trackUsage",
                {"companyId": company, "featureCode": "ai_credit", "quantity": 1},
                api_key=key,
            )
    assert len(readings) == 1  # read once, for the whole batch
    assert [company["createdAt"] for company in made] == [T0, T0]
    assert [event["createdAt"] for event in engine.usage_events(company)] == [T0] * 3
    after = engine.call("companies.create", {"name": "C"}, api_key=key)
    assert after["createdAt"] == T0 + timedelta(seconds=1)  # outside a batch: its own reading
