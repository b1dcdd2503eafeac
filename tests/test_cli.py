"""The CLI through click's CliRunner and as a real subprocess: exit codes, JSON, the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from blmonitor import cli
from tests import httpservers
from tests.conftest import DQS_KEY

ROOT = Path(__file__).parent.parent


def invoke(lab, *args: str):
    runner = CliRunner()
    return runner.invoke(
        cli.main,
        ["check", "--lists", str(lab.catalog_path), "--resolver", lab.address, "--timeout", "0.6",
         *args],
    )  # fmt: skip


# One table for the exit codes: 0 clean, 1 listed, 2 usage/config, 3 could not determine.
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["203.0.113.9", "--zone", "bl"], cli.EXIT_CLEAN),
        (["203.0.113.5", "--zone", "bl"], cli.EXIT_LISTED),
        (["203.0.113.7", "--zone", "bl"], cli.EXIT_CLEAN),  # info listing (policy) only
        (["203.0.113.7", "--zone", "bl", "--fail-on", "info"], cli.EXIT_LISTED),
        (["203.0.113.9", "--zone", "dead"], cli.EXIT_UNKNOWN),
        (["203.0.113.9", "--zone", "bl", "--zone", "slow.lab.test"], cli.EXIT_UNKNOWN),
        (["203.0.113.5", "--zone", "bl", "--zone", "slow.lab.test"], cli.EXIT_LISTED),
        (["not_an_ip!"], cli.EXIT_USAGE),
        (["203.0.113.9", "--resolver", "dns.example"], cli.EXIT_USAGE),
        (["203.0.113.9", "--zone", "bad zone!"], cli.EXIT_USAGE),
        (["10.0.0.0/8"], cli.EXIT_USAGE),
        (["203.0.113.9", "--timeout", "0"], cli.EXIT_USAGE),
    ],
)
def test_exit_codes(lab, args, code) -> None:
    result = invoke(lab, *args)
    assert result.exit_code == code, result.output


def test_json_report(lab) -> None:
    result = invoke(lab, "203.0.113.6", "bad.example", "--zone", "bl", "--zone", "dom",
                    "--zone", "world", "--json")  # fmt: skip
    assert result.exit_code == cli.EXIT_LISTED
    data = json.loads(result.output)
    assert data["verdict"] == "listed"
    pairs = {(r["target"], r["zone"]): r for r in data["results"]}
    assert pairs[("203.0.113.6", "bl.lab.test")] == {
        "target": "203.0.113.6",
        "zone": "bl.lab.test",
        "status": "listed",
        "codes": ["127.0.0.2", "127.0.0.4"],
        "txt": ["Also spam", "Infected"],
        "meaning": "spam source; exploited host",
        "severity": "critical",
        "error": None,
        "delist_url": "https://bl.lab.test/remove?ip=203.0.113.6",
    }
    assert pairs[("bad.example", "dom.lab.test")]["status"] == "listed"
    assert pairs[("203.0.113.6", "dom.lab.test")]["status"] == "skipped"
    world = pairs[("203.0.113.6", "world.lab.test")]
    assert world["status"] == "error" and world["severity"] is None
    assert [(z["zone"], z["health"]) for z in data["zones"]] == [
        ("bl.lab.test", "ok"), ("dom.lab.test", "ok"), ("world.lab.test", "lists-everything"),
    ]  # fmt: skip
    assert data["stats"]["lookups"] == 3
    assert data["stats"]["retries"] == 0


def test_human_table(lab) -> None:
    result = invoke(lab, "203.0.113.5", "203.0.113.9", "--zone", "bl", "--zone", "refusing")
    assert result.exit_code == cli.EXIT_LISTED
    lines = result.output.splitlines()
    assert lines[0] == "LISTED (1)"
    assert lines[1].split() == ["target", "zone", "codes", "severity", "meaning"]
    assert lines[2].split() == ["203.0.113.5", "bl.lab.test", "127.0.0.2", "critical", "spam",
                                "source"]  # fmt: skip
    assert "      says: Spam sent from 203.0.113.5 on 2026-11-01" in lines
    assert "      delist: https://bl.lab.test/remove?ip=203.0.113.5" in lines
    assert "ZONE HEALTH (1 not usable or not tested)" in lines
    health = next(line for line in lines if line.startswith("  refusing.lab.test"))
    assert "refused" in health and "your resolver is refused by refusing.lab.test" in health
    assert lines[-1] == "LISTED: 203.0.113.5 on bl.lab.test (2 target(s) × 2 zone(s))"


def test_dqs_key_is_used_and_never_shown(lab, tmp_path) -> None:
    key_file = tmp_path / "dqs.key"
    key_file.write_text(DQS_KEY + "\n")
    for output in ("--json", None):
        args = ["203.0.113.5", "--zone", "refusing", "--dqs-key-file", str(key_file)]
        result = invoke(lab, *args, *([output] if output else []))
        assert result.exit_code == cli.EXIT_LISTED, result.output
        assert DQS_KEY not in result.output
        assert "refusing.lab.test (DQS)" in result.output
    assert f"5.113.0.203.{DQS_KEY}.refusing.dq.spamhaus.net." in lab.resolver.seen


def test_bad_dqs_key_and_broken_catalog(lab, tmp_path) -> None:
    key_file = tmp_path / "dqs.key"
    key_file.write_text("short")
    result = invoke(lab, "203.0.113.5", "--zone", "refusing", "--dqs-key-file", str(key_file))
    assert result.exit_code == cli.EXIT_USAGE
    assert "DQS key is not 20-40 letters" in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text('[[zone]]\nid = "x"\nname = "x.example"\ntakes = ["ipv5"]\n')
    result = CliRunner().invoke(cli.main, ["check", "--lists", str(broken), "203.0.113.5"])
    assert result.exit_code == cli.EXIT_USAGE
    assert result.output.startswith(f"blmonitor: error: {broken}: zone x:")


def test_targets_file_and_warnings(lab, tmp_path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# our outbound IPs\n203.0.113.9\n203.0.113.10  # backup MX\n\n")
    result = invoke(lab, "-f", str(targets), "--zone", "bl", "--zone", "notinlist.lab.test",
                    "--json")  # fmt: skip
    data = json.loads(result.output)
    assert {r["target"] for r in data["results"]} == {"203.0.113.9", "203.0.113.10"}
    assert any("notinlist.lab.test is not in the catalog" in w for w in data["warnings"])


def test_zones_lists_the_catalog(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    result = CliRunner().invoke(cli.main, ["zones", "--all", "--json", "-c", str(config)])
    assert result.exit_code == 0
    zones = {z["zone"]: z for z in json.loads(result.output)}
    assert zones["dnsbl.sorbs.net"]["status"] == "dead"
    assert zones["zen.spamhaus.org"]["last_health"] is None  # no history yet
    assert not (tmp_path / "none.db").exists()  # reading never creates a database
    result = CliRunner().invoke(cli.main, ["zones", "-c", str(config)])
    assert result.output.splitlines()[0].split() == ["id", "zone", "takes", "kind", "status",
                                                     "default", "last", "health"]  # fmt: skip
    assert "zen.spamhaus.org" in result.output and "sorbs" not in result.output


def test_dead_catalog_zone_named_in_check_gets_a_warning(lab) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["check", "203.0.113.9", "--zone", "ix.dnsbl.manitu.net", "--resolver", lab.address,
         "--timeout", "0.6", "--json"],
    )  # fmt: skip
    data = json.loads(result.output)
    assert any(w.startswith("ix.dnsbl.manitu.net is known as dead") for w in data["warnings"])
    assert data["verdict"] == "unknown"  # the lab does not serve it: never "clean"


def test_no_target_checks_the_discovered_public_ip(lab) -> None:
    routes = {"/1": (200, "11.22.33.44\n"), "/2": (200, "11.22.33.44\n")}
    with httpservers.serve(routes) as base:
        result = invoke(lab, "--zone", "bl", "--ip-url", f"{base}/1", "--ip-url", f"{base}/2",
                        "--json")  # fmt: skip
    assert result.exit_code == cli.EXIT_LISTED
    [row] = json.loads(result.output)["results"]
    assert (row["target"], row["codes"]) == ("11.22.33.44", ["127.0.0.4"])


def test_discovery_failure_is_exit_3(lab) -> None:
    with httpservers.serve({}) as base:
        result = invoke(lab, "--zone", "bl", "--ip-url", f"{base}/none")
    assert result.exit_code == cli.EXIT_UNKNOWN
    assert "could not find this machine's public IP" in result.output


def test_subprocess_json_and_exit_code(lab) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "blmonitor", "check", "203.0.113.5", "2001:db8::25",
         "--lists", str(lab.catalog_path), "--zone", "bl", "--resolver", lab.address, "--json"],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert [(r["target"], r["status"]) for r in data["results"]] == [
        ("203.0.113.5", "listed"), ("2001:db8::25", "listed"),
    ]  # fmt: skip
    assert proc.stderr == ""


def test_subprocess_usage_error_is_one_line(lab) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "blmonitor", "check", "nonsense!", "--resolver", lab.address],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("blmonitor: error:")


def test_check_takes_the_monitor_settings_from_the_config(lab, tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\nzones = ["bl"]\nlists = "{lab.catalog_path}"\nfail_on = "info"\n'
        f'[dns]\nresolver = ["{lab.address}"]\ntimeout = 0.6\n'
    )
    result = CliRunner().invoke(cli.main, ["check", "203.0.113.7", "-c", str(config), "--json"])
    assert result.exit_code == cli.EXIT_LISTED, result.output  # info listing fails with "info"
    assert [r["zone"] for r in json.loads(result.output)["results"]] == ["bl.lab.test"]
    # an option wins over the config
    result = CliRunner().invoke(
        cli.main, ["check", "203.0.113.7", "-c", str(config), "--fail-on", "warning"]
    )
    assert result.exit_code == cli.EXIT_CLEAN, result.output


def test_compact_json_text_is_the_same_document(lab) -> None:
    """The fast writer for big reports says exactly what json.dumps of report_json says."""
    import asyncio

    from blmonitor.dnsbl import answers as dnsbl
    from blmonitor.dnsbl import engine
    from blmonitor.dnsbl import report as render
    from blmonitor.dnsbl.catalog import select_zones
    from blmonitor.dnsbl.resolver import DnsClient, Nameserver

    zones, _ = select_zones(lab.catalog, ["bl", "dom", "world", "strict"])

    async def go():
        async with DnsClient([Nameserver("127.0.0.1", lab.port)], timeout=0.6) as client:
            targets = dnsbl.expand_targets(["203.0.113.0/29", "bad.example", "2001:db8::25"])
            return await engine.check(targets, zones, client)

    report = asyncio.run(go())
    assert json.loads(render.report_json_text(report)) == render.report_json(report)


def test_one_exit_code_table() -> None:
    from blmonitor.models import Verdict

    assert (cli.EXIT_CLEAN, cli.EXIT_LISTED, cli.EXIT_USAGE, cli.EXIT_UNKNOWN) == (0, 1, 2, 3)
    assert cli.EXIT_CODES == {Verdict.CLEAN: 0, Verdict.LISTED: 1, Verdict.UNKNOWN: 3}


def test_a_command_imports_only_what_it_uses() -> None:
    """`check --help` loads neither the other commands nor their libraries; --help lists all."""
    script = (
        "import sys\nfrom click.testing import CliRunner\nfrom blmonitor import cli\n"
        "out = CliRunner().invoke(cli.main, ['check', '--help']).output\n"
        "assert 'Check IPs, CIDR blocks and domains' in out, out\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30, check=True)  # fmt: skip
    loaded = set(proc.stdout.split())
    assert "blmonitor.cli.check" in loaded
    for module in ("blmonitor.cli.monitor", "blmonitor.cli.smarthost", "blmonitor.cli.causes",
                   "blmonitor.cli.bounces", "blmonitor.dnsbl.engine", "blmonitor.config",
                   "sqlite_utils", "httpx", "apprise", "dns", "asyncio", "email"):  # fmt: skip
        assert module not in loaded, module
    listed = CliRunner().invoke(cli.main, ["--help"]).output
    assert all(f"  {name} " in listed for name in cli.COMMANDS)


def test_history_since_takes_a_date_or_a_duration(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    result = CliRunner().invoke(cli.main, ["history", "-c", str(config), "--since", "2026-11-01"])
    assert (result.exit_code, result.output) == (
        0, "no listing episodes since 2026-11-01T00:00+00:00\n",
    )  # fmt: skip
    result = CliRunner().invoke(cli.main, ["history", "-c", str(config), "--since", "yesterday"])
    assert result.exit_code == cli.EXIT_USAGE
    assert result.output == (
        "blmonitor: error: --since 'yesterday': give a duration (7d, 24h) or a date (2026-11-01)\n"
    )


def test_every_json_is_compact_when_piped(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    for args in (["status", "--json"], ["history", "--json"], ["zones", "--json"]):
        result = CliRunner().invoke(cli.main, [*args, "-c", str(config)])
        assert "\n" not in result.output.rstrip("\n") and ", " not in result.output[:200], args
        json.loads(result.output)


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (RuntimeError("boom"), 3, "blmonitor: error: internal error: RuntimeError: boom; run with --debug for the traceback"),
        (KeyboardInterrupt(), 130, "blmonitor: interrupted"),
    ],
)  # fmt: skip
def test_a_crash_is_one_line_and_exit_3_never_1(monkeypatch, raised, code, line) -> None:
    from blmonitor.dnsbl import service

    def crash(*args, **kwargs):
        raise raised

    monkeypatch.setattr(service, "check", crash)
    got = CliRunner().invoke(cli.main, ["check", "203.0.113.5"])
    assert (got.exit_code, got.output.strip()) == (code, line)
    assert "Traceback" not in got.output
    if code == 3:  # with --debug, the traceback is there for whoever asked
        debug = CliRunner().invoke(cli.main, ["--debug", "check", "203.0.113.5"])
        assert isinstance(debug.exception, RuntimeError)


# --- issue 11: --lists is an overlay; zone selectors; warnings on stderr; zones; progress --------


def test_lists_file_adds_zones_but_its_own_defaults_are_the_default_set(lab) -> None:
    before = len(lab.resolver.seen)
    result = invoke(lab, "203.0.113.9", "--json")  # no --zone: the default set
    asked = {z["zone"] for z in json.loads(result.stdout)["zones"]}
    assert asked == {z.name for z in lab.catalog.defaults if "ipv4" in z.takes}
    queried = lab.resolver.seen[before:]
    assert queried and all(name.endswith(".lab.test.") for name in queried), queried
    # an embedded zone is still there to be named, and a lab zone by its id
    zones = CliRunner().invoke(cli.main, ["zones", "--all", "--json", "--lists",
                                          str(lab.catalog_path)])  # fmt: skip
    ids = [z["id"] for z in json.loads(zones.stdout)]
    assert "spamhaus-zen" in ids and ids[-len(lab.catalog.zones) :] == [
        z.id for z in lab.catalog.zones
    ]


def test_zones_with_a_config_shows_the_zones_it_monitors(lab, tmp_path) -> None:
    (tmp_path / "dqs.key").write_text(DQS_KEY)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\nzones = ["flip", "refusing", "bare.lab.test"]\nlists = "{lab.catalog_path}"\n'
        f'database = "{tmp_path / "none.db"}"\n[dns]\ndqs_key_file = "{tmp_path / "dqs.key"}"\n'
    )
    result = CliRunner().invoke(cli.main, ["zones", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    zones = json.loads(result.stdout)
    assert [(z["id"], z["status"], z["dqs"]) for z in zones] == [
        ("flip", "unknown", None), ("refusing", "alive", "key set"),
        ("bare.lab.test", "generic", None),
    ]  # fmt: skip
    assert result.stderr.startswith("blmonitor: warning: bare.lab.test is not in the catalog")
    assert DQS_KEY not in result.output  # the key file is never read, let alone shown
    text = CliRunner().invoke(cli.main, ["zones", "-c", str(config)]).stdout.splitlines()
    assert [line.split()[0] for line in text[1:4]] == ["flip", "refusing", "bare.lab.test"]
    assert text[5].split() == ["id", "access", "status", "as", "of", "(source)"]
    assert text[7].split()[:4] == ["refusing", "free,", "DQS", "key"]
    assert text[8].split()[2:] == ["not", "in", "the", "catalog:", "plain", "RFC", "5782"]


def test_zones_shows_status_date_source_and_access(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    result = CliRunner().invoke(cli.main, ["zones", "--all", "-c", str(config), "--json"])
    zones = {z["id"]: z for z in json.loads(result.stdout)}
    assert (zones["barracuda"]["access"], zones["spamhaus-zen"]["dqs"]) == ("registration",
                                                                           "available")  # fmt: skip
    sorbs = zones["sorbs"]
    assert sorbs["status"] == "dead" and sorbs["status_date"] and sorbs["status_source"]
    text = CliRunner().invoke(cli.main, ["zones", "--all", "-c", str(config)]).stdout
    facts = {line.split()[0]: line for line in text.split("\n\n")[1].splitlines()[1:]}
    assert facts["sorbs"].split(maxsplit=2)[1:] == [
        "free",
        f"dead as of {sorbs['status_date']} ({sorbs['status_source']})",
    ]
    assert facts["barracuda"].split()[1] == "registration"
    alive = CliRunner().invoke(cli.main, ["zones", "-z", "alive", "-c", str(config), "--json"])
    assert {z["status"] for z in json.loads(alive.stdout)} == {"alive"}
    every = CliRunner().invoke(cli.main, ["zones", "-z", "all", "-c", str(config), "--json"])
    statuses = {z["status"] for z in json.loads(every.stdout)}
    assert statuses == {"alive", "unknown"}  # not dead, not lists-everything


@pytest.mark.parametrize(
    ("selector", "ids"),
    [("alive", ["bl", "dead", "world", "refusing", "dom"]),
     ("all", ["bl", "dead", "world", "refusing", "strict", "dom", "bits", "odd", "flip"])],
)  # fmt: skip
def test_check_takes_all_and_alive_for_zones(lab, monkeypatch, selector, ids) -> None:
    # The lab as the embedded catalog too: "all" must not ask the real zones through the lab.
    monkeypatch.setattr("blmonitor.dnsbl.catalog.embedded_catalog", lambda: lab.catalog)
    result = invoke(lab, "203.0.113.5", "bad.example", "-z", selector, "--json")
    asked = [z["id"] for z in json.loads(result.stdout)["zones"]]
    assert asked == ids


def test_check_warnings_go_to_stderr_and_only_a_bare_unknown_zone_warns(lab) -> None:
    result = invoke(lab, "203.0.113.9", "--zone", "bl", "--zone", "bare.lab.test",
                    "--zone", "declared.lab.test:ipv4")  # fmt: skip
    assert "warning" not in result.stdout
    assert result.stderr.splitlines() == [
        "blmonitor: warning: bare.lab.test is not in the catalog: using plain RFC 5782 semantics"
        " (any 127.0.0.2-255 answer is a listing) for ipv4; name it bare.lab.test:ipv4 to say "
        "so and silence this warning"
    ]
    declared = invoke(lab, "203.0.113.9", "--zone", "bl", "--zone", "declared.lab.test:ipv4")
    assert declared.stderr == ""
    # --json: stdout is the document, and its "warnings" still say it; stderr stays quiet
    data = invoke(lab, "203.0.113.9", "--zone", "bl", "--zone", "bare.lab.test", "--json")
    assert data.stderr == "" and len(json.loads(data.stdout)["warnings"]) == 1


def test_progress_and_the_slow_zone_hint_go_to_stderr_when_asked(lab) -> None:
    args = ["check", "--lists", str(lab.catalog_path), "--resolver", lab.address, "203.0.113.5",
            "203.0.113.9", "--zone", "bl", "--zone", "slow.lab.test:ipv4", "--timeout", "2.8",
            "--json"]  # fmt: skip
    shown = CliRunner().invoke(cli.main, args, env={"BLMONITOR_PROGRESS": "always"})
    assert json.loads(shown.stdout)["verdict"] == "listed"  # stdout is the document alone
    assert "\r\033[Kchecking: 0/2 targets, " in shown.stderr  # both wait on the slow zone
    assert "lookups/s, waiting on slow.lab.test (" in shown.stderr
    hint = shown.stderr.rpartition("\r\033[K")[2]  # after the line is cleared: one hint line
    assert hint.startswith("blmonitor: hint: zone slow.lab.test answered last, "), hint
    assert "s after the others: consider dropping it or raising --timeout (" in hint
    assert "of its lookups timed out" in hint
    # stderr is no terminal here: without the setting, nothing
    quiet = CliRunner().invoke(cli.main, args, env={"BLMONITOR_PROGRESS": None})
    assert quiet.stderr == "" and json.loads(quiet.stdout)["verdict"] == "listed"


@pytest.mark.parametrize(
    ("setting", "tty", "wanted"),
    [(None, True, True), (None, False, False), ("always", False, True), ("never", True, False),
     ("ALWAYS ", False, True), ("sometimes", False, False)],
)  # fmt: skip
def test_progress_is_shown_at_a_terminal_unless_the_setting_says(
    monkeypatch, setting, tty, wanted
) -> None:
    import io

    from blmonitor.cli.check import PROGRESS_ENV, ProgressDisplay

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return bool(tty)

    if setting is None:
        monkeypatch.delenv(PROGRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(PROGRESS_ENV, setting)
    assert ProgressDisplay.wanted(Stream()) is wanted
