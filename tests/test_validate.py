"""The shared argument checks: how refused values are described, the URL length check."""

from __future__ import annotations

from typing import Any

import pytest

from chatarmin_os import InvalidInputError
from chatarmin_os._validate import MAX_URL_LENGTH, check_url_length, show


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("short", "'short'"),
        ("x" * 41, "'" + "x" * 40 + "'… (41 characters)"),
        ("\ud800", "'\\ud800'"),
        (12, "12"),
        (-(10**20), "-100000000000000000000"),
        (10**21, "an integer of about 22 digits"),
        (-(10**5000), "a negative integer of about 5001 digits"),
        (float("nan"), "nan"),
        (True, "True"),
        (None, "None"),
        (object(), "an object"),
        ({"a": 1}, "a dict"),
    ],
    ids=lambda value: type(value).__name__,
)
def test_show_describes_a_value_briefly(value: Any, shown: str) -> None:
    assert show(value) == shown


def test_check_url_length() -> None:
    check_url_length(MAX_URL_LENGTH)
    with pytest.raises(InvalidInputError) as info:
        check_url_length(MAX_URL_LENGTH + 1)
    assert str(info.value) == (
        "input: the query's URL is 65537 bytes, over the limit of 65536: send less "
        "(a query carries its input in the URL)"
    )
