"""Input types: the nested input models, and a ``TypedDict`` per TypeScript input type.

Nested inputs (``hints``, each of ``contacts``) accept a plain dict with snake_case (or
camelCase) keys or the model itself. The ``TypedDict`` types mirror the TypeScript SDK's
input types (``OnboardInput``, ``TrackUsageInput``, ...): the keyword arguments of the
matching method, so a payload can be built, type-checked, and passed as ``**payload``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

import pydantic
from pydantic import ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from ._batching import BatchOptions

if TYPE_CHECKING:
    from ._cache import CacheOptions
    from ._ledger.options import ReservationOptions
    from ._usage.options import UsageBufferOptions

from ._types import NOT_GIVEN, NotGiven, Timeout, Transformer
from ._validate import free_map, model_input
from ._wire import FeatureSource

__all__ = [
    "ApplyTierInput",
    "ChatarminOSConfig",
    "ClaimCheckoutInput",
    "ContactInput",
    "ContactInputDict",
    "CreateCompanyInput",
    "FeatureCheckInput",
    "FeatureSetAccessInput",
    "Hints",
    "HintsDict",
    "LinkSubscriptionInput",
    "OnboardInput",
    "SmartLinkInput",
    "TrackUsageInput",
    "hints_input",
]

_NonEmpty = Field(min_length=1, pattern=r"\S")


class _InputModel(pydantic.BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        strict=True,
        frozen=True,
        use_attribute_docstrings=True,
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON object sent to the API (fields not given are left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="python")


class Hints(_InputModel):
    """What ``smart_link`` / ``onboard`` match a company by."""

    company_name: str | None = Field(default=None, min_length=1, pattern=r"\S")
    """The company's name, compared loosely with companies' names (case, punctuation and
    suffixes like "Inc" or "GmbH" do not count); ``None``: not used."""
    domain: str | None = Field(default=None, min_length=1, pattern=r"\S")
    """The company's web domain (e.g. ``"acme.com"``), compared with companies' domains
    (case-insensitively); ``None``: not used."""
    emails: list[Annotated[str, Field(min_length=1, pattern=r"\S")]] | None = None
    """E-mail addresses of people at the company; their domains are compared with companies'
    domains. ``None``: not used."""


class ContactInput(_InputModel):
    """One contact for ``contacts.bulk_upsert``."""

    email: str = _NonEmpty
    """The contact's e-mail address (required): a contact of the company with the same
    address (case-insensitively) is updated, else one is created."""
    name: str | None = Field(default=None, min_length=1, pattern=r"\S")
    """The contact's name; ``None``: not sent (an existing contact keeps its name)."""
    role: str | None = Field(default=None, min_length=1, pattern=r"\S")
    """The contact's role (e.g. ``"CTO"``); ``None``: not sent (an existing contact keeps
    its role)."""
    is_primary: bool | None = None
    """``True`` makes the contact the company's one primary contact; ``None``: not sent
    (unchanged; a new contact is not primary)."""
    avatar_url: str | None = Field(default=None, min_length=1, pattern=r"\S")
    """The URL of the contact's picture; ``None``: not sent (unchanged)."""
    metadata: dict[str, Any] | None = None
    """Your own JSON data about the contact, sent as it is (keys are not renamed); ``None``:
    not sent (unchanged)."""

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_is_json(cls, value: Any) -> Any:
        """The same rules as every free-form map (see ``_validate.free_map``)."""
        checked = free_map("metadata", value)
        return None if isinstance(checked, NotGiven) else checked


class HintsDict(TypedDict, total=False):
    """``hints`` as a plain dict."""

    company_name: str | None
    domain: str | None
    emails: list[str] | None


class _ContactInputRequired(TypedDict):
    email: str


class ContactInputDict(_ContactInputRequired, total=False):
    """One of ``contacts`` as a plain dict."""

    name: str | None
    role: str | None
    is_primary: bool | None
    avatar_url: str | None
    metadata: dict[str, Any] | None


class ChatarminOSConfig(TypedDict, total=False):
    """The client's keyword arguments (TypeScript: ``ChatarminOSConfig``)."""

    api_key: str | None
    base_url: str | None
    timeout: Timeout
    max_retries: int
    transformer: Transformer
    default_headers: dict[str, str] | None
    batching: bool | BatchOptions
    cache: bool | CacheOptions | None
    usage_buffer: UsageBufferOptions | None
    reservations: ReservationOptions | None


class _CreateCompanyRequired(TypedDict):
    name: str


class CreateCompanyInput(_CreateCompanyRequired, total=False):
    """Keyword arguments of ``companies.create``."""

    domain: str | None
    external_org_id: str | None
    label: str | None
    contact_email: str | None
    contact_name: str | None
    created_at: datetime | str | None


class _SmartLinkRequired(TypedDict):
    external_org_id: str
    label: str


class SmartLinkInput(_SmartLinkRequired, total=False):
    """Keyword arguments of ``companies.smart_link``."""

    hints: Hints | HintsDict | None
    min_confidence: float | None


class FeatureCheckInput(TypedDict):
    """Keyword arguments of ``features.check``."""

    company_id: str
    feature_code: str


class _FeatureSetAccessRequired(TypedDict):
    feature_code: str


class FeatureSetAccessInput(_FeatureSetAccessRequired, total=False):
    """Keyword arguments of ``features.set_access`` (give ``company_id`` or ``external_org_id``)."""

    company_id: str | None
    external_org_id: str | None
    is_enabled: bool | None
    quantity_limit: int | None
    included_quantity: int | None
    config: dict[str, Any] | None
    source: FeatureSource | None
    valid_until: datetime | str | None


class _TrackUsageRequired(TypedDict):
    feature_code: str
    quantity: int


class TrackUsageInput(_TrackUsageRequired, total=False):
    """Keyword arguments of ``billing.track_usage`` (give ``company_id`` or ``external_org_id``)."""

    company_id: str | None
    external_org_id: str | None
    idempotency_key: str | None
    metadata: dict[str, Any] | None


class _OnboardRequired(TypedDict):
    external_org_id: str
    label: str


class OnboardInput(_OnboardRequired, total=False):
    """Keyword arguments of ``onboard``."""

    hints: Hints | HintsDict | None
    tier_code: str | None
    checkout_session_id: str | None
    stripe_subscription_id: str | None
    stripe_customer_id: str | None
    contact_email: str | None
    contact_name: str | None
    created_at: datetime | str | None


class _ApplyTierRequired(TypedDict):
    company_id: str


class ApplyTierInput(_ApplyTierRequired, total=False):
    """Keyword arguments of ``tiers.apply`` after the tier code."""

    features: dict[str, dict[str, Any]] | None


class ClaimCheckoutInput(TypedDict):
    """Keyword arguments of ``billing.claim_checkout``."""

    company_id: str
    checkout_session_id: str


class _LinkSubscriptionRequired(TypedDict):
    company_id: str
    stripe_subscription_id: str


class LinkSubscriptionInput(_LinkSubscriptionRequired, total=False):
    """Keyword arguments of ``billing.link_subscription``."""

    stripe_customer_id: str | None
    tier_code: str | None
    display_name: str | None


def hints_input(hints: Hints | HintsDict | NotGiven | None) -> dict[str, Any] | NotGiven:
    """``hints`` as sent on the wire (camelCase keys), or NOT_GIVEN."""
    if hints is None or isinstance(hints, NotGiven):
        return NOT_GIVEN
    return model_input("hints", Hints, hints).to_wire()
