"""DNSBL semantics, table-driven: no sockets, no clock."""

from __future__ import annotations

import pytest

from blmonitor.dnsbl import answers as dnsbl
from blmonitor.dnsbl.catalog import generic_zone, parse_catalog
from blmonitor.errors import UsageError
from blmonitor.models import (
    Answer,
    Health,
    Outcome,
    Result,
    Severity,
    Status,
    Target,
    TargetKind,
    Verdict,
    ZoneHealth,
)
from tests.conftest import LAB_CATALOG, lab_zone

CATALOG = LAB_CATALOG
BL = lab_zone("bl")
DOM = lab_zone("dom")
BITS = lab_zone("bits")
STRICT = lab_zone("strict")
ODD = lab_zone("odd")
GENERIC = generic_zone("any.example.org")
assert BL and DOM and BITS and STRICT and ODD


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.5", Target("203.0.113.5", TargetKind.IPV4)),
        (" 203.0.113.5 ", Target("203.0.113.5", TargetKind.IPV4)),
        ("2001:DB8:0:0::25", Target("2001:db8::25", TargetKind.IPV6)),
        ("Example.COM.", Target("example.com", TargetKind.DOMAIN)),
        ("bücher.example", Target("xn--bcher-kva.example", TargetKind.DOMAIN)),
        ("mail_relay.example.net", Target("mail_relay.example.net", TargetKind.DOMAIN)),
    ],
)
def test_parse_target(text: str, expected: Target) -> None:
    assert dnsbl.parse_target(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "localhost",
        "203.0.113",
        "1.2.3.4.5",
        "-bad.example",
        "a..b",
        "exa mple.com",
        "203.0.113.x",
    ],
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="not an IP address"):
        dnsbl.parse_target(text)


def test_expand_targets_cidr_dedup_and_comments() -> None:
    got = dnsbl.expand_targets(["203.0.113.4/30", "203.0.113.5", "# note", "", "2001:db8::/127"])
    assert [t.text for t in got] == [
        "203.0.113.4", "203.0.113.5", "203.0.113.6", "203.0.113.7", "2001:db8::", "2001:db8::1",
    ]  # fmt: skip


def test_expand_targets_cap() -> None:
    with pytest.raises(UsageError, match="more than the cap of 4096"):
        dnsbl.expand_targets(["10.0.0.0/8"])
    with pytest.raises(UsageError, match="not a CIDR block"):
        dnsbl.expand_targets(["10.0.0.0/33"])


@pytest.mark.parametrize(
    ("target", "zone", "name"),
    [
        ("203.0.113.5", BL, "5.113.0.203.bl.lab.test."),
        ("2001:db8::25", BL, "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.lab.test."),
        # RFC 5782 §5 IPv6 test point: IPv4-mapped, still 32 nibbles, never in-addr form
        ("::ffff:7f00:2", BL, "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.lab.test."),
        ("example.com", DOM, "example.com.dom.lab.test."),
        ("203.0.113.5", DOM, None),
        ("example.com", BL, None),
        ("2001:db8::25", GENERIC, None),
    ],
)  # fmt: skip
def test_query_name(target: str, zone, name: str | None) -> None:
    # (the test point is a health probe's Target, never parsed from user input, which maps
    # an IPv4-mapped address to the IPv4 sender it is)
    parsed = (Target(target, TargetKind.IPV6) if target.startswith("::ffff:")
              else dnsbl.parse_target(target))  # fmt: skip
    got = dnsbl.query_name(parsed, zone)
    assert (got.to_text() if got else None) == name


A = Outcome.RECORDS


@pytest.mark.parametrize(
    ("zone", "outcome", "records", "status", "severity", "meaning"),
    [
        (BL, Outcome.NXDOMAIN, (), Status.CLEAN, None, ""),
        (BL, Outcome.NODATA, (), Status.CLEAN, None, ""),
        (BL, A, ("127.0.0.2",), Status.LISTED, Severity.CRITICAL, "spam source"),
        (BL, A, ("127.0.0.2", "127.0.0.4"), Status.LISTED, Severity.CRITICAL,
         "spam source; exploited host"),
        (BL, A, ("127.0.0.10",), Status.LISTED, Severity.INFO, "policy"),
        (BL, A, ("127.0.0.77",), Status.LISTED, Severity.WARNING, "code not in the catalog"),
        (BL, A, ("127.255.255.254",), Status.ERROR, None, "public resolver"),
        (BL, A, ("127.0.0.2", "127.255.255.254"), Status.ERROR, None, "public resolver"),
        (BL, A, ("127.0.0.1",), Status.ERROR, None, "not a listing code"),
        (BL, A, ("10.1.2.3",), Status.ERROR, None, "outside 127.0.0.0/8"),
        (BL, A, ("127.0.0.2", "192.0.2.1"), Status.ERROR, None, "outside 127.0.0.0/8"),
        (BL, Outcome.TIMEOUT, (), Status.ERROR, None, "timed out"),
        (BL, Outcome.SERVFAIL, (), Status.ERROR, None, "SERVFAIL"),
        (BL, Outcome.REFUSED, (), Status.ERROR, None, "REFUSED"),
        (BL, Outcome.FAILED, (), Status.ERROR, None, "lookup failed"),
        (STRICT, A, ("127.0.0.9",), Status.ERROR, None, "documents no such code"),
        (DOM, A, ("127.0.1.2",), Status.LISTED, Severity.CRITICAL, "spam domain"),
        (DOM, A, ("127.0.1.255",), Status.ERROR, None, "IP queried against a domain list"),
        (BITS, A, ("127.0.0.10",), Status.LISTED, Severity.CRITICAL, "black; red"),
        (BITS, A, ("127.0.0.4",), Status.LISTED, Severity.WARNING, "grey"),
        (BITS, A, ("127.0.0.1",), Status.ERROR, None, "query blocked"),
        (BITS, A, ("127.0.0.3",), Status.ERROR, None, "query blocked"),
        (BITS, A, ("127.0.0.64",), Status.LISTED, Severity.WARNING, "bits the catalog does not know"),
        (GENERIC, A, ("127.0.0.2",), Status.LISTED, Severity.WARNING, "listed"),
        (GENERIC, A, ("127.0.0.1",), Status.ERROR, None, "not a listing code"),
    ],
)  # fmt: skip
def test_decode(zone, outcome, records, status, severity, meaning) -> None:
    got = dnsbl.decode(zone, outcome, records)
    assert got.status is status
    assert got.severity == severity
    assert meaning in ("; ".join(got.meanings) + got.error)


def test_judge_listed_keeps_all_codes_txt_and_delist_link() -> None:
    target = dnsbl.parse_target("203.0.113.6")
    result = dnsbl.judge(
        target, BL, Answer(A, ("127.0.0.2", "127.0.0.4")), Answer(A, ("Infected", "Spam"))
    )
    assert result == Result(
        target, BL, Status.LISTED, codes=("127.0.0.2", "127.0.0.4"),
        meanings=("spam source", "exploited host"), severity=Severity.CRITICAL,
        txt=("Infected", "Spam"), delist_url="https://bl.lab.test/remove?ip=203.0.113.6",
    )  # fmt: skip


def test_judge_code_specific_delist_link_and_skip() -> None:
    target = dnsbl.parse_target("203.0.113.7")
    assert (
        dnsbl.judge(target, BL, Answer(A, ("127.0.0.10",))).delist_url
        == "https://bl.lab.test/pbl?ip=203.0.113.7"
    )
    skipped = dnsbl.judge(target, DOM, None)
    assert skipped.status is Status.SKIPPED and "does not take ipv4" in skipped.error


def _probe_answers(zone, *answers: Answer):
    probes = dnsbl.health_probes(zone, zone.takes, "nonce")
    assert len(probes) == len(answers)
    return list(zip(probes, answers, strict=True))


NX = Answer(Outcome.NXDOMAIN)
LISTED2 = Answer(A, ("127.0.0.2",))


@pytest.mark.parametrize(
    ("answers", "health", "detail"),
    [
        ((LISTED2, NX, NX), Health.OK, ""),
        ((NX, NX, NX), Health.DEAD, "not listed"),
        ((LISTED2, LISTED2, NX), Health.LISTS_EVERYTHING, "lists everything"),
        ((LISTED2, NX, LISTED2), Health.LISTS_EVERYTHING, "random name"),
        ((Answer(A, ("127.255.255.254",)),) * 3, Health.REFUSED, "use a local recursive resolver"),
        ((Answer(A, ("10.0.0.1",)),) * 3, Health.LISTS_EVERYTHING, "outside 127.0.0.0/8"),
        ((Answer(Outcome.TIMEOUT),) * 3, Health.UNREACHABLE, "timed out"),
        ((LISTED2, Answer(Outcome.TIMEOUT), NX), Health.UNREACHABLE, "unlisted test point"),
        ((Answer(Outcome.SERVFAIL), NX, NX), Health.UNREACHABLE, "SERVFAIL"),
        ((Answer(Outcome.REFUSED), NX, NX), Health.REFUSED, "REFUSED"),
        # the gravest finding wins whatever the probe order
        ((Answer(Outcome.TIMEOUT), NX, Answer(A, ("127.255.255.254",))), Health.REFUSED, ""),
        ((Answer(A, ("127.0.0.1",)), NX, NX), Health.DEAD, "answered an error"),
    ],
)
def test_judge_health_ipv4(answers, health, detail) -> None:
    zone = lab_zone("refusing")  # ipv4 only, with a 127.255.255.254 error code
    got = dnsbl.judge_health(zone, _probe_answers(zone, *answers))
    assert got.health is health
    assert detail in got.detail


def test_health_probes_cover_each_kind_and_use_overrides() -> None:
    points = [(p.probe, p.kind, p.point) for p in dnsbl.health_probes(BL, BL.takes, "x1")]
    assert points == [
        (dnsbl.Probe.LISTED, TargetKind.IPV4, "127.0.0.2"),
        (dnsbl.Probe.UNLISTED, TargetKind.IPV4, "127.0.0.1"),
        (dnsbl.Probe.LISTED, TargetKind.IPV6, "::ffff:7f00:2"),
        (dnsbl.Probe.UNLISTED, TargetKind.IPV6, "::ffff:7f00:1"),
        (dnsbl.Probe.RANDOM, None, "blm-x1"),
    ]
    assert [p.point for p in dnsbl.health_probes(ODD, ODD.takes, "x")][:1] == ["127.0.0.99"]
    assert [p.name.to_text() for p in dnsbl.health_probes(DOM, DOM.takes, "x")] == [
        "test.dom.lab.test.", "invalid.dom.lab.test.", "blm-x.dom.lab.test.",
    ]  # fmt: skip


def test_refused_health_mentions_dqs_for_spamhaus_like_zones() -> None:
    zone = lab_zone("refusing")
    got = dnsbl.judge_health(zone, _probe_answers(zone, *(Answer(A, ("127.255.255.254",)),) * 3))
    assert "your resolver is refused by refusing.lab.test" in got.detail
    assert "DQS key" in got.detail


def test_distrust_turns_listing_of_a_sick_zone_into_error() -> None:
    target = dnsbl.parse_target("203.0.113.5")
    listed = dnsbl.judge(target, BL, LISTED2)
    sick = ZoneHealth(BL, Health.LISTS_EVERYTHING, "wildcard")
    got = dnsbl.distrust(listed, sick)
    assert got.status is Status.ERROR and got.severity is None and got.codes == ("127.0.0.2",)
    assert "lists-everything" in got.error
    assert dnsbl.distrust(listed, ZoneHealth(BL, Health.OK)) is listed


def _result(status: Status, severity: Severity | None = None, zone=BL) -> Result:
    return Result(Target("203.0.113.5", TargetKind.IPV4), zone, status, severity=severity)


@pytest.mark.parametrize(
    ("statuses", "fail_on", "verdict"),
    [
        ([(Status.CLEAN, None)], Severity.WARNING, Verdict.CLEAN),
        ([(Status.CLEAN, None), (Status.SKIPPED, None)], Severity.WARNING, Verdict.CLEAN),
        ([(Status.LISTED, Severity.CRITICAL)], Severity.WARNING, Verdict.LISTED),
        ([(Status.LISTED, Severity.INFO)], Severity.WARNING, Verdict.CLEAN),
        ([(Status.LISTED, Severity.INFO)], Severity.INFO, Verdict.LISTED),
        ([(Status.LISTED, Severity.WARNING)], Severity.CRITICAL, Verdict.CLEAN),
        ([(Status.CLEAN, None), (Status.ERROR, None)], Severity.WARNING, Verdict.UNKNOWN),
        ([(Status.ERROR, None), (Status.LISTED, Severity.CRITICAL)], Severity.WARNING,
         Verdict.LISTED),
        ([], Severity.WARNING, Verdict.CLEAN),
    ],
)  # fmt: skip
def test_decide(statuses, fail_on, verdict) -> None:
    results = [_result(s, sev) for s, sev in statuses]
    assert dnsbl.decide(results, [ZoneHealth(BL, Health.OK)], fail_on=fail_on) is verdict


def test_decide_unknown_when_a_zone_is_sick_and_allow_lists_never_list() -> None:
    assert (
        dnsbl.decide([_result(Status.CLEAN)], [ZoneHealth(BL, Health.DEAD)], fail_on=Severity.INFO)
        is Verdict.UNKNOWN
    )
    allow = parse_catalog(
        '[[zone]]\nid = "w"\nname = "wl.example"\ntakes = ["ipv4"]\nkind = "allow"\n', source="t"
    ).zones[0]
    assert (
        dnsbl.decide([_result(Status.LISTED, Severity.CRITICAL, allow)], [], fail_on=Severity.INFO)
        is Verdict.CLEAN
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("::ffff:198.18.16.138", ("198.18.16.138", TargetKind.IPV4)),  # the IPv4 sender it is
        ("::FFFF:C612:108A", ("198.18.16.138", TargetKind.IPV4)),
        ("2001:db8::25", ("2001:db8::25", TargetKind.IPV6)),
    ],
)
def test_ipv4_mapped_addresses_are_checked_as_ipv4(text, expected) -> None:
    target = dnsbl.parse_target(text)
    assert (target.text, target.kind) == expected


def test_a_scoped_address_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="scoped"):
        dnsbl.parse_target("fe80::1%eth0")


def test_nothing_can_come_out_clean_without_a_lookup() -> None:
    ip, domain = dnsbl.parse_target("203.0.113.5"), dnsbl.parse_target("example.com")
    with pytest.raises(UsageError, match=r"no zone takes example.com \(domain\)"):
        dnsbl.check_plan([ip, domain], [BL])
    long_zone = generic_zone(".".join(["a" * 60] * 4) + ".example:ipv4")
    with pytest.raises(UsageError, match="longer than DNS allows"):
        dnsbl.check_plan([ip], [long_zone])
    dnsbl.check_plan([ip, domain], [BL, DOM])  # each taken by a zone: no error
