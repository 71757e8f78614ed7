"""Feature access: ``features.*`` results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, PrivateAttr

from ._base import BaseModel, FeatureSource, Provenance


class FeatureAccessBase(BaseModel):
    """What :class:`FeatureAccess` and :class:`FeatureAccessDetail` share: the access figures,
    and where the answer came from.

    ``quantity_limit`` and ``remaining`` are ``None`` when usage is unlimited.

    Frozen: assigning an attribute raises ``pydantic.ValidationError``. The entitlement cache
    hands the same object to every caller it answers (see ``CacheOptions``), so nobody can
    change an answer someone else reads; build a changed copy with
    ``access.model_copy(update={...})``. Equality compares the figures, not the provenance.
    """

    model_config = ConfigDict(frozen=True)

    feature_code: str
    """The feature's code (e.g. ``"ai_credit"``)."""
    is_enabled: bool
    """``True`` when the feature is turned on for the company; ``False`` when it was never
    granted, was turned off, or its ``valid_until`` has passed."""
    can_use: bool
    """``True`` when the company may use the feature now: enabled, and unlimited or
    ``current_usage`` below ``quantity_limit``."""
    has_quantity: bool
    """``True`` for a metered feature (usage counted with ``billing.track_usage``);
    ``False`` for an on/off feature."""
    current_usage: int
    """The usage counted so far, in the feature's units (0 when none)."""
    quantity_limit: int | None
    """The most usage allowed; ``None`` means unlimited."""
    included_quantity: int | None
    """The usage included before billing starts (usage beyond it is billable); ``None``
    means none is included."""
    remaining: int | None
    """``quantity_limit - current_usage``: how much more may be used; ``None`` means
    unlimited."""

    # Not a field: never read from nor sent on the wire (a server may add its own "source").
    _provenance: Provenance = PrivateAttr(default="live")

    @property
    def provenance(self) -> Provenance:
        """Where this answer came from: ``"live"`` (the server, just now), ``"cache"`` (the
        entitlement cache, fresh), ``"stale"`` (the cache, past its TTL, while ChatarminOS
        could not be reached) or ``"fallback"`` (your fallback policy, while it could not be
        reached). Always ``"live"`` without a cache. Not part of the model's data: not in
        ``model_dump()``, not compared by ``==``."""
        return self._provenance

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureAccessBase):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == other.__pydantic_extra__
        )


class FeatureAccess(FeatureAccessBase):
    """Whether a company may use a feature now, and how much it has left.

    ``quantity_limit`` and ``remaining`` are ``None`` when usage is unlimited. ``source``
    says where the answer came from (``"live"``, ``"cache"``, ``"stale"``, ``"fallback"``;
    see :attr:`FeatureAccessBase.provenance`); it is not a wire field, and a ``source`` a
    server adds to the answer is kept in ``model_extra``.
    """

    @property
    def source(self) -> Provenance:
        """Where this answer came from: ``"live"``, ``"cache"``, ``"stale"`` or ``"fallback"``
        (the same as :attr:`provenance`)."""
        return self._provenance


class FeatureAccessDetail(FeatureAccessBase):
    """The access figures of :class:`FeatureAccess` plus the feature's name, config, source and
    expiry.

    Here ``source`` is the wire field: where the company's access came from
    (``"subscription"``, ``"manual"``, ``"trial"``, ``"api"``). Where the answer came from
    (live, cache, stale) is :attr:`provenance`. Not a subclass of :class:`FeatureAccess`
    (their ``source`` attributes mean different things); both derive from
    :class:`FeatureAccessBase`.
    """

    feature_name: str
    """The feature's display name."""
    config_values: dict[str, Any]
    """The feature's settings for this company (e.g. ``{"maxSeats": 50}``), keys as set
    (not renamed); ``{}`` when none. ``features.set_access(config=...)`` merges into it
    key by key."""
    source: FeatureSource
    """Where the company's access came from: ``"subscription"`` (a tier or subscription),
    ``"manual"`` (set by hand; what ``features.set_access`` records by default),
    ``"trial"`` or ``"api"``."""
    valid_until: datetime | None
    """When the access ends (an aware ``datetime``; after it ``is_enabled`` is ``False``);
    ``None`` means it does not expire."""


class OrgFeatureAccess(BaseModel):
    """Every feature of the company linked to an external org id.

    ``provenance`` says where the answer came from (``"live"``, ``"cache"``, ``"stale"``),
    as for :class:`FeatureAccessDetail`.
    """

    company_id: str
    """The id of the company linked to the org id."""
    features: list[FeatureAccessDetail]
    """The company's access to each feature, as ``features.list_access`` gives it."""

    _provenance: Provenance = PrivateAttr(default="live")

    @property
    def provenance(self) -> Provenance:
        """Where this answer came from: ``"live"``, ``"cache"`` or ``"stale"`` (not a field)."""
        return self._provenance
