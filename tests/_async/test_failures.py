"""Every failure of a call is a ``ChatarminOSError``: each case once found escaping, by name.

Input at the edges (timestamps, circular or deep maps, huge numbers, lone surrogates),
hostile answers (odd charsets, superjson metas that do not fit, deep nesting), bounded
messages, and configuration refused when the client is made.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from chatarmin_os import (
    APIResponseValidationError,
    AsyncChatarminOS,
    BadRequestError,
    ChatarminOSError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
)
from chatarmin_os._exceptions import ConfigurationError
from chatarmin_os._wire import encode_request
from tests.support.canned import OUTPUTS, CannedServer, wire_json
from tests.support.helpers import API_KEY, BASE_URL, TRANSFORMERS, envelope

EARLY = timezone(timedelta(hours=5))
LATE = timezone(timedelta(hours=-5))


@asynccontextmanager
async def client_for(
    handler: Any, transformer: str = "json", **kwargs: Any
) -> AsyncIterator[AsyncChatarminOS]:
    """A client whose every request goes to ``handler`` (a ``MockTransport`` handler)."""
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("base_url", BASE_URL)
    kwargs.setdefault("max_retries", 0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        async with AsyncChatarminOS(http_client=http, transformer=transformer, **kwargs) as client:
            yield client


def answer(status: int, content: bytes, content_type: str = "application/json") -> Any:
    """A handler giving this answer to every request."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"content-type": content_type})

    return handler


async def refused(call: Any, transformer: str = "json") -> InvalidInputError:
    """Run ``call(client)``; it must raise InvalidInputError with nothing sent."""
    server = CannedServer(transformer)
    async with client_for(server, transformer) as client:
        with pytest.raises(InvalidInputError) as info:
            await call(client)
    assert server.requests == []
    assert len(str(info.value)) <= 1000
    return info.value


async def sent(call: Any, transformer: str = "json") -> Any:
    """Run ``call(client)``; it must succeed, and the one request's JSON is returned."""
    server = CannedServer(transformer)
    async with client_for(server, transformer) as client:
        await call(client)
    [request] = server.requests
    return wire_json(request)


def nested(depth: int, leaf: Any = 1) -> dict[str, Any]:
    """A dict ``depth`` levels deep (the outer dict is level 1)."""
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def circular_dict() -> dict[str, Any]:
    loop: dict[str, Any] = {"x": 1}
    loop["self"] = {"back": loop}
    return loop


def circular_list() -> dict[str, Any]:
    items: list[Any] = [1]
    items.append(items)
    return {"items": items}


# --- timestamps at the calendar's edge -------------------------------------------------------

EDGE_TIMESTAMPS = [
    datetime.max.replace(tzinfo=LATE),
    datetime.min.replace(tzinfo=EARLY),
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+00:01",
]


@pytest.mark.parametrize("moment", EDGE_TIMESTAMPS, ids=["max-05", "min+05", "max-str", "min-str"])
async def test_a_timestamp_beyond_the_calendar_in_utc_is_refused(moment: Any) -> None:
    error = await refused(lambda c: c.companies.create(name="Acme", created_at=moment))
    assert (error.argument, error.problem) == (
        "created_at",
        "is outside the years 1 to 9999 once converted to UTC",
    )
    error = await refused(
        lambda c: c.features.set_access(company_id="c1", feature_code="f", valid_until=moment)
    )
    assert error.argument == "valid_until"
    if isinstance(moment, datetime):
        error = await refused(
            lambda c: c.contacts.create(company_id="c1", email="a@b.c", metadata={"at": moment})
        )
        assert error.argument == "metadata.at"


async def test_the_calendars_edge_itself_is_sent() -> None:
    last = datetime.max.replace(tzinfo=timezone.utc)
    body = await sent(lambda c: c.companies.create(name="Acme", created_at=last))
    assert body["createdAt"] == "9999-12-31T23:59:59.999Z"
    body = await sent(
        lambda c: c.companies.create(name="Acme", created_at="0001-01-01T05:00:00+05:00")
    )
    assert body["createdAt"] == "0001-01-01T00:00:00.000Z"


# --- free-form maps: cycles, depth, keys, values ------------------------------------------------

FREE_MAP_CALLS = {
    "metadata": lambda m: lambda c: c.contacts.create(company_id="c1", email="a@b.c", metadata=m),
    "usage metadata": lambda m: (
        lambda c: c.billing.track_usage(company_id="c1", feature_code="f", quantity=1, metadata=m)
    ),
    "config": lambda m: (
        lambda c: c.features.set_access(company_id="c1", feature_code="f", config=m)
    ),
    "tiers.apply overrides": lambda m: (
        lambda c: c.tiers.apply("pro", company_id="c1", features={"ai_credit": m})
    ),
    "subscriptions.create overrides": lambda m: (
        lambda c: c.subscriptions.create("pro", company_id="c1", features={"ai_credit": m})
    ),
    "bulk contact metadata": lambda m: (
        lambda c: c.contacts.bulk_upsert(
            company_id="c1", contacts=[{"email": "a@b.c"}, {"email": "d@e.f", "metadata": m}]
        )
    ),
}
ARGUMENT = {
    "metadata": "metadata",
    "usage metadata": "metadata",
    "config": "config",
    "tiers.apply overrides": "features['ai_credit']",
    "subscriptions.create overrides": "features['ai_credit']",
    "bulk contact metadata": "contacts[1].metadata",
}


@pytest.mark.parametrize("where", list(FREE_MAP_CALLS))
@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_circular_maps_are_refused(where: str, transformer: str) -> None:
    error = await refused(FREE_MAP_CALLS[where](circular_dict()), transformer)
    assert error.argument == f"{ARGUMENT[where]}.self.back"
    assert error.problem == "contains itself (a circular reference)"
    error = await refused(FREE_MAP_CALLS[where](circular_list()), transformer)
    assert error.argument == f"{ARGUMENT[where]}.items[1]"


@pytest.mark.parametrize("where", list(FREE_MAP_CALLS))
@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_maps_nest_at_most_32_levels(where: str, transformer: str) -> None:
    for too_deep in (nested(33), nested(5000)):
        error = await refused(FREE_MAP_CALLS[where](too_deep), transformer)
        assert error.argument == ARGUMENT[where] + ".a" * 32
        assert error.problem == "is nested deeper than 32 levels"
    body = await sent(FREE_MAP_CALLS[where](nested(32)), transformer)
    assert json.dumps(body).count('{"a": ') == 32


@pytest.mark.parametrize("where", list(FREE_MAP_CALLS))
async def test_non_string_keys_are_refused_at_every_level(where: str) -> None:
    for bad in ({1: "x"}, {"ok": {"inner": {2.5: "x"}}}, {"ok": [{None: 1}]}, {("t",): 1}):
        error = await refused(FREE_MAP_CALLS[where](bad))
        assert error.argument.startswith(ARGUMENT[where])
        assert error.problem.startswith("keys must be strings, got a key of type ")


async def test_override_keys_are_no_longer_stringified() -> None:
    error = await refused(lambda c: c.tiers.apply("pro", company_id="c1", features={"ai": {1: 2}}))
    assert str(error) == "features['ai']: keys must be strings, got a key of type int"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (2**53, "9007199254740992 is beyond ±2**53 - 1 and would lose precision on the server; "),
        (
            -(10**5000),
            "a negative integer of about 5001 digits is beyond ±2**53 - 1 and would lose ",
        ),
        (math.inf, "cannot be sent as JSON: inf is not finite"),
        ({1, 2}, "cannot be sent as JSON: a set is not a JSON value"),
        (b"raw", "cannot be sent as JSON: a bytes is not a JSON value"),
        (datetime(2024, 1, 1), "naive datetime: give a timezone, "),
    ],
    ids=["2**53", "huge", "inf", "set", "bytes", "naive"],
)
async def test_values_that_are_not_json_are_refused_by_path(value: Any, problem: str) -> None:
    error = await refused(
        lambda c: c.contacts.create(
            company_id="c1", email="a@b.c", metadata={"list": [0, {"v": value}]}
        )
    )
    assert error.argument == "metadata.list[1].v"
    assert error.problem.startswith(problem)


@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_free_maps_send_json_values_untouched(transformer: str) -> None:
    metadata = {
        "n": 2**53 - 1,
        "f": 0.5,
        "t": (1, "two"),
        "day": date(2024, 2, 29),
        "at": datetime(2024, 1, 15, 11, 30, tzinfo=timezone(timedelta(hours=1))),
        "deep": nested(30, None),
    }
    body = await sent(
        lambda c: c.contacts.create(company_id="c1", email="a@b.c", metadata=metadata),
        transformer,
    )
    expected = {
        "n": 2**53 - 1,
        "f": 0.5,
        "t": [1, "two"],
        "day": "2024-02-29",
        "at": "2024-01-15T10:30:00.000Z",
        "deep": nested(30, None),
    }
    if transformer == "superjson":
        assert body["json"]["metadata"] == expected
        assert body["meta"]["values"] == {"metadata.at": ["Date"]}
    else:
        assert body["metadata"] == expected


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (10**400, "must be from 0 to 1, got an integer of about 401 digits"),
        (10**5000, "must be from 0 to 1, got an integer of about 5001 digits"),
        (math.inf, "must be from 0 to 1, got inf"),
        (-math.inf, "must be from 0 to 1, got -inf"),
        (math.nan, "must be from 0 to 1, got nan"),
        (1.0000001, "must be from 0 to 1, got 1.0000001"),
        (True, "must be a number from 0 to 1, got bool"),
        ("0.5", "must be a number from 0 to 1, got str"),
    ],
    ids=["10**400", "10**5000", "inf", "-inf", "nan", "above 1", "bool", "str"],
)
async def test_a_bad_min_confidence_is_refused(value: Any, problem: str) -> None:
    error = await refused(
        lambda c: c.companies.smart_link(external_org_id="o", label="l", min_confidence=value)
    )
    assert (error.argument, error.problem) == ("min_confidence", problem)


@pytest.mark.parametrize("value", [0, 1, 0.7])
async def test_min_confidence_in_range_is_sent(value: float) -> None:
    body = await sent(
        lambda c: c.companies.smart_link(external_org_id="o", label="l", min_confidence=value)
    )
    assert body["minConfidence"] == value


async def test_huge_integers_are_described_not_written_out() -> None:
    error = await refused(
        lambda c: c.billing.track_usage(company_id="c1", feature_code="f", quantity=10**5000)
    )
    assert str(error) == "quantity: must be at most 2**53 - 1, got an integer of about 5001 digits"
    error = await refused(
        lambda c: c.features.set_access(company_id="c1", feature_code="f", quantity_limit=-(10**99))
    )
    assert (
        str(error)
        == "quantity_limit: must not be negative, got a negative integer of about 100 digits"
    )


# --- strings that cannot be UTF-8 -------------------------------------------------------------

SURROGATE_CALLS = [
    ("company_id", lambda c: c.features.check(company_id="ab\ud800", feature_code="f")),
    ("name", lambda c: c.companies.create(name="Acme \udfff")),
    (
        "hints.company_name",
        lambda c: c.companies.smart_link(
            external_org_id="o", label="l", hints={"company_name": "\ud83d"}
        ),
    ),
    (
        "hints.emails[0]",
        lambda c: c.onboard(external_org_id="o", label="l", hints={"emails": ["\ud800@x"]}),
    ),
    (
        "metadata.k",
        lambda c: c.contacts.create(company_id="c", email="e", metadata={"k": "\ud800"}),
    ),
    (
        "metadata.\ud800",
        lambda c: c.contacts.create(company_id="c", email="e", metadata={"\ud800": 1}),
    ),
    (
        "contacts[0].email",
        lambda c: c.contacts.bulk_upsert(company_id="c", contacts=[{"email": "\udc00"}]),
    ),
    (
        "features['ai'].max",
        lambda c: c.tiers.apply("pro", company_id="c", features={"ai": {"max": "\ud800"}}),
    ),
]


@pytest.mark.parametrize(("argument", "call"), SURROGATE_CALLS, ids=[a for a, _ in SURROGATE_CALLS])
@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_lone_surrogates_are_refused_naming_the_argument(
    argument: str, call: Any, transformer: str
) -> None:
    error = await refused(call, transformer)
    assert error.argument == argument
    assert "lone surrogate" in error.problem
    assert "cannot be sent as UTF-8" in error.problem


# --- bounded messages for what the caller passed ---------------------------------------------

HUGE = "2024-01-15T10:30:00.000Z" + "x" * 2_000_000


async def test_a_refused_2mb_string_is_quoted_by_a_short_prefix() -> None:
    error = await refused(lambda c: c.companies.create(name="Acme", created_at=HUGE))
    assert str(error) == (
        "created_at: must be an ISO-8601 timestamp with a UTC offset, e.g. "
        "'2024-01-15T10:30:00.000Z', got '2024-01-15T10:30:00.000Zxxxxxxxxxxxxxxxx'… "
        "(2000024 characters)"
    )
    error = await refused(
        lambda c: c.features.set_access(company_id="c", feature_code="f", source=HUGE)  # type: ignore[arg-type]
    )
    assert len(str(error)) < 200
    error = await refused(
        lambda c: c.contacts.create(company_id="c", email="e", metadata={HUGE: {1: 1}})
    )
    assert error.argument == f"metadata.{HUGE[:40]}…"
    assert len(str(error)) < 200


# --- hostile answers --------------------------------------------------------------------------

ODD_CHARSETS = ["idna", "rot13", "base64", "utf-16", "utf-7", "no-such-codec", "punycode", ""]


@pytest.mark.parametrize("charset", ODD_CHARSETS)
async def test_a_body_in_an_odd_charset_gives_a_snippet(charset: str) -> None:
    handler = answer(502, b"\xff\xfe<html>Bad gateway</html>", f"text/html; charset={charset}")
    async with client_for(handler) as client:
        with pytest.raises(InternalServerError) as info:
            await client.tiers.list()
    error = info.value
    assert error.status_code == 502
    assert error.code is None
    assert error.message.startswith(
        f"Expected a tRPC answer from tiers.list but got a body that is not JSON "
        f"(HTTP 502, text/html; charset={charset}): "
    )


async def test_a_utf16_body_is_read_in_its_charset() -> None:
    handler = answer(503, "Wartung läuft".encode("utf-16"), "text/plain; charset=utf-16")
    async with client_for(handler) as client:
        with pytest.raises(InternalServerError) as info:
            await client.tiers.list()
    assert info.value.message.endswith(": Wartung läuft")


ERROR_JSON = {
    "message": "Tier not found",
    "code": -32004,
    "data": {"code": "NOT_FOUND", "httpStatus": 404, "path": "tiers.get"},
}
BAD_METAS: dict[str, Any] = {
    "list": ["a", "b"],
    "string": "values",
    "values list of junk": {"values": [[[]]], "v": 1},
    "values of wrong type": {"values": 42, "v": 1},
    "path into nothing": {"values": {"data.nothing.deeper": ["Date"]}, "v": 1},
    "path past a list": {"values": {"data.path.0": ["Date"]}, "v": 1},
    "bad date": {"values": {"message": ["Date"]}, "v": 1},
    "date on a number": {"values": {"code": ["Date"]}, "v": 1},
    "huge bigint": {"values": {"data.code": ["bigint"]}, "v": 1},
    "annotation of junk": {"values": {"message": [{"x": 1}]}, "v": 1},
    "index too large": {"values": {"data.path.99999999999999999999": ["Date"]}, "v": 1},
}


@pytest.mark.parametrize("meta", list(BAD_METAS))
async def test_a_superjson_error_with_a_bad_meta_keeps_its_class(meta: str) -> None:
    body = {"error": {"json": ERROR_JSON, "meta": BAD_METAS[meta]}}
    async with client_for(answer(404, json.dumps(body).encode()), "superjson") as client:
        with pytest.raises(NotFoundError) as info:
            await client.tiers.get("pro")
    error = info.value
    assert (error.code, error.message, error.path) == ("NOT_FOUND", "Tier not found", "tiers.get")
    assert str(error) == "404 NOT_FOUND on tiers.get: Tier not found"


TIERS_JSON = [{"code": "9" * 5000, "name": "Free", "description": None}]
BAD_RESULT_METAS: dict[str, Any] = {
    "values of wrong type": {"values": 42, "v": 1},
    "path into nothing": {"values": {"0.nothing.deeper": ["Date"]}, "v": 1},
    "path past a list": {"values": {"5.name": ["Date"]}, "v": 1},
    "non-number index": {"values": {"first.name": ["Date"]}, "v": 1},
    "index too large": {"values": {"99999999999999999999.name": ["Date"]}, "v": 1},
    "bad date": {"values": {"0.name": ["Date"]}, "v": 1},
    "date on null": {"values": {"0.description": ["Date"]}, "v": 1},
    "huge bigint": {"values": {"0.code": ["bigint"]}, "v": 1},
    "root date on a list": {"values": ["Date"], "v": 1},
}


@pytest.mark.parametrize("meta", list(BAD_RESULT_METAS))
async def test_a_superjson_result_with_a_bad_meta_is_a_validation_error(meta: str) -> None:
    body = {"result": {"data": {"json": TIERS_JSON, "meta": BAD_RESULT_METAS[meta]}}}
    async with client_for(answer(200, json.dumps(body).encode()), "superjson") as client:
        with pytest.raises(APIResponseValidationError) as info:
            await client.tiers.list()
    assert info.value.status_code == 200
    assert info.value.message.startswith(
        "Expected a tRPC answer from tiers.list but got a superjson result whose meta "
        "does not fit it ("
    )
    assert len(str(info.value)) <= 1000


async def test_annotations_this_api_never_sends_leave_the_value_as_sent() -> None:
    meta = {"values": {"0.name": [["custom", "x"]], "0.code": ["set"], "0": {"x": 1}}, "v": 1}
    tiers = [{"code": "free", "name": "Free", "description": None}]
    body = {"result": {"data": {"json": tiers, "meta": meta}}}
    async with client_for(answer(200, json.dumps(body).encode()), "superjson") as client:
        result = await client.tiers.list()
    assert [(t.code, t.name) for t in result] == [("free", "Free")]


@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize("depth", [900, 1000, 100_000])
async def test_an_answer_nested_too_deeply_is_an_sdk_error(status: int, depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    body = b'{"result":{"data":{"code":"free","name":"Free","description":' + deep + b"}}}"
    async with client_for(answer(status, body)) as client:
        with pytest.raises(ChatarminOSError) as info:
            await client.tiers.get("free")
    error = info.value
    expected = APIResponseValidationError if status == 200 else InternalServerError
    assert type(error) is expected
    assert len(str(error)) <= 1000


async def test_an_error_envelope_nested_deeply_keeps_its_class() -> None:
    deep = "[" * 900 + "]" * 900
    body = (
        '{"error":{"message":"boom","code":-32600,"data":{"code":"BAD_REQUEST","httpStatus":400,'
        f'"path":"tiers.get","stack":{deep}}}}}}}'
    ).encode()
    async with client_for(answer(400, body)) as client:
        with pytest.raises(BadRequestError) as info:
            await client.tiers.get("free")
    assert (info.value.code, info.value.message) == ("BAD_REQUEST", "boom")


async def test_an_unforeseen_decoding_failure_is_an_sdk_error_with_its_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatarmin_os import _response

    def explode(payload: Any) -> Any:
        raise ZeroDivisionError("nobody saw this coming")

    monkeypatch.setattr(_response, "superjson_deserialize", explode)
    body = json.dumps(envelope(OUTPUTS["tiers.list"], "superjson")).encode()
    async with client_for(answer(200, body), "superjson") as client:
        with pytest.raises(APIResponseValidationError) as info:
            await client.tiers.list()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert "an answer the SDK cannot decode (ZeroDivisionError)" in info.value.message


# --- bounded messages for what the server sent -------------------------------------------------


@pytest.mark.parametrize("field", ["message", "path", "code", "all"])
async def test_a_megabyte_field_in_an_error_gives_a_short_message(field: str) -> None:
    huge = "Z" * 1_000_000
    error_json = {
        "message": huge if field in ("message", "all") else "short",
        "code": -32600,
        "data": {
            "code": huge if field in ("code", "all") else "BAD_REQUEST",
            "httpStatus": 400,
            "path": huge if field in ("path", "all") else "tiers.get",
        },
    }
    async with client_for(answer(400, json.dumps({"error": error_json}).encode())) as client:
        with pytest.raises(BadRequestError) as info:
            await client.tiers.get("free")
    error = info.value
    assert len(str(error)) <= 1000
    assert len(repr(error)) <= 1100
    # The full data stays on the exception.
    assert error.message == error_json["message"]
    assert error.code == error_json["data"]["code"]
    assert error.path == error_json["data"]["path"]
    assert error.body == error_json
    text = "".join(traceback.format_exception_only(type(error), error))
    assert len(text) <= 1200


async def test_a_huge_unknown_code_picks_the_class_by_status() -> None:
    error_json = {"message": "m", "data": {"code": "NOT_FOUND" * 100_000, "httpStatus": 404}}
    async with client_for(answer(500, json.dumps({"error": error_json}).encode())) as client:
        with pytest.raises(InternalServerError) as info:
            await client.tiers.get("free")
    assert info.value.status_code == 500


# --- configuration, refused when the client is made --------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("https://os.example.com", "https://os.example.com/tiers.list"),
        ("https://os.example.com/", "https://os.example.com/tiers.list"),
        ("http://127.0.0.1:3001", "http://127.0.0.1:3001/tiers.list"),
        ("http://[::1]:3001/api/v1", "http://[::1]:3001/api/v1/tiers.list"),
        (httpx.URL("https://os.example.com"), "https://os.example.com/tiers.list"),
    ],
)
async def test_a_base_url_without_a_path_joins_right(base_url: Any, url: str) -> None:
    server = CannedServer()
    async with client_for(server, base_url=base_url) as client:
        await client.tiers.list()
    assert str(server.requests[0].url) == url


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("os.example.com", "base_url must be an http:// or https:// URL, got 'os.example.com'"),
        ("ftp://os.example.com", "base_url must be an http:// or https:// URL, got "),
        ("https://", "base_url has no host: 'https://'"),
        ("https://h.test/api?x=1", "base_url must not have a query string (?...)"),
        ("https://h.test/api?", "base_url must not have a query string (?...)"),
        ("https://h.test/api#top", "base_url must not have a fragment (#...)"),
        ("https://h.test/api v1", "base_url contains whitespace or a control character"),
        (" https://h.test", "base_url contains whitespace or a control character"),
        ("https://h.test\n", "base_url contains whitespace or a control character"),
        ("http://h.test:99999/api", "base_url has a port out of range: 99999"),
        ("http://h.test:abc/api", "base_url is not a valid URL ("),
        ("", "base_url is empty"),
        (42, "base_url must be a string or an httpx.URL, got int"),
    ],
)
async def test_a_bad_base_url_is_refused(base_url: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncChatarminOS(api_key=API_KEY, base_url=base_url)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


async def test_credentials_in_the_base_url_are_refused_and_not_quoted() -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncChatarminOS(api_key=API_KEY, base_url="https://admin:s3cr3t@h.test/api/v1")
    assert str(info.value) == (
        "base_url must not contain a user name or password (user:password@host): "
        "the API key goes in api_key / OS_API_KEY"
    )
    for url in ("admin:s3cr3t@h.test/api", "https://admin:s3cr3t@h.test/a b", "https://:s3cr3t@"):
        with pytest.raises(ConfigurationError) as info:
            AsyncChatarminOS(api_key=API_KEY, base_url=url)
        assert "s3cr3t" not in repr(info.value)


async def test_a_bad_base_url_from_the_environment_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATARMIN_OS_BASE_URL", "localhost:3001/api/v1")
    with pytest.raises(ConfigurationError, match=r"^CHATARMIN_OS_BASE_URL must be an http"):
        AsyncChatarminOS(api_key=API_KEY)


KEY = "os_sk_live_4f9a2c7e81d3b6"
BAD_KEYS = {
    "zero-width space": (
        KEY[:10] + "\u200b" + KEY[10:],
        "contains a non-ASCII character (U+200B; an invisible character such as a zero-width "
        "space copied with it?) at position 10; API keys are printable ASCII",
    ),
    "space inside": (
        KEY[:8] + " " + KEY[8:],
        "contains whitespace (U+0020) at position 8; API keys are printable ASCII",
    ),
    "newline inside": (
        KEY[:8] + "\n" + KEY[8:],
        "contains whitespace (U+000A) at position 8; API keys are printable ASCII",
    ),
    "control character": (
        KEY + "\x00" + "x",
        f"contains a control character (U+0000) at position {len(KEY)}; API keys are printable "
        "ASCII",
    ),
    "accent": (KEY.replace("a", "á"), "contains a non-ASCII character (U+00E1; "),
    "trailing newline": (KEY + "\n", "has whitespace around it (a stray space or newline "),
}


@pytest.mark.parametrize("bad", list(BAD_KEYS))
async def test_a_malformed_key_is_refused_without_quoting_it(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, problem = BAD_KEYS[bad]
    with pytest.raises(ConfigurationError) as info:
        AsyncChatarminOS(api_key=key, base_url=BASE_URL)
    assert str(info.value).startswith(f"api_key {problem}")
    monkeypatch.setenv("OS_API_KEY", key.replace("\x00", "\x01"))  # the OS refuses NUL
    with pytest.raises(ConfigurationError) as info_env:
        AsyncChatarminOS(base_url=BASE_URL)
    assert str(info_env.value).startswith(f"OS_API_KEY {problem.replace('0000', '0001')}")
    async with client_for(CannedServer()) as client:
        with pytest.raises(ConfigurationError) as info_copy:
            client.with_options(api_key=key)
    assert str(info_copy.value).startswith(f"api_key {problem}")
    for error in (info.value, info_env.value, info_copy.value):
        text = str(error) + repr(error)
        secret = KEY[len("os_sk_") :]
        assert not any(secret[i : i + 4] in text for i in range(len(secret) - 3))


@pytest.mark.parametrize("key", [b"os_sk_bytes", 12345, ["os_sk_x"]])
async def test_a_key_that_is_not_a_string_is_refused(key: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncChatarminOS(api_key=key, base_url=BASE_URL)
    assert str(info.value) == f"api_key must be a string, got {type(key).__name__}"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Token": "s3cr3t\r\nX-Evil: 1"}, "default_headers['X-Token'] must be printable ASCII"),
        ({"X-Token": "s3cr3t é"}, "default_headers['X-Token'] must be printable ASCII"),
        ({"X-Token": " s3cr3t"}, "default_headers['X-Token'] must be printable ASCII"),
        ({"X-Token": "s3cr3t\n"}, "default_headers['X-Token'] must be printable ASCII"),
        ({"X-Token\n": "v"}, "default_headers: 'X-Token\\n' is not a valid HTTP header name"),
        ({"X-Token": "s3cr3t\x00"}, "default_headers['X-Token'] must be printable ASCII"),
        ({"X-Token": 123}, "default_headers['X-Token'] must be a string, got int"),
        ({"X Token": "v"}, "default_headers: 'X Token' is not a valid HTTP header name"),
        ({"X:Token": "v"}, "default_headers: 'X:Token' is not a valid HTTP header name"),
        ({"": "v"}, "default_headers: '' is not a valid HTTP header name"),
        ({b"X-Token": "v"}, "default_headers: a bytes is not a valid HTTP header name"),
        ({"Content-Length": "5"}, "default_headers: Content-Length is set by the SDK"),
        ([("X-Token", "v")], "default_headers must be a dict of header name to value, got list"),
    ],
)
async def test_bad_default_headers_are_refused_without_echoing_values(
    headers: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, default_headers=headers)
    assert str(info.value).startswith(message)
    assert "s3cr3t" not in str(info.value)
    async with client_for(CannedServer()) as client:
        with pytest.raises(ConfigurationError, match=r"^default_headers"):
            client.with_options(default_headers=headers)


async def test_good_default_headers_are_sent() -> None:
    server = CannedServer()
    headers = {"X-Tenant": "t 1\tb", "X-Empty": "", "x-custom_name!": "v"}
    async with client_for(server, default_headers=headers) as client:
        await client.tiers.list()
    sent_headers = server.requests[0].headers
    assert (sent_headers["x-tenant"], sent_headers["x-empty"]) == ("t 1\tb", "")
    assert sent_headers["x-custom_name!"] == "v"


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        (-1, "timeout must be more than 0 and at most 1,000,000 seconds, got -1"),
        (0, "timeout must be more than 0 and at most 1,000,000 seconds, got 0"),
        (math.nan, "timeout must be more than 0 and at most 1,000,000 seconds, got nan"),
        (math.inf, "timeout must be more than 0 and at most 1,000,000 seconds, got inf"),
        (1e10, "timeout must be more than 0 and at most 1,000,000 seconds, got 10000000000.0"),
        (True, "timeout must be seconds (a number), an httpx.Timeout or None, got bool"),
        ("5", "timeout must be seconds (a number), an httpx.Timeout or None, got str"),
        (httpx.Timeout(5.0, read=-1), "timeout.read must be more than 0 and at most "),
        (httpx.Timeout(5.0, pool=math.nan), "timeout.pool must be more than 0 and at most "),
    ],
)
async def test_a_bad_timeout_is_refused(timeout: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, timeout=timeout)
    assert str(info.value).startswith(message)
    async with client_for(CannedServer()) as client:
        with pytest.raises(ConfigurationError, match=r"^timeout"):
            client.with_options(timeout=timeout)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": -1}, "max_retries must be an int from 0 to 1000, got -1"),
        ({"max_retries": 1001}, "max_retries must be an int from 0 to 1000, got 1001"),
        ({"max_retries": -(10**5000)}, "max_retries must be an int from 0 to 1000, got int"),
        ({"max_retries": True}, "max_retries must be an int from 0 to 1000, got bool"),
        ({"transformer": "xml"}, "transformer must be 'json' or 'superjson', got 'xml'"),
        ({"transformer": "x" * 10**6}, "transformer must be 'json' or 'superjson', got 'xxxx"),
    ],
    ids=["negative", "over 1000", "huge negative", "bool", "xml", "huge transformer"],
)
async def test_other_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, **kwargs)
    assert str(info.value).startswith(message)
    assert len(str(info.value)) < 200


async def test_a_query_url_over_the_limit_is_refused_before_sending() -> None:
    server = CannedServer()
    async with client_for(server) as client:
        with pytest.raises(InvalidInputError) as info:
            await client.features.check(company_id="x" * 70_000, feature_code="f")
    assert server.requests == []
    assert info.value.argument == "input"
    message = str(info.value)
    assert "65536" in message and " 70" in message  # the size and the limit
    wire = encode_request(
        "query",
        "features.check",
        {"companyId": "x" * 70_000, "featureCode": "f"},
        transformer="json",
    )
    assert f"URL is {len(BASE_URL.rstrip('/') + '/' + wire.url)} bytes" in message  # exactly
    assert len(message) < 300
