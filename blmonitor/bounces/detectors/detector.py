"""What a detector is: one non-standard bounce format (an MTA's, a provider's, a gateway's),
declared once with its name, its finder, its needles and its place in the order. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from blmonitor.bounces.hit import Hit
from blmonitor.bounces.needles import may_hold


@dataclass(frozen=True, slots=True)
class Detector:
    """One text format.

    `find` reads a message's text (its text parts joined) into hits, [] when the format is not
    there. `needles` (lower-case) are literal parts of every text `find` finds anything in, one
    of which must occur for it to be tried (see `needles.may_hold`); `starts` are strings the
    lower-cased text may start with instead. Detectors are tried by `order`, the first that
    finds a recipient wins.
    """

    name: str  # the records' `format`
    find: Callable[[str], list[Hit]]
    order: int
    needles: tuple[str, ...]
    starts: tuple[str, ...] = ()

    def may_find(self, low: str | None) -> bool:
        """False only when `find` surely finds nothing in the text whose lower-cased form is
        `low` (None: the text is not ASCII, always try)."""
        if low is None or (self.starts and low.startswith(self.starts)):
            return True
        return may_hold(self.needles, low)
