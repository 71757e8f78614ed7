"""The calls of a feature gate: check the org, hold or meter its usage, settle after the answer.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_gate.py``. What the answers
mean (refusals, statuses, the access the endpoint sees) is decided in
:mod:`chatarmin_os._gating`; every web integration calls :func:`admit` before the endpoint
and :meth:`Admission.settle` after it, so FastAPI, Django and aiohttp share one core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import ChatarminOSError, InvalidInputError, NotFoundError
from .._gating import Gate, Refusal
from .._logs import logger
from .._models import FeatureAccess

if TYPE_CHECKING:
    from ._reservation import AsyncReservation
    from .client import AsyncChatarminOS

__all__ = ["Admission", "admit", "check", "track"]


class Admission:
    """A request a gate let through: the access the endpoint sees, and its held usage.

    :meth:`settle` commits the hold after a successful answer and releases it otherwise;
    without a hold (a gate that only checks, or ``meter="before"``) it does nothing.
    """

    __slots__ = ("access", "reservation")

    def __init__(self, access: FeatureAccess, reservation: AsyncReservation | None = None) -> None:
        self.access = access
        """The org's access to the feature, as it was before this request."""
        self.reservation = reservation
        """The hold of ``meter="after"`` until it is settled, else ``None``."""

    def __repr__(self) -> str:
        held = "held" if self.reservation is not None else "nothing held"
        return f"<Admission {self.access.feature_code}: {held}>"

    async def settle(self, succeeded: bool) -> None:
        """Commit the hold (``succeeded``) or release it; once. Errors are logged, not raised
        (an uncommitted hold expires after the ledger's ``hold_timeout``)."""
        reservation, self.reservation = self.reservation, None
        if reservation is None:
            return
        try:
            if succeeded:
                await reservation.commit()
            else:
                await reservation.release()
        except ChatarminOSError as error:
            logger.warning(
                "Feature gate %s: usage of org %s not %s: %s: %s",
                self.access.feature_code,
                reservation.external_org_id,
                "committed" if succeeded else "released",
                type(error).__name__,
                error,
            )


async def check(client: AsyncChatarminOS, gate: Gate, org: str) -> FeatureAccess | Refusal:
    """Gate ``org``: its access, or the refusal."""
    where = str(client.base_url)
    try:
        access = await client.features.check_by_external_org_id(org, gate.feature)
    except InvalidInputError:
        raise
    except NotFoundError as error:
        try:
            company = await client.companies.get_by_product_link(external_org_id=org)
        except ChatarminOSError as lookup_error:
            return gate.failed(org, lookup_error, where)
        if company is None:
            return gate.unknown_org(org)
        raise error  # the org is known: the feature code is wrong
    except ChatarminOSError as error:
        return gate.failed(org, error, where)
    return gate.judge(org, access)


async def admit(client: AsyncChatarminOS, gate: Gate, org: str, key: str) -> Admission | Refusal:
    """Gate ``org`` and take its usage as the gate says: the admission, or the refusal.

    ``gate.meter`` ``None``: the check only. ``"after"``: the check, then
    ``billing.reserve`` holds ``quantity`` (no round trip on a ledger hit); settle the
    admission after the answer. ``"before"``: the check, then ``billing.track_usage``
    meters ``quantity`` with ``key`` (one round trip; the server refuses past the limit).
    """
    outcome = await check(client, gate, org)
    if isinstance(outcome, Refusal):
        return outcome
    if gate.meter is None:
        return Admission(outcome)
    try:
        if gate.meter == "before":
            result = await client.billing.track_usage(
                external_org_id=org,
                feature_code=gate.feature,
                quantity=gate.quantity,
                idempotency_key=key,
            )
            return Admission(gate.before(outcome, result.remaining))
        reservation = await client.billing.reserve(
            external_org_id=org,
            feature_code=gate.feature,
            quantity=gate.quantity,
            idempotency_key=key,
        )
    except ChatarminOSError as error:
        return gate.usage_refused(org, outcome, error, str(client.base_url))
    return Admission(gate.before(outcome, reservation.remaining), reservation)


def _track_failed(feature: str, org: str, error: ChatarminOSError) -> None:
    if isinstance(error, NotFoundError) and error.path == "companies.getByProductLink":
        logger.warning("Usage of %s not tracked: org %s is not linked", feature, org)
        return
    logger.warning(
        "Usage of %s for org %s not tracked: %s: %s", feature, org, type(error).__name__, error
    )


async def track(client: AsyncChatarminOS, feature: str, org: str, quantity: int, key: str) -> None:
    """Track ``quantity`` of ``feature`` for ``org``; errors are logged, not raised.

    With a usage buffer configured (``usage_buffer=``), ``billing.track_usage_later`` by org
    id (looked up when sent); else ``billing.track_usage(external_org_id=...)``: one round
    trip once the gate's check (or the cache) knows the org's company.
    """
    try:
        if client._usage_buffer_options is not None:
            await client.billing.track_usage_later(
                external_org_id=org, feature_code=feature, quantity=quantity, idempotency_key=key
            )
            return
        await client.billing.track_usage(
            external_org_id=org, feature_code=feature, quantity=quantity, idempotency_key=key
        )
    except ChatarminOSError as error:
        _track_failed(feature, org, error)
