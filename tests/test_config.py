"""``ClientConfig``: what it refuses, and that the key stays out of tracebacks with locals.

The per-client behaviour (both clients, ``with_options``, the environment) is in
``tests/_async/test_failures.py``; this module checks the shared resolver itself.
"""

from __future__ import annotations

import traceback
from typing import Any

import httpx
import pytest

from chatarmin_os._base import DEFAULT_TIMEOUT, ClientConfig
from chatarmin_os._exceptions import ConfigurationError
from chatarmin_os._types import NOT_GIVEN

KEY = "os_sk_live_9d8c7b6a5f4e3d2c1b"


def create(**changes: Any) -> ClientConfig:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": "https://os.example.test/api/v1",
        "timeout": NOT_GIVEN,
        "max_retries": 2,
        "transformer": "json",
        "default_headers": None,
    }
    options.update(changes)
    return ClientConfig.create(**options)


def traceback_with_locals(error: BaseException) -> str:
    """The SDK's frames of the traceback, as a crash reporter showing locals prints them.

    (This test's own frames hold the key in their locals, as a caller's would.)
    """
    frames = traceback.StackSummary.extract(
        traceback.walk_tb(error.__traceback__), capture_locals=True
    )
    sdk = traceback.StackSummary.from_list(
        [frame for frame in frames if "/chatarmin_os/" in frame.filename]
    )
    assert sdk, "no SDK frame in the traceback"
    return "".join(sdk.format()) + str(error)


BAD_OPTIONS = [
    {"api_key": KEY + "\u200b"},
    {"api_key": KEY + " x"},
    {"base_url": "ftp://os.example.test"},
    {"base_url": "https://user:pw@os.example.test"},
    {"timeout": -1.0},
    {"max_retries": -1},
    {"transformer": "xml"},
    {"default_headers": {"X-A": "line\nbreak"}},
]


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=lambda o: next(iter(o)))
def test_the_key_is_not_in_a_traceback_with_locals(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        create(**options)
    text = traceback_with_locals(info.value)
    assert "in create" in text
    assert KEY not in text
    assert KEY[6:] not in text


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=lambda o: next(iter(o)))
def test_the_key_is_not_in_a_traceback_with_locals_of_changed(options: dict[str, Any]) -> None:
    config = create()
    with pytest.raises(ConfigurationError) as info:
        config.changed(**options)
    text = traceback_with_locals(info.value)
    assert "in changed" in text
    assert KEY[6:] not in text


def test_a_good_configuration() -> None:
    config = create(
        base_url=httpx.URL("http://127.0.0.1:3001"),
        default_headers={"X-Tenant": "t1"},
    )
    assert str(config.base_url) == "http://127.0.0.1:3001/"
    assert config.timeout is DEFAULT_TIMEOUT
    assert config.headers()["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(config)
    changed = config.changed(timeout=httpx.Timeout(None, connect=2.0), max_retries=0)
    assert (changed.max_retries, changed.timeout) == (0, httpx.Timeout(None, connect=2.0))
    assert changed.default_headers == {"X-Tenant": "t1"}
