"""Mail logs (Postfix, Exim) → who sent how much, hour by hour: per SASL user, per client, the
outbound volume and its spikes, the remote rejections and how many name a blocklist — the
compromised-account and "why are we listed" signals.

`analyse_log` is pure over lines (`loglines` reads each into an event); `log_files`,
`read_log_lines` and `analyse_log_files` are the file adapters (rotated and gzip-compressed files
included, oldest first). Hours are the log's own wall-clock hours; syslog lines carry no year, so
it comes from `reference`.
"""

from __future__ import annotations

import enum
import functools
import gzip
import re
import statistics
import zlib
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict, Unpack

from blmonitor.bounces.attribution import attribute, attribute_record
from blmonitor.bounces.logs import parse_log_line
from blmonitor.bounces.models import BounceVerdict
from blmonitor.bounces.rules import Rules, embedded_rules
from blmonitor.causes.loglines import LineEvent, LineKind, is_loopback, line_time, parse_line_event
from blmonitor.dnsbl.catalog import Catalog, embedded_catalog
from blmonitor.errors import BlmonitorError

__all__ = [
    "FindingKind",
    "HourVolume",
    "LogError",
    "LogFinding",
    "LogOptions",
    "LogReport",
    "LogThresholds",
    "SenderHour",
    "analyse_log",
    "analyse_log_files",
    "log_files",
    "log_report_json",
    "read_log_lines",
    "render_log_report",
]


class LogError(BlmonitorError):
    """A mail log that cannot be read: missing, unreadable, or a broken compressed file."""


class FindingKind(enum.StrEnum):
    COMPROMISED_ACCOUNT = "compromised-account"  # a SASL user far above its usual hourly volume
    BUSY_CLIENT = "busy-client"  # a client (or local submitter) sending much without a login
    VOLUME_SPIKE = "volume-spike"  # an hour of outbound mail far above the median hour
    BLOCKLISTED = "blocklisted"  # remote rejections that name a blocklist
    REJECTIONS = "rejections"  # a large share of outbound deliveries rejected or deferred


@dataclass(frozen=True, slots=True)
class LogThresholds:
    """When a number becomes a finding. "Median" is over the other hours of the log."""

    user_min_messages: int = 100  # a SASL user's messages in one hour…
    user_min_domains: int = 20  # …to at least this many recipient domains…
    spike_factor: float = 10.0  # …and this many times its median hour (also for volume)
    client_min_messages: int = 100  # the same for messages from a client without a login
    client_min_domains: int = 20
    volume_min: int = 200  # outbound recipients in one hour before it can be a spike
    blocklist_min: int = 1  # rejections naming a blocklist
    rejection_min_share: float = 0.2  # rejected share of remote delivery attempts…
    rejection_min_attempts: int = 50  # …out of at least this many


class LogOptions(TypedDict, total=False):
    """`analyse_log`'s options that `analyse_log_files` passes on as they are."""

    since: datetime | None
    local_domains: Collection[str]
    rules: Rules | None
    catalog: Catalog | None
    thresholds: LogThresholds | None


@dataclass(frozen=True, slots=True)
class SenderHour:
    """One sender (a SASL user or a client) in one hour."""

    hour: datetime
    sender: str  # the SASL user; for clients the IP address, or "local (uid 33)"
    messages: int
    recipients: int
    domains: int
    authenticated: int = 0  # of the messages, those that came with a SASL login (clients)


@dataclass(frozen=True, slots=True)
class HourVolume:
    hour: datetime
    messages: int = 0  # accepted (from SMTP, or local submission)
    outbound: int = 0  # recipients first tried at a remote host in this hour
    attempts: int = 0  # remote delivery attempts (each status line; retries count again)
    rejected: int = 0  # of the attempts: bounced or deferred
    blocklisted: int = 0  # of the rejections: naming a blocklist
    bounces: int = 0  # outbound recipients of null-sender messages (our own bounces)


@dataclass(frozen=True, slots=True)
class LogFinding:
    kind: FindingKind
    message: str  # one line for a person, naming the evidence
    subject: str = ""  # the user or client, or "" for the whole server
    hour: datetime | None = None
    count: int = 0  # the number the finding is about (messages, recipients, rejections)


@dataclass(frozen=True, slots=True)
class LogReport:
    lines: int  # lines read (in the window)
    first: datetime | None
    last: datetime | None
    hours: tuple[HourVolume, ...]  # every hour from first to last, quiet hours included
    users: tuple[SenderHour, ...]  # per hour and SASL user, in time order
    clients: tuple[SenderHour, ...]  # per hour and client
    attempts: int = 0
    rejected: int = 0
    blocklisted: int = 0
    reputation: int = 0  # rejections for reputation without a named list
    lists: tuple[tuple[str, int], ...] = ()  # the blocklists named, most rejections first
    findings: tuple[LogFinding, ...] = ()
    undated: int = 0  # mail lines skipped for want of a date (syslog lines without `reference`)


# --- events → counts ----------------------------------------------------------------------------


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower() if "@" in address else ""


@dataclass
class _Bucket:
    messages: int = 0
    authenticated: int = 0
    recipients: int = 0
    domains: set[str] = field(default_factory=set)


@dataclass
class _Origin:
    hour: datetime
    user: str
    client: str


@dataclass
class _State:
    local: frozenset[str]
    rules: Rules
    catalog: Catalog
    hours: dict[datetime, Counter[str]] = field(default_factory=dict)  # HourVolume's fields
    users: dict[tuple[datetime, str], _Bucket] = field(default_factory=lambda: defaultdict(_Bucket))
    clients: dict[tuple[datetime, str], _Bucket] = field(
        default_factory=lambda: defaultdict(_Bucket)
    )
    origins: dict[str, _Origin] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    lists: Counter[str] = field(default_factory=Counter)
    reputation: int = 0

    def bump(self, hour: datetime, **counts: int) -> None:
        volume = self.hours.get(hour)
        if volume is None:
            volume = self.hours[hour] = Counter()
        volume.update(counts)


def _classify(state: _State, line: str, event: LineEvent) -> bool:
    """Whether a rejected delivery line names a blocklist (and note which one)."""
    record = parse_log_line(line)
    if record is not None:
        found = attribute_record(record, rules=state.rules, catalog=state.catalog)
    else:
        found = attribute(event.text, rules=state.rules, catalog=state.catalog)
    if found.verdict is BounceVerdict.LISTED:
        state.lists[found.zone or found.list or found.provider or "unnamed list"] += 1
        return True
    if found.verdict is BounceVerdict.REPUTATION:
        state.reputation += 1
    return False


def _apply(state: _State, hour: datetime, line: str, event: LineEvent) -> None:
    qid = event.queue_id
    if event.kind is LineKind.ARRIVAL:
        if event.sender is not None:
            state.senders[qid] = event.sender
        if not event.client:
            return
        state.origins[qid] = _Origin(hour, event.user, event.client)
        state.bump(hour, messages=1)
        if event.user:
            state.users[(hour, event.user)].messages += 1
        bucket = state.clients[(hour, event.client)]
        bucket.messages += 1
        bucket.authenticated += bool(event.user)
    elif event.kind is LineKind.SENDER:
        state.senders[qid] = event.sender or ""
    elif event.kind is LineKind.REMOVED:
        state.origins.pop(qid, None)
        state.senders.pop(qid, None)
        state.seen.pop(qid, None)
    else:
        _delivery(state, hour, line, event)


def _delivery(state: _State, hour: datetime, line: str, event: LineEvent) -> None:
    rcpt = event.recipient.lower()
    first = rcpt not in state.seen[event.queue_id]
    state.seen[event.queue_id].add(rcpt)
    domain = _domain(rcpt)
    if first and (origin := state.origins.get(event.queue_id)) is not None:
        outside = domain and domain not in state.local
        keys = [(state.clients, origin.client)] + ([(state.users, origin.user)] * bool(origin.user))
        for table, who in keys:
            bucket = table[(origin.hour, who)]
            bucket.recipients += 1
            if outside:
                bucket.domains.add(domain)
    if not event.remote or event.status not in ("sent", "bounced", "deferred"):
        return
    rejected = event.status != "sent"
    listed = rejected and _classify(state, line, event)
    bounce = state.senders.get(event.queue_id) == ""
    state.bump(hour, attempts=1, rejected=int(rejected), blocklisted=int(listed),
               outbound=int(first), bounces=int(first and bounce))  # fmt: skip


# --- counts → findings --------------------------------------------------------------------------


def _median_of_others(
    values: dict[datetime, int], hours: Sequence[datetime], hour: datetime
) -> float:
    others = [values.get(h, 0) for h in hours if h != hour]
    return float(statistics.median(others)) if others else 0.0


def _num(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _at(hour: datetime) -> str:
    return f"{hour:%Y-%m-%d %H}:00"


def _sender_findings(
    rows: Sequence[SenderHour],
    hours: Sequence[datetime],
    *,
    clients: bool,
    limits: LogThresholds,
) -> list[LogFinding]:
    by_sender: dict[str, list[SenderHour]] = defaultdict(list)
    for row in rows:
        by_sender[row.sender].append(row)
    found: list[LogFinding] = []
    factor = limits.spike_factor
    least, domains = (
        (limits.client_min_messages, limits.client_min_domains)
        if clients
        else (limits.user_min_messages, limits.user_min_domains)
    )
    for sender, mine in by_sender.items():
        if clients and is_loopback(sender):
            continue  # a content filter's re-injection, or mail the server sends itself
        count = {r.hour: r.messages - (r.authenticated if clients else 0) for r in mine}
        worst: tuple[SenderHour, float] | None = None
        for row in mine:
            n = count[row.hour]
            median = _median_of_others(count, hours, row.hour)
            busy = n >= least and row.domains >= domains and n >= factor * median
            if busy and (worst is None or n > count[worst[0].hour]):
                worst = (row, median)
        if worst is None:
            continue
        row, median = worst
        n = count[row.hour]
        when = f"in one hour ({_at(row.hour)}; median {_num(median)}/h)"
        if not clients:
            text = (f"sasl user {sender} sent {n:,} messages to {row.domains:,} domains {when}:"
                    " compromised account?")  # fmt: skip
            kind = FindingKind.COMPROMISED_ACCOUNT
        elif sender.startswith("local"):
            who = sender.replace("local", "local submission", 1)
            text = (f"{who} sent {n:,} messages to {row.domains:,} domains {when}:"
                    " a compromised web script or account?")  # fmt: skip
            kind = FindingKind.BUSY_CLIENT
        else:
            text = (f"client {sender} sent {n:,} messages without authentication to"
                    f" {row.domains:,} domains {when}: an infected machine in mynetworks,"
                    " or an open relay?")  # fmt: skip
            kind = FindingKind.BUSY_CLIENT
        found.append(LogFinding(kind, text, sender, row.hour, n))
    return sorted(found, key=lambda f: -f.count)


def _volume_finding(volumes: Sequence[HourVolume], limits: LogThresholds) -> list[LogFinding]:
    outbound = {v.hour: v.outbound for v in volumes}
    hours = [v.hour for v in volumes]
    spikes: list[tuple[HourVolume, float]] = []
    for v in volumes:
        median = _median_of_others(outbound, hours, v.hour)
        if v.outbound >= limits.volume_min and v.outbound >= limits.spike_factor * median:
            spikes.append((v, median))
    if not spikes:
        return []
    v, median = max(spikes, key=lambda s: s[0].outbound)
    times = f"{v.outbound / median:,.0f}× the median of {_num(median)}/h" if median else (
        "the median hour sends none")  # fmt: skip
    more = f" ({len(spikes)} such hours)" if len(spikes) > 1 else ""
    text = (f"outbound volume spike: {v.outbound:,} recipients in one hour ({_at(v.hour)}),"
            f" {times}{more}")  # fmt: skip
    return [LogFinding(FindingKind.VOLUME_SPIKE, text, "", v.hour, v.outbound)]


def _rejection_findings(
    attempts: int, rejected: int, blocklisted: int, reputation: int,
    lists: Sequence[tuple[str, int]], limits: LogThresholds,
) -> list[LogFinding]:  # fmt: skip
    found: list[LogFinding] = []
    if blocklisted and blocklisted >= limits.blocklist_min:
        named = ", ".join(f"{name} ({n:,})" for name, n in lists[:5])
        text = (f"{blocklisted:,} of {rejected:,} remote rejections name a blocklist: {named}:"
                " we are listed there")  # fmt: skip
        found.append(LogFinding(FindingKind.BLOCKLISTED, text, count=blocklisted))
    if (
        attempts >= limits.rejection_min_attempts
        and rejected / attempts >= limits.rejection_min_share
    ):
        why = [f"{blocklisted:,} name a blocklist"] * bool(blocklisted) + [
            f"{reputation:,} are reputation blocks"] * bool(reputation)  # fmt: skip
        detail = f" ({'; '.join(why)})" if why else ""
        text = (f"{rejected:,} of {attempts:,} remote delivery attempts"
                f" ({rejected / attempts:.0%}) were rejected or deferred{detail}")  # fmt: skip
        found.append(LogFinding(FindingKind.REJECTIONS, text, count=rejected))
    return found


def _hours_between(first: datetime, last: datetime) -> list[datetime]:
    out, hour = [], first
    while hour <= last:
        out.append(hour)
        hour += timedelta(hours=1)
    return out


def analyse_log(
    lines: Iterable[str],
    *,
    reference: datetime | None = None,
    since: datetime | None = None,
    local_domains: Collection[str] = (),
    rules: Rules | None = None,
    catalog: Catalog | None = None,
    thresholds: LogThresholds | None = None,
) -> LogReport:
    """Count a Postfix or Exim log (lines in time order) and name what stands out.

    `reference` is when the log ends (the newest file's modification time): syslog dates get
    its year. Lines before `since` are skipped. Recipients in `local_domains` do not count as
    domains reached. `rules`/`catalog` default to the embedded bounce rules and zone catalog.
    """
    limits = thresholds or LogThresholds()
    state = _State(
        local=frozenset(d.lower().rstrip(".") for d in local_domains),
        rules=rules or embedded_rules(),
        catalog=catalog or embedded_catalog(),
    )
    count = undated = 0
    first: datetime | None = None
    last: datetime | None = None
    since_naive = since.replace(tzinfo=None) if since is not None else None
    for line in lines:
        if len(line) > 8192:
            continue
        event = parse_line_event(line)
        if event is None:
            continue
        when = line_time(line, reference)
        if when is None:
            undated += 1
            continue
        if since_naive is not None and when < since_naive:
            continue
        count += 1
        first = first or when
        last = max(last or when, when)
        _apply(state, when.replace(minute=0, second=0, microsecond=0), line, event)
    hours = _hours_between(_hour(first), _hour(last)) if first and last else []
    volumes = tuple(HourVolume(h, **state.hours.get(h, Counter())) for h in hours)

    def rows(table: dict[tuple[datetime, str], _Bucket]) -> tuple[SenderHour, ...]:
        return tuple(
            SenderHour(hour, who, b.messages, b.recipients, len(b.domains), b.authenticated)
            for (hour, who), b in sorted(table.items())
        )

    users, clients = rows(state.users), rows(state.clients)
    attempts = sum(v.attempts for v in volumes)
    rejected = sum(v.rejected for v in volumes)
    blocklisted = sum(v.blocklisted for v in volumes)
    lists = tuple(state.lists.most_common())
    findings = [
        *_sender_findings(users, hours, clients=False, limits=limits),
        *_sender_findings(clients, hours, clients=True, limits=limits),
        *_volume_finding(volumes, limits),
        *_rejection_findings(attempts, rejected, blocklisted, state.reputation, lists, limits),
    ]
    return LogReport(
        lines=count, first=first, last=last, hours=volumes, users=users, clients=clients,
        attempts=attempts, rejected=rejected, blocklisted=blocklisted,
        reputation=state.reputation, lists=lists, findings=tuple(findings), undated=undated,
    )  # fmt: skip


@functools.lru_cache(maxsize=4096)
def _hour(when: datetime) -> datetime:
    return when.replace(minute=0, second=0, microsecond=0)


# --- rendering ----------------------------------------------------------------------------------


def render_log_report(report: LogReport, *, top: int = 5) -> str:
    """A few lines for a person: the window, the totals, the busiest senders, the findings."""
    if report.first is None or report.last is None:
        return "LOG: no mail lines found\n"
    messages = sum(v.messages for v in report.hours)
    outbound = sum(v.outbound for v in report.hours)
    share = f" ({report.rejected / report.attempts:.0%})" if report.attempts else ""
    lines = [
        f"LOG: {_at(_hour(report.first))} – {_at(_hour(report.last))}: {messages:,} messages"
        f" accepted, {outbound:,} recipients sent out; {report.rejected:,} of"
        f" {report.attempts:,} remote attempts rejected or deferred{share},"
        f" {report.blocklisted:,} naming a blocklist"
    ]
    for title, rows in (("busiest SASL users", report.users), ("busiest clients", report.clients)):
        peak: dict[str, SenderHour] = {}
        for row in rows:
            if row.sender not in peak or row.messages > peak[row.sender].messages:
                peak[row.sender] = row
        best = sorted(peak.values(), key=lambda r: -r.messages)[:top]
        if best:
            lines.append(f"  {title} (peak hour): " + ", ".join(
                f"{r.sender} {r.messages:,}/h to {r.domains:,} domains" for r in best))  # fmt: skip
    lines += [f"  {f.kind.value}: {f.message}" for f in report.findings]
    return "\n".join(lines) + "\n"


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def log_report_json(report: LogReport) -> dict[str, Any]:
    def sender(row: SenderHour) -> dict[str, Any]:
        return {"hour": row.hour.isoformat(), "sender": row.sender, "messages": row.messages,
                "recipients": row.recipients, "domains": row.domains,
                "authenticated": row.authenticated}  # fmt: skip

    return {
        "lines": report.lines,
        "first": _iso(report.first),
        "last": _iso(report.last),
        "attempts": report.attempts,
        "rejected": report.rejected,
        "blocklisted": report.blocklisted,
        "reputation": report.reputation,
        "lists": [{"list": name, "rejections": n} for name, n in report.lists],
        "hours": [{**asdict(v), "hour": v.hour.isoformat()} for v in report.hours],
        "users": [sender(r) for r in report.users],
        "clients": [sender(r) for r in report.clients],
        "findings": [
            {
                "kind": f.kind.value,
                "message": f.message,
                "subject": f.subject,
                "hour": _iso(f.hour),
                "count": f.count,
            }
            for f in report.findings
        ],
        "undated": report.undated,
    }


# --- adapters (files) ---------------------------------------------------------------------------

_ROTATED = re.compile(r"^\.(?:(?P<n>\d+)|-?(?P<date>\d{8}(?:\d{2})?))(?:\.gz)?$")


def log_files(path: Path) -> list[Path]:
    """`path` and its rotations (mail.log.1, mail.log.2.gz, mail.log-20241105.gz), oldest first."""
    rotated: list[tuple[tuple[int, int], Path]] = []
    if path.parent.is_dir():
        for sibling in path.parent.iterdir():
            if not sibling.name.startswith(path.name) or sibling == path:
                continue
            rest = sibling.name[len(path.name) :]
            rest = "." + rest[1:] if rest.startswith("-") else rest
            m = _ROTATED.match(rest)
            if m is None:
                continue
            # dated rotations (older than any numbered one we keep) by date, then .N descending
            key = (0, int(m["date"])) if m["date"] else (1, -int(m["n"]))
            rotated.append((key, sibling))
    files = [p for _, p in sorted(rotated)]
    if path.exists():
        files.append(path)
    if not files:
        raise LogError(f"{path}: no such log file (nor any rotation of it)")
    return files


def read_log_lines(paths: Sequence[Path]) -> Iterator[str]:
    """The lines of each file in turn; .gz files are decompressed."""
    for path in paths:
        try:
            if path.suffix == ".gz":
                with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                    yield from handle
            else:
                with path.open(encoding="utf-8", errors="replace") as handle:
                    yield from handle
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise LogError(f"{path}: not a readable gzip file ({exc})") from exc
        except OSError as exc:
            raise LogError(f"{path}: cannot read it: {exc.strerror or exc}") from exc


def analyse_log_files(
    paths: Path | Sequence[Path],
    *,
    reference: datetime | None = None,
    **options: Unpack[LogOptions],
) -> LogReport:
    """`analyse_log` over a log file and its rotations (or the files given, in that order);
    `reference` defaults to the newest file's modification time."""
    files = log_files(paths) if isinstance(paths, Path) else list(paths)
    if reference is None:
        try:
            reference = datetime.fromtimestamp(max(p.stat().st_mtime for p in files))
        except OSError as exc:
            raise LogError(f"cannot read the mail log: {exc.strerror or exc}") from exc
    return analyse_log(read_log_lines(files), reference=reference, **options)
