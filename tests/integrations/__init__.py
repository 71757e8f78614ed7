"""Tests of the web-framework integrations (FastAPI, Django)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from tests.helpers import in_ci


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; skip (locally) or fail (in CI) when the extra is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if in_ci():
            raise
        pytest.skip(
            f"{module} is not installed: uv sync (dev group) or pip install 'chatarmin-os[{extra}]'",
            allow_module_level=True,
        )
