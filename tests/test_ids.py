"""The ids the SDK makes: UUIDv7 idempotency keys (time-ordered) and random UUID4s."""

from __future__ import annotations

import uuid

import pytest

from chatarmin_os import _ids
from chatarmin_os._ids import new_idempotency_key, random_uuid, time_ordered_uuid


def test_an_idempotency_key_is_a_uuid7_in_canonical_form() -> None:
    key = new_idempotency_key()
    parsed = uuid.UUID(key)
    assert str(parsed) == key
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_a_uuid7_carries_the_clock_in_milliseconds_then_the_fraction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2026-11-25T20:00:00.123456789Z: 1_795_636_800_123 ms, then 456_789 ns of the next ms.
    monkeypatch.setattr(_ids, "_clock_ns", lambda: 1_795_636_800_123_456_789)
    value = uuid.UUID(time_ordered_uuid()).int
    assert value >> 80 == 1_795_636_800_123
    assert (value >> 76) & 0xF == 7
    assert (value >> 64) & 0xFFF == (456_789 << 12) // 1_000_000 == 1871
    assert (value >> 62) & 0b11 == 0b10


def test_keys_sort_in_the_order_they_were_made_and_never_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = iter(range(1_700_000_000_000_000_000, 1_700_000_001_000_000_000, 250))
    monkeypatch.setattr(_ids, "_clock_ns", lambda: next(ticks))
    keys = [time_ordered_uuid() for _ in range(20_000)]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_two_keys_made_in_the_same_instant_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ids, "_clock_ns", lambda: 1_700_000_000_000_000_000)
    keys = {time_ordered_uuid() for _ in range(1_000)}
    assert len(keys) == 1_000  # the 62 random bits


def test_a_random_uuid_is_a_uuid4() -> None:
    made = random_uuid()
    assert uuid.UUID(made).version == 4
    assert str(uuid.UUID(made)) == made
    assert made != random_uuid()
