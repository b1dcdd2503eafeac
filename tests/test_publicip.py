"""Public-IP discovery: parsing and majority are pure; HTTP and DNS run on loopback."""

from __future__ import annotations

import asyncio
import ipaddress

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from blmonitor import publicip
from blmonitor.errors import DiscoveryError
from tests import dnsservers, httpservers

ip = ipaddress.ip_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11.22.33.44\n", ip("11.22.33.44")),
        ('"11.22.33.44"', ip("11.22.33.44")),
        ("fl=1\nip=2a00:1450::1\nts=1", ip("2a00:1450::1")),
        ("10.0.0.1", None),  # private: not a public sending address
        ("100.64.1.1", None),  # CGNAT: neither private nor global
        ("<html>error</html>", None),
        ("", None),
    ],
)
def test_parse_address(text, expected) -> None:
    assert publicip.parse_address(text) == expected


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["11.22.33.44", "11.22.33.44", "55.66.77.88"], ["11.22.33.44"]),
        (["11.22.33.44", "55.66.77.88"], []),  # a tie is no majority
        (["11.22.33.44", None, None], ["11.22.33.44"]),
        (["11.22.33.44", "2a00:1450::1", "2a00:1450::1"], ["11.22.33.44", "2a00:1450::1"]),
        ([None], []),
    ],
)
def test_agree(answers, expected) -> None:
    got = publicip.agree([ip(a) if a else None for a in answers])
    assert got == [ip(e) for e in expected]


def test_discover_over_http_majority() -> None:
    routes = {"/a": (200, "11.22.33.44\n"), "/b": (200, "11.22.33.44"), "/c": (200, "55.66.77.88"),
              "/d": (500, "oops")}  # fmt: skip
    with httpservers.serve(routes) as base:
        urls = [f"{base}/{p}" for p in "abcd"]
        got = asyncio.run(publicip.discover(http_urls=urls, dns_sources=(), use_route=False))
    assert got == [ip("11.22.33.44")]


def test_discover_fails_with_a_clear_message() -> None:
    with (
        httpservers.serve({"/a": (200, "10.0.0.1")}) as base,
        pytest.raises(DiscoveryError, match="name the address to check"),
    ):
        asyncio.run(publicip.discover(http_urls=[f"{base}/a"], dns_sources=(), use_route=False))


def test_ask_dns_reads_a_and_txt_answers() -> None:
    def txt(query: dns.message.Message) -> dns.message.Message:
        reply = dns.message.make_response(query)
        name = query.question[0].name
        reply.answer.append(dns.rrset.from_text(name, 0, "IN", "TXT", '"11.22.33.44"'))
        return reply

    server = dnsservers.FakeResolver()
    server.add("myip.example", dnsservers.records("55.66.77.88"))
    server.add("o-o.myaddr.example", txt)
    try:
        a = publicip.DnsSource("myip.example", "127.0.0.1", port=server.port)
        t = publicip.DnsSource("o-o.myaddr.example", "127.0.0.1", "TXT", port=server.port)
        silent = publicip.DnsSource("nothing.example", "127.0.0.1", port=server.port)

        async def ask_all() -> list[publicip.IPAddress | None]:
            return list(await asyncio.gather(*(publicip.ask_dns(s, 1.0) for s in (a, t, silent))))

        got = asyncio.run(ask_all())
    finally:
        server.close()
    assert got == [ip("55.66.77.88"), ip("11.22.33.44"), None]


def test_route_addresses_are_global_only() -> None:
    assert all(a.is_global for a in publicip.route_addresses())
