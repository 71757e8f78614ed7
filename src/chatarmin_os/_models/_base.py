"""The base of every result model, and the enumerations results use."""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from .._wire import FeatureSource as FeatureSource

LinkStatus = Literal["created", "linked", "already_linked"]
"""How ``onboard`` found the company: made anew, matched and linked, or linked before."""

SmartLinkStatus = Literal["already_linked", "linked", "suggestions", "no_match"]
"""The outcome of ``companies.smart_link``."""

MatchedBy = Literal["domain", "name", "email_domain"]
"""Which hint made a smart-link suggestion."""


Provenance = Literal["live", "cache", "stale", "fallback"]
"""Where an answer came from: the server just now, the entitlement cache (fresh), the cache past
its TTL during an outage, or your fallback policy during an outage."""


class BaseModel(pydantic.BaseModel):
    """Base of every result model: snake_case attributes, camelCase on the wire, extras kept.

    ``_request_id`` is the ``x-request-id`` of the HTTP answer the result came from
    (``"req_..."``; shared by the calls of one batch), or ``None`` (no such header, or a
    result the SDK made itself). A private attribute: not a field, not in ``model_dump()``,
    not compared by ``==``. Quote it to support (see the guide "Debugging and support").
    """

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        protected_namespaces=(),
        # Each field's docstring is also its description (JSON schema, ``model_fields``).
        use_attribute_docstrings=True,
        # Validators are built on a model's first use, not when the SDK is imported.
        defer_build=True,
    )

    _request_id: str | None = pydantic.PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, pydantic.BaseModel):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == other.__pydantic_extra__
        )

    def to_dict(self, *, by_alias: bool = False) -> dict[str, Any]:
        """The model as a plain dict (snake_case keys; wire names with ``by_alias=True``)."""
        return self.model_dump(mode="python", by_alias=by_alias)
