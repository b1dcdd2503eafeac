"""Find this machine's public sending addresses when no target is given.

Local first: the addresses Postfix binds its SMTP client to (main.cf and master.cf
overrides, read with postconf), then the kernel's route source address (a UDP connect()
sends no packet). Only when none of those is a global address (NAT, CGNAT) are several HTTP
endpoints (httpx) and DNS "what is my IP" services asked, keeping per address family the
answer a majority agrees on. IPv4 and IPv6 are separate identities. The DNS services are
asked directly, never through the system resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdataclass
import dns.rdatatype
import httpx

from blmonitor.errors import DiscoveryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

HTTP_ENDPOINTS = (
    "https://api.ipify.org",
    "https://ipv4.icanhazip.com",
    "https://checkip.amazonaws.com",
    "https://ifconfig.me/ip",
    "https://api6.ipify.org",
    "https://ipv6.icanhazip.com",
)


@dataclass(frozen=True, slots=True)
class DnsSource:
    """A DNS service that answers with the asker's address, asked at `server` directly."""

    name: str
    server: str
    rdtype: str = "A"
    rdclass: str = "IN"
    port: int = 53


DNS_SOURCES = (
    DnsSource("myip.opendns.com", "208.67.222.222"),
    DnsSource("o-o.myaddr.l.google.com", "216.239.32.10", "TXT"),
    DnsSource("whoami.cloudflare", "1.1.1.1", "TXT", "CH"),
    DnsSource("myip.opendns.com", "2620:119:35::35", "AAAA"),
    DnsSource("o-o.myaddr.l.google.com", "2001:4860:4802:32::a", "TXT"),
)

# Addresses used only to pick a route: connect() on a UDP socket sends nothing.
_ROUTE_PROBES = ("192.0.2.1", "2001:db8::1")


def parse_address(text: str) -> IPAddress | None:
    """A global address from a service's answer (plain text, quoted TXT or `ip=` line)."""
    for token in text.replace('"', " ").replace("ip=", " ").split():
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(token.strip())
            return address if address.is_global else None
    return None


def agree(answers: Iterable[IPAddress | None]) -> list[IPAddress]:
    """Per family, the address more than half of that family's answers agree on."""
    known = [a for a in answers if a is not None]
    chosen = []
    for version in (4, 6):
        votes = Counter(a for a in known if a.version == version)
        if votes:
            address, count = votes.most_common(1)[0]
            if count * 2 > sum(votes.values()):
                chosen.append(address)
    return chosen


def parse_postconf(main: str, services: str) -> list[IPAddress]:
    """Global SMTP bind addresses from `postconf -h smtp_bind_address smtp_bind_address6
    inet_interfaces` (three lines) and `postconf -P` (master.cf `-o` overrides)."""
    lines = [*main.splitlines(), "", "", ""][:3]
    found = [lines[0].strip(), lines[1].strip()]
    interfaces = [i.strip() for i in lines[2].replace(",", " ").split()]
    # One non-loopback IPv4 inet_interfaces address is also the SMTP client's source (postconf(5)).
    if len(interfaces) == 1:
        found.append(interfaces[0])
    for line in services.splitlines():
        name, _, value = line.partition("=")
        if name.strip().endswith(("/smtp_bind_address", "/smtp_bind_address6")):
            found.append(value.strip())
    addresses: dict[IPAddress, None] = {}
    for text in found:
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(text)
            if address.is_global:
                addresses[address] = None
    return list(addresses)


def postfix_addresses(config_dir: Path | None = None) -> list[IPAddress]:
    """The global addresses Postfix sends from, or [] without Postfix (or without binds)."""
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    if not Path(postconf).exists():
        return []
    base = [postconf, *(["-c", str(config_dir)] if config_dir else [])]
    try:
        main = subprocess.run(
            [*base, "-h", "smtp_bind_address", "smtp_bind_address6", "inet_interfaces"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        services = subprocess.run(
            [*base, "-P"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_postconf(main, services)


def route_addresses() -> list[IPAddress]:
    """The kernel's source address toward the internet, per family, when it is global."""
    found = []
    for probe in _ROUTE_PROBES:
        family = socket.AF_INET6 if ":" in probe else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 53))
                address = ipaddress.ip_address(sock.getsockname()[0])
        except OSError:
            continue
        if address.is_global:
            found.append(address)
    return found


async def ask_http(client: httpx.AsyncClient, url: str) -> IPAddress | None:
    try:
        response = await client.get(url)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_address(response.text[:200])


async def ask_dns(source: DnsSource, timeout: float) -> IPAddress | None:
    query = dns.message.make_query(
        source.name,
        dns.rdatatype.from_text(source.rdtype),
        dns.rdataclass.from_text(source.rdclass),
    )
    try:
        reply = await dns.asyncquery.udp(query, source.server, timeout=timeout, port=source.port)
    except (OSError, dns.exception.DNSException):
        return None
    for rrset in reply.answer:
        for rdata in rrset:
            address = parse_address(rdata.to_text())
            if address is not None:
                return address
    return None


async def discover(
    *,
    http_urls: Sequence[str] = HTTP_ENDPOINTS,
    dns_sources: Sequence[DnsSource] = DNS_SOURCES,
    use_route: bool = True,
    timeout: float = 5.0,
) -> list[IPAddress]:
    """This machine's public addresses; DiscoveryError when no source agrees on one."""
    if use_route:
        local = postfix_addresses() or route_addresses()
        if local:
            return local
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
        answers = await asyncio.gather(
            *(ask_http(client, url) for url in http_urls),
            *(ask_dns(source, timeout) for source in dns_sources),
        )
    found = agree(list(answers))
    if not found:
        asked = len(http_urls) + len(dns_sources)
        raise DiscoveryError(
            f"could not find this machine's public IP: none of {asked} HTTP/DNS services "
            "agreed on an answer; name the address to check, e.g. blmonitor check 203.0.113.5"
        )
    return found
