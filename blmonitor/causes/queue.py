"""The mail queue: what is in it (Postfix `postqueue -j`, Exim `exim -bp`), what it means (an NDR
attack, a spam run, growth) and the exact commands that clean it up.

Parsing, verdicts and command building are pure; `read_postfix_queue`, `read_exim_queue` and
`run_removal` are the thin subprocess adapters at the end. Nothing is removed by default:
the caller picks the queue ids (by sender, or those of a finding) and runs the commands.
"""

from __future__ import annotations

import enum
import json
import re
import shlex
import subprocess
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from blmonitor.errors import BlmonitorError

__all__ = [
    "Command",
    "FindingKind",
    "Mta",
    "QueueError",
    "QueueFinding",
    "QueueGrowth",
    "QueueReport",
    "QueueSnapshot",
    "QueuedMessage",
    "Removal",
    "analyse_queue",
    "growth_finding",
    "parse_exim_queue",
    "parse_postqueue_json",
    "purge_deferred_command",
    "queue_growth",
    "queue_report_json",
    "read_exim_queue",
    "read_postfix_queue",
    "removal_commands",
    "render_queue_report",
    "run_removal",
    "select_queue_ids",
]


class QueueError(BlmonitorError):
    """The queue cannot be read or changed: a missing command, bad output, a refused removal."""


class Mta(enum.StrEnum):
    POSTFIX = "postfix"
    EXIM = "exim"


class FindingKind(enum.StrEnum):
    NDR_ATTACK = "ndr-attack"  # bounces to many outside addresses: backscatter
    SPAM_RUN = "spam-run"  # one sender to many domains: a compromised account or script
    GROWTH = "growth"  # the queue grows fast


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    queue_id: str
    sender: str  # "" for the null sender (a bounce)
    recipients: tuple[str, ...]  # those not yet delivered
    size: int = 0  # bytes
    arrival: datetime | None = None  # aware (UTC)
    queue_name: str = ""  # Postfix: incoming, active, deferred, hold, maildrop
    reasons: tuple[str, ...] = ()  # why delivery was delayed, per recipient when known
    frozen: bool = False  # Exim

    @property
    def bounce(self) -> bool:
        return is_bounce_sender(self.sender)


@dataclass(frozen=True, slots=True)
class QueueFinding:
    kind: FindingKind
    message: str  # one line for a person, naming the evidence
    sender: str = ""  # "" for bounces, else the sender of a spam run
    queue_ids: tuple[str, ...] = ()  # the messages the finding is about (what a clean-up removes)
    messages: int = 0
    recipients: int = 0
    domains: int = 0


@dataclass(frozen=True, slots=True)
class QueueReport:
    messages: int
    recipients: int
    size: int
    bounces: int
    oldest: timedelta | None
    ages: tuple[tuple[str, int], ...]  # ("< 1 h", n), ("1–6 h", n)… every bucket, in order
    queues: tuple[tuple[str, int], ...]  # Postfix queue name (or Exim "frozen") → messages
    senders: tuple[tuple[str, int], ...]  # the busiest senders, most first ("" = null sender)
    findings: tuple[QueueFinding, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    at: datetime
    messages: int


@dataclass(frozen=True, slots=True)
class QueueGrowth:
    earlier: QueueSnapshot
    later: QueueSnapshot
    delta: int
    per_hour: float  # 0.0 when both snapshots have the same time


@dataclass(frozen=True, slots=True)
class Command:
    """One command to run: its argv and what goes on its standard input."""

    argv: tuple[str, ...]
    stdin: str = ""
    ids: tuple[str, ...] = ()  # the queue ids it removes

    def summary(self) -> str:
        """One line for a person: the command, with the count of ids it reads on stdin."""
        if self.stdin:
            return f"{' '.join(self.argv)}  ({len(self.ids):,} queue ids on standard input)"
        return " ".join(self.argv)

    def shell(self) -> str:
        """The command as a shell line a person can paste (ids in a here-document)."""
        line = shlex.join(self.argv)
        return f"{line} <<'EOF'\n{self.stdin}EOF" if self.stdin else line


@dataclass(frozen=True, slots=True)
class Removal:
    removed: tuple[str, ...]  # the queue ids the MTA says it removed
    requested: tuple[str, ...]
    output: str = ""  # what the commands printed, for the record
    error: str = ""  # why the removal stopped early, "" when every command ran

    @property
    def missing(self) -> tuple[str, ...]:
        """Requested but not reported removed: already delivered or expired meanwhile."""
        gone = set(self.removed)
        return tuple(i for i in self.requested if i not in gone)


# --- parsing ----------------------------------------------------------------------------------

_POSTFIX_ID = re.compile(r"[0-9A-Za-z]{5,20}")
_EXIM_ID = re.compile(r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}")
_EXIM_HEAD = re.compile(
    r"^\s*(?P<age>\d+)(?P<unit>[smhdw])\s+(?P<size>\d+(?:\.\d+)?)(?P<mult>[KMG]?)\s+"
    r"(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\s+"
    r"(?:\([^)]*\)\s+)?<(?P<sender>[^>]*)>(?P<rest>.*)$"
)
_EXIM_RCPT = re.compile(r"^\s+(?:(?P<mark>\+?D)\s+)?(?P<addr>\S+)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def is_bounce_sender(sender: str) -> bool:
    """The null sender, however a tool writes it: "", "<>", MAILER-DAEMON."""
    s = sender.strip().strip("<>").lower()
    return s == "" or s.split("@", 1)[0] == "mailer-daemon"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower() if "@" in address else ""


def parse_postqueue_json(text: str) -> tuple[QueuedMessage, ...]:
    """`postqueue -j` output (one JSON object a line) → messages; a bad line is a QueueError."""
    out: list[QueuedMessage] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(_postfix_message(raw))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise QueueError(f"postqueue -j: line {number} is not a queue entry: {exc}") from exc
    return tuple(out)


def _postfix_message(raw: Any) -> QueuedMessage:
    recipients = raw.get("recipients") or []
    arrival = raw.get("arrival_time")
    queue_id = str(raw["queue_id"])
    if not _POSTFIX_ID.fullmatch(queue_id):
        raise ValueError(f"odd queue id {queue_id!r}")
    return QueuedMessage(
        queue_id=queue_id,
        sender=str(raw.get("sender", "")),
        recipients=tuple(str(r["address"]) for r in recipients),
        size=int(raw.get("message_size", 0)),
        arrival=datetime.fromtimestamp(int(arrival), tz=UTC) if arrival is not None else None,
        queue_name=str(raw.get("queue_name", "")),
        reasons=tuple(str(r["delay_reason"]) for r in recipients if r.get("delay_reason")),
    )


def parse_exim_queue(text: str, *, now: datetime) -> tuple[QueuedMessage, ...]:
    """`exim -bp` output → messages; arrival is `now` minus the age Exim prints (rounded)."""
    out: list[QueuedMessage] = []
    head: re.Match[str] | None = None
    rcpts: list[str] = []
    frozen = False

    def flush() -> None:
        if head is None:
            return
        age = timedelta(seconds=int(head["age"]) * _UNITS[head["unit"]])
        out.append(
            QueuedMessage(
                queue_id=head["id"],
                sender=head["sender"],
                recipients=tuple(rcpts),
                size=int(float(head["size"]) * _SIZES[head["mult"]]),
                arrival=now - age,
                queue_name="frozen" if frozen else "",
                frozen=frozen,
            )
        )

    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if m := _EXIM_HEAD.match(line):
            flush()
            head, rcpts, frozen = m, [], "*** frozen ***" in m["rest"]
        elif head is not None and line.strip() == "*** frozen ***":
            frozen = True
        elif head is not None and (r := _EXIM_RCPT.match(line)):
            if not r["mark"]:  # D: delivered already
                rcpts.append(r["addr"])
        else:
            raise QueueError(f"exim -bp: line {number} is not a queue entry: {line.strip()!r}")
    flush()
    return tuple(out)


# --- verdicts -----------------------------------------------------------------------------------

_AGES = (
    ("< 1 h", timedelta(hours=1)),
    ("1–6 h", timedelta(hours=6)),
    ("6–24 h", timedelta(days=1)),
    ("1–3 d", timedelta(days=3)),
    ("> 3 d", timedelta.max),
)


def _span(seconds: float) -> str:
    if seconds < 5400:
        return f"{max(round(seconds / 60), 1)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _outside(address: str, local: frozenset[str]) -> bool:
    return domain_of(address) not in local


def analyse_queue(
    messages: Sequence[QueuedMessage],
    *,
    now: datetime,
    local_domains: Collection[str] = (),
    ndr_min_messages: int = 50,
    ndr_min_share: float = 0.5,
    ndr_min_domains: int = 10,
    spam_min_messages: int = 50,
    spam_min_domains: int = 20,
    top: int = 5,
) -> QueueReport:
    """Size, ages and the two signatures: an NDR attack (bounces to many outside domains) and a
    spam run (one sender to many domains). Recipients in `local_domains` are not "external"."""
    local = frozenset(d.lower().rstrip(".") for d in local_domains)
    ages = Counter[str]()
    oldest: timedelta | None = None
    for m in messages:
        if m.arrival is None:
            continue
        age = max(now - m.arrival, timedelta(0))
        oldest = age if oldest is None else max(oldest, age)
        ages[next(label for label, limit in _AGES if age < limit)] += 1
    bounces = [m for m in messages if m.bounce]
    senders = Counter("" if m.bounce else m.sender.lower() for m in messages)
    findings = [
        *_ndr(messages, bounces, local, ndr_min_messages, ndr_min_share, ndr_min_domains),
        *_spam_runs(messages, local, spam_min_messages, spam_min_domains),
    ]
    return QueueReport(
        messages=len(messages),
        recipients=sum(len(m.recipients) for m in messages),
        size=sum(m.size for m in messages),
        bounces=len(bounces),
        oldest=oldest,
        ages=tuple((label, ages[label]) for label, _ in _AGES),
        queues=tuple(Counter(m.queue_name for m in messages if m.queue_name).most_common()),
        senders=tuple(senders.most_common(top)),
        findings=tuple(findings),
    )


def _ndr(
    messages: Sequence[QueuedMessage],
    bounces: Sequence[QueuedMessage],
    local: frozenset[str],
    min_messages: int,
    min_share: float,
    min_domains: int,
) -> list[QueueFinding]:
    outside = {r.lower() for m in bounces for r in m.recipients if _outside(r, local)}
    domains = {domain_of(r) for r in outside}
    if not (len(bounces) >= min_messages and len(domains) >= min_domains and messages):
        return []
    if len(bounces) / len(messages) < min_share:
        return []
    text = (
        f"{len(bounces):,} of {len(messages):,} messages are bounces (null sender) to"
        f" {len(outside):,} external addresses in {len(domains):,} domains: NDR attack?"
    )
    return [QueueFinding(FindingKind.NDR_ATTACK, text, "", tuple(m.queue_id for m in bounces),
                         len(bounces), len(outside), len(domains))]  # fmt: skip


def _spam_runs(
    messages: Sequence[QueuedMessage], local: frozenset[str], min_messages: int, min_domains: int
) -> list[QueueFinding]:
    by_sender: dict[str, list[QueuedMessage]] = defaultdict(list)
    for m in messages:
        if not m.bounce:
            by_sender[m.sender.lower()].append(m)
    found: list[QueueFinding] = []
    for sender, mine in by_sender.items():
        outside = {r.lower() for m in mine for r in m.recipients if _outside(r, local)}
        domains = {domain_of(r) for r in outside}
        if len(mine) < min_messages or len(domains) < min_domains:
            continue
        times = [m.arrival for m in mine if m.arrival is not None]
        within = (
            f", queued within {_span((max(times) - min(times)).total_seconds())}" if times else ""
        )
        own = bool(local) and domain_of(sender) in local
        who = f"the local sender {sender}" if own else f"the sender {sender}"
        why = "spam run from this account?" if own or not local else (
            "spam relayed for an outside sender: open relay or a compromised account?")  # fmt: skip
        text = (f"{len(mine):,} messages from {who} to {len(outside):,} addresses in"
                f" {len(domains):,} domains{within}: {why}")  # fmt: skip
        found.append(QueueFinding(FindingKind.SPAM_RUN, text, sender,
                                  tuple(m.queue_id for m in mine), len(mine), len(outside),
                                  len(domains)))  # fmt: skip
    return sorted(found, key=lambda f: -f.messages)


def queue_growth(earlier: QueueSnapshot, later: QueueSnapshot) -> QueueGrowth:
    """How fast the queue grew between two snapshots (messages per hour; negative: shrank)."""
    seconds = (later.at - earlier.at).total_seconds()
    delta = later.messages - earlier.messages
    per_hour = delta * 3600 / seconds if seconds > 0 else 0.0
    return QueueGrowth(earlier, later, delta, per_hour)


def growth_finding(
    growth: QueueGrowth, *, min_per_hour: float = 500.0, min_messages: int = 1000
) -> QueueFinding | None:
    """A finding when the queue grows by `min_per_hour` and holds at least `min_messages`."""
    if growth.per_hour < min_per_hour or growth.later.messages < min_messages:
        return None
    seconds = (growth.later.at - growth.earlier.at).total_seconds()
    text = (f"the queue grew from {growth.earlier.messages:,} to {growth.later.messages:,}"
            f" messages in {_span(seconds)} (+{growth.per_hour:,.0f}/h)")  # fmt: skip
    return QueueFinding(FindingKind.GROWTH, text, messages=growth.later.messages)


# --- clean-up commands (pure) -------------------------------------------------------------------


def select_queue_ids(
    messages: Iterable[QueuedMessage],
    *,
    sender: str | None = None,
    finding: QueueFinding | None = None,
) -> tuple[str, ...]:
    """The queue ids of the messages from `sender` ("" or "<>" for bounces), or of a finding."""
    if (sender is None) == (finding is None):
        raise ValueError("select by sender or by finding, one of the two")
    if finding is not None:
        wanted = set(finding.queue_ids)
        return tuple(m.queue_id for m in messages if m.queue_id in wanted)
    assert sender is not None
    if is_bounce_sender(sender):
        return tuple(m.queue_id for m in messages if m.bounce)
    want = sender.strip().strip("<>").lower()
    return tuple(m.queue_id for m in messages if not m.bounce and m.sender.lower() == want)


_A_QUEUE_ID = {Mta.POSTFIX: "a Postfix queue id", Mta.EXIM: "an Exim queue id"}


def _check_ids(mta: Mta, queue_ids: Sequence[str]) -> None:
    pattern = _POSTFIX_ID if mta is Mta.POSTFIX else _EXIM_ID
    for queue_id in queue_ids:
        # "ALL" is postsuper's word for every message: never let it pass for an id
        if not pattern.fullmatch(queue_id) or queue_id.upper() == "ALL":
            raise QueueError(f"{queue_id!r} is not {_A_QUEUE_ID[mta]}: nothing removed")


def removal_commands(
    mta: Mta | str,
    queue_ids: Sequence[str],
    *,
    config_dir: str | Path | None = None,
    exim: str = "exim",
    chunk: int = 500,
) -> tuple[Command, ...]:
    """The commands that remove exactly `queue_ids`: Postfix `postsuper -d -` with the ids on
    stdin; Exim `exim -Mrm id…` (`chunk` ids a command). No ids: no command."""
    mta = Mta(mta)
    ids = tuple(dict.fromkeys(queue_ids))  # once each, order kept
    _check_ids(mta, ids)
    if not ids:
        return ()
    if mta is Mta.POSTFIX:
        conf = ("-c", str(config_dir)) if config_dir else ()
        return (Command(("postsuper", *conf, "-d", "-"), "".join(f"{i}\n" for i in ids), ids),)
    parts = [ids[i : i + chunk] for i in range(0, len(ids), max(chunk, 1))]
    return tuple(Command((exim, "-Mrm", *part), "", part) for part in parts)


def purge_deferred_command(*, config_dir: str | Path | None = None) -> Command:
    """`postsuper -d ALL deferred`: every deferred message, good mail too. Never a default."""
    conf = ("-c", str(config_dir)) if config_dir else ()
    return Command(("postsuper", *conf, "-d", "ALL", "deferred"))


# --- rendering ----------------------------------------------------------------------------------


def _size(n: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


def render_queue_report(report: QueueReport) -> str:
    """A few lines for a person: size, ages, busiest senders, then each finding."""
    lines = [f"QUEUE: {report.messages:,} messages, {report.recipients:,} recipients,"
             f" {_size(report.size)}; {report.bounces:,} bounces"]  # fmt: skip
    if report.oldest is not None:
        lines.append(f"  oldest {_span(report.oldest.total_seconds())}; by age: "
                     + ", ".join(f"{label} {n:,}" for label, n in report.ages))  # fmt: skip
    if report.queues:
        lines.append("  by queue: " + ", ".join(f"{q} {n:,}" for q, n in report.queues))
    if report.senders:
        lines.append("  busiest senders: "
                     + ", ".join(f"{s or '<>'} {n:,}" for s, n in report.senders))  # fmt: skip
    lines += [f"  {f.kind.value}: {f.message}" for f in report.findings]
    return "\n".join(lines) + "\n"


def queue_report_json(report: QueueReport) -> dict[str, Any]:
    return {
        "messages": report.messages,
        "recipients": report.recipients,
        "size": report.size,
        "bounces": report.bounces,
        "oldest_seconds": int(report.oldest.total_seconds()) if report.oldest else None,
        "ages": dict(report.ages),
        "queues": dict(report.queues),
        "senders": [{"sender": s, "messages": n} for s, n in report.senders],
        "findings": [
            {
                "kind": f.kind.value,
                "message": f.message,
                "sender": f.sender,
                "messages": f.messages,
                "recipients": f.recipients,
                "domains": f.domains,
                "queue_ids": list(f.queue_ids),
            }
            for f in report.findings
        ],
    }


# --- adapters (subprocess) ----------------------------------------------------------------------


def _run(
    argv: Sequence[str], *, stdin: str = "", timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip
    except FileNotFoundError as exc:
        raise QueueError(
            f"{argv[0]}: command not found: is the MTA installed, and on PATH?"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise QueueError(f"{' '.join(argv[:3])}: no result within {timeout:g} s") from exc
    except OSError as exc:
        raise QueueError(f"{argv[0]}: cannot run it: {exc.strerror or exc}") from exc


def _failed(done: subprocess.CompletedProcess[str]) -> str:
    text = (done.stderr or done.stdout or "").strip().splitlines()
    fatal = [line for line in text if "fatal" in line.lower()] or text[-1:]
    return fatal[0].strip() if fatal else f"exit status {done.returncode}"


def read_postfix_queue(
    *,
    config_dir: str | Path | None = None,
    postqueue: str = "postqueue",
    timeout: float = 120.0,
) -> tuple[QueuedMessage, ...]:
    """Run `postqueue [-c DIR] -j` and parse it."""
    argv = [postqueue, *(("-c", str(config_dir)) if config_dir else ()), "-j"]
    done = _run(argv, timeout=timeout)
    if done.returncode != 0:
        hint = "; is Postfix running (postfix status)?" if "showq" in done.stderr else ""
        raise QueueError(f"{' '.join(argv)} failed: {_failed(done)}{hint}")
    return parse_postqueue_json(done.stdout)


def read_exim_queue(
    *, now: datetime | None = None, exim: str = "exim", timeout: float = 120.0
) -> tuple[QueuedMessage, ...]:
    """Run `exim -bp` and parse it."""
    done = _run([exim, "-bp"], timeout=timeout)
    if done.returncode != 0:
        raise QueueError(f"{exim} -bp failed: {_failed(done)}")
    return parse_exim_queue(done.stdout, now=now or datetime.now(UTC))


_REMOVED = (
    re.compile(r"^postsuper: (?P<id>[0-9A-Za-z]+): removed\s*$", re.M),
    re.compile(r"^Message (?P<id>\S+) has been removed", re.M),
)


def run_removal(commands: Sequence[Command], *, timeout: float = 300.0) -> Removal:
    """Run the removal commands; what was removed is read from what the MTA printed.

    Never raises: a command that fails stops the run, and `Removal.error` says why, next to
    what was removed before it (so that it can be recorded either way)."""
    removed: list[str] = []
    output: list[str] = []
    error = ""
    for command in commands:
        try:
            done = _run(command.argv, stdin=command.stdin, timeout=timeout)
        except QueueError as exc:
            error = str(exc)
            break
        text = (done.stdout or "") + (done.stderr or "")
        output.append(text)
        for pattern in _REMOVED:
            removed += [m["id"] for m in pattern.finditer(text)]
        if done.returncode != 0:
            error = f"{command.argv[0]} failed: {_failed(done)}"
            break
    requested = tuple(i for c in commands for i in c.ids)
    return Removal(tuple(dict.fromkeys(removed)), requested, "".join(output), error)
