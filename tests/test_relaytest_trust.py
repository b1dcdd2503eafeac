"""The relay test from this host: who its MTA trusts (Postfix mynetworks, Exim relay_from_hosts)
as pure tables, the verdict from the answers, the probe's source and those networks, the
adapters that read them (with a recorded runner), this host's own addresses from the kernel,
and the service against aiosmtpd relays on 127.0.0.1. The real Postfix lab is in
tests/test_diagnose.py::test_relaytest_command."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from blmonitor.causes import service
from blmonitor.causes.relaytest import (
    EXIM,
    POSTFIX,
    AttemptResult,
    Outcome,
    RelayReport,
    RelayVerdict,
    TrustedNetworks,
    TrustMatch,
    build_attempts,
    judge_relay,
    match_trusted,
    probe,
    render_report,
    report_json,
)
from tests.test_relaytest import ATTEMPTS, Relay, assert_no_data, relay

# --- who the MTA trusts (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mta", "value", "source", "expected"),
    [
        (POSTFIX, "127.0.0.0/8 [::1]/128", "127.0.0.1", TrustMatch("127.0.0.0/8", True)),
        (POSTFIX, "127.0.0.0/8 [::1]/128", "::1", TrustMatch("[::1]/128", True)),
        (POSTFIX, "127.0.0.1/32", "127.0.0.2", None),
        (POSTFIX, "127.0.0.1", "127.0.0.1", TrustMatch("127.0.0.1", True)),  # a bare address
        (POSTFIX, "127.0.0.1", "::ffff:127.0.0.1", TrustMatch("127.0.0.1", True)),  # v4-mapped
        (POSTFIX, "10.0.0.0/8,192.0.2.0/24", "192.0.2.7", TrustMatch("192.0.2.0/24", True)),
        (POSTFIX, "10.0.0.0/8,\n  192.0.2.0/24", "192.0.2.7", TrustMatch("192.0.2.0/24", True)),
        (POSTFIX, "[2001:db8::]/32", "2001:db8::5", TrustMatch("[2001:db8::]/32", True)),
        (POSTFIX, "[2001:db8::]/32", "192.0.2.7", None),  # another family never matches
        (POSTFIX, "!127.0.0.2 127.0.0.0/8", "127.0.0.2", None),  # first match wins
        (POSTFIX, "!127.0.0.2 127.0.0.0/8", "127.0.0.3", TrustMatch("127.0.0.0/8", True)),
        (POSTFIX, "", "127.0.0.1", None),  # mynetworks = (empty): nobody
        (POSTFIX, "10.0.0.0/8 hash:/etc/postfix/network_table", "127.0.0.1",
         TrustMatch("hash:/etc/postfix/network_table", False)),  # a table: maybe
        (POSTFIX, "/etc/postfix/mynetworks", "127.0.0.1", TrustMatch("/etc/postfix/mynetworks", False)),
        (POSTFIX, "127.0.0.1/32 /etc/postfix/mynetworks", "127.0.0.1", TrustMatch("127.0.0.1/32", True)),
        (POSTFIX, "mx.example.com", "127.0.0.1", TrustMatch("mx.example.com", False)),  # a name
        (EXIM, "127.0.0.1", "127.0.0.1", TrustMatch("127.0.0.1", True)),
        (EXIM, "127.0.0.1 : ::::1", "::1", TrustMatch("::1", True)),  # :: is a colon in a colon list
        (EXIM, "<; 127.0.0.1 ; ::1", "::1", TrustMatch("::1", True)),  # another separator
        (EXIM, "<; 127.0.0.1 ; fe80::/10", "fe80::1", TrustMatch("fe80::/10", True)),
        (EXIM, "192.168.0.0/16", "127.0.0.1", None),
        (EXIM, "localhost", "127.0.0.1", TrustMatch("localhost", True)),
        (EXIM, "localhost", "127.0.0.2", None),
        (EXIM, "@[]", "192.0.2.2", TrustMatch("@[]", True)),  # any address of this host
        (EXIM, "*", "203.0.113.9", TrustMatch("*", True)),
        (EXIM, "! 127.0.0.2 : 127.0.0.0/8", "127.0.0.2", None),
        (EXIM, "+mynets", "127.0.0.1", TrustMatch("+mynets", False)),  # a named list: maybe
        (EXIM, "net24-lsearch;/etc/exim4/relay", "127.0.0.1",
         TrustMatch("net24-lsearch;/etc/exim4/relay", False)),
        (EXIM, "", "127.0.0.1", None),
    ],
)  # fmt: skip
def test_match_trusted(mta, value, source, expected):
    setting = "mynetworks" if mta == POSTFIX else "relay_from_hosts"
    assert match_trusted(source, TrustedNetworks(mta, setting, value)) == expected


def result(outcome: Outcome) -> AttemptResult:
    code = {Outcome.ACCEPTED: 250, Outcome.REFUSED: 554, Outcome.ERROR: 0}[outcome]
    return AttemptResult(ATTEMPTS[0], outcome, "RCPT" if code else "", code, "")


A, R, E = Outcome.ACCEPTED, Outcome.REFUSED, Outcome.ERROR
MYNETWORKS = TrustedNetworks(POSTFIX, "mynetworks", "127.0.0.0/8 [::1]/128")
STYLE_HOST = TrustedNetworks(POSTFIX, "mynetworks", "127.0.0.1/32", "mynetworks_style = host")
RELAY_FROM = TrustedNetworks(EXIM, "relay_from_hosts", "<; 127.0.0.1 ; ::1")
TABLE = TrustedNetworks(POSTFIX, "mynetworks", "cidr:/etc/postfix/trusted.cidr")


@pytest.mark.parametrize(
    ("outcomes", "source", "trusted", "verdict", "reason"),
    [
        ([A, R], "", (), RelayVerdict.OPEN, ""),
        ([R, R], "", (), RelayVerdict.CLOSED, ""),
        ([R, E], "", (), RelayVerdict.UNKNOWN, ""),
        ([], "", (), RelayVerdict.UNKNOWN, ""),
        ([A, R], "127.0.0.1", (), RelayVerdict.OPEN, ""),  # not this host's MTA: as before
        ([A, R], "127.0.0.2", (STYLE_HOST,), RelayVerdict.OPEN, ""),  # an outsider to it
        ([R, R], "127.0.0.2", (STYLE_HOST,), RelayVerdict.CLOSED, ""),
        ([A, R], "127.0.0.1", (MYNETWORKS,), RelayVerdict.INCONCLUSIVE,
         "inconclusive from here: 127.0.0.1 is in Postfix's mynetworks (127.0.0.0/8 [::1]/128), "
         "so it may relay by design; run it from outside your network"),
        ([R, R], "127.0.0.1", (MYNETWORKS,), RelayVerdict.INCONCLUSIVE, "127.0.0.1 is in"),
        ([E], "127.0.0.1", (MYNETWORKS,), RelayVerdict.INCONCLUSIVE, "127.0.0.1 is in"),
        ([A], "127.0.0.1", (STYLE_HOST,), RelayVerdict.INCONCLUSIVE,
         "127.0.0.1 is in Postfix's mynetworks (127.0.0.1/32, from mynetworks_style = host)"),
        ([A], "::1", (STYLE_HOST, RELAY_FROM), RelayVerdict.INCONCLUSIVE,
         "::1 is in Exim's relay_from_hosts (<; 127.0.0.1 ; ::1)"),
        ([A], "127.0.0.1", (TABLE,), RelayVerdict.INCONCLUSIVE,
         "127.0.0.1 may be in Postfix's mynetworks (cidr:/etc/postfix/trusted.cidr; blmonitor "
         "cannot evaluate cidr:/etc/postfix/trusted.cidr)"),
        ([A], "", (MYNETWORKS,), RelayVerdict.OPEN, ""),  # never connected: no source to judge
    ],
)  # fmt: skip
def test_judge_relay(outcomes, source, trusted, verdict, reason):
    judged = judge_relay([result(o) for o in outcomes], source=source, trusted=trusted)
    assert judged.verdict is verdict
    assert reason in judged.reason and bool(judged.reason) == bool(reason)


def test_an_inconclusive_report_is_never_open():
    report = RelayReport("127.0.0.1", 25, (result(A),), source="127.0.0.1", peer="127.0.0.1",
                         this_host=True, trusted=(MYNETWORKS,))  # fmt: skip
    assert report.verdict is RelayVerdict.INCONCLUSIVE and not report.open
    assert report.accepted  # the answers are kept, and listed
    last = render_report(report).splitlines()[-1]
    assert last == (
        "INCONCLUSIVE: 127.0.0.1:25: inconclusive from here: 127.0.0.1 is in Postfix's mynetworks"
        " (127.0.0.0/8 [::1]/128), so it may relay by design; run it from outside your network"
    )
    data = report_json(report)
    assert (data["verdict"], data["open"], data["source"], data["this_host"]) == (
        "inconclusive", False, "127.0.0.1", True)  # fmt: skip
    assert data["reason"] == report.judgement.reason
    assert data["trusted"] == [{"mta": "Postfix", "setting": "mynetworks",
                                "value": "127.0.0.0/8 [::1]/128", "origin": None}]  # fmt: skip
    assert data["attempts"][0]["result"] == "accepted"
    assert service.relay_verdict(report).value == "unknown"  # exit 3


# --- reading the trust settings (the adapters, with a recorded runner) ---------------------------


@dataclass
class Recorded:
    """A runner that answers from a table of argv → output (an exception: raised) and notes calls."""

    answers: Mapping[tuple[str, ...], str | Exception]
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, argv):
        self.calls.append(tuple(argv))
        answer = self.answers[tuple(argv)]
        if isinstance(answer, Exception):
            raise answer
        return answer


def postconf_answers(
    conf: str, explicit: str, computed: str, style: str = "host"
) -> dict[tuple[str, ...], str]:
    return {
        ("postconf", "-c", conf, "-n", "mynetworks"): explicit,
        ("postconf", "-c", conf, "-x", "mynetworks", "mynetworks_style"):
            f"mynetworks = {computed}\nmynetworks_style = {style}\n",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("explicit", "computed", "style", "expected"),
    [
        ("mynetworks = 127.0.0.0/8\n", "127.0.0.0/8", "host",
         TrustedNetworks(POSTFIX, "mynetworks", "127.0.0.0/8")),
        ("", "127.0.0.1/32 [::1]/128", "host",
         TrustedNetworks(POSTFIX, "mynetworks", "127.0.0.1/32 [::1]/128", "mynetworks_style = host")),
        ("", "127.0.0.0/8 192.0.2.0/24", "subnet",
         TrustedNetworks(POSTFIX, "mynetworks", "127.0.0.0/8 192.0.2.0/24", "mynetworks_style = subnet")),
        ("mynetworks =\n", "", "host", TrustedNetworks(POSTFIX, "mynetworks", "")),
    ],
)  # fmt: skip
def test_read_postfix_trust(explicit, computed, style, expected):
    run = Recorded(postconf_answers("/srv/pf", explicit, computed, style))
    assert service.read_postfix_trust(Path("/srv/pf"), run=run) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("hostlist relay_from_hosts = <; 127.0.0.1 ; ::1\n",
         TrustedNetworks(EXIM, "relay_from_hosts", "<; 127.0.0.1 ; ::1")),
        ("hostlist relay_from_hosts = localhost\n", TrustedNetworks(EXIM, "relay_from_hosts", "localhost")),
        ("hostlist relay_from_hosts =\n", TrustedNetworks(EXIM, "relay_from_hosts", "")),
    ],
)  # fmt: skip
def test_read_exim_trust(output, expected):
    run = Recorded({("exim4", "-bP", "+relay_from_hosts"): output})
    assert service.read_exim_trust("exim4", run=run) == expected


def which_of(*installed: str):
    return lambda name: f"/usr/sbin/{name}" if name in installed else None


FATAL = subprocess.CalledProcessError(
    1, ["postconf"], "", "postconf: fatal: open /etc/postfix/main.cf: No such file or directory\n"
)


@pytest.mark.parametrize(
    ("installed", "answers", "config_dir", "found", "problems"),
    [
        (("postconf",), postconf_answers("/etc/postfix", "", "127.0.0.1/32"), None,
         [STYLE_HOST], []),
        (("postconf",), postconf_answers("/srv/pf", "mynetworks = 127.0.0.0/8 [::1]/128", "127.0.0.0/8 [::1]/128"),
         Path("/srv/pf"), [MYNETWORKS], []),
        (("exim4", "exim"), {("exim4", "-bP", "+relay_from_hosts"): "hostlist relay_from_hosts = <; 127.0.0.1 ; ::1"},
         None, [RELAY_FROM], []),
        (("exim",), {("exim", "-bP", "+relay_from_hosts"):
                     'no address, domain, host, or local part list called "relay_from_hosts" exists\n'},
         None, [], ['Exim\'s relay_from_hosts: no address, domain, host, or local part list called '
                    '"relay_from_hosts" exists']),
        (("postconf",), {("postconf", "-c", "/etc/postfix", "-n", "mynetworks"): FATAL}, None, [],
         ["Postfix's mynetworks: postconf: fatal: open /etc/postfix/main.cf: No such file or directory"]),
        (("postconf", "exim"), {("postconf", "-c", "/etc/postfix", "-n", "mynetworks"): FileNotFoundError("postconf"),
                                ("exim", "-bP", "+relay_from_hosts"): "hostlist relay_from_hosts = 127.0.0.1"},
         None, [TrustedNetworks(EXIM, "relay_from_hosts", "127.0.0.1")], ["Postfix's mynetworks: postconf"]),
        (("postconf",), {("postconf", "-c", "/etc/postfix", "-n", "mynetworks"):
                         subprocess.TimeoutExpired(["postconf"], 15)}, None, [],
         ["Postfix's mynetworks: no answer within 15 s"]),
        ((), {}, None, [], ["neither postconf (Postfix) nor exim is installed"]),
    ],
)  # fmt: skip
def test_read_trusted(installed, answers, config_dir, found, problems):
    run = Recorded(answers)
    got = service.read_trusted(config_dir=config_dir, run=run, which=which_of(*installed))
    assert got == (tuple(found), tuple(problems))


# --- this host's own addresses, and where the probe comes from ----------------------------------


def route_source() -> str:
    """The address this machine would send from toward a documentation address (nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("203.0.113.1", 9))
        except OSError:
            pytest.skip("no IPv4 route out of this machine")
        return str(sock.getsockname()[0])


def test_own_addresses_come_from_the_kernel():
    assert service.is_own_address("127.0.0.1") and service.is_own_address("127.0.0.53")
    assert service.is_own_address("::1") and service.is_own_address("::ffff:127.0.0.1")
    assert service.is_own_address(route_source())  # bound to an interface
    assert not service.is_own_address("203.0.113.1")
    assert not service.is_own_address("2001:db8::1")


def test_the_probe_says_where_it_came_from_and_can_be_sent_from_a_chosen_address():
    with relay(Relay(open=False)) as (port, _):
        default = probe("127.0.0.1", port, ATTEMPTS[:1], timeout=5)
        chosen = probe("127.0.0.1", port, ATTEMPTS[:1], timeout=5, source="127.0.0.2")
        foreign = probe("127.0.0.1", port, ATTEMPTS[:1], timeout=5, source="203.0.113.7")
    assert (default.source, default.peer) == ("127.0.0.1", "127.0.0.1")
    assert (chosen.source, chosen.peer, chosen.verdict) == ("127.0.0.2", "127.0.0.1",
                                                            RelayVerdict.CLOSED)  # fmt: skip
    assert foreign.verdict is RelayVerdict.UNKNOWN
    assert foreign.error == (
        f"127.0.0.1:{port}: cannot send from 203.0.113.7: not an address of this machine"
    )


LAB_TRUST = {("postconf", "-c", "/srv/lab", "-n", "mynetworks"): "mynetworks = 127.0.0.1/32",
             ("postconf", "-c", "/srv/lab", "-x", "mynetworks", "mynetworks_style"):
                 "mynetworks = 127.0.0.1/32\nmynetworks_style = host"}  # fmt: skip


@pytest.mark.parametrize(
    ("source", "installed", "verdict", "note"),
    [
        ("", ("postconf",), RelayVerdict.INCONCLUSIVE, ""),  # 127.0.0.1: in mynetworks
        ("127.0.0.2", ("postconf",), RelayVerdict.OPEN, ""),  # outside it: judged as ever
        ("", (), RelayVerdict.OPEN,
         "127.0.0.1 is this host, but its MTA's trust settings could not be read (neither "
         "postconf (Postfix) nor exim is installed): an accepted attempt may be relaying by design"),
    ],
)  # fmt: skip
def test_relaytest_of_this_host_reads_its_mta(source, installed, verdict, note):
    run = Recorded(LAB_TRUST)
    with relay(Relay(open=True)) as (port, transcript):
        report = service.relaytest("127.0.0.1", port=port, timeout=5, source=source,
                                   config_dir=Path("/srv/lab"), run=run,
                                   which=which_of(*installed))  # fmt: skip
    assert_no_data(transcript)
    assert report.this_host and report.verdict is verdict
    assert report.note == note
    assert report.accepted and len(report.results) == len(build_attempts("127.0.0.1"))
    if note:
        assert render_report(report).splitlines()[-2] == f"note: {note}"


def test_relaytest_of_another_host_reads_nothing(monkeypatch):
    """A server that is not this machine's is judged from its answers; no MTA setting is read."""
    monkeypatch.setattr(service, "is_own_address", lambda address: False)
    run = Recorded({})
    with relay(Relay(open=True)) as (port, _):
        report = service.relaytest("127.0.0.1", port=port, timeout=5, run=run,
                                   which=which_of("postconf", "exim"))  # fmt: skip
    assert run.calls == [] and not report.this_host and report.trusted == ()
    assert report.verdict is RelayVerdict.OPEN


def test_a_source_that_is_not_an_address_is_a_usage_error():
    from blmonitor.errors import UsageError

    with pytest.raises(UsageError, match=re.escape("--source: 'mx.example' is not an IP address")):
        service.relaytest("127.0.0.1", source="mx.example")
