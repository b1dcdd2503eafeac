"""Public-IP discovery: parsing and majority are pure; HTTP and DNS run on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from blmonitor.dnsbl import publicip
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


@pytest.mark.parametrize(
    ("main", "services", "expected"),
    [
        ("\n\nall\n", "", []),  # no bind: the route decides
        ("11.22.33.44\n\nall\n", "", ["11.22.33.44"]),
        ("11.22.33.44\n2a00:1450::25\nall\n", "", ["11.22.33.44", "2a00:1450::25"]),
        ("\n\n55.66.77.88\n", "", ["55.66.77.88"]),  # one inet_interfaces address
        ("\n\n55.66.77.88, 127.0.0.1\n", "", []),
        ("10.0.0.5\n\nall\n", "", []),  # private: behind NAT, ask outside
        ("\n\nall\n", "smtp/unix/smtp_bind_address = 11.22.33.44\n"
                      "relay/unix/smtp_bind_address6 = 2a00:1450::26\n"
                      "smtp/inet/smtpd_tls_security_level = may\n",
         ["11.22.33.44", "2a00:1450::26"]),
    ],
)  # fmt: skip
def test_parse_postconf(main, services, expected) -> None:
    assert publicip.parse_postconf(main, services) == [ip(e) for e in expected]


def test_postfix_addresses_runs_postconf(tmp_path, monkeypatch) -> None:
    """A stand-in postconf on PATH (real Postfix is installed only for the smart-host work)."""
    script = tmp_path / "postconf"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *-P*) echo "smtp/unix/smtp_bind_address = 11.22.33.44" ;;\n'
        '  *) printf "\\n\\nall\\n" ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert publicip.postfix_addresses() == [ip("11.22.33.44")]
    script.unlink()
    if not Path("/usr/sbin/postconf").exists():
        assert publicip.postfix_addresses() == []
