"""The annotations match the docs: ``None`` means "not given", so ``str | None`` type-checks.

Runs the project's ``mypy --strict`` (its configuration in ``pyproject.toml``) on a snippet
that passes ``str | None`` values, as a web form gives them, to methods of both clients; and,
so the test can fail, on a snippet with real type errors that mypy must report.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatarmin_os import AsyncChatarminOS, ChatarminOS, OnboardInput


@dataclass
class SignupForm:
    email: str | None
    name: str | None
    domain: str | None
    plan: str | None
    confidence: float | None
    metadata: dict[str, Any] | None
    admin: bool | None


def signup(client: ChatarminOS, form: SignupForm) -> None:
    client.onboard(
        external_org_id="org_1",
        label="My Product",
        hints=None,
        tier_code=form.plan,
        contact_email=form.email,
        contact_name=form.name,
        created_at=None,
    )
    client.companies.create(name="Acme", domain=form.domain, contact_email=form.email)
    client.companies.update(company_id="c1", name=form.name, created_at=None)
    client.companies.smart_link(
        external_org_id="org_1", label="l", hints=None, min_confidence=form.confidence
    )
    client.contacts.create(
        company_id="c1", email="a@b.c", name=form.name, is_primary=form.admin, metadata=form.metadata
    )
    client.contacts.list("c1", form.admin)
    client.billing.track_usage(
        company_id="c1", feature_code="f", quantity=1, idempotency_key=form.name, metadata=None
    )
    client.billing.link_subscription(
        company_id="c1", stripe_subscription_id="sub_1", tier_code=form.plan, display_name=None
    )
    client.features.set_access(
        feature_code="f", company_id=form.domain, is_enabled=form.admin, config=form.metadata
    )
    client.tiers.apply("pro", company_id="c1", features=None)
    client.subscriptions.create("pro", company_id="c1", features=None)
    client.links.create(company_id="c1", external_org_id="o", label=form.name)
    client.links.reset(delete_contacts=form.admin, reset_mrr=None)
    payload: OnboardInput = {"external_org_id": "o", "label": "l", "contact_email": form.email}
    client.onboard(**payload)


async def signup_async(client: AsyncChatarminOS, form: SignupForm) -> None:
    await client.onboard(
        external_org_id="org_1", label="My Product", contact_email=form.email, tier_code=form.plan
    )
    await client.companies.create(name="Acme", domain=form.domain, contact_name=form.name)
    await client.contacts.create(company_id="c1", email="a@b.c", role=form.name, avatar_url=None)
    await client.billing.track_usage(
        company_id="c1", feature_code="f", quantity=1, metadata=form.metadata
    )
    await client.features.set_access(
        feature_code="f", external_org_id=form.domain, source=None, valid_until=None
    )
"""

BAD = """
from chatarmin_os import AsyncChatarminOS, ChatarminOS


def wrong(client: ChatarminOS, email: str | None) -> None:
    client.onboard(external_org_id=email, label="l")
    client.billing.track_usage(company_id="c1", feature_code="f", quantity="1")


async def wrong_async(client: AsyncChatarminOS) -> None:
    await client.companies.create(name="Acme", domain=5)
"""


def test_optional_arguments_take_none_under_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(textwrap.dedent(GOOD))
    (tmp_path / "bad.py").write_text(textwrap.dedent(BAD))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            "good.py",
            "bad.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = sorted(
        line.split(": error: ")[0] for line in result.stdout.splitlines() if ": error: " in line
    )
    # Nothing in good.py; exactly the three wrong arguments of bad.py.
    assert errors == ["bad.py:11", "bad.py:6", "bad.py:7"], result.stdout + result.stderr
    assert result.returncode == 1
