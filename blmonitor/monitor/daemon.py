"""The daemon: the loop that repeats one run (`serve`), its signals and its logging.

SIGTERM lets the current run finish its write, then exits; SIGHUP reloads the config between
runs. What a run does is `monitor/run.py`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import ClassVar

import schedule

from blmonitor.config import Config, load_config
from blmonitor.errors import BlmonitorError
from blmonitor.monitor.run import notifier_for, run_once
from blmonitor.monitor.store import Store

log = logging.getLogger("blmonitor")


class _Signals:
    """SIGTERM/SIGINT ask to stop after the current run; SIGHUP asks for a reload."""

    def __init__(self) -> None:
        self.stop = False
        self.reload = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload = True


def serve(
    config_path: Path | None,
    *,
    once: bool = False,
    metrics: str = "",
    password_file: Path | None = None,
) -> int:
    """`blmonitor run`: run now, then every interval (with jitter) until SIGTERM.

    With `metrics` (HOST:PORT), the live page and Prometheus metrics are served from the
    database meanwhile (`password_file`: HTTP basic auth).
    """
    from blmonitor.monitor.metrics import MetricsServer, parse_listen, read_password, serve_live

    config = load_config(config_path)
    listen = parse_listen(metrics) if metrics else None
    signals = _Signals()
    signals.install()
    store = Store(config.monitor.database)
    exporter: MetricsServer | None = None
    if listen is not None and not once:
        password = read_password(password_file) if password_file else None
        exporter = serve_live(*listen, lambda: config, password=password)
        log.info("live page on %s/, metrics on %s", exporter.base, exporter.url)
    try:
        summary = run_once(config, store, notifier_for(config))
        if once:
            return 0 if not summary.error else 3
        if signals.stop:
            log.info("stopping")
            return 0
        scheduler = schedule.Scheduler()

        def plan(cfg: Config) -> None:
            scheduler.clear()
            low = max(int(cfg.monitor.interval), 1)
            scheduler.every(low).to(low + int(cfg.monitor.jitter)).seconds.do(job)
            log.info("next run at %s", scheduler.next_run)

        def job() -> None:
            try:
                run_once(config, store, notifier_for(config))
            except BlmonitorError as exc:  # e.g. the run lock's file cannot be made
                log.error("run failed: %s", exc)

        plan(config)
        while not signals.stop:
            if signals.reload:
                signals.reload = False
                try:
                    fresh = load_config(config_path)
                except BlmonitorError as exc:
                    log.error("reload failed, keeping the running config: %s", exc)
                else:
                    if fresh.monitor.database != config.monitor.database:
                        log.warning("[monitor] database changes only with a restart")
                    config = replace(
                        fresh, monitor=replace(fresh.monitor, database=config.monitor.database)
                    )
                    plan(config)
                    log.info("config reloaded from %s", config.source)
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            time.sleep(min(max(idle if idle is not None else 1.0, 0.05), 1.0))
        log.info("stopping")
        return 0
    finally:
        if exporter is not None:
            exporter.close()
        store.close()


class _JournalFormatter(logging.Formatter):
    """journald reads a `<N>` syslog priority at the start of each stderr line."""

    PRIORITY: ClassVar[dict[int, int]] = {
        logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
        logging.CRITICAL: 2,
    }  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup_logging(*, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
