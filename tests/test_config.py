"""The config file, table-driven: every key, every default, every mistake and its message."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from blmonitor import config
from blmonitor.config import (
    Config,
    Defaults,
    DnsConfig,
    MonitorConfig,
    NotifyConfig,
    default_database,
    load_config,
    parse_config,
)
from blmonitor.config.table import format_duration, parse_duration
from blmonitor.dnsbl.resolver import Nameserver
from blmonitor.errors import ConfigError
from blmonitor.models import Severity
from blmonitor.smarthost.plan import Mta, Scope

DEFAULTS = Defaults(database=Path("/home/ann/.local/share/blmonitor/blmonitor.db"))
ROOT = Defaults(database=config.ROOT_DATABASE)
SAMPLE = Path(__file__).parent.parent / "deploy" / "config.toml"

FULL = """
[monitor]
targets = ["auto", "203.0.113.5", "2001:db8::/126", "example.com"]
zones = ["default", "zen.spamhaus.org", "spamcop"]
lists = "/etc/blmonitor/zones.toml"
interval = "1h"
jitter = 120
confirm = 3
silent_first_run = false
fail_on = "critical"
database = "/srv/blmonitor.db"
retention = "30d"

[dns]
resolver = ["127.0.0.1:53", "[::1]:5353"]
dqs_key_file = "/etc/blmonitor/dqs.key"
timeout = 2.5
concurrency = 64

[notify]
urls = ["mailtos://user:secret@example.com", "json://localhost:8080/hook"]
apprise_config = "/etc/blmonitor/apprise.yml"
min_severity = "info"
retry = 5
title_prefix = "[mx1]"
server_name = "mx1.example.com."
"""

FULL_CONFIG = Config(
    monitor=MonitorConfig(
        targets=("auto", "203.0.113.5", "2001:db8::/126", "example.com"),
        zones=("default", "zen.spamhaus.org", "spamcop"),
        lists=Path("/etc/blmonitor/zones.toml"),
        interval=3600.0,
        jitter=120.0,
        confirm=3,
        silent_first_run=False,
        fail_on=Severity.CRITICAL,
        database=Path("/srv/blmonitor.db"),
        retention=30 * 86400.0,
    ),
    dns=DnsConfig(
        resolver=(Nameserver("127.0.0.1", 53), Nameserver("::1", 5353)),
        dqs_key_file=Path("/etc/blmonitor/dqs.key"),
        timeout=2.5,
        concurrency=64,
    ),
    notify=NotifyConfig(
        urls=("mailtos://user:secret@example.com", "json://localhost:8080/hook"),
        apprise_config=Path("/etc/blmonitor/apprise.yml"),
        min_severity=Severity.INFO,
        retry=5,
        title_prefix="[mx1]",
        server_name="mx1.example.com",
    ),
    source="test.toml",
)

DEFAULT_CONFIG = Config(
    monitor=MonitorConfig(
        targets=("auto",),
        zones=("default",),
        lists=None,
        interval=900.0,
        jitter=90.0,
        confirm=2,
        silent_first_run=False,
        fail_on=Severity.WARNING,
        database=DEFAULTS.database,
        retention=400 * 86400.0,
    ),
    dns=DnsConfig(resolver=(), dqs_key_file=None, timeout=5.0, concurrency=0),
    notify=NotifyConfig(
        urls=(),
        apprise_config=None,
        min_severity=Severity.WARNING,
        retry=3,
        title_prefix="[blmonitor]",
    ),
    source="test.toml",
)


def parse(text: str, defaults: Defaults = DEFAULTS) -> Config:
    return parse_config(text, source="test.toml", defaults=defaults)


def test_full_file() -> None:
    got = parse(FULL)
    assert got == FULL_CONFIG
    assert got.monitor.discover
    assert got.monitor.fixed_targets == ("203.0.113.5", "2001:db8::/126", "example.com")


@pytest.mark.parametrize("text", ["", "[monitor]\n[dns]\n[notify]\n", "# nothing\n"])
def test_empty_file_means_defaults(text: str) -> None:
    assert parse(text) == DEFAULT_CONFIG


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('[monitor]\ninterval = "1h"', "jitter", 300.0),  # 10% capped at 5m
        ("[monitor]\ninterval = 60", "jitter", 6.0),
        ('[monitor]\njitter = "0s"', "jitter", 0.0),
        ('[monitor]\ntargets = [" 203.0.113.5 "]', "targets", ("203.0.113.5",)),
        ('[monitor]\ntargets = ["203.0.113.0/24"]', "targets", ("203.0.113.0/24",)),
        ('[monitor]\nlists = ""', "lists", None),
        ('[monitor]\nretention = "1d"', "retention", 86400.0),
        ("[monitor]\nconfirm = 1", "confirm", 1),
        ("[monitor]\nconfirm = 10", "confirm", 10),
        ('[monitor]\nfail_on = " INFO "', "fail_on", Severity.INFO),
    ],
)
def test_monitor_values(text: str, key: str, value: object) -> None:
    assert getattr(parse(text).monitor, key) == value


def test_auto_alone_and_no_auto() -> None:
    assert not parse('[monitor]\ntargets = ["example.com"]').monitor.discover
    assert parse("").monitor.fixed_targets == ()


def test_dns_values() -> None:
    dns = parse('[dns]\nresolver = ["::1"]\ntimeout = 1\nconcurrency = 2000').dns
    assert dns == DnsConfig(
        resolver=(Nameserver("::1"),), dqs_key_file=None, timeout=1.0, concurrency=2000
    )
    assert isinstance(dns.timeout, float)


def test_root_default_database() -> None:
    assert parse("", defaults=ROOT).monitor.database == Path("/var/lib/blmonitor/blmonitor.db")


def test_urls_are_kept_out_of_repr() -> None:
    assert "secret" not in repr(parse(FULL))


def test_error_for_later_checks() -> None:
    error = parse("").error("monitor", "zones", "'nope' is not in the catalog")
    assert isinstance(error, ConfigError)
    assert str(error) == "test.toml: [monitor] zones: 'nope' is not in the catalog"


SYNTAX = "test.toml: not valid TOML: "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # durations
        (
            '[monitor]\ninterval = "15x"',
            "[monitor] interval: '15x' is not a duration (e.g. 15m, 1h, 900s)",
        ),
        (
            '[monitor]\ninterval = "15"',
            "[monitor] interval: '15' is not a duration (e.g. 15m, 1h, 900s)",
        ),
        (
            "[monitor]\ninterval = 1.5",
            "[monitor] interval: 1.5 is not a duration (e.g. 15m, 1h, 900s)",
        ),
        (
            "[monitor]\ninterval = -60",
            "[monitor] interval: -60 is not a duration (e.g. 15m, 1h, 900s)",
        ),
        (
            '[monitor]\ninterval = "30s"',
            "[monitor] interval: '30s' is less than the minimum of 60s: DNSBL operators block clients that ask too often",
        ),
        (
            "[monitor]\ninterval = 59",
            "[monitor] interval: 59 is less than the minimum of 60s: DNSBL operators block clients that ask too often",
        ),
        (
            '[monitor]\njitter = "15m"',
            "[monitor] jitter: '15m' must be shorter than interval (15m)",
        ),
        (
            '[monitor]\njitter = "-1s"',
            "[monitor] jitter: '-1s' is not a duration (e.g. 15m, 1h, 900s)",
        ),
        (
            '[monitor]\nretention = "12h"',
            "[monitor] retention: '12h' is less than the minimum of 1d",
        ),
        (
            "[monitor]\nretention = true",
            "[monitor] retention: True is not a duration (e.g. 15m, 1h, 900s)",
        ),
        # integers and booleans
        (
            "[monitor]\nconfirm = 0",
            "[monitor] confirm: expected an integer from 1 to 10, got the integer 0",
        ),
        (
            "[monitor]\nconfirm = 11",
            "[monitor] confirm: expected an integer from 1 to 10, got the integer 11",
        ),
        (
            '[monitor]\nconfirm = "2"',
            "[monitor] confirm: expected an integer from 1 to 10, got the string '2'",
        ),
        (
            "[monitor]\nconfirm = 2.0",
            "[monitor] confirm: expected an integer from 1 to 10, got the number 2",
        ),
        (
            "[monitor]\nconfirm = true",
            "[monitor] confirm: expected an integer from 1 to 10, got the boolean true",
        ),
        (
            '[monitor]\nsilent_first_run = "yes"',
            "[monitor] silent_first_run: expected true or false, got the string 'yes'",
        ),
        (
            "[monitor]\nsilent_first_run = 1",
            "[monitor] silent_first_run: expected true or false, got the integer 1",
        ),
        # severities
        (
            '[monitor]\nfail_on = "warn"',
            "[monitor] fail_on: unknown severity 'warn' (use info, warning or critical)",
        ),
        (
            "[monitor]\nfail_on = 2",
            "[monitor] fail_on: expected info, warning or critical, got the integer 2",
        ),
        (
            '[notify]\nmin_severity = "high"',
            "[notify] min_severity: unknown severity 'high' (use info, warning or critical)",
        ),
        # paths
        (
            '[monitor]\ndatabase = "blmonitor.db"',
            "[monitor] database: 'blmonitor.db' is not an absolute path (e.g. /etc/blmonitor/…)",
        ),
        (
            '[monitor]\ndatabase = "~/blmonitor.db"',
            "[monitor] database: '~/blmonitor.db' is not an absolute path (e.g. /etc/blmonitor/…)",
        ),
        (
            '[monitor]\ndatabase = ""',
            "[monitor] database: is empty: leave the key out for the default (/home/ann/.local/share/blmonitor/blmonitor.db)",
        ),
        (
            '[monitor]\nlists = "zones.toml"',
            "[monitor] lists: 'zones.toml' is not an absolute path (e.g. /etc/blmonitor/…)",
        ),
        ("[dns]\ndqs_key_file = 5", "[dns] dqs_key_file: expected a string, got the integer 5"),
        ("[notify]\napprise_config = []", "[notify] apprise_config: expected a string, got a list"),
        # targets and zones
        (
            '[monitor]\ntargets = ["203.0.113"]',
            "[monitor] targets: '203.0.113' is not an IP address, a CIDR block or a domain (e.g. 203.0.113.5, 2001:db8::/126, example.com)",
        ),
        (
            '[monitor]\ntargets = ["localhost"]',
            "[monitor] targets: 'localhost' is not an IP address, a CIDR block or a domain (e.g. 203.0.113.5, 2001:db8::/126, example.com)",
        ),
        (
            '[monitor]\ntargets = ["203.0.113.0/33"]',
            "[monitor] targets: '203.0.113.0/33' is not a CIDR block (e.g. 203.0.113.0/28)",
        ),
        (
            '[monitor]\ntargets = ["10.0.0.0/8"]',
            "[monitor] targets: 10.0.0.0/8 holds 16777216 addresses, more than the cap of 4096: check smaller blocks",
        ),
        ('[monitor]\ntargets = ["auto", "auto"]', "[monitor] targets: 'auto' appears twice"),
        (
            '[monitor]\ntargets = ["example.com", " example.com"]',
            "[monitor] targets: 'example.com' appears twice",
        ),
        (
            '[monitor]\ntargets = [""]',
            "[monitor] targets: '' is not \"auto\", an IP address, a CIDR block or a domain",
        ),
        (
            '[monitor]\ntargets = ["# 203.0.113.5"]',
            "[monitor] targets: '# 203.0.113.5' is not \"auto\", an IP address, a CIDR block or a domain",
        ),
        (
            "[monitor]\ntargets = []",
            '[monitor] targets: is empty: use ["auto"] for this machine\'s public addresses, or list them',
        ),
        (
            '[monitor]\ntargets = "auto"',
            "[monitor] targets: expected a list of strings, got the string 'auto'",
        ),
        (
            '[monitor]\ntargets = ["auto", 5]',
            "[monitor] targets: expected a list of strings, item 2 is the integer 5",
        ),
        (
            "[monitor]\nzones = []",
            '[monitor] zones: is empty: use ["default"] or name the zones to check',
        ),
        ('[monitor]\nzones = ["default", " "]', "[monitor] zones: holds an empty string"),
        (
            "[monitor]\nzones = [{ name = 'x' }]",
            "[monitor] zones: expected a list of strings, item 1 is a table",
        ),
        # dns
        (
            '[dns]\nresolver = ["127.0.0.1:99999"]',
            "[dns] resolver: '127.0.0.1:99999' is not IP[:PORT] (e.g. 127.0.0.1:53 or [::1]:5353)",
        ),
        (
            '[dns]\nresolver = ["localhost"]',
            "[dns] resolver: 'localhost' is not IP[:PORT] (e.g. 127.0.0.1:53 or [::1]:5353)",
        ),
        (
            '[dns]\nresolver = "127.0.0.1"',
            "[dns] resolver: expected a list of strings, got the string '127.0.0.1'",
        ),
        ("[dns]\ntimeout = 0", "[dns] timeout: expected seconds above 0 and at most 60, got 0"),
        (
            "[dns]\ntimeout = 5000",
            "[dns] timeout: expected seconds above 0 and at most 60, got 5000",
        ),
        (
            '[dns]\ntimeout = "5s"',
            "[dns] timeout: expected a number of seconds, got the string '5s'",
        ),
        (
            "[dns]\ntimeout = false",
            "[dns] timeout: expected a number of seconds, got the boolean false",
        ),
        (
            "[dns]\nconcurrency = -1",
            "[dns] concurrency: expected an integer ≥ 0, got the integer -1",
        ),
        (
            "[dns]\nconcurrency = 1.5",
            "[dns] concurrency: expected an integer ≥ 0, got the number 1.5",
        ),
        # notify: the URL itself is never echoed, it may hold a password
        (
            '[notify]\nurls = ["hooks.slack.com/services/T0/B0/secret"]',
            "[notify] urls: URL #1 has no scheme:// (e.g. mailtos://, slack://, json://)",
        ),
        (
            '[notify]\nurls = ["json://localhost", "mailto:ann@example.com"]',
            "[notify] urls: URL #2 has no scheme:// (e.g. mailtos://, slack://, json://)",
        ),
        (
            '[notify]\nurls = ["slack://"]',
            "[notify] urls: URL #1 is empty after its scheme or holds spaces",
        ),
        (
            '[notify]\nurls = ["json://host/a b"]',
            "[notify] urls: URL #1 is empty after its scheme or holds spaces",
        ),
        (
            "[notify]\nretry = 0",
            "[notify] retry: expected an integer from 1 to 10, got the integer 0",
        ),
        (
            "[notify]\ntitle_prefix = 1979-05-27",
            "[notify] title_prefix: expected a string, got a date",
        ),
        (
            '[notify]\nserver_name = "mx 1"',
            "[notify] server_name: 'mx 1' is not a host name (e.g. mx1.example.com)",
        ),
        # unknown keys and tables
        (
            '[monitor]\nintervall = "15m"',
            "[monitor] intervall: unknown key (did you mean interval?)",
        ),
        ("[monitor]\ntimeout = 5", "[monitor] timeout: unknown key (it belongs in [dns])"),
        (
            '[dns]\nresolvers = ["127.0.0.1"]',
            "[dns] resolvers: unknown key (did you mean resolver?)",
        ),
        (
            '[notify]\nsmtp_host = "x"',
            "[notify] smtp_host: unknown key (known keys: urls, apprise_config, min_severity, retry, title_prefix, server_name, heartbeat_url, digest)",
        ),
        (
            "[monitor.extra]\nx = 1",
            "[monitor] extra: unknown key (known keys: targets, zones, lists, interval, jitter, confirm, silent_first_run, fail_on, database, retention, min_answered)",
        ),
        ('interval = "15m"', "interval: unknown key at the top level (put it under [monitor])"),
        (
            "debug = true",
            "debug: unknown key at the top level (keys go under [monitor], [dns] or [notify])",
        ),
        ("[monitr]\nconfirm = 2", "[monitr]: unknown table (did you mean [monitor]?)"),
        ("[alerts]", "[alerts]: unknown table (use [monitor], [dns] or [notify])"),
        ("[[monitor]]\nconfirm = 2", "monitor: expected a table [monitor], got a list"),
        ("dns = 5", "dns: expected a table [dns], got the integer 5"),
    ],
)
def test_bad_values(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value) == f"test.toml: {message}"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[monitor]\ninterval = \nconfirm = 2", "(at line 2, column 12)"),
        ("[monitor]\nconfirm = 2\nconfirm = 3\n", "(at line 3, column 12)"),
        ("[dns\n", "(at line 1, column 5)"),
    ],
)
def test_bad_toml(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value).startswith(SYNTAX)
    assert str(caught.value).endswith(where)


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("15m", 900.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("400d", 34_560_000.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        (" 15m ", 900.0),
        ("0s", 0.0),
        (900, 900.0),
        (0, 0.0),
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "15", "m", "15x", "-5m", "15 m", "1h 30m", "15M", "1.h", ".5h", "1e3s", -1, True]
)
def test_parse_duration_rejects(text: str | int) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"{text!r} is not a duration (e.g. 15m, 1h, 900s)")
    ):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (90, "90s"),
        (900, "15m"),
        (5400, "90m"),
        (3600, "1h"),
        (34_560_000, "400d"),
        (1.5, "1.5s"),
    ],
)
def test_format_duration_reads_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# --- defaults from the environment ---------------------------------------------------------

HOME = Path("/home/ann")


@pytest.mark.parametrize(
    ("is_root", "env", "expected"),
    [
        (True, {}, "/var/lib/blmonitor/blmonitor.db"),
        (True, {"XDG_DATA_HOME": "/data"}, "/var/lib/blmonitor/blmonitor.db"),
        (False, {}, "/home/ann/.local/share/blmonitor/blmonitor.db"),
        (False, {"XDG_DATA_HOME": ""}, "/home/ann/.local/share/blmonitor/blmonitor.db"),
        (False, {"XDG_DATA_HOME": "/data"}, "/data/blmonitor/blmonitor.db"),
        (
            False,
            {"XDG_DATA_HOME": "data"},
            "/home/ann/.local/share/blmonitor/blmonitor.db",
        ),  # relative: ignored
    ],
)
def test_default_database(is_root: bool, env: dict[str, str], expected: str) -> None:
    assert default_database(is_root, env, HOME) == Path(expected)


def test_environment_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert config.environment_defaults() == Defaults(tmp_path / "blmonitor" / "blmonitor.db")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert config.environment_defaults() == ROOT


# --- load_config ---------------------------------------------------------------------------


def test_load_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL, "utf-8")
    assert load_config(path, defaults=DEFAULTS) == dataclasses.replace(
        FULL_CONFIG, source=str(path)
    )


def test_load_config_takes_defaults_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    path = tmp_path / "config.toml"
    path.write_text("", "utf-8")
    assert load_config(path).monitor.database == tmp_path / "blmonitor" / "blmonitor.db"


def test_missing_default_file_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "etc" / "config.toml"
    monkeypatch.delenv("BLMONITOR_CONFIG", raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", missing)
    assert load_config(None, defaults=DEFAULTS) == dataclasses.replace(
        DEFAULT_CONFIG, source=str(missing)
    )


def test_default_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[monitor]\nconfirm = 4\n", "utf-8")
    monkeypatch.delenv("BLMONITOR_CONFIG", raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", path)
    assert load_config(None, defaults=DEFAULTS).monitor.confirm == 4


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, defaults=DEFAULTS)
    assert str(caught.value) == f"{path}: no such config file"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, defaults=DEFAULTS)
    assert str(caught.value) == f"{tmp_path}: cannot read the config file: Is a directory"


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[notify]\ntitle_prefix = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, defaults=DEFAULTS)
    assert str(caught.value) == f"{path}: cannot read the config file: not UTF-8 text (byte 25)"


def test_broken_toml_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[monitor]\ninterval = "15m"\nconfirm = = 2\n', "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, defaults=DEFAULTS)
    assert str(caught.value) == f"{path}: not valid TOML: Invalid value (at line 3, column 11)"


def test_bad_value_in_file_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[monitor]\ninterval = "15x"\n', "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, defaults=DEFAULTS)
    assert (
        str(caught.value)
        == f"{path}: [monitor] interval: '15x' is not a duration (e.g. 15m, 1h, 900s)"
    )


# --- the sample deploy/config.toml ---------------------------------------------------------

SAMPLE_KEY = re.compile(r"^(?:# )?(\w+) = ")  # a key line of the sample, set or commented out


def _sample_keys(text: str) -> dict[str, list[str]]:
    """The `key = value` lines (commented out or not) of each [table] of the sample."""
    keys: dict[str, list[str]] = {}
    table = ""
    for line in text.splitlines():
        if header := re.fullmatch(r"\[(\w+)\]", line):
            table = header[1]
            keys[table] = []
        elif match := SAMPLE_KEY.match(line):
            keys[table].append(match[1])
    return keys


def test_sample_parses() -> None:
    parse_config(SAMPLE.read_text("utf-8"), source=str(SAMPLE), defaults=ROOT)


def test_sample_shows_every_key_once_in_its_table() -> None:
    assert _sample_keys(SAMPLE.read_text("utf-8")) == {
        t: list(keys) for t, keys in config.KEYS.items()
    }


def test_sample_defaults_are_the_real_defaults() -> None:
    text = SAMPLE.read_text("utf-8")
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and SAMPLE_KEY.match(line) else line
        for line in text.splitlines()
    )
    assert uncommented != text
    assert parse(uncommented, defaults=ROOT) == parse("", defaults=ROOT)


def test_blmonitor_config_names_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[monitor]\nconfirm = 3\n", "utf-8")
    monkeypatch.setenv("BLMONITOR_CONFIG", str(path))
    assert load_config(None, defaults=DEFAULTS).monitor.confirm == 3
    assert config.config_exists(None)
    monkeypatch.setenv("BLMONITOR_CONFIG", str(tmp_path / "missing.toml"))
    assert load_config(None, defaults=DEFAULTS).monitor.confirm == 2  # missing: defaults
    assert not config.config_exists(None)


# --- [smarthost] ---------------------------------------------------------------------------


def test_smarthost_keys() -> None:
    got = parse(
        '[smarthost]\nmode = "apply"\nhost = "smtp.isp.example"\nport = 465\nusername = "me"\n'
        'password_file = "/etc/blmonitor/relay.pass"\nmta = "exim"\nscope = "destinations"\n'
        'soften = true\nmin_severity = "critical"\nafter = "1h"\nrevert_after = "2d"\n'
        'config_dir = "/srv/exim4"\nstate_dir = "/srv/state"\n'
    )
    assert got.smarthost == config.SmarthostConfig(
        mode=config.SmarthostMode.APPLY, host="smtp.isp.example", port=465, username="me",
        password_file=Path("/etc/blmonitor/relay.pass"), tls=True, mta=Mta.EXIM,
        config_dir=Path("/srv/exim4"), scope=Scope.DESTINATIONS, soften=True,
        min_severity=Severity.CRITICAL, after=3600.0, revert_after=172800.0,
        state_dir=Path("/srv/state"),
    )  # fmt: skip
    assert got.smarthost_state_dir == Path("/srv/state")
    assert parse("").smarthost_state_dir == DEFAULTS.database.parent / "smarthost"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('password = "hunter2"', "password: is not read here: put it in a file and set password_file"),
        ('mode = "apply"', 'host: is needed with mode = "apply" (e.g. "smtp.isp.example")'),
        ('host = "smtp.isp.example:587"', "host: 'smtp.isp.example:587': give the name or address alone, the port in port"),
        ('host = "[10.0.0.1]"', "host: '[10.0.0.1]': give the name or address alone, the port in port"),
        ('mode = "on"', "mode: 'on' is not one of off, recommend, apply"),
        ('mta = "qmail"', "mta: 'qmail' is not one of auto, postfix, exim, sendmail, opensmtpd, exchange"),
        ('username = "me"', "password_file: is needed with username (a file holding the password)"),
        ("port = 0", "port:"),
        ('password_file = "relay.pass"', "password_file: 'relay.pass' is not an absolute path"),
    ],
)  # fmt: skip
def test_smarthost_mistakes(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(f"[smarthost]\n{text}\n")
    assert str(caught.value).startswith(f"test.toml: [smarthost] {message}")


def test_smarthost_password_never_in_the_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse('[smarthost]\npassword = "hunter2"\n')
    assert "hunter2" not in str(caught.value)


# --- [diagnose] and [posture] ------------------------------------------------------------


def test_posture_keys_and_the_sending_domains() -> None:
    got = parse('[posture]\nhelo = "Mail.Example.COM."\ndomains = ["example.com", "Example.net."]\n'
                "daily = false\n[diagnose]\nlocal_domains = [\"example.org\"]\n")  # fmt: skip
    assert got.posture == config.PostureConfig(
        helo="mail.example.com", domains=("example.com", "example.net"), daily=False
    )
    assert got.sending_domains == ("example.com", "example.net")
    assert parse('[diagnose]\nlocal_domains = ["example.org"]\n').sending_domains == (
        "example.org",
    )
    gmail = '[gmail_postmaster]\ndomains = ["Example.net"]\ncredentials_file = "/c.json"\n'
    assert parse(gmail).sending_domains == ("example.net",)  # with neither of the above
    assert parse(f'{gmail}[diagnose]\nlocal_domains = ["example.org"]\n').sending_domains == (
        "example.org",
    )
    assert parse("").posture == config.PostureConfig(helo="", domains=(), daily=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[posture]\nhelo = "[203.0.113.5]"', "[posture] helo: '[203.0.113.5]': expected the host name your MTA greets with"),
        ('[posture]\nhelo = "mail"', "[posture] helo: 'mail': expected the host name"),
        ('[posture]\nhelo = "mail example.com"', "[posture] helo: 'mail example.com': expected"),
        ('[posture]\ndomains = ["example.com", "a b.example"]', "[posture] domains: 'a b.example': expected domain names such as example.com"),
        ('[posture]\ndomains = "example.com"', "[posture] domains: expected a list of strings, got the string 'example.com'"),
        ('[posture]\ndomains = [""]', "[posture] domains: '': expected domain names"),
        ('[diagnose]\nlocal_domains = ["me@example.com"]', "[diagnose] local_domains: 'me@example.com': expected domain names"),
        ('[posture]\ndaily = "yes"', "[posture] daily: expected true or false, got the string 'yes'"),
        ('[posture]\nlocal_domains = ["example.com"]', "[posture] local_domains: unknown key (it belongs in [diagnose])"),
        ('[posture]\ndomain = ["example.com"]', "[posture] domain: unknown key (did you mean domains?)"),
    ],
)  # fmt: skip
def test_posture_mistakes(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert str(caught.value).startswith(f"test.toml: {message}")
