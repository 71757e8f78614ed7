"""``chatarmin-os features|billing|tiers|usage``: the real console script against a real
``chatarmin-os serve``: tables, ``--json`` equal to the SDK's model dumps, and every failure
one line on stderr with its exit code (1 API error, 2 usage error, 3 no usable answer)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chatarmin_os import ChatarminOS
from tests.support.cli_process import KEY, Done, run_cli, serve
from tests.support.serve_process import ServeProcess

__all__ = ["serve"]  # the fixture, used by name

ORG = "org_inspect"


@pytest.fixture(scope="module")
def client(serve: ServeProcess) -> Iterator[ChatarminOS]:
    with ChatarminOS(api_key=KEY, base_url=serve.base_url) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def company(client: ChatarminOS) -> str:
    """A company on the pro tier, linked to :data:`ORG`."""
    return client.onboard(
        external_org_id=ORG, label="Inspect", tier_code="pro", hints={"company_name": "Inspect Co"}
    ).company_id


def cli(serve: ServeProcess, *args: str, **env: str) -> Done:
    environ = {"OS_API_KEY": KEY, "CHATARMIN_OS_BASE_URL": serve.base_url, **env}
    return run_cli(args, environ)


def as_json(done: Done) -> Any:
    assert (done.status, done.err) == (0, ""), done
    return json.loads(done.out)


def test_tiers_list_and_get(serve: ServeProcess, client: ChatarminOS) -> None:
    tiers = client.tiers.list()
    assert as_json(cli(serve, "tiers", "list", "--json")) == [
        t.model_dump(mode="json") for t in tiers
    ]
    table = cli(serve, "tiers", "list")
    assert table.status == 0
    width = max(len(t.code) for t in tiers)
    assert table.out.splitlines()[0].split() == ["CODE", "NAME", "DESCRIPTION"]
    assert table.out.splitlines()[1].startswith("free".ljust(width) + "  Free")
    assert len(table.out.splitlines()) == len(tiers) + 1

    pro = client.tiers.get("pro")
    assert as_json(cli(serve, "tiers", "get", "pro", "--json")) == pro.model_dump(mode="json")
    text = cli(serve, "tiers", "get", "pro").out
    assert "base fee       49.00 EUR / month (price_pro_base)\n" in text
    assert [line.split()[0] for line in text.split("\n\n")[1].splitlines()] == [
        "FEATURE",
        *(f.code for f in pro.features),
    ]


def test_features_check_by_org_and_company(
    serve: ServeProcess, client: ChatarminOS, company: str
) -> None:
    by_org = as_json(cli(serve, "features", "check", "--org", ORG, "ai_credit", "--json"))
    expected = client.features.check(company_id=company, feature_code="ai_credit")
    assert by_org == expected.model_dump(mode="json")
    by_company = cli(serve, "features", "check", "--company", company, "ai_credit", "--json")
    assert as_json(by_company) == by_org
    assert cli(serve, "features", "check", "--org", ORG, "ai_credit").out == (
        "feature    ai_credit\n"
        "enabled    yes\n"
        "can use    yes\n"
        "metered    yes\n"
        f"usage      {expected.current_usage}\n"
        "limit      10000\n"
        "included   1000\n"
        f"remaining  {expected.remaining}\n"
    )


def test_features_list_by_org_and_company(
    serve: ServeProcess, client: ChatarminOS, company: str
) -> None:
    by_org = as_json(cli(serve, "features", "list", "--org", ORG, "--json"))
    assert by_org == client.features.get_access_by_external_org_id(ORG).model_dump(mode="json")
    by_company = as_json(cli(serve, "features", "list", "--company", company, "--json"))
    assert by_company == [d.model_dump(mode="json") for d in client.features.list_access(company)]
    lines = cli(serve, "features", "list", "--org", ORG).out.splitlines()
    assert lines[0] == f"company {company}"
    assert lines[2].split() == [
        "FEATURE", "NAME", "ENABLED", "CAN", "USE", "USAGE", "LIMIT", "INCLUDED", "REMAINING",
        "SOURCE", "VALID", "UNTIL",
    ]  # fmt: skip
    sso = next(line for line in lines if line.startswith("sso "))
    assert sso.split() == [
        "sso",
        "Single",
        "Sign-On",
        "no",
        "no",
        "-",
        "-",
        "-",
        "-",
        "manual",
        "-",
    ]


def test_billing_status(serve: ServeProcess, client: ChatarminOS, company: str) -> None:
    status = as_json(cli(serve, "billing", "status", "--company", company, "--json"))
    assert status == client.billing.get_status(company).model_dump(mode="json")
    assert as_json(cli(serve, "billing", "status", "--org", ORG, "--json")) == status
    text = cli(serve, "billing", "status", "--company", company).out
    assert text.splitlines()[0] == f"company           {company}"
    assert "subscriptions     none" in text


def test_usage_track_with_an_idempotency_key(serve: ServeProcess, company: str) -> None:
    args = ["usage", "track", "--org", ORG, "ai_credit", "--quantity", "3"]
    first = as_json(cli(serve, *args, "--idempotency-key", "cli-1", "--json"))
    again = as_json(cli(serve, *args, "--idempotency-key", "cli-1", "--json"))
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert again["current_usage"] == first["current_usage"]
    text = cli(serve, "usage", "track", "--company", company, "ai_credit").out
    assert f"usage      {first['current_usage'] + 1}\n" in text


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["features", "check", "--org", "org_nobody", "ai_credit"],
            '404 NOT_FOUND on features.checkByExternalOrgId: No company is linked to externalOrgId "org_nobody"',
        ),
        (
            ["features", "list", "--org", "org_nobody", "--json"],
            '404 NOT_FOUND on features.getAccessByExternalOrgId: No company is linked to externalOrgId "org_nobody"',
        ),
        (
            ["billing", "status", "--org", "org_nobody"],
            "404 NOT_FOUND on companies.getByProductLink: No company is linked to external_org_id 'org_nobody'",
        ),
        (
            ["features", "check", "--org", ORG, "ai_credt"],
            '404 NOT_FOUND on features.checkByExternalOrgId: Feature "ai_credt" not found',
        ),
        (["tiers", "get", "platinum"], '404 NOT_FOUND on tiers.get: Tier "platinum" not found'),
    ],
)
def test_unknown_things_are_one_line_and_exit_1(
    serve: ServeProcess, company: str, args: list[str], line: str
) -> None:
    done = cli(serve, *args)
    # An answer's error ends with its request id; the unlinked org's was made by the SDK.
    suffix = "" if "external_org_id '" in line else " [request_id: ID]"
    err = re.sub(r" \[request_id: req_[0-9a-f]{24}\]\n", " [request_id: ID]\n", done.err)
    assert (done.status, done.out, err) == (1, "", f"chatarmin-os: error: {line}{suffix}\n")


def test_a_missing_or_wrong_key(serve: ServeProcess) -> None:
    done = run_cli(["tiers", "list"], {"CHATARMIN_OS_BASE_URL": serve.base_url})
    assert (done.status, done.out) == (2, "")
    [line] = done.err.splitlines()
    assert line.startswith("chatarmin-os: error: No API key: set the OS_API_KEY environment ")

    done = cli(serve, "tiers", "list", OS_API_KEY="os_sk_wrong")
    assert (done.status, done.out) == (1, "")
    assert done.err == (
        f"chatarmin-os: error: the API at {serve.base_url}/tiers.list refused the API key "
        "(401 UNAUTHORIZED: Invalid API key); set OS_API_KEY to a valid key for this API\n"
    )


def test_a_wrong_base_url_or_no_server_exits_3(serve: ServeProcess) -> None:
    wrong = serve.base_url.removesuffix("/v1")
    done = cli(serve, "tiers", "list", "--base-url", wrong)
    assert (done.status, done.out) == (3, "")
    assert done.err == (
        f"chatarmin-os: error: no procedure 'tiers.list' at {wrong}/tiers.list (404 NOT_FOUND); "
        "the base URL is wrong: check --base-url / CHATARMIN_OS_BASE_URL (it usually ends in "
        "/api/v1)\n"
    )
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
    done = cli(serve, "features", "list", "--company", "c1", CHATARMIN_OS_BASE_URL=closed)
    assert (done.status, done.out) == (3, "")
    [line] = done.err.splitlines()
    assert line.startswith(f"chatarmin-os: error: cannot reach the API at {closed}/features")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["features", "check", "ai_credit"],
            "chatarmin-os features check: one of the arguments --org --company is required "
            "(see chatarmin-os features check --help)",
        ),
        (
            ["features", "list", "--org", "a", "--company", "b"],
            "chatarmin-os features list: argument --company: not allowed with argument --org "
            "(see chatarmin-os features list --help)",
        ),
        (
            ["usage", "track", "--org", "a", "ai_credit", "--quantity", "0"],
            "chatarmin-os usage track: argument --quantity: must be at least 1, got 0 "
            "(see chatarmin-os usage track --help)",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(serve: ServeProcess, args: list[str], line: str) -> None:
    done = cli(serve, *args)
    assert (done.status, done.out, done.err) == (2, "", line + "\n")
