"""The DNS client against real servers on 127.0.0.1: every outcome becomes an Answer."""

from __future__ import annotations

import asyncio
import socket

import dns.name
import dns.rdatatype
import pytest

from blmonitor.dnsbl.resolver import DnsClient, Nameserver, parse_nameserver
from blmonitor.errors import UsageError
from blmonitor.models import Answer, Outcome
from tests import dnsservers

A = dns.rdatatype.A
TXT = dns.rdatatype.TXT


def ask(port: int, name: str, rdtype=A, *, timeout: float = 1.0, servers=None) -> Answer:
    async def run() -> Answer:
        async with DnsClient(servers or [Nameserver("127.0.0.1", port)], timeout=timeout) as c:
            return await c.query(dns.name.from_text(name), rdtype)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        ("5.113.0.203.bl.lab.test", A, Answer(Outcome.RECORDS, ("127.0.0.2",))),
        ("6.113.0.203.bl.lab.test", A, Answer(Outcome.RECORDS, ("127.0.0.2", "127.0.0.4"))),
        ("6.113.0.203.bl.lab.test", TXT, Answer(Outcome.RECORDS, ("Also spam", "Infected"))),
        ("5.113.0.203.bl.lab.test", TXT,
         Answer(Outcome.RECORDS, ("Spam sent from 203.0.113.5 on 2026-11-01",))),
        ("9.113.0.203.bl.lab.test", A, Answer(Outcome.NXDOMAIN)),
        ("bad.example.dom.lab.test", dns.rdatatype.AAAA, Answer(Outcome.NODATA)),
        ("x.servfail.lab.test", A, Answer(Outcome.SERVFAIL, detail="")),
        ("x.refused-rcode.lab.test", A, Answer(Outcome.REFUSED, detail="")),
        ("x.outside.lab.test", A, Answer(Outcome.RECORDS, ("10.1.2.3",))),
        # truncated over UDP: asked again over TCP, where the whole answer comes
        ("x.trunc.lab.test", A, Answer(Outcome.RECORDS, ("127.0.0.2",))),
        ("x.trunc.lab.test", TXT, Answer(Outcome.RECORDS, ("long " * 100,))),
    ],
)  # fmt: skip
def test_outcomes(lab, name, rdtype, expected) -> None:
    got = ask(lab.port, name, rdtype)
    assert (got.outcome, got.records) == (expected.outcome, expected.records)


def test_cname_chain_and_foreign_records() -> None:
    """Only records of the asked type at the end of the CNAME chain count."""

    def chained(query):
        import dns.message
        import dns.rrset

        name = query.question[0].name
        reply = dns.message.make_response(query)
        target = dns.name.from_text("real.example.")
        reply.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", "real.example."))
        reply.answer.append(dns.rrset.from_text(target, 60, "IN", "A", "127.0.0.4", "127.0.0.2"))
        reply.answer.append(dns.rrset.from_text("other.example.", 60, "IN", "A", "127.0.0.9"))
        return reply

    server = dnsservers.FakeResolver()
    server.add("alias.test", chained)
    try:
        got = ask(server.port, "x.alias.test")
    finally:
        server.close()
    assert (got.outcome, got.records) == (Outcome.RECORDS, ("127.0.0.2", "127.0.0.4"))


def test_malformed_reply_is_a_failure() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))

    def garbage() -> None:
        data, addr = server.recvfrom(512)
        # a valid header and question claiming one answer record that is cut short
        server.sendto(
            data[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + data[12:] + b"\xc0", addr
        )

    import threading

    thread = threading.Thread(target=garbage)
    thread.start()
    try:
        got = ask(server.getsockname()[1], "2.0.0.127.bl.lab.test", timeout=1)
    finally:
        thread.join()
        server.close()
    assert got.outcome is Outcome.FAILED and "malformed reply" in got.detail


def test_timeout_is_an_outcome_after_retries(lab) -> None:
    """A silent zone ends as TIMEOUT once its budget is spent, after three attempts.

    The budget is the whole lookup's, not each attempt's: bench/run.py's dropped zone (z50)
    shows it in wall time; here the DNS server counts the attempts.
    """
    before = len(lab.resolver.seen)
    got = ask(lab.port, "x.slow.lab.test", timeout=0.6)
    assert got.outcome is Outcome.TIMEOUT
    assert "0.6s" in got.detail
    assert lab.resolver.seen[before:].count("x.slow.lab.test.") == 3  # three attempts


def test_nothing_listening_fails_fast() -> None:
    """ICMP port unreachable ends each attempt at once: FAILED, with every attempt made.

    A lookup that waited for its budget instead would end as TIMEOUT, not FAILED.
    """

    async def run() -> tuple[Answer, int, int]:
        server = Nameserver("127.0.0.1", dnsservers.free_port())
        async with DnsClient([server], timeout=3) as client:
            answer = await client.query(dns.name.from_text("2.0.0.127.bl.lab.test"), A)
            return answer, client.queries, client.retries

    got, queries, retries = asyncio.run(run())
    assert got.outcome is Outcome.FAILED
    assert "refused" in got.detail.lower()
    assert (queries, retries) == (3, 2)


def test_second_resolver_answers_when_the_first_is_silent(lab) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        servers = [
            Nameserver("127.0.0.1", silent.getsockname()[1]),
            Nameserver("127.0.0.1", lab.port),
        ]
        got = ask(0, "5.113.0.203.bl.lab.test", servers=servers, timeout=1.5)
    finally:
        silent.close()
    assert got.records == ("127.0.0.2",)


def test_replies_with_wrong_question_or_id_are_ignored() -> None:
    """A spoofed or stray datagram must never be taken as the answer."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def reply_wrongly() -> None:
        import dns.message

        data, addr = server.recvfrom(512)
        query = dns.message.from_wire(data)
        other = dns.message.make_query("2.0.0.127.other.test", "A", id=query.id)
        fake = dns.message.make_response(other)
        server.sendto(fake.to_wire(), addr)  # same id, wrong question
        wrong_id = dns.message.make_response(query)
        wrong_id.id = (query.id + 1) % 65536
        server.sendto(wrong_id.to_wire(), addr)  # right question, wrong id

    import threading

    thread = threading.Thread(target=reply_wrongly)
    thread.start()
    try:
        got = ask(port, "2.0.0.127.bl.lab.test", timeout=0.5)
    finally:
        thread.join()
        server.close()
    assert got.outcome is Outcome.TIMEOUT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", Nameserver("127.0.0.1", 53)),
        ("127.0.0.1:5353", Nameserver("127.0.0.1", 5353)),
        ("::1", Nameserver("::1", 53)),
        ("[::1]:5353", Nameserver("::1", 5353)),
    ],
)
def test_parse_nameserver(text, expected) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["resolver.example", "127.0.0.1:0", "127.0.0.1:x", "[::1]:99999"])
def test_parse_nameserver_rejects(text) -> None:
    with pytest.raises(UsageError, match="is not IP"):
        parse_nameserver(text)
