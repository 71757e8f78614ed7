"""The quota ledger's front: each operation in Redis when it answers, else in the process.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_ledger.py``. Everything that
does not wait is in :class:`~chatarmin_os._ledger.router.LedgerCore`.
"""

from __future__ import annotations

from typing import Any

from .._ledger.memory import Slot
from .._ledger.redis_scripts import parse_figures, parse_hold
from .._ledger.router import LedgerCore
from .._ledger.rules import HoldVerdict, LedgerFigures

__all__ = ["AsyncLedger"]


class AsyncLedger(LedgerCore):
    """Holds and in-flight usage of one product (see :mod:`chatarmin_os._ledger`).

    Redis failing never raises: the operation is done in this process instead (exact within
    it) and the failure is reported to ``failed``.
    """

    async def _run(self, name: str, slot: Slot, args: list[Any]) -> tuple[bool, Any]:
        scripts = self.scripts()
        if scripts is None:
            return False, None
        try:
            return True, await scripts[name](keys=self.keys(slot), args=args)
        except Exception as error:
            self.failed(name, error)
            return False, None

    async def hold(self, slot: Slot, hold_id: str, quantity: int) -> tuple[HoldVerdict, bool]:
        """Hold ``quantity``; the verdict and whether it was taken in Redis."""
        done, reply = await self._run("hold", slot, self.hold_args(hold_id, quantity))
        if done:
            return parse_hold(reply), True
        return self.memory.hold(slot, hold_id, quantity), False

    async def load(self, slot: Slot, *, limit: int | None, usage: int, enabled: bool) -> None:
        """Store the server's figures (from a check) where the next hold will look."""
        done, _ = await self._run("load", slot, self.load_args(limit, usage, enabled))
        if not done:
            self.memory.load(slot, limit=limit, usage=usage, enabled=enabled)

    async def commit(
        self, slot: Slot, hold_id: str, quantity: int, key: str, *, in_redis: bool
    ) -> bool:
        """Turn the hold into ``quantity`` in flight as event ``key``; whether the hold was
        still there."""
        if in_redis:
            done, had = await self._run("commit", slot, self.commit_args(hold_id, quantity, key))
            if done:
                self.flew(key, True)
                return bool(had)
        self.flew(key, False)
        return self.memory.commit(slot, hold_id, quantity, key)

    async def release(self, slot: Slot, hold_id: str, *, in_redis: bool) -> bool:
        """Give the hold back; whether it was still there."""
        if in_redis:
            done, had = await self._run("release", slot, [hold_id])
            if done:
                return bool(had)
        return self.memory.release(slot, hold_id)

    async def acknowledge(self, slot: Slot, key: str, usage: int | None) -> None:
        """The server counted event ``key`` (its usage is ``usage`` now)."""
        if self.landed(key):
            done, _ = await self._run("acknowledge", slot, [key, "" if usage is None else usage])
            if done:
                return
        self.memory.acknowledge(slot, key, usage)

    async def refused(self, slot: Slot, key: str) -> None:
        """The server refused event ``key``: ask it again before the next hold."""
        self.landed(key)
        await self._run("refuse", slot, [key])  # stale everywhere: cheap, and safe
        self.memory.refused(slot, key)

    async def dropped(self, slot: Slot, key: str) -> None:
        """Event ``key`` will not be sent."""
        if self.landed(key):
            done, _ = await self._run("drop", slot, [key])
            if done:
                return
        self.memory.dropped(slot, key)

    async def figures(self, slot: Slot) -> LedgerFigures | None:
        """The entry's figures (Redis when it answers, else this process's)."""
        done, reply = await self._run("figures", slot, self.figures_args())
        if done:
            return parse_figures(reply)
        return self.memory.figures(slot)
