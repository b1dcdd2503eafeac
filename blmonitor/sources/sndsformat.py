"""[core] Microsoft SNDS "Automated Data Access" CSV → blocked ranges, daily rows, and what they
say about our addresses (a `SourceResult`).

Two files, no header line, CRLF (tests/data/snds/README.md cites the published format):
`ipStatus.aspx` — first IP, last IP, blocked ("Yes"/"No"), reason; `data.aspx` — one row per
IP per day: IP, activity start, activity end, RCPT commands, DATA commands, message recipients,
filter result (GREEN/YELLOW/RED), complaint rate ("< 0.1%"), trap message period start and end,
trap hits, sample HELO, sample MAIL FROM, comments.

An empty body is data (nothing blocked, or no day with traffic); a body that is not this CSV —
an HTML sign-in page, a row with too few fields, a date or a colour we do not know — is a
`SndsFormatError`, never read as "nothing blocked".
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from blmonitor.sources.models import Rating, ReputationRecord, SourceListing, SourceResult

SOURCE = "snds"
LIST = "microsoft-snds"
PROVIDER = "Microsoft"  # the key of lists/receivers.toml: its domains are what the block covers
RECEIVER = "Outlook.com"
DELIST_URL = "https://olcsupport.office.com/"
SIGNUP_URL = "https://sendersupport.olc.protection.outlook.com/snds/"

_TIME_FORMAT = "%m/%d/%Y %I:%M %p"  # "9/29/2020 9:00 PM"
_COLOURS = {"GREEN": Rating.GOOD, "YELLOW": Rating.POOR, "RED": Rating.BAD}
_DATA_FIELDS = (
    "ip", "activity_start", "activity_end", "rcpt_commands", "data_commands",
    "message_recipients", "filter_result", "complaint_rate", "trap_period_start",
    "trap_period_end", "trap_hits", "sample_helo", "sample_mail_from", "comments",
)  # fmt: skip
_MIN_DATA_FIELDS = 11  # through trap hits; the samples and comments may be left off


class SndsFormatError(ValueError):
    """The body is not SNDS's CSV: says which file, which line and what was wrong."""


@dataclass(frozen=True, slots=True)
class IpStatus:
    """One row of ipStatus.aspx: a range of ours and whether Outlook.com blocks it."""

    first: ipaddress.IPv4Address
    last: ipaddress.IPv4Address
    blocked: bool
    reason: str

    def overlaps(self, network: ipaddress.IPv4Network) -> bool:
        return self.first <= network[-1] and network[0] <= self.last


@dataclass(frozen=True, slots=True)
class DataRow:
    """One row of data.aspx: one IP's traffic to Outlook.com over one day."""

    ip: ipaddress.IPv4Address
    start: datetime
    end: datetime
    filter_result: str  # GREEN, YELLOW, RED
    trap_hits: int
    fields: tuple[tuple[str, str], ...]  # every field as SNDS wrote it, by our name

    @property
    def rating(self) -> Rating:
        return Rating.BAD if self.trap_hits > 0 else _COLOURS[self.filter_result]

    @property
    def note(self) -> str:
        if self.trap_hits > 0 and self.filter_result != "RED":
            return f"{self.trap_hits} spam trap hit(s), filter result {self.filter_result}"
        return {
            "GREEN": "Outlook.com's filters judged less than 10% of the mail spam",
            "YELLOW": "Outlook.com's filters judged between 10% and 90% of the mail spam",
            "RED": "Outlook.com's filters judged more than 90% of the mail spam",
        }[self.filter_result]


def _rows(text: str, name: str) -> Iterable[tuple[int, list[str]]]:
    body = text.lstrip("\ufeff")
    if body.lstrip().startswith("<"):
        raise SndsFormatError(
            f"{name} answered with an HTML page, not CSV (a sign-in page: is the key valid and "
            "Automated Data Access enabled?)"
        )
    for number, row in enumerate(csv.reader(body.splitlines()), 1):
        if not row or all(not cell.strip() for cell in row):
            continue
        yield number, [cell.strip() for cell in row]


def _address(cell: str, name: str, number: int) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(cell)
    except ValueError:
        raise SndsFormatError(
            f"{name} line {number}: {cell[:40]!r} is not an IPv4 address"
        ) from None


def parse_ip_status(text: str) -> list[IpStatus]:
    """The rows of ipStatus.aspx; an empty body is no row (nothing blocked)."""
    out = []
    for number, row in _rows(text, "ipStatus"):
        if len(row) < 3:
            raise SndsFormatError(f"ipStatus line {number}: {len(row)} field(s), expected 4")
        first, last = _address(row[0], "ipStatus", number), _address(row[1], "ipStatus", number)
        answer = row[2].lower()
        if answer not in ("yes", "no") or last < first:
            raise SndsFormatError(
                f"ipStatus line {number}: expected FIRST,LAST,Yes|No,REASON with FIRST ≤ LAST"
            )
        out.append(IpStatus(first, last, answer == "yes", ",".join(row[3:]).strip()))
    return out


def _time(cell: str, number: int) -> datetime:
    try:
        return datetime.strptime(cell, _TIME_FORMAT)
    except ValueError:
        raise SndsFormatError(
            f"data line {number}: {cell[:40]!r} is not a time such as '9/29/2020 9:00 PM'"
        ) from None


def parse_data(text: str) -> list[DataRow]:
    """The rows of data.aspx; an empty body is no row (no day with enough traffic)."""
    out = []
    for number, row in _rows(text, "data"):
        if len(row) < _MIN_DATA_FIELDS:
            raise SndsFormatError(
                f"data line {number}: {len(row)} field(s), expected {len(_DATA_FIELDS)}"
            )
        # a comment with a comma in it spills over: it is joined back; missing samples are ""
        cells = [*row[: len(_DATA_FIELDS) - 1], ",".join(row[len(_DATA_FIELDS) - 1 :])]
        cells += [""] * (len(_DATA_FIELDS) - len(cells))
        colour = cells[6].upper()
        if colour not in _COLOURS:
            raise SndsFormatError(f"data line {number}: filter result {cells[6][:20]!r} is not "
                                  "GREEN, YELLOW or RED")  # fmt: skip
        for index in (3, 4, 5, 10):
            if not cells[index].isdigit():
                name, value = _DATA_FIELDS[index], cells[index][:20]
                raise SndsFormatError(f"data line {number}: {name} {value!r} is not a count")
        out.append(
            DataRow(
                ip=_address(cells[0], "data", number),
                start=_time(cells[1], number),
                end=_time(cells[2], number),
                filter_result=colour,
                trap_hits=int(cells[10]),
                fields=tuple((k, v) for k, v in zip(_DATA_FIELDS[1:], cells[1:], strict=True) if v),
            )
        )
    return out


def _network(target: str) -> ipaddress.IPv4Network | None:
    """A target SNDS can know: an IPv4 address or block (SNDS has no IPv6, no domains)."""
    try:
        network = ipaddress.ip_network(target, strict=False)
    except ValueError:
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None


def judge_snds(
    statuses: Sequence[IpStatus],
    rows: Sequence[DataRow],
    targets: Sequence[str],
    *,
    fetched: datetime,
) -> SourceResult:
    """What the two files say about our targets: a blocked range that covers one is a listing;
    each data row of one of our IPs is that day's reputation; a target in neither is unknown."""
    listings: dict[str, SourceListing] = {}
    reputation: dict[tuple[str, object], ReputationRecord] = {}
    unknown: list[str] = []
    checked: list[str] = []
    for target in dict.fromkeys(targets):
        network = _network(target)
        if network is None:
            continue
        checked.append(target)
        covering = [s for s in statuses if s.overlaps(network)]
        mine = [r for r in rows if r.ip in network]
        for status in covering:
            if status.blocked and target not in listings:
                listings[target] = SourceListing(
                    target=target, list=LIST, provider=PROVIDER,
                    reason=status.reason or "blocked (SNDS gives no reason)",
                    delist_url=DELIST_URL, detail=f"blocked range {status.first}-{status.last}",
                    receiver=RECEIVER,
                )  # fmt: skip
        for row in mine:  # an IP inside two targets (an address and its block) counts once
            reputation[(str(row.ip), row.end.date())] = ReputationRecord(
                source=SOURCE, subject=str(row.ip), day=row.end.date(), rating=row.rating,
                raw=row.filter_result, figures=row.fields, note=row.note,
            )  # fmt: skip
        if not covering and not mine:
            unknown.append(target)
    return SourceResult(
        source=SOURCE,
        fetched=fetched,
        listings=tuple(listings.values()),
        reputation=tuple(sorted(reputation.values(), key=lambda r: (r.subject, r.day))),
        unknown=tuple(unknown),
        checked=tuple(checked),
        unknown_hint=(
            "SNDS has no data for it (not registered, or under 100 messages a day to "
            f"Outlook.com): register it at {SIGNUP_URL}"
        ),
    )
