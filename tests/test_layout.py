"""The package's layering: the SDK never loads the local server, which needs only the wire.

``import chatarmin_os`` must stay light and must not import ``chatarmin_os.local`` (only
``.local()`` does, lazily). The local server reads nothing of the SDK but the shared wire
modules, so it could ship on its own and cannot lean on the client's models by accident.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import chatarmin_os.local

LOCAL = Path(chatarmin_os.local.__file__).parent
SHARED = {"_wire", "_procedures", "_version", "_types", "_ids"}


def test_importing_the_sdk_does_not_import_the_local_server() -> None:
    code = (
        "import sys, chatarmin_os\n"
        "from chatarmin_os import AsyncChatarminOS, ChatarminOS\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('chatarmin_os.local'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_local_server_imports_only_the_shared_wire_from_the_sdk() -> None:
    outside: dict[str, set[str]] = {}
    for source in sorted(LOCAL.rglob("*.py")):
        depth = len(source.relative_to(LOCAL).parts)  # 1 in local/, 2 in local/procedures/
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > depth:
                module = (node.module or "").split(".")[0]
                if module not in SHARED:
                    outside.setdefault(str(source.relative_to(LOCAL)), set()).add(module)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("chatarmin_os"), (source, node.module)
    assert outside == {}
