"""When mail should go through the smart host, and to which receivers: pure, from monitor state.

A confirmed listing at or above `min_severity`, held for `after`, asks for the relay; going back
waits until no such listing has been seen for `revert_after`, so a listing that flaps does not
flip the MTA. With scope=destinations only the receivers that block us are routed: the
provider's own domains for a provider's private list (Microsoft S3150 from bounces, or an SNDS
blocked range → outlook.com, hotmail.com…) and the recipient domains of the bounces that named a
public list.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources

from blmonitor.models import Severity
from blmonitor.monitor.state import MonitorState


@dataclass(frozen=True, slots=True)
class Blocking:
    """One confirmed listing that counts for routing."""

    target: str
    list: str  # the zone label, or the bounce's list id
    provider: str  # "" for a DNS zone
    since: datetime


class Action(enum.StrEnum):
    APPLY = "apply"  # route outbound mail through the smart host
    REVERT = "revert"  # back to direct delivery
    KEEP = "keep"  # leave things as they are


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    blocking: tuple[Blocking, ...] = ()


def blocking(state: MonitorState, *, min_severity: Severity) -> tuple[Blocking, ...]:
    """The confirmed listings (DNS checks, bounce evidence, receivers' data) at or above
    `min_severity`."""
    out = [
        Blocking(p.target, p.label or p.zone, "", p.since)
        for p in state.pairs.values()
        if p.listed and p.since is not None and (p.severity or Severity.WARNING) >= min_severity
    ]
    # a receiver that refused our mail is at least a warning: mail did not arrive
    if min_severity <= Severity.WARNING:
        out += [Blocking(b.target, b.list, b.provider, b.since) for b in state.bounces.values()]
    # a receiver's own data saying it blocks us (SNDS) is critical: its mail does not arrive
    out += [Blocking(s.target, s.zone, s.listing.provider, s.since) for s in state.sources.values()]
    return tuple(sorted(out, key=lambda b: (b.since, b.target, b.list)))


def decide(
    current: tuple[Blocking, ...],
    *,
    now: datetime,
    applied: bool,
    last_listed: datetime | None,
    after: timedelta,
    revert_after: timedelta,
) -> Decision:
    """Whether to route through the relay now, go back to direct delivery, or keep things."""
    if current:
        first = current[0]
        if applied:
            return Decision(Action.KEEP, f"still listed on {first.list}", current)
        if now - first.since >= after:
            return Decision(Action.APPLY, f"{first.target} listed on {first.list}", current)
        return Decision(Action.KEEP, f"listed on {first.list} for less than {after}", current)
    if not applied:
        return Decision(Action.KEEP, "not listed")
    if last_listed is None or now - last_listed >= revert_after:
        return Decision(Action.REVERT, "no listing any more")
    return Decision(Action.KEEP, f"delisted less than {revert_after} ago")


def load_receivers() -> dict[str, tuple[str, ...]]:
    """lists/receivers.toml: each provider's receiving domains, by provider name (lower case)."""
    text = resources.files("blmonitor.lists").joinpath("receivers.toml").read_text()
    data = tomllib.loads(text)
    return {name.lower(): tuple(entry["domains"]) for name, entry in data["provider"].items()}


def destinations(
    current: Iterable[Blocking],
    *,
    receivers: Mapping[str, tuple[str, ...]],
    bounced: Mapping[str, Iterable[str]],
) -> tuple[str, ...]:
    """The receiving domains to route: each provider's own, and those that bounced on a list.

    `bounced` maps a list (zone label or list id) to the recipient domains whose bounces named it.
    """
    domains: set[str] = set()
    for block in current:
        domains.update(receivers.get(block.provider.lower(), ()))
        domains.update(d.lower() for d in bounced.get(block.list.removesuffix(" (bounce)"), ()))
    return tuple(sorted(domains))
