"""Noticing a new process: what a client holds is reset in a child made by ``os.fork()``.

Users make one client per process in servers that fork after importing the app (gunicorn
``--preload``, Celery prefork, uWSGI, ``multiprocessing`` with the fork start method). A child
shares its parent's pooled sockets, locks held by the parent's other threads and any
background state: using them from two processes mixes answers between processes and loses
usage. So everything a client holds that must not cross a fork registers here, and is reset
in the child right after the fork, while the child still has a single thread:
:func:`register` an object with an ``_after_fork_in_child()`` method (held weakly).

The parent is never touched: its pools, locks and workers go on as before.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

from ._logs import logger

__all__ = ["ForkAware", "register"]


class ForkAware(Protocol):
    """Something that drops process-bound state (sockets, locks, workers) in a forked child."""

    def _after_fork_in_child(self) -> None: ...


_registered: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked from now on (held weakly)."""
    _registered.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_registered):
        try:
            obj._after_fork_in_child()
        except Exception:  # pragma: no cover - a reset must never break the child
            logger.exception("chatarmin_os: resetting %r after fork failed", type(obj).__name__)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
