"""The Python examples of the README and the site run as written (against the local ChatarminOS).

Which blocks run and how: see ``scripts/check_readme.py`` (the ``<!-- docs: ... -->`` markers).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from chatarmin_os.testing import ChatarminOSServer
from scripts.check_readme import Example, all_examples, readme_blocks

EXAMPLES = all_examples()
RUNNABLE = [example for example in EXAMPLES if example.mode == "run"]
BLOCKS = [example.source for example in RUNNABLE]
SCRIPTS = [example for example in RUNNABLE if "def test_" not in example.source]


def test_the_readme_and_the_site_have_examples() -> None:
    assert len(readme_blocks()) >= 1
    assert len(BLOCKS) >= 25


@pytest.fixture
def no_global_tracer_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OpenTelemetry example sets the process-wide tracer provider: undo it after."""
    from opentelemetry import trace

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", trace._TRACER_PROVIDER)
    monkeypatch.setattr(
        trace._TRACER_PROVIDER_SET_ONCE, "_done", trace._TRACER_PROVIDER_SET_ONCE._done
    )


@pytest.mark.parametrize("example", SCRIPTS, ids=[example.name for example in SCRIPTS])
def test_example_runs(
    example: Example, capsys: pytest.CaptureFixture[str], no_global_tracer_left: None
) -> None:
    code = compile(example.source, example.name, "exec")
    exec(code, {"__name__": "__main__"})
    capsys.readouterr()


def test_the_test_command_is_marked_for_ci() -> None:
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    marker = readme.index("<!-- test-command -->")
    assert readme[marker:].splitlines()[2] == "uv run pytest -n 2"


TEST_BLOCKS = [block for block in BLOCKS if "def test_" in block]


def _block(*needles: str) -> str:
    """The one runnable block that is not a test and contains every needle."""
    [source] = [
        block
        for block in BLOCKS
        if "def test_" not in block and all(needle in block for needle in needles)
    ]
    return source


# A Django project for the README's Django test: its settings and views blocks, as written.
DJANGO_CONFTEST = """
import django
from django.conf import settings

from readme_settings import CHATARMIN_OS

settings.configure(
    SECRET_KEY="readme",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF="readme_views",
    USE_TZ=True,
    CHATARMIN_OS=CHATARMIN_OS,
)
django.setup()
"""


def test_the_docs_have_test_examples() -> None:
    assert len(TEST_BLOCKS) >= 6


def test_the_testing_examples_pass_under_pytest(pytester: pytest.Pytester) -> None:
    """Every block with tests, each as a test file of one user's project (one run)."""
    pytester.makepyfile(
        conftest=DJANGO_CONFTEST,
        readme_settings=_block("CHATARMIN_OS = {"),
        readme_views=_block("chatarmin_os.django", "sso/settings/"),
    )
    files = {f"test_readme_{i:02d}": source for i, source in enumerate(TEST_BLOCKS, 1)}
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=sum(source.count("def test_") for source in TEST_BLOCKS))


def test_the_fastapi_example_gates(chatarmin_os_server: ChatarminOSServer) -> None:
    from fastapi.testclient import TestClient

    company_id = chatarmin_os_server.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 2}
    )
    namespace: dict[str, Any] = {"__name__": "readme_fastapi"}
    exec(compile(_block("ChatarminOSLifespan()", "/plan/{org_id}"), "<docs>", "exec"), namespace)
    org = {"X-Org-Id": "org_1"}
    with TestClient(namespace["app"]) as http:
        assert http.post("/summaries", headers=org).json() == {"credits_before": 2}
        assert http.post("/summaries", headers=org).json() == {"credits_before": 1}
        assert http.post("/summaries", headers=org).status_code == 402
        sso = http.get("/sso/settings", headers=org)
        assert (sso.status_code, sso.json()["detail"]["error"]) == (403, "feature_not_enabled")
        assert http.get("/sso/settings").status_code == 400
        plan = http.get("/plan/org_1").json()
        assert (plan["ai_credit"], plan["sso"]) == (True, False)
    chatarmin_os_server.assert_usage(company_id, "ai_credit", 2)


def test_the_django_example_gates(chatarmin_os_server: ChatarminOSServer) -> None:
    from tests.support import django_settings

    django_settings.configure()
    from django.test import Client, override_settings

    company_id = chatarmin_os_server.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 2}
    )
    settings_block: dict[str, Any] = {}
    exec(compile(_block("CHATARMIN_OS = {"), "<docs>", "exec"), settings_block)
    urls = ModuleType("readme_views")  # a urlconf module made of the README's views block
    exec(compile(_block("chatarmin_os.django", "sso/settings/"), "<docs>", "exec"), vars(urls))
    with override_settings(ROOT_URLCONF=urls, CHATARMIN_OS=settings_block["CHATARMIN_OS"]):
        http = Client()
        org = {"X-Org-Id": "org_1"}
        first = http.post("/summaries/", headers=org)
        assert (first.status_code, first.json()["credits_before"]) == (200, 2)
        assert http.post("/summaries/", headers=org).status_code == 200
        limit = http.post("/summaries/", headers=org)
        assert (limit.status_code, limit.json()["error"]) == (402, "feature_limit_reached")
        sso = http.get("/sso/settings/", headers=org)
        assert (sso.status_code, sso.json()["error"]) == (403, "feature_not_enabled")
        plan = http.get("/plan/org_1/").json()
        assert (plan["ai_credit"], plan["sso"]) == (True, False)
    chatarmin_os_server.assert_usage(company_id, "ai_credit", 2)


def test_the_django_url_kwarg_example_gates(chatarmin_os_server: ChatarminOSServer) -> None:
    from tests.support import django_settings

    django_settings.configure()
    from django.test import Client, override_settings

    company_id = chatarmin_os_server.add_company(
        "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 1}
    )
    urls = ModuleType("docs_url_kwarg")  # a urlconf module made of the page's block
    exec(compile(_block("url_org_id", "urlpatterns"), "<docs>", "exec"), vars(urls))
    with override_settings(ROOT_URLCONF=urls):
        http = Client()
        first = http.post("/orgs/org_1/summaries/")
        assert (first.status_code, first.json()) == (200, {"org": "org_1", "credits_before": 1})
        limit = http.post("/orgs/org_1/summaries/")
        assert (limit.status_code, limit.json()["error"]) == (402, "feature_limit_reached")
        unknown = http.post("/orgs/org_2/summaries/")
        assert (unknown.status_code, unknown.json()["error"]) == (403, "unknown_org")
    from chatarmin_os.django import get_client

    assert get_client().flush() == 0  # the hold was committed through the usage buffer
    chatarmin_os_server.assert_usage(company_id, "ai_credit", 1)
