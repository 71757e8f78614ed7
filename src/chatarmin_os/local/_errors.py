"""The error a local ChatarminOS procedure raises."""

from __future__ import annotations

__all__ = ["ProcedureError"]


class ProcedureError(Exception):
    """A procedure failed with a tRPC error code (``"NOT_FOUND"``, ``"BAD_REQUEST"``, ...).

    The HTTP layer turns it into the tRPC error body: ``code`` is the TRPC_CODE string of
    the wire contract and ``message`` its human-readable text.
    """

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        """Create the error from its tRPC code and message."""
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        """``ProcedureError('NOT_FOUND', 'Company "x" not found')``."""
        return f"ProcedureError({self.code!r}, {self.message!r})"
