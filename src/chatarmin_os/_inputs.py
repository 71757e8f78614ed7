"""Input types: the nested input models, and a ``TypedDict`` per TypeScript input type.

Nested inputs (``hints``, each of ``contacts``) accept a plain dict with snake_case (or
camelCase) keys or the model itself. The ``TypedDict`` types mirror the TypeScript SDK's
input types (``OnboardInput``, ``TrackUsageInput``, ...): the keyword arguments of the
matching method, so a payload can be built, type-checked, and passed as ``**payload``.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
from pydantic import ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from typing_extensions import Required, TypedDict

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
    """The company's name, compared loosely with companies' names (case, punctuation and
    suffixes like "Inc" do not count); ``None`` or left out: not used."""
    domain: str | None
    """The company's web domain (e.g. ``"acme.com"``), compared with companies' domains;
    ``None`` or left out: not used."""
    emails: list[str] | None
    """E-mail addresses of people at the company, matched by their domains; ``None`` or left
    out: not used."""


class ContactInputDict(TypedDict, total=False):
    """One of ``contacts`` as a plain dict."""

    email: Required[str]
    """The contact's e-mail address: the company's contact with the same address
    (case-insensitively) is updated, else one is created."""
    name: str | None
    """The contact's name; ``None`` or left out: an existing contact keeps its name."""
    role: str | None
    """The contact's role (e.g. ``"CTO"``); ``None`` or left out: an existing contact keeps
    its role."""
    is_primary: bool | None
    """``True`` makes the contact the company's one primary contact; ``None`` or left out:
    unchanged (a new contact is not primary)."""
    avatar_url: str | None
    """The URL of the contact's picture; ``None`` or left out: unchanged."""
    metadata: dict[str, Any] | None
    """Your own JSON data about the contact, sent as it is (keys are not renamed); ``None`` or
    left out: unchanged."""


class ChatarminOSConfig(TypedDict, total=False):
    """The client's keyword arguments (TypeScript: ``ChatarminOSConfig``)."""

    api_key: str | None
    """Your ``os_sk_...`` API key; ``None`` or left out: the ``OS_API_KEY`` environment
    variable."""
    base_url: str | None
    """The API's URL (a path prefix such as ``/api/v1`` is kept); ``None`` or left out:
    ``CHATARMIN_OS_BASE_URL``, else ``https://os.chatarmin.com/api/v1``."""
    timeout: Timeout
    """Seconds, an ``httpx.Timeout`` or ``httpx2.Timeout``, or ``None`` for no timeout; left
    out: 30 seconds (5 to connect)."""
    max_retries: int
    """How many times a failed call is retried, from 0 to 1000; left out: 2."""
    transformer: Transformer
    """How the server encodes its data: ``"json"`` (when left out) or ``"superjson"``, as the
    server is set up."""
    default_headers: dict[str, str] | None
    """Extra HTTP headers sent with every request; ``None`` or left out: none."""
    batching: bool | BatchOptions
    """``True`` or a ``BatchOptions`` to send calls made at the same time as tRPC batch
    requests; ``False`` or left out: each call is a request of its own."""
    cache: "bool | CacheOptions | None"
    """The entitlement cache for gating: ``True`` (its defaults) or a ``CacheOptions``;
    ``None``, ``False`` or left out: every call asks the server."""
    usage_buffer: "UsageBufferOptions | None"
    """A ``UsageBufferOptions`` for ``billing.track_usage_later`` (batch size, interval,
    spool file, ...); ``None`` or left out: the defaults, on first use."""
    reservations: "ReservationOptions | None"
    """A ``ReservationOptions``: how long ``billing.reserve`` holds quota and how often it
    refreshes a feature's figures; ``None`` or left out: the defaults."""


class CreateCompanyInput(TypedDict, total=False):
    """Keyword arguments of ``companies.create``."""

    name: Required[str]
    """The company's name (a readable ``short_id`` is made from it)."""
    domain: str | None
    """The company's web domain (e.g. ``"acme.com"``); ``None`` or left out: none."""
    external_org_id: str | None
    """Your product's id of the customer (its organisation, workspace or tenant id): the new
    company is linked to it; ``None`` or left out: not linked."""
    label: str | None
    """A display label for the link made with ``external_org_id`` (e.g. ``"My Product"``);
    ``None`` or left out: none."""
    contact_email: str | None
    """The e-mail address of the company's primary contact, created with it; ``None`` or left
    out: no contact."""
    contact_name: str | None
    """The primary contact's name (used with ``contact_email``); ``None`` or left out: none."""
    created_at: datetime | str | None
    """A historical creation date: an aware ``datetime`` or an ISO-8601 string with an offset
    (e.g. ``"2024-01-15T10:30:00Z"``); ``None`` or left out: now."""


class SmartLinkInput(TypedDict, total=False):
    """Keyword arguments of ``companies.smart_link``."""

    external_org_id: Required[str]
    """Your product's id of the customer (its organisation, workspace or tenant id) to link."""
    label: Required[str]
    """A display label for the link (e.g. ``"My Product"``)."""
    hints: Hints | HintsDict | None
    """What to match a company by: its name, domain and people's e-mail addresses; ``None``
    or left out: none (only an existing link is found)."""
    min_confidence: float | None
    """How sure a single match must be to be linked, from 0 to 1 (below it the answer is
    ``"suggestions"``); ``None`` or left out: the server's default, 0.8."""


class FeatureCheckInput(TypedDict):
    """Keyword arguments of ``features.check`` (both are required)."""

    company_id: str
    """The company's id (``Company.id``)."""
    feature_code: str
    """The feature's code (e.g. ``"ai_credit"``)."""


class FeatureSetAccessInput(TypedDict, total=False):
    """Keyword arguments of ``features.set_access`` (give ``company_id`` or ``external_org_id``)."""

    feature_code: Required[str]
    """The feature's code (e.g. ``"ai_credit"``)."""
    company_id: str | None
    """The company's id; give it or ``external_org_id``, not both."""
    external_org_id: str | None
    """Your product's id of the customer, instead of ``company_id``: the linked company's
    access changes."""
    is_enabled: bool | None
    """``True`` turns the feature on for the company, ``False`` off; ``None`` or left out:
    unchanged."""
    quantity_limit: int | None
    """The most usage allowed, in the feature's units; ``None``: unlimited; left out:
    unchanged."""
    included_quantity: int | None
    """The usage included before billing starts; ``None``: none is included; left out:
    unchanged."""
    config: dict[str, Any] | None
    """Settings of the feature for the company (e.g. ``{"maxSeats": 50}``), merged key by key
    into its config, keys sent as they are; ``None`` or left out: unchanged."""
    source: FeatureSource | None
    """Where the access comes from: ``"subscription"``, ``"manual"``, ``"trial"`` or
    ``"api"``; ``None`` or left out: the server records ``"manual"``."""
    valid_until: datetime | str | None
    """When the access ends: an aware ``datetime`` or an ISO-8601 string with an offset;
    ``None``: it does not expire; left out: unchanged."""


class TrackUsageInput(TypedDict, total=False):
    """Keyword arguments of ``billing.track_usage`` (give ``company_id`` or ``external_org_id``)."""

    feature_code: Required[str]
    """The metered feature's code (e.g. ``"ai_credit"``)."""
    quantity: Required[int]
    """How much usage to count, in the feature's units: an integer of at least 1."""
    company_id: str | None
    """The company's id; give it or ``external_org_id``, not both."""
    external_org_id: str | None
    """Your product's id of the customer, instead of ``company_id``: resolved to its linked
    company first (an org no company is linked to raises ``NotFoundError``)."""
    idempotency_key: str | None
    """Your key for this usage: sent again, it is not counted twice; ``None`` or left out: a
    fresh UUIDv7 (the same on every retry of the call)."""
    metadata: dict[str, Any] | None
    """Your own JSON data about the usage, sent as it is (keys are not renamed); ``None`` or
    left out: none."""


class OnboardInput(TypedDict, total=False):
    """Keyword arguments of ``onboard``."""

    external_org_id: Required[str]
    """Your product's id of the customer (its organisation, workspace or tenant id), linked
    to the company found or created."""
    label: Required[str]
    """A display label for the link (e.g. ``"My Product"``)."""
    hints: Hints | HintsDict | None
    """What to find the company by, and the name and domain of a company created; ``None`` or
    left out: a new company is named after ``external_org_id``."""
    tier_code: str | None
    """The code of a tier (e.g. ``"free"``) whose features are applied to the company;
    ``None`` or left out: none."""
    checkout_session_id: str | None
    """The id of a completed Stripe Checkout Session (``"cs_..."``) to claim for the company;
    ``None`` or left out: none."""
    stripe_subscription_id: str | None
    """The id of a Stripe subscription (``"sub_..."``) to link to the company; ``None`` or
    left out: none."""
    stripe_customer_id: str | None
    """The id of the company's Stripe customer (``"cus_..."``); ``None`` or left out: not
    sent."""
    contact_email: str | None
    """The e-mail address of a contact to add (the primary one when the company has none);
    ``None`` or left out: no contact."""
    contact_name: str | None
    """That contact's name (ignored without ``contact_email``); ``None`` or left out: none."""
    created_at: datetime | str | None
    """A historical creation date for a company this call creates: an aware ``datetime`` or
    an ISO-8601 string with an offset; ``None`` or left out: now."""


class ApplyTierInput(TypedDict, total=False):
    """Keyword arguments of ``tiers.apply`` after the tier code."""

    company_id: Required[str]
    """The id of the company the tier's features are set on."""
    features: dict[str, dict[str, Any]] | None
    """Overrides per feature code: ``included_quantity``, ``max_quantity`` (the limit) and
    config keys, e.g. ``{"ai_credit": {"included_quantity": 100}}``; ``None`` or left out:
    the tier's own values."""


class ClaimCheckoutInput(TypedDict):
    """Keyword arguments of ``billing.claim_checkout`` (both are required)."""

    company_id: str
    """The id of the company the subscription is claimed for."""
    checkout_session_id: str
    """The id of the completed Stripe Checkout Session (``"cs_..."``)."""


class LinkSubscriptionInput(TypedDict, total=False):
    """Keyword arguments of ``billing.link_subscription``."""

    company_id: Required[str]
    """The id of the company the subscription is linked to."""
    stripe_subscription_id: Required[str]
    """The id of the Stripe subscription you created (``"sub_..."``)."""
    stripe_customer_id: str | None
    """The id of the subscription's Stripe customer (``"cus_..."``); ``None`` or left out:
    not sent."""
    tier_code: str | None
    """The code of the tier the subscription is for: its features are applied to the
    company; ``None`` or left out: none named."""
    display_name: str | None
    """The name shown for the subscription (e.g. ``"Pro Plan"``); ``None`` or left out: the
    tier's name."""


def hints_input(hints: Hints | HintsDict | NotGiven | None) -> dict[str, Any] | NotGiven:
    """``hints`` as sent on the wire (camelCase keys), or NOT_GIVEN."""
    if hints is None or isinstance(hints, NotGiven):
        return NOT_GIVEN
    return model_input("hints", Hints, hints).to_wire()
