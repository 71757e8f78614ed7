"""The official ``@trpc/client`` drives ``chatarmin-os serve``: the conformance suite reversed.

``tests/conformance/client-scenario.mjs`` (see tests/conformance/README.md) runs a fixed usage
scenario with ``createTRPCUntypedClient`` and ``httpLink`` / ``httpBatchLink``, in plain JSON
and with the ``superjson`` transformer. Each of the four combinations gets its own in-memory
server: the scenario always onboards "Scenario Inc", and on a shared server the second run
would be smart-linked to the first run's company (name match, 80 %) instead of creating one.
The four runs go in parallel; each makes ~107 sequential HTTP calls.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.helpers import in_ci
from tests.support.serve_process import ROOT, ServeProcess

CONFORMANCE = ROOT / "tests" / "conformance"
SCENARIO = CONFORMANCE / "client-scenario.mjs"
KEY = "os_sk_scenario"
COMBINATIONS = [(mode, link) for mode in ("json", "superjson") for link in ("http", "batch")]
Results = dict[tuple[str, str], dict[str, Any]]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        message = "Node.js not found (needed to run the official @trpc/client scenario)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    if not (CONFORMANCE / "node_modules" / "@trpc" / "client").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("tests/conformance/node_modules is missing and npm is not installed")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=CONFORMANCE, check=True, timeout=300
        )
    return node


def _run_scenario(node: str, server: ServeProcess, mode: str, link: str) -> dict[str, Any]:
    completed = subprocess.run(
        [
            node,
            str(SCENARIO),
            "--url",
            server.base_url,
            "--api-key",
            KEY,
            "--mode",
            mode,
            "--link",
            link,
            "--run-id",
            "t1",
        ],
        cwd=CONFORMANCE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, (
        f"scenario {mode}/{link} failed ({completed.returncode}):\n{completed.stderr}"
        f"{server.diagnostics()}"
    )
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, completed.stdout
    result: dict[str, Any] = json.loads(lines[0])
    return result


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    node = _node()
    workdir = tmp_path_factory.mktemp("trpc-client")
    servers: list[ServeProcess] = []
    try:
        with ThreadPoolExecutor(max_workers=len(COMBINATIONS)) as pool:
            starts = [
                pool.submit(ServeProcess.start, ["--api-key", KEY], workdir) for _ in COMBINATIONS
            ]
            for future in starts:
                servers.append(future.result())
            runs = {
                combination: pool.submit(_run_scenario, node, server, *combination)
                for combination, server in zip(COMBINATIONS, servers, strict=True)
            }
            outputs = {combination: run.result() for combination, run in runs.items()}
        yield outputs
    finally:
        for server in servers:
            server.kill()


@pytest.fixture(params=COMBINATIONS, ids=[f"{mode}-{link}" for mode, link in COMBINATIONS])
def out(request: pytest.FixtureRequest, results: Results) -> dict[str, Any]:
    return results[request.param]


def test_onboard(out: dict[str, Any]) -> None:
    onboard = out["onboard"]
    assert isinstance(onboard["companyId"], str) and onboard["companyId"]
    assert onboard["companyName"] == "Scenario Inc"
    assert onboard["linkStatus"] == "created"
    assert onboard["billingStatus"] == {
        "claimed": False,
        "linked": False,
        "tierApplied": True,
        "subscriptionId": None,
    }


def test_check_and_status_before(out: dict[str, Any]) -> None:
    company_id = out["onboard"]["companyId"]
    assert out["checkBefore"] == {
        "featureCode": "ai_credit",
        "isEnabled": True,
        "canUse": True,
        "hasQuantity": True,
        "currentUsage": 0,
        "quantityLimit": 100,
        "includedQuantity": 100,
        "remaining": 100,
    }
    assert out["statusBefore"] == {
        "companyId": company_id,
        "hasBillingProfile": False,
        "activeSubscriptions": [],
        "enabledFeaturesCount": 3,
    }
    requests = out["checkBeforeHttp"]
    if out["link"] == "batch":
        assert requests == [
            {"method": "GET", "path": "/api/v1/features.check,billing.getStatus", "batch": True}
        ]
    else:
        assert sorted(r["path"] for r in requests) == [
            "/api/v1/billing.getStatus",
            "/api/v1/features.check",
        ]
        assert all(r["method"] == "GET" and r["batch"] is False for r in requests)


def test_usage_up_to_the_limit(out: dict[str, Any]) -> None:
    usage = out["usage"]
    assert usage["succeeded"] == 100
    assert usage["firstIdempotencyKey"] == f"scn-{out['mode']}-{out['link']}-t1-1"
    assert usage["lastResult"] == {
        "featureCode": "ai_credit",
        "currentUsage": 100,
        "quantityLimit": 100,
        "includedQuantity": 100,
        "remaining": 0,
        "billableQuantity": 0,
        "isAtLimit": True,
        "duplicate": False,
    }
    error = usage["error"]
    assert error["code"] == "PRECONDITION_FAILED"
    assert error["httpStatus"] == 412
    assert error["path"] == "billing.trackUsage"
    assert "ai_credit" in error["message"]


def test_repeated_idempotency_key_is_a_duplicate(out: dict[str, Any]) -> None:
    duplicate = out["duplicate"]
    assert duplicate["ok"] is True, duplicate
    # The first call's figures (contract: "returns the first call's figures"), flagged.
    assert duplicate["result"] == {
        "featureCode": "ai_credit",
        "currentUsage": 1,
        "quantityLimit": 100,
        "includedQuantity": 100,
        "remaining": 99,
        "billableQuantity": 0,
        "isAtLimit": False,
        "duplicate": True,
    }
    # ... and nothing was counted: the usage is still 100.
    assert out["checkAfter"] == {
        "featureCode": "ai_credit",
        "isEnabled": True,
        "canUse": False,
        "hasQuantity": True,
        "currentUsage": 100,
        "quantityLimit": 100,
        "includedQuantity": 100,
        "remaining": 0,
    }


def test_unknown_feature_and_final_status(out: dict[str, Any]) -> None:
    unknown = out["unknownFeature"]
    assert unknown["ok"] is False, unknown
    assert unknown["error"]["code"] == "NOT_FOUND"
    assert unknown["error"]["httpStatus"] == 404
    assert unknown["error"]["path"] == "features.check"
    assert "no_such_feature" in unknown["error"]["message"]
    assert out["status"] == out["statusBefore"]
    # onboard + (1 batched or 2) + 101 trackUsage + duplicate + check + unknown + status
    assert out["httpRequestCount"] == (107 if out["link"] == "batch" else 108)


def test_scenario_ran_in_each_mode(results: Results) -> None:
    assert sorted(results) == sorted(COMBINATIONS)
    for (mode, link), out in results.items():
        assert (out["mode"], out["link"], out["runId"]) == (mode, link, "t1")
    # Four servers, four companies.
    assert len({out["onboard"]["companyId"] for out in results.values()}) == 4
