"""What the ledgers answer, and the figures they keep (shared by the memory and Redis ledgers).

An entry is the server's word on one (company, feature) plus what this SDK added since:

* ``reported``: the usage the server last reported (a check, or a counted event's answer);
* ``held``: the quantity of live reservations (each expires after ``hold_timeout``);
* ``in_flight``: committed usage the server has not acknowledged yet (each expires after
  ``flight_timeout``, by when the server has counted it or refused it).

A reservation is admitted when ``reported + held + in_flight + quantity <= limit``. Usage
the server counted but whose answer has not arrived yet is in both ``reported`` (after a
reload) and ``in_flight``: counted twice for a moment, which errs on the side of refusing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_FLIGHT_TIMEOUT",
    "DEFAULT_HOLD_TIMEOUT",
    "DEFAULT_REFRESH",
    "HoldOutcome",
    "HoldVerdict",
    "LedgerFigures",
]

DEFAULT_HOLD_TIMEOUT = 60.0
"""Seconds a reservation holds its quantity unless committed or released first."""

DEFAULT_FLIGHT_TIMEOUT = 600.0
"""Seconds committed usage counts as in flight without the server's acknowledgement."""

DEFAULT_REFRESH = 300.0
"""Seconds after which an entry asks the server again for the usage it reports."""

HoldOutcome = Literal["held", "refused", "miss", "disabled", "unlimited"]
"""``held``: taken; ``refused``: it would pass the limit; ``miss``: no (fresh) figures, ask
the server and load them; ``disabled``: the feature is not enabled; ``unlimited``: nothing to
hold."""


@dataclass(frozen=True)
class HoldVerdict:
    """The outcome of one attempt to hold a quantity."""

    outcome: HoldOutcome
    remaining: int | None = None
    """What is left after the hold (``held``) or before it (``refused``); ``None`` otherwise."""
    limit: int | None = None
    """The limit the verdict was made against, when there is one."""


@dataclass(frozen=True)
class LedgerFigures:
    """A snapshot of one entry, for tests and ``stats``."""

    limit: int | None
    reported: int
    held: int
    in_flight: int
    enabled: bool
