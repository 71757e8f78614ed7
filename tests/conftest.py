"""Shared fixtures: the Node reference tRPC server (see tests/support/reference_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.needs import start_reference_server
from tests.support.reference_server import ReferenceServer


@pytest.fixture(scope="session", params=["json", "superjson"], ids=["json", "superjson"])
def reference_server(request: pytest.FixtureRequest) -> Iterator[ReferenceServer]:
    """The reference server in each transformer mode, started once per session."""
    server = start_reference_server(request.param)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def conformance(reference_server: ReferenceServer) -> ReferenceServer:
    """The reference server with its recordings and canned answers reset for this test."""
    reference_server.reset()
    return reference_server
