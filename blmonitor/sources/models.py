"""[core] What a receiver's own data source said in one poll: listings, reputation, or why not.

The shared shape of every source (SNDS, Gmail Postmaster Tools): the monitor logic reads only
these records, never a source's own format.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from blmonitor.bounces.models import ListKind


class Rating(enum.StrEnum):
    """One reputation reading, on one scale for every source (worst last)."""

    GOOD = "good"  # SNDS GREEN, Gmail HIGH
    FAIR = "fair"  # Gmail MEDIUM
    POOR = "poor"  # SNDS YELLOW, Gmail LOW: a warning
    BAD = "bad"  # SNDS RED or trap hits, Gmail BAD: a reputation event
    UNKNOWN = "unknown"  # the source gives no rating for the day


@dataclass(frozen=True, slots=True)
class SourceListing:
    """A provider's own list holds one of our addresses (e.g. an SNDS blocked range)."""

    target: str  # our IP (or domain) the listing covers
    list: str  # stable id: "microsoft-snds", "gmail-ip-in-rbl"…
    provider: str  # "Microsoft", "Gmail": the key of lists/receivers.toml (lower-cased there)
    # the provider's words, e.g. SNDS "Junked due to user complaints or other evidence of spamming"
    reason: str = ""
    delist_url: str = ""  # the provider's route out
    detail: str = ""  # e.g. "blocked range 203.0.113.0-203.0.113.255"
    kind: ListKind = ListKind.PROVIDER_PRIVATE
    receiver: str = ""  # the mail service people know: "Outlook.com" ("" → provider)

    @property
    def who(self) -> str:
        """The receiver as people name it: "Outlook.com" rather than "Microsoft"."""
        return self.receiver or self.provider


@dataclass(frozen=True, slots=True)
class ReputationRecord:
    """One day's reputation of one subject (an IP or a domain) at one source."""

    source: str  # "snds", "gmail"
    subject: str  # the IP or the domain
    day: date
    rating: Rating
    raw: str = ""  # the source's own word: GREEN/YELLOW/RED, HIGH/MEDIUM/LOW/BAD
    # the day's figures as the source gives them (complaint rate, trap hits, spam ratio,
    # SPF/DKIM/DMARC success ratios, delivery error classes…), names as the source spells them
    figures: tuple[tuple[str, str], ...] = ()
    note: str = ""  # why the rating is what it is, in plain words


@dataclass(frozen=True, slots=True)
class SourceResult:
    """One poll of one source.

    `error` set means the source could not be read at all (HTTP 500, a token that cannot be
    refreshed, a malformed answer): then `listings` and `reputation` are empty and say
    nothing — the monitor keeps what it knew and reports the source unusable.
    """

    source: str  # "snds", "gmail"
    fetched: datetime
    listings: tuple[SourceListing, ...] = ()
    reputation: tuple[ReputationRecord, ...] = ()
    unknown: tuple[str, ...] = ()  # our subjects the source knows nothing of (register them)
    error: str = ""  # one line, never a secret
    unknown_hint: str = ""  # what to do about an unknown subject, e.g. "register it at …"
    checked: tuple[str, ...] = field(default=())  # the subjects this poll looked at

    @property
    def ok(self) -> bool:
        return not self.error
