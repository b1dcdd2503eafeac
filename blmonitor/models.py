"""The nouns of blmonitor: frozen dataclasses and enums shared by every module.

Nothing here does I/O; a Zone is catalog data, an Answer is what one DNS lookup returned,
a Result is the verdict for one (target, zone) pair and a Report is one whole check.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class TargetKind(enum.StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    DOMAIN = "domain"


class ZoneKind(enum.StrEnum):
    BLOCK = "block"
    REPUTATION = "reputation"
    POLICY = "policy"
    ALLOW = "allow"


class ZoneStatus(enum.StrEnum):
    """What the catalog's cited source said of a zone on its date."""

    ALIVE = "alive"
    DEAD = "dead"
    LISTS_EVERYTHING = "lists-everything"
    UNKNOWN = "unknown"


class Severity(enum.IntEnum):
    """How much a listing hurts: critical means major receivers reject on it."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (use info, warning or critical)") from None


class ErrorKind(enum.StrEnum):
    """Why an operator answered with an error code instead of a listing."""

    REFUSED = "refused"  # our resolver or querier is blocked (public resolver, no key)
    RATE_LIMITED = "rate-limited"
    WRONG_QUERY = "wrong-query"  # e.g. an IP sent to a domain list, a typo in the zone
    OTHER = "other"


class Status(enum.StrEnum):
    LISTED = "listed"
    CLEAN = "clean"
    ERROR = "error"
    SKIPPED = "skipped"


class Health(enum.StrEnum):
    OK = "ok"
    DEAD = "dead"
    LISTS_EVERYTHING = "lists-everything"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    UNTESTED = "untested"
    NOT_JUDGED = "not-judged"  # the resolver failed: nothing is known of the zone itself

    @property
    def trusted(self) -> bool:
        return self in (Health.OK, Health.UNTESTED)


class Verdict(enum.StrEnum):
    CLEAN = "clean"
    LISTED = "listed"
    UNKNOWN = "unknown"


class Outcome(enum.StrEnum):
    """What one DNS lookup came back with, before any DNSBL meaning is put on it."""

    RECORDS = "records"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    FAILED = "failed"  # any other rcode or a malformed answer; detail says which


@dataclass(frozen=True, slots=True)
class Target:
    """An address or domain to check; `text` is normalised (compressed IP, lower-case IDNA)."""

    text: str
    kind: TargetKind


@dataclass(frozen=True, slots=True)
class Code:
    """One listing code of a zone: an exact 127.x.y.z value, or a bit of the last octet."""

    meaning: str
    severity: Severity
    value: str | None = None
    bit: int | None = None
    delist_url: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """An answer that is an operator's error message, never a listing."""

    kind: ErrorKind
    meaning: str
    value: str | None = None
    bit: int | None = None


@dataclass(frozen=True, slots=True)
class Zone:
    """One DNS zone of the catalog, or a generic RFC 5782 zone named on the command line.

    `query_zone` is the name actually queried; for Spamhaus DQS it holds the secret key, so
    it is kept out of repr() and must never be printed: `name` is what people see.
    """

    id: str
    name: str
    takes: frozenset[TargetKind]
    kind: ZoneKind = ZoneKind.BLOCK
    operator: str = ""
    default: bool = False
    status: ZoneStatus = ZoneStatus.UNKNOWN
    status_date: str = ""
    status_source: str = ""
    lookup_url: str = ""
    delist_url: str = ""
    fair_use: str = ""
    access: str = "free"
    bitmask: bool = False
    strict: bool = False
    codes: tuple[Code, ...] = ()
    errors: tuple[ErrorCode, ...] = ()
    test_listed: tuple[tuple[TargetKind, str], ...] = ()
    test_unlisted: tuple[tuple[TargetKind, str], ...] = ()
    max_inflight: int = 8
    dqs: str = ""
    generic: bool = False
    query_zone: str = field(default="", repr=False)

    @property
    def queried(self) -> str:
        return self.query_zone or self.name

    @property
    def label(self) -> str:
        """The name to show a person: never the DQS key."""
        return f"{self.name} (DQS)" if self.query_zone else self.name


@dataclass(frozen=True, slots=True)
class Answer:
    """One DNS lookup's outcome: A addresses (sorted) or TXT strings, or why there are none."""

    outcome: Outcome
    records: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """The verdict for one (target, zone) pair: exactly one Status."""

    target: Target
    zone: Zone
    status: Status
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    severity: Severity | None = None
    txt: tuple[str, ...] = ()
    error: str = ""
    delist_url: str = ""


@dataclass(frozen=True, slots=True)
class ZoneHealth:
    zone: Zone
    health: Health
    detail: str = ""


class ResolverFault(enum.StrEnum):
    """Why no zone could be judged: the resolver, not the zones, is at fault."""

    UNREACHABLE = "unreachable"  # no reply at all
    REFUSED = "refused"  # REFUSED for names it should resolve
    FAILING = "failing"  # SERVFAIL for everything: it cannot reach the lists' servers
    NXDOMAIN = "nxdomain"  # names that exist come back NXDOMAIN (a captive or sandbox resolver)
    REWRITES = "rewrites"  # names that cannot exist get an answer (NXDOMAIN rewriting)
    REFUSED_BY_LISTS = "refused-by-lists"  # every list refuses it (a public or shared resolver)


@dataclass(frozen=True, slots=True)
class ResolverHealth:
    """The resolver's fault in one run, what showed it, and what to do."""

    fault: ResolverFault
    servers: tuple[str, ...]  # as given, e.g. ("127.0.0.1:53",)
    detail: str  # what was seen
    fix: str  # one line: what to do

    @property
    def message(self) -> str:
        who = ", ".join(self.servers) or "the system resolver"
        return f"your resolver {who} {_FAULT_WORDS[self.fault]} ({self.detail}): {self.fix}"


_FAULT_WORDS = {
    ResolverFault.UNREACHABLE: "is unreachable",
    ResolverFault.REFUSED: "refuses our queries",
    ResolverFault.FAILING: "cannot resolve the lists' zones",
    ResolverFault.NXDOMAIN: "answers NXDOMAIN for names that exist",
    ResolverFault.REWRITES: "answers for names that do not exist",
    ResolverFault.REFUSED_BY_LISTS: "is refused by the lists",
}


@dataclass(frozen=True, slots=True, repr=False)
class Report:
    """One whole check: every result, every zone's health, and the overall verdict."""

    results: tuple[Result, ...]
    zones: tuple[ZoneHealth, ...]
    verdict: Verdict
    warnings: tuple[str, ...] = ()
    queries: int = 0
    retries: int = 0
    seconds: float = 0.0
    resolver: ResolverHealth | None = None  # set when the resolver, not the zones, failed

    def __repr__(self) -> str:
        # Short on purpose: asyncio formats the result of a finished main task when the run
        # ends (signal handler restore), and a full repr of 50,000 results costs seconds.
        return (
            f"Report(verdict={self.verdict}, results={len(self.results)}, "
            f"zones={len(self.zones)}, queries={self.queries})"
        )


class EventKind(enum.StrEnum):
    """What the monitor tells people about: changes only, never a steady state."""

    LISTED = "listed"
    DELISTED = "delisted"
    ZONE_UNUSABLE = "zone-unusable"  # dead, lists everything, unreachable
    ZONE_RECOVERED = "zone-recovered"
    RESOLVER_REFUSED = "resolver-refused"  # a zone refuses our resolver (127.255.255.254…)
    ADDRESS_CHANGED = "address-changed"
    CHECKS_FAILING = "checks-failing"  # whole runs fail (no resolver, no public IP)
    CHECKS_RECOVERED = "checks-recovered"
    SOURCE_UNUSABLE = "source-unusable"  # a receiver's data source (SNDS) cannot be read
    SOURCE_RECOVERED = "source-recovered"
    SOURCE_UNKNOWN = "source-unknown"  # a source has no data for one of our addresses
    REPUTATION = "reputation"  # a receiver rates us poor or bad (SNDS YELLOW, RED)
    REPUTATION_RECOVERED = "reputation-recovered"  # back to good after a poor or bad rating


@dataclass(frozen=True, slots=True)
class Event:
    """One confirmed change, ready to be stored and notified.

    Times are timezone-aware UTC datetimes. `since` is when the listing or problem began
    (for DELISTED and *_RECOVERED: when the episode that just ended began, and `ended` when
    it was first seen gone).
    """

    kind: EventKind
    severity: Severity
    at: datetime
    target: str = ""
    zone: str = ""  # Zone.label: never the DQS key
    codes: tuple[str, ...] = ()
    meaning: str = ""
    txt: tuple[str, ...] = ()
    delist_url: str = ""
    since: datetime | None = None
    detail: str = ""
    ended: datetime | None = None  # DELISTED, *_RECOVERED: the first run that saw it gone
