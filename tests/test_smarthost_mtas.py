"""Smart-host planners for Exim, Sendmail, OpenSMTPD and Exchange, on the Debian default files.

Each case applies a plan to real default configurations (tests/data/smarthost) and reads the
result as the adapter does (its password masked as PASSWORD), then checks idempotence, byte-exact
revert, surgical revert after an admin's edit, masking and the commands. m4 and smtpd, when present, check the
generated configuration for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

import pytest

from blmonitor.errors import PlanError
from blmonitor.smarthost import exchange, exim, opensmtpd, sendmail
from blmonitor.smarthost.plan import PASSWORD, Mta, Plan, Relay, Scope, render_plan

DATA = Path(__file__).parent / "data" / "smarthost"
PASSWORD_FILE = Path("/etc/blmonitor/relay.pass")
SHOWN = f"<password from {PASSWORD_FILE}>"
RELAY = Relay("smtp.isp.example", 587, "alerts@example.test", PASSWORD_FILE)
SMTPS = Relay("smtp.isp.example", 465, "alerts@example.test", PASSWORD_FILE)
PLAIN = Relay("192.0.2.25", 25, tls=False)  # no login, no TLS required

Files = dict[Path, bytes | None]
Mta3 = tuple[ModuleType, Path, str]  # a planner module, its usual config_dir, its tests/data dir
# id, mta, relay, scope, destinations, tweak {file: (old, new)}, {file: exact lines}, untouched
Case = tuple[
    str,
    Mta3,
    Relay,
    Scope,
    tuple[str, ...],
    dict[str, tuple[str, str]],
    dict[str, list[str]],
    list[str],
]

EXIM: Mta3 = (exim, Path("/etc/exim4"), "exim4")
SENDMAIL: Mta3 = (sendmail, Path("/etc/mail"), "mail")
OPENSMTPD: Mta3 = (opensmtpd, Path("/etc"), "opensmtpd")
MTAS = [pytest.param(*m, id=m[0].__name__.rsplit(".", 1)[1]) for m in (EXIM, SENDMAIL, OPENSMTPD)]


def load(module: ModuleType, config_dir: Path, data: str, **tweak: tuple[str, str]) -> Files:
    """The planner's files from tests/data (None when the data has no such file)."""
    files: Files = {}
    for path in module.paths(config_dir):
        source = DATA / data / path.relative_to(config_dir)
        content = source.read_bytes() if source.is_file() else None
        if path.name in tweak and content is not None:
            old, new = tweak[path.name]
            assert old.encode() in content
            content = content.replace(old.encode(), new.encode())
        files[path] = content
    return files


def written(plan: Plan, files: Mapping[Path, bytes | None]) -> Files:
    """The files after the adapter wrote `plan`, as it reads them back: its password masked."""
    out = dict(files)
    for edit in plan.edits:
        out[edit.path] = edit.after
    return out


def text(files: Mapping[Path, bytes | None], config_dir: Path, name: str) -> str:
    content = files[config_dir / name]
    assert content is not None, name
    return content.decode()


APPLY_CASES: list[Case] = [
    ("exim-587", EXIM, RELAY, Scope.ALL, (), {},
     {"update-exim4.conf.conf": ["dc_eximconfig_configtype='smarthost'", "dc_smarthost='smtp.isp.example::587'",
                                 "dc_other_hostnames='mail.example.com'"],
      "exim4.conf.localmacros": ["# BEGIN blmonitor smarthost", "REMOTE_SMTP_SMARTHOST_HOSTS_REQUIRE_TLS = *",
                                 "# END blmonitor smarthost"],
      "passwd.client": ["### target.mail.server.example:login:password",
                        f"smtp.isp.example:alerts@example.test:{PASSWORD}"]},
     ["conf.d/main/000_localmacros", "exim4.conf"]),
    ("exim-465-split", EXIM, SMTPS, Scope.ALL, (),
     {"update-exim4.conf.conf": ("dc_use_split_config='false'", "dc_use_split_config='true'")},
     {"update-exim4.conf.conf": ["dc_smarthost='smtp.isp.example::465'"],
      "conf.d/main/000_localmacros": ["REMOTE_SMTP_SMARTHOST_HOSTS_REQUIRE_TLS = *",
                                      "REMOTE_SMTP_SMARTHOST_PROTOCOL = smtps"]},
     ["exim4.conf.localmacros"]),
    ("exim-satellite-plain", EXIM, PLAIN, Scope.DESTINATIONS, ("gmail.com",),
     {"update-exim4.conf.conf": ("'internet'", "'satellite'")},
     {"update-exim4.conf.conf": ["dc_eximconfig_configtype='satellite'", "dc_smarthost='192.0.2.25::25'"]},
     ["passwd.client", "exim4.conf.localmacros"]),
    ("sendmail-all", SENDMAIL, RELAY, Scope.ALL, (), {},
     {"sendmail.mc": ["dnl ### BEGIN blmonitor smarthost",
                      "define(`SMART_HOST', `esmtp:[smtp.isp.example]')dnl",
                      "define(`ESMTP_MAILER_ARGS', `TCP $h 587')dnl",
                      "define(`RELAY_MAILER_ARGS', `TCP $h 587')dnl",
                      "FEATURE(`authinfo', `hash -o /etc/mail/authinfo.db')dnl",
                      "dnl ### END blmonitor smarthost", "MAILER_DEFINITIONS"],
      "authinfo": [f'AuthInfo:smtp.isp.example "U:alerts@example.test" "P:{PASSWORD}" "M:PLAIN LOGIN"'],
      "access": ["TLS_Srv:smtp.isp.example\tVERIFY:128", "Connect:127\t\t\t\tRELAY"]},
     ["mailertable"]),
    ("sendmail-destinations", SENDMAIL, RELAY, Scope.DESTINATIONS, ("Outlook.com", "gmail.com."), {},
     {"sendmail.mc": ["define(`RELAY_MAILER_ARGS', `TCP $h 587')dnl",
                      "FEATURE(`mailertable', `hash -o /etc/mail/mailertable.db')dnl"],
      "mailertable": ["gmail.com\trelay:[smtp.isp.example]", "outlook.com\trelay:[smtp.isp.example]"]},
     []),
    ("sendmail-plain", SENDMAIL, PLAIN, Scope.ALL, (), {},
     {"sendmail.mc": ["define(`SMART_HOST', `esmtp:[192.0.2.25]')dnl"]},
     ["authinfo", "access", "mailertable"]),
    ("opensmtpd-all", OPENSMTPD, RELAY, Scope.ALL, (), {},
     {"smtpd.conf": ['#was: action "relay" relay', "table blmonitor file:/etc/smtpd.blmonitor-secrets",
                     'action "relay" relay host smtp+tls://blmonitor@smtp.isp.example:587 auth <blmonitor>',
                     'match from local for any action "relay"'],
      "smtpd.blmonitor-secrets": [f"blmonitor alerts@example.test:{PASSWORD}"]},
     []),
    ("opensmtpd-465", OPENSMTPD, SMTPS, Scope.ALL, (), {},
     {"smtpd.conf": ['action "relay" relay host smtps://blmonitor@smtp.isp.example:465 auth <blmonitor>']},
     []),
    ("opensmtpd-destinations", OPENSMTPD, PLAIN, Scope.DESTINATIONS, ("gmail.com",), {},
     {"smtpd.conf": ['action "relay" relay', 'table blmonitor_destinations { "gmail.com" }',
                     'action "relay via smart host" relay host smtp://192.0.2.25:25',
                     'match from local for domain <blmonitor_destinations> action "relay via smart host"',
                     'match from local for any action "relay"']},
     ["smtpd.blmonitor-secrets"]),
]  # fmt: skip


def _apply(case: Case) -> tuple[ModuleType, Path, Files, Plan]:
    _, (module, config_dir, data), relay, scope, destinations, tweak, _, _ = case
    files = load(module, config_dir, data, **tweak)
    plan = module.plan_apply(files, relay, config_dir=config_dir, scope=scope,
                             destinations=destinations)  # fmt: skip
    return module, config_dir, files, plan


CASES = [pytest.param(case, id=case[0]) for case in APPLY_CASES]


@pytest.mark.parametrize("case", CASES)
def test_apply_writes_the_expected_lines_and_keeps_the_rest(case: Case) -> None:
    _, config_dir, files, plan = _apply(case)
    expected, untouched = case[6], case[7]
    assert plan.action == "apply" and not plan.manual and not plan.empty
    edited = {edit.path: edit for edit in plan.edits}
    for name, lines in expected.items():
        after = edited[config_dir / name].after
        assert after is not None
        assert set(lines) <= set(after.decode().splitlines()), name
    for name in untouched:
        assert config_dir / name not in edited, name
    for edit in plan.edits:
        assert edit.before == files[edit.path]
        if edit.before is not None and edit.path.name not in (
            "update-exim4.conf.conf",
            "smtpd.conf",
        ):
            # Only lines added: every line the admin had is still there, in order.
            kept = iter(edit.after.decode().splitlines() if edit.after else [])
            assert all(line in kept for line in edit.before.decode().splitlines())


@pytest.mark.parametrize("case", CASES)
def test_apply_twice_plans_nothing(case: Case) -> None:
    module, config_dir, files, plan = _apply(case)
    relay, scope, destinations = case[2], case[3], case[4]
    again = module.plan_apply(written(plan, files), relay, config_dir=config_dir, scope=scope,
                              destinations=destinations)  # fmt: skip
    assert again.empty and again.edits == () and again.commands == ()
    assert "nothing to change" in render_plan(again, relay)


@pytest.mark.parametrize("case", CASES)
def test_revert_of_untouched_files_restores_them_byte_for_byte(case: Case) -> None:
    module, config_dir, files, plan = _apply(case)
    applied = written(plan, files)
    revert = module.plan_revert(applied, files, frozenset(), config_dir=config_dir)
    assert revert.action == "revert" and revert.notes == ()
    assert written(revert, applied) == files
    assert {e.path for e in revert.edits} == {e.path for e in plan.edits}
    assert revert.commands and not any(c.optional for c in revert.commands)
    # Nothing left to undo the second time.
    assert module.plan_revert(files, files, frozenset(), config_dir=config_dir).empty


# (module, config_dir, data), relay, {file: line the admin appends after apply}
ADMIN_EDITS = [
    pytest.param(EXIM, RELAY, {"update-exim4.conf.conf": "dc_readhost='example.com'",
                               "passwd.client": "backup.example:bob:hunter2"}, id="exim"),
    pytest.param(SENDMAIL, RELAY, {"sendmail.mc": "dnl admin was here",
                                   "access": "Connect:10\tRELAY",
                                   "authinfo": 'AuthInfo:backup.example "U:bob" "P:hunter2"'}, id="sendmail"),
    pytest.param(OPENSMTPD, RELAY, {"smtpd.conf": 'match from any for domain "example.org" action "local"'},
                 id="opensmtpd"),
]  # fmt: skip


@pytest.mark.parametrize(("mta", "relay", "appended"), ADMIN_EDITS)
def test_revert_after_an_admin_edit_undoes_only_blmonitor(
    mta: Mta3, relay: Relay, appended: dict[str, str]
) -> None:
    module, config_dir, data = mta
    files = load(module, config_dir, data)
    applied = written(module.plan_apply(files, relay, config_dir=config_dir), files)
    edited = dict(applied)
    for name, line in appended.items():
        edited[config_dir / name] = text(applied, config_dir, name).encode() + line.encode() + b"\n"
    changed = frozenset(config_dir / name for name in appended)
    revert = module.plan_revert(edited, files, changed, config_dir=config_dir)
    result = written(revert, edited)
    for path, original in files.items():
        if path.name in appended:
            # blmonitor's lines are gone, the admin's line stays: the original plus that line.
            assert original is not None or path.name == "authinfo"
            assert result[path] == (original or b"") + appended[path.name].encode() + b"\n"
        else:
            assert result[path] == original, path
    assert sorted(n for n in revert.notes if "edited since apply" in n) == sorted(
        f"{path} was edited since apply: only blmonitor's changes are undone" for path in changed
    )


@pytest.mark.parametrize(("module", "config_dir", "data"), MTAS)
def test_the_password_is_never_in_a_plan(module: ModuleType, config_dir: Path, data: str) -> None:
    files = load(module, config_dir, data)
    plan = module.plan_apply(files, RELAY, config_dir=config_dir)
    secret = [e for e in plan.edits if e.secret]
    assert len(secret) == 1
    assert secret[0].after is not None and PASSWORD.encode() in secret[0].after
    assert secret[0].mode == (0o600 if module is sendmail else 0o640)
    assert all(PASSWORD.encode() not in (e.after or b"") for e in plan.edits if not e.secret)
    shown = render_plan(plan, RELAY)
    told = f"{secret[0].path}: credentials for [smtp.isp.example]:587"
    assert f"{told} (new)" in shown and "\x00" not in shown
    assert SHOWN not in shown and "alerts@example.test:" not in shown  # not even the line
    assert all(PASSWORD not in arg for c in plan.commands for arg in c.argv)
    # Revert tells the credentials it removes, never their line.
    revert = module.plan_revert(written(plan, files), files, frozenset(), config_dir=config_dir)
    shown = render_plan(revert, RELAY)
    assert "\x00" not in shown and f"{told} (removed)" in shown


@pytest.mark.parametrize(("module", "config_dir", "data"), MTAS)
def test_a_new_password_rewrites_the_credential_line(
    module: ModuleType, config_dir: Path, data: str
) -> None:
    files = load(module, config_dir, data)
    applied = written(module.plan_apply(files, RELAY, config_dir=config_dir), files)
    # The password file changed since: the line on disk no longer masks to PASSWORD.
    rotated = {
        p: c.replace(PASSWORD.encode(), b"old password") if c else c for p, c in applied.items()
    }
    plan = module.plan_apply(rotated, RELAY, config_dir=config_dir)
    assert len(plan.edits) == 1 and plan.edits[0].secret
    assert written(plan, rotated) == applied


# (module, config_dir, data), config_dir used, [(argv, validates, reload, optional)]
COMMANDS = [
    pytest.param(EXIM, Path("/etc/exim4"), [
        (("chown", "root:Debian-exim", "/etc/exim4/passwd.client"), False, False, False),
        (("chmod", "0640", "/etc/exim4/passwd.client"), False, False, False),
        (("update-exim4.conf",), False, False, False),
        (("exim4", "-bV"), True, False, False),
        (("systemctl", "reload", "exim4"), False, True, False),
        (("exim4", "-qf"), False, False, True),
    ], id="exim"),
    pytest.param(EXIM, Path("/srv/copy/exim4"), [
        (("chown", "root:Debian-exim", "/srv/copy/exim4/passwd.client"), False, False, False),
        (("chmod", "0640", "/srv/copy/exim4/passwd.client"), False, False, False),
        (("update-exim4.conf", "-d", "/srv/copy/exim4", "-o", "/srv/copy/exim4/config.autogenerated"),
         False, False, False),
        (("exim4", "-C", "/srv/copy/exim4/config.autogenerated", "-bV"), True, False, False),
        (("systemctl", "reload", "exim4"), False, True, False),
        (("exim4", "-qf"), False, False, True),
    ], id="exim-copy"),
    pytest.param(SENDMAIL, Path("/srv/copy/mail"), [
        (("sh", "-c", 'm4 "$1" > "$2"', "sh", "/srv/copy/mail/sendmail.mc",
          "/srv/copy/mail/sendmail.cf.blmonitor"), True, False, False),
        (("sh", "-c", 'umask 077 && makemap -C "$2" hash "$1" < "$1"', "sh", "/srv/copy/mail/authinfo",
          "/srv/copy/mail/sendmail.cf.blmonitor"), False, False, False),
        (("sh", "-c", 'makemap -C "$2" hash "$1" < "$1"', "sh", "/srv/copy/mail/access",
          "/srv/copy/mail/sendmail.cf.blmonitor"), False, False, False),
        (("mv", "/srv/copy/mail/sendmail.cf.blmonitor", "/srv/copy/mail/sendmail.cf"), False, False, False),
        (("systemctl", "reload", "sendmail"), False, True, False),
        (("sendmail", "-q"), False, False, True),
    ], id="sendmail"),
    pytest.param(OPENSMTPD, Path("/srv/copy"), [
        (("chown", "root:opensmtpd", "/srv/copy/smtpd.blmonitor-secrets"), False, False, False),
        (("chmod", "0640", "/srv/copy/smtpd.blmonitor-secrets"), False, False, False),
        (("smtpd", "-n", "-f", "/srv/copy/smtpd.conf"), True, False, False),
        (("systemctl", "restart", "opensmtpd"), False, True, False),
        (("smtpctl", "schedule", "all"), False, False, True),
    ], id="opensmtpd"),
]  # fmt: skip


@pytest.mark.parametrize(("mta", "config_dir", "expected"), COMMANDS)
def test_commands_use_config_dir_and_the_right_flags(
    mta: Mta3, config_dir: Path, expected: list[tuple[tuple[str, ...], bool, bool, bool]]
) -> None:
    module, default_dir, data = mta
    files = {
        config_dir / p.relative_to(default_dir): c
        for p, c in load(module, default_dir, data).items()
    }
    plan = module.plan_apply(files, RELAY, config_dir=config_dir)
    assert [(c.argv, c.validates, c.reload, c.optional) for c in plan.commands] == expected
    assert all(c.why for c in plan.commands)


def test_sendmail_revert_removes_the_maps_it_created() -> None:
    module, config_dir, data = SENDMAIL
    files = load(module, config_dir, data)
    plan = module.plan_apply(files, RELAY, config_dir=config_dir, scope=Scope.DESTINATIONS,
                             destinations=["gmail.com"])  # fmt: skip
    revert = module.plan_revert(written(plan, files), files, frozenset(), config_dir=config_dir)
    argvs = [c.argv for c in revert.commands]
    assert ("rm", "-f", "/etc/mail/authinfo.db") in argvs
    assert ("rm", "-f", "/etc/mail/mailertable.db") in argvs
    assert argvs[-1] == ("systemctl", "reload", "sendmail")


def test_exim_keeps_other_credentials_and_puts_its_own_first() -> None:
    module, config_dir, data = EXIM
    files = load(module, config_dir, data)
    files[config_dir / "passwd.client"] = b"# header\n*.example.net:bob:hunter2\n"
    plan = module.plan_apply(files, RELAY, config_dir=config_dir)
    after = text(written(plan, files), config_dir, "passwd.client")
    # nwildlsearch takes the first match: ours must come before the admin's wildcard lines.
    assert after == ("# header\n# BEGIN blmonitor smarthost\n"
                     f"smtp.isp.example:alerts@example.test:{PASSWORD}\n"
                     "# END blmonitor smarthost\n*.example.net:bob:hunter2\n")  # fmt: skip


def test_exim_with_a_new_login_rewrites_only_its_own_line() -> None:
    module, config_dir, data = EXIM
    files = load(module, config_dir, data)
    applied = written(module.plan_apply(files, RELAY, config_dir=config_dir), files)
    other = Relay("smtp.isp.example", 587, "other@example.test", PASSWORD_FILE)
    plan = module.plan_apply(applied, other, config_dir=config_dir)
    assert [e.path.name for e in plan.edits] == ["passwd.client"]
    after = text(written(plan, applied), config_dir, "passwd.client")
    assert f"smtp.isp.example:other@example.test:{PASSWORD}" in after
    assert "alerts@example.test" not in after


@pytest.mark.parametrize(("name", "content", "why"), [
    ("exim4.conf", b"# hand-written\n", "/etc/exim4/exim4.conf exists"),
    ("update-exim4.conf.conf", b"dc_eximconfig_configtype='none'\n", "dc_eximconfig_configtype='none'"),
])  # fmt: skip
def test_exim_prints_a_recommendation_for_a_config_it_does_not_manage(
    name: str, content: bytes, why: str
) -> None:
    module, config_dir, data = EXIM
    files = load(module, config_dir, data)
    files[config_dir / name] = content
    plan = module.plan_apply(files, RELAY, config_dir=config_dir)
    assert plan.manual and not plan.empty and plan.edits == () and plan.commands == ()
    assert why in plan.notes[0]
    for line in (
        "route_list = * smtp.isp.example::587 byname",
        "hosts_require_tls = *",
        "hosts_require_auth = *",
        f"client_send = ^alerts@example.test^{SHOWN}",
    ):
        assert line in [shown.strip() for shown in plan.snippet.splitlines()]
    assert PASSWORD not in plan.snippet
    if name == "exim4.conf":
        revert = module.plan_revert(files, files, frozenset(), config_dir=config_dir)
        assert revert.manual and revert.edits == ()
        assert "remove the blmonitor_smarthost router" in revert.snippet


def test_exchange_apply_saves_the_connectors_then_sets_the_smart_host() -> None:
    plan = exchange.plan_apply(RELAY)
    assert plan.mta is Mta.EXCHANGE and plan.manual and not plan.empty and plan.edits == ()
    lines = plan.snippet.splitlines()
    export = next(i for i, line in enumerate(lines) if "Export-Clixml" in line)
    assert export < next(i for i, line in enumerate(lines) if "Set-SendConnector" in line)
    snippet = plan.snippet
    for part in (
        '-SmartHosts "smtp.isp.example"',
        "-DNSRoutingEnabled $false",
        "-Port 587",
        "-SmartHostAuthMechanism BasicAuthRequireTLS",
        "-AuthenticationCredential $cred",
        "-RequireTLS $true",
        "$cred = Get-Credential -UserName 'alerts@example.test'",
        "SmartHosts,Port,SmartHostAuthMechanism,RequireTLS",
    ):
        assert part in snippet, part
    assert PASSWORD not in snippet and "ConvertTo-SecureString" not in snippet
    assert SHOWN not in snippet  # the password is typed at Get-Credential's prompt only


def test_exchange_destinations_get_a_connector_of_their_own() -> None:
    plan = exchange.plan_apply(RELAY, connector="isp relay", scope=Scope.DESTINATIONS,
                               destinations=["gmail.com", "Outlook.com"])  # fmt: skip
    assert (
        'New-SendConnector -Name "isp relay" -Internet -AddressSpaces "SMTP:gmail.com;1", '
        '"SMTP:outlook.com;1"'
    ) in plan.snippet
    assert "Set-SendConnector" not in plan.snippet and "Export-Clixml" not in plan.snippet


def test_exchange_revert_restores_the_saved_connectors_and_removes_its_own() -> None:
    plan = exchange.plan_revert(connector="isp relay")
    assert plan.action == "revert" and plan.manual
    snippet = plan.snippet
    for part in (
        "Import-Clixml",
        "Set-SendConnector $c.Name -DNSRoutingEnabled $true -SmartHosts $null",
        "-Port $c.Port -RequireTLS $c.RequireTLS",
        'Remove-SendConnector -Identity "isp relay"',
        "Remove-Item",
    ):
        assert part in snippet, part
    applied = exchange.plan_apply(RELAY)
    saved = next(line for line in applied.snippet.splitlines() if "Export-Clixml" in line)
    assert exchange.SAVED in saved and exchange.SAVED in snippet


def test_exchange_without_login_asks_for_no_credential() -> None:
    plan = exchange.plan_apply(Relay("192.0.2.25", 25, tls=False))
    assert "Get-Credential" not in plan.snippet and "-SmartHostAuthMechanism None" in plan.snippet
    assert "-RequireTLS $false" in plan.snippet


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sendmail.plan_apply(load(*SENDMAIL), SMTPS, config_dir=SENDMAIL[1]), "port 465"),
    (lambda: exchange.plan_apply(SMTPS), "STARTTLS only"),
    (lambda: exim.plan_apply(load(*EXIM), Relay("2001:db8::25"), config_dir=EXIM[1]), "IPv4"),
    (lambda: opensmtpd.plan_apply(load(*OPENSMTPD), RELAY, config_dir=OPENSMTPD[1],
                                  scope=Scope.DESTINATIONS), "at least one destination"),
    (lambda: sendmail.plan_apply({}, RELAY, config_dir=SENDMAIL[1]), "is sendmail installed"),
    (lambda: opensmtpd.plan_apply({Path("/etc/smtpd.conf"): b"listen on localhost\n"}, RELAY,
                                  config_dir=Path("/etc")), "no relay action"),
    (lambda: exim.plan_apply({Path("/etc/exim4/update-exim4.conf.conf"): b"",
                              Path("/etc/exim4/passwd.client"): b"# BEGIN blmonitor smarthost\nx:y:z\n"},
                             RELAY, config_dir=EXIM[1]), "must appear once each"),
    (lambda: exchange.plan_apply(RELAY, connector='a"b'), "no quotes"),
])  # fmt: skip
def test_what_cannot_be_planned_is_a_plan_error(call: Callable[[], Plan], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        call()


@pytest.mark.parametrize(("action", "expected"), [
    ('action "relay" relay', 'action "relay" relay host smtp+tls://blmonitor@smtp.isp.example:587 auth <blmonitor>'),
    ("action out relay helo mail.example.com backup mx mx1.example.com tls no-verify # MXs",
     "action out relay host smtp+tls://blmonitor@smtp.isp.example:587 auth <blmonitor> helo mail.example.com"),
    ('action "old" relay host smtp://old@relay.example auth <old> src 192.0.2.1',
     'action "old" relay host smtp+tls://blmonitor@smtp.isp.example:587 auth <blmonitor> src 192.0.2.1'),
])  # fmt: skip
def test_opensmtpd_replaces_only_the_routing_options_of_a_relay_action(
    action: str, expected: str
) -> None:
    module, config_dir, _ = OPENSMTPD
    files: Files = {
        config_dir / "smtpd.conf": f"{action}\nmatch from local for any action out\n".encode()
    }
    conf = text(
        written(module.plan_apply(files, RELAY, config_dir=config_dir), files),
        config_dir,
        "smtpd.conf",
    )
    assert conf.splitlines()[1:4] == [
        f"#was: {action}",
        "table blmonitor file:/etc/smtpd.blmonitor-secrets",
        expected,
    ]


def test_opensmtpd_ipv6_relay_is_bracketed() -> None:
    module, config_dir, _ = OPENSMTPD
    plan = module.plan_apply(load(*OPENSMTPD), Relay("2001:db8::25", 587), config_dir=config_dir)
    conf = text(written(plan, load(*OPENSMTPD)), config_dir, "smtpd.conf")
    assert 'action "relay" relay host smtp+tls://[2001:db8::25]:587' in conf.splitlines()


# --- the real tools, when they are installed ---------------------------------------------------

_UNPACKED = (
    Path(__file__).parent.parent / ".tools/sendmail-cf/usr/share/sendmail/cf"
)  # scripts/check
CF_DIR = Path(
    os.environ.get(
        "BLMONITOR_SENDMAIL_CF",
        _UNPACKED if (_UNPACKED / "m4" / "cf.m4").is_file() else "/usr/share/sendmail/cf",
    )
)


def _m4_missing() -> str:
    if not shutil.which("m4"):
        return "m4 is not installed"
    if not (CF_DIR / "m4" / "cf.m4").is_file():
        return f"sendmail-cf's m4 files are not at {CF_DIR} (set BLMONITOR_SENDMAIL_CF)"
    return ""


@pytest.mark.skipif(bool(_m4_missing()), reason=_m4_missing() or "ok")
@pytest.mark.parametrize(("scope", "expected"), [
    (Scope.ALL, ["DSesmtp:[smtp.isp.example]", "Kauthinfo hash -o /etc/mail/authinfo.db"]),
    (Scope.DESTINATIONS, ["DS", "Kmailertable hash -o /etc/mail/mailertable.db",
                          "Kauthinfo hash -o /etc/mail/authinfo.db"]),
])  # fmt: skip
def test_m4_builds_the_planned_sendmail_mc(
    scope: Scope, expected: list[str], tmp_path: Path
) -> None:
    module, config_dir, _ = SENDMAIL
    files = load(*SENDMAIL)
    plan = module.plan_apply(
        files, RELAY, config_dir=config_dir, scope=scope, destinations=["gmail.com"]
    )
    mc = text(written(plan, files), config_dir, "sendmail.mc")
    for name in ("dialup.m4", "provider.m4"):  # Debian's per-site includes, empty by default
        (tmp_path / name).write_text("")
    mc = mc.replace("/etc/mail/m4/", f"{tmp_path}/")
    if str(CF_DIR) != "/usr/share/sendmail/cf":
        # Debian's ostype and domain files include /usr/share/sendmail/cf/debian/autoconf.m4.
        mc = mc.replace("/usr/share/sendmail/cf", str(CF_DIR))
        mc = mc.replace("OSTYPE(`debian')dnl", "OSTYPE(`linux')dnl").replace(
            "DOMAIN(`debian-mta')dnl\n", ""
        )
    (tmp_path / "sendmail.mc").write_text(mc)
    run = subprocess.run(
        ["m4", str(tmp_path / "sendmail.mc")], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
    cf = run.stdout.splitlines()
    assert set(expected) <= set(cf)
    mailers = run.stdout.split("\nM")
    port = "A=TCP $h 587"
    assert port in next(m for m in mailers if m.startswith("relay,"))
    assert (port in next(m for m in mailers if m.startswith("esmtp,"))) is (scope is Scope.ALL)


@pytest.mark.skipif(not shutil.which("smtpd"), reason="OpenSMTPD's smtpd is not installed")
@pytest.mark.parametrize(("relay", "scope"), [(RELAY, Scope.ALL), (SMTPS, Scope.DESTINATIONS),
                                              (PLAIN, Scope.ALL)])  # fmt: skip
def test_smtpd_accepts_the_planned_configuration(
    relay: Relay, scope: Scope, tmp_path: Path
) -> None:
    (tmp_path / "aliases").write_text("postmaster: root\n")
    files = {p: c for p, c in load(opensmtpd, tmp_path, "opensmtpd").items()}
    conf = tmp_path / "smtpd.conf"
    files[conf] = (files[conf] or b"").replace(
        b"file:/etc/aliases", f"file:{tmp_path}/aliases".encode()
    )
    plan = opensmtpd.plan_apply(
        files, relay, config_dir=tmp_path, scope=scope, destinations=["gmail.com"]
    )
    for path, content in written(plan, files).items():
        if content is not None:
            path.write_bytes(content)
    check = next(c for c in plan.commands if c.validates)
    run = subprocess.run(check.argv, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "configuration OK" in run.stdout + run.stderr
