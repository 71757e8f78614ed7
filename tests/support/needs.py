"""What a test needs that may be missing: an optional extra, Node.js for the reference server.

Locally a missing piece skips the test with the reason; under ``CI=true`` it fails it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from tests.support.helpers import in_ci
from tests.support.reference_server import NodeUnavailable, ReferenceServer, ReferenceServerError


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


def start_reference_server(mode: str, options: tuple[str, ...] = ()) -> ReferenceServer:
    """Start the reference server; without Node.js skip the test locally, fail it in CI."""
    try:
        return ReferenceServer.start(mode, options=options)
    except NodeUnavailable as error:
        if in_ci():
            pytest.fail(f"Node.js is required in CI for the tRPC conformance suite: {error}")
        pytest.skip(str(error))
    except ReferenceServerError as error:
        pytest.fail(str(error), pytrace=False)
