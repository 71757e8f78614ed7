"""A griffe extension for the docs site: Sphinx roles in docstrings become code.

The source's docstrings name other objects the Sphinx way (``:class:`~chatarmin_os.X```),
which mkdocstrings' Google-style rendering would show as is (":class: ~chatarmin_os.X").
Each role becomes inline code with the name a reader knows: ``~`` drops the module path,
as in Sphinx. Loaded by ``mkdocs.yml`` (``extensions:`` of the python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|attr|meth|func|data|mod|exc|obj|const|type):`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``text`` with every Sphinx role turned into inline code."""

    def code(match: re.Match[str]) -> str:
        short, target = match.group(1), match.group(2).strip()
        if short:
            target = target.rsplit(".", 1)[-1]
        return f"`{target}`"

    return ROLE.sub(code, text)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring once the tree is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
