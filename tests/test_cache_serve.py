"""End to end against ``chatarmin-os serve``: the server killed mid-run, then back.

While it is down the cache answers stale entries and fallback policies (and raises for the
rest); once it is back, a background request refreshes the entry and ends the outage.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chatarmin_os import APIConnectionError, CacheOptions, ChatarminOS
from chatarmin_os.testing import ChatarminOSServer
from tests.support.cache_harness import Clock, wait_until
from tests.support.redis_server import free_port
from tests.support.serve_process import ServeProcess

ROOT = Path(__file__).resolve().parent.parent
KEY = "os_sk_cache_e2e"
AI = "ai_credit"


def test_stale_and_fallback_while_the_server_is_down_then_refreshed(tmp_path: Path) -> None:
    port = free_port()
    args = ["--db", str(tmp_path / "os.db"), "--api-key", KEY, "--port", str(port)]
    server = ServeProcess.start(args, tmp_path)
    clock = Clock()
    options = CacheOptions(clock=clock, jitter=0, fallback={"team_seats": "open"})
    client = ChatarminOS(api_key=KEY, base_url=server.base_url, max_retries=0, cache=options)
    try:
        onboarded = client.onboard(external_org_id="org_e2e", label="E2E", tier_code="free")
        company_id = onboarded.company_id
        client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=3)
        assert client.features.check_by_external_org_id("org_e2e", AI).source == "live"
        assert client.features.check(company_id=company_id, feature_code=AI).source == "cache"

        server.kill()
        clock.advance(30)
        stale = client.features.check_by_external_org_id("org_e2e", AI)
        assert (stale.source, stale.remaining) == ("stale", 97)
        seats = client.features.check(company_id=company_id, feature_code="team_seats")
        assert (seats.source, seats.can_use, seats.remaining) == ("fallback", True, None)
        with pytest.raises(APIConnectionError):
            client.features.check(company_id=company_id, feature_code="sso")  # no policy
        cache = client.cache
        assert cache is not None
        assert (cache.stats().stale, cache.stats().fallback) == (1, 1)

        server = ServeProcess.start(args, tmp_path)  # back, with the same data
        with ChatarminOS(api_key=KEY, base_url=server.base_url) as admin:  # no cache
            admin.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=42)
        clock.advance(2.1)  # the retry is due (1 s after the first failure, 2 s after the second)
        assert client.features.check(company_id=company_id, feature_code=AI).source == "stale"
        wait_until(lambda: cache.stats().refreshes >= 1, "the background refresh")
        refreshed = client.features.check(company_id=company_id, feature_code=AI)
        assert (refreshed.source, refreshed.quantity_limit, refreshed.remaining) == (
            "cache",
            42,
            39,
        )
        live = client.features.check(company_id=company_id, feature_code="team_seats")
        assert (live.source, live.quantity_limit) == ("live", 3)  # outage over: asks again
    finally:
        client.close()
        server.kill()


def test_the_readme_gating_example_serves(chatarmin_os_server: ChatarminOSServer) -> None:
    """The cache guide's app (docs/guides/cache.md), against the live-server fixture."""
    from fastapi.testclient import TestClient

    from scripts.check_readme import all_examples

    [source] = [e.source for e in all_examples() if "CACHE = CacheOptions(" in e.source]
    company_id = chatarmin_os_server.add_company("Acme", external_org_id="org_9", tier="free")
    namespace: dict[str, Any] = {"__name__": "readme_gating"}
    exec(compile(source, "<README>", "exec"), namespace)  # its main() runs in-process
    with TestClient(namespace["app"]) as http:
        answers = [http.post("/summaries", headers={"X-Org-Id": "org_9"}) for _ in range(3)]
    assert [a.json() for a in answers] == [
        {"answered_from": "live"},
        {"answered_from": "cache"},
        {"answered_from": "cache"},
    ]
    chatarmin_os_server.assert_usage(company_id, AI, 3)


def test_the_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_cache.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "cached check (sync)" in result.stdout
    assert "Redis-level hit (sync)" in result.stdout or "redis-server not found" in result.stdout
