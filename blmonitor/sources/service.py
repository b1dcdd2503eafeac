"""The receivers' own data sources, one registry: which are enabled, when each is due, and
one poll of every due source for the monitor's run.

Adding a source is one `Source(...)` line in `SOURCES`: its name, how people see it, whether
the config enables it, its poll interval, and its poll function (`config, targets, now` →
`SourceResult`, never raising).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from blmonitor.config import Config
from blmonitor.monitor.state import SourceHealth
from blmonitor.sources.models import SourceResult
from blmonitor.sources.snds import poll_snds

log = logging.getLogger("blmonitor")

Poll = Callable[..., SourceResult]  # (config, targets, *, now) -> SourceResult


@dataclass(frozen=True, slots=True)
class Source:
    name: str  # "snds": SourceResult.source, the store's key
    label: str  # "SNDS": how events and the status name it
    enabled: Callable[[Config], bool]
    interval: Callable[[Config], float]  # seconds between polls
    poll: Poll


def _poll_gmail(config: Config, targets: Sequence[str], *, now: datetime) -> SourceResult:
    # google-auth costs ~50 ms to import: only a run that polls Gmail pays for it
    from blmonitor.sources.gmail import poll_gmail

    return poll_gmail(config, targets, now=now)


SOURCES: tuple[Source, ...] = (
    Source("snds", "SNDS", lambda c: c.snds.enabled, lambda c: c.snds.interval, poll_snds),
    Source(
        "gmail",
        "Gmail Postmaster",
        lambda c: c.gmail_postmaster.enabled,
        lambda c: c.gmail_postmaster.interval,
        _poll_gmail,
    ),
)

LABELS: Mapping[str, str] = {source.name: source.label for source in SOURCES}


def due(source: Source, config: Config, health: SourceHealth | None, *, now: datetime) -> bool:
    """Whether `source` is to be polled now: enabled, and never polled or polled `interval` ago.

    A failed poll counts as a poll: a source that is down is asked again after the same
    interval, not hammered on every run."""
    if not source.enabled(config):
        return False
    if health is None or health.polled is None:
        return True
    return now - health.polled >= timedelta(seconds=source.interval(config))


def poll_due(
    config: Config,
    targets: Sequence[str],
    health: Mapping[str, SourceHealth],
    *,
    now: datetime,
    sources: Sequence[Source] = SOURCES,
) -> list[SourceResult]:
    """One poll of each due source (none when there is nothing to look up)."""
    if not targets:
        return []
    results = []
    for source in sources:
        if due(source, config, health.get(source.name), now=now):
            try:
                result = source.poll(config, targets, now=now)
            except Exception as exc:  # one source's bug must not cost the run its DNS checks
                # only the type, never the text nor a traceback: it may quote the key
                why = f"{source.label}: internal error ({type(exc).__name__}), a bug: report it"
                result = SourceResult(source.name, now, error=why)
            if result.error:
                log.error("%s", result.error)
            else:
                log.info(
                    "%s: %d listing(s), %d reputation day(s), %d unknown", source.label,
                    len(result.listings), len(result.reputation), len(result.unknown),
                )  # fmt: skip
            results.append(result)
    return results
