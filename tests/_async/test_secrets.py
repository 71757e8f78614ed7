"""No copy of the API key in plain form anywhere on a client: not in ``vars()``, not in a repr.

A walk from each client through its attributes (its pool, transport, batcher, config,
copies) checks every object's ``repr`` and every string and bytes value it reaches.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

import httpx
import pytest

from chatarmin_os import AsyncChatarminOS
from chatarmin_os.local import LocalEngine
from tests.support.canned import SSO_ACCESS
from tests.support.helpers import BASE_URL, ok

SECRET = "os_sk_do_not_show_4f1c9e"
OTHER = "os_sk_other_do_not_show_77aa"

# What is checked by its repr only: httpx.Headers masks the Authorization in its repr (its
# raw list holds the header, as every HTTP client must); code objects are not state.
_LEAVES = (
    httpx.Headers,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
)


def leaks(root: object, secrets: tuple[str, ...], depth: int = 6) -> list[str]:
    """Where any of ``secrets`` shows, walking ``vars()``, slots and containers from ``root``."""
    found: list[str] = []
    seen: set[int] = set()

    def shows(text: str) -> bool:
        return any(secret in text for secret in secrets)

    def walk(value: Any, where: str, left: int) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, str):
            if shows(value):
                found.append(where)
            return
        if isinstance(value, (bytes, bytearray)):
            if shows(bytes(value).decode("latin-1")):
                found.append(where)
            return
        try:
            text = repr(value)
        except Exception:  # a half-made object: its parts are still walked
            text = ""
        if shows(text):
            found.append(f"repr({where})")
        if left == 0 or isinstance(value, _LEAVES):
            return
        if isinstance(value, dict):
            for key, item in list(value.items()):
                walk(key, f"{where} key", left - 1)
                walk(item, f"{where}[{key!r}]", left - 1)
            return
        if isinstance(value, (list, tuple, set, frozenset)):
            for index, item in enumerate(list(value)):
                walk(item, f"{where}[{index}]", left - 1)
            return
        attributes: dict[str, Any] = {}
        with contextlib.suppress(TypeError):  # no __dict__
            attributes.update(vars(value))
        for klass in type(value).__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if isinstance(slot, str) and hasattr(value, slot):
                    attributes[slot] = getattr(value, slot)
        for name, item in attributes.items():
            walk(item, f"{where}.{name}", left - 1)

    walk(root, "client", depth)
    return found


def mock_http() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: ok(SSO_ACCESS)))


async def test_a_client_and_its_copies_hold_no_plain_key() -> None:
    clients = [
        AsyncChatarminOS(api_key=SECRET, base_url=BASE_URL, http_client=mock_http()),
        AsyncChatarminOS(api_key=SECRET, base_url=BASE_URL, http_client=mock_http(), batching=True),
    ]
    own = AsyncChatarminOS(api_key=SECRET, base_url=BASE_URL)
    own._own_pool(mock_http)
    clients.append(own)
    clients += [client.with_options(api_key=OTHER, timeout=5) for client in list(clients)]
    clients += [client.with_options(max_retries=0) for client in list(clients)]
    for client in clients:
        await client.features.check(company_id="c1", feature_code="sso")
    for client in clients:
        assert leaks(client, (SECRET, OTHER)) == []
        assert leaks(vars(client), (SECRET, OTHER)) == []
        assert SECRET not in repr(client._config) and SECRET not in repr(vars(client._config))
        assert client._config.api_key in (SECRET, OTHER)  # still there for the request
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize("batching", [False, True])
async def test_local_clients_hold_no_plain_key(batching: bool) -> None:
    engine = LocalEngine(api_keys=(SECRET, OTHER))
    client = AsyncChatarminOS.local(engine, api_key=SECRET, batching=batching)
    copy = client.with_options(api_key=OTHER)
    for each in (client, copy):
        result = await each.onboard(external_org_id="org_1", label="Secrets", tier_code="free")
        assert result.company_id
        assert leaks(each, (SECRET, OTHER)) == []
        assert leaks(each._pool, (SECRET, OTHER)) == []
    await client.aclose()


def test_the_walk_finds_a_plain_key() -> None:
    class Holder:
        def __init__(self) -> None:
            self.headers = {"authorization": f"Bearer {SECRET}"}
            self.inner = [b"Bearer " + SECRET.encode()]

    assert leaks(Holder(), (SECRET,)) == [
        "repr(client.headers)",
        "client.headers['authorization']",
        "repr(client.inner)",
        "client.inner[0]",
    ]
