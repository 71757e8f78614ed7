"""One timestamp grammar on the wire: the client and the local server accept the same strings.

Both read ``_wire.parse_datetime``, the grammar of ``@trpc/server``'s zod
``z.iso.datetime({offset: true})``: date, ``T``, hours, minutes, seconds, an optional
fraction, then ``Z`` or ``±hh:mm``. A string one end took and the other refused would be a
request that works locally and fails in production (or the other way round).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chatarmin_os import InvalidInputError
from chatarmin_os._validate import timestamp as client_timestamp
from chatarmin_os._wire import parse_datetime
from chatarmin_os.local._checks import Invalid
from chatarmin_os.local._checks import timestamp as server_timestamp

UTC = timezone.utc
T = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)

ACCEPTED = [
    ("2024-01-15T10:30:00.000Z", T),
    ("2024-01-15T10:30:00Z", T),
    ("2024-01-15T11:30:00+01:00", T),
    ("2024-01-15T05:30:00-05:00", T),
    ("2024-01-15T10:30:00.5Z", T + timedelta(milliseconds=500)),
    ("2024-01-15T10:30:00.123456789Z", T + timedelta(microseconds=123456)),
    ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
    ("0999-01-15T10:30:00.000Z", datetime(999, 1, 15, 10, 30, tzinfo=UTC)),
    ("2024-01-15T23:59:59+23:59", datetime(2024, 1, 15, 0, 0, 59, tzinfo=UTC)),
]

REFUSED = [
    "2024-01-15T10:30Z",  # no seconds: zod refuses it, so the client does too
    "2024-01-15T10:30:00",  # no offset
    "2024-01-15T10:30:00+0100",  # offset without a colon
    "2024-01-15T10:30:00+01",
    "2024-01-15 10:30:00Z",  # a space
    "2024-01-15t10:30:00z",  # lower case
    "2024-01-15",
    "2023-02-29T00:00:00Z",  # no such day
    "2024-01-15T24:00:00Z",
    "2024-01-15T10:60:00Z",
    "2024-01-15T10:30:60Z",
    "2024-01-15T10:30:00+24:00",
    "0000-01-01T00:00:00Z",
    "２０２４-01-15T10:30:00Z",  # non-ASCII digits
    "2024-01-15T10:30:00.Z",
    "",
]


@pytest.mark.parametrize(("text", "instant"), ACCEPTED)
def test_both_ends_accept(text: str, instant: datetime) -> None:
    assert parse_datetime(text) == instant
    assert client_timestamp("created_at", text) == instant
    server = server_timestamp(text, "createdAt")
    assert server == instant
    assert server.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", REFUSED)
def test_both_ends_refuse(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)
    with pytest.raises(InvalidInputError):
        client_timestamp("created_at", text)
    with pytest.raises(Invalid) as info:
        server_timestamp(text, "createdAt")
    assert str(info.value).startswith("createdAt: must be an ISO-8601 timestamp with a UTC offset")
