"""Signs of a cause on every run: the mail queue and the MTA logs, as findings.

The service behind the daemon's cause finder: reads the queue and the logs through the causes
modules, compares with what it remembers from the last run, and records new findings (with one
notification) in the store. A finding that stays is not told again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from blmonitor.causes.service import detect_queue_mta, read_queue
from blmonitor.config import Config
from blmonitor.errors import BlmonitorError
from blmonitor.monitor.notify import render_findings
from blmonitor.monitor.state import CauseMemory
from blmonitor.monitor.store import Store

log = logging.getLogger("blmonitor")

LOG_WINDOW = timedelta(hours=24)
POSTFIX_DIR = Path("/etc/postfix")


def look_for_causes(config: Config, store: Store, *, now: datetime, host: str) -> list[str]:
    """The queue and the logs, on each run: new findings become events and one notification
    (a finding that stays is not told again). Returns the findings' messages."""
    from blmonitor.causes import logs as logstats
    from blmonitor.causes import queue as mailqueue

    memory = store.load_causes()
    found: list[tuple[str, str, str]] = []  # kind, who or what it is about, the message
    local = config.diagnose.local_domains
    postfix_dir = config.diagnose.config_dir or POSTFIX_DIR
    mta = detect_queue_mta(postfix_dir=postfix_dir) if config.diagnose.queue else None
    queue_at, queue_messages, queue_error = memory.queue_at, memory.queue_messages, ""
    if mta is not None:
        try:
            messages = read_queue(mta, config_dir=config.diagnose.config_dir, now=now)
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
        )
    )
    return messages_now
