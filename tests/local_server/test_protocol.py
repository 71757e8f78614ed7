"""The local ChatarminOS's tRPC answers, byte for byte where tRPC fixes them.

Drives :func:`chatarmin_os.local.protocol.handle` directly (and through the in-process httpx
``LocalTransport``) and checks the exact envelopes, JSON-RPC codes and HTTP statuses that
``@trpc/server`` v11 gives (wire contract, tests/conformance/README.md "Protocol notes").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from chatarmin_os.local import LocalEngine
from chatarmin_os.local.protocol import TRPCHandler, handle
from chatarmin_os.local.transport import LocalTransport

KEY = "os_sk_protocol"
AUTH = {"authorization": f"Bearer {KEY}"}
JSON_POST = {**AUTH, "content-type": "application/json"}
T0 = datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)
T0_ISO = "2024-01-15T10:30:00.000Z"

# TRPC code -> (JSON-RPC code, HTTP status), from the contract's table.
CODES = {
    "BAD_REQUEST": (-32600, 400),
    "UNAUTHORIZED": (-32001, 401),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "METHOD_NOT_SUPPORTED": (-32005, 405),
    "CONFLICT": (-32009, 409),
    "PRECONDITION_FAILED": (-32012, 412),
    "UNSUPPORTED_MEDIA_TYPE": (-32015, 415),
    "PAYLOAD_TOO_LARGE": (-32013, 413),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
    "SERVICE_UNAVAILABLE": (-32603, 503),
}


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    eng = LocalEngine(api_keys=[KEY], clock=lambda: T0)
    yield eng
    eng.close()


def q(value: Any) -> str:
    """``input=`` as the official client encodes it (encodeURIComponent of the JSON)."""
    return "input=" + quote(json.dumps(value, separators=(",", ":")), safe="")


def request(
    engine: LocalEngine,
    method: str,
    path: str,
    query: str = "",
    body: Any = None,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body) of one request to ``/api/v1/{path}``."""
    if headers is None:
        headers = JSON_POST if method == "POST" else AUTH
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    response = handle(engine, method, f"/api/v1/{path}", query, headers, raw, **options)
    assert response.headers["content-type"] == "application/json"
    return response.status, json.loads(response.body)


def error_body(code: str, message: str, path: str | None) -> dict[str, Any]:
    number, status = CODES[code]
    data: dict[str, Any] = {"code": code, "httpStatus": status}
    if path is not None:
        data["path"] = path
    return {"message": message, "code": number, "data": data}


def sj(value: Any, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A superjson-wrapped value."""
    return {"json": value} if meta is None else {"json": value, "meta": meta}


def create_company(engine: LocalEngine, **fields: Any) -> dict[str, Any]:
    status, body = request(engine, "POST", "companies.create", body={"name": "Acme Inc", **fields})
    assert status == 200, body
    company: dict[str, Any] = body["result"]["data"]
    return company


# -- success -------------------------------------------------------------------------------


def test_success_envelope(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "tiers.get", q({"tierCode": "free"}))
    assert status == 200
    assert body == {
        "result": {
            "data": {
                "code": "free",
                "name": "Free",
                "description": "Get started: 100 AI credits, 3 seats and API access.",
                "baseFee": None,
                "features": [
                    {"code": "ai_credit", "name": "AI Credits", "configValues": {}},
                    {"code": "team_seats", "name": "Team Seats", "configValues": {"maxSeats": 3}},
                    {"code": "api_access", "name": "API Access", "configValues": {}},
                ],
                "stripePriceIds": [],
            }
        }
    }


def test_mutation_success_and_plain_json_dates(engine: LocalEngine) -> None:
    status, body = request(
        engine, "POST", "companies.create", body={"name": "Acme Inc", "domain": "acme.com"}
    )
    assert status == 200
    company = body["result"]["data"]
    assert set(company) == {"id", "shortId", "name", "domain", "createdAt"}
    assert (company["name"], company["domain"], company["shortId"]) == (
        "Acme Inc",
        "acme.com",
        "acme-inc",
    )
    assert company["createdAt"] == T0_ISO  # ISO-8601 with a UTC offset, milliseconds


def test_query_without_input_and_charset_content_type(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "tiers.list")
    assert status == 200
    assert [tier["code"] for tier in body["result"]["data"]] == ["free", "pro", "enterprise"]
    status, body = request(
        engine,
        "POST",
        "links.reset",
        body={},
        headers={**AUTH, "content-type": "application/json; charset=utf-8"},
    )
    assert (status, body) == (
        200,
        {"result": {"data": {"linksDeleted": 0, "contactsDeleted": 0, "mrrReset": False}}},
    )


def test_null_output(engine: LocalEngine) -> None:
    status, body = request(
        engine, "GET", "companies.getByProductLink", q({"externalOrgId": "org_x"})
    )
    assert (status, body) == (200, {"result": {"data": None}})


def test_plus_in_the_query_string_is_a_space(engine: LocalEngine) -> None:
    # The query string is form-decoded, as URLSearchParams does: an unencoded "+" is a space.
    status, body = request(engine, "GET", "tiers.get", 'input={"tierCode":"a+b"}')
    assert status == 404
    assert body["error"]["message"] == 'Tier "a b" not found'


# -- errors --------------------------------------------------------------------------------


def test_error_envelope_and_status(engine: LocalEngine) -> None:
    company = create_company(engine)
    status, body = request(
        engine, "GET", "features.check", q({"companyId": company["id"], "featureCode": "nope"})
    )
    assert status == 404
    assert body == {"error": error_body("NOT_FOUND", 'Feature "nope" not found', "features.check")}


@pytest.mark.parametrize(
    ("setup", "method", "path", "payload", "code"),
    [
        ("none", "POST", "billing.trackUsage", {"quantity": 0}, "BAD_REQUEST"),
        (
            "company",
            "POST",
            "billing.trackUsage",
            {"featureCode": "ai_credit", "quantity": 1},
            "FORBIDDEN",
        ),
        (
            "limited",
            "POST",
            "billing.trackUsage",
            {"featureCode": "ai_credit", "quantity": 6},
            "PRECONDITION_FAILED",
        ),
        ("linked", "POST", "links.create", {"externalOrgId": "org_1"}, "CONFLICT"),
        ("none", "GET", "tiers.get", {"tierCode": "platinum"}, "NOT_FOUND"),
    ],
)
def test_error_codes(
    engine: LocalEngine, setup: str, method: str, path: str, payload: dict[str, Any], code: str
) -> None:
    if setup != "none":
        company = create_company(engine, externalOrgId="org_1")
        payload = {"companyId": company["id"], **payload}
    if setup == "limited":
        status, _ = request(
            engine,
            "POST",
            "features.setAccess",
            body={
                "companyId": payload["companyId"],
                "featureCode": "ai_credit",
                "isEnabled": True,
                "quantityLimit": 5,
            },
        )
        assert status == 200
    if method == "GET":
        status, body = request(engine, "GET", path, q(payload))
    else:
        status, body = request(engine, "POST", path, body=payload)
    number, http_status = CODES[code]
    assert status == http_status
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "code", "data"}
    assert error["code"] == number
    assert error["data"] == {"code": code, "httpStatus": http_status, "path": path}
    assert isinstance(error["message"], str) and error["message"]


def test_validation_message_is_the_validators_text(engine: LocalEngine) -> None:
    status, body = request(
        engine,
        "POST",
        "billing.trackUsage",
        body={"companyId": "c", "featureCode": "f", "quantity": 0},
    )
    assert status == 400
    assert body["error"]["message"] == "quantity: must be an integer >= 1 (got 0)"


def test_superjson_error_is_wrapped(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "tiers.get", q(sj({"tierCode": "platinum"})))
    assert status == 404
    assert body == {
        "error": {"json": error_body("NOT_FOUND", 'Tier "platinum" not found', "tiers.get")}
    }
    # A forced superjson server wraps errors raised before any input is read, too.
    status, body = request(engine, "PUT", "tiers.get", transformer="superjson")
    assert status == 415
    assert body == {
        "error": {"json": error_body("UNSUPPORTED_MEDIA_TYPE", "Missing content-type header", None)}
    }


def test_query_via_post_and_mutation_via_get(engine: LocalEngine) -> None:
    status, body = request(
        engine, "POST", "features.check", body={"companyId": "c", "featureCode": "f"}
    )
    assert status == 405
    assert body == {
        "error": error_body(
            "METHOD_NOT_SUPPORTED",
            'Unsupported POST-request to query procedure at path "features.check"',
            "features.check",
        )
    }
    status, body = request(engine, "GET", "billing.trackUsage", q({"companyId": "c"}))
    assert status == 405
    assert body == {
        "error": error_body(
            "METHOD_NOT_SUPPORTED",
            'Unsupported GET-request to mutation procedure at path "billing.trackUsage"',
            "billing.trackUsage",
        )
    }
    for method in ("PUT", "PATCH", "DELETE"):
        status, body = request(engine, method, "billing.trackUsage", body={}, headers=JSON_POST)
        assert status == 405
        assert body["error"]["data"]["code"] == "METHOD_NOT_SUPPORTED"
        assert body["error"]["code"] == -32005


def test_post_content_type(engine: LocalEngine) -> None:
    status, body = request(engine, "POST", "links.reset", body={}, headers=AUTH)
    assert status == 415
    assert body == {
        "error": error_body("UNSUPPORTED_MEDIA_TYPE", "Missing content-type header", None)
    }
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        status, body = request(
            engine, "POST", "links.reset", body={}, headers={**AUTH, "content-type": content_type}
        )
        assert status == 415
        error = body["error"]
        assert error["code"] == -32015
        assert error["data"] == {"code": "UNSUPPORTED_MEDIA_TYPE", "httpStatus": 415}
        assert error["message"].startswith(f'Unsupported content-type "{content_type}')
    # Nothing ran.
    assert engine.usage_events() == []


def test_unknown_path(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "x")
    assert status == 404
    assert body == {"error": error_body("NOT_FOUND", 'No procedure found on path "x"', "x")}
    # tRPC refuses "apply" as a procedure name: the SDK's tiers.apply calls tiers.applyTier.
    status, body = request(
        engine, "POST", "tiers.apply", body={"tierCode": "pro", "companyId": "c"}
    )
    assert status == 404
    assert body["error"]["message"] == 'No procedure found on path "tiers.apply"'
    status, body = request(engine, "GET", "features/check")
    assert status == 404
    assert body["error"]["data"]["code"] == "NOT_FOUND"
    # Outside the prefix, or the bare prefix: 404 NOT_FOUND as well.
    for raw_path in ("/api/v1", "/api/v1/", "/elsewhere/tiers.list"):
        response = handle(engine, "GET", raw_path, "", AUTH, b"")
        assert response.status == 404
        error = json.loads(response.body)["error"]
        assert (error["code"], error["data"]["code"], error["data"]["httpStatus"]) == (
            -32004,
            "NOT_FOUND",
            404,
        )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer os_sk_wrong"},
        {"authorization": f"Basic {KEY}"},
        {"authorization": KEY},
        {"authorization": "Bearer "},
    ],
    ids=["missing", "wrong", "basic", "no-scheme", "empty"],
)
def test_missing_or_wrong_api_key(engine: LocalEngine, headers: dict[str, str]) -> None:
    status, body = request(engine, "GET", "tiers.list", headers=headers)
    assert status == 401
    error = body["error"]
    assert error["code"] == -32001
    assert error["data"] == {"code": "UNAUTHORIZED", "httpStatus": 401, "path": "tiers.list"}
    # A mutation with bad input: authentication comes first.
    status, body = request(
        engine,
        "POST",
        "billing.trackUsage",
        body={"quantity": 0},
        headers={**headers, "content-type": "application/json"},
    )
    assert status == 401
    assert body["error"]["data"]["code"] == "UNAUTHORIZED"


def test_bearer_scheme_is_case_insensitive(engine: LocalEngine) -> None:
    status, _ = request(engine, "GET", "tiers.list", headers={"authorization": f"bearer {KEY}"})
    assert status == 200


def test_unparsable_input(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "tiers.get", "input=%7Bnope")
    assert status == 400
    error = body["error"]
    assert (error["code"], error["data"]["code"], error["data"]["httpStatus"]) == (
        -32600,
        "BAD_REQUEST",
        400,
    )
    assert error["data"]["path"] == "tiers.get"
    status, body = request(engine, "POST", "links.reset", body=b"{nope")
    assert status == 400
    assert body["error"]["data"]["code"] == "BAD_REQUEST"
    # Valid JSON of the wrong shape, and a missing input, are validation errors (400).
    status, body = request(engine, "GET", "tiers.get", q(None))
    assert (status, body["error"]["data"]["code"]) == (400, "BAD_REQUEST")
    status, body = request(engine, "GET", "tiers.get")
    assert (status, body["error"]["data"]["code"]) == (400, "BAD_REQUEST")
    status, body = request(engine, "POST", "companies.create", body=b"")
    assert (status, body["error"]["data"]["code"]) == (400, "BAD_REQUEST")


def test_unexpected_failure_is_internal_server_error(
    engine: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.close()
    with caplog.at_level(logging.ERROR, logger="chatarmin_os.local"):
        status, body = request(engine, "POST", "companies.create", body={"name": "A"})
    assert status == 500
    assert body == {
        "error": error_body("INTERNAL_SERVER_ERROR", "Internal server error", "companies.create")
    }
    assert "companies.create" in caplog.text


# -- batches -------------------------------------------------------------------------------


def test_batch_get_all_ok(engine: LocalEngine) -> None:
    company = create_company(engine)
    status, body = request(
        engine,
        "GET",
        "features.check,tiers.list",
        "batch=1&" + q({"0": {"companyId": company["id"], "featureCode": "ai_credit"}}),
    )
    assert status == 200
    assert isinstance(body, list) and len(body) == 2
    assert body[0] == {
        "result": {
            "data": {
                "featureCode": "ai_credit",
                "isEnabled": False,
                "canUse": False,
                "hasQuantity": True,
                "currentUsage": 0,
                "quantityLimit": None,
                "includedQuantity": None,
                "remaining": None,
            }
        }
    }
    assert [tier["code"] for tier in body[1]["result"]["data"]] == ["free", "pro", "enterprise"]


def test_batch_get_mixed_is_207(engine: LocalEngine) -> None:
    company = create_company(engine)
    status, body = request(
        engine,
        "GET",
        "features.check,tiers.list",
        "batch=1&" + q({"0": {"companyId": company["id"], "featureCode": "nope"}}),
    )
    assert status == 207
    assert body[0] == {
        "error": error_body("NOT_FOUND", 'Feature "nope" not found', "features.check")
    }
    assert "result" in body[1]


def test_batch_same_error_status_and_unknown_procedure(engine: LocalEngine) -> None:
    status, body = request(
        engine,
        "GET",
        "tiers.get,tiers.get",
        "batch=1&" + q({"0": {"tierCode": "x"}, "1": {"tierCode": "y"}}),
    )
    assert status == 404
    assert [item["error"]["message"] for item in body] == [
        'Tier "x" not found',
        'Tier "y" not found',
    ]
    status, body = request(engine, "GET", "tiers.list,nope.nothing", "batch=1")
    assert status == 207
    assert body[1] == {
        "error": error_body(
            "NOT_FOUND", 'No procedure found on path "nope.nothing"', "nope.nothing"
        )
    }
    # Failed authentication: every item 401, overall 401, still an array.
    status, body = request(engine, "GET", "tiers.list,tiers.list", "batch=1", headers={})
    assert status == 401
    assert [item["error"]["data"]["code"] for item in body] == ["UNAUTHORIZED", "UNAUTHORIZED"]


def test_batch_post_mutations(engine: LocalEngine) -> None:
    company = create_company(engine)
    status, body = request(
        engine,
        "POST",
        "links.reset,tiers.applyTier",
        "batch=1",
        body={"0": {"resetMrr": True}, "1": {"tierCode": "pro", "companyId": company["id"]}},
    )
    assert status == 200
    assert body == [
        {"result": {"data": {"linksDeleted": 0, "contactsDeleted": 0, "mrrReset": True}}},
        {"result": {"data": {"companyId": company["id"], "tierCode": "pro", "featuresApplied": 5}}},
    ]
    status, body = request(
        engine,
        "POST",
        "tiers.applyTier,tiers.applyTier",
        "batch=1",
        body={
            "0": {"tierCode": "free", "companyId": company["id"]},
            "1": {"tierCode": "gold", "companyId": company["id"]},
        },
    )
    assert status == 207
    assert "result" in body[0]
    assert body[1]["error"]["data"] == {
        "code": "NOT_FOUND",
        "httpStatus": 404,
        "path": "tiers.applyTier",
    }


def test_batch_single_call_is_still_an_array(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "tiers.list", "batch=1&input=%7B%7D")
    assert status == 200
    assert isinstance(body, list) and len(body) == 1
    assert "result" in body[0]
    # batch=0 is not a batch.
    status, body = request(engine, "GET", "tiers.list", "batch=0")
    assert status == 200 and isinstance(body, dict)


def test_batch_mixing_kinds_is_refused_as_a_whole(engine: LocalEngine) -> None:
    company = create_company(engine, externalOrgId="org_1")
    status, body = request(
        engine,
        "POST",
        "features.check,companies.update",
        "batch=1",
        body={
            "0": {"companyId": company["id"], "featureCode": "ai_credit"},
            "1": {"companyId": company["id"], "name": "Renamed"},
        },
    )
    assert status == 400
    assert body == {
        "error": error_body(
            "BAD_REQUEST", "Cannot mix procedure types in call: query, mutation", None
        )
    }
    # The mutation did not run.
    _, body = request(engine, "GET", "companies.getByProductLink", q({"externalOrgId": "org_1"}))
    assert body["result"]["data"]["name"] == "Acme Inc"


def test_batch_input_must_be_an_object(engine: LocalEngine) -> None:
    # As in tRPC, it is the error of each call that reads its input (tiers.list reads none).
    status, body = request(engine, "GET", "tiers.get,tiers.list", "batch=1&" + q([1, 2]))
    assert status == 207
    assert body[0] == {
        "error": error_body(
            "BAD_REQUEST", '"input" needs to be an object when doing a batch call', "tiers.get"
        )
    }
    assert "result" in body[1]


# -- superjson -----------------------------------------------------------------------------


def test_superjson_auto_detected_with_date_annotations(engine: LocalEngine) -> None:
    status, body = request(
        engine, "POST", "companies.create", body=sj({"name": "Acme Inc", "externalOrgId": "org_1"})
    )
    assert status == 200
    data = body["result"]["data"]
    assert set(data) == {"json", "meta"}
    assert data["meta"] == {"values": {"createdAt": ["Date"]}, "v": 1}
    assert data["json"]["createdAt"] == T0_ISO
    company_id = data["json"]["id"]

    # The same procedure in plain JSON: no wrapping.
    status, body = request(
        engine, "GET", "companies.getByProductLink", q({"externalOrgId": "org_1"})
    )
    assert body["result"]["data"]["createdAt"] == T0_ISO
    assert "json" not in body["result"]["data"]

    # Nested dates: every path annotated.
    request(
        engine, "POST", "contacts.create", body={"companyId": company_id, "email": "a@acme.com"}
    )
    status, body = request(engine, "GET", "contacts.list", q(sj({"companyId": company_id})))
    assert status == 200
    assert body["result"]["data"]["meta"] == {
        "values": {"0.createdAt": ["Date"], "0.updatedAt": ["Date"]},
        "v": 1,
    }
    request(
        engine,
        "POST",
        "billing.claimCheckout",
        body={"companyId": company_id, "checkoutSessionId": "cs_test_pro_completed"},
    )
    status, body = request(engine, "GET", "billing.getStatus", q(sj({"companyId": company_id})))
    meta = body["result"]["data"]["meta"]
    assert meta == {"values": {"activeSubscriptions.0.currentPeriodEnd": ["Date"]}, "v": 1}
    # Nothing to annotate: no meta.
    status, body = request(
        engine, "GET", "companies.getByProductLink", q(sj({"externalOrgId": "none"}))
    )
    assert (status, body) == (200, {"result": {"data": {"json": None}}})


def test_superjson_inputs_dates_and_undefined(engine: LocalEngine) -> None:
    # What the official client sends: a Date annotated, an undefined optional as null.
    status, body = request(
        engine,
        "POST",
        "companies.create",
        body=sj(
            {"name": "Old Co", "createdAt": "2020-05-01T12:00:00.000Z", "domain": None},
            {"values": {"createdAt": ["Date"], "domain": ["undefined"]}, "v": 1},
        ),
    )
    assert status == 200, body
    company = body["result"]["data"]["json"]
    assert company["createdAt"] == "2020-05-01T12:00:00.000Z"
    assert company["domain"] is None
    # A query without input from the official superjson client.
    status, body = request(
        engine, "GET", "tiers.list", q({"json": None, "meta": {"values": ["undefined"], "v": 1}})
    )
    assert status == 200
    assert [tier["code"] for tier in body["result"]["data"]["json"]] == [
        "free",
        "pro",
        "enterprise",
    ]


def test_superjson_batch_items_are_wrapped_each(engine: LocalEngine) -> None:
    status, body = request(
        engine,
        "GET",
        "tiers.list,tiers.get",
        "batch=1&"
        + q(
            {
                "0": {"json": None, "meta": {"values": ["undefined"], "v": 1}},
                "1": sj({"tierCode": "nope"}),
            }
        ),
    )
    assert status == 207
    assert set(body[0]["result"]["data"]) == {"json"}
    assert body[1] == {
        "error": {"json": error_body("NOT_FOUND", 'Tier "nope" not found', "tiers.get")}
    }


def test_forced_transformer(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "tiers.list", transformer="superjson")
    assert status == 200
    assert set(body["result"]["data"]) == {"json"}
    # A json server takes a wrapped input at face value: a strict schema refuses it.
    status, body = request(
        engine, "GET", "tiers.get", q(sj({"tierCode": "pro"})), transformer="json"
    )
    assert status == 400
    assert "json" not in body["error"]


# -- through the httpx transport -----------------------------------------------------------


def test_local_transport_speaks_the_same_wire(engine: LocalEngine) -> None:
    with httpx.Client(
        transport=LocalTransport(engine), base_url="http://os.local/api/v1", headers=AUTH
    ) as http:
        response = http.get("/tiers.get", params={"input": json.dumps({"tierCode": "pro"})})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["result"]["data"]["stripePriceIds"] == [
            "price_pro_base",
            "price_pro_ai_credit",
        ]

        response = http.post("/companies.create", json={"name": "Acme Inc"})
        assert response.status_code == 200
        company_id = response.json()["result"]["data"]["id"]

        response = http.get(
            "/features.check,tiers.list",
            params={
                "batch": "1",
                "input": json.dumps({"0": {"companyId": company_id, "featureCode": "x"}}),
            },
        )
        assert response.status_code == 207
        assert [next(iter(item)) for item in response.json()] == ["error", "result"]

        response = http.post("/features.check", json={})
        assert response.status_code == 405
        response = http.post("/links.reset", content=b"{}", headers={"content-type": "text/plain"})
        assert response.status_code == 415
        response = http.get("/tiers.list", headers={"authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.json()["error"]["data"]["code"] == "UNAUTHORIZED"


def test_local_transport_with_another_prefix(engine: LocalEngine) -> None:
    transport = LocalTransport(engine, prefix="/trpc")
    with httpx.Client(transport=transport, base_url="http://os.local", headers=AUTH) as http:
        assert http.get("/trpc/tiers.list").status_code == 200
        assert http.get("/api/v1/tiers.list").status_code == 404


# -- limits, and what tRPC itself answers ------------------------------------------------------


def test_a_batch_over_the_limit_runs_nothing(engine: LocalEngine) -> None:
    paths = ",".join(["companies.create"] * 4)
    inputs = {str(i): {"name": f"Co {i}"} for i in range(4)}
    status, body = request(engine, "POST", paths, "batch=1", body=inputs, max_batch=3)
    assert (status, body) == (
        400,
        {"error": error_body("BAD_REQUEST", "Batch call exceeds maximum size", None)},
    )
    three = ",".join(["companies.create"] * 3)
    status, body = request(engine, "POST", three, "batch=1", body=inputs, max_batch=3)
    assert status == 200 and len(body) == 3
    # Only the three of the accepted batch exist.
    conn = engine._conn
    assert conn is not None
    names = [row[0] for row in conn.execute("SELECT name FROM companies ORDER BY seq")]
    assert names == ["Co 0", "Co 1", "Co 2"]


def test_batching_can_be_turned_off(engine: LocalEngine) -> None:
    status, body = request(engine, "GET", "tiers.list", "batch=1", batching=False)
    assert (status, body) == (
        400,
        {"error": error_body("BAD_REQUEST", "Batching is not enabled on the server", None)},
    )
    status, _ = request(engine, "GET", "tiers.list", batching=False)
    assert status == 200


def test_a_body_over_the_limit_is_payload_too_large(engine: LocalEngine) -> None:
    status, body = request(
        engine, "POST", "companies.create", body=b'{"name":"' + b"a" * 100 + b'"}', max_body=64
    )
    assert (status, body) == (
        413,
        {
            "error": error_body(
                "PAYLOAD_TOO_LARGE", "Request body exceeds the limit of 64 bytes", None
            )
        },
    )


def test_head_is_204_and_the_prefix_is_matched_before_decoding(engine: LocalEngine) -> None:
    answer = handle(engine, "HEAD", "/api/v1/tiers.list", "", AUTH, b"")
    assert (answer.status, answer.body) == (204, b"")
    answer = handle(engine, "GET", "/api/v1%2ftiers.list", "", AUTH, b"")
    assert answer.status == 404
    assert json.loads(answer.body) == {
        "error": error_body("NOT_FOUND", 'No procedure found on path "/api/v1%2ftiers.list"', None)
    }
    status, body = request(
        engine, "GET", "features%2Echeck", q({"companyId": "c", "featureCode": "f"})
    )
    assert body["error"]["message"] == 'Company "c" not found'  # %2E is a dot, as in tRPC
    status, body = request(engine, "GET", "%ED%A0%80")
    assert (status, body) == (
        400,
        {"error": error_body("BAD_REQUEST", 'Invalid URL-encoding in path "%ED%A0%80"', None)},
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("input=%7Bnope", "Unable to parse the request input as JSON"),
        ("input=" + quote("[" * 5000 + "]" * 5000), "nested too deeply"),
        ("input=NaN", "NaN is not valid JSON"),
        ("input=%FF%FE", "Unable to parse the request input as JSON"),
    ],
)
def test_unreadable_input_is_each_calls_bad_request_after_its_key(
    engine: LocalEngine, query: str, message: str
) -> None:
    status, answer = request(engine, "GET", "tiers.get", query)
    assert status == 400
    assert message in answer["error"]["message"]
    assert answer["error"]["data"]["path"] == "tiers.get"
    # The API key is checked first, as tRPC's middleware runs before the input is read.
    status, answer = request(engine, "GET", "tiers.get", query, headers={})
    assert (status, answer["error"]["data"]["code"]) == (401, "UNAUTHORIZED")
    # A procedure without input never reads it.
    status, _ = request(engine, "GET", "tiers.list", query)
    assert status == 200


def test_a_stopping_server_runs_no_more_of_a_batch(engine: LocalEngine) -> None:
    handler = TRPCHandler(engine)
    handler.stopping = True
    answer = handler.handle(
        "POST",
        "/api/v1/companies.create,companies.create",
        "batch=1",
        JSON_POST,
        json.dumps({"0": {"name": "First"}, "1": {"name": "Second"}}).encode(),
    )
    first, second = json.loads(answer.body)
    assert first["result"]["data"]["name"] == "First"  # the call in flight finishes
    assert second == {
        "error": error_body(
            "SERVICE_UNAVAILABLE", "The server is shutting down", "companies.create"
        )
    }
    assert answer.status == 207


def test_handler_options_are_checked(engine: LocalEngine) -> None:
    for options in ({"max_batch": 0}, {"max_body": 0}, {"transformer": "xml"}):
        with pytest.raises(ValueError):
            TRPCHandler(engine, **options)  # type: ignore[arg-type]


def test_the_transports_answer_an_encoded_request_as_handle_request_does(
    engine: LocalEngine,
) -> None:
    """``answer`` (no httpx objects) and ``handle_request`` give the same bytes."""
    from chatarmin_os._wire import encode_request

    transport = LocalTransport(engine, prefix="/trpc")
    company = create_company(engine)
    calls = [
        ("query", "features.check", {"companyId": company["id"], "featureCode": "ai_credit"}),
        ("query", "tiers.get", {"tierCode": "nope"}),
        ("mutation", "companies.update", {"companyId": company["id"], "name": "Acme GmbH"}),
    ]
    for transformer in ("json", "superjson"):
        for kind, path, payload in calls:
            encoded = encode_request(kind, path, payload, transformer=transformer)  # type: ignore[arg-type]
            headers = {"Authorization": f"Bearer {KEY}"}
            if encoded.content is not None:
                headers["Content-Type"] = "application/json"
            direct = transport.answer(encoded.method, encoded.url, headers, encoded.content)
            response = transport.handle_request(
                httpx.Request(
                    encoded.method,
                    f"http://os.local/trpc/{encoded.url}",
                    headers=headers,
                    content=encoded.content,
                )
            )
            assert (direct.status, direct.body) == (response.status_code, response.content)
            assert response.is_stream_consumed or response.content  # read, ready to use
    missing = transport.answer("GET", "tiers.list", {})
    assert missing.status == 401
