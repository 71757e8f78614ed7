"""Every procedure of the local ChatarminOS, one module per namespace of the SDK.

``features.check`` is in ``features.py`` (as ``_async/resources/features.py`` is on the SDK
side), declared there with its path, kind, input schema and handler. Importing this package
fills :data:`~chatarmin_os.local._registry.REGISTRY`; it then must hold exactly the
procedures of the shared table ``chatarmin_os._procedures.PROCEDURES``.
"""

from __future__ import annotations

from ..._procedures import PROCEDURES
from .._registry import REGISTRY
from . import billing, companies, contacts, features, links, onboard, tiers

__all__ = ["REGISTRY", "billing", "companies", "contacts", "features", "links", "onboard", "tiers"]

if set(REGISTRY) != set(PROCEDURES):  # pragma: no cover - a declaration is missing
    raise RuntimeError(
        "local procedures and chatarmin_os._procedures.PROCEDURES differ: "
        f"{sorted(set(REGISTRY) ^ set(PROCEDURES))}"
    )
