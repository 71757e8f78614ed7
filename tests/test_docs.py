"""The documentation site: every public name is in the API reference, the pages are in place.

Fast checks read ``mkdocs.yml`` and the Markdown pages (no build). When the site was built
(``uv run mkdocs build --strict``, which CI runs before the tests), its search index is read
too: each public name must have an entry of its own there.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "chatarmin_os"
SEARCH_INDEX = ROOT / "site" / "search" / "search_index.json"

# The modules whose __all__ the reference documents. An integration module joins as soon as it
# exists (``chatarmin_os.celery``, ``chatarmin_os.aiohttp``): it then needs a reference page.
INTEGRATIONS = ["fastapi", "django", "testing", "importer", "celery", "aiohttp"]


def _module_file(name: str) -> Path | None:
    for candidate in (SRC / f"{name}.py", SRC / name / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _all_of(path: Path) -> list[str]:
    """A module's ``__all__``, read from its source (nothing is imported)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(name) for name in value]
    raise AssertionError(f"{path} has no __all__")


def public_names() -> dict[str, list[str]]:
    """Module -> its public names, for the package and each integration module present."""
    names = {"chatarmin_os": _all_of(SRC / "__init__.py")}
    for integration in INTEGRATIONS:
        path = _module_file(integration)
        if path is not None:
            names[f"chatarmin_os.{integration}"] = _all_of(path)
    return names


def documented() -> set[str]:
    """Every ``::: dotted.name`` the reference pages render."""
    found: set[str] = set()
    for page in (DOCS / "reference").glob("*.md"):
        found.update(re.findall(r"^::: (\S+)", page.read_text(encoding="utf-8"), re.M))
    return found


def nav_pages() -> list[str]:
    """The Markdown files named in mkdocs.yml's nav, in order."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r"([\w./-]+\.md)\s*$", nav, re.M)


def test_every_public_name_has_a_reference_entry() -> None:
    entries = documented()
    missing = [
        f"{module}.{name}"
        for module, names in public_names().items()
        for name in names
        if f"{module}.{name}" not in entries
    ]
    assert missing == [], f"add `::: NAME` lines to a page of docs/reference/: {missing}"


def test_the_reference_renders_only_names_that_exist() -> None:
    public = {f"{module}.{name}" for module, names in public_names().items() for name in names}
    namespaces = {e for e in documented() if e.startswith("chatarmin_os._async.resources.")}
    assert documented() - public == namespaces
    for entry in namespaces:  # the namespace classes, by their module path
        module, _, cls = entry.rpartition(".")
        path = SRC.parent / (module.replace(".", "/") + ".py")
        assert f"class {cls}(" in path.read_text(encoding="utf-8"), entry


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    pages = nav_pages()
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(set(pages)) == sorted(on_disk)
    assert len(pages) == len(set(pages))


def test_the_pages_the_issue_asks_for_are_there() -> None:
    pages = set(nav_pages())
    for guide in [
        "gating",
        "fastapi",
        "django",
        "aiohttp",
        "background-jobs",
        "cache",
        "usage-buffer",
        "batching",
        "errors",
        "testing",
        "local-server",
        "importing",
        "deploying",
        "debugging",
        "from-typescript",
    ]:
        assert f"guides/{guide}.md" in pages
    assert "## How exact is it?" in (DOCS / "guides" / "gating.md").read_text(encoding="utf-8")
    assert len(pages) >= 12


def test_llms_txt_lists_every_page_of_the_nav() -> None:
    text = (DOCS / "llms.txt").read_text(encoding="utf-8")
    assert text.startswith("# chatarmin-os\n\n> ")  # llmstxt.org: a title, then a summary
    links = set(re.findall(r"\]\(([^)]*)\)", text))

    def url(page: str) -> str:  # mkdocs' directory URLs, relative to the site root
        return "./" if page == "index.md" else re.sub(r"(index)?\.md$", "", page).rstrip("/") + "/"

    assert {url(page) for page in nav_pages()} == links


def test_the_readme_stays_short() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "uv run mkdocs serve" in readme


def _stale(index: Path) -> bool:
    built = index.stat().st_mtime
    sources = [ROOT / "mkdocs.yml", *DOCS.rglob("*"), *SRC.rglob("*.py")]
    return any(path.is_file() and path.stat().st_mtime > built for path in sources)


def test_the_built_search_index_names_every_public_name() -> None:
    if not SEARCH_INDEX.exists() or _stale(SEARCH_INDEX):
        if os.environ.get("CI") == "true":
            pytest.fail("build the site first: uv run mkdocs build --strict (.ci/run does)")
        pytest.skip("no up-to-date site/: run `uv run mkdocs build --strict` to check the index")
    entries = json.loads(SEARCH_INDEX.read_text(encoding="utf-8"))["docs"]
    anchors = {entry["location"].rpartition("#")[2] for entry in entries}
    missing = [
        f"{module}.{name}"
        for module, names in public_names().items()
        for name in names
        if f"{module}.{name}" not in anchors
    ]
    assert missing == []
    assert (SEARCH_INDEX.parent.parent / "llms.txt").exists()
    built_pages = {entry["location"].partition("#")[0] for entry in entries}
    assert len(built_pages) >= 12
    # Sphinx roles in docstrings are shown as code, never as ":class:" text.
    shown = [entry["location"] for entry in entries if re.search(r":\w+:`?<code>", entry["text"])]
    assert shown == []
    # A model's private attributes (``_request_id``) are not listed among its fields.
    private = re.compile(r"<p>Fields:</p>\s*<ul>(?:(?!</ul>).)*?<li>\s*<code>_", re.S)
    listed = [entry["location"] for entry in entries if private.search(entry["text"])]
    assert listed == []


def test_sphinx_roles_become_inline_code() -> None:
    from scripts.griffe_roles import plain

    assert plain("see :class:`~chatarmin_os.BatchOptions` and :meth:`Client.flush`.") == (
        "see `BatchOptions` and `Client.flush`."
    )
    assert plain(":py:attr:`~a.b.c`, ``kept``") == "`c`, ``kept``"
