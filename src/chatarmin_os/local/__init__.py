"""The local ChatarminOS: the API's semantics on SQLite, for development and tests.

:class:`LocalEngine` implements every procedure of the API (``PROCEDURES``) without a
network: ``engine.call("features.check", {...}, api_key=DEFAULT_API_KEY)`` returns the
procedure's output or raises :class:`ProcedureError` with a tRPC error code. Its catalog
(features, tiers, Stripe checkout sessions and subscriptions) comes from
``default_catalog.json`` or a seed file read with :func:`load_seed`.

The procedures live in ``procedures/`` (one module per namespace, as the SDK's resources);
``protocol.TRPCHandler`` speaks tRPC over HTTP in front of the engine for the in-process
transports (``transport``), the ASGI app (``asgi``) and ``chatarmin-os serve`` (``cli``), all
set up by one :class:`ServerOptions` (prefix, transformer, batch and body limits).
Nothing here imports the SDK beyond its shared wire modules (``_wire``, ``_procedures``).
"""

from ._options import ServerOptions
from .catalog import SeedError, default_catalog, load_seed
from .engine import DEFAULT_API_KEY, PROCEDURES, LocalEngine, ProcedureError

__all__ = [
    "DEFAULT_API_KEY",
    "PROCEDURES",
    "LocalEngine",
    "ProcedureError",
    "SeedError",
    "ServerOptions",
    "default_catalog",
    "load_seed",
]
