"""One client inside a real application process: forks, event loops, threads and tasks.

Everything here runs against a real ``chatarmin-os serve`` over TCP, because what goes wrong
(sockets shared by two processes, connections bound to a closed event loop) only happens
with real connections. Forks are real ``os.fork()`` children.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterator

import pytest
import trio

from chatarmin_os import AsyncChatarminOS, ChatarminOS
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

KEY = "os_sk_runtime_test"
CHILDREN = 4
CALLS = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    process = ServeProcess.start(["--api-key", KEY], tmp_path_factory.mktemp("runtime"))
    try:
        yield process
    finally:
        process.kill()


def metered_company(client: ChatarminOS, name: str) -> str:
    company = client.companies.create(name=name)
    client.features.set_access(
        company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=None
    )
    return company.id


def usage(client: ChatarminOS, company_id: str) -> int:
    return client.features.check(company_id=company_id, feature_code="ai_credit").current_usage


def exercise_sync(client: ChatarminOS, company_id: str, who: str) -> list[str]:
    """Calls whose answers say whom they belong to; the problems found, if any."""
    problems = []
    for i in range(CALLS):
        name = f"{who}-{i}"
        created = client.companies.create(name=name)
        if created.name != name:
            problems.append(f"{who}: asked for {name!r}, got {created.name!r}")
        code = ("free", "pro", "enterprise")[i % 3]
        tier = client.tiers.get(code)
        if tier.code != code:
            problems.append(f"{who}: asked for tier {code!r}, got {tier.code!r}")
        client.billing.track_usage(company_id=company_id, feature_code="ai_credit", quantity=1)
    return problems


async def exercise_async(client: AsyncChatarminOS, company_id: str, who: str) -> list[str]:
    problems = []
    for i in range(CALLS):
        name = f"{who}-{i}"
        created = await client.companies.create(name=name)
        if created.name != name:
            problems.append(f"{who}: asked for {name!r}, got {created.name!r}")
        code = ("free", "pro", "enterprise")[i % 3]
        tier = await client.tiers.get(code)
        if tier.code != code:
            problems.append(f"{who}: asked for tier {code!r}, got {tier.code!r}")
        await client.billing.track_usage(
            company_id=company_id, feature_code="ai_credit", quantity=1
        )
    return problems


def fork_children(work: Callable[[str], list[str]]) -> list[str]:
    """Fork CHILDREN processes running ``work`` while this process runs it too.

    Each child reports its problems (or the exception that stopped it) through a pipe and
    always leaves with ``os._exit``, so pytest never runs on in a child.
    """
    children = []
    for n in range(CHILDREN):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            code = 1
            try:
                report = work(f"child{n}")
                code = 0
            except BaseException as exc:  # report anything, then leave
                report = [f"child{n} raised {type(exc).__name__}: {exc}"]
            finally:
                with os.fdopen(write_end, "w") as pipe:
                    pipe.write(json.dumps(report))
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    problems = work("parent")
    for pid, read_end in children:
        with os.fdopen(read_end) as pipe:
            problems += json.loads(pipe.read() or '["no report"]')
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            problems.append(f"child {pid} exited with {os.waitstatus_to_exitcode(status)}")
    return problems


def test_a_sync_client_used_before_fork_works_in_every_process(server: ServeProcess) -> None:
    client = ChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0)
    company_id = metered_company(client, "Fork Sync Inc")
    client.tiers.get("pro")  # a pooled keep-alive connection exists before the fork

    problems = fork_children(lambda who: exercise_sync(client, company_id, who))

    assert problems == []
    assert usage(client, company_id) == (CHILDREN + 1) * CALLS
    client.close()


def test_an_async_client_used_before_fork_works_in_every_process(server: ServeProcess) -> None:
    client = AsyncChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0)
    with ChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0) as sync:
        company_id = metered_company(sync, "Fork Async Inc")

    async def warm() -> None:
        await client.tiers.get("pro")

    asyncio.run(warm())  # pooled connections of a loop that is now closed

    problems = fork_children(
        lambda who: asyncio.run(exercise_async(client, company_id, who))  # type: ignore[arg-type]
    )

    assert problems == []
    with ChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0) as sync:
        assert usage(sync, company_id) == (CHILDREN + 1) * CALLS


def test_a_forked_child_leaves_the_parents_connections_alone(server: ServeProcess) -> None:
    client = ChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0)
    client.tiers.get("pro")
    pool = client._pool._client
    assert pool is not None
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # A fresh pool in the child; the parent's is not the child's to close.
            code = 0 if client.tiers.get("free").code == "free" else 2
            code = code or (3 if client._pool._client is pool else 0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client._pool._client is pool  # the parent goes on with its own connections
    assert not pool.is_closed
    assert client.tiers.get("enterprise").code == "enterprise"
    client.close()


def test_an_async_client_survives_asyncio_run_twice(server: ServeProcess) -> None:
    client = AsyncChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0)

    async def call(code: str) -> str:
        return (await client.tiers.get(code)).code

    assert asyncio.run(call("pro")) == "pro"
    first_pool = client._pool._client
    assert asyncio.run(call("free")) == "free"  # the first loop is closed by now
    assert client._pool._client is not first_pool
    assert asyncio.run(call("enterprise")) == "enterprise"

    async def close() -> None:
        await client.aclose()

    asyncio.run(close())
    assert client.is_closed


def test_an_async_client_moves_between_trio_and_asyncio(server: ServeProcess) -> None:
    client = AsyncChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0)

    async def call(code: str) -> str:
        return (await client.tiers.get(code)).code

    assert trio.run(call, "pro") == "pro"
    assert asyncio.run(call("free")) == "free"
    assert trio.run(call, "enterprise") == "enterprise"


def test_one_sync_client_shared_by_many_threads(server: ServeProcess) -> None:
    client = ChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0)
    company_id = metered_company(client, "Threads Inc")
    problems: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        found = exercise_sync(client, company_id, f"thread{n}")
        with lock:
            problems.extend(found)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert problems == []
    assert usage(client, company_id) == 8 * CALLS
    client.close()


async def test_one_async_client_shared_by_many_tasks(server: ServeProcess) -> None:
    with ChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0) as sync:
        company_id = metered_company(sync, "Tasks Inc")
        async with AsyncChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0) as client:
            results = await asyncio.gather(
                *(exercise_async(client, company_id, f"task{n}") for n in range(20))
            )
        assert [problem for found in results for problem in found] == []
        assert usage(sync, company_id) == 20 * CALLS


def test_a_batching_client_used_before_fork_works_in_every_process(server: ServeProcess) -> None:
    client = ChatarminOS(api_key=KEY, base_url=server.base_url, timeout=10.0, batching=True)
    company_id = metered_company(client, "Fork Batch Inc")
    client.tiers.get("pro")

    def threaded(who: str) -> list[str]:
        problems: list[str] = []
        lock = threading.Lock()

        def work(n: int) -> None:
            found = exercise_sync(client, company_id, f"{who}-t{n}")
            with lock:
                problems.extend(found)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return problems

    problems = fork_children(threaded)

    assert problems == []
    assert usage(client, company_id) == (CHILDREN + 1) * 4 * CALLS
    client.close()
