"""The usage buffer's two errors: an event dropped for lack of room, an unlinked org."""

from __future__ import annotations

from .._exceptions import ChatarminOSError

__all__ = ["UnlinkedOrgError", "UsageBufferFullError"]


class UsageBufferFullError(ChatarminOSError):
    """An event found the usage buffer full (``max_pending``) and was dropped."""


class UnlinkedOrgError(ChatarminOSError):
    """No company is linked to the ``external_org_id`` of a buffered event (refused for good)."""

    def __init__(self, external_org_id: str) -> None:
        self.external_org_id = external_org_id
        shown = external_org_id if len(external_org_id) <= 80 else external_org_id[:80] + "…"
        super().__init__(f"No company is linked to the external org id {shown!r}.")
