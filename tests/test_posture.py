"""The sender's posture: the SPF evaluator and the PTR heuristics from tables, then the checks,
the service, `blmonitor posture` and `diagnose` against an authoritative zone of ours served on
127.0.0.1 (PTR, A/AAAA, SPF and DMARC TXT, MX)."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import dns.name
import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.causes import diagnosis, posture, service, spf
from blmonitor.config import load_config
from blmonitor.dnsbl.answers import parse_target
from blmonitor.errors import UsageError
from blmonitor.models import Answer, Outcome, Severity, Target, Verdict
from tests import dnsservers

# --- the pure SPF evaluator, driven by a table of records -------------------------------------

Records = dict[tuple[str, str], Sequence[str] | str]


T = TypeVar("T")


def drive(check: Generator[spf.Question, Answer, T], records: Records) -> T:
    """Answer each question from `records`: a list is the records, "servfail" an error, a name
    that holds no record of any type NXDOMAIN, one that holds other types NODATA."""
    names = {name for name, _ in records}
    try:
        question = next(check)
        while True:
            name, rdtype = question[0].to_text(True), question[1].name
            held = records.get((name, rdtype))
            if held == "servfail":
                answer = Answer(Outcome.SERVFAIL, detail="127.0.0.1:53")
            elif held:
                answer = Answer(Outcome.RECORDS, tuple(held))
            else:
                answer = Answer(Outcome.NODATA if name in names else Outcome.NXDOMAIN)
            question = check.send(answer)
    except StopIteration as stop:
        found: T = stop.value
        return found


def spf_zone(record: str, extra: Records | None = None) -> Records:
    return {("example.com", "TXT"): [record, "google-site-verification=x"], **(extra or {})}


def chain(n: int) -> Records:
    zone: Records = {("example.com", "TXT"): [" ".join(
        ["v=spf1", *(f"include:i{i}.example.net" for i in range(n)), "-all"])]}  # fmt: skip
    zone.update({(f"i{i}.example.net", "TXT"): ["v=spf1 ?all"] for i in range(n)})
    return zone


SPF_CASES = [
    # (what, records, ip, verdict, the deciding term or the reason's words)
    ("ip4 passes", spf_zone("v=spf1 ip4:203.0.113.0/24 -all"), "203.0.113.5", "pass",
     "ip4:203.0.113.0/24"),
    ("-all fails", spf_zone("v=spf1 ip4:198.51.100.0/24 -all"), "203.0.113.5", "fail", "-all"),
    ("~all softfails", spf_zone("v=spf1 ~all"), "203.0.113.5", "softfail", "~all"),
    ("?all is neutral", spf_zone("v=spf1 ?all"), "203.0.113.5", "neutral", "?all"),
    ("no all is neutral", spf_zone("v=spf1 ip4:198.51.100.1"), "203.0.113.5", "neutral", ""),
    ("no record", {("example.com", "TXT"): ["something else"]}, "203.0.113.5", "none", ""),
    ("two records", {("example.com", "TXT"): ["v=spf1 -all", "v=spf1 +all"]}, "203.0.113.5",
     "permerror", "2 SPF records"),
    ("ip6 passes", spf_zone("v=spf1 ip6:2001:db8::/32 -all"), "2001:db8::25", "pass",
     "ip6:2001:db8::/32"),
    ("ip4 never covers an IPv6", spf_zone("v=spf1 ip4:0.0.0.0/0 -all"), "2001:db8::25", "fail",
     "-all"),
    ("a with a prefix", spf_zone("v=spf1 a/24 -all", {("example.com", "A"): ["203.0.113.200"]}),
     "203.0.113.5", "pass", "a/24"),
    ("a of another name", spf_zone("v=spf1 a:mail.example.com -all",
                                   {("mail.example.com", "A"): ["203.0.113.5"]}),
     "203.0.113.5", "pass", "a:mail.example.com"),
    ("mx", spf_zone("v=spf1 mx -all", {
        ("example.com", "MX"): ["10 mx1.example.com.", "20 mx2.example.com."],
        ("mx2.example.com", "A"): ["203.0.113.5"]}),
     "203.0.113.5", "pass", "mx"),
    ("include passes", spf_zone("v=spf1 include:_spf.example.net -all",
                                {("_spf.example.net", "TXT"): ["v=spf1 ip4:203.0.113.5 ~all"]}),
     "203.0.113.5", "pass", "include:_spf.example.net"),
    ("an include's fail is no match", spf_zone("v=spf1 include:_spf.example.net ~all",
                                               {("_spf.example.net", "TXT"): ["v=spf1 -all"]}),
     "203.0.113.5", "softfail", "~all"),
    ("include of no record", spf_zone("v=spf1 include:none.example.net -all",
                                      {("none.example.net", "A"): ["192.0.2.1"]}),
     "203.0.113.5", "permerror", "has no SPF record"),
    ("include loop", spf_zone("v=spf1 include:a.example.net -all",
                              {("a.example.net", "TXT"): ["v=spf1 include:example.com -all"]}),
     "203.0.113.5", "permerror", "include loop: example.com → a.example.net → example.com"),
    ("10 lookups are allowed", chain(10), "203.0.113.5", "fail", "-all"),
    ("11 lookups are too many", chain(11), "203.0.113.5", "permerror",
     "more than 10 DNS lookups (at include:i10.example.net)"),
    ("two void lookups are allowed", spf_zone("v=spf1 a:n1.example.net a:n2.example.net -all"),
     "203.0.113.5", "fail", "-all"),
    ("a third void lookup", spf_zone(
        "v=spf1 a:n1.example.net a:n2.example.net a:n3.example.net -all"),
     "203.0.113.5", "permerror", "more than 2 void lookups (at n3.example.net)"),
    ("redirect", spf_zone("v=spf1 redirect=_spf.example.net",
                          {("_spf.example.net", "TXT"): ["v=spf1 ip4:203.0.113.5 -all"]}),
     "203.0.113.5", "pass", "ip4:203.0.113.5"),
    ("redirect is not taken after all", spf_zone("v=spf1 -all redirect=_spf.example.net",
                                                 {("_spf.example.net", "TXT"): ["v=spf1 +all"]}),
     "203.0.113.5", "fail", "-all"),
    ("redirect to no record", spf_zone("v=spf1 redirect=none.example.net"), "203.0.113.5",
     "permerror", "none.example.net has no SPF record"),
    ("exists with a macro", spf_zone("v=spf1 exists:%{ir}.%{v}._spf.%{d} -all",
                                     {("5.113.0.203.in-addr._spf.example.com", "A"): ["127.0.0.2"]}),
     "203.0.113.5", "pass", "exists:%{ir}.%{v}._spf.%{d}"),
    ("ptr", spf_zone("v=spf1 ptr -all", {("5.113.0.203.in-addr.arpa", "PTR"): ["mail.example.com."],
                     ("mail.example.com", "A"): ["203.0.113.5"]}),
     "203.0.113.5", "pass", "ptr"),
    ("an unanswered include", spf_zone("v=spf1 include:_spf.example.net -all",
                                       {("_spf.example.net", "TXT"): "servfail"}),
     "203.0.113.5", "temperror", "_spf.example.net TXT: servfail"),
    ("an unknown mechanism", spf_zone("v=spf1 ip5:1.2.3.4 -all"), "203.0.113.5", "permerror",
     "unknown mechanism"),
    ("a bad network", spf_zone("v=spf1 ip4:203.0.113.300 -all"), "203.0.113.5", "permerror",
     "is not a network"),
    ("a bad prefix", spf_zone("v=spf1 a/33 -all"), "203.0.113.5", "permerror",
     "bad prefix length '/33'"),
    ("a bad ip6 prefix", spf_zone("v=spf1 mx//129 -all"), "203.0.113.5", "permerror",
     "bad prefix length '//129'"),
    ("an unknown macro", spf_zone("v=spf1 exists:%{x}.example.com -all"), "203.0.113.5",
     "permerror", "unknown macro %{x}"),
    ("a macro keeping 0 labels", spf_zone("v=spf1 exists:%{d0}.example.com -all"),
     "203.0.113.5", "permerror", "may not keep 0 labels"),
    ("a stray %", spf_zone("v=spf1 exists:%d.example.com -all"), "203.0.113.5", "permerror",
     "a bad macro"),
    ("two redirects", spf_zone("v=spf1 redirect=a.example.net redirect=b.example.net"),
     "203.0.113.5", "permerror", "two redirect= modifiers"),
    ("a term that does not parse", spf_zone("v=spf1 ?? -all"), "203.0.113.5",
     "permerror", "cannot parse"),
    ("all with an argument", spf_zone("v=spf1 all:example.com"), "203.0.113.5", "permerror",
     "takes no argument"),
    ("ip4 with an IPv6 network", spf_zone("v=spf1 ip4:2001:db8::/32 -all"), "203.0.113.5",
     "permerror", "is not an IPv4 network"),
    ("include without a domain", spf_zone("v=spf1 include -all"), "203.0.113.5", "permerror",
     "needs a domain"),
    ("a: without a domain", spf_zone("v=spf1 a: -all"), "203.0.113.5", "permerror",
     "needs a domain"),
    ("a name that cannot be one", spf_zone("v=spf1 a:" + "x" * 64 + ".example.com -all"),
     "203.0.113.5", "permerror", "is not a domain name"),
    ("more than 10 MX names", spf_zone("v=spf1 mx -all", {("example.com", "MX"): [
        f"10 mx{i}.example.com." for i in range(11)]}), "203.0.113.5", "permerror",
     "more than 10 MX names"),
    ("a null MX matches nothing", spf_zone("v=spf1 mx ~all", {("example.com", "MX"): ["0 ."]}),
     "203.0.113.5", "softfail", "~all"),
    ("ptr outside the domain", spf_zone("v=spf1 ptr -all", {
        ("5.113.0.203.in-addr.arpa", "PTR"): ["mail.example.net."],
        ("mail.example.net", "A"): ["203.0.113.5"]}), "203.0.113.5", "fail", "-all"),
    ("unknown modifiers are ignored", spf_zone("v=spf1 foo=bar exp=explain.%{d} ip4:203.0.113.5"),
     "203.0.113.5", "pass", "ip4:203.0.113.5"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "records", "ip", "verdict", "said"), SPF_CASES,
                         ids=[c[0] for c in SPF_CASES])  # fmt: skip
def test_check_host(what: str, records: Records, ip: str, verdict: str, said: str) -> None:
    result = drive(spf.check_host(ip, "example.com"), records)
    assert result.verdict == verdict
    if verdict in ("permerror", "temperror"):
        assert said in result.reason
    else:
        assert result.mechanism == said


def test_lookups_and_voids_are_counted() -> None:
    result = drive(spf.check_host("203.0.113.5", "example.com"), chain(10))
    assert (result.lookups, result.voids, result.record.startswith("v=spf1 include:i0")) == (
        10, 0, True)  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "expanded"),
    [
        ("%{i}.%{d}", "203.0.113.5.example.com"),
        ("%{ir}.%{v}", "5.113.0.203.in-addr"),
        ("%{d2}", "example.com"),
        ("%{l}@%{o} %{h}", "postmaster@example.com mail.example.com"),
        ("%{s-}", "postmaster@example.com"),
        ("%%%_%-", "% %20"),
    ],
)
def test_macros(spec: str, expanded: str) -> None:
    run = spf._Run(ipaddress.ip_address("203.0.113.5"), "postmaster@example.com",
                   "mail.example.com")  # fmt: skip
    assert spf.expand_macros(spec, "example.com", run) == expanded


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("v=DMARC1; p=reject; rua=mailto:d@example.com", ""),
        ("v=DMARC1;p=none;", ""),
        ("v=DMARC1; p=none; pct", "'pct' is not tag=value"),
        ("p=none; v=DMARC1", "it does not begin with v=DMARC1"),
        ("v=DMARC1; rua=mailto:d@example.com", "p='': give none, quarantine or reject"),
        ("v=DMARC1; p=block", "p='block': give none, quarantine or reject"),
    ],
)
def test_parse_dmarc(record: str, problem: str) -> None:
    if problem:
        with pytest.raises(ValueError, match=re.escape(problem)):
            posture.parse_dmarc(record)
    else:
        assert posture.parse_dmarc(record)["v"] == "DMARC1"


# --- the PTR heuristics -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ip", "generic"),
    [
        ("mail.example.com", "203.0.113.5", ""),
        ("mx1.example.co.uk", "203.0.113.5", ""),
        ("host.example.com", "203.0.113.5", ""),  # a word alone is a server's name
        ("203-0-113-5.static.isp.example", "203.0.113.5", "address"),
        ("5.113.0.203.in-addr.isp.example", "203.0.113.5", "address"),
        ("ip203-000-113-005.isp.example", "203.0.113.5", "address"),
        ("c0007105.isp.example", "192.0.113.5", "address"),
        ("cb007105.isp.example", "203.0.113.5", "address"),
        ("dynamic-5.isp.example", "203.0.113.5", "'dynamic'"),
        ("pool-71-5.nyc.isp.example", "203.0.113.5", "'pool'"),
        ("adsl.abc.isp.example", "203.0.113.5", "'adsl'"),
        ("host-5.isp.example", "203.0.113.5", "'host' beside digits"),
        ("static123.isp.example", "203.0.113.5", "'static' beside digits"),
        ("mail.dynamic.example", "203.0.113.5", ""),  # the registered domain is theirs
        ("mail.dynamics-crm.example.com", "203.0.113.5", ""),
        ("2001-db8--25.v6.isp.example", "2001:db8::25", ""),
        ("0000-0000-0000-0025.dsl.isp.example", "2001:db8::25", "address"),
    ],
)
def test_generic_reason(name: str, ip: str, generic: str) -> None:
    reason = posture.generic_reason(name, ip)
    assert (generic in reason) if generic else reason == ""


# --- the checks, the service and the command against our authoritative zone -------------------

ZONE = [
    # 203.0.113.5: the clean sender
    ("5.113.0.203.in-addr.arpa", "PTR", "mail.example.com."),
    ("mail.example.com", "A", "203.0.113.5"),
    ("example.com", "TXT", '"v=spf1 mx include:_spf.example.com -all"'),
    ("example.com", "MX", "10 mail.example.com."),
    ("_spf.example.com", "TXT", '"v=spf1 ip4:203.0.113.0/29 ~all"'),
    ("_dmarc.example.com", "TXT", '"v=DMARC1; p=reject; rua=mailto:d@example.com"'),
    # 203.0.113.7: a PTR whose name points elsewhere; 203.0.113.8: a dynamic name
    ("7.113.0.203.in-addr.arpa", "PTR", "mx.example.net."),
    ("mx.example.net", "A", "198.51.100.1"),
    ("8.113.0.203.in-addr.arpa", "PTR", "203-0-113-8.dynamic.isp.example."),
    ("203-0-113-8.dynamic.isp.example", "A", "203.0.113.8"),
    # domains with one fault each
    ("soft.example", "TXT", '"v=spf1 ip4:198.51.100.0/24 ~all"'),
    ("soft.example", "MX", "10 mail.example.com."),
    ("_dmarc.soft.example", "TXT", '"v=DMARC1; p=none"'),
    ("many.example", "TXT", " ".join(  # over 255 characters: strings of one record
        ['"v=spf1', *(f'include:i{i}.many.example" "' for i in range(11)), '-all"'])),
    *((f"i{i}.many.example", "TXT", '"v=spf1 ?all"') for i in range(11)),
    ("loop.example", "TXT", '"v=spf1 include:_spf.loop.example -all"'),
    ("_spf.loop.example", "TXT", '"v=spf1 ip4:198.51.100.0/24 include:loop.example -all"'),
    ("loop.example", "MX", "10 mail.example.com."),
    ("_dmarc.loop.example", "TXT", '"v=DMARC1; p=none"'),
    ("many.example", "MX", "10 mail.example.com."),
    ("_dmarc.many.example", "TXT", '"v=DMARC1; p=none"'),
    ("nodmarc.example", "TXT", '"v=spf1 redirect=_spf.example.com"'),
    ("nodmarc.example", "MX", "10 mail.example.com."),
    ("_dmarc.nodmarc.example", "TXT", '"v=spf1 -all"'),
    ("nomx.example", "TXT", '"v=spf1 ip4:203.0.113.5 -all"'),
    ("_dmarc.nomx.example", "TXT", '"v=DMARC1; p=quarantine"'),
    ("nomx.example", "A", "203.0.113.5"),
    ("baddmarc.example", "TXT", '"v=spf1 ip4:203.0.113.5 -all"'),
    ("baddmarc.example", "MX", "10 mail.example.com."),
    ("_dmarc.baddmarc.example", "TXT", '"v=DMARC1; p=reject"'),
    ("_dmarc.baddmarc.example", "TXT", '"v=DMARC1; p=none"'),
    ("badp.example", "TXT", '"v=spf1 ip4:203.0.113.5 -all"'),
    ("badp.example", "MX", "0 ."),
    ("_dmarc.badp.example", "TXT", '"v=DMARC1; p=monitor"'),
    # 203.0.113.10: a PTR whose name does not answer
    ("10.113.0.203.in-addr.arpa", "PTR", "mail.slow.example."),
    ("news.sub.example", "TXT", '"v=spf1 ip4:203.0.113.5 -all"'),  # DMARC at its parent
    ("news.sub.example", "MX", "10 mail.example.com."),
    ("_dmarc.sub.example", "TXT", '"v=DMARC1; p=reject"'),
]  # fmt: skip


@pytest.fixture(scope="module")
def zone() -> Iterator[dnsservers.FakeResolver]:
    server = dnsservers.FakeResolver()
    server.add(".", dnsservers.StaticZone(ZONE, servfail=("9.113.0.203.in-addr.arpa",),
                                          dropped=("slow.example",)))  # fmt: skip
    yield server
    server.close()


def config_file(tmp_path: Path, zone: dnsservers.FakeResolver, targets: Sequence[str],
                domains: Sequence[str] = ()) -> Path:  # fmt: skip
    path = tmp_path / "config.toml"
    path.write_text(f"""[monitor]
targets = {json.dumps(list(targets))}
database = "{tmp_path / "h.db"}"
[dns]
resolver = ["127.0.0.1:{zone.port}"]
timeout = 0.6
[diagnose]
local_domains = {json.dumps(list(domains))}
""")
    return path


def check(tmp_path: Path, zone: dnsservers.FakeResolver, *targets: str, helo: str = "",
          domains: Sequence[str] = ()) -> posture.PostureReport:  # fmt: skip
    config = load_config(config_file(tmp_path, zone, targets or ["auto"], domains))
    return service.posture(config, targets, helo=helo, which=lambda _: None)


def kinds(report: posture.PostureReport) -> list[tuple[str, str]]:
    return [(f.subject, f.kind) for f in report.findings]


def test_a_clean_setup_says_nothing(tmp_path: Path, zone: dnsservers.FakeResolver) -> None:
    report = check(tmp_path, zone, "203.0.113.5", "example.com", helo="mail.example.com")
    assert report.findings == () and report.unknown == ()
    assert report.verdict is Verdict.CLEAN
    assert posture.render_posture(report).startswith(
        "posture: nothing to fix\nchecked: PTR of 203.0.113.5, HELO mail.example.com of"
    )


@pytest.mark.parametrize(
    ("targets", "helo", "found", "fix"),
    [
        (["203.0.113.6"], "", [("203.0.113.6", "no-ptr")],
         "ask whoever holds 203.0.113.6 (your ISP or host) to set its PTR to mail.example.com"),
        (["203.0.113.7"], "", [("203.0.113.7", "ptr-not-confirmed")],
         "add `mx.example.net. A 203.0.113.7` in the zone of mx.example.net"),
        (["203.0.113.8"], "", [("203.0.113.8", "generic-ptr")],
         "set its PTR to a name of your own domain, such as mail.example.com"),
        (["203.0.113.5"], "mx.example.net", [("203.0.113.5", "helo")],
         "add `mx.example.net. A 203.0.113.5`, or set the MTA's HELO name"),
        (["203.0.113.5"], "gone.example.net", [("203.0.113.5", "helo")],
         "the HELO name gone.example.net resolves to nothing, not to 203.0.113.5"),
        (["203.0.113.5", "soft.example"], "", [("soft.example", "spf-not-covering")],
         "add ip4:203.0.113.5 to the SPF record of soft.example, before its `all`"),
        (["203.0.113.5", "many.example"], "", [("many.example", "spf-lookups")],
         "more than 10 DNS lookups (at include:i10.many.example)"),
        (["203.0.113.5", "loop.example"], "", [("loop.example", "spf-invalid")],
         "include loop: loop.example → _spf.loop.example → loop.example\n"
         "          fix: remove the include of loop.example from the SPF record of "
         "_spf.loop.example: it leads back"),
        (["203.0.113.5", "nodmarc.example"], "", [("nodmarc.example", "no-dmarc")],
         'publish `_dmarc.nodmarc.example. TXT "v=DMARC1; p=none; rua=mailto:dmarc@'),
        (["203.0.113.5", "nomx.example"], "", [("nomx.example", "no-mx")],
         "publish `nomx.example. MX 10 mail.nomx.example.`"),
        (["203.0.113.5", "news.sub.example"], "", [], ""),
        (["203.0.113.5", "baddmarc.example"], "", [("baddmarc.example", "dmarc-invalid")],
         "the DMARC record at _dmarc.baddmarc.example is unusable: 2 records"),
        (["203.0.113.5", "badp.example"], "", [("badp.example", "dmarc-invalid"),
                                               ("badp.example", "no-mx")],
         "p='monitor': give none, quarantine or reject"),
        (["2001:db8::25", "nomx.example"], "",
         [("2001:db8::25", "no-ptr"), ("nomx.example", "spf-not-covering"),
          ("nomx.example", "no-mx")], "add ip6:2001:db8::25 to the SPF record of nomx.example"),
        (["example.org"], "", [("example.org", "spf-missing"), ("example.org", "no-dmarc"),
                               ("example.org", "no-mx")], 'TXT "v=spf1 mx -all"'),
    ],
)  # fmt: skip
def test_each_finding_with_its_fix(
    tmp_path: Path, zone: dnsservers.FakeResolver, targets: list[str], helo: str,
    found: list[tuple[str, str]], fix: str,
) -> None:  # fmt: skip
    report = check(tmp_path, zone, *targets, helo=helo)
    assert kinds(report) == found, posture.render_posture(report)
    assert report.verdict is (Verdict.LISTED if found else Verdict.CLEAN)
    assert fix in posture.render_posture(report)


def test_each_question_is_asked_once(tmp_path: Path, zone: dnsservers.FakeResolver) -> None:
    """Both domains' records lead to _spf.example.com and mail.example.com, as the PTR does."""
    before = len(zone.seen)
    report = check(tmp_path, zone, "203.0.113.5", "example.com", "nodmarc.example",
                   helo="mail.example.com")  # fmt: skip
    asked = zone.seen[before:]
    assert kinds(report) == [("nodmarc.example", "no-dmarc")]
    assert asked.count("_spf.example.com.") == 1 and asked.count("mail.example.com.") == 1
    assert len(asked) == len(set(asked)) + 2  # both domains: their TXT and their MX


def test_an_unanswered_lookup_is_unknown_never_a_pass(
    tmp_path: Path, zone: dnsservers.FakeResolver
) -> None:
    report = check(
        tmp_path, zone, "203.0.113.9", "203.0.113.10", "slow.example", helo="mail.slow.example"
    )
    server = f"127.0.0.1:{zone.port}"
    assert report.findings == ()
    assert report.unknown == (
        f"PTR of 203.0.113.9: PTR: servfail ({server})",
        f"HELO mail.slow.example of 203.0.113.9: mail.slow.example: timeout (0.6s, asked {server})",
        f"PTR of 203.0.113.10: mail.slow.example: timeout (0.6s, asked {server})",
        f"HELO mail.slow.example of 203.0.113.10: mail.slow.example: timeout (0.6s, asked "
        f"{server})",
        f"SPF of slow.example: slow.example TXT: timeout (0.6s, asked {server})",
        f"DMARC of slow.example: _dmarc.slow.example: timeout (0.6s, asked {server})",
        f"MX of slow.example: MX: timeout (0.6s, asked {server})",
    )
    assert report.verdict is Verdict.UNKNOWN


def test_the_targets_come_from_the_config_and_local_domains(
    tmp_path: Path, zone: dnsservers.FakeResolver
) -> None:
    config = load_config(config_file(tmp_path, zone, ["203.0.113.5"], ["example.com"]))
    ips, domains = service.sending_targets(config, ())
    assert (ips, domains) == (("203.0.113.5",), ("example.com",))
    auto = load_config(config_file(tmp_path, zone, ["auto"]))
    found = service.sending_targets(auto, (), discover=lambda _: [spf_target("203.0.113.7")])
    assert found == (("203.0.113.7",), ())
    with pytest.raises(UsageError, match="no address or domain to look at"):
        service.posture(auto, (), discover=lambda _: [])


def spf_target(text: str) -> Target:
    return parse_target(text)


POSTCONF = ["postconf", "-c", "/etc/pf", "-x", "-h", "smtp_helo_name"]


@pytest.mark.parametrize(
    ("installed", "output", "expected", "asked"),
    [
        ((), "", ("", "HELO: neither postconf (Postfix) nor exim here; give --helo NAME"), []),
        (("postconf", "exim4"), "mail.example.com\n", ("mail.example.com", ""), POSTCONF),
        (("postconf",), "", ("", "HELO: postconf -c /etc/pf printed no HELO name; give --helo "
                                 "NAME"), POSTCONF),
        (("postconf",), OSError("no such file"),
         ("", "HELO: postconf -c /etc/pf: no such file; give --helo NAME"), POSTCONF),
        (("exim4",), "primary_hostname = mx.example.com\n", ("mx.example.com", ""),
         ["exim4", "-bP", "primary_hostname"]),
        (("exim",), "primary_hostname =\n", ("", "HELO: exim -bP printed no HELO name; give "
                                                  "--helo NAME"), ["exim", "-bP", "primary_hostname"]),
    ],
)  # fmt: skip
def test_read_helo(installed: tuple[str, ...], output: str | Exception,
                   expected: tuple[str, str], asked: list[str]) -> None:  # fmt: skip
    argvs: list[list[str]] = []

    def run(argv: Sequence[str]) -> str:
        argvs.append(list(argv))
        if isinstance(output, Exception):
            raise output
        return output

    which = {name: f"/usr/sbin/{name}" for name in installed}.get
    assert service.read_helo(Path("/etc/pf"), run=run, which=which) == expected
    assert argvs == ([asked] if asked else [])


def test_the_helo_name_is_postfixs_when_not_given(
    tmp_path: Path, zone: dnsservers.FakeResolver
) -> None:
    config = load_config(config_file(tmp_path, zone, ["203.0.113.5"]))
    report = service.posture(config, run=lambda argv: "mx.example.net\n",
                             which=lambda _: "/usr/sbin/postconf")  # fmt: skip
    assert report.helo == "mx.example.net"
    assert kinds(report) == [("203.0.113.5", "helo")]


def test_the_posture_table_names_the_helo_and_the_sending_domains(
    tmp_path: Path, zone: dnsservers.FakeResolver
) -> None:
    path = config_file(tmp_path, zone, ["203.0.113.5"], ["example.com"])
    path.write_text(path.read_text() + '[posture]\nhelo = "mx.example.net"\n'
                    'domains = ["soft.example"]\n')  # fmt: skip

    def run(argv: Sequence[str]) -> str:
        raise AssertionError(f"the MTA was asked: {argv}")

    report = service.posture(load_config(path), run=run, which=lambda _: "/usr/sbin/postconf")
    assert (report.helo, report.domains) == ("mx.example.net", ("soft.example",))
    assert kinds(report) == [("203.0.113.5", "helo"), ("soft.example", "spf-not-covering")]
    assert report.skipped == ()


@pytest.mark.parametrize(
    ("targets", "skipped"),
    [
        (["203.0.113.5"], "SPF, DMARC and MX: no sending domain (give a domain TARGET, or set "
                          "[posture] domains in the config)"),
        (["example.com"], "PTR and HELO: no sending address (give an address TARGET, or set "
                          "[monitor] targets in the config)"),
    ],
)  # fmt: skip
def test_what_is_not_checked_is_said(
    tmp_path: Path, zone: dnsservers.FakeResolver, targets: list[str], skipped: str
) -> None:
    report = check(tmp_path, zone, *targets, helo="mail.example.com")
    assert report.skipped == (skipped,)
    assert report.findings == () and report.verdict is Verdict.CLEAN
    assert posture.render_posture(report).endswith(f"\nnot checked: {skipped}\n")


@pytest.mark.parametrize(
    ("targets", "code", "said"),
    [
        (["203.0.113.5", "example.com", "--helo", "mail.example.com"], 0,
         "posture: nothing to fix"),
        (["203.0.113.6", "example.org", "--helo", "mail.example.com"], 1,
         "CRITICAL  203.0.113.6: 203.0.113.6 has no PTR record (reverse DNS): receivers such "
         "as Gmail and Spectrum refuse mail from an address without forward-confirmed reverse "
         "DNS\n          fix: ask whoever holds 203.0.113.6"),
        (["slow.example", "--helo", "mail.example.com"], 3,
         "unknown: SPF of slow.example: slow.example TXT: timeout"),
    ],
)  # fmt: skip
def test_the_command(tmp_path: Path, zone: dnsservers.FakeResolver, targets: list[str],
                     code: int, said: str) -> None:  # fmt: skip
    config = tmp_path / "quick.toml"
    config.write_text("[dns]\ntimeout = 0.5\n")  # the slow zone's timeout, twice, is the wait
    args = ["posture", *targets, "-c", str(config), "--resolver", f"127.0.0.1:{zone.port}"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == code, result.output
    assert said in result.output
    as_json = json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)
    assert as_json["verdict"] == {0: "clean", 1: "listed", 3: "unknown"}[code]
    assert as_json["helo"] == "mail.example.com"


def test_the_command_takes_the_configs_targets(
    tmp_path: Path, zone: dnsservers.FakeResolver
) -> None:
    config = config_file(tmp_path, zone, ["203.0.113.7"], ["nomx.example"])
    result = CliRunner().invoke(cli.main, ["posture", "-c", str(config), "--json",
                                           "--helo", "mail.example.com"])  # fmt: skip
    assert result.exit_code == 1
    found = json.loads(result.output)
    assert (found["ips"], found["domains"]) == (["203.0.113.7"], ["nomx.example"])
    assert {f["kind"] for f in found["findings"]} == {
        "ptr-not-confirmed", "helo", "spf-not-covering", "no-mx"}  # fmt: skip


# --- diagnose ---------------------------------------------------------------------------------


def test_posture_findings_are_a_cause_with_its_step() -> None:
    bad = posture.Finding(Severity.CRITICAL, "203.0.113.6", "no-ptr", "no PTR", "set the PTR")
    info = posture.Finding(Severity.INFO, "x", "note", "a note", "nothing")
    report = posture.PostureReport(
        ("203.0.113.6",), (), "", (posture.Part("PTR of 203.0.113.6", (bad, info)),
                                   posture.Part("MX of a.example", unknown="MX: timeout")),
    )  # fmt: skip
    found = diagnosis.diagnose(listings=[], posture=report)
    assert found.causes == (diagnosis.Cause("posture", diagnosis._CAUSE_TITLES["posture"],
                                            ("203.0.113.6: no PTR",)),)  # fmt: skip
    assert found.steps[0] == "Fix the posture (`blmonitor posture` tells each): set the PTR."
    assert found.checked == ("posture: PTR of 203.0.113.6, MX of a.example",)
    assert found.skipped == ("posture: MX of a.example: MX: timeout",)
    assert not found.healthy


def test_diagnose_shows_the_posture(tmp_path: Path, zone: dnsservers.FakeResolver) -> None:
    config = config_file(tmp_path, zone, ["203.0.113.6"], ["example.com"])
    # (--config-dir: a Postfix directory without main.cf, so no HELO name is read)
    args = ["diagnose", "-c", str(config), "--mta", "exim", "--log", str(tmp_path / "no.log"),
            "--config-dir", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1, result.output
    assert "the sender's posture: receivers reject on it before any list" in result.output
    assert "evidence: 203.0.113.6: 203.0.113.6 has no PTR record" in result.output
    assert "checked: posture: PTR of 203.0.113.6, SPF of example.com" in result.output
    as_json = json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)
    assert as_json["posture"]["findings"][0]["kind"] == "no-ptr"


def test_diagnose_checks_the_posture_tables_domains(
    tmp_path: Path, zone: dnsservers.FakeResolver
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"""[monitor]
targets = ["auto"]
database = "{tmp_path / "none.db"}"
[dns]
resolver = ["127.0.0.1:{zone.port}"]
[posture]
domains = ["nodmarc.example"]
""")
    result = CliRunner().invoke(cli.main, ["diagnose", "-c", str(config), "--mta", "exim",
                                           "--log", str(tmp_path / "missing.log")])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "evidence: nodmarc.example: nodmarc.example publishes no DMARC record" in result.output
    assert ("not checked: posture: PTR and HELO: no sending address (give an address TARGET, "
            "or set [monitor] targets in the config)") in result.output  # fmt: skip


def test_diagnose_checks_the_addresses_the_monitor_discovered(
    tmp_path: Path, zone: dnsservers.FakeResolver
) -> None:
    from datetime import UTC, datetime

    from blmonitor.monitor.state import MonitorState
    from blmonitor.monitor.store import RunRecord, Store

    path = config_file(tmp_path, zone, ["auto"], ["example.com"])
    path.write_text(path.read_text() + '[posture]\nhelo = "mail.example.com"\n')
    store = Store(tmp_path / "h.db")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    found = MonitorState(addresses=("203.0.113.6",))
    store.record_run(RunRecord(at, at, None, "offline"), MonitorState(), found, [])
    store.close()
    result = CliRunner().invoke(cli.main, ["diagnose", "-c", str(path), "--mta", "exim",
                                           "--log", str(tmp_path / "missing.log")])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "evidence: 203.0.113.6: 203.0.113.6 has no PTR record" in result.output
    assert "posture: PTR of 203.0.113.6, HELO mail.example.com of 203.0.113.6" in result.output


def test_diagnose_without_targets_or_domains_skips_the_posture(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    result = CliRunner().invoke(cli.main, ["diagnose", "-c", str(config), "--mta", "exim",
                                           "--log", str(tmp_path / "missing.log")])  # fmt: skip
    assert "not checked: posture: no address or domain in the config" in result.output


def test_names_are_checked_before_they_are_asked() -> None:
    with pytest.raises(spf._PermError):
        spf.to_name("localhost")
    assert spf.to_name("Example.COM.") == dns.name.from_text("example.com")
