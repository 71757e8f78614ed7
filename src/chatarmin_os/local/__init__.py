"""The local ChatarminOS: the wire contract's semantics on SQLite, for development and tests.

:class:`LocalEngine` implements every procedure of the contract (``PROCEDURES``) without
a network: ``engine.call("features.check", {...}, api_key=DEFAULT_API_KEY)`` returns the
procedure's output or raises :class:`ProcedureError` with a tRPC error code. Its catalog
(features, tiers, Stripe checkout sessions and subscriptions) comes from
``default_catalog.json`` or a seed file read with :func:`load_seed`.
"""

from .catalog import SeedError, default_catalog, load_seed
from .engine import DEFAULT_API_KEY, PROCEDURES, LocalEngine, ProcedureError

__all__ = [
    "DEFAULT_API_KEY",
    "PROCEDURES",
    "LocalEngine",
    "ProcedureError",
    "SeedError",
    "default_catalog",
    "load_seed",
]
