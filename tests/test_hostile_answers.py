"""The hostile-answer generator itself (the answers go through both clients in
``tests/_async/test_hostile_answers.py`` and its generated twin)."""

from __future__ import annotations

from tests.support.hostile_answers import EXTRA_ANSWERS, SEED, answers


def test_the_generator_covers_every_status_and_shape() -> None:
    generated = answers(SEED)
    assert len(generated) == 500 + EXTRA_ANSWERS
    assert {a.status for a in generated} == set(range(100, 600))
    shapes = {a.label.split(" ")[2] for a in generated}
    assert shapes >= {"json", "result", "error", "superjson", "garbage", "huge", "deep", "empty"}
