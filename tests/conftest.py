"""Shared fixtures: the Node tRPC conformance server (see tests/conformance_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance_server import ConformanceServer


@pytest.fixture(scope="session", params=["json", "superjson"], ids=["json", "superjson"])
def conformance_server(request: pytest.FixtureRequest) -> Iterator[ConformanceServer]:
    """The conformance server in each transformer mode, started once per session."""
    server = ConformanceServer.start(request.param)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def conformance(conformance_server: ConformanceServer) -> ConformanceServer:
    """The conformance server with its recordings cleared for this test."""
    conformance_server.reset()
    return conformance_server
