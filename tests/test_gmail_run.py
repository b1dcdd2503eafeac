"""Gmail Postmaster Tools in the monitor's runs, end to end: our fake of Google's token
endpoint and API on 127.0.0.1, the lab's DNS zones, a real store in tmp and a webhook of ours.
A LOW IP reputation is told once, an IP_IN_RBL listing once, a refresh token Google refuses
once as "source unusable" — which ends nothing and is never called clean — and no secret
appears in any notification, status or database byte."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import load_config
from blmonitor.models import Verdict
from blmonitor.monitor.run import notifier_for, run_once
from blmonitor.monitor.store import Store
from tests import googlefake, httpservers
from tests.googlefake import FakeGoogle
from tests.runconfig import monitored
from tests.test_daemon import Clock
from tests.test_gmail import stats, write_credentials

YESTERDAY = "20261031"  # tests.test_daemon.Clock starts on 2026-11-01


@dataclass
class Setup:
    google: FakeGoogle
    posted: list[tuple[str, str]]
    config: Path
    database: Path

    def told(self) -> list[list[dict[str, Any]]]:
        return [json.loads(body)["blmonitor"]["events"] for _, body in self.posted]


@pytest.fixture
def setup(lab, tmp_path: Path) -> Iterator[Setup]:
    credentials = write_credentials(tmp_path / "gmail.json")
    posted: list[tuple[str, str]] = []
    with googlefake.serve() as google, httpservers.serve({}, posted) as hook:
        config = tmp_path / "config.toml"
        config.write_text(
            monitored(lab, tmp_path, hook)
            + f"""
[gmail_postmaster]
domains = ["example.com"]
credentials_file = "{credentials}"
base_url = "{google.base_url}"
token_url = "{google.token_url}"
interval = "12h"
timeout = 2
"""
        )
        yield Setup(google, posted, config, tmp_path / "blmonitor.db")


def run(setup: Setup, clock: Clock) -> Verdict:
    config = load_config(setup.config)
    store = Store(config.monitor.database)
    try:
        return run_once(config, store, notifier_for(config), clock=clock, host="mx.example").verdict
    finally:
        store.close()
        clock.tick(12 * 60)


def test_low_reputation_and_a_refused_token_are_told_once(setup: Setup) -> None:
    clock = Clock()
    setup.google.api[f"v1/domains/example.com/trafficStats/{YESTERDAY}"] = stats("listed")
    assert run(setup, clock) is Verdict.LISTED  # clean on DNS, IP_IN_RBL at Gmail
    [first] = setup.told()
    events = {(e["event"], e["target"]): e for e in first}
    assert set(events) == {
        ("listed", "example.com"),  # IP_IN_RBL: Gmail refused mail citing a public list
        ("reputation", "203.0.113.5"),  # our IP among the LOW ones
        ("reputation", "example.com"),  # the domain's reputation LOW
    }
    low = events["reputation", "203.0.113.5"]
    assert (low["zone"], low["severity"], low["detail"]) == (
        "Gmail Postmaster", "warning", "LOW on 2026-10-31",
    )  # fmt: skip
    assert events["listed", "example.com"]["zone"] == "gmail-ip-in-rbl (Gmail Postmaster)"

    assert run(setup, clock) is Verdict.LISTED  # the same day read again: nothing new
    assert len(setup.told()) == 1

    setup.google.refresh = (400, {"error": "invalid_grant", "error_description": "Bad Request"})
    assert run(setup, clock) is not Verdict.CLEAN
    assert run(setup, clock) is not Verdict.CLEAN  # told once, not every poll
    [unusable] = setup.told()[1:]
    assert [e["event"] for e in unusable] == ["source-unusable"]
    assert "gmail-postmaster login" in unusable[0]["detail"]

    status = CliRunner().invoke(cli.main, ["status", "--config", str(setup.config)])
    assert status.exit_code != 0, status.output  # the listing is kept, nothing called clean
    assert "Gmail: blocked (Gmail Postmaster" in status.output
    assert "Gmail Postmaster: UNKNOWN since" in status.output  # the source, named
    assert "203.0.113.5 LOW (poor) on 2026-10-31" in status.output  # what it said last
    shown = status.output + "".join(body for _, body in setup.posted)
    shown += setup.database.read_bytes().decode("latin-1")
    for secret in googlefake.SECRETS:
        assert secret not in shown
