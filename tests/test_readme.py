"""The README's Python examples run as written (against the in-process local ChatarminOS)."""

from __future__ import annotations

import pytest

from scripts.check_readme import readme_blocks

BLOCKS = readme_blocks()


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i:02d}" for i in range(1, len(BLOCKS) + 1)])
def test_readme_example_runs(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = compile(source, "<README.md>", "exec")
    exec(code, {"__name__": "__main__"})
    capsys.readouterr()


def test_the_test_command_is_marked_for_ci() -> None:
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    marker = readme.index("<!-- test-command -->")
    assert readme[marker:].splitlines()[2] == "uv run pytest"


def test_the_testing_example_passes_under_pytest(pytester: pytest.Pytester) -> None:
    [source] = [block for block in BLOCKS if "def test_" in block]
    pytester.makepyfile(test_readme_example=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
