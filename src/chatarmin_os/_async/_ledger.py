"""The quota ledger's front: each operation in Redis when it answers, else in the process.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_ledger.py``. Everything that
does not wait is in :class:`~chatarmin_os._ledger.router.LedgerCore`.
"""

from __future__ import annotations

from typing import Any

from .._ledger.memory import Slot
from .._ledger.redis_scripts import parse_figures, parse_hold
from .._ledger.router import Answer, LedgerCore
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
        """Turn the hold into ``quantity`` in flight as event ``key`` (handed to the buffer
        after :meth:`committing`); whether the hold was still there."""
        had: bool | None = None
        if in_redis:
            done, reply = await self._run("commit", slot, self.commit_args(hold_id, quantity, key))
            if done:
                self.flew(key, True)
                had = bool(reply)
        if had is None:
            self.flew(key, False)
            # A hold taken in Redis cannot be found here: unknown, not expired.
            had = self.memory.commit(slot, hold_id, quantity, key) or in_redis
        early = self.committed(key)
        if early is not None:
            await self.answered(slot, key, early)
        return had

    async def release(self, slot: Slot, hold_id: str, *, in_redis: bool) -> bool:
        """Give the hold back; whether it was still there."""
        if in_redis:
            done, had = await self._run("release", slot, [hold_id])
            if done:
                return bool(had)
        return self.memory.release(slot, hold_id)

    async def answered(self, slot: Slot, key: str, answer: Answer) -> None:
        """What became of event ``key``: ``("counted", usage)`` moves it from in flight to
        reported; ``("refused", None)`` drops it and makes the entry ask the server again;
        ``("dropped", None)`` drops it. An answer to an event no reservation committed
        still tells the server's count."""
        outcome, usage = answer
        where = self.landed(key)
        if where is None and self.answered_early(key, answer):
            return
        if outcome == "counted":
            script, args = "acknowledge", [key, "" if usage is None else usage]
        else:
            script, args = ("refuse" if outcome == "refused" else "drop"), [key]
        if where is not False and self.shared:
            done, _ = await self._run(script, slot, args)
            if done and outcome != "refused":
                return
        if outcome == "counted":
            self.memory.acknowledge(slot, key, usage)
        elif outcome == "refused":
            self.memory.refused(slot, key)
        else:
            self.memory.dropped(slot, key)

    async def figures(self, slot: Slot) -> LedgerFigures | None:
        """The entry's figures (Redis when it answers, else this process's)."""
        done, reply = await self._run("figures", slot, self.figures_args())
        if done:
            return parse_figures(reply)
        return self.memory.figures(slot)
