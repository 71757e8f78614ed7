"""The exception classes: bounded ``str()``, pickling and copying, the class for an answer."""

from __future__ import annotations

import copy
import gzip
import pickle
from typing import Any

import httpx
import pytest

import chatarmin_os
from chatarmin_os import _exceptions
from chatarmin_os._exceptions import (
    MAX_MESSAGE_CHARS,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    ChatarminOSError,
    InvalidInputError,
    error_class_for,
    shorten,
)
from tests.support.helpers import API_KEY

CLASSES = [getattr(_exceptions, name) for name in _exceptions.__all__]
URL = "https://os.example.test/api/v1/features.check?input=%7B%22companyId%22%3A%22c1%22%7D"


def request() -> httpx.Request:
    return httpx.Request("GET", URL, headers={"Authorization": f"Bearer {API_KEY}"})


def response(status: int = 412, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("json", {"error": {"message": "limit"}})
    return httpx.Response(status, headers={"Retry-After": "3"}, request=request(), **kwargs)


def example(cls: type[ChatarminOSError], message: str = "it failed") -> ChatarminOSError:
    """An instance of ``cls`` as the SDK raises it."""
    if issubclass(cls, InvalidInputError):
        return cls("metadata.a", message)
    if issubclass(cls, APIConnectionError):
        if cls is APIConnectionError:
            return cls(message, request=request())
        return cls(request(), message)  # type: ignore[call-arg]
    if issubclass(cls, APIResponseValidationError):
        return cls(message, path="features.check", response=response(200))
    if issubclass(cls, APIStatusError):
        return cls(
            message,
            response=response(),
            path="billing.trackUsage",
            code="PRECONDITION_FAILED",
            body={"message": message, "data": {"code": "PRECONDITION_FAILED"}},
        )
    return cls(message)


def test_every_class_is_exported_and_documented() -> None:
    assert len(CLASSES) == 16
    for cls in CLASSES:
        assert issubclass(cls, ChatarminOSError)
        assert cls.__doc__
        if cls.__name__ != "ConfigurationError":
            assert getattr(chatarmin_os, cls.__name__) is cls
            assert cls.__name__ in chatarmin_os.__all__


def test_configuration_error_is_exported() -> None:
    assert chatarmin_os.ConfigurationError is _exceptions.ConfigurationError


ATTRIBUTES = ("message", "code", "status_code", "path", "argument", "problem", "body")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_class_survives_pickling(cls: type[ChatarminOSError], protocol: int) -> None:
    error = example(cls)
    data = pickle.dumps(error, protocol=protocol)
    assert API_KEY.encode() not in data
    clone = pickle.loads(data)
    assert type(clone) is cls
    assert (str(clone), repr(clone), clone.args) == (str(error), repr(error), error.args)
    for name in ATTRIBUTES:
        assert getattr(clone, name, "absent") == getattr(error, name, "absent")
    original = getattr(error, "response", None) or getattr(error, "request", None)
    if isinstance(original, httpx.Response):
        rebuilt = clone.response  # type: ignore[attr-defined]
        assert isinstance(rebuilt, httpx.Response)
        assert (rebuilt.status_code, rebuilt.headers["retry-after"]) == (
            original.status_code,
            "3",
        )
        assert rebuilt.content == original.content
        assert rebuilt.json() == original.json()
        assert (rebuilt.request.method, str(rebuilt.request.url)) == ("GET", URL)
        assert "authorization" not in rebuilt.request.headers
    elif isinstance(original, httpx.Request):
        rebuilt_request = clone.request  # type: ignore[attr-defined]
        assert (rebuilt_request.method, str(rebuilt_request.url)) == ("GET", URL)
        assert "authorization" not in rebuilt_request.headers


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_class_copies(cls: type[ChatarminOSError]) -> None:
    error = example(cls)
    clone = copy.copy(error)
    assert type(clone) is cls and clone is not error
    assert (str(clone), clone.args) == (str(error), error.args)
    for name in (*ATTRIBUTES, "response", "request"):
        assert getattr(clone, name, "absent") is getattr(error, name, "absent")
    deep = copy.deepcopy(error)
    assert (type(deep), str(deep)) == (cls, str(error))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_class_has_a_bounded_str(cls: type[ChatarminOSError]) -> None:
    error = example(cls, "m" * 2_000_000)
    assert len(str(error)) <= MAX_MESSAGE_CHARS
    assert str(error).endswith(" more characters]")
    assert len(repr(error)) <= MAX_MESSAGE_CHARS + len(cls.__name__) + 4
    if hasattr(error, "message"):
        assert len(error.message) == 2_000_000  # the whole text stays on the exception


def test_a_pickled_response_keeps_its_decoded_body() -> None:
    body = b'{"error":{"message":"zipped"}}'
    zipped = httpx.Response(
        500, headers={"Content-Encoding": "gzip"}, content=gzip.compress(body), request=request()
    )
    assert zipped.content == body
    error = example(APIStatusError)
    error.response = zipped  # type: ignore[attr-defined]
    clone = pickle.loads(pickle.dumps(error))
    assert clone.response.content == body
    assert "content-encoding" not in clone.response.headers


def test_a_pickled_response_without_request_or_body() -> None:
    error = example(APIResponseValidationError)
    error.response = httpx.Response(200, stream=httpx.ByteStream(b"unread"))  # type: ignore[attr-defined]
    clone = pickle.loads(pickle.dumps(error))
    assert clone.response.content == b""
    with pytest.raises(RuntimeError):
        clone.response.request  # noqa: B018


def test_added_notes_survive_pickling() -> None:
    error = example(InvalidInputError)
    error.add_note("while importing row 7")
    assert pickle.loads(pickle.dumps(error)).__notes__ == ["while importing row 7"]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("x" * 10, 10, "x" * 10),
        ("x" * 100, 40, "x" * 17 + "… [83 more characters]"),
        ("x" * 100, 5, "xxxxx"),
    ],
)
def test_shorten(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (412, "PRECONDITION_FAILED", "PreconditionFailedError"),
        (500, "NOT_FOUND", "NotFoundError"),  # a known code decides
        (404, "NOT_FOUND" * 100_000, "NotFoundError"),  # an unknown one: the status
        (503, "NOT_FOUND" * 100_000, "InternalServerError"),
        (409, None, "ConflictError"),
        (418, 12, "APIStatusError"),
        (302, ["BAD_REQUEST"], "APIStatusError"),
        (200, None, "APIStatusError"),
    ],
)
def test_the_class_for_an_answer(status: int, code: Any, expected: str) -> None:
    assert error_class_for(status, code).__name__ == expected


def test_a_body_nested_too_deeply_to_pickle_is_dropped() -> None:
    error = example(APIStatusError)
    body: Any = "leaf"
    for _ in range(5000):
        body = [body]
    error.body = {"data": body}  # type: ignore[attr-defined]
    clone = pickle.loads(pickle.dumps(error))
    assert clone.body is None
    assert (clone.message, clone.code, clone.status_code) == (error.message, error.code, 412)  # type: ignore[attr-defined]
    error.body = {"data": [[[["a hundred levels is fine"]]]]}  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(error)).body == error.body  # type: ignore[attr-defined]
