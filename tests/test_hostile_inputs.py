"""Bad input gets one clear line and a usage exit code: the low items of issue 12, and a
property test over every option of every command (no traceback, never "listed" for nothing).
Everything stays on loopback: the resolver is a port where nothing listens."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.dnsbl import answers
from blmonitor.dnsbl.catalog import embedded_catalog, generic_zone, with_dqs
from tests.dnsservers import free_port

NOWHERE = f"127.0.0.1:{free_port()}"  # nothing listens: every lookup fails at once


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[monitor]
targets = ["203.0.113.5"]
database = "{tmp_path / "blmonitor.db"}"
[dns]
resolver = ["{NOWHERE}"]
timeout = 0.3
[notify]
server_name = "mx.example"
""")  # fmt: skip
    return path


def run(*args: str) -> tuple[int, str]:
    got = CliRunner().invoke(cli.main, list(args))
    assert "Traceback" not in got.output, got.output
    return got.exit_code, got.output.strip().splitlines()[-1] if got.output.strip() else ""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["check", "203.0.113.5", "--timeout", "inf"], "--timeout inf: give seconds above 0"),
        (["check", "203.0.113.5", "--timeout", "nan"], "--timeout nan: give seconds above 0"),
        (["check", "203.0.113.5", "--timeout", "1e9"], "--timeout 1e+09: give seconds above 0"),
        (["check", ""], "the targets given are empty"),
        (["check", "fe80::1%eth0"], "a scoped (link-local) address"),
        (["check", "203.0.113.5", "--dqs-key-file", "/dev/zero"], "not a regular file"),
        (["check", "203.0.113.5", "--lists", "/dev/zero"], "cannot read the catalog: not a regular file"),
        (["status", "-c", "/dev/zero"], "cannot read the config file: not a regular file"),
        (["relaytest", "127.0.0.1", "--timeout", "inf"], "--timeout inf: give seconds above 0"),
        (["report", "--html", "/dev/null"], "cannot write /dev/null: not a regular file"),
    ],
)  # fmt: skip
def test_bad_values_are_one_line_and_exit_2(args: list[str], line: str) -> None:
    code, last = run(*args, *(["--resolver", NOWHERE] if args[0] == "check" else []))
    assert code == 2 and line in last and last.startswith("blmonitor: error: ")


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"\xff\xfe\x00binary", "not UTF-8 text (byte 0)"),
        (b"", "the targets given are empty"),
        (b"# only a comment\n\n", "the targets given are empty"),
    ],
)
def test_a_bad_targets_file_is_a_usage_error(tmp_path, content: bytes, line: str) -> None:
    path = tmp_path / "ips.txt"
    path.write_bytes(content)
    code, last = run("check", "-f", str(path), "--resolver", NOWHERE)
    assert code == 2 and line in last


@pytest.mark.parametrize(
    ("toml", "line"),
    [
        ('[monitor]\ninterval = "99999999999999d"\n', "longer than the maximum of 3650d"),
        ('[monitor]\nzones = [".."]\n', "'..' is not a zone name"),
        ('[monitor]\nzones = ["zen.spamhaus.org:ipv5"]\n', "is not a zone name"),
        (b"[monitor]\ninterval = \xff\n", "not UTF-8 text"),
    ],
)
def test_a_bad_config_stops_at_load(tmp_path, toml: str | bytes, line: str) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    code, last = run("status", "-c", str(path))
    assert code == 2 and line in last


def test_txt_words_are_escaped_and_the_dqs_key_never_shown() -> None:
    zone = generic_zone("bl.example:ipv4")
    fake = "listed\x1b[2J\r\nCLEAN: nothing listed"
    assert answers._shown_txt(fake, zone) == "listed\\x1b[2J\\x0d\\x0aCLEAN: nothing listed"
    key = "k3yk3yk3yk3yk3yk3yk3yk3yk3"
    zen = with_dqs(embedded_catalog().find("spamhaus-zen"), key)  # type: ignore[arg-type]
    echoed = answers._shown_txt(f"2.0.0.127.{key}.zen.dq.spamhaus.net is listed", zen)
    assert key not in echoed and "[DQS key]" in echoed


# --- every option of every command, with values nobody should type -------------------------

BAD = ["", "-1", "nan", "1e999", "\x00", "/dev/zero", "x" * 300, "::ffff:", "%s%n", "🙂"]
# what would change this machine, or name a host to reach (the system resolver, the network):
# never fuzzed here (their checks have tests of their own)
SKIP = {"--apply", "--yes", "--once", "--help", "--version", "--debug", "--ip-url", "--source",
        "--relaytest"}  # fmt: skip


def _commands() -> list[tuple[list[str], click.Command]]:
    ctx = click.Context(cli.main)
    out = []
    for name in cli.main.list_commands(ctx):
        command = cli.main.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            out += [([name, sub], command.commands[sub]) for sub in command.commands]
        else:
            out.append(([name], command))
    return out


def _required(path: list[str]) -> list[str]:
    return {
        "check": ["203.0.113.5"], "explain": ["550 5.7.1 blocked"], "relaytest": ["127.0.0.1"],
        "scan": ["/dev/null"], "notify": ["--test"],
    }.get(path[-1], [])  # fmt: skip


def test_no_option_value_prints_a_traceback_or_says_listed(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a value taken as a relative file name lands here
    rng = random.Random(12)
    tried = 0
    for path, command in _commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.opts[0] in SKIP or param.is_flag:
                continue
            for value in rng.sample(BAD, 4):
                # `run` is the daemon: only ever once here
                once = ["--once"] if path == ["run"] else []
                args = [*path, *_required(path), *once, param.opts[0], value]
                if "--config" not in args and any("--config" in p.opts for p in command.params
                                                  if isinstance(p, click.Option)):  # fmt: skip
                    args += ["--config", str(config)]
                if path[0] == "check" and param.opts[0] != "--resolver":
                    args += ["--resolver", NOWHERE]
                got = CliRunner().invoke(cli.main, args)
                tried += 1
                assert "Traceback" not in got.output, (args, got.output)
                assert not isinstance(got.exception, Exception) or isinstance(
                    got.exception, SystemExit
                ), (args, got.exception)
                # exit 1 is "listed"; for posture, "a finding is a warning or worse"
                said = ("LISTED", "WARNING", "CRITICAL") if path == ["posture"] else ("LISTED",)
                assert got.exit_code != 1 or any(w in got.output for w in said), (args, got.output)
    assert tried > 100


def test_a_resolver_alone_never_lets_discovery_ask_outside(monkeypatch) -> None:
    """`check --resolver X` with no target: this machine's own addresses only (issue 12)."""
    from blmonitor.dnsbl import publicip

    async def outside(**kwargs: object) -> list[object]:
        raise AssertionError("an outside service was asked")

    monkeypatch.setattr(publicip, "discover", outside)
    monkeypatch.setattr(publicip, "postfix_addresses", lambda: [])
    monkeypatch.setattr(publicip, "route_addresses", lambda: [])
    code, last = run("check", "--resolver", NOWHERE)
    assert code == 3 and "no outside service is asked" in last


BAD_VALUES = ["1e999", "-1", '""', "[]", "{}", "true", '"' + "x" * 5000 + '"', '"\\u0000"',
              '"../.."', "2026-12-06", "[1, 2]"]  # fmt: skip


def test_no_config_value_prints_a_traceback(tmp_path) -> None:
    """Every key of every table, with values nobody should write: loaded, or one ConfigError."""
    import dataclasses

    from blmonitor import config as cfg
    from blmonitor.errors import BlmonitorError

    tables = {f.name: f.type for f in dataclasses.fields(cfg.Config) if f.name != "source"}
    tried = 0
    for table in tables:
        kind = getattr(cfg, {"monitor": "MonitorConfig", "dns": "DnsConfig",
                             "notify": "NotifyConfig", "bounces": "BouncesConfig",
                             "smarthost": "SmarthostConfig", "diagnose": "DiagnoseConfig"}.get(table, ""), None)  # fmt: skip
        if kind is None:
            continue
        for field in dataclasses.fields(kind):
            for value in BAD_VALUES:
                text = f"[{table}]\n{field.name} = {value}\n"
                with contextlib.suppress(BlmonitorError):
                    cfg.parse_config(
                        text, source="t.toml", defaults=cfg.Defaults(tmp_path / "h.db")
                    )
                tried += 1
    assert tried > 300
