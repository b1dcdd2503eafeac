"""The smart-host use cases without an MTA: refusals, the request the daemon writes, previews.

The end-to-end cases on a real Postfix are in test_smarthost_daemon.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import load_config
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
