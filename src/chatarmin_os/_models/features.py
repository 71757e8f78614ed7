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
    is_enabled: bool
    can_use: bool
    has_quantity: bool
    current_usage: int
    quantity_limit: int | None
    included_quantity: int | None
    remaining: int | None

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
    config_values: dict[str, Any]
    source: FeatureSource
    valid_until: datetime | None


class OrgFeatureAccess(BaseModel):
    """Every feature of the company linked to an external org id.

    ``provenance`` says where the answer came from (``"live"``, ``"cache"``, ``"stale"``),
    as for :class:`FeatureAccessDetail`.
    """

    company_id: str
    features: list[FeatureAccessDetail]

    _provenance: Provenance = PrivateAttr(default="live")

    @property
    def provenance(self) -> Provenance:
        """Where this answer came from: ``"live"``, ``"cache"`` or ``"stale"`` (not a field)."""
        return self._provenance
