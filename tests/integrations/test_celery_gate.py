"""``ChatarminOSCelery.require_feature``: a task holds the quota before its work and meters it
after, with a key that survives retries; refusals say why, the transient one retries."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.needs import require

require("celery", "celery")

from celery import Celery, Task  # noqa: E402

from chatarmin_os import ChatarminOS, ChatarminOSError, PreconditionFailedError  # noqa: E402
from chatarmin_os.celery import (  # noqa: E402
    ChatarminOSCelery,
    FeatureRefused,
    FeatureUnavailable,
    NotInTaskError,
    task_usage_key,
)
from chatarmin_os.local import LocalEngine  # noqa: E402
from tests.integrations.test_celery import Rig as CeleryRig  # noqa: E402
from tests.integrations.test_celery import services  # noqa: E402, F401 (a fixture)
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.served import KEY, Served  # noqa: E402

ORG = "org_gate"


class Retry(Exception):
    pass


class Rig:
    def __init__(self) -> None:
        self.engine = LocalEngine()
        self.app = Celery("gate", broker="memory://")
        self.ext = ChatarminOSCelery(
            self.app, client_factory=lambda: ChatarminOS.local(self.engine)
        )

    def company(self, limit: int | None, *, enabled: bool = True) -> str:
        with ChatarminOS.local(self.engine) as admin:
            result = admin.onboard(external_org_id=ORG, label="Gate", tier_code="free")
            admin.features.set_access(
                company_id=result.company_id,
                feature_code="ai_credit",
                is_enabled=enabled,
                quantity_limit=limit,
            )
        return result.company_id

    def counted(self, company_id: str) -> list[tuple[str, int]]:
        assert self.ext.close() == 0  # a worker's end: flush, then close
        return [(e["idempotencyKey"], e["quantity"]) for e in self.engine.usage_events(company_id)]


@pytest.fixture
def rig() -> Iterator[Rig]:
    rig = Rig()
    try:
        yield rig
    finally:
        rig.ext.close()
        rig.engine.close()


def test_a_clean_exit_meters_once_however_often_the_task_is_retried(rig: Rig) -> None:
    company = rig.company(10)
    runs: list[tuple[str, str, int | None]] = []

    @rig.app.task(bind=True, autoretry_for=(Retry,), retry_kwargs={"countdown": 0})
    def job(self: Task[Any, Any]) -> None:
        with rig.ext.require_feature("ai_credit", company_id=company, quantity=2) as r:
            runs.append((self.request.id or "", r.idempotency_key, r.remaining))
            if self.request.retries == 0:
                raise Retry  # inside: the hold is released
        if self.request.retries == 1:
            raise Retry  # after the commit: the next run meters the same key again

    job.apply().get()
    task_id = runs[0][0]
    key = task_usage_key(task_id, "gate:ai_credit")
    assert runs == [(task_id, key, 8), (task_id, key, 8), (task_id, key, 6)]
    assert rig.counted(company) == [(key, 2)]  # the server counted the key once


def test_operation_metadata_an_org_and_a_smaller_commit(rig: Rig) -> None:
    company = rig.company(10)

    @rig.app.task(bind=True)
    def job(self: Task[Any, Any]) -> str:
        with rig.ext.require_feature(
            "ai_credit", external_org_id=ORG, quantity=5, operation="summary", metadata={"n": 1}
        ) as r:
            r.commit(3)  # used less than held
        return r.idempotency_key

    result = job.apply()
    key = result.get()
    assert key == task_usage_key(result.id, "summary")
    assert rig.counted(company) == [(key, 3)]
    assert rig.engine.usage_events(company)[0]["metadata"] == {"n": 1}


def test_refusals_say_why_and_hold_nothing(rig: Rig) -> None:
    company = rig.company(1)
    seen: list[FeatureRefused] = []

    @rig.app.task
    def job(feature: str, company_id: str) -> None:
        try:
            with rig.ext.require_feature(feature, company_id=company_id):
                pass
        except FeatureRefused as refused:
            seen.append(refused)

    for feature, company_id in (
        ("ai_credit", company),  # metered: the limit of 1 is used up
        ("ai_credit", company),
        ("sso", company),
        ("ai_credit", "comp_nobody"),
    ):
        job.apply(args=(feature, company_id)).get()
    with ChatarminOS.local(rig.engine) as admin:
        admin.features.set_access(company_id=company, feature_code="sso", is_enabled=False)
    job.apply(args=("sso", company)).get()
    reasons = [(r.reason, r.feature) for r in seen]
    assert reasons[0] == ("feature_limit_reached", "ai_credit")
    assert ("feature_not_enabled", "sso") in reasons or ("not_found", "sso") in reasons
    assert ("not_found", "ai_credit") in reasons
    assert seen[-1].reason == "feature_not_enabled"
    assert all(not isinstance(r, FeatureUnavailable) for r in seen)
    limit = seen[0]
    assert isinstance(limit, ChatarminOSError) and not isinstance(limit, PreconditionFailedError)
    assert isinstance(limit.__cause__, PreconditionFailedError)  # what the ledger said
    copy = pickle.loads(pickle.dumps(limit))  # a result backend stores it
    assert (type(copy), copy.reason, copy.feature) == (FeatureRefused, limit.reason, "ai_credit")
    assert [quantity for _, quantity in rig.counted(company)] == [1]  # the first run only


def test_unavailable_is_retried_by_autoretry_for() -> None:
    app = Celery("gate-down", broker="memory://")
    ext = ChatarminOSCelery(
        app, api_key="os_sk_gate", base_url="http://127.0.0.1:9/api/v1", max_retries=0
    )
    runs: list[int] = []

    @app.task(
        bind=True,
        autoretry_for=(FeatureUnavailable,),
        retry_kwargs={"countdown": 0, "max_retries": 2},
    )
    def job(self: Task[Any, Any]) -> None:
        runs.append(self.request.retries)
        with ext.require_feature("ai_credit", company_id="comp_1"):
            pass

    with pytest.raises(FeatureUnavailable) as caught:
        job.apply().get()
    assert runs == [0, 1, 2]
    assert caught.value.reason == "unavailable"
    ext.close()


def test_outside_a_task_and_a_bad_key_raise_as_they_are(rig: Rig) -> None:
    with pytest.raises(NotInTaskError):
        with rig.ext.require_feature("ai_credit", company_id="comp_1"):
            pass

    @rig.app.task
    def job() -> None:
        with rig.ext.require_feature("ai_credit", company_id="c", external_org_id="o"):
            pass

    with pytest.raises(ChatarminOSError) as caught:
        job.apply().get()
    assert not isinstance(caught.value, FeatureRefused)  # bad input is not a refusal


# -- a real prefork worker, its children sharing the ledger in Redis ------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the prefork pool needs fork")
def test_prefork_children_gated_on_one_redis_ledger_meter_exactly_the_limit(
    services: tuple[RedisServer, Served],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    require("redis", "redis")
    broker, served = services
    rig = CeleryRig(broker, served, tmp_path)
    rig.redis.flushdb()
    try:
        with ChatarminOS(api_key=KEY, base_url=served.base_url) as admin:
            company = admin.companies.create(name="Gated")
            admin.features.set_access(
                company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=20
            )
        reports = rig.send("gated", company.id, 40, fail_every=3)
        worker = rig.worker("prefork", "gated", "--concurrency=2", CELERY_TEST_LEDGER=broker.url)
        reports.wait(40, worker)  # each task reports once (a retried one after its retry)
        worker.warm_shutdown()
        outcomes = [line.split()[3] for line in reports.lines]
        assert outcomes.count("ok") == 20, outcomes
        assert outcomes.count("feature_limit_reached") == 20, outcomes
        counted = served.counted(company.id)
        assert len(counted) == 20 and set(counted.values()) == {1}
    finally:
        rig.close()
