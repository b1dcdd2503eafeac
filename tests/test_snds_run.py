"""SNDS in the monitor's runs, end to end: our HTTP server on 127.0.0.1 plays SNDS and takes
the webhook notifications, a real store in tmp, the lab's DNS zones beside it. A block is told
once and its end once, a RED day once, a failed poll once (and it ends nothing); the status,
the history and the metrics show it; and the key appears in no output at all."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import load_config
from blmonitor.errors import UsageError
from blmonitor.models import Verdict
from blmonitor.monitor.metrics import store_renderer
from blmonitor.monitor.run import notifier_for, run_once
from blmonitor.monitor.store import Store
from tests import httpservers
from tests.runconfig import monitored
from tests.test_daemon import Clock
from tests.test_snds import DAILY, KEY, STATUS, read


@dataclass
class Snds:
    base: str
    routes: dict[str, tuple[int, str]]
    posted: list[tuple[str, str]]
    got: list[str]
    config: Path
    database: Path

    def answer(self, status: tuple[int, str], daily: tuple[int, str]) -> None:
        self.routes.update({STATUS: status, DAILY: daily})

    def told(self) -> list[dict[str, Any]]:
        """Each notification's data, as the webhook got it."""
        return [json.loads(body)["blmonitor"] for _, body in self.posted]


@pytest.fixture
def snds(lab, tmp_path: Path) -> Iterator[Snds]:
    routes: dict[str, tuple[int, str]] = {}
    posted: list[tuple[str, str]] = []
    got: list[str] = []
    key_file = tmp_path / "snds.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    with httpservers.serve(routes, posted, got) as base:
        config = tmp_path / "config.toml"
        config.write_text(
            monitored(lab, tmp_path, base)
            + f"""
[snds]
key_file = "{key_file}"
base_url = "{base}/snds/"
interval = "6h"
timeout = 2
"""
        )
        yield Snds(base, routes, posted, got, config, tmp_path / "blmonitor.db")


def run(snds: Snds, clock: Clock, minutes: int = 6 * 60) -> Verdict:
    config = load_config(snds.config)
    store = Store(config.monitor.database)
    try:
        return run_once(config, store, notifier_for(config), clock=clock, host="mx.example").verdict
    finally:
        store.close()
        clock.tick(minutes)


def kinds(told: list[dict[str, Any]]) -> list[list[str]]:
    return [[event["event"] for event in message["events"]] for message in told]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_a_block_and_a_red_day_are_told_once_and_their_end_once(
    snds: Snds, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx's request lines too: they must not hold the key
    clock = Clock()
    outputs: list[str] = []

    snds.answer((200, read("ipstatus-blocked.csv")), (200, read("data-red.csv")))
    assert run(snds, clock) is Verdict.LISTED  # clean on DNS, blocked by Outlook.com
    assert kinds(snds.told()) == [["listed", "reputation"]]
    [listed, red] = snds.told()[0]["events"]
    assert (listed["target"], listed["zone"], listed["delist_url"]) == (
        "203.0.113.5", "microsoft-snds (SNDS)", "https://olcsupport.office.com/",
    )  # fmt: skip
    assert (red["zone"], red["detail"], red["severity"]) == (
        "SNDS",
        "RED on 2026-12-05",
        "critical",
    )
    body = json.loads(snds.posted[0][1])["message"]
    assert "203.0.113.5 LISTED on microsoft-snds (SNDS) [critical]" in body
    assert "request delisting at https://olcsupport.office.com/" in body
    assert "SNDS: 203.0.113.5 RED on 2026-12-05 [critical]" in body
    status = invoke("status", "--config", str(snds.config))
    assert "Outlook.com: blocked (SNDS, since 2026-11-01T12:00" in status
    assert "SNDS: 203.0.113.5 RED (bad) on 2026-12-05" in status
    outputs.append(status)
    metrics = store_renderer(snds.database, clock=clock)()
    assert (
        'blmonitor_source_listed{source="SNDS",target="203.0.113.5",list="microsoft-snds"} 1'
        in metrics
    )
    assert 'blmonitor_reputation{source="SNDS",subject="203.0.113.5"} 3' in metrics
    assert 'blmonitor_source_up{source="SNDS"} 1' in metrics
    outputs.append(metrics)

    snds.answer((500, ""), (500, ""))  # SNDS down: told once, the block is kept
    run(snds, clock)
    run(snds, clock)
    assert kinds(snds.told())[1:] == [["source-unusable"]]
    assert snds.told()[1]["events"][0]["detail"] == (
        "SNDS: ipStatus.aspx answered HTTP 500 Internal Server Error"
    )
    status_json = json.loads(invoke("status", "--config", str(snds.config), "--json"))
    assert status_json["verdict"] == "listed"
    assert [s["target"] for s in status_json["source_listings"]] == ["203.0.113.5"]
    assert status_json["sources"][0]["usable"] is False
    metrics = store_renderer(snds.database, clock=clock)()
    assert 'blmonitor_source_up{source="SNDS"} 0' in metrics
    outputs += [json.dumps(status_json), metrics]

    snds.answer((200, read("ipstatus-blocked.csv")), (200, read("data-red.csv")))
    run(snds, clock, minutes=60)  # readable again: the block and the RED day are not told again
    assert kinds(snds.told())[2:] == [["source-recovered"]]
    polls = len(snds.got)
    snds.answer((200, ""), (200, read("data-green.csv")))
    run(snds, clock, minutes=5 * 60)  # an hour later: SNDS is not due, so not asked
    assert len(snds.got) == polls and len(snds.told()) == 3

    assert run(snds, clock) is Verdict.CLEAN  # due: the block is gone, the day is GREEN
    assert kinds(snds.told())[3:] == [["delisted", "reputation-recovered"]]
    assert json.loads(snds.posted[3][1])["title"].startswith(
        "[blmonitor] mx.example: all clean again: no listing left"
    )
    counted = Counter(kind for message in kinds(snds.told()) for kind in message)
    assert counted == {"listed": 1, "delisted": 1, "reputation": 1, "reputation-recovered": 1,
                       "source-unusable": 1, "source-recovered": 1}  # fmt: skip

    history = invoke("history", "--config", str(snds.config))
    assert "microsoft-snds (SNDS)" in history and "POOR OR BAD REPUTATION DAYS (1)" in history
    history_json = json.loads(invoke("history", "--config", str(snds.config), "--json"))
    [episode] = [e for e in history_json["episodes"] if e["zone"] == "microsoft-snds (SNDS)"]
    assert episode["ended"] is not None and episode["target"] == "203.0.113.5"
    assert [(r["subject"], r["day"], r["raw"]) for r in history_json["reputation"]] == [
        ("203.0.113.5", "2026-12-05", "RED")
    ]
    outputs += [history, json.dumps(history_json), invoke("status", "--config", str(snds.config))]
    outputs.append(invoke("run", "--once", "--config", str(snds.config)))
    outputs.append(store_renderer(snds.database, clock=clock)())

    # the key: in no output, no notification, no log record, no byte of the database
    outputs += [body for _, body in snds.posted]
    outputs += [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    assert any("HTTP Request: GET" in r.getMessage() for r in caplog.records)  # httpx did log
    assert not [text for text in outputs if KEY in text]
    for path in snds.database.parent.glob("blmonitor.db*"):
        assert KEY.encode() not in path.read_bytes(), path
    assert all(KEY in path for path in snds.got)  # SNDS itself did get it


def test_without_this_runs_public_address_snds_waits_and_ends_nothing(snds: Snds) -> None:
    snds.config.write_text(
        snds.config.read_text().replace('["203.0.113.5"]', '["auto", "198.51.100.7"]')
    )
    config = load_config(snds.config)
    clock = Clock()
    found: list[list[str]] = [["203.0.113.5"], []]

    def discover(timeout: float) -> list[str]:
        addresses = found.pop(0)
        if not addresses:
            raise UsageError("no public address found")
        return addresses

    snds.answer((200, read("ipstatus-blocked.csv")), (200, ""))
    for _ in range(2):
        store = Store(config.monitor.database)
        try:
            run_once(config, store, notifier_for(config), clock=clock, discover=discover,
                     host="mx.example")  # fmt: skip
        finally:
            store.close()
        clock.tick(6 * 60)
    assert len(snds.got) == 2  # the first run's two GETs; the second asked nothing
    assert "delisted" not in [kind for message in kinds(snds.told()) for kind in message]
    store = Store(config.monitor.database, readonly=True)
    try:
        assert list(store.load_state().sources) == [("203.0.113.5", "microsoft-snds")]
    finally:
        store.close()


def test_clean_on_dns_with_snds_unreadable_is_unknown_not_clean(snds: Snds) -> None:
    """A green light means checked and clean: with SNDS down, the DNS lists' clean answer is
    not the whole truth — the run, the status headline and its exit code say UNKNOWN and name
    SNDS, not the DNS lists."""
    clock = Clock()
    snds.answer((200, ""), (200, read("data-green.csv")))
    assert run(snds, clock) is Verdict.CLEAN
    snds.answer((500, ""), (500, ""))
    assert run(snds, clock) is Verdict.UNKNOWN
    result = CliRunner().invoke(cli.main, ["status", "--config", str(snds.config)])
    assert result.exit_code == 3, result.output
    [headline] = [line for line in result.output.splitlines() if line.startswith("UNKNOWN")]
    assert headline.startswith("UNKNOWN: cannot read SNDS since ")
    assert "; the DNS lists are clean" in headline
    assert json.loads(invoke("status", "--config", str(snds.config), "--json"))["verdict"] == (
        "unknown"
    )
    snds.answer((200, ""), (200, read("data-green.csv")))
    assert run(snds, clock) is Verdict.CLEAN  # read again: clean again
