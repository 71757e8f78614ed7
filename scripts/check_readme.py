#!/usr/bin/env python3
"""Type-check the README's Python examples and examples/ under ``mypy --strict``.

Each fenced ``python`` block of README.md becomes a module in a temporary directory;
mypy checks them all together with ``examples/*.py``. Exit status is mypy's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def readme_blocks(readme: Path = ROOT / "README.md") -> list[str]:
    """The source of every fenced python block in the README, in order."""
    return BLOCK.findall(readme.read_text(encoding="utf-8"))


def main() -> int:
    blocks = readme_blocks()
    if not blocks:
        print("check_readme: no python blocks in README.md", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for index, source in enumerate(blocks, 1):
            path = Path(tmp) / f"readme_example_{index:02d}.py"
            path.write_text(source, encoding="utf-8")
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
        )
    print(f"check_readme: {len(blocks)} README blocks and examples/ checked")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
