"""The quota ledger's front: each operation in Redis when it answers, else in the process.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_ledger.py``. Everything that
does not wait is in :class:`~chatarmin_os._ledger.router.LedgerCore`; what is deferred and
sent together in one round trip is described in :mod:`chatarmin_os._ledger.pipeline`.
"""

from __future__ import annotations

from typing import Any

from .._concurrency import asleep
from .._ledger.memory import Slot
from .._ledger.pipeline import Op, connection_args, not_run
from .._ledger.redis_scripts import parse_figures, parse_hold
from .._ledger.router import Answer, LedgerCore
from .._ledger.rules import HoldVerdict, LedgerFigures

__all__ = ["AsyncLedger"]

_CLAIM_POLL = 0.0005  # seconds between looks while another round trip sends pending operations


class AsyncLedger(LedgerCore):
    """Holds and in-flight usage of one product (see :mod:`chatarmin_os._ledger`).

    Redis failing never raises: the operation is done in this process instead (exact within
    it) and the failure is reported to ``failed``.
    """

    async def _call(self, name: str, slot: Slot, args: list[Any]) -> tuple[bool, Any]:
        """Run one script now (with what is pending before it); whether it ran in Redis,
        and its reply."""
        return (await self._exchange([Op(name, slot, args)]))[0]

    async def drain(self) -> None:
        """Send what is pending now (waiting for a round trip that is sending some)."""
        await self._exchange([], wait=True)

    async def _exchange(self, calls: list[Op], *, wait: bool = False) -> list[tuple[bool, Any]]:
        """One round trip: what is pending (when no other round trip is sending some, or
        ``wait``, or it is due), then ``calls``; their results."""
        pending = self.pending
        taken = pending.take()
        while taken is None and pending and (wait or pending.due()):
            await asleep(_CLAIM_POLL)
            taken = pending.take()
        ops = calls if taken is None else taken + calls
        if not ops:
            return []
        replies: list[Any] = []
        error: BaseException | None = None
        try:
            client = self.client()
            if client is not None:
                await self._send(client, ops, replies)
        except Exception as exc:
            error = exc
        finally:  # cancelled too: what was taken is done, here if not in Redis
            try:
                results = self.settle(ops, replies, error)
            finally:
                if taken is not None:
                    pending.sent()
        return results

    async def _send(self, client: Any, ops: list[Op], replies: list[Any]) -> None:
        """Pipeline ``ops`` on one connection; their replies (a refused one: its error) go
        to ``replies``. Those refused ``NOSCRIPT`` are sent again after loading the scripts."""
        pool = client.connection_pool
        connection = await pool.get_connection(*connection_args(pool))
        try:
            loads = self.loads(client)
            got: list[Any] = []
            try:
                await self._round_trip(connection, loads + self.commands(ops), got)
            finally:
                replies += got[len(loads) :]
            again = not_run(replies)
            if again:  # the scripts were flushed: load them, send those again (only)
                loads = self.loads(client, flushed=True)
                got = []
                try:
                    await self._round_trip(
                        connection, loads + self.commands([ops[i] for i in again]), got
                    )
                finally:
                    for place, reply in zip(again, got[len(loads) :], strict=False):
                        replies[place] = reply
        except BaseException:
            await connection.disconnect()  # replies may be left unread
            raise
        finally:
            await pool.release(connection)

    async def _round_trip(self, connection: Any, commands: list[bytes], replies: list[Any]) -> None:
        from redis.exceptions import ResponseError

        await connection.send_packed_command([b"".join(commands)])
        for _ in commands:
            try:
                replies.append(await connection.read_response())
            except ResponseError as refused:  # one reply: the others follow
                replies.append(refused)

    async def hold(self, slot: Slot, hold_id: str, quantity: int) -> tuple[HoldVerdict, bool]:
        """Hold ``quantity``; the verdict and whether it was taken in Redis."""
        done, reply = await self._call("hold", slot, self.hold_args(hold_id, quantity))
        if done:
            return parse_hold(reply), True
        return self.memory.hold(slot, hold_id, quantity), False

    async def load(self, slot: Slot, *, limit: int | None, usage: int, enabled: bool) -> None:
        """Store the server's figures (from a check) where the next hold will look."""
        done, _ = await self._call("load", slot, self.load_args(limit, usage, enabled))
        if not done:
            self.memory.load(slot, limit=limit, usage=usage, enabled=enabled)

    async def commit(
        self, slot: Slot, hold_id: str, quantity: int, key: str, *, in_redis: bool
    ) -> bool:
        """Turn the hold into ``quantity`` in flight as event ``key`` now (handed to the
        buffer after :meth:`committing`); whether the hold was still there."""
        had: bool | None = None
        if in_redis:
            done, reply = await self._call("commit", slot, self.commit_args(hold_id, quantity, key))
            if done:
                self.flew(key, True)
                had = bool(reply)
        if had is None:
            self.flew(key, False)
            # A hold taken in Redis cannot be found here: unknown, not expired.
            had = self.memory.commit(slot, hold_id, quantity, key) or in_redis
        await self._answer_early(slot, key)
        return had

    async def commit_soon(
        self, slot: Slot, hold_id: str, quantity: int, key: str, *, in_redis: bool
    ) -> None:
        """:meth:`commit`, deferred to the next round trip when the hold is in Redis (see
        :mod:`~chatarmin_os._ledger.pipeline`); a hold found expired then is warned about."""
        if not in_redis:
            self.flew(key, False)
            if not self.memory.commit(slot, hold_id, quantity, key):
                self.committed_without_hold(slot[1])
            await self._answer_early(slot, key)
            return
        due = self.defer_commit(slot, hold_id, quantity, key)
        # An answer already here: the buffer settled the event's batch (it will not send
        # this for us), so send now.
        if await self._answer_early(slot, key) or due:
            await self.drain()

    async def _answer_early(self, slot: Slot, key: str) -> bool:
        """Apply the answer to ``key`` that came while it was being committed; whether one did."""
        early = self.committed(key)
        if early is None:
            return False
        await self.answered(slot, key, early)
        return True

    async def release(self, slot: Slot, hold_id: str, *, in_redis: bool) -> bool:
        """Give the hold back; whether it was still there."""
        if in_redis:
            done, had = await self._call("release", slot, [hold_id])
            if done:
                return bool(had)
        return self.memory.release(slot, hold_id)

    async def answered(self, slot: Slot, key: str, answer: Answer) -> None:
        """What became of event ``key``: ``("counted", usage)`` moves it from in flight to
        reported; ``("refused", None)`` drops it and makes the entry ask the server again;
        ``("dropped", None)`` drops it. An answer to an event no reservation committed
        still tells the server's count. In Redis it is sent with the next round trip."""
        where = self.landed(key)
        if where is None and self.answered_early(key, answer):
            return
        if where is not False and self.shared:
            if self.defer_answer(slot, key, answer):
                await self.drain()
            return
        self.answer_in_memory(slot, key, answer)

    async def figures(self, slot: Slot) -> LedgerFigures | None:
        """The entry's figures (Redis when it answers, else this process's), after what
        is pending."""
        call = Op("figures", slot, self.figures_args())
        done, reply = (await self._exchange([call], wait=True))[0]
        if done:
            return parse_figures(reply)
        return self.memory.figures(slot)
