"""Onboarding: the ``onboard`` result."""

from __future__ import annotations

from ._base import BaseModel, LinkStatus


class OnboardBillingStatus(BaseModel):
    """What ``onboard`` did about billing."""

    claimed: bool
    linked: bool
    tier_applied: bool
    subscription_id: str | None


class OnboardResult(BaseModel):
    """The outcome of ``onboard``; ``billing_status`` is ``None`` when no billing was asked."""

    company_id: str
    company_name: str
    link_status: LinkStatus
    billing_status: OnboardBillingStatus | None
