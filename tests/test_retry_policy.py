"""The retry policy's pure parts, with an injected clock and jitter."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from chatarmin_os._base import retry_delay

NOW = 1_700_000_000.0


def headers(**values: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize(
    ("retries_taken", "jitter", "expected"),
    [
        (0, 0.0, 0.5),
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (4, 0.0, 8.0),
        (9, 0.0, 8.0),
        (0, 1.0, 0.375),
        (4, 1.0, 6.0),
    ],
)
def test_exponential_backoff_with_jitter_and_cap(
    retries_taken: int, jitter: float, expected: float
) -> None:
    assert retry_delay(retries_taken, None, now=lambda: NOW, jitter=lambda: jitter) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (headers(retry_after_ms="250"), 0.25),
        (headers(retry_after="7"), 7.0),
        (headers(retry_after="1.5"), 1.5),
        (headers(retry_after=email.utils.formatdate(NOW + 12, usegmt=True)), 12.0),
        (headers(retry_after_ms="100", retry_after="9"), 0.1),  # the ms header wins
    ],
)
def test_retry_after_headers(given: httpx.Headers, expected: float) -> None:
    assert retry_delay(0, given, now=lambda: NOW, jitter=lambda: 0.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    "given",
    [
        headers(retry_after="61"),  # beyond the 60 s cap
        headers(retry_after="-3"),
        headers(retry_after="soon"),
        headers(retry_after=email.utils.formatdate(NOW - 30, usegmt=True)),  # in the past
        headers(retry_after_ms="not-a-number"),
    ],
)
def test_unusable_retry_after_falls_back_to_backoff(given: httpx.Headers) -> None:
    assert retry_delay(2, given, now=lambda: NOW, jitter=lambda: 0.0) == 2.0
