"""The all-clear digest and the heartbeat's memory [pure]: when a digest is due, and what it says.

A monitor that only speaks on change is silent when all is well, and silent when it is dead:
the digest says, once a day or a week, that it is alive and what it saw — all clear, or what
is still listed and since when — so silence never has to be read as good news.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from blmonitor.models import Severity
from blmonitor.monitor.notify import (
    Message,
    format_duration,
    format_time,
    iso_time,
    render_payload,
)
from blmonitor.monitor.state import MonitorState

DIGEST_KIND = "digest"
DIGEST_CLEAR_KIND = "digest-all-clear"  # good news: sent as success (notify.ENDINGS)


@dataclass(frozen=True, slots=True)
class NoticeMemory:
    """What the digest and the heartbeat remember between runs."""

    digest_since: datetime | None = None  # the start of the period the next digest covers
    heartbeat_error: str = ""  # the last failed ping's error, logged once however often


def digest_due(memory: NoticeMemory, *, now: datetime, period: timedelta) -> bool:
    """Whether a run that saw, at `now`, sends the digest: a whole period has passed since the
    last one. The first period starts at the first such run (`start_digest`), so enabling the
    digest never sends one at once beside the first run's news."""
    return memory.digest_since is not None and now - memory.digest_since >= period


def start_digest(memory: NoticeMemory, *, now: datetime) -> NoticeMemory:
    """The memory once a digest went out at `now`, or once the first period begins."""
    return NoticeMemory(digest_since=now, heartbeat_error=memory.heartbeat_error)


def render_digest(
    state: MonitorState,
    *,
    name: str,
    since: datetime,
    now: datetime,
    runs: int,
    blind_runs: int,
    host: str,
    severity: Severity,
    title_prefix: str = "[blmonitor]",
) -> Message:
    """The `name` ("daily", "weekly") digest of the period `since` → `now` from the state a run
    that saw left: all clear, or what is still listed (with since), and unusable zones."""
    listed = sorted(
        (pair for pair in state.pairs.values() if pair.listed),
        key=lambda pair: (pair.since or now, pair.target, pair.zone),
    )
    rows = [(p.target, p.label or p.zone, p.since) for p in listed]
    rows += [(b.target or "?", b.label, b.since) for b in state.bounces.values()]
    rows += [(s.target, s.zone, s.since) for s in state.sources.values()]  # SNDS blocks
    sick = sorted((z for z in state.zones.values() if not z.usable), key=lambda z: z.zone)
    clear = not rows
    lines = [f"{name} digest, {format_time(since)} → {format_time(now)}"]
    if clear:
        lines.append("all clear: no listing" + ("." if sick else ", every zone usable."))
    else:
        lines.append(f"still listed ({len(rows)}):")
        lines += [f"  {target} on {zone}{_since(began, now)}" for target, zone, began in rows]
    if sick:
        lines.append(f"zones unusable ({len(sick)}):")
        lines += [f"  {z.label or z.zone}: {z.health}{_since(z.since, now)}" for z in sick]
    lines.append(f"runs: {runs} ({blind_runs} blind: nothing checked)")
    lines.append(
        "next step: no action."
        if clear and not sick and not blind_runs
        else "next step: run `blmonitor status` for what to do, `blmonitor history` for when."
    )
    body = "\n".join([*lines, "", f"-- \nblmonitor on {host}"])
    summary = "all clear" if clear else f"still listed on {len(rows)}"
    title = f"{title_prefix} {host}: {name} digest: {summary}"
    kinds = (DIGEST_CLEAR_KIND if clear else DIGEST_KIND,)
    data = {
        "period": name, "from": iso_time(since), "to": iso_time(now), "runs": runs,
        "blind_runs": blind_runs,
        "listed": [{"target": t, "zone": z, "since": iso_time(s)} for t, z, s in rows],
        "zones_unusable": [
            {"zone": z.label or z.zone, "health": str(z.health), "since": iso_time(z.since)}
            for z in sick
        ],
    }  # fmt: skip
    payload = render_payload(host, kinds, severity, all_clear=clear, digest=data)
    return Message(title, body, severity, kinds, payload)


def _since(began: datetime | None, now: datetime) -> str:
    if began is None:
        return ""
    return f" since {format_time(began)} (for {format_duration(now - began)})"
