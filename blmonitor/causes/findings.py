"""Signs of a cause on every run: the mail queue and the MTA logs, and once a day the sender's
posture, as findings.

The service behind the daemon's cause finder: reads the queue and the logs through the causes
modules, checks the posture when a day has passed, compares with what it remembers from the
last run, and records new findings (with one notification) in the store. A finding that stays
is not told again; a posture finding stays until a check answers for it.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from blmonitor.causes.service import Which, detect_queue_mta, read_queue
from blmonitor.config import Config
from blmonitor.errors import BlmonitorError
from blmonitor.monitor.notify import render_findings
from blmonitor.monitor.state import CauseMemory, PostureFinding
from blmonitor.monitor.store import Store

log = logging.getLogger("blmonitor")

LOG_WINDOW = timedelta(hours=24)
POSTURE_EVERY = timedelta(hours=24)
POSTURE_RETRY = timedelta(hours=1)  # while the last check could not answer every part
POSTFIX_DIR = Path("/etc/postfix")
EXIM_NAMES = ("exim4", "exim")  # the names Exim's command goes by here (Debian's first)


def look_for_causes(config: Config, store: Store, *, now: datetime, host: str) -> list[str]:
    """The queue and the logs, on each run: new findings become events and one notification
    (a finding that stays is not told again). Returns the findings' messages."""
    from blmonitor.causes import logs as logstats
    from blmonitor.causes import queue as mailqueue

    memory = store.load_causes()
    found: list[tuple[str, str, str]] = []  # kind, who or what it is about, the message
    local = config.diagnose.local_domains
    postfix_dir = config.diagnose.config_dir or POSTFIX_DIR
    which = mta_which(postfix_dir)
    mta = detect_queue_mta(postfix_dir=postfix_dir, which=which) if config.diagnose.queue else None
    queue_at, queue_messages, queue_error = memory.queue_at, memory.queue_messages, ""
    if mta is not None:
        try:
            messages = read_queue(mta, config_dir=config.diagnose.config_dir, now=now, which=which)
        except BlmonitorError as exc:
            queue_error = str(exc)
            if memory.queue_error != queue_error:
                log.warning("queue not read: %s", exc)
        else:
            report = mailqueue.analyse_queue(messages, now=now, local_domains=local)
            found += [(f"queue-{f.kind}", f.sender, f.message) for f in report.findings]
            if memory.queue_at is not None:
                earlier = mailqueue.QueueSnapshot(memory.queue_at, memory.queue_messages)
                later = mailqueue.QueueSnapshot(now, report.messages)
                grew = mailqueue.growth_finding(mailqueue.queue_growth(earlier, later))
                if grew is not None:
                    found.append((f"queue-{grew.kind}", "", grew.message))
            queue_at, queue_messages = now, report.messages
    logs = [p for p in config.diagnose.logs if p.exists()]
    if logs:
        try:
            window = now - LOG_WINDOW
            report_log = logstats.analyse_log_files(logs, since=window, local_domains=local)
        except BlmonitorError as exc:
            log.warning("logs not read: %s", exc)
        else:
            found += [(f"log-{f.kind}", f.subject, f.message) for f in report_log.findings]
    checked = check_posture(config, store, memory, now=now)
    found += [(f"posture-{f.kind}", f.subject, f.message) for f in checked.posture]
    # a finding stays the same finding while its kind and subject do (its counts change)
    known = set(memory.findings)
    fresh = [(kind, text) for kind, subject, text in found if f"{kind}:{subject}" not in known]
    if fresh:
        message = render_findings(fresh, host=host, title_prefix=config.notify.title_prefix)
        queued = message.queued() if message.severity >= config.notify.min_severity else None
        store.record_findings(now, fresh, queued)
        for kind, text in fresh:
            log.warning("%s: %s", kind, text)
    messages_now = [text for _, _, text in found]
    store.save_causes(
        CauseMemory(
            queue_at=queue_at,
            queue_messages=queue_messages,
            queue_error=queue_error,
            findings=tuple(sorted({f"{kind}:{subject}" for kind, subject, _ in found})),
            messages=tuple(messages_now),
            posture_at=checked.posture_at,
            posture=checked.posture,
            posture_unanswered=checked.posture_unanswered,
            posture_unanswered_since=checked.posture_unanswered_since,
        )
    )
    return messages_now


def mta_which(postfix_dir: Path) -> Which:
    """shutil.which for the MTA's commands as the daemon looks for them: Postfix's postconf
    only where `postfix_dir` holds a main.cf (quiet where Postfix is installed but not
    configured), Exim's only by the names in EXIM_NAMES."""

    def which(name: str) -> str | None:
        if name == "postconf" and not (postfix_dir / "main.cf").exists():
            return None
        if name in ("exim4", "exim") and name not in EXIM_NAMES:
            return None
        return shutil.which(name)

    return which


def check_posture(config: Config, store: Store, memory: CauseMemory, *, now: datetime) -> (
    CauseMemory
):  # fmt: skip
    """The posture of the monitor's addresses (written and discovered) and of the sending
    domains, when [posture] daily is on and the last check is 24 hours old — 1 hour while the
    last one left parts unanswered: `memory` with its posture part (when it was last checked,
    what is known wrong with it, what could not be answered and since when) brought up to
    date. A finding stays until a check answers for it."""
    from blmonitor.causes import posture as posture_core
    from blmonitor.causes import service
    from blmonitor.dnsbl.answers import parse_target

    if not config.posture.daily:
        return replace(memory, posture_at=None, posture=(), posture_unanswered=(),
                       posture_unanswered_since=None)  # fmt: skip
    every = POSTURE_RETRY if memory.posture_unanswered else POSTURE_EVERY
    if memory.posture_at is not None and now - memory.posture_at < every:
        return memory
    discovered = [parse_target(a) for a in store.load_state().addresses]
    ips, domains = service.sending_targets(config, (), discover=lambda _: discovered)
    if not ips and not domains:  # checked once there is something to check
        return replace(memory, posture=(), posture_unanswered=(), posture_unanswered_since=None)

    def checked(posture: tuple[PostureFinding, ...], unanswered: tuple[str, ...]) -> CauseMemory:
        since = (memory.posture_unanswered_since or now) if memory.posture_unanswered else now
        return replace(memory, posture_at=now, posture=posture, posture_unanswered=unanswered,
                       posture_unanswered_since=since if unanswered else None)  # fmt: skip

    postfix_dir = config.diagnose.config_dir or POSTFIX_DIR
    try:
        report = service.posture(
            config, [*ips, *domains], config_dir=postfix_dir, which=mta_which(postfix_dir)
        )
    except BlmonitorError as exc:
        quiet = memory.posture_unanswered == (str(exc),)  # told once while it stays so
        log.log(logging.INFO if quiet else logging.WARNING, "posture not checked: %s", exc)
        return checked(memory.posture, (str(exc),))  # what it found stands; tried in an hour
    for line in report.unknown:  # told once while it stays unanswered (tried hourly)
        unchanged = line in memory.posture_unanswered
        log.log(logging.INFO if unchanged else logging.WARNING, "posture: not answered: %s", line)
    for line in report.skipped:
        log.info("posture: not checked: %s", line)
    found = [
        PostureFinding(part.check, f.subject, f.kind, f"{f.message}; fix: {f.fix}")
        for part in report.parts
        for f in part.findings
    ]
    again = {(f.kind, f.subject) for f in found}
    kept = [
        f
        for f in memory.posture
        if (f.kind, f.subject) not in again
        and posture_core.still_stands(report, f.check, f.subject)
    ]
    log.info("posture checked: %d finding(s), %d not answered", len(found), len(report.unknown))
    subjects = [*report.ips, *report.domains]
    order = ("ptr", "helo", "spf", "dmarc", "mx")  # as `blmonitor posture` reports them
    return checked(
        tuple(
            sorted(
                [*found, *kept],
                key=lambda f: (
                    subjects.index(f.subject),
                    order.index(f.check) if f.check in order else len(order),
                ),
            )
        ),
        report.unknown,
    )
