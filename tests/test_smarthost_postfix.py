"""The Postfix smart-host switch on a real Postfix on loopback: direct → relay → direct.

The relay is an aiosmtpd sink with STARTTLS and AUTH on 127.0.0.1; "direct" is u@[127.0.0.2].
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from blmonitor.errors import SmarthostError
from blmonitor.smarthost.apply import Smarthost
from blmonitor.smarthost.drivers import Ran, run_command
from blmonitor.smarthost.plan import Mta, Relay, Scope, render_plan
from tests.postfixlab import (
    DIRECT_HOST,
    PostfixLab,
    Sink,
    needs_postfix,
    postfix_instance,
    running_sink,
)

pytestmark = [needs_postfix, pytest.mark.slow]

PASSWORD = "s3cret pass"
USER = "relay@isp.test"


@dataclass
class World:
    lab: PostfixLab
    direct: Sink
    relay: Sink
    password_file: Path
    state_dir: Path

    def smarthost(self, runner: Recorder | None = None, **options: object) -> Smarthost:
        relay = Relay("127.0.0.1", self.relay.port, USER, self.password_file)
        return Smarthost(Mta.POSTFIX, relay, config_dir=self.lab.conf, state_dir=self.state_dir,
                         runner=runner or Recorder(), **options)  # type: ignore[arg-type]  # fmt: skip

    def blmonitor_files(self) -> list[str]:
        return sorted(p.name for p in self.lab.conf.iterdir() if p.name.startswith("blmonitor"))


@dataclass
class Recorder:
    """Runs the real command, keeps every argument list; `fail` makes one command fail."""

    fail: str = ""
    argvs: list[Sequence[str]] | None = None

    def __call__(self, argv: Sequence[str]) -> Ran:
        if self.argvs is None:
            self.argvs = []
        self.argvs.append(list(argv))
        if self.fail and self.fail in " ".join(argv):
            return Ran(" ".join(argv), 1, f"fatal: injected failure of {self.fail}")
        return run_command(argv)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    password_file = tmp_path / "relay.pass"
    password_file.write_text(PASSWORD + "\n")
    with (
        running_sink(DIRECT_HOST) as direct,
        postfix_instance(direct.port) as lab,
        running_sink("127.0.0.1", tls_dir=tmp_path, user=USER, password=PASSWORD) as relay,
    ):
        yield World(lab, direct, relay, password_file, tmp_path / "state")


def test_apply_routes_through_the_relay_and_revert_restores_main_cf_byte_for_byte(
    world: World,
) -> None:
    world.lab.submit("before")
    world.direct.wait(1)
    main_cf = (world.lab.conf / "main.cf").read_bytes()
    recorder = Recorder()

    outcome = world.smarthost(recorder).apply(now="2026-11-30T08:00:00+00:00")
    assert outcome.changed and outcome.reloaded
    world.lab.submit("while listed")
    got = world.relay.wait(1)[0]
    assert (got.login, got.tls, got.message["Subject"]) == (USER, True, "while listed")
    assert world.smarthost().status()["applied"] is True

    world.smarthost(recorder).revert()
    assert (world.lab.conf / "main.cf").read_bytes() == main_cf
    assert world.blmonitor_files() == []
    world.lab.submit("after")
    assert [m.message["Subject"] for m in world.direct.wait(2)] == ["before", "after"]
    assert len(world.relay.received) == 1
    # the password is in no argument list and no state file
    assert recorder.argvs and not any(PASSWORD in " ".join(a) for a in recorder.argvs)
    assert not world.state_dir.joinpath("smarthost.json").exists()


def test_apply_twice_changes_nothing_the_second_time(world: World) -> None:
    world.smarthost().apply(now="t")
    state = world.state_dir.joinpath("smarthost.json").read_text()
    assert PASSWORD not in state
    main_cf = (world.lab.conf / "main.cf").read_bytes()
    again = world.smarthost().apply(now="t")
    assert not again.changed and again.plan.empty
    assert (world.lab.conf / "main.cf").read_bytes() == main_cf
    world.smarthost().revert()
    assert not world.smarthost().revert().changed  # a second revert is a no-op


@pytest.mark.parametrize("step", ["postmap -c", "check", "-q [127.0.0.1]", "reload"])
def test_a_failing_step_leaves_the_configuration_as_it_was(world: World, step: str) -> None:
    before = {p.name: p.read_bytes() for p in world.lab.conf.iterdir()}
    with pytest.raises(SmarthostError, match="previous configuration is restored"):
        world.smarthost(Recorder(fail=step)).apply(now="t")
    after = {p.name: p.read_bytes() for p in world.lab.conf.iterdir()}
    assert after == before
    assert world.smarthost().status()["applied"] is False  # nothing is left half-applied
    world.lab.submit("still direct")
    world.direct.wait(1)


def test_a_postfix_warning_fails_validation_and_rolls_back(world: World) -> None:
    # `postfix check` exits 0 on an unused (misspelled) parameter: its warning must fail apply
    world.lab.postconf("-e", "relayhostt=[typo.example]:587")
    main_cf = (world.lab.conf / "main.cf").read_bytes()
    with pytest.raises(SmarthostError, match="unused parameter"):
        world.smarthost().apply(now="t")
    assert (world.lab.conf / "main.cf").read_bytes() == main_cf
    assert world.blmonitor_files() == []


def test_revert_after_the_admin_edited_main_cf_undoes_only_blmonitor_settings(
    world: World,
) -> None:
    world.smarthost().apply(now="t")
    world.lab.postconf("-e", "smtp_helo_timeout=123s")  # the admin's edit while we were applied
    world.smarthost().revert()
    assert world.lab.postconf("-n", "relayhost") == ""
    assert world.lab.postconf("-n", "smtp_helo_timeout").strip() == "smtp_helo_timeout = 123s"
    world.lab.submit("direct again")
    world.direct.wait(1)


def test_blocklist_rejection_is_deferred_then_delivered_through_the_relay(world: World) -> None:
    world.direct.reject_rcpt = "554 5.7.1 Client host [127.0.0.1] blocked using zen.spamhaus.org"
    smarthost = world.smarthost(scope=Scope.DESTINATIONS, destinations=[f"[{DIRECT_HOST}]"],
                                soften=True)  # fmt: skip
    # soften first, as the daemon does when a listing is confirmed but routing is not yet due
    plan = smarthost.plan_apply()
    assert "blmonitor_soften" in render_plan(plan, smarthost.relay)
    smarthost.apply(now="t")
    world.lab.submit("routed")
    got = world.relay.wait(1)[0]
    assert got.login == USER
    assert world.direct.received == []
    smarthost.revert()
    assert world.blmonitor_files() == []


def test_plan_shows_the_change_and_masks_the_password(world: World) -> None:
    smarthost = world.smarthost()
    text = render_plan(smarthost.plan_apply(), smarthost.relay)
    assert f"relayhost = [127.0.0.1]:{world.relay.port}" in text
    assert f"credentials for [127.0.0.1]:{world.relay.port} (new)" in text
    assert "<password" not in text and USER not in text
    assert PASSWORD not in text
    assert "postfix -c" in text and "reload" in text


def test_a_stopped_postfix_is_not_reloaded_and_revert_wants_the_same_directory(
    world: World, tmp_path: Path
) -> None:
    world.lab.stop()
    recorder = Recorder()
    outcome = world.smarthost(recorder).apply(now="t")
    assert outcome.changed and not outcome.reloaded
    assert any("not running" in note for note in outcome.notes)
    assert not any(a[-1] in ("reload", "-f") for a in recorder.argvs or [])
    elsewhere = Smarthost(Mta.POSTFIX, Relay("127.0.0.1", world.relay.port),
                          config_dir=tmp_path, state_dir=world.state_dir)  # fmt: skip
    with pytest.raises(SmarthostError, match="revert with --mta postfix --config-dir"):
        elsewhere.revert()
    assert world.smarthost().revert().changed


def test_a_map_postfix_cannot_build_rolls_back(world: World) -> None:
    # a real failure, not an injected one: Debian's postfix has no cdb support without
    # postfix-cdb, so postmap cannot build the password table
    world.lab.postconf("-e", "default_database_type=cdb")
    before = {p.name: p.read_bytes() for p in world.lab.conf.iterdir()}
    with pytest.raises(SmarthostError, match=r"postmap .* failed .*cdb"):
        world.smarthost().apply(now="t")
    assert {p.name: p.read_bytes() for p in world.lab.conf.iterdir()} == before
    world.lab.submit("still direct")
    world.direct.wait(1)


def test_revert_after_an_apply_killed_half_way_restores_every_file(world: World) -> None:
    main_cf = (world.lab.conf / "main.cf").read_bytes()
    world.smarthost().apply(now="t")
    # what a kill before apply's last write leaves: the checkpoint, marked "applying"
    state_path = world.state_dir / "smarthost.json"
    state = json.loads(state_path.read_text())
    state["status"] = "applying"
    del state["written"]
    state_path.write_text(json.dumps(state))
    outcome = world.smarthost().revert()
    assert outcome.changed and "interrupted apply" in " ".join(outcome.plan.notes)
    assert (world.lab.conf / "main.cf").read_bytes() == main_cf
    assert world.blmonitor_files() == []  # the .db indexes too
    world.lab.submit("direct")
    world.direct.wait(1)


def _localhost_in_hosts() -> bool:
    """Whether /etc/hosts names 127.0.0.1 localhost: the lookup below then never asks DNS."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[:1] == ["127.0.0.1"] and "localhost" in line.split() for line in lines)


@pytest.mark.skipif(not _localhost_in_hosts(), reason="/etc/hosts has no 127.0.0.1 localhost")
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-ca", "system-ca"])
def test_the_relays_certificate_is_verified(world: World, trusted: bool) -> None:
    # The relay by name, found in /etc/hosts (native lookup, no DNS); its certificate says
    # CN=localhost. Trusted: the admin's main.cf names the relay's CA, which the plan keeps.
    # Not: the plan's system CAs do not know the self-signed certificate: mail waits, and the
    # password is never sent.
    settings = ["smtp_host_lookup=native"]
    if trusted:
        settings.append(f"smtp_tls_CAfile={world.password_file.parent / 'cert.pem'}")
    world.lab.postconf("-e", *settings)
    relay = Relay("localhost", world.relay.port, USER, world.password_file)
    switch = Smarthost(Mta.POSTFIX, relay, config_dir=world.lab.conf, state_dir=world.state_dir)
    plan = switch.plan_apply()
    policy = next(e.after for e in plan.edits if e.path.name == "blmonitor_tls_policy")
    assert policy == f"[localhost]:{world.relay.port} secure match=localhost\n".encode()
    assert ("smtp_tls_CAfile" in plan.settings) is not trusted
    switch.apply(now="t")
    world.lab.submit("verified")
    if trusted:
        assert world.relay.wait(1)[0].login == USER
    else:
        world.lab.wait_log("Server certificate not verified")
        assert world.relay.received == [] and world.relay.commands == []
    switch.revert()
    assert world.lab.postconf("-n", "smtp_tls_CAfile").strip().endswith("cert.pem") is trusted
