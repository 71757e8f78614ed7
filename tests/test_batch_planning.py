"""How calls are split into tRPC batches: within ``max_items`` and ``max_url_length``
(measured on the URL the encoder really makes), in order, and each batch as full as it can
be, whatever the mix of long, short and missing inputs."""

from __future__ import annotations

import random

import pytest

from chatarmin_os._batching import BatchOptions, Call, plan_batches
from chatarmin_os._wire import encode_batch, encode_uri_component

BASE = "https://os.example.test/api/v1/"


def query(path: str, value: str | None) -> Call:
    quoted = None if value is None else encode_uri_component(value)
    return Call(path, "query", value, quoted, idempotent=True)


def url_length(calls: list[Call]) -> int:
    encoded = encode_batch("query", [c.path for c in calls], [c.value for c in calls])
    return len(BASE) + len(encoded.url)


@pytest.mark.parametrize("seed", range(8))
def test_query_batches_fit_their_url_limit_and_are_as_full_as_they_can_be(seed: int) -> None:
    rng = random.Random(seed)
    calls = [
        query(
            rng.choice(["features.check", "companies.getByProductLink", "tiers.list"]),
            None
            if rng.random() < 0.1
            else '{"companyId":"' + "é" * rng.choice([1, 5, 40, 400]) + '"}',
        )
        for _ in range(300)
    ]
    options = BatchOptions(max_items=rng.choice([3, 10, 50]), max_url_length=2000)
    batches = plan_batches(calls, options, len(BASE))
    lone = [b[0] for b in batches if len(b) == 1 and url_length(b) > options.max_url_length]
    batched = [call for batch in batches for call in batch if call not in lone]
    assert batched == [call for call in calls if call not in lone]  # all, in order
    assert sorted(map(id, lone + batched)) == sorted(map(id, calls))
    for batch, after in zip(batches, [*batches[1:], []], strict=True):
        assert len(batch) <= options.max_items
        if len(batch) > 1:
            assert url_length(batch) <= options.max_url_length
        elif url_length(batch) > options.max_url_length:
            continue  # too long for any batch: alone
        if after and len(batch) < options.max_items and url_length([after[0]]) <= 2000:
            # The next call did not fit: the batch could not take it.
            assert url_length([*batch, after[0]]) > options.max_url_length


def test_a_query_too_long_for_any_batch_goes_alone_and_the_others_batch_around_it() -> None:
    short = [query("features.check", '{"a":1}') for _ in range(3)]
    huge = query("features.check", '{"a":"' + "x" * 5000 + '"}')
    options = BatchOptions(max_items=10, max_url_length=1000)
    assert plan_batches([*short[:2], huge, short[2]], options, len(BASE)) == [[huge], short]


def test_mutations_are_split_by_count_only() -> None:
    calls = [
        Call("billing.trackUsage", "mutation", '{"q":"' + "x" * 5000 + '"}', None, idempotent=True)
        for _ in range(7)
    ]
    batches = plan_batches(calls, BatchOptions(max_items=3, max_url_length=100), len(BASE))
    assert [len(batch) for batch in batches] == [3, 3, 1]
