"""deploy/: the systemd units are hardened and run `blmonitor run`; the cron line stays silent
unless a run fails; systemd-analyze (when installed) finds nothing to say about the units."""

from __future__ import annotations

import configparser
import fcntl
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

DEPLOY = Path(__file__).parent.parent / "deploy"
UNITS = ("blmonitor.service", "blmonitor-oneshot.service", "blmonitor.timer",
         "blmonitor-smarthost.path", "blmonitor-smarthost.service")  # fmt: skip
SERVICES = ("blmonitor.service", "blmonitor-oneshot.service")

# The [Service] settings both services must have, exactly.
HARDENING = {
    "User": "blmonitor",
    "StateDirectory": "blmonitor",
    "ConfigurationDirectory": "blmonitor",
    "UMask": "0077",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
}
# What may differ between the daemon and the oneshot; every other [Service] line is the same.
PER_VARIANT = {"Type", "ExecStart", "ExecReload", "Restart", "RestartSec", "TimeoutStartSec"}


class _Repeatable(dict[str, Any]):
    """configparser's dict_type: a key given twice keeps both values (joined by a newline),
    as systemd appends for list settings such as SystemCallFilter=."""

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)


class _UnitParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:
        return optionstr  # systemd keys are case-sensitive


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    parser = _UnitParser(
        strict=False, interpolation=None, dict_type=_Repeatable, empty_lines_in_values=False
    )
    parser.read_string(path.read_text("utf-8"), source=str(path))
    return {
        name: {key: value.split("\n") for key, value in parser.items(name, raw=True)}
        for name in parser.sections()
    }


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0]


@pytest.fixture(scope="module")
def units() -> dict[str, dict[str, dict[str, list[str]]]]:
    return {name: parse_unit(DEPLOY / name) for name in UNITS}


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_hardened(units, name: str) -> None:
    unit = units[name]
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, f"{name}: {key}="
    assert unit["Service"]["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert "DynamicUser" not in unit["Service"]  # the static user is chosen: see the unit
    assert one(unit, "Unit", "After") == one(unit, "Unit", "Wants") == "network-online.target"


def test_both_services_share_every_hardening_line(units) -> None:
    daemon, oneshot = (
        {k: v for k, v in units[name]["Service"].items() if k not in PER_VARIANT}
        for name in SERVICES
    )
    assert daemon == oneshot


def test_daemon_runs_in_the_foreground_and_reloads_with_sighup(units) -> None:
    unit = units["blmonitor.service"]
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert Path(argv[0]).name == "blmonitor"
    assert argv[1:] == ["run", "--config", "/etc/blmonitor/config.toml"]
    assert one(unit, "Service", "Type") in {"simple", "exec"}
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_oneshot_runs_once_and_cannot_hang_the_timer(units) -> None:
    unit = units["blmonitor-oneshot.service"]
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert Path(argv[0]).name == "blmonitor"
    assert argv[1:] == ["run", "--once", "--config", "/etc/blmonitor/config.toml"]
    assert one(unit, "Service", "Type") == "oneshot"
    assert "Restart" not in unit["Service"]
    assert one(unit, "Service", "TimeoutStartSec")  # a oneshot has no start timeout otherwise
    assert "Install" not in unit  # started by the timer, never enabled itself


def test_timer_starts_the_oneshot_every_15_minutes(units) -> None:
    timer = units["blmonitor.timer"]["Timer"]
    assert timer["Unit"] == ["blmonitor-oneshot.service"]
    assert timer["OnBootSec"] == ["2min"]
    assert timer["OnUnitActiveSec"] == ["15min"]
    assert timer["RandomizedDelaySec"] == ["60"]
    # Persistent= only has an effect with OnCalendar= (systemd.timer(5)).
    assert "Persistent" not in timer or "OnCalendar" in timer
    assert units["blmonitor.timer"]["Install"]["WantedBy"] == ["timers.target"]


def test_the_daemon_and_the_timer_conflict(units) -> None:
    def conflicts(name: str) -> set[str]:
        return set(" ".join(units[name]["Unit"].get("Conflicts", [])).split())

    assert conflicts("blmonitor.service") == {"blmonitor.timer", "blmonitor-oneshot.service"}
    assert conflicts("blmonitor.timer") == {"blmonitor.service"}
    assert conflicts("blmonitor-oneshot.service") == {"blmonitor.service"}


def test_parser_keeps_repeated_keys(tmp_path: Path) -> None:
    path = tmp_path / "x.service"
    path.write_text(
        "[Service]\nSystemCallFilter=@a\nSystemCallFilter=~@b\nCapabilityBoundingSet=\n"
    )
    assert parse_unit(path)["Service"] == {
        "SystemCallFilter": ["@a", "~@b"],
        "CapabilityBoundingSet": [""],
    }


# --- systemd-analyze verify ----------------------------------------------------------------


def _verify(directory: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_LOG_COLOR": "0"},
    )


def _runnable(line: str) -> str:
    """An Exec*= line whose program exists here (verify checks that it is executable)."""
    program, _, args = line.partition(" ")
    if Path(program).is_file() and os.access(program, os.X_OK):
        return line
    found = shutil.which(Path(program).name) or shutil.which("true") or "/bin/true"
    return f"{found} {args}"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed "
                    "(Debian: apt-get install systemd)")  # fmt: skip
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    # verify exits 0 even on unknown keys, so a broken copy first proves it reports them here.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.service").write_text("[Service]\nExecStart=/bin/true\nNoSuchKey=1\n")
    probe = _verify(broken, "x.service")
    if "NoSuchKey" not in probe.stdout + probe.stderr:
        pytest.skip(f"systemd-analyze verify does not work here: {probe.stderr.strip()!r}")

    for name in UNITS:
        text = (DEPLOY / name).read_text("utf-8")
        text = re.sub(r"(?m)^(Exec\w+=)(.*)$", lambda m: m[1] + _runnable(m[2]), text)
        (tmp_path / name).write_text(text)
    result = _verify(tmp_path, *UNITS)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- cron ----------------------------------------------------------------------------------

CRON = (DEPLOY / "blmonitor.cron").read_text("utf-8")


def _cron_job() -> tuple[list[str], str, str]:
    jobs = [line for line in CRON.splitlines() if line and not line.startswith("#") and
            not re.match(r"^[A-Z_]+=", line)]  # fmt: skip
    assert len(jobs) == 1
    fields = jobs[0].split(None, 6)
    return fields[:5], fields[5], fields[6]


def test_cron_line_runs_once_every_15_minutes_as_blmonitor() -> None:
    schedule, user, command = _cron_job()
    assert schedule == ["*/15", "*", "*", "*", "*"]
    assert user == "blmonitor"
    assert "blmonitor run --once --config /etc/blmonitor/config.toml" in command
    assert "flock -n" in command
    assert "%" not in command  # cron turns % into a newline
    assert re.search(r"(?m)^MAILTO=\S+", CRON)  # else mail goes to the blmonitor user
    assert re.search(r"(?m)^PATH=.*/usr/local/bin", CRON)  # cron's default PATH lacks it
    # Installed as /etc/cron.d/blmonitor: Debian's cron skips names with a dot.
    installed = re.search(r"/etc/cron\.d/(\S+)", CRON)
    assert installed and re.fullmatch(r"[A-Za-z0-9_-]+", installed[1])


@pytest.mark.skipif(not shutil.which("flock"), reason="flock (util-linux) not installed")
@pytest.mark.parametrize(
    ("exit_status", "held", "expected"),
    [
        (0, False, ""),
        (3, False, "blmonitor run --once failed with exit status 3:\nthe run failed\n"),
        (2, False, "blmonitor run --once failed with exit status 2:\nthe run failed\n"),
        (0, True, "blmonitor run --once failed with exit status 75:\n\n"),
    ],
    ids=["clean", "run-failed", "config-error", "previous-run-holds-the-lock"],
)
def test_cron_command_speaks_only_on_failure(
    tmp_path: Path, exit_status: int, held: bool, expected: str
) -> None:
    _, _, command = _cron_job()
    lock = tmp_path / "blmonitor.lock"
    command = command.replace("/var/lib/blmonitor/blmonitor.lock", str(lock))
    stub = tmp_path / "bin" / "blmonitor"
    stub.parent.mkdir()
    stub.write_text(f"#!/bin/sh\necho 'the run failed' >&2\nexit {exit_status}\n")
    stub.chmod(0o755)
    env = {"PATH": f"{stub.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    with lock.open("w") as held_lock:
        if held:  # flock(2) locks belong to the open file: the shell's flock -n sees it taken
            fcntl.flock(held_lock, fcntl.LOCK_EX)
        result = subprocess.run(
            ["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=30
        )
    assert (result.returncode, result.stdout, result.stderr) == (0, expected, "")


def test_deploy_readme_covers_every_file() -> None:
    readme = (DEPLOY / "README.md").read_text("utf-8")
    for name in (*UNITS, "blmonitor.cron", "config.toml"):
        assert name in readme
    for command in ("systemctl daemon-reload", "systemctl enable --now", "systemctl reload",
                    "journalctl -u blmonitor"):  # fmt: skip
        assert command in readme


def test_the_smarthost_path_unit_starts_the_root_sync_on_a_request(units) -> None:
    path = units["blmonitor-smarthost.path"]["Path"]
    assert path["PathChanged"] == ["/var/lib/blmonitor/smarthost/request.json"]
    assert path["Unit"] == ["blmonitor-smarthost.service"]
    service = units["blmonitor-smarthost.service"]["Service"]
    assert "User" not in service  # root: it edits the MTA's configuration
    assert shlex.split(one(units["blmonitor-smarthost.service"], "Service", "ExecStart"))[1:3] == [
        "smarthost",
        "sync",
    ]
