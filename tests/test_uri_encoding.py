"""``encode_uri_component`` is JavaScript's ``encodeURIComponent``, character for character
(ASCII takes a one-pass table, the rest UTF-8 percent-encoding)."""

from __future__ import annotations

import string

import pytest

from chatarmin_os._wire import encode_uri_component

# What ECMAScript's encodeURIComponent leaves as it is.
UNESCAPED = set(string.ascii_letters + string.digits + "-_.!~*'()")


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character(code: int) -> None:
    char = chr(code)
    assert encode_uri_component(char) == (char if char in UNESCAPED else f"%{code:02X}")


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ('{"companyId":"comp_1"}', "%7B%22companyId%22%3A%22comp_1%22%7D"),
        ("a b+c/d?e&f=g#h", "a%20b%2Bc%2Fd%3Fe%26f%3Dg%23h"),
        ("é", "%C3%A9"),
        ("comp é'ü", "comp%20%C3%A9'%C3%BC"),
        ("😀", "%F0%9F%98%80"),
        ("", ""),
    ],
)
def test_known_strings(text: str, encoded: str) -> None:
    assert encode_uri_component(text) == encoded
