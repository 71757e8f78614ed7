"""Fixtures of the local server's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatarmin_os.local import LocalEngine
from tests.support.helpers import SERVER_KEY


@pytest.fixture
def keyed_engine() -> Iterator[LocalEngine]:
    """A fresh in-memory engine accepting :data:`SERVER_KEY`, closed after the test."""
    engine = LocalEngine(api_keys=[SERVER_KEY])
    try:
        yield engine
    finally:
        engine.close()
