"""The engine on the loopback lab: verdicts, codes, TXT, zone health, and a slow zone."""

from __future__ import annotations

import asyncio

import dns.name
import pytest

from blmonitor.dnsbl import answers as dnsbl
from blmonitor.dnsbl import engine
from blmonitor.dnsbl.catalog import select_zones
from blmonitor.dnsbl.resolver import DnsClient, Nameserver
from blmonitor.models import Health, Outcome, Report, Result, Severity, Status, Verdict


def run(lab, targets, zones, *, timeout=1.0, **options) -> Report:
    chosen, _ = select_zones(lab.catalog, zones)

    async def go() -> Report:
        async with DnsClient([Nameserver("127.0.0.1", lab.port)], timeout=timeout) as client:
            return await engine.check(dnsbl.expand_targets(targets), chosen, client, **options)

    return asyncio.run(go())


def by_pair(report: Report) -> dict[tuple[str, str], Result]:
    return {(r.target.text, r.zone.name): r for r in report.results}


def test_listings_codes_txt_and_clean(lab) -> None:
    report = run(lab, ["203.0.113.5", "203.0.113.6", "203.0.113.9", "2001:db8::25"], ["bl"])
    got = by_pair(report)
    five = got[("203.0.113.5", "bl.lab.test")]
    assert (five.status, five.codes, five.txt) == (
        Status.LISTED, ("127.0.0.2",), ("Spam sent from 203.0.113.5 on 2026-11-01",),
    )  # fmt: skip
    six = got[("203.0.113.6", "bl.lab.test")]
    assert six.codes == ("127.0.0.2", "127.0.0.4")
    assert six.meanings == ("spam source", "exploited host")
    assert six.txt == ("Also spam", "Infected")
    assert got[("203.0.113.9", "bl.lab.test")].status is Status.CLEAN
    v6 = got[("2001:db8::25", "bl.lab.test")]
    assert (v6.status, v6.codes, v6.severity) == (Status.LISTED, ("127.0.0.3",), Severity.WARNING)
    assert [(z.zone.name, z.health) for z in report.zones] == [("bl.lab.test", Health.OK)]
    assert report.verdict is Verdict.LISTED


@pytest.mark.parametrize(
    ("zone", "health", "detail"),
    [
        ("dead", Health.DEAD, "is not listed"),
        ("world", Health.LISTS_EVERYTHING, "lists everything"),
        ("refusing", Health.REFUSED, "your resolver is refused by refusing.lab.test"),
        ("outside.lab.test", Health.LISTS_EVERYTHING, "outside 127.0.0.0/8"),
        ("servfail.lab.test", Health.UNREACHABLE, "SERVFAIL"),
        ("refused-rcode.lab.test", Health.REFUSED, "REFUSED"),
        ("slow.lab.test", Health.UNREACHABLE, "timed out"),
    ],
)
def test_sick_zones_never_list_and_never_clean(lab, zone, health, detail) -> None:
    report = run(lab, ["203.0.113.5", "203.0.113.9"], [zone], timeout=0.6)
    [zh] = report.zones
    assert zh.health is health
    assert detail in zh.detail
    assert {r.status for r in report.results} == {Status.ERROR}
    assert report.verdict is Verdict.UNKNOWN


def test_domain_and_bitmask_zones(lab) -> None:
    report = run(lab, ["bad.example", "good.example", "spam.example", "blocked.example", "203.0.113.5"],
                 ["dom", "bits"])  # fmt: skip
    got = {(t, z): (r.status, r.codes) for (t, z), r in by_pair(report).items()}
    assert got[("bad.example", "dom.lab.test")] == (Status.LISTED, ("127.0.1.2",))
    assert got[("good.example", "dom.lab.test")] == (Status.CLEAN, ())
    assert got[("spam.example", "bits.lab.test")] == (Status.LISTED, ("127.0.0.10",))
    assert got[("blocked.example", "bits.lab.test")][0] is Status.ERROR  # bit 1: query blocked
    assert got[("203.0.113.5", "dom.lab.test")][0] is Status.SKIPPED
    assert {z.health for z in report.zones} == {Health.OK}


def test_custom_test_point_and_strict_codes(lab) -> None:
    report = run(lab, ["203.0.113.5"], ["odd", "strict"])
    assert [(z.zone.id, z.health) for z in report.zones] == [
        ("odd", Health.OK), ("strict", Health.OK),
    ]  # fmt: skip
    got = by_pair(report)
    assert got[("203.0.113.5", "odd.lab.test")].status is Status.LISTED
    strict = got[("203.0.113.5", "strict.lab.test")]
    assert strict.status is Status.ERROR and "no such code" in strict.error


class Recording:
    """A Lookup that notes which zone each answer came back for, in the order they came."""

    def __init__(self, client) -> None:
        self.client = client
        self.answers: list[tuple[str, Outcome]] = []

    def submit(self, name, rdtype, callback):
        text = (
            name.to_text()
            if isinstance(name, dns.name.Name)
            else dns.name.from_wire(name, 0)[0].to_text()
        )
        zone = "slow" if text.endswith(".slow.lab.test.") else "other"

        def done(answer):
            self.answers.append((zone, answer.outcome))
            callback(answer)

        self.client.submit(name, rdtype, done)


def test_slow_zone_does_not_hold_up_the_others(lab) -> None:
    """Other zones' answers are in before the slow zone's timeout; the whole run ends with it.

    Told by the order of the answers and the server's counts, not by wall time (bench/run.py
    measures the run's time with a dropped zone).
    """
    seen: list[tuple[int, int]] = []
    before = len(lab.resolver.seen)
    chosen, _ = select_zones(lab.catalog, ["bl", "slow.lab.test", "dom"])

    async def go() -> tuple[Report, list[tuple[str, Outcome]]]:
        async with DnsClient([Nameserver("127.0.0.1", lab.port)], timeout=1.0) as client:
            recording = Recording(client)
            report = await engine.check(
                dnsbl.expand_targets([f"203.0.113.{i}" for i in range(1, 41)]),
                chosen,
                recording,
                progress=lambda done, total: seen.append((done, total)),
            )
            return report, recording.answers

    report, answers = asyncio.run(go())
    first_slow = answers.index(("slow", Outcome.TIMEOUT))
    assert len(answers[:first_slow]) >= 43  # bl: 40 targets + 3 probes (+ TXT of listings)
    assert all(zone == "other" for zone, _ in answers[:first_slow])
    # the slow zone's three probes and one target, all timed out, end the run
    assert answers[first_slow:] == [("slow", Outcome.TIMEOUT)] * 4
    dones = [done for done, _ in seen]
    assert dones == sorted(dones) and seen[-1][0] == seen[-1][1]  # progress up to the whole
    slow = [r for r in report.results if r.zone.name == "slow.lab.test"]
    assert len(slow) == 40 and {r.status for r in slow} == {Status.ERROR}
    bl = [r for r in report.results if r.zone.name == "bl.lab.test"]
    assert {r.status for r in bl} == {Status.LISTED, Status.CLEAN}
    # the slow zone's queued targets were never sent once its probes failed
    asked = sum(1 for n in lab.resolver.seen[before:] if n.endswith("113.0.203.slow.lab.test."))
    assert asked == 3  # one target before the health check, its three attempts; no more


def test_bounded_concurrency_and_per_zone_window(lab) -> None:
    class Counting:
        def __init__(self, client) -> None:
            self.client = client
            self.now = self.peak = 0

        def submit(self, name, rdtype, callback):
            self.now += 1
            self.peak = max(self.peak, self.now)

            def done(answer):
                self.now -= 1
                callback(answer)

            self.client.submit(name, rdtype, done)

    chosen, _ = select_zones(lab.catalog, ["bl", "dom"])

    async def go(**options):
        async with DnsClient([Nameserver("127.0.0.1", lab.port)], timeout=1) as client:
            counting = Counting(client)
            report = await engine.check(
                dnsbl.expand_targets(["203.0.113.0/26", "bad.example"]), chosen, counting, **options
            )
            return counting.peak, report

    peak, report = asyncio.run(go(concurrency=5))
    assert peak == 5
    peak, _ = asyncio.run(go(concurrency=100, zone_concurrency=3))
    assert peak <= 6
    assert len(report.results) == 65 * 2


def test_zones_that_take_no_target_are_left_out(lab) -> None:
    report = run(lab, ["2001:db8::25"], ["bl", "dead", "dom"])
    assert [z.zone.id for z in report.zones] == ["bl"]
    assert [(r.zone.id, r.status) for r in report.results] == [
        ("bl", Status.LISTED), ("dead", Status.SKIPPED), ("dom", Status.SKIPPED),
    ]  # fmt: skip
    assert report.verdict is Verdict.LISTED
    assert not any(".dead.lab.test." in n for n in lab.resolver.seen[-20:])


@pytest.mark.parametrize("concurrency", [1, 4, 200])
def test_zone_failing_while_queued_for_a_slot(lab, concurrency) -> None:
    """A zone whose health fails while it waits in the ready queue is skipped, not crashed on."""
    report = run(lab, ["203.0.113.0/25"], ["bl", "dead", "world", "refusing"],
                 concurrency=concurrency, zone_concurrency=concurrency)  # fmt: skip
    healths = {z.zone.id: z.health for z in report.zones}
    assert healths == {"bl": Health.OK, "dead": Health.DEAD, "world": Health.LISTS_EVERYTHING,
                       "refusing": Health.REFUSED}  # fmt: skip
    assert len(report.results) == 128 * 4
    bad = [r for r in report.results if r.zone.id != "bl"]
    assert {r.status for r in bad} == {Status.ERROR}
