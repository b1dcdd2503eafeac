"""What a detector is: one non-standard bounce format (an MTA's, a provider's, a gateway's),
declared once with its name, its finder, its place in the order and its needles; and what the
finders share (addresses in text, recipients listed under a heading). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from blmonitor.bounces.hit import Hit
from blmonitor.bounces.needles import may_hold

# An address as the text formats write it (no quotes, brackets or white space in it).
ADDR = r"[^\s<>\"(),;:@]+@[^\s<>\"(),;:@]+\.[A-Za-z0-9-]+"
# A line that holds an address and nothing else (angle brackets allowed).
LONE_ADDR = re.compile(rf"^\s*<?({ADDR})>?\s*$")


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


def lone_addresses(block: str) -> list[str]:
    """The addresses of `block` that stand alone on their line, in order."""
    return [m.group(1) for line in block.split("\n") if (m := LONE_ADDR.match(line))]


def failed_hits(recipients: Iterable[str], diagnostic: str, remote_mta: str = "") -> list[Hit]:
    """One failed hit per recipient (the first of each spelling), all with the same reason."""
    return [
        Hit(recipient=r, action="failed", diagnostic=diagnostic, remote_mta=remote_mta)
        for r in dict.fromkeys(recipients)
    ]


def failed_matches(
    matches: Iterable[re.Match[str]], *, recipient: int, diagnostic: int
) -> list[Hit]:
    """One failed hit per match: the recipient and the reason (stripped) from its groups."""
    return [
        Hit(recipient=m.group(recipient), action="failed", diagnostic=m.group(diagnostic).strip())
        for m in matches
    ]


def listed_failures(recipients: str, reason: str) -> list[Hit]:
    """Failed hits for the addresses alone on their lines in `recipients`, all for `reason`
    (notices that list the recipients under one heading and the reason under another)."""
    return failed_hits(lone_addresses(recipients), reason)
