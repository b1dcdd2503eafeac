"""The check service: the one "option, else config" merge, the public-resolver warning, the
targets file and discovery when no target is given, against the lab on loopback."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from blmonitor.config import load_config
from blmonitor.dnsbl import service
from blmonitor.dnsbl.catalog import parse_catalog
from blmonitor.dnsbl.resolver import Nameserver
from blmonitor.errors import UsageError
from blmonitor.models import Severity, Target, Verdict


@pytest.fixture
def config(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[monitor]\nzones = ["bl"]\nlists = "/lab/catalog.toml"\nfail_on = "info"\n'
        '[dns]\nresolver = ["127.0.0.1:5300"]\ntimeout = 0.6\nconcurrency = 20\n'
        f'dqs_key_file = "{tmp_path / "dqs.key"}"\n'
    )
    return load_config(path)


def test_settings_without_config_are_the_options_or_the_defaults() -> None:
    assert service.check_settings(None) == service.CheckSettings(
        zones=(), lists=None, resolvers=(), dqs_key_file=None, timeout=5.0, concurrency=None,
        fail_on=Severity.WARNING,
    )  # fmt: skip
    given = service.check_settings(None, zones=["zen"], resolvers=["127.0.0.1:53"], timeout=2,
                                   concurrency=9, fail_on="critical")  # fmt: skip
    assert (given.zones, given.resolvers, given.timeout, given.concurrency, given.fail_on) == (
        ("zen",), (Nameserver("127.0.0.1", 53),), 2, 9, Severity.CRITICAL,
    )  # fmt: skip


def test_settings_take_the_config_unless_an_option_says_otherwise(config, tmp_path) -> None:
    merged = service.check_settings(config)
    assert merged == service.CheckSettings(
        zones=("bl",), lists=Path("/lab/catalog.toml"), resolvers=(Nameserver("127.0.0.1", 5300),),
        dqs_key_file=tmp_path / "dqs.key", timeout=0.6, concurrency=20, fail_on=Severity.INFO,
    )  # fmt: skip
    options = service.check_settings(
        config, zones=["dom"], lists=tmp_path / "other.toml", resolvers=["127.0.0.2"],
        dqs_key_file=tmp_path / "k", timeout=3, concurrency=5, fail_on="warning",
    )  # fmt: skip
    assert options == service.CheckSettings(
        zones=("dom",), lists=tmp_path / "other.toml", resolvers=(Nameserver("127.0.0.2"),),
        dqs_key_file=tmp_path / "k", timeout=3, concurrency=5, fail_on=Severity.WARNING,
    )  # fmt: skip


def test_a_bad_resolver_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        service.check_settings(None, resolvers=["dns.example"])


@pytest.mark.parametrize(
    ("hosts", "warned"),
    [(["127.0.0.1"], []), (["8.8.8.8", "10.0.0.53"], ["8.8.8.8"]),
     (["2606:4700:4700::1111", "9.9.9.9"], ["2606:4700:4700::1111", "9.9.9.9"])],
)  # fmt: skip
def test_public_resolvers_are_warned_about(hosts: list[str], warned: list[str]) -> None:
    warnings = service.resolver_warnings([Nameserver(h) for h in hosts])
    assert [w.split()[1] for w in warnings] == warned
    assert all("is a public resolver" in w for w in warnings)


def test_targets_file_lines_and_comments(tmp_path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("# ours\n203.0.113.9\n\n203.0.113.10  # backup MX\n")
    assert service.read_targets(["192.0.2.1"], path) == ["192.0.2.1", "203.0.113.9",
                                                         "203.0.113.10"]  # fmt: skip
    with pytest.raises(UsageError, match="cannot read"):
        service.read_targets([], tmp_path / "missing.txt")


def test_check_discovers_when_no_target_is_given(lab) -> None:
    asked: list[float] = []

    def discover(timeout: float) -> list[Target]:
        asked.append(timeout)
        from blmonitor.dnsbl.answers import parse_target

        return [parse_target("203.0.113.5")]

    settings = service.CheckSettings(zones=("bl",), lists=lab.catalog_path,
                                     resolvers=(Nameserver("127.0.0.1", lab.port),), timeout=0.6)  # fmt: skip
    report = service.check(settings, [], discover=discover)
    assert asked == [0.6]
    assert report.verdict is Verdict.LISTED
    assert [r.target.text for r in report.results] == ["203.0.113.5"]
    assert report.warnings == ()
    clean = service.check(settings, ["203.0.113.9"], discover=discover)
    assert asked == [0.6] and clean.verdict is Verdict.CLEAN


def test_no_zone_is_a_usage_error(lab) -> None:
    # A catalog of its own (a --lists file is laid over the embedded default set instead).
    catalog = parse_catalog('[[zone]]\nid = "bl"\nname = "bl.lab.test"\ntakes = ["ipv4"]\n',
                            source="catalog.toml")  # fmt: skip
    settings = service.CheckSettings(resolvers=(Nameserver("127.0.0.1", lab.port),))
    with pytest.raises(UsageError, match="no zones to check"):
        service.check(settings, ["203.0.113.9"], catalog=catalog)


def test_the_monitor_logs_a_warning_once_per_process(lab, tmp_path, monkeypatch, caplog) -> None:
    from blmonitor.monitor import run
    from blmonitor.monitor.store import Store

    monkeypatch.setattr(run, "_WARNED", set())  # a new daemon process
    path = tmp_path / "config.toml"
    path.write_text(
        '[monitor]\ntargets = ["203.0.113.9"]\n'
        'zones = ["bl", "bare.lab.test", "declared.lab.test:ipv4"]\n'
        f'lists = "{lab.catalog_path}"\ndatabase = "{tmp_path / "h.db"}"\n'
        f'[dns]\nresolver = ["{lab.address}"]\ntimeout = 0.6\n'
    )
    config = load_config(path)
    store = Store(config.monitor.database)
    try:
        for _ in range(3):  # three runs of one daemon
            run.run_once(config, store, None, host="mx.example")
    finally:
        store.close()
    warned = [r.getMessage() for r in caplog.records if "not in the catalog" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("bare.lab.test is not in the catalog")


def test_the_watch_follows_a_scan_to_its_end(lab) -> None:
    from blmonitor.dnsbl.engine import ScanWatch

    watch = ScanWatch()
    settings = service.CheckSettings(zones=("bl", "dead", "dom", "bits"), lists=lab.catalog_path,
                                     resolvers=(Nameserver("127.0.0.1", lab.port),), timeout=0.6)  # fmt: skip
    targets = ["203.0.113.0/29", "192.0.2.9", "bad.example"]
    service.check(settings, targets, watch=watch)
    assert (watch.done, watch.targets, watch.targets_done) == (watch.total, 10, 10)
    # dead.lab.test fails its health check: its targets never sent are counted as done
    assert [(z.label, z.left, z.timeouts) for z in watch.zones] == [
        ("bl.lab.test", 0, 0), ("dead.lab.test", 0, 0), ("dom.lab.test", 0, 0),
        ("bits.lab.test", 0, 0),
    ]  # fmt: skip
    assert all(watch.started <= (z.finished or 0) <= watch.clock() for z in watch.zones)
    assert watch.slowest() is None


def _watch(*finished: tuple[str, float, int]):
    from blmonitor.dnsbl.engine import ScanWatch, ZoneWatch

    watch = ScanWatch(clock=lambda: 0.0)
    watch.started = 0.0
    watch.zones = [ZoneWatch(label, 0, at, at, timeouts) for label, at, timeouts in finished]
    return watch


@pytest.mark.parametrize(
    ("finished", "hint"),
    [
        ([("a", 0.3, 0), ("b", 0.5, 0), ("slow", 5.3, 4)],
         "zone slow answered last, 4.8 s after the others: consider dropping it or raising "
         "--timeout (4 of its lookups timed out: it may answer late or not at all)"),
        ([("a", 0.3, 0), ("slow", 3.0, 0)],
         "zone slow answered last, 2.7 s after the others: consider dropping it from your zones"),
        ([("a", 0.3, 0), ("b", 0.9, 0)], ""),  # less than a second between them
        ([("a", 6.0, 0), ("b", 7.2, 0)], ""),  # all slow: no one zone held the others
        ([("a", 0.3, 0)], ""),  # one zone
    ],
)  # fmt: skip
def test_one_slow_zone_that_held_the_batch_gets_a_hint(finished, hint) -> None:
    assert service.slow_zone_hint(_watch(*finished)) == hint


def test_the_watch_says_nothing_before_the_scan_begins() -> None:
    from blmonitor.cli.check import ProgressDisplay
    from blmonitor.dnsbl.engine import ScanWatch

    watch = ScanWatch(clock=lambda: 100.0)  # a public-IP discovery may take its time first
    stream = io.StringIO()
    with ProgressDisplay(watch, stream, delay=0) as display:
        time.sleep(0.4)  # the display looks every 0.25 s
    assert (display.shown, stream.getvalue()) == (False, "")
    assert watch.slowest() is None and service.slow_zone_hint(watch) == ""
