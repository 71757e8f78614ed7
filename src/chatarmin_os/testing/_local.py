"""The local ChatarminOS of the pytest plugin: a one-line builder, bound clients, usage assertions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from .._async.client import AsyncChatarminOS
from .._base import DEFAULT_MAX_RETRIES
from .._concurrency import AsyncSleeper, Sleeper
from .._sync.client import ChatarminOS
from .._types import NOT_GIVEN, NotGiven, Timeout, Transformer
from ..local.engine import DEFAULT_API_KEY, LocalEngine
from ..local.transport import AsyncLocalTransport, LocalTransport
from ._faults import AsyncFaultTransport, Faults, FaultTransport

__all__ = ["IN_PROCESS_BASE_URL", "LocalChatarminOS"]

IN_PROCESS_BASE_URL = "http://chatarmin-os.local/api/v1"

EVENTS_SHOWN = 20
"""How many events a failed :meth:`LocalChatarminOS.assert_usage` lists (the last ones)."""


class LocalChatarminOS:
    """A local ChatarminOS for tests: a one-line builder, bound clients, usage assertions.

    Args:
        engine: the engine to wrap (default: a fresh in-memory one with the default catalog).
        api_key: the key clients use (the engine's default key unless your engine differs).
    """

    def __init__(
        self, engine: LocalEngine | None = None, *, api_key: str = DEFAULT_API_KEY
    ) -> None:
        self.engine = engine if engine is not None else LocalEngine()
        """The :class:`~chatarmin_os.local.LocalEngine` behind every client."""
        self.api_key = api_key
        self._clients: list[ChatarminOS] = []
        self.faults = Faults()
        """Fault injection: make the next calls to a procedure fail (:class:`Faults`)."""
        self.retry_waits: list[float] = []
        """The waits between retries of the clients made here (they do not really wait)."""

    def __repr__(self) -> str:
        return f"<LocalChatarminOS {self.engine!r}>"

    # -- clients -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where its clients send requests (in-process: a name no network resolves)."""
        return IN_PROCESS_BASE_URL

    def _http_client(self) -> httpx.Client:
        return httpx.Client(transport=FaultTransport(LocalTransport(self.engine), self.faults))

    def _async_http_client(self) -> httpx.AsyncClient:
        transport = AsyncFaultTransport(AsyncLocalTransport(self.engine), self.faults)
        return httpx.AsyncClient(transport=transport)

    def _record_wait(self, seconds: float) -> None:
        self.retry_waits.append(seconds)

    async def _record_async_wait(self, seconds: float) -> None:
        self.retry_waits.append(seconds)

    def client(
        self,
        *,
        transformer: Transformer = "json",
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        sleep: Sleeper | None = None,
    ) -> ChatarminOS:
        """A blocking client bound to this ChatarminOS (closed by :meth:`close`).

        It sees :attr:`faults`. Between retries it does not wait but records the wait in
        :attr:`retry_waits`, unless you pass your own ``sleep``.
        """
        client = ChatarminOS(
            api_key=self.api_key,
            base_url=self.base_url,
            transformer=transformer,
            max_retries=max_retries,
            timeout=timeout,
            sleep=sleep or self._record_wait,
        )
        client._own_pool(self._http_client)  # closing the SDK client closes the pool
        self._clients.append(client)
        return client

    def async_client(
        self,
        *,
        transformer: Transformer = "json",
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        sleep: AsyncSleeper | None = None,
    ) -> AsyncChatarminOS:
        """An async client bound to this ChatarminOS; see :meth:`client`.

        In-process it holds nothing to close; over HTTP (:class:`ChatarminOSServer`), close
        it with ``aclose()`` or ``async with``.
        """
        client = AsyncChatarminOS(
            api_key=self.api_key,
            base_url=self.base_url,
            transformer=transformer,
            max_retries=max_retries,
            timeout=timeout,
            sleep=sleep or self._record_async_wait,
        )
        client._own_pool(self._async_http_client)
        return client

    def close(self) -> None:
        """Close the blocking clients made here and the engine."""
        for client in self._clients:
            client.close()
        self.engine.close()

    # -- builder -------------------------------------------------------------------------

    def _call(self, path: str, payload: Any) -> Any:
        return self.engine.call(path, payload, api_key=self.api_key)

    def add_feature(self, code: str, *, name: str | None = None, metered: bool = False) -> None:
        """Add a feature to the catalog (``metered`` features count usage)."""
        self.engine.seed({"features": [{"code": code, "name": name or code, "metered": metered}]})

    def add_tier(
        self,
        code: str,
        features: Mapping[str, Mapping[str, Any]] | Iterable[str],
        *,
        name: str | None = None,
    ) -> None:
        """Add a tier: ``{"ai_credit": {"limit": 50, "included": 10, "config": {...}}}`` or codes.

        Per feature: ``limit`` (``None`` = unlimited), ``included``, ``config``.
        """
        items: Iterable[tuple[str, Mapping[str, Any]]] = (
            features.items() if isinstance(features, Mapping) else ((f, {}) for f in features)
        )
        entries: list[dict[str, Any]] = []
        for feature_code, options in items:
            entry: dict[str, Any] = {"featureCode": feature_code}
            if "limit" in options:
                entry["quantityLimit"] = options["limit"]
            if "included" in options:
                entry["includedQuantity"] = options["included"]
            if "config" in options:
                entry["configValues"] = dict(options["config"])
            entries.append(entry)
        self.engine.seed({"tiers": [{"code": code, "name": name or code, "features": entries}]})

    def add_company(
        self,
        name: str = "Acme Inc",
        *,
        external_org_id: str | None = None,
        domain: str | None = None,
        tier: str | None = None,
        limits: Mapping[str, int | None] | None = None,
        features: Iterable[str] = (),
        label: str = "Test",
    ) -> str:
        """Create a company in one line and return its id.

        ``external_org_id`` links it to your product; ``tier`` applies a tier; ``limits``
        enables metered features with those limits (``None`` = unlimited); ``features``
        enables features as they are.
        """
        payload: dict[str, Any] = {"name": name}
        if domain is not None:
            payload["domain"] = domain
        if external_org_id is not None:
            payload.update(externalOrgId=external_org_id, label=label)
        company_id: str = self._call("companies.create", payload)["id"]
        if tier is not None:
            self._call("tiers.applyTier", {"tierCode": tier, "companyId": company_id})
        for feature_code in features:
            self._call(
                "features.setAccess",
                {"companyId": company_id, "featureCode": feature_code, "isEnabled": True},
            )
        for feature_code, limit in (limits or {}).items():
            self._call(
                "features.setAccess",
                {
                    "companyId": company_id,
                    "featureCode": feature_code,
                    "isEnabled": True,
                    "quantityLimit": limit,
                },
            )
        return company_id

    # -- what happened -------------------------------------------------------------------

    def usage_events(
        self, company_id: str | None = None, feature_code: str | None = None
    ) -> list[dict[str, Any]]:
        """Every usage event ``billing.track_usage`` counted, oldest first."""
        return self.engine.usage_events(company_id, feature_code)

    def usage(self, company_id: str, feature_code: str) -> int:
        """The total quantity counted for a company's feature."""
        return sum(event["quantity"] for event in self.usage_events(company_id, feature_code))

    def assert_usage(self, company_id: str, feature_code: str, expected: int) -> None:
        """Fail unless ``expected`` was counted in total; the message lists the events (the
        last :data:`EVENTS_SHOWN` of them, and how many came before)."""
        events = self.usage_events(company_id, feature_code)
        total = sum(event["quantity"] for event in events)
        if total != expected:
            shown = events[-EVENTS_SHOWN:]
            listing = (
                ", ".join(f"{e['quantity']} (key {e['idempotencyKey']})" for e in shown) or "none"
            )
            if len(events) > len(shown):
                listing = f"{len(events)} in all, the last {len(shown)}: {listing}"
            raise AssertionError(
                f"expected {expected} {feature_code} tracked for {company_id}, got {total}; "
                f"events: {listing}"
            )
