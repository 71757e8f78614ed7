"""Generated calls for the input-fuzz tests (not a test module): every public method as a
table of parameters by kind, valid and hostile values per kind, a fixed-seed generator of
calls, and the checks of a call that was refused or sent.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest

from chatarmin_os import NOT_GIVEN, ContactInput, Hints, InvalidInputError
from chatarmin_os._procedures import PROCEDURES
from tests.support.canned import CannedServer, procedure_of, wire_json

SEED = 20240115
RANDOM_PER_METHOD = 60
UTC = timezone.utc


class Evil:
    """An object every dunder of which raises: nothing may call one on a caller's value."""

    def __eq__(self, other: object) -> bool:
        raise AssertionError("__eq__ called on a caller's value")

    def __hash__(self) -> int:
        raise AssertionError("__hash__ called on a caller's value")

    def __repr__(self) -> str:
        raise AssertionError("__repr__ called on a caller's value")

    def __str__(self) -> str:
        raise AssertionError("__str__ called on a caller's value")

    def __bool__(self) -> bool:
        raise AssertionError("__bool__ called on a caller's value")


def _nested(depth: int) -> dict[str, Any]:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["again"] = [loop]
    return loop


LONG = "L" * 20_000  # fits in a query's URL
HUGE = "H" * 2_000_000  # only for mutations: a query's URL cannot carry it (see test_failures)
AWARE = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)

STRINGS: list[Any] = [
    "",
    "   ",
    "\t\n",
    "\ud800",
    "ok\udfff",
    "nul\x00byte",
    "line\r\nbreak",
    "é€😀",
    "\ufeffbom first",  # a byte-order mark inside a value is data, not an encoding hint
    "\u2028\u2029\ufffd\U0010ffff",
    LONG,
    None,
    NOT_GIVEN,
    1,
    b"bytes",
    UUID(int=7),
    Evil(),
]
NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2**53,
    -(2**53),
    10**400,
    -(10**5000),
    0.5,
    -0.0,
    1.0000001,
    float("nan"),
    float("inf"),
    -float("inf"),
    True,
    False,
    "1",
    Decimal("0.5"),
    None,
    NOT_GIVEN,
    Evil(),
]
TIMESTAMPS: list[Any] = [
    date(2024, 1, 1),
    datetime(2024, 1, 1),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
    datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
    "2024-01-15T10:30:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+00:01",
    "2024-13-45T99:99:99Z",
    "２０２４-01-15T10:30:00Z",
    "2024-01-15T10:30:00.000Z" + "x" * 20_000,
    1705314600,
    Evil(),
]
MAPS: list[Any] = [
    [],
    "a=1",
    {1: 2},
    {("t",): 1},
    {None: 1},
    {"a": {"b": {2: 3}}},
    {"a": [{"b": {2.5: 3}}]},
    {"deep": _nested(40)},
    _nested(3000),
    _circular(),
    {"x": [float("nan")]},
    {"x": {1, 2}},
    {"x": 2**60},
    {"x": -(10**5000)},
    {"x": "\ud800"},
    {"\udfff": 1},
    {"x": datetime(2024, 1, 1)},
    {"x": datetime.max.replace(tzinfo=timezone(timedelta(hours=-1)))},
    {"x": object()},
    {"x": Evil()},
    {"x": b"raw"},
    {"x": Decimal("1")},
    {LONG: {LONG: LONG}},
]
HINTS: list[Any] = [
    {"company_name": "\ud800"},
    {"company_name": ""},
    {"company_name": "   "},
    {"emails": ["a@b.c", 7]},
    {"emails": "a@b.c"},
    {"emails": ["\udfff"]},
    {"domain": 5},
    {"bogus": 1},
    {5: "x"},
    {"x" * 5000: 1},
    ["company_name"],
    ContactInput(email="a@b.c"),
    Evil(),
]
CONTACTS: list[Any] = [
    [],
    {"email": "a@b.c"},
    "a@b.c",
    [None],
    [{"email": "\ud800"}],
    [{"email": ""}],
    [{"name": "no email"}],
    [{"email": "a@b.c", "metadata": _circular()}],
    [{"email": "a@b.c", "metadata": {1: 2}}],
    [{"email": "a@b.c", "metadata": _nested(40)}],
    [{"email": "a@b.c", "metadata": {"x": float("inf")}}],
    [{"email": "a@b.c", 5: "x"}],
    [{"email": "a@b.c", "x" * 5000: "x"}],
    [{"email": "a@b.c", "is_primary": "yes"}],
    [{"email": "a@b.c"}] * 1001,
    [Hints(company_name="Acme")],
    [Evil()],
    (c for c in [{"email": "a@b.c"}]),
]
OVERRIDES: list[Any] = [
    {"ai": "not a map"},
    {"ai": {1: 1}},
    {"ai": {"x": {"y": {None: 1}}}},
    {"ai": _nested(40)},
    {"ai": _circular()},
    {"ai": {"max": float("nan")}},
    {"": {"x": 1}},
    {"\ud800": {"x": 1}},
    {7: {"x": 1}},
    [("ai", {"x": 1})],
    {"ai": Evil()},
]
# A few per option (every method has them: more would crowd out the calls that are sent);
# tests/_async/test_operate.py tries the rest.
HEADERS: list[Any] = [{"bad name": "x"}, {"Authorization": "Bearer os_sk_other"}, Evil()]
QUERIES: list[Any] = [{"input": "{}"}, {"a": Evil()}, "a=1"]
TIMEOUTS: list[Any] = [-1, float("nan"), "5", Evil()]
HOSTILE_BY_KIND: dict[str, list[Any]] = {
    "id": STRINGS,
    "str?": STRINGS,
    "ts?": TIMESTAMPS,
    "map?": MAPS,
    "hints?": HINTS,
    "fraction?": NUMBERS,
    "bool?": [0, 1, "true", "", [], Evil()],
    "nint?": NUMBERS,
    "pint": NUMBERS,
    "contacts": CONTACTS,
    "overrides?": OVERRIDES,
    "source?": ["MANUAL", "", " manual", LONG, 1, ["manual"], Evil()],
    "headers?": HEADERS,
    "query?": QUERIES,
    "timeout?": TIMEOUTS,
}
HOSTILE: list[Any] = [value for values in HOSTILE_BY_KIND.values() for value in values]
"""Every hostile value, offered to every argument now and then (a map as an id, ...)."""


VALID: dict[str, list[Any]] = {
    "id": ["c1", "comp 1/é'", "x" * 300],
    "str?": [NOT_GIVEN, None, "value", "ünïcödé"],
    "ts?": [NOT_GIVEN, None, "2024-01-15T10:30:00.000Z", AWARE, "2024-01-15T11:30:00+01:00"],
    "map?": [NOT_GIVEN, None, {}, {"a": 1, "b": [1, {"c": None}], "at": AWARE}, _nested(31)],
    "hints?": [NOT_GIVEN, None, {"company_name": "Acme"}, Hints(domain="acme.com")],
    "fraction?": [NOT_GIVEN, None, 0, 0.5, 1],
    "bool?": [NOT_GIVEN, None, True, False],
    "nint?": [NOT_GIVEN, None, 0, 5, 2**53 - 1],
    "pint": [1, 7, 2**53 - 1],
    "contacts": [[{"email": "a@b.c", "metadata": {"k": "v"}}], [ContactInput(email="b@c.d")]],
    "overrides?": [NOT_GIVEN, None, {"ai_credit": {"included_quantity": 1, "x": {"y": [1]}}}],
    "source?": [NOT_GIVEN, None, "manual", "trial"],
    "headers?": [NOT_GIVEN, None, {}, {"X-Trace": "t-1", "Accept-Language": "de"}],
    "query?": [NOT_GIVEN, None, {}, {"debug": "1", "n": 2, "f": 0.5, "b": True}],
    "timeout?": [NOT_GIVEN, None, 5, 0.5, httpx.Timeout(3.0, connect=1.0)],
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    positional: bool = False

    @property
    def required(self) -> bool:
        return not self.kind.endswith("?")


@dataclass(frozen=True)
class Method:
    name: str  # e.g. "features.check"; "onboard" on the client itself
    procedure: str
    params: tuple[Param, ...]


def P(name: str, kind: str, positional: bool = False) -> Param:
    return Param(name, kind, positional)


# The per-call options every method ends with (``RequestOptions``), checked like its input.
OPTIONS = (P("extra_headers", "headers?"), P("extra_query", "query?"), P("timeout", "timeout?"))


ONBOARD_OPTIONAL = ("tier_code", "checkout_session_id", "stripe_subscription_id")
METHODS = [
    Method(
        "companies.get_by_product_link", "companies.getByProductLink", (P("external_org_id", "id"),)
    ),
    Method(
        "companies.create",
        "companies.create",
        (
            P("name", "id"),
            *(P(n, "str?") for n in ("domain", "external_org_id", "label", "contact_email")),
            P("contact_name", "str?"),
            P("created_at", "ts?"),
        ),
    ),
    Method(
        "companies.update",
        "companies.update",
        (P("company_id", "id"), P("name", "str?"), P("domain", "str?"), P("created_at", "ts?")),
    ),
    Method(
        "companies.smart_link",
        "companies.smartLink",
        (
            P("external_org_id", "id"),
            P("label", "id"),
            P("hints", "hints?"),
            P("min_confidence", "fraction?"),
        ),
    ),
    Method(
        "contacts.create",
        "contacts.create",
        (
            P("company_id", "id"),
            P("email", "id"),
            P("name", "str?"),
            P("role", "str?"),
            P("is_primary", "bool?"),
            P("avatar_url", "str?"),
            P("metadata", "map?"),
        ),
    ),
    Method(
        "contacts.bulk_upsert",
        "contacts.bulkUpsert",
        (P("company_id", "id"), P("contacts", "contacts")),
    ),
    Method(
        "contacts.list",
        "contacts.list",
        (P("company_id", "id", True), P("primary_only", "bool?", True)),
    ),
    Method("features.check", "features.check", (P("company_id", "id"), P("feature_code", "id"))),
    Method("features.list_access", "features.listAccess", (P("company_id", "id", True),)),
    Method(
        "features.set_access",
        "features.setAccess",
        (
            P("feature_code", "id"),
            P("company_id", "str?"),
            P("external_org_id", "str?"),
            P("is_enabled", "bool?"),
            P("quantity_limit", "nint?"),
            P("included_quantity", "nint?"),
            P("config", "map?"),
            P("source", "source?"),
            P("valid_until", "ts?"),
        ),
    ),
    Method(
        "features.get_access_by_external_org_id",
        "features.getAccessByExternalOrgId",
        (P("external_org_id", "id", True),),
    ),
    Method(
        "features.check_by_external_org_id",
        "features.checkByExternalOrgId",
        (P("external_org_id", "id", True), P("feature_code", "id", True)),
    ),
    Method(
        "billing.track_usage",
        "billing.trackUsage",
        (
            P("feature_code", "id"),
            P("quantity", "pint"),
            P("company_id", "str?"),
            P("external_org_id", "str?"),
            P("idempotency_key", "str?"),
            P("metadata", "map?"),
        ),
    ),
    Method(
        "billing.claim_checkout",
        "billing.claimCheckout",
        (P("company_id", "id"), P("checkout_session_id", "id")),
    ),
    Method(
        "billing.link_subscription",
        "billing.linkSubscription",
        (
            P("company_id", "id"),
            P("stripe_subscription_id", "id"),
            P("stripe_customer_id", "str?"),
            P("tier_code", "str?"),
            P("display_name", "str?"),
        ),
    ),
    Method("billing.get_status", "billing.getStatus", (P("company_id", "id", True),)),
    Method("tiers.list", "tiers.list", ()),
    Method("tiers.get", "tiers.get", (P("tier_code", "id", True),)),
    Method(
        "tiers.apply",
        "tiers.applyTier",
        (P("tier_code", "id", True), P("company_id", "id"), P("features", "overrides?")),
    ),
    Method(
        "subscriptions.create",
        "tiers.applyTier",
        (P("tier_code", "id", True), P("company_id", "id"), P("features", "overrides?")),
    ),
    Method(
        "links.create",
        "links.create",
        (
            P("company_id", "id"),
            P("external_org_id", "id"),
            P("label", "str?"),
            P("external_user_id", "str?"),
        ),
    ),
    Method("links.reset", "links.reset", (P("delete_contacts", "bool?"), P("reset_mrr", "bool?"))),
    Method(
        "onboard",
        "onboard",
        (
            P("external_org_id", "id"),
            P("label", "id"),
            P("hints", "hints?"),
            *(P(n, "str?") for n in ONBOARD_OPTIONAL),
            *(P(n, "str?") for n in ("stripe_customer_id", "contact_email", "contact_name")),
            P("created_at", "ts?"),
        ),
    ),
]


METHODS = [Method(m.name, m.procedure, (*m.params, *OPTIONS)) for m in METHODS]


def public_methods(client: Any) -> set[str]:
    """Every public method of a client and its namespaces, as ``"ns.method"``."""
    names = {"onboard"}
    namespaces = ("companies", "contacts", "features", "billing", "tiers", "subscriptions", "links")
    for namespace in namespaces:
        resource = getattr(client, namespace)  # made on first access
        for name, _member in inspect.getmembers(type(resource), inspect.isfunction):
            if not name.startswith("_"):
                names.add(f"{namespace}.{name}")
    return names


@dataclass
class Call:
    method: Method
    args: list[Any]
    kwargs: dict[str, Any]
    label: str


def _label(value: Any) -> str:
    """A short description of a generated value (its repr may be huge, or raise)."""
    if isinstance(value, (str, bytes)) and len(value) > 30:
        return f"{type(value).__name__}[{len(value)}]"
    if isinstance(value, (int, float, bool, type(None), str, bytes)) and not (
        isinstance(value, int) and abs(value) > 10**30
    ):
        return repr(value)
    return type(value).__name__


def calls(seed: int) -> Iterator[Call]:
    """The generated calls, per method: every hostile value of its kind in every argument
    (the others valid), then random combinations of valid and hostile arguments."""
    rng = random.Random(seed)
    for method in METHODS:
        for index, param in enumerate(method.params):
            for value in HOSTILE_BY_KIND[param.kind]:
                yield _call(method, rng, {index: value})
        for _ in range(RANDOM_PER_METHOD):
            # One hostile argument in most calls, a few in some, none in a tenth.
            count = min(rng.choice([0, 1, 1, 1, 1, 1, 1, 2, 2, 3]), len(method.params))
            hostile = {
                index: rng.choice(HOSTILE_BY_KIND[method.params[index].kind])
                if rng.random() < 0.75
                else rng.choice(HOSTILE)
                for index in rng.sample(range(len(method.params)), count)
            }
            yield _call(method, rng, hostile)


def _call(method: Method, rng: random.Random, hostile: dict[int, Any]) -> Call:
    """A call of ``method`` with the given hostile arguments (by index), the others valid."""
    is_query = PROCEDURES[method.procedure] == "query"
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    labels = []
    for index, param in enumerate(method.params):
        value = hostile[index] if index in hostile else rng.choice(VALID[param.kind])
        if value is LONG and not is_query and rng.random() < 0.3:
            value = HUGE
        if value is NOT_GIVEN and not param.required and rng.random() < 0.5:
            continue  # left out altogether
        labels.append(f"{param.name}={_label(value)}")
        if param.positional:
            args.append(value)
        else:
            kwargs[param.name] = value
    return Call(method, args, kwargs, f"{method.name}({', '.join(labels)})")


class Tally:
    """How the generated calls went, to prove the run exercised both outcomes."""

    def __init__(self) -> None:
        self.sent = 0
        self.refused = 0


def check_refused(call: Call, error: BaseException, server: CannedServer, tally: Tally) -> None:
    if not isinstance(error, InvalidInputError):
        pytest.fail(f"{call.label}: {type(error).__name__} {str(error)[:300]}")
    if server.requests:
        pytest.fail(f"{call.label}: refused after a request was sent")
    text = str(error)
    if len(text) > 1000 or len(repr(error)) > 1100:
        pytest.fail(f"{call.label}: message of {len(text)} characters")
    tally.refused += 1


def check_sent(call: Call, server: CannedServer, tally: Tally) -> None:
    # track_usage(external_org_id=...) looks the org's company up first.
    lookup = call.method.name == "billing.track_usage" and call.kwargs.get("external_org_id")
    if len(server.requests) != (2 if lookup else 1):
        pytest.fail(f"{call.label}: {len(server.requests)} requests sent")
    if lookup:
        assert procedure_of(server.requests[0]) == "companies.getByProductLink", call.label
    request = server.requests[-1]
    assert procedure_of(request) == call.method.procedure, call.label
    assert request.method == ("GET" if PROCEDURES[call.method.procedure] == "query" else "POST")
    try:
        wire_json(request)
    except ValueError as exc:
        pytest.fail(f"{call.label}: sent something that is not UTF-8 JSON: {exc}")
    tally.sent += 1


def check_tally(tally: Tally) -> None:
    total = sum(1 for _ in calls(SEED))
    assert total > 2000
    assert tally.sent + tally.refused == total
    # Both outcomes are common: the generator is neither all-valid nor all-hostile.
    assert tally.sent > total // 5
    assert tally.refused > total // 5
