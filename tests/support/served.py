"""A ``chatarmin-os serve --db FILE`` the usage tests count against (not a test module).

:class:`Served` wraps a :class:`~tests.support.serve_process.ServeProcess` over a database
file and reads back what the server counted; :data:`KEY` is the API key it accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chatarmin_os import ChatarminOS
from chatarmin_os.local import LocalEngine
from tests.support.serve_process import ServeProcess

KEY = "os_sk_usage_buffer_test"


class Served:
    """A ``chatarmin-os serve`` over a database file, and what it counted."""

    def __init__(self, process: ServeProcess, db: Path) -> None:
        self.process = process
        self.db = db
        self.base_url = process.base_url

    def client(self, **options: Any) -> ChatarminOS:
        return ChatarminOS(api_key=KEY, base_url=self.base_url, **options)

    def metered_company(self, name: str) -> str:
        with self.client() as client:
            company = client.companies.create(name=name)
            client.features.set_access(
                company_id=company.id,
                feature_code="ai_credit",
                is_enabled=True,
                quantity_limit=None,
            )
        return company.id

    def counted(self, company_id: str) -> dict[str, int]:
        """Idempotency key -> how many times it was counted (the server keeps one row per key)."""
        engine = LocalEngine(str(self.db), api_keys=(KEY,))
        try:
            events = engine.usage_events(company_id)
        finally:
            engine.close()
        result: dict[str, int] = {}
        for event in events:
            result[event["idempotencyKey"]] = result.get(event["idempotencyKey"], 0) + 1
        return result
