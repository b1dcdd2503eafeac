"""The only DNS I/O of blmonitor: an asyncio client that asks recursive resolvers.

Every outcome becomes data (an Answer): records, NXDOMAIN, NODATA, SERVFAIL, REFUSED, a
timeout, a malformed reply. Many queries share one UDP socket per resolver and are matched on
ID, source and question; truncated replies are asked again over TCP. Only replies that carry
records are parsed in full by dnspython: the common NXDOMAIN/NODATA case needs the header only,
which is what lets one process keep thousands of lookups in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import socket
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from .errors import UsageError
from .models import Answer, Outcome

_HEADER = struct.Struct("!HHHHHH")
_FLAGS_RD = 0x0100
_FLAG_QR = 0x8000
_FLAG_TC = 0x0200
_CLASS_IN = 1
_RCVBUF = 4 * 1024 * 1024
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


@dataclass(frozen=True, slots=True)
class Nameserver:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_nameserver(text: str) -> Nameserver:
    """`HOST`, `HOST:PORT`, `[V6]:PORT` or a bare IPv6 address; HOST must be an IP address."""
    raw = text.strip()
    host, port = raw, "53"
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    try:
        ipaddress.ip_address(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"resolver {text!r} is not IP[:PORT] (e.g. 127.0.0.1:53 or [::1]:5353)"
        ) from None
    return Nameserver(host, number)


def system_nameservers() -> list[Nameserver]:
    """The resolvers of /etc/resolv.conf (read only: nothing is queried here)."""
    try:
        conf = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise UsageError(f"cannot read the system's resolvers ({exc}): use --resolver") from exc
    return [parse_nameserver(str(ns)) for ns in conf.nameservers]


class _Pending:
    """One lookup in flight: every attempt's ID points here, so a late reply still counts."""

    __slots__ = ("failure", "qname", "reply", "typeclass", "waiter")

    def __init__(self, qname: bytes, typeclass: bytes) -> None:
        self.qname = qname
        self.typeclass = typeclass
        self.reply: bytes | None = None
        self.failure = ""
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, server: Nameserver) -> None:
        self.server = server
        self.pending: dict[int, _Pending] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, _RCVBUF)
                break

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) < 12:
            return
        pending = self.pending.get((data[0] << 8) | data[1])
        if pending is None or pending.reply is not None:
            return
        # The reply must echo our question (case-insensitively: some resolvers use 0x20).
        end = 12 + len(pending.qname)
        if (
            data[12:end].lower() != pending.qname
            or data[end : end + 4] != pending.typeclass
            or not data[2] & 0x80
        ):
            return
        pending.reply = data
        pending.wake()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: nothing listens there. Every lookup
        # waiting on this resolver moves on to its next attempt now rather than time out.
        for pending in self.pending.values():
            pending.failure = f"{self.server}: {exc.strerror if isinstance(exc, OSError) else exc}"
            pending.wake()


class DnsClient:
    """Async lookups through one or more recursive resolvers, with timeouts and retries.

    `timeout` is the whole budget of one lookup, spread over `attempts` sends that rotate
    through the resolvers. Use as `async with DnsClient(...) as client:`.
    """

    def __init__(
        self, servers: list[Nameserver], *, timeout: float = 5.0, attempts: int = 3
    ) -> None:
        if not servers:
            raise UsageError("no resolver to ask: give --resolver HOST[:PORT]")
        if timeout <= 0 or attempts < 1:
            raise UsageError("--timeout must be positive")
        self.servers = servers
        self.timeout = timeout
        self.attempts = attempts
        self.queries = 0
        self.retries = 0
        self._endpoints: list[_Endpoint] = []
        self._random = random.Random(os.urandom(16))
        self._next = 0

    async def __aenter__(self) -> DnsClient:
        loop = asyncio.get_running_loop()
        for server in self.servers:
            endpoint = _Endpoint(server)
            await loop.create_datagram_endpoint(
                lambda e=endpoint: e,  # type: ignore[misc]
                remote_addr=(server.host, server.port),
            )
            self._endpoints.append(endpoint)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for endpoint in self._endpoints:
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._endpoints.clear()

    def _new_id(self, endpoint: _Endpoint) -> int:
        while True:
            qid = self._random.getrandbits(16)
            if qid not in endpoint.pending:
                return qid

    async def query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        if not self._endpoints:
            raise RuntimeError("DnsClient used outside 'async with'")
        loop = asyncio.get_running_loop()
        qname = name.to_wire()
        assert qname is not None
        pending = _Pending(qname.lower(), struct.pack("!HH", rdtype, _CLASS_IN))
        question = qname + pending.typeclass
        deadline = loop.time() + self.timeout
        step = self.timeout / self.attempts
        first = self._next
        self._next = (self._next + 1) % len(self._endpoints)
        keys: list[tuple[_Endpoint, int]] = []
        try:
            for attempt in range(self.attempts):
                now = loop.time()
                if pending.reply is not None or now >= deadline:
                    break
                endpoint = self._endpoints[(first + attempt) % len(self._endpoints)]
                qid = self._new_id(endpoint)
                endpoint.pending[qid] = pending
                keys.append((endpoint, qid))
                assert endpoint.transport is not None
                endpoint.transport.sendto(_HEADER.pack(qid, _FLAGS_RD, 1, 0, 0, 0) + question)
                self.queries += 1
                if attempt:
                    self.retries += 1
                pending.failure = ""
                waiter: asyncio.Future[None] = loop.create_future()
                pending.waiter = waiter
                timer = loop.call_at(min(deadline, now + step), _expire, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
        finally:
            for endpoint, qid in keys:
                del endpoint.pending[qid]
        if pending.reply is None:
            if pending.failure:
                return Answer(Outcome.FAILED, detail=pending.failure)
            servers = ", ".join(str(e.server) for e, _ in keys)
            return Answer(Outcome.TIMEOUT, detail=f"{self.timeout:g}s, asked {servers}")
        return await self._read(pending.reply, name, rdtype, keys[-1][0].server, deadline)

    async def _read(
        self,
        reply: bytes,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        server: Nameserver,
        deadline: float,
    ) -> Answer:
        flags = (reply[2] << 8) | reply[3]
        rcode = flags & 0x000F
        if flags & _FLAG_TC:
            return await self._query_tcp(name, rdtype, server, deadline)
        if rcode == dns.rcode.NXDOMAIN:
            return Answer(Outcome.NXDOMAIN)
        if rcode == dns.rcode.NOERROR and reply[6:8] == b"\0\0":
            return Answer(Outcome.NODATA)
        try:
            message = dns.message.from_wire(reply)
        except dns.exception.DNSException as exc:
            return Answer(Outcome.FAILED, detail=f"malformed reply from {server}: {exc}")
        return _answer_of(message, server)

    async def _query_tcp(
        self,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        server: Nameserver,
        deadline: float,
    ) -> Answer:
        remaining = deadline - asyncio.get_running_loop().time()
        query = dns.message.make_query(name, rdtype)
        self.queries += 1
        try:
            message = await dns.asyncquery.tcp(
                query, server.host, timeout=max(remaining, 0.1), port=server.port
            )
        except dns.exception.Timeout:
            return Answer(Outcome.TIMEOUT, detail=f"TCP retry after truncation, {server}")
        except (OSError, dns.exception.DNSException) as exc:
            return Answer(Outcome.FAILED, detail=f"TCP retry after truncation, {server}: {exc}")
        return _answer_of(message, server)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _answer_of(message: dns.message.Message, server: Nameserver) -> Answer:
    rcode = message.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Answer(Outcome.NXDOMAIN)
    if rcode == dns.rcode.SERVFAIL:
        return Answer(Outcome.SERVFAIL, detail=str(server))
    if rcode == dns.rcode.REFUSED:
        return Answer(Outcome.REFUSED, detail=str(server))
    if rcode != dns.rcode.NOERROR:
        return Answer(Outcome.FAILED, detail=f"{dns.rcode.to_text(rcode)} from {server}")
    try:
        rrset = message.resolve_chaining().answer  # type: ignore[attr-defined]
    except dns.exception.DNSException as exc:
        return Answer(Outcome.FAILED, detail=f"unusable reply from {server}: {exc}")
    if rrset is None:
        return Answer(Outcome.NODATA)
    if rrset.rdtype == dns.rdatatype.A:
        addresses = sorted((rdata.address for rdata in rrset), key=ipaddress.IPv4Address)
        return Answer(Outcome.RECORDS, tuple(addresses))
    texts = sorted(
        b"".join(rdata.strings).decode("utf-8", "replace")
        for rdata in rrset
        if rrset.rdtype == dns.rdatatype.TXT
    )
    return Answer(Outcome.RECORDS, tuple(texts)) if texts else Answer(Outcome.NODATA)
