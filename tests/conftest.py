"""Shared fixtures: the Node reference tRPC server (see tests/support/reference_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatarmin_os._client.library import ENV_VAR as HTTP_LIBRARY_VAR
from tests.support.needs import start_reference_server
from tests.support.reference_server import ReferenceServer


@pytest.fixture(autouse=True)
def respx_pins_httpx(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """respx mocks httpx only: a test that uses it makes its clients' own pools with httpx."""
    if "respx_mock" in request.fixturenames:
        monkeypatch.setenv(HTTP_LIBRARY_VAR, "httpx")


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
