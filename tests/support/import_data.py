"""Rows, a recording transport and state checks for the import tests (not a test module)."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from chatarmin_os import ChatarminOS
from tests.support.helpers import sent_input

Hook = Callable[[str, Any], Awaitable[None]]


def org_row(n: int, *, users: int = 2, plan: str = "pro") -> dict[str, Any]:
    """Organisation ``n``, shaped like the README's backfill example."""
    return {
        "id": f"org_{n}",
        "name": f"Company {n}",
        "domain": f"company{n}.example",
        "plan": plan,
        "adminEmail": f"admin@company{n}.example",
        "createdAt": f"2022-03-{n % 28 + 1:02d}T09:00:00.000Z",
        "users": [
            {"email": f"user{u}@company{n}.example", "name": f"User {u}", "role": "Engineer"}
            for u in range(users)
        ],
    }


def changed(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``row`` with keys replaced (a value of ``...`` deletes the key)."""
    result = copy.deepcopy(row)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


Snapshot = tuple[str, str | None, datetime, list[tuple[str, str | None, str | None, bool]]]
"""(company name, domain, created_at, [(email, name, role, is_primary), ...])."""


def expected_state(rows: Sequence[dict[str, Any]]) -> dict[str, Snapshot]:
    """What importing good rows (distinct names and domains) into an empty server gives."""
    state: dict[str, Snapshot] = {}
    for row in rows:
        contacts = [(row["adminEmail"], None, None, True)]
        contacts += [(u["email"], u.get("name"), u.get("role"), False) for u in row["users"]]
        created_at = datetime.fromisoformat(row["createdAt"].replace("Z", "+00:00"))
        state[row["id"]] = (row["name"], row["domain"], created_at, contacts)
    return state


def actual_state(client: ChatarminOS, org_ids: Sequence[str]) -> dict[str, Snapshot | None]:
    """The server's companies and contacts for ``org_ids`` (``None``: not linked)."""
    state: dict[str, Snapshot | None] = {}
    for org_id in org_ids:
        company = client.companies.get_by_product_link(external_org_id=org_id)
        if company is None:
            state[org_id] = None
            continue
        contacts = [
            (c.email, c.name, c.role, c.is_primary) for c in client.contacts.list(company.id)
        ]
        state[org_id] = (company.name, company.domain, company.created_at, contacts)
    return state


class Recorder(httpx.AsyncBaseTransport):
    """Records each request as ``(procedure, input)`` and how many were in flight at once.

    ``hook(procedure, input)``, when given, is awaited before the wrapped transport answers.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, hook: Hook | None = None) -> None:
        self.inner = inner
        self.hook = hook
        self.calls: list[tuple[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def procedures(self) -> list[str]:
        return [path for path, _ in self.calls]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rsplit("/", 1)[1]
        payload = sent_input(request)
        self.calls.append((path, payload))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await anyio.lowlevel.checkpoint()
            if self.hook is not None:
                await self.hook(path, payload)
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1
