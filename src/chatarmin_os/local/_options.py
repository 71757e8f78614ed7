"""The local server's options: one frozen :class:`ServerOptions`, read by every way in.

The tRPC handler (``protocol.TRPCHandler``), the ASGI app (``asgi.create_app``),
``chatarmin-os serve`` (its flags build one) and ``chatarmin_os.testing`` (the in-process
ChatarminOS and its HTTP server) all take a ``ServerOptions``. A new option is a field here
(with its check in ``__post_init__``) plus the code that uses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PREFIX",
    "ServerOptions",
    "ServerTransformer",
]

DEFAULT_PREFIX = "/api/v1"
"""Where the procedures are mounted, as in ``http://localhost:3001/api/v1``."""

DEFAULT_MAX_BATCH = 100
"""The most calls one batch may hold (``@trpc/server``'s ``maxBatchSize``)."""

DEFAULT_MAX_BODY = 1024 * 1024
"""The largest request body accepted, in bytes (1 MiB)."""

ServerTransformer = Literal["auto", "json", "superjson"]
"""How a server encodes values: per request (``auto``), plain JSON, or superjson."""

_TRANSFORMERS = ("auto", "json", "superjson")


@dataclass(frozen=True)
class ServerOptions:
    """How the local server speaks tRPC; every field is checked when it is made.

    Example::

        ServerOptions(max_batch=10, batching=True)
        ServerOptions().replace(transformer="superjson")
    """

    prefix: str = DEFAULT_PREFIX
    """Where the procedures are mounted (``/api/v1``); kept with a leading slash and no
    trailing one (``""`` mounts them at the root)."""

    transformer: ServerTransformer = "auto"
    """``"auto"`` answers in superjson when the request's input is superjson-shaped, in plain
    JSON otherwise; ``"json"`` and ``"superjson"`` force one mode, as a real server is set
    up with exactly one."""

    max_batch: int = DEFAULT_MAX_BATCH
    """The most calls one ``?batch=1`` request may hold (tRPC's ``maxBatchSize``); more is
    400 ``Batch call exceeds maximum size`` and nothing runs."""

    batching: bool = True
    """``False`` refuses every batch (tRPC's ``allowBatching: false``)."""

    max_body: int = DEFAULT_MAX_BODY
    """The largest request body, in bytes; a bigger one is 413 ``PAYLOAD_TOO_LARGE``."""

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str):
            raise TypeError(f"prefix must be a str, got {type(self.prefix).__name__}")
        stripped = self.prefix.strip("/")
        if any(c in stripped for c in "?#%") or any(c.isspace() for c in stripped):
            raise ValueError(f"prefix must be a plain URL path, got {self.prefix!r}")
        object.__setattr__(self, "prefix", "/" + stripped if stripped else "")
        if self.transformer not in _TRANSFORMERS:
            raise ValueError(
                f"transformer must be auto, json or superjson, got {self.transformer!r}"
            )
        for name in ("max_batch", "max_body"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.batching, bool):
            raise TypeError(f"batching must be a bool, got {type(self.batching).__name__}")

    def replace(self, **changes: Any) -> ServerOptions:
        """A copy with ``changes`` (field names as keywords), checked again."""
        return dataclasses.replace(self, **changes) if changes else self
