"""Never "clean" when nothing was seen: the resolver blamed rather than the zones, blind runs
that change nothing and say so once, and the status that never contradicts the data.

Every resolver here is a small DNS server of ours on 127.0.0.1 (tests/dnsservers.py): one that
refuses everything, one that knows no name at all (NXDOMAIN for everything, as a sandbox's
resolver does), and a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rcode
import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.config import load_config
from blmonitor.dnsbl import answers as dnsbl
from blmonitor.dnsbl import blame, engine
from blmonitor.dnsbl.catalog import generic_zone, select_zones
from blmonitor.dnsbl.resolver import DnsClient, Nameserver
from blmonitor.models import (
    Answer,
    ErrorKind,
    EventKind,
    Health,
    Outcome,
    Report,
    ResolverFault,
    Result,
    Status,
    Target,
    TargetKind,
    Verdict,
    ZoneHealth,
)
from blmonitor.monitor import state as monitor
from blmonitor.monitor.metrics import store_renderer
from blmonitor.monitor.run import notifier_for, run_once
from blmonitor.monitor.store import Store
from tests import dnsservers, httpservers
from tests.conftest import lab_zone
from tests.test_daemon import Clock

IP = Target("203.0.113.5", TargetKind.IPV4)
BL, STRICT, DEAD = lab_zone("bl"), lab_zone("strict"), lab_zone("dead")
RECORDS = Answer(Outcome.RECORDS, ("a.root-servers.net. x. 1 2 3 4 5",))


def health(zone, kind: Health) -> ZoneHealth:
    return ZoneHealth(zone, kind, "why")


# --- who is to blame (pure) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zones", "root", "apexes", "fault"),
    [
        # the resolver cannot answer for the root: it is at fault, whatever the zones said
        ([health(BL, Health.UNREACHABLE)], Answer(Outcome.TIMEOUT), {}, ResolverFault.UNREACHABLE),
        ([health(BL, Health.UNREACHABLE)], Answer(Outcome.FAILED), {}, ResolverFault.UNREACHABLE),
        ([health(BL, Health.REFUSED)], Answer(Outcome.REFUSED), {}, ResolverFault.REFUSED),
        ([health(BL, Health.UNREACHABLE)], Answer(Outcome.SERVFAIL), {}, ResolverFault.FAILING),
        ([health(BL, Health.DEAD), health(STRICT, Health.DEAD)], Answer(Outcome.NXDOMAIN), {},
         ResolverFault.NXDOMAIN),
        # it answers for the root: several zones failing alike still point at it
        ([health(BL, Health.REFUSED), health(STRICT, Health.REFUSED)], RECORDS, {},
         ResolverFault.REFUSED_BY_LISTS),
        ([health(BL, Health.LISTS_EVERYTHING), health(STRICT, Health.LISTS_EVERYTHING)], RECORDS,
         {}, ResolverFault.REWRITES),
        ([health(BL, Health.DEAD), health(STRICT, Health.DEAD)], RECORDS,
         {BL.name: Answer(Outcome.NXDOMAIN), STRICT.name: Answer(Outcome.NXDOMAIN)},
         ResolverFault.NXDOMAIN),
        # …but one failing zone, or zones failing differently, are the zones' own business
        ([health(DEAD, Health.DEAD)], RECORDS, {DEAD.name: Answer(Outcome.NXDOMAIN)}, None),
        ([health(BL, Health.REFUSED)], RECORDS, {BL.name: RECORDS}, None),
        ([health(BL, Health.DEAD), health(STRICT, Health.DEAD)], RECORDS,
         {BL.name: RECORDS, STRICT.name: Answer(Outcome.NXDOMAIN)}, None),
        # a zone that passed: the resolver works
        ([health(BL, Health.OK), health(DEAD, Health.DEAD)], Answer(Outcome.TIMEOUT), {}, None),
    ],
)  # fmt: skip
def test_judge_resolver(zones, root, apexes, fault) -> None:
    got = blame.judge_resolver(zones, root, apexes, servers=["127.0.0.1:53"])
    assert (got.fault if got else None) is fault
    if got is not None:
        assert got.message.startswith("your resolver 127.0.0.1:53 ")
        assert "unbound" in got.fix


def test_the_refused_range_is_never_a_listing_even_for_a_zone_the_catalog_does_not_know() -> None:
    zone = generic_zone("bl.unknown.example:ipv4")
    for code in ("127.255.255.254", "127.255.255.252", "127.255.255.1"):
        got = dnsbl.decode(zone, Outcome.RECORDS, (code,))
        assert (got.status, got.error_kind) == (Status.ERROR, ErrorKind.REFUSED)
    assert dnsbl.decode(zone, Outcome.RECORDS, ("127.0.0.2",)).status is Status.LISTED


# --- a blind run (pure) ---------------------------------------------------------------------


def report(*results: Result, zones=(), resolver=None) -> Report:
    return Report(tuple(results), tuple(zones), Verdict.UNKNOWN, resolver=resolver)


@pytest.mark.parametrize(
    ("results", "blind"),
    [
        ((Result(IP, BL, Status.CLEAN),), False),
        ((Result(IP, BL, Status.CLEAN), Result(IP, STRICT, Status.ERROR)), False),  # 1 of 2
        ((Result(IP, BL, Status.LISTED), Result(IP, STRICT, Status.ERROR),
          Result(IP, DEAD, Status.ERROR)), True),  # 1 of 3
        ((Result(IP, BL, Status.ERROR),), True),
        ((Result(IP, BL, Status.SKIPPED),), True),  # nothing was looked up
        ((), True),
    ],
)  # fmt: skip
def test_blind_reason(results, blind) -> None:
    assert bool(monitor.blind_reason(report(*results), min_share=0.5)) is blind


def test_a_blind_run_changes_nothing_and_is_told_once() -> None:
    clock = Clock()
    listed = report(Result(IP, BL, Status.LISTED, codes=("127.0.0.2",)))
    state, events = monitor.evaluate(listed, monitor.MonitorState(), now=clock(), confirm=1)
    assert [e.kind for e in events] == [EventKind.LISTED]
    blind = report(Result(IP, BL, Status.ERROR, error="timed out"))
    told = []
    for _ in range(3):
        clock.tick()
        state, events = monitor.evaluate(blind, state, now=clock(), confirm=1)
        told += [e.kind for e in events]
        assert state.pairs[(IP.text, BL.name)].listed  # never ended by a run that could not see
    assert told == [EventKind.CHECKS_FAILING]
    clock.tick()
    state, events = monitor.evaluate(listed, state, now=clock(), confirm=1)
    assert [e.kind for e in events] == [EventKind.CHECKS_RECOVERED]


# --- the engine against broken resolvers (loopback) -------------------------------------------


@pytest.fixture
def refusing() -> Iterator[dnsservers.FakeResolver]:
    server = dnsservers.FakeResolver()
    server.add(".", dnsservers.rcode(dns.rcode.REFUSED))
    yield server
    server.close()


@pytest.fixture
def knows_nothing() -> Iterator[dnsservers.FakeResolver]:
    server = dnsservers.FakeResolver()  # no upstream: NXDOMAIN for every name
    yield server
    server.close()


def scan(lab, port: int, zones=("bl", "strict", "dom"), targets=("203.0.113.5",)) -> Report:
    chosen, _ = select_zones(lab.catalog, zones)

    async def go() -> Report:
        async with DnsClient([Nameserver("127.0.0.1", port)], timeout=0.5) as client:
            return await engine.check(dnsbl.expand_targets(list(targets)), chosen, client,
                                      servers=[f"127.0.0.1:{port}"])  # fmt: skip

    return asyncio.run(go())


def test_a_refusing_resolver_is_named_and_no_zone_is_blamed(lab, refusing) -> None:
    got = scan(lab, refusing.port)
    assert got.resolver is not None and got.resolver.fault is ResolverFault.REFUSED
    assert {z.health for z in got.zones} == {Health.NOT_JUDGED}
    assert got.verdict is Verdict.UNKNOWN
    assert all(r.status is not Status.CLEAN for r in got.results)


def test_a_resolver_that_knows_no_name_is_named_not_the_zones(lab, knows_nothing) -> None:
    got = scan(lab, knows_nothing.port)
    assert got.resolver is not None and got.resolver.fault is ResolverFault.NXDOMAIN
    assert "dead" not in " ".join(z.detail for z in got.zones)
    assert got.verdict is Verdict.UNKNOWN


def test_nothing_listening_is_an_unreachable_resolver(lab) -> None:
    got = scan(lab, dnsservers.free_port())
    assert got.resolver is not None and got.resolver.fault is ResolverFault.UNREACHABLE
    assert got.verdict is Verdict.UNKNOWN


def test_a_working_resolver_still_finds_a_dead_zone(lab) -> None:
    got = scan(lab, lab.port, zones=("dead",))
    assert got.resolver is None
    assert [z.health for z in got.zones] == [Health.DEAD]


def test_a_zone_refusing_everything_is_refused_also_unknown_to_the_catalog(lab) -> None:
    # refusing.lab.test answers 127.255.255.254 for every name; named here without the catalog
    chosen = [generic_zone("refusing.lab.test:ipv4")]

    async def go() -> Report:
        async with DnsClient([Nameserver("127.0.0.1", lab.port)], timeout=0.5) as client:
            return await engine.check([IP], chosen, client)

    got = asyncio.run(go())
    assert [z.health for z in got.zones] == [Health.REFUSED]
    assert got.results[0].status is Status.ERROR


# --- the monitor end to end: run --once, status, one notification each way ----------------------


def write_config(tmp_path: Path, port: int, lab, hook: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[monitor]
targets = ["203.0.113.9"]
zones = ["flip", "bl"]
lists = "{lab.catalog_path}"
confirm = 1
database = "{tmp_path / "blmonitor.db"}"
[dns]
resolver = ["127.0.0.1:{port}"]
timeout = 0.5
[notify]
urls = ["{hook.replace("http://", "json://")}/hook"]
retry = 1
server_name = "mx.example"
""")  # fmt: skip
    return path


def test_resolver_down_is_unknown_everywhere_and_told_once_each_way(lab, tmp_path) -> None:
    proxy = dnsservers.FakeResolver(upstream=lab.rbldnsd_port)  # forwards, until it refuses
    proxy.add("flip.lab.test", lab.flip)
    posted: list[tuple[str, str]] = []
    try:
        with httpservers.serve({}, posted) as hook:
            config_path = write_config(tmp_path, proxy.port, lab, hook)
            config, clock = load_config(config_path), Clock()
            lab.flip.listed = {"203.0.113.9"}  # bl.lab.test does not list it

            def run() -> object:
                store = Store(config.monitor.database)
                try:
                    return run_once(config, store, notifier_for(config), clock=clock)
                finally:
                    store.close()
                    clock.tick()

            first = run()
            assert [e.kind for e in first.events] == [EventKind.LISTED]  # type: ignore[attr-defined]
            down = (dns.name.root, dnsservers.rcode(dns.rcode.REFUSED))
            proxy.rules.insert(0, down)
            lab.flip.listed = set()  # delisted meanwhile: a blind run must not say so
            blind = [run(), run()]
            assert [s.verdict for s in blind] == [Verdict.UNKNOWN] * 2  # type: ignore[attr-defined]
            assert "refuses our queries" in blind[0].error  # type: ignore[attr-defined]
            status = CliRunner().invoke(cli.main, ["status", "-c", str(config_path)])
            assert status.exit_code == 3, status.output
            headline = status.output.splitlines()[-1]
            assert headline.startswith("UNKNOWN (still LISTED: 1 listing(s) known before)")
            assert f"resolver 127.0.0.1:{proxy.port} refuses our queries" in headline
            once = CliRunner().invoke(cli.main, ["run", "--once", "-c", str(config_path)])
            assert once.exit_code == 3
            history = Store(config.monitor.database)
            try:
                assert history.load_state().pairs[("203.0.113.9", "flip.lab.test")].listed
                last = history.last_run()
                assert last is not None and last["verdict"] == "unknown"
            finally:
                history.close()
            scrape = store_renderer(config.monitor.database)()
            assert "blmonitor_last_run_failed 1\n" in scrape
            assert "blmonitor_checks_failing_runs 3\n" in scrape
            proxy.rules.remove(down)
            back = run()
            kinds = [e.kind for e in back.events]  # type: ignore[attr-defined]
            assert kinds == [EventKind.DELISTED, EventKind.CHECKS_RECOVERED] or kinds == [
                EventKind.CHECKS_RECOVERED,
                EventKind.DELISTED,
            ]
    finally:
        proxy.close()
    titles = [json.loads(body)["title"] for _, body in posted]
    assert len(titles) == 3, titles  # listed; nothing checked; checking again (with the delisting)
    assert "UNKNOWN: nothing checked since" in titles[1]
    assert sum("nothing checked" in t for t in titles) == 1


def test_check_names_the_resolver_once_and_exits_3(lab, knows_nothing) -> None:
    args = ["check", "203.0.113.5", "--lists", str(lab.catalog_path), "--zone", "bl",
            "--zone", "strict", "--resolver", f"127.0.0.1:{knows_nothing.port}", "--timeout", "0.5"]  # fmt: skip
    got = CliRunner().invoke(cli.main, args)
    assert got.exit_code == 3
    assert "RESOLVER PROBLEM: no zone could be checked" in got.output
    assert got.output.count("answers NXDOMAIN for names that exist") == 2  # section + verdict line
    assert "dead" not in got.output and "ZONE HEALTH" not in got.output
    data = json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)
    assert data["resolver"]["fault"] == "nxdomain"
    assert {z["health"] for z in data["zones"]} == {"not-judged"}
