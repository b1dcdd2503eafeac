"""The smart-host use cases without an MTA: refusals, the request the daemon writes, previews.

The end-to-end cases on a real Postfix are in test_smarthost_daemon.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import load_config
from blmonitor.smarthost import defaults, exim, opensmtpd, sendmail
from blmonitor.smarthost.plan import Mta, Relay
from blmonitor.smarthost.service import password_stamp


def _config(tmp_path: Path, *extra: str) -> Path:
    secret = tmp_path / "relay.pass"
    secret.write_text("hunter2\n")
    path = tmp_path / "config.toml"
    lines = "\n".join(extra)
    path.write_text(
        f'[monitor]\ndatabase = "{tmp_path / "h.db"}"\n[smarthost]\nhost = "smtp.isp.example"\n'
        f'username = "me@isp.example"\npassword_file = "{secret}"\nmta = "postfix"\n'
        f'config_dir = "{tmp_path / "postfix"}"\nstate_dir = "{tmp_path / "state"}"\n{lines}\n'
    )
    return path


@pytest.mark.parametrize("command", ["apply", "plan"])
def test_a_destination_with_scope_all_is_refused(tmp_path: Path, command: str) -> None:
    config = _config(tmp_path)  # scope = "all", the default
    result = CliRunner().invoke(
        cli.main, ["smarthost", command, "-c", str(config), "--destination", "gmail.com"]
    )
    assert result.exit_code == 2
    assert result.output == (
        'blmonitor: error: --destination routes some domains only, but [smarthost] scope = "all" '
        'routes all mail: set scope = "destinations" in the config, or leave --destination out\n'
    )
    assert not (tmp_path / "state").exists()  # nothing applied, nothing recorded as applied


def test_sync_with_no_request_and_nothing_applied_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, ["smarthost", "sync", "-c", str(_config(tmp_path))])
    assert (result.exit_code, result.output) == (0, "no request\n")


def test_the_password_stamp_tells_a_rewrite_and_holds_no_content(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    first = password_stamp(config)
    assert first is not None and len(first) == 64
    secret = tmp_path / "relay.pass"
    (tmp_path / "new").write_text("hunter3\n")
    os.replace(tmp_path / "new", secret)  # how `install` and editors replace a file
    assert password_stamp(config) not in (None, first)
    secret.unlink()
    assert password_stamp(config) is None


# --- a preview for an MTA that is not installed here -------------------------------------------

DATA = Path(__file__).parent / "data" / "smarthost"


@pytest.mark.parametrize(
    ("mta", "main", "wanted"),
    [
        ("exim", "update-exim4.conf.conf", "+dc_smarthost='smtp.isp.example::587'"),
        ("sendmail", "sendmail.mc", "+define(`SMART_HOST', `esmtp:[smtp.isp.example]')dnl"),
        ("opensmtpd", "smtpd.conf",
         '+action "relay" relay host smtp+tls://blmonitor@smtp.isp.example:587 auth <blmonitor>'),
    ],
)  # fmt: skip
def test_plan_for_an_mta_not_installed_is_a_preview_on_debians_files(
    tmp_path: Path, mta: str, main: str, wanted: str
) -> None:
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    config = _config(tmp_path)
    result = CliRunner().invoke(
        cli.main, ["smarthost", "plan", "-c", str(config), "--mta", mta, "--config-dir", str(empty)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        f"# preview: planned against Debian's default {empty / main}, not this host's"
    )
    assert wanted in result.output.splitlines()
    assert "hunter2" not in result.output
    assert sorted(p.name for p in empty.iterdir()) == []  # a preview writes nothing


def _added(module: Any, files: Any, config_dir: Path) -> set[str]:
    """The lines a plan adds to the files that are not credentials."""
    relay = Relay("smtp.isp.example", 587, "me", Path("/p"))
    plan = module.plan_apply(files, relay, config_dir=config_dir)
    return {line for e in plan.edits if not e.secret
            for line in (e.after or b"").decode().splitlines()
            if line not in (e.before or b"").decode().splitlines()}  # fmt: skip


def test_the_preview_is_debians_lines_and_plans_as_the_whole_files_do() -> None:
    for mta, module, data in ((Mta.EXIM, exim, "exim4"), (Mta.SENDMAIL, sendmail, "mail"),
                              (Mta.OPENSMTPD, opensmtpd, "opensmtpd")):  # fmt: skip
        for name, text in defaults.DEBIAN[mta].items():
            shipped = (DATA / data / name).read_text().splitlines()
            # every line is Debian's (the host name a postinst asks for left empty)
            assert all(line in shipped or line.endswith("=''") for line in text.splitlines())
        config_dir = Path("/etc/x")
        files, notes = defaults.preview(mta, config_dir, {})
        whole = {config_dir / n: (DATA / data / n).read_bytes() for n in defaults.DEBIAN[mta]}
        assert len(notes) == 1
        assert defaults.preview(mta, config_dir, whole) == (whole, ())  # installed: no preview

        assert _added(module, files, config_dir) == _added(module, whole, config_dir)
