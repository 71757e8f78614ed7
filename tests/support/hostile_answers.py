"""Hostile answers for the hostile-answer tests (not a test module): a fixed-seed generator
of statuses, bodies, content types and ``Retry-After`` headers, the calls to make, a replaying
mock server and the check of what a call that got an answer may have done.
"""

from __future__ import annotations

import json
import pickle
import random
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from chatarmin_os import APIResponseValidationError, APIStatusError, ChatarminOSError
from tests.support.canned import OUTPUTS

SEED = 8_2024
EXTRA_ANSWERS = 400


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    content: bytes
    label: str

    def response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status, headers=list(self.headers), content=self.content)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, shallow most of the time."""
    kinds = ["null", "bool", "int", "float", "str", "list", "dict"] if depth < 4 else ["str"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 7, 2**53 + 1, -(2**63), 10**30])
    if kind == "float":
        return rng.choice([0.5, -1e308, 1e-320, 3.0])
    if kind == "str":
        return rng.choice(["", "x", "NOT_FOUND", "2024-01-15T10:30:00.000Z", "\u2028", "é" * 50])
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["message", "code", "data", "json", "meta", "result", "error", "path", "httpStatus"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def random_meta(rng: random.Random) -> Any:
    paths = ["", "0", "a", "a.b", "0.name", "data.code", "message", "x.0.y", "99", "a\\.b"]
    annotation = rng.choice(
        [["Date"], ["bigint"], ["undefined"], ["number"], ["set"], [], "Date", 5, [["Date"]]]
    )
    return rng.choice(
        [
            None,
            [],
            "meta",
            {"values": rng.choice([None, 3, "x", ["Date"], ["undefined"]])},
            {"values": {rng.choice(paths): annotation for _ in range(rng.randint(1, 3))}},
            {"values": {"0.code": ["bigint"]}, "v": 1},
        ]
    )


ERROR_CODES = ["NOT_FOUND", "BAD_REQUEST", "INTERNAL_SERVER_ERROR", "TEAPOT", "", 404, None]


def random_body(rng: random.Random) -> tuple[bytes, str]:
    """A hostile body, and what it is (for failure messages)."""
    shape = rng.choice(
        [
            "json",
            "result",
            "result data",
            "error",
            "error envelope",
            "superjson error",
            "superjson result",
            "garbage",
            "huge",
            "deep",
            "empty",
            "html",
        ]
    )
    if shape == "json":
        value: Any = random_json(rng)
    elif shape == "result":
        value = {"result": random_json(rng)}
    elif shape == "result data":
        value = {"result": {"data": random_json(rng)}}
    elif shape == "error":
        value = {"error": random_json(rng)}
    elif shape == "error envelope":
        value = {
            "error": {
                "message": rng.choice(["boom", "", None, 5, ["x"], "m" * 1_000_000]),
                "code": rng.choice([-32600, "x", None]),
                "data": rng.choice(
                    [
                        None,
                        [],
                        "data",
                        {"code": rng.choice(ERROR_CODES), "httpStatus": "x", "path": 7},
                        {"code": "C" * 1_000_000, "path": "p" * 1_000_000},
                        {"code": rng.choice(ERROR_CODES), "path": "tiers.get"},
                    ]
                ),
            }
        }
    elif shape == "superjson error":
        value = {"error": {"json": random_json(rng), "meta": random_meta(rng)}}
    elif shape == "superjson result":
        data = rng.choice([OUTPUTS["tiers.list"], random_json(rng), [{"code": "9" * 5000}]])
        value = {"result": {"data": {"json": data, "meta": random_meta(rng)}}}
    elif shape == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))), shape
    elif shape == "huge":
        return b'{"error":{"message":"' + b"M" * 2_000_000 + b'"}}', shape
    elif shape == "deep":
        depth = rng.choice([500, 990, 1000, 5000, 50_000])
        where = rng.choice(["body", "data", "error", "message"])
        text = {
            "body": deep(depth),
            "data": f'{{"result":{{"data":{deep(depth)}}}}}',
            "error": f'{{"error":{deep(depth)}}}',
            "message": f'{{"error":{{"message":"x","data":{{"stack":{deep(depth)}}}}}}}',
        }[where]
        return text.encode(), f"deep {where} {depth}"
    elif shape == "empty":
        return b"", shape
    else:
        return b"<html><body>502 Bad Gateway</body></html>", shape
    return json.dumps(value).encode(), shape


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "text/html; charset=idna",
    "text/html; charset=rot13",
    "text/plain; charset=base64",
    "text/plain; charset=utf-16",
    "application/json; charset=utf-32",
    "text/plain; charset=no-such-codec",
    "text/plain; charset=",
    'text/plain; charset="utf-7"',
    "x" * 5000,
    "",
]
RETRY_AFTER = ["1", "-1", "nan", "inf", "1e309", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "9" * 400]


def answers(seed: int) -> list[Answer]:
    """Every status from 100 to 599 with a random body, then random answers of any status."""
    rng = random.Random(seed)
    statuses = [
        *range(100, 600),
        *(rng.choice([200, 400, 404, 500, 503]) for _ in range(EXTRA_ANSWERS)),
    ]
    result = []
    for status in statuses:
        content, shape = random_body(rng)
        headers = [("content-type", rng.choice(CONTENT_TYPES))]
        if rng.random() < 0.2:
            headers.append((rng.choice(["retry-after", "retry-after-ms"]), rng.choice(RETRY_AFTER)))
        result.append(Answer(status, tuple(headers), content, f"HTTP {status} {shape} {headers}"))
    return result


CALLS = [
    ("tiers.list", (), {}),
    ("tiers.get", ("pro",), {}),
    ("features.check", (), {"company_id": "c1", "feature_code": "ai_credit"}),
    ("companies.get_by_product_link", (), {"external_org_id": "o1"}),
    ("billing.track_usage", (), {"company_id": "c1", "feature_code": "f", "quantity": 1}),
    ("companies.create", (), {"name": "Acme"}),
    ("contacts.list", ("c1",), {}),
]


def check(answer: Answer, error: BaseException | None) -> None:
    """What a call that got ``answer`` may have done: returned (2xx only) or an SDK error."""
    if error is None:
        assert 200 <= answer.status < 300, answer.label
        return
    if not isinstance(error, ChatarminOSError):
        pytest.fail(f"{answer.label[:300]}: {type(error).__name__} escaped: {str(error)[:300]}")
    text = str(error)
    assert len(text) <= 1000, answer.label[:300]
    assert len(repr(error)) <= 1100, answer.label[:300]
    if 200 <= answer.status < 300:
        assert isinstance(error, (APIResponseValidationError, APIStatusError)), answer.label
    else:
        assert isinstance(error, APIStatusError), answer.label[:300]
    assert error.status_code == answer.status  # type: ignore[attr-defined]
    clone = pickle.loads(pickle.dumps(error))
    assert (type(clone), str(clone)) == (type(error), text)


class Replay:
    """A ``MockTransport`` handler answering every request with the current answer."""

    def __init__(self) -> None:
        self.answer: Answer | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert self.answer is not None
        return self.answer.response(request)
