"""The pure parts of the smart host (planners, policy, rendering, marked blocks) and the checkpoint
and drivers, with the adapter on copied files where its commands are faked."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from blmonitor.errors import PlanError, SmarthostError
from blmonitor.models import Severity
from blmonitor.monitor.notify import render_smarthost
from blmonitor.monitor.state import BounceListing, MonitorState, PairState
from blmonitor.smarthost import blocks, policy, postfix
from blmonitor.smarthost.apply import Smarthost
from blmonitor.smarthost.checkpoint import Checkpoint, Status, matches, read
from blmonitor.smarthost.drivers import PostfixDriver, Ran, driver_for
from blmonitor.smarthost.plan import (
    PASSWORD,
    STALE,
    FileEdit,
    Mta,
    Plan,
    Relay,
    Scope,
    render_plan,
)

DIR = Path("/etc/postfix")
RELAY = Relay("smtp.isp.example", 587, "me@isp.example", Path("/etc/blmonitor/relay.pass"))
NOTHING: dict[str, str | None] = dict.fromkeys(postfix.MANAGED)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_postfix_plan_routes_everything_with_tls_and_sasl() -> None:
    plan = postfix.plan_apply(NOTHING, {}, RELAY, config_dir=DIR)
    assert plan.settings == {
        "relayhost": "[smtp.isp.example]:587",
        "smtp_sasl_auth_enable": "yes",
        "smtp_sasl_password_maps": "hash:/etc/postfix/blmonitor_sasl_passwd",
        "smtp_sasl_security_options": "noanonymous",
        "smtp_sasl_tls_security_options": "noanonymous",
        "smtp_tls_policy_maps": "hash:/etc/postfix/blmonitor_tls_policy",
        "smtp_tls_CAfile": "/etc/ssl/certs/ca-certificates.crt",
    }
    files = {e.path.name: e for e in plan.edits}
    assert files["blmonitor_sasl_passwd"].after == (
        f"[smtp.isp.example]:587 me@isp.example:{PASSWORD}\n".encode()
    )
    assert files["blmonitor_sasl_passwd"].secret and files["blmonitor_sasl_passwd"].mode == 0o600
    assert files["blmonitor_tls_policy"].after == (
        b"[smtp.isp.example]:587 secure match=smtp.isp.example\n"
    )
    shown = [c.shown() for c in plan.commands]
    assert shown == [
        "postmap -c /etc/postfix hash:/etc/postfix/blmonitor_sasl_passwd",
        "postmap -c /etc/postfix hash:/etc/postfix/blmonitor_tls_policy",
        "test -s /etc/ssl/certs/ca-certificates.crt",
        "postfix -c /etc/postfix check",
        "postmap -c /etc/postfix -q '[smtp.isp.example]:587' hash:/etc/postfix/blmonitor_sasl_passwd",
        "postfix -c /etc/postfix reload",
        "postqueue -c /etc/postfix -f",
    ]


@pytest.mark.parametrize(
    ("relay", "explicit", "policy", "ca"),
    [
        # a name: verified against it, with the system CAs unless main.cf names a trust store
        (RELAY, {}, "secure match=smtp.isp.example", "/etc/ssl/certs/ca-certificates.crt"),
        (Relay("SMTP.ISP.example", 465), {}, "secure match=smtp.isp.example",
         "/etc/ssl/certs/ca-certificates.crt"),
        (RELAY, {"smtp_tls_CApath": "/etc/ssl/certs"}, "secure match=smtp.isp.example", None),
        (RELAY, {"smtp_tls_CAfile": "/etc/isp-ca.pem"}, "secure match=smtp.isp.example", None),
        # an address: Postfix cannot match it, so TLS is required but unverified, and said so
        (Relay("192.0.2.25", 587, "me", Path("/p")), {}, "encrypt", None),
    ],
)  # fmt: skip
def test_postfix_verifies_the_relays_certificate(
    relay: Relay, explicit: dict[str, str], policy: str, ca: str | None
) -> None:
    plan = postfix.plan_apply({**NOTHING, **explicit}, {}, relay, config_dir=DIR)
    files = {e.path.name: e.after for e in plan.edits}
    hop = f"[{relay.host}]:{relay.port}"
    assert files["blmonitor_tls_policy"] == f"{hop} {policy}\n".encode()
    assert plan.settings.get("smtp_tls_CAfile") == ca
    assert any("is an address" in n for n in plan.notes) is (policy == "encrypt")
    commands = [c.argv for c in plan.commands]
    assert (("test", "-s", postfix.SYSTEM_CA) in commands) is (ca is not None)


def test_postfix_without_tls_has_no_policy_and_no_ca() -> None:
    plan = postfix.plan_apply(NOTHING, {}, Relay("smtp.isp.example", 25, tls=False), config_dir=DIR)
    assert "smtp_tls_CAfile" not in plan.settings and "smtp_tls_policy_maps" not in plan.settings
    assert [e.path.name for e in plan.edits] == []


def test_postfix_plan_keeps_the_admins_tables_after_ours() -> None:
    current = {**NOTHING, "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
               "transport_maps": "hash:/etc/postfix/transport"}  # fmt: skip
    plan = postfix.plan_apply(current, {}, RELAY, config_dir=DIR, scope=Scope.DESTINATIONS,
                              destinations=["outlook.com", "hotmail.com"])  # fmt: skip
    assert plan.settings["smtp_sasl_password_maps"] == (
        "hash:/etc/postfix/blmonitor_sasl_passwd, hash:/etc/postfix/sasl_passwd"
    )
    assert plan.settings["transport_maps"] == (
        "hash:/etc/postfix/blmonitor_transport, hash:/etc/postfix/transport"
    )
    assert "relayhost" not in plan.settings
    transport = next(e for e in plan.edits if e.path.name == "blmonitor_transport")
    assert transport.after == (
        b"hotmail.com smtp:[smtp.isp.example]:587\n.hotmail.com smtp:[smtp.isp.example]:587\n"
        b"outlook.com smtp:[smtp.isp.example]:587\n.outlook.com smtp:[smtp.isp.example]:587\n"
    )


def test_postfix_plan_is_empty_once_applied() -> None:
    first = postfix.plan_apply(NOTHING, {}, RELAY, config_dir=DIR)
    now = {**NOTHING, **first.settings}
    files: dict[Path, bytes | None] = {e.path: e.after for e in first.edits}
    files.update({DIR / "blmonitor_sasl_passwd.db": b"x", DIR / "blmonitor_tls_policy.db": b"x"})
    again = postfix.plan_apply(now, files, RELAY, config_dir=DIR)
    assert again.empty and again.commands == ()


def test_postfix_plan_refuses_smtps_per_destination_and_keeps_an_existing_filter() -> None:
    with pytest.raises(PlanError, match="465"):
        postfix.plan_apply(NOTHING, {}, Relay("r.example", 465), config_dir=DIR,
                           scope=Scope.DESTINATIONS, destinations=["x.example"])  # fmt: skip
    smtps = postfix.plan_apply(NOTHING, {}, Relay("r.example", 465), config_dir=DIR)
    assert smtps.settings["smtp_tls_wrappermode"] == "yes"
    mine = {**NOTHING, "smtp_delivery_status_filter": "pcre:/etc/postfix/mine"}
    plan = postfix.plan_apply(mine, {}, RELAY, config_dir=DIR, soften=True)
    assert "smtp_delivery_status_filter" not in plan.settings
    assert any("already set" in n for n in plan.notes)


def test_postfix_revert_restores_each_previous_value_or_removes_it() -> None:
    saved = {**NOTHING, "smtp_sasl_security_options": "noplaintext"}
    applied = {**saved, "relayhost": "[r]:587", "smtp_sasl_security_options": "noanonymous"}
    ours = {DIR / "blmonitor_tls_policy": b"[r]:587 encrypt\n", DIR / "blmonitor_transport": None}
    plan = postfix.plan_revert(applied, saved, ours, config_dir=DIR)
    assert plan.settings == {"relayhost": None, "smtp_sasl_security_options": "noplaintext"}
    assert [(e.path.name, e.after) for e in plan.edits] == [("blmonitor_tls_policy", None)]
    assert "(remove) relayhost" in render_plan(plan, RELAY)


def test_rendering_shows_no_credentials_line_and_shows_deletions() -> None:
    edits = (
        FileEdit(DIR / "blmonitor_sasl_passwd", None, f"[r]:587 u:{PASSWORD}\n".encode(),
                 0o600, True),
        FileEdit(DIR / "old.db", b"\x00present\x00", None),
    )  # fmt: skip
    text = render_plan(Plan(Mta.POSTFIX, "apply", edits), RELAY)
    assert (
        "/etc/postfix/blmonitor_sasl_passwd: credentials for [smtp.isp.example]:587 (new)\n"
    ) in text
    assert "delete /etc/postfix/old.db" in text
    assert PASSWORD not in text and "u:" not in text and "<password" not in text


OURS = f"[r]:587 u:{PASSWORD}\n".encode()
OLD = f"[r]:587 u:{STALE}\n".encode()


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        (None, OURS, "new"),
        (b"# admin's\n", b"# admin's\n" + OURS, "new"),
        (OLD, OURS, "changed"),
        (OURS, OURS + b"# admin's\n", "unchanged"),
        (OURS, None, "removed"),
        (OLD + b"x:y:theirs\n", b"x:y:theirs\n", "removed"),
    ],
)
def test_a_credentials_edit_is_told_by_what_it_does(
    before: bytes | None, after: bytes | None, change: str
) -> None:
    edit = FileEdit(DIR / "blmonitor_sasl_passwd", before, after, 0o600, True)
    assert edit.change == change
    assert edit.shown(RELAY) == (
        f"/etc/postfix/blmonitor_sasl_passwd: credentials for [smtp.isp.example]:587 ({change})\n"
    )


# --- policy ---------------------------------------------------------------------------------


def pair(zone: str, since: datetime, severity: Severity = Severity.CRITICAL) -> PairState:
    return PairState("203.0.113.5", zone, listed=True, severity=severity, since=since, label=zone)


def test_blocking_takes_listings_at_or_above_the_severity_and_bounce_evidence() -> None:
    state = MonitorState(
        pairs={("203.0.113.5", "zen"): pair("zen", T0),
               ("203.0.113.5", "rep"): pair("rep", T0, Severity.INFO),
               ("203.0.113.5", "ok"): PairState("203.0.113.5", "ok", since=T0)},
        bounces={("203.0.113.5", "microsoft-s3150"): BounceListing(
            "203.0.113.5", "microsoft-s3150", "Microsoft", T0 + timedelta(hours=1), T0)},
    )  # fmt: skip
    found = policy.blocking(state, min_severity=Severity.WARNING)
    assert [(b.list, b.provider) for b in found] == [("zen", ""), ("microsoft-s3150", "Microsoft")]
    assert [b.list for b in policy.blocking(state, min_severity=Severity.CRITICAL)] == ["zen"]


LISTED = (policy.Blocking("203.0.113.5", "zen", "", T0),)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("current", "now", "applied", "last", "action"),
    [
        (LISTED, T0 + HOUR, False, None, "apply"),  # listed for the hour asked
        (LISTED, T0 + HOUR / 2, False, None, "keep"),  # not long enough yet
        (LISTED, T0 + HOUR, True, None, "keep"),  # already routed
        ((), T0, False, None, "keep"),  # never listed
        ((), T0 + 2 * HOUR, True, T0 + HOUR, "keep"),  # delisted an hour ago: cool-down of 1 day
        ((), T0 + 26 * HOUR, True, T0 + HOUR, "revert"),
        ((), T0, True, None, "revert"),  # applied by hand, no listing on record
    ],
)
def test_decide(current, now, applied, last, action) -> None:
    decision = policy.decide(current, now=now, applied=applied, last_listed=last, after=HOUR,
                             revert_after=timedelta(days=1))  # fmt: skip
    assert decision.action == action


def test_destinations_are_the_providers_domains_and_the_bounced_recipients() -> None:
    current = (
        policy.Blocking("203.0.113.5", "microsoft-s3150 (bounce)", "Microsoft", T0),
        policy.Blocking("203.0.113.5", "zen.spamhaus.org", "", T0),
    )
    receivers = policy.load_receivers()
    found = policy.destinations(current, receivers=receivers,
                                bounced={"zen.spamhaus.org": ["Example.ORG"]})  # fmt: skip
    assert {"outlook.com", "hotmail.com", "live.com", "example.org"} <= set(found)
    assert "gmail.com" not in found


def test_notifications_for_each_smarthost_action() -> None:
    common: dict[str, Any] = {"host": "mx.example", "mta": "postfix",
                              "relay": "smtp.isp.example:587",
                              "reason": "203.0.113.5 listed on zen"}  # fmt: skip
    applied = render_smarthost("apply", **common)
    assert (
        applied.title
        == "[blmonitor] mx.example: outbound mail now goes through smtp.isp.example:587"
    )
    assert applied.severity is Severity.WARNING
    failed = render_smarthost("apply", error="postfix check failed", **common)
    assert failed.severity is Severity.CRITICAL and "left as it was" in failed.body
    advice = render_smarthost("revert", recommend=True, plan_text="(remove) relayhost\n", **common)
    assert advice.title.endswith("send mail direct again (recommended)")
    assert "(remove) relayhost" in advice.body and advice.kinds == ("smarthost-revert-recommended",)


def test_a_credentials_file_shows_no_password_of_anyone() -> None:
    before = b"# passwd.client\nold.relay.example:someone:TheirSecret\n"
    after = f"smtp.isp.example:me:{PASSWORD}\n".encode() + before
    shown = FileEdit(Path("/etc/exim4/passwd.client"), before, after, 0o640, True).shown(RELAY)
    assert shown == "/etc/exim4/passwd.client: credentials for [smtp.isp.example]:587 (new)\n"


def test_plan_for_exchange_is_powershell_without_the_password(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from blmonitor import cli

    secret = tmp_path / "relay.pass"
    secret.write_text("hunter2 hunter2\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ndatabase = "{tmp_path / "h.db"}"\n[smarthost]\nhost = "smtp.isp.example"\n'
        f'username = "me@isp.example"\npassword_file = "{secret}"\nmta = "exchange"\n'
    )
    apply = CliRunner().invoke(cli.main, ["smarthost", "plan", "-c", str(config)])
    assert apply.exit_code == 0, apply.output
    assert "Set-SendConnector" in apply.output and "Get-Credential" in apply.output
    back = CliRunner().invoke(cli.main, ["smarthost", "plan", "--revert", "-c", str(config)])
    assert "Import-Clixml" in back.output
    assert "hunter2" not in apply.output + back.output
    assert not (tmp_path / "h.db").exists()  # planning writes nothing
    refused = CliRunner().invoke(cli.main, ["smarthost", "apply", "-c", str(config)])
    assert refused.exit_code == 2
    assert "Exchange is changed by hand" in refused.output


def test_a_second_apply_while_one_runs_is_refused(tmp_path: Path) -> None:
    import fcntl

    switch = Smarthost(Mta.POSTFIX, Relay("smtp.isp.example"), config_dir=tmp_path,
                       state_dir=tmp_path / "state")  # fmt: skip
    (tmp_path / "state").mkdir()
    with (tmp_path / "state" / "smarthost.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        for action in (lambda: switch.apply(now="t"), switch.revert):
            with pytest.raises(SmarthostError, match="another blmonitor smarthost apply or revert"):
                action()


# --- the checkpoint, the drivers, the marked blocks -------------------------------------------

CHECKPOINTS = Path(__file__).parent / "data" / "smarthost_checkpoint"


@pytest.mark.parametrize("name", ["exim.json", "postfix.json"])
def test_a_checkpoint_written_before_the_drivers_loads_and_saves_the_same_bytes(
    name: str, tmp_path: Path
) -> None:
    old = (CHECKPOINTS / name).read_bytes()
    (tmp_path / "old.json").write_bytes(old)
    checkpoint = Checkpoint.load(tmp_path / "old.json")
    assert checkpoint is not None and checkpoint.status is Status.APPLIED
    assert checkpoint.relay.host == "smtp.isp.example" and checkpoint.written is not None
    checkpoint.save(tmp_path / "new.json")
    assert (tmp_path / "new.json").read_bytes() == old
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o600


def test_the_postfix_checkpoint_keeps_the_settings_and_the_files_it_created() -> None:
    checkpoint = Checkpoint.load(CHECKPOINTS / "postfix.json")
    assert checkpoint is not None
    assert checkpoint.mta is Mta.POSTFIX and checkpoint.scope is Scope.DESTINATIONS
    # saved by a blmonitor that did not manage smtp_tls_CAfile: revert leaves that one alone
    assert checkpoint.settings == dict.fromkeys(
        m for m in postfix.MANAGED if m != "smtp_tls_CAfile"
    )
    explicit = {**checkpoint.settings, "smtp_tls_CAfile": "/etc/my-ca.pem", "relayhost": "[r]:587"}
    back = postfix.plan_revert(explicit, checkpoint.settings, {}, config_dir=DIR)
    assert back.settings == {"relayhost": None}
    assert [p.name for p in checkpoint.created] == [
        "blmonitor_sasl_passwd", "blmonitor_sasl_passwd.db", "blmonitor_soften",
        "blmonitor_tls_policy", "blmonitor_tls_policy.db", "blmonitor_transport",
        "blmonitor_transport.db",
    ]  # fmt: skip
    assert checkpoint.destinations == ("gmail.com",)


@pytest.mark.parametrize(
    "text", ["{", '{"mta": "postfix"}', '{"mta": "qmail", "config_dir": "/etc"}', "[]"]
)
def test_a_checkpoint_that_cannot_be_read_says_to_restore_by_hand(
    text: str, tmp_path: Path
) -> None:
    (tmp_path / "smarthost.json").write_text(text)
    with pytest.raises(SmarthostError, match="restore the MTA by hand, then delete it"):
        Checkpoint.load(tmp_path / "smarthost.json")
    assert Checkpoint.load(tmp_path / "missing.json") is None


def test_postfix_settings_are_read_through_the_runner() -> None:
    calls: list[tuple[str, ...]] = []

    def runner(argv: Sequence[str]) -> Ran:
        calls.append(tuple(argv))
        if "-h" in argv:
            return Ran(" ".join(argv), 0, "", "lmdb\n")
        return Ran(" ".join(argv), 0, "", "relayhost = [old.example]:25\n")

    driver = PostfixDriver(DIR, runner)
    assert driver.settings() == {**NOTHING, "relayhost": "[old.example]:25"}
    assert DIR / "blmonitor_sasl_passwd.lmdb" in driver.paths()
    assert driver.guarded()[-1] == DIR / "main.cf"
    assert calls == [
        ("postconf", "-c", "/etc/postfix", "-n", *postfix.MANAGED),
        ("postconf", "-c", "/etc/postfix", "-h", "default_database_type"),
        ("postconf", "-c", "/etc/postfix", "-h", "default_database_type"),
    ]
    failing = PostfixDriver(DIR, lambda argv: Ran(" ".join(argv), 1, "fatal: no main.cf"))
    with pytest.raises(SmarthostError, match="postconf cannot read /etc/postfix: fatal: no main"):
        failing.settings()


def test_every_mta_but_exchange_has_a_driver() -> None:
    def never(argv: Sequence[str]) -> Ran:
        raise AssertionError(argv)

    for mta in (Mta.POSTFIX, Mta.EXIM, Mta.SENDMAIL, Mta.OPENSMTPD):
        assert driver_for(mta, DIR, never).mta is mta
    with pytest.raises(SmarthostError, match="Exchange is changed by hand"):
        driver_for(Mta.EXCHANGE, DIR, never)
    sendmail = driver_for(Mta.SENDMAIL, DIR, never)
    with pytest.raises(SmarthostError, match="holds a \", which sendmail's authinfo cannot"):
        sendmail.check_password('pa"ss', RELAY)
    with pytest.raises(SmarthostError, match="a plan for exim holds settings"):
        driver_for(Mta.EXIM, DIR, never).write_settings({"relayhost": None})


MAP = Path("/etc/mail/access")


@pytest.mark.parametrize(("text", "body", "at", "expected"), [
    # a new block at the end; a last line without its newline gets one
    ("a\nb", ["x"], None, "a\nb\n# BEGIN blmonitor smarthost\nx\n# END blmonitor smarthost\n"),
    ("", ["x"], None, "# BEGIN blmonitor smarthost\nx\n# END blmonitor smarthost\n"),
    # after the header comments, before the entries
    ("# one\n  # two\nentry\n", ["x"], blocks.after_comments,
     "# one\n  # two\n# BEGIN blmonitor smarthost\nx\n# END blmonitor smarthost\nentry\n"),
    # an existing block is replaced where it is, or taken out with an empty body
    ("a\n# BEGIN blmonitor smarthost\nold\n# END blmonitor smarthost\nb\n", ["x", "y"], None,
     "a\n# BEGIN blmonitor smarthost\nx\ny\n# END blmonitor smarthost\nb\n"),
    ("a\n  # BEGIN blmonitor smarthost\nold\n# END blmonitor smarthost  \nb\n", [], None, "a\nb\n"),
    ("a\n", [], None, "a\n"),
])  # fmt: skip
def test_put_a_block(text: str, body: list[str], at: Any, expected: str) -> None:
    assert blocks.put(text, body, MAP, at=at) == expected


@pytest.mark.parametrize("text", [
    "# BEGIN blmonitor smarthost\nx\n",
    "# END blmonitor smarthost\nx\n# BEGIN blmonitor smarthost\n",
    "# BEGIN blmonitor smarthost\n# END blmonitor smarthost\n# BEGIN blmonitor smarthost\n",
])  # fmt: skip
def test_broken_marks_are_a_plan_error_naming_the_file(text: str) -> None:
    with pytest.raises(PlanError, match=r"/etc/mail/access: the lines .* must appear once each"):
        blocks.remove(text, MAP)


def test_unwrap_puts_back_what_each_block_stood_in_for() -> None:
    text = (
        "keep\n# BEGIN blmonitor smarthost\n#was: old line\nnew line\n# END blmonitor smarthost\n"
        "# BEGIN blmonitor smarthost\nadded\n# END blmonitor smarthost\nlast\n"
    )
    assert blocks.unwrap(text, MAP, was="#was: ") == "keep\nold line\nlast\n"
    for broken, why in [
        ("# BEGIN blmonitor smarthost\n# BEGIN blmonitor smarthost\n", ":2: .* inside a block"),
        ("# END blmonitor smarthost\n", ":1: .* without"),
        ("# BEGIN blmonitor smarthost\n", "access: .* without"),
    ]:
        with pytest.raises(PlanError, match=why):
            blocks.unwrap(broken, MAP, was="#was: ")


# --- the adapter on a copy of the files, its commands not run ----------------------------------

OLD_BASE = "/tmp/blmonitor-checkpoint-v1"  # where tests/data/smarthost_checkpoint was made


def _ok(argv: Sequence[str]) -> Ran:
    return Ran(" ".join(argv), 0, "")


@pytest.mark.parametrize("interrupted", [False, True], ids=["applied", "interrupted"])
def test_a_checkpoint_written_before_the_drivers_still_reverts(
    tmp_path: Path, interrupted: bool
) -> None:
    shutil.copytree(CHECKPOINTS.parent / "smarthost" / "exim4", tmp_path / "exim4")
    original = {p: p.read_bytes() for p in (tmp_path / "exim4").iterdir()}
    (tmp_path / "relay.pass").write_text("s3cret pass\n")
    relay = Relay("smtp.isp.example", 587, "alerts@example.test", tmp_path / "relay.pass")
    switch = Smarthost(Mta.EXIM, relay, config_dir=tmp_path / "exim4",
                       state_dir=tmp_path / "state", runner=_ok)  # fmt: skip
    switch.apply(now="2026-12-01T00:00:00+00:00")
    # the same machine, applied by the version before the drivers, then upgraded
    old = json.loads((CHECKPOINTS / "exim.json").read_text().replace(OLD_BASE, str(tmp_path)))
    state = switch.state_path
    written = json.loads(state.read_text())["written"]
    for path, value in old["written"].items():  # the same bytes applied
        assert matches(read(Path(path)), value) and matches(read(Path(path)), written[path])
    if interrupted:
        old["status"] = "applying"
        del old["written"]
    state.write_text(json.dumps(old, indent=1))
    assert switch.status() == {
        "applied": True, "mta": "exim", "config_dir": str(tmp_path / "exim4"),
        "relay": {"host": "smtp.isp.example", "port": 587, "username": "alerts@example.test"},
        "scope": "all", "destinations": [], "applied_at": "2026-11-30T08:00:00+00:00",
    }  # fmt: skip
    outcome = switch.revert()
    assert outcome.changed
    assert ("interrupted apply" in " ".join(outcome.plan.notes)) is interrupted
    assert {p: p.read_bytes() for p in (tmp_path / "exim4").iterdir()} == original
    assert not state.exists() and not switch.status()["applied"]
