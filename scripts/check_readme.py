#!/usr/bin/env python3
"""Type-check the Python examples of README.md, docs/**/*.md and examples/ under ``mypy --strict``.

Each fenced ``python`` block becomes a module in a temporary directory; mypy checks them all
together with ``examples/*.py``. Exit status is mypy's.

A comment on the line right before a block changes what is done with it:

- ``<!-- docs: types-only -->``: type-checked here, but not run by ``tests/test_readme.py``
  (a fragment that cannot run on its own, such as a settings module);
- ``<!-- docs: skip -->``: neither (an excerpt of the project's own source shown to
  contributors).

Every other block is type-checked here and run by the tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^(?:<!-- docs: ([a-z-]+) -->\n)?```python\n(.*?)^```", re.S | re.M)
MODES = ("run", "types-only", "skip")


@dataclass(frozen=True)
class Example:
    """One fenced python block: where it is and what is done with it."""

    path: Path
    line: int
    source: str
    mode: str  # one of MODES

    @property
    def name(self) -> str:
        """A short id such as ``docs/guides/fastapi.md:98``."""
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def module(self) -> str:
        """A module name for the block, unique in the project."""
        stem = re.sub(r"\W", "_", self.path.relative_to(ROOT).with_suffix("").as_posix())
        return f"example_{stem}_{self.line:04d}"


def markdown_files() -> list[Path]:
    """README.md and every page of the site, in a fixed order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def examples_in(path: Path) -> list[Example]:
    """The python blocks of one Markdown file, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        mode = match.group(1) or "run"
        if mode not in MODES:
            line = text.count("\n", 0, match.start()) + 1
            raise ValueError(f"{path.name}:{line}: unknown marker docs: {mode} (use {MODES})")
        line = text.count("\n", 0, match.start(2))  # the ```python line, 1-based
        found.append(Example(path, line, match.group(2), mode))
    return found


def all_examples() -> list[Example]:
    """Every python block of the README and the site."""
    return [example for path in markdown_files() for example in examples_in(path)]


def readme_blocks(readme: Path = ROOT / "README.md") -> list[str]:
    """The source of every fenced python block in the README, in order."""
    return [example.source for example in examples_in(readme)]


def main() -> int:
    checked = [example for example in all_examples() if example.mode != "skip"]
    if not checked:
        print("check_readme: no python blocks in README.md or docs/", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for example in checked:
            path = Path(tmp) / f"{example.module}.py"
            path.write_text(example.source, encoding="utf-8")
            files.append(str(path))
        files.extend(str(p) for p in sorted((ROOT / "examples").glob("*.py")))
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--strict",
                "--config-file",
                str(ROOT / "pyproject.toml"),
                *files,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    # Name each failing block by its page and line instead of the temporary file.
    names = {example.module: example.name for example in checked}
    output = re.sub(
        r"\S*?(example_\w+?)\.py:(\d+)",
        lambda m: f"{names.get(m.group(1), m.group(1))} +{m.group(2)}",
        result.stdout + result.stderr,
    )
    print(output, end="")
    print(f"check_readme: {len(checked)} blocks of README.md and docs/, and examples/, checked")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
