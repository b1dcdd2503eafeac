"""The smart host in the monitor and the CLI, on a real Postfix: listed → routed → delisted → direct.

The lab's flip.lab.test zone lists 203.0.113.5 when a test says so; notifications go to a local
JSON webhook. The relay password must show up nowhere but in Postfix's own password table.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import load_config
from blmonitor.monitor.run import notifier_for, run_once
from blmonitor.monitor.store import Store
from tests import httpservers
from tests.postfixlab import (
    DIRECT_HOST,
    PostfixLab,
    Sink,
    needs_postfix,
    postfix_instance,
    running_sink,
)
from tests.test_daemon import Clock

pytestmark = [needs_postfix, pytest.mark.slow]

PASSWORD = "pa55 w0rd-nobody-sees"
USER = "relay@isp.test"


@dataclass
class Setup:
    lab: PostfixLab
    direct: Sink
    relay: Sink
    posted: list[tuple[str, str]]
    tmp: Path
    webhook: str

    def config(self, mode: str, **extra: str) -> Path:
        password_file = self.tmp / "relay.pass"
        password_file.write_text(PASSWORD + "\n")
        lines = "\n".join(f"{k} = {v}" for k, v in extra.items())
        path = self.tmp / "config.toml"
        path.write_text(f"""
[monitor]
targets = ["203.0.113.5"]
zones = ["flip"]
lists = "{self.lab_catalog}"
confirm = 1
database = "{self.tmp / "blmonitor.db"}"
[dns]
resolver = ["{self.lab_address}"]
timeout = 0.6
[notify]
urls = ["{self.webhook.replace("http://", "json://")}/hook"]
retry = 1
[smarthost]
mode = "{mode}"
host = "127.0.0.1"
port = {self.relay.port}
username = "{USER}"
password_file = "{password_file}"
mta = "postfix"
config_dir = "{self.lab.conf}"
state_dir = "{self.tmp / "state"}"
revert_after = "30m"
{lines}
""")
        return path

    lab_catalog: Path = Path()
    lab_address: str = ""


@pytest.fixture
def setup(lab, tmp_path: Path) -> Iterator[Setup]:
    posted: list[tuple[str, str]] = []
    with (
        httpservers.serve({}, posted) as base,
        running_sink(DIRECT_HOST) as direct,
        postfix_instance(direct.port) as pfx,
        running_sink("127.0.0.1", tls_dir=tmp_path, user=USER, password=PASSWORD) as relay,
    ):
        s = Setup(pfx, direct, relay, posted, tmp_path, base)
        s.lab_catalog, s.lab_address = lab.catalog_path, lab.address
        yield s
    lab.flip.listed = set()


def run(config_path: Path, clock: Clock):
    config = load_config(config_path)
    store = Store(config.monitor.database)
    try:
        return run_once(config, store, notifier_for(config), clock=clock, host="mx.example")
    finally:
        store.close()
        clock.tick()


def titles(posted: list[tuple[str, str]]) -> list[str]:
    return [json.loads(body)["title"] for _, body in posted]


def everything_stored(database: Path) -> str:
    with sqlite3.connect(database) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for t in tables for row in db.execute(f"SELECT * FROM {t}"))


def test_apply_mode_routes_while_listed_and_reverts_after_the_cool_down(
    setup: Setup, lab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = setup.config("apply")
    main_cf = (setup.lab.conf / "main.cf").read_bytes()
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    run(config, clock)  # listed: confirmed at once (confirm = 1), so routed now
    saved = (setup.tmp / "state" / "smarthost.json").read_text()  # the checkpoint while applied
    assert '"status": "applied"' in saved and PASSWORD not in saved
    setup.lab.submit("while listed")
    assert setup.relay.wait(1)[0].login == USER
    assert titles(setup.posted)[-1] == (
        f"[blmonitor] mx.example: outbound mail now goes through 127.0.0.1:{setup.relay.port}"
    )
    run(config, clock)  # still listed: nothing new
    assert len(setup.posted) == 2  # the listing and the routing
    status = CliRunner().invoke(cli.main, ["status", "-c", str(config)])
    assert f"SMART HOST: outbound mail goes through 127.0.0.1:{setup.relay.port} since" in (
        status.output
    )

    lab.flip.listed = set()
    run(config, clock)  # delisted 15 minutes ago: the 30-minute cool-down holds
    assert setup.lab.postconf("-n", "relayhost") != ""
    clock.tick(30)
    run(config, clock)
    assert (setup.lab.conf / "main.cf").read_bytes() == main_cf
    setup.lab.submit("after")
    assert setup.direct.wait(1)[0].message["Subject"] == "after"
    assert titles(setup.posted)[-1] == "[blmonitor] mx.example: outbound mail goes direct again"

    stored = everything_stored(setup.tmp / "blmonitor.db")
    assert "'apply', 'done'" in stored and "'revert', 'done'" in stored
    for where in (stored, caplog.text, repr(setup.posted),
                  *(p.read_text() for p in (setup.tmp / "state").iterdir() if p.is_file())):  # fmt: skip
        assert PASSWORD not in where


def test_recommend_mode_notifies_the_plan_once_and_changes_nothing(setup: Setup, lab) -> None:
    config = setup.config("recommend")
    main_cf = (setup.lab.conf / "main.cf").read_bytes()
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    run(config, clock)
    run(config, clock)
    bodies = [json.loads(b) for _, b in setup.posted]
    recommended = [b for b in bodies if "(recommended)" in b["title"]]
    assert len(recommended) == 1
    assert f"relayhost = [127.0.0.1]:{setup.relay.port}" in recommended[0]["message"]
    assert f"credentials for [127.0.0.1]:{setup.relay.port} (new)" in recommended[0]["message"]
    assert PASSWORD not in json.dumps(bodies)
    assert (setup.lab.conf / "main.cf").read_bytes() == main_cf
    lab.flip.listed = set()
    run(config, clock)
    clock.tick(60)
    run(config, clock)
    last = json.loads(setup.posted[-1][1])
    assert last["title"] == "[blmonitor] mx.example: send mail direct again (recommended)"


def test_unprivileged_daemon_asks_the_root_unit(setup: Setup, lab, monkeypatch) -> None:
    config = setup.config("apply")
    monkeypatch.setattr("os.geteuid", lambda: 998)  # the daemon runs as user blmonitor
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    run(config, clock)
    request = json.loads((setup.tmp / "state" / "request.json").read_text())
    assert request["action"] == "apply"
    assert setup.lab.postconf("-n", "relayhost") == ""  # nothing changed by the daemon
    monkeypatch.undo()
    result = CliRunner().invoke(cli.main, ["smarthost", "sync", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output == "apply: done\n"
    assert setup.lab.postconf("-n", "relayhost").strip() == (
        f"relayhost = [127.0.0.1]:{setup.relay.port}"
    )


def test_cli_plan_apply_status_revert(setup: Setup) -> None:
    config = str(setup.config("off"))
    main_cf = (setup.lab.conf / "main.cf").read_bytes()
    runner = CliRunner()
    plan = runner.invoke(cli.main, ["smarthost", "plan", "-c", config])
    assert plan.exit_code == 0, plan.output
    assert f"relayhost = [127.0.0.1]:{setup.relay.port}" in plan.output
    assert PASSWORD not in plan.output
    assert (setup.lab.conf / "main.cf").read_bytes() == main_cf  # plan changes nothing

    applied = runner.invoke(cli.main, ["smarthost", "apply", "-c", config, "--json"])
    assert applied.exit_code == 0, applied.output
    out = json.loads(applied.output)
    assert (out["action"], out["changed"], out["mta"]) == ("apply", True, "postfix")
    again = runner.invoke(cli.main, ["smarthost", "apply", "-c", config])
    assert again.output.startswith("nothing to change")

    status = runner.invoke(cli.main, ["smarthost", "status", "-c", config, "--json"])
    state = json.loads(status.output)
    assert state["applied"] is True and state["relay"]["port"] == setup.relay.port
    assert [a["outcome"] for a in state["actions"]] == ["unchanged", "done"]
    assert PASSWORD not in status.output

    reverted = runner.invoke(cli.main, ["smarthost", "revert", "-c", config])
    assert reverted.output == "mail goes direct again\n"
    assert (setup.lab.conf / "main.cf").read_bytes() == main_cf
    text = runner.invoke(cli.main, ["smarthost", "status", "-c", config]).output
    assert text.startswith("smart host: not applied (postfix delivers directly)")


def test_a_missing_password_file_is_one_clear_line(setup: Setup) -> None:
    config = setup.config("off")
    (setup.tmp / "relay.pass").unlink()
    result = CliRunner().invoke(cli.main, ["smarthost", "apply", "-c", str(config)])
    assert result.exit_code == 2
    assert result.output.startswith("blmonitor: error: cannot read the smart-host password file")


def test_a_failing_apply_is_told_once_and_tried_again_each_run(setup: Setup, lab) -> None:
    config = setup.config("apply")
    setup.lab.postconf("-e", "relayhostt=[typo.example]:587")  # `postfix check` warns: apply fails
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    run(config, clock)
    run(config, clock)
    failed = [t for t in titles(setup.posted) if "FAILED" in t]
    assert failed == ["[blmonitor] mx.example: smart-host apply FAILED"]
    assert setup.lab.postconf("-n", "relayhost") == ""  # rolled back both times
    setup.lab.postconf("-X", "relayhostt")  # the admin fixes main.cf
    run(config, clock)
    assert titles(setup.posted)[-1].endswith(
        f"outbound mail now goes through 127.0.0.1:{setup.relay.port}"
    )
    store = Store(setup.tmp / "blmonitor.db")
    outcomes = [(a["action"], a["outcome"]) for a in store.smarthost_actions()]
    store.close()
    assert outcomes == [("apply", "done"), ("apply", "failed"), ("apply", "failed")]


# --- a relay password rotated while applied ----------------------------------------------------

NEW = "n3w-r0tated-nobody-sees"


def rotate(setup: Setup) -> None:
    """The ISP changed the password: the admin writes the new one, the relay wants only it."""
    replacement = setup.tmp / "relay.pass.new"
    replacement.write_text(NEW + "\n")
    replacement.replace(setup.tmp / "relay.pass")
    setup.relay.password = NEW


def table_answer(setup: Setup) -> str:
    """What Postfix's own lookup finds in blmonitor's password table for the relay."""
    conf = setup.lab.conf
    done = subprocess.run(
        ["postmap", "-c", str(conf), "-q", f"[127.0.0.1]:{setup.relay.port}",
         f"hash:{conf}/blmonitor_sasl_passwd"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def assert_nowhere(setup: Setup, outputs: Sequence[str], *, written: bool = True) -> None:
    """Neither password in any output, notification, stored row or file of blmonitor's (the
    database and its -wal included); the new one only in its file and Postfix's table, the old
    one nowhere once the rotation is `written` (before, only in that table)."""
    texts = [*outputs, repr(setup.posted), everything_stored(setup.tmp / "blmonitor.db")]
    for text in texts:
        assert PASSWORD not in text and NEW not in text
    table = {setup.tmp / "relay.pass", setup.lab.conf / "blmonitor_sasl_passwd",
             setup.lab.conf / "blmonitor_sasl_passwd.db"}  # fmt: skip
    for path in [*setup.tmp.rglob("*"), *setup.lab.base.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert (path in table and not written) or PASSWORD.encode() not in data, path
            assert path in table or NEW.encode() not in data, path
    assert (setup.tmp / "blmonitor.db").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("again", ["sync", "apply"])
def test_a_password_rotated_while_applied_is_written_and_shown_nowhere(
    setup: Setup, again: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = str(setup.config("off"))
    runner = CliRunner()
    outputs = [runner.invoke(cli.main, ["smarthost", "apply", "-c", config]).output]
    assert table_answer(setup) == f"{USER}:{PASSWORD}"
    rotate(setup)
    plan = runner.invoke(cli.main, ["smarthost", "plan", "-c", config]).output
    assert f"credentials for [127.0.0.1]:{setup.relay.port} (changed)" in plan
    done = runner.invoke(cli.main, ["smarthost", again, "-c", config])
    assert done.exit_code == 0, done.output
    if again == "sync":  # applied by hand: no request, but a rotation to write
        assert done.output == "apply: done\n"
    else:
        assert "note: the relay password changed: its table is written anew" in done.output
    assert table_answer(setup) == f"{USER}:{NEW}"
    setup.lab.submit("after the rotation")
    assert setup.relay.wait(1)[0].login == USER  # the relay took the new password
    assert runner.invoke(cli.main, ["smarthost", "sync", "-c", config]).output == "no request\n"
    written = json.loads((setup.tmp / "state" / "smarthost.json").read_text())["written"]
    salted = sorted(Path(p).name for p, v in written.items() if v and v.startswith("scrypt$"))
    assert salted == ["blmonitor_sasl_passwd", "blmonitor_sasl_passwd.db"]
    status = runner.invoke(cli.main, ["smarthost", "status", "-c", config, "--json"]).output
    assert_nowhere(setup, [*outputs, plan, done.output, status, caplog.text])


def test_the_daemon_writes_a_rotated_password_while_still_listed(setup: Setup, lab) -> None:
    config = setup.config("apply")
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    run(config, clock)
    assert table_answer(setup) == f"{USER}:{PASSWORD}"
    rotate(setup)
    run(config, clock)  # still listed: the policy keeps the routing, the rotation is written
    assert table_answer(setup) == f"{USER}:{NEW}"
    setup.lab.submit("after the rotation")
    assert setup.relay.wait(1)[0].login == USER
    store = Store(setup.tmp / "blmonitor.db")
    details = [(a["outcome"], a["detail"]) for a in store.smarthost_actions()]
    store.close()
    assert details[0] == ("done", "the relay password in password_file changed")
    assert_nowhere(setup, [])


def test_the_unprivileged_daemon_asks_the_root_unit_to_write_a_rotation(
    setup: Setup, lab, monkeypatch
) -> None:
    config = setup.config("apply")
    clock = Clock()
    lab.flip.listed = {"203.0.113.5"}
    monkeypatch.setattr("os.geteuid", lambda: 998)
    run(config, clock)
    monkeypatch.undo()
    sync = ["smarthost", "sync", "-c", str(config)]
    assert CliRunner().invoke(cli.main, sync).output == "apply: done\n"
    monkeypatch.setattr("os.geteuid", lambda: 998)
    run(config, clock)  # nothing new: no second request
    request = setup.tmp / "state" / "request.json"
    assert (
        json.loads(request.read_text())["reason"] != "the relay password in password_file changed"
    )
    rotate(setup)
    run(config, clock)
    assert (
        json.loads(request.read_text())["reason"] == "the relay password in password_file changed"
    )
    monkeypatch.undo()
    assert CliRunner().invoke(cli.main, sync).output == "apply: done\n"
    assert table_answer(setup) == f"{USER}:{NEW}"
    assert_nowhere(setup, [])


def test_a_recommendation_after_a_rotation_shows_neither_password(setup: Setup, lab) -> None:
    # the case: applied by hand, then the password rotated, then mode = "recommend"
    config = setup.config("recommend")
    applied = CliRunner().invoke(cli.main, ["smarthost", "apply", "-c", str(config)])
    assert applied.exit_code == 0, applied.output
    rotate(setup)
    lab.flip.listed = {"203.0.113.5"}
    run(config, Clock())
    bodies = [json.loads(b)["message"] for _, b in setup.posted]
    advice = [b for b in bodies if "credentials for" in b]
    assert len(advice) == 1
    assert (
        f"blmonitor_sasl_passwd: credentials for [127.0.0.1]:{setup.relay.port} (changed)"
        in (advice[0])
    )
    assert_nowhere(setup, [applied.output], written=False)
