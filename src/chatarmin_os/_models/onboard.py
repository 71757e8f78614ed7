"""Onboarding: the ``onboard`` result."""

from __future__ import annotations

from ._base import BaseModel, LinkStatus


class OnboardBillingStatus(BaseModel):
    """What ``onboard`` did about billing."""

    claimed: bool
    """``True`` when the checkout session (``checkout_session_id``) was claimed for this
    company."""
    linked: bool
    """``True`` when the Stripe subscription (``stripe_subscription_id``) was linked to the
    company."""
    tier_applied: bool
    """``True`` when this call set a tier's features on the company."""
    subscription_id: str | None
    """The ChatarminOS id of the subscription claimed or linked; ``None`` when there is
    none."""


class OnboardResult(BaseModel):
    """The outcome of ``onboard``; ``billing_status`` is ``None`` when no billing was asked."""

    company_id: str
    """The id of the company found or created: use it for the later calls."""
    company_name: str
    """The company's name."""
    link_status: LinkStatus
    """How the company was found: ``"created"`` (new, then linked), ``"linked"`` (an
    existing company matched and was linked) or ``"already_linked"`` (linked before)."""
    billing_status: OnboardBillingStatus | None
    """What was done about billing; ``None`` when none of ``checkout_session_id``,
    ``stripe_subscription_id`` and ``tier_code`` was given."""
