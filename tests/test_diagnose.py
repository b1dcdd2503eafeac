"""Finding the cause, end to end on loopback: `relaytest`, `queue`, `diagnose`, and the daemon's
queue and log checks, against a real Postfix with its own queue (delivery held back, so nothing
is ever sent) and logs written by the tests."""

from __future__ import annotations

import json
import smtplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.causes import diagnosis
from blmonitor.causes import queue as mailqueue
from blmonitor.causes.findings import look_for_causes
from blmonitor.config import load_config
from blmonitor.monitor.run import notifier_for, run_once
from blmonitor.monitor.state import CauseMemory
from blmonitor.monitor.store import Store
from tests import httpservers
from tests.postfixlab import PostfixLab, needs_postfix, postfix_instance
from tests.test_daemon import Clock
from tests.test_logstats import SCENARIOS, postfix_lines

HELD = {"relayhost": "[127.0.0.2]", "defer_transports": "smtp", "mydestination": "blmtest.example"}


def fill(lab: PostfixLab, bounces: int, normal: int = 5) -> None:
    """Bounces (null sender) to forged senders in many domains, and some ordinary mail."""
    with smtplib.SMTP("127.0.0.1", lab.smtpd_port, local_hostname="client.test") as smtp:
        for i in range(bounces):
            smtp.sendmail(
                "", [f"victim{i}@spoofed{i % 40}.test"], f"Subject: Undelivered {i}\n\nx\n"
            )
        for i in range(normal):
            smtp.sendmail("alice@blmtest.example", [f"friend{i}@example.net"], "Subject: hi\n\nx\n")
    deadline = time.monotonic() + 60
    while len(lab.queue_ids()) < bounces + normal and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def held() -> Iterator[PostfixLab]:
    with postfix_instance(settings=HELD) as lab:
        yield lab


STOCK = {"mynetworks": "127.0.0.1/32", "mydestination": "blmtest.example"}
# Relays for anyone. Not `smtpd_relay_restrictions = permit`: smtpd refuses to start without a
# working reject_unauth_destination, so the open door is an access table that says OK to all.
OPEN = {
    **STOCK,
    "smtpd_relay_restrictions": "check_client_access static:OK, reject_unauth_destination",
}


@needs_postfix
@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "unset", "source", "code", "last"),
    [
        # from loopback, which the MTA trusts: whatever it answers, the probe proves nothing
        (STOCK, (), "", 3, "INCONCLUSIVE: 127.0.0.1:{port}: inconclusive from here: 127.0.0.1 is "
         "in Postfix's mynetworks (127.0.0.1/32), so it may relay by design; run it from outside "
         "your network"),
        (OPEN, (), "", 3, "INCONCLUSIVE: 127.0.0.1:{port}: inconclusive from here: 127.0.0.1 is in"),
        # mynetworks unset: Postfix's own expansion of mynetworks_style (host since level 2)
        ({"mydestination": "blmtest.example"}, ("mynetworks",), "", 3,
         "INCONCLUSIVE: 127.0.0.1:{port}: inconclusive from here: 127.0.0.1 is in Postfix's "
         "mynetworks (127.0.0.1/32, from mynetworks_style = host)"),
        ({"mydestination": "blmtest.example", "mynetworks_style": "class"}, ("mynetworks",),
         "127.0.0.2", 3, "INCONCLUSIVE: 127.0.0.1:{port}: inconclusive from here: 127.0.0.2 is in "
         "Postfix's mynetworks (127.0.0.0/8, from mynetworks_style = class)"),
        # from a second loopback address outside mynetworks: judged as from outside
        (STOCK, (), "127.0.0.2", 0, "CLOSED: 127.0.0.1:{port} refused all 13 relay attempts"),
        (OPEN, (), "127.0.0.2", 1, "OPEN RELAY: 127.0.0.1:{port} accepted"),
        ({"mydestination": "blmtest.example"}, ("mynetworks",), "127.0.0.2", 0, "CLOSED"),
    ],
    ids=["stock-loopback", "open-loopback", "unset-host-style", "unset-class-style",
         "stock-outsider", "open-outsider", "unset-outsider"],
)  # fmt: skip
def test_relaytest_command(settings, unset, source, code, last) -> None:
    with postfix_instance(settings=settings, unset=unset) as lab:
        args = ["relaytest", "127.0.0.1", "--port", str(lab.smtpd_port), "--local-domain",
                "blmtest.example", "--timeout", "10", "--config-dir", str(lab.conf),
                *(["--source", source] if source else [])]  # fmt: skip
        result = CliRunner().invoke(cli.main, args)
        data = json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)
        assert lab.queue_ids() == []  # never DATA: nothing was queued
    assert result.exit_code == code, result.output
    lines = result.output.splitlines()
    assert lines[-1].startswith(last.format(port=lab.smtpd_port)), result.output
    assert lines[0].split()[:2] == ["attempt", "MAIL"]  # the attempts are listed either way
    assert data["source"] == (source or "127.0.0.1") and data["this_host"] is True
    assert data["trusted"][0]["mta"] == "Postfix" and data["trusted"][0]["setting"] == "mynetworks"
    assert data["verdict"] == {3: "inconclusive", 0: "closed", 1: "open"}[code]
    assert (data["reason"] is None) == (code != 3)
    assert len(data["attempts"]) == 13


@needs_postfix
@pytest.mark.slow
def test_queue_command_finds_the_backscatter_and_removes_exactly_it(
    held: PostfixLab, tmp_path: Path
) -> None:
    fill(held, bounces=60)
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "h.db"}"\n')
    base = ["queue", "-c", str(config), "--config-dir", str(held.conf),
            "--local-domain", "blmtest.example"]  # fmt: skip
    shown = CliRunner().invoke(cli.main, base)
    assert shown.exit_code == 1, shown.output
    assert ("ndr-attack: 60 of 65 messages are bounces (null sender) to 60 external addresses "
            "in 40 domains: NDR attack?") in shown.output  # fmt: skip
    assert "clean-up (60 message(s)):" in shown.output
    assert len(held.queue_ids()) == 65  # showing removes nothing

    declined = CliRunner().invoke(cli.main, [*base, "--apply"], input="n\n")
    assert declined.exit_code == 2 and len(held.queue_ids()) == 65

    removed = CliRunner().invoke(cli.main, [*base, "--apply", "--yes"])
    assert "removed 60 of 60 message(s)" in removed.output, removed.output
    left = mailqueue.read_postfix_queue(config_dir=held.conf)
    assert sorted({m.sender for m in left}) == ["alice@blmtest.example"]
    rows = list(Store(tmp_path / "h.db").db.table("cleanups").rows)
    assert [(r["mta"], r["removed"], r["selection"]) for r in rows] == [
        ("postfix", 60, "the findings' messages")
    ]
    assert CliRunner().invoke(cli.main, base).exit_code == 0  # clean now


def busy_user_log(path: Path) -> None:
    msgs, _ = SCENARIOS["compromised-account"]
    path.write_text("\n".join(postfix_lines(msgs)) + "\n")


@needs_postfix
@pytest.mark.slow
def test_diagnose_names_the_listing_the_growing_backscatter_and_the_busy_account(
    lab, held: PostfixLab, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[monitor]
targets = ["203.0.113.5"]
zones = ["flip"]
lists = "{lab.catalog_path}"
confirm = 1
database = "{tmp_path / "h.db"}"
[dns]
resolver = ["{lab.address}"]
timeout = 0.6
[diagnose]
queue = false
""")
    lab.flip.listed = {"203.0.113.5"}
    try:
        store = Store(tmp_path / "h.db")
        run_once(load_config(config), store, None, clock=Clock(), host="mx.example")
    finally:
        lab.flip.listed = set()
    # the daemon saw an empty queue 20 minutes ago; now it holds 1,050 bounces
    store.save_causes(CauseMemory(queue_at=datetime.now(UTC) - timedelta(minutes=20),
                                  queue_messages=0))  # fmt: skip
    store.close()
    fill(held, bounces=1050)
    log = tmp_path / "mail.log"
    busy_user_log(log)
    args = ["diagnose", "-c", str(config), "--config-dir", str(held.conf), "--log", str(log),
            "--since", "3650d", "--local-domain", "blmtest.example"]  # fmt: skip
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1, result.output
    text = result.output
    assert "203.0.113.5 on flip.lab.test since" in text
    assert "NDR attack (backscatter)" in text and "1,050 of 1,055 messages are bounces" in text
    assert "the queue grew from 0 to 1,055 messages" in text
    assert "sasl user admin@example.com sent 412 messages to 153 domains" in text
    steps = text.split("STEPS, IN ORDER\n")[1]
    order = [steps.index(w) for w in ("Change the password", "Clean the queue",
                                      "smart host", "Only then request delisting")]  # fmt: skip
    assert order == sorted(order)
    print(text)

    as_json = json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)
    assert {c["kind"] for c in as_json["causes"]} == {
        "ndr-attack",
        "growth",
        "compromised-account",
        "volume-spike",
    }
    assert as_json["listings"][0]["target"] == "203.0.113.5"
    assert as_json["queue"]["messages"] == 1055


def test_diagnose_without_history_queue_or_logs_says_what_it_could_not_check(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    result = CliRunner().invoke(cli.main, ["diagnose", "-c", str(config), "--mta", "exim",
                                           "--log", str(tmp_path / "missing.log")])  # fmt: skip
    assert result.exit_code == 3  # nothing could be checked: nothing is known
    assert "not checked: no history database yet" in result.output
    assert "not checked: queue:" in result.output
    assert not (tmp_path / "none.db").exists()  # diagnosing creates nothing


def test_diagnosis_of_an_open_relay_puts_closing_it_first() -> None:
    from blmonitor.causes.relaytest import Attempt, AttemptResult, Outcome, RelayReport

    accepted = AttemptResult(Attempt("external-sender", "", "a@x.invalid", "b@y.invalid"),
                             Outcome.ACCEPTED, "RCPT", 250, "ok")  # fmt: skip
    found = diagnosis.diagnose(
        listings=[diagnosis.Listing("203.0.113.5", "zen.spamhaus.org", None,
                                    "https://check.spamhaus.org/")],
        relay=RelayReport("mx.example", 25, (accepted,)),
    )  # fmt: skip
    assert [c.kind for c in found.causes] == ["open-relay"]
    assert found.steps[0].startswith("Close the relay")
    assert found.steps[-1].startswith(
        "Only then request delisting: zen.spamhaus.org: https://check.spamhaus.org/"
    )


def test_an_inconclusive_relay_test_is_a_check_not_made() -> None:
    from blmonitor.causes.relaytest import (
        Attempt,
        AttemptResult,
        Outcome,
        RelayReport,
        TrustedNetworks,
    )

    accepted = AttemptResult(Attempt("external-sender", "", "a@x.invalid", "b@y.invalid"),
                             Outcome.ACCEPTED, "RCPT", 250, "ok")  # fmt: skip
    trusted = TrustedNetworks("Postfix", "mynetworks", "127.0.0.0/8")
    relay = RelayReport("127.0.0.1", 25, (accepted,), source="127.0.0.1", trusted=(trusted,))
    found = diagnosis.diagnose(listings=[], relay=relay, checked=["the postfix queue"])
    assert found.causes == () and found.healthy
    assert found.checked == ("the postfix queue",)
    assert found.skipped == (
        "open relay at 127.0.0.1:25: inconclusive from here: 127.0.0.1 is in Postfix's mynetworks"
        " (127.0.0.0/8), so it may relay by design; run it from outside your network",
    )
    outsider = TrustedNetworks("Postfix", "mynetworks", "127.0.0.1/32")
    closed = RelayReport("127.0.0.1", 25, (), source="127.0.0.2", trusted=(outsider,))
    assert diagnosis.diagnose(listings=[], relay=closed).checked == ("open relay at 127.0.0.1:25",)


def test_diagnose_relaytest_of_this_host_from_a_trusted_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`diagnose --relaytest` probes through the same service: from loopback, which this host's
    MTA trusts, an open relay is a check not made, with its reason, and the exit says so."""
    import functools

    from blmonitor.causes import service
    from tests.test_relaytest import Relay, relay

    answers = {
        ("postconf", "-c", str(tmp_path), "-n", "mynetworks"): "mynetworks = 127.0.0.0/8",
        ("postconf", "-c", str(tmp_path), "-x", "mynetworks", "mynetworks_style"):
            "mynetworks = 127.0.0.0/8\nmynetworks_style = host",
    }  # fmt: skip
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    with relay(Relay(open=True)) as (port, _):
        monkeypatch.setattr(service, "relaytest", functools.partial(
            service.relaytest, port=port, timeout=5, run=lambda argv: answers[tuple(argv)],
            which=lambda name: "/usr/sbin/postconf" if name == "postconf" else None,
        ))  # fmt: skip
        args = ["diagnose", "-c", str(config), "--mta", "exim", "--log", str(tmp_path / "no.log"),
                "--config-dir", str(tmp_path), "--relaytest", "127.0.0.1"]  # fmt: skip
        result = CliRunner().invoke(cli.main, args)
        data = json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)
    assert result.exit_code == 3, result.output  # nothing could be checked, no cause found
    assert "open relay" not in result.output.split("checked:")[0]
    assert (f"not checked: open relay at 127.0.0.1:{port}: inconclusive from here: 127.0.0.1 is in"
            " Postfix's mynetworks (127.0.0.0/8)") in result.output  # fmt: skip
    assert data["causes"] == [] and data["relaytest"]["verdict"] == "inconclusive"
    assert data["relaytest"]["trusted"][0]["value"] == "127.0.0.0/8"


@needs_postfix
@pytest.mark.slow
def test_the_daemon_tells_a_new_finding_once(held: PostfixLab, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    busy_user_log(log)
    posted: list[tuple[str, str]] = []
    with httpservers.serve({}, posted) as base:
        config = tmp_path / "config.toml"
        config.write_text(f"""
[monitor]
database = "{tmp_path / "h.db"}"
[notify]
urls = ["{base.replace("http://", "json://")}/hook"]
retry = 1
[diagnose]
config_dir = "{held.conf}"
logs = ["{log}"]
local_domains = ["blmtest.example"]
[posture]
daily = false
""")
        cfg = load_config(config)
        store = Store(cfg.monitor.database)
        now = datetime(2024, 11, 5, 12, 0, tzinfo=UTC)  # the log's day: its last 24 hours
        fill(held, bounces=60)
        first = look_for_causes(cfg, store, now=now, host="mx.example")
        fill(held, bounces=10, normal=0)  # the attack goes on: its counts change, not its kind
        deadline = time.monotonic() + 30
        while len(held.queue_ids()) < 75 and time.monotonic() < deadline:
            time.sleep(0.1)
        second = look_for_causes(cfg, store, now=now + timedelta(minutes=15), host="mx.example")
        from blmonitor.monitor.run import deliver_pending

        deliver_pending(store, notifier_for(cfg), lambda: now)
        store.close()
    assert any("NDR attack" in m for m in first) and any("admin@example.com" in m for m in first)
    assert any("70 of 75 messages are bounces" in m for m in second)  # still there, grown…
    assert len(posted) == 1  # …and told once
    body = json.loads(posted[0][1])
    assert "blmonitor diagnose" in body["message"]
