"""The only DNS I/O of blmonitor: an asyncio client that asks recursive resolvers.

Every outcome becomes data (an Answer): records, NXDOMAIN, NODATA, SERVFAIL, REFUSED, a
timeout, a malformed reply. Many queries share one UDP socket per resolver and are matched on
ID, source and question; truncated replies are asked again over TCP. Only replies that carry
records are parsed in full by dnspython: the common NXDOMAIN/NODATA case needs the header only,
which is what lets one process keep thousands of lookups in flight.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import socket
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.wire

from blmonitor.errors import UsageError
from blmonitor.models import Answer, Outcome

_HEADER = struct.Struct("!HHHHHH")
_FLAGS_RD = 0x0100
_FLAG_QR = 0x8000
_FLAG_TC = 0x0200
_CLASS_IN = 1
_SOCKBUF = 4 * 1024 * 1024
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
_BATCH = 256  # datagrams read per wake-up, so one busy socket cannot starve the loop
_SWEEP = 0.01  # seconds: timeouts are noticed within this
_NXDOMAIN = Answer(Outcome.NXDOMAIN)
_NODATA = Answer(Outcome.NODATA)
_TYPECLASS = {t: struct.pack("!HH", t, _CLASS_IN) for t in dns.rdatatype.RdataType}


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
    import dns.resolver  # pulls in dns.query and httpx: slow, and needed only here

    try:
        conf = dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException as exc:
        raise UsageError(f"cannot read the system's resolvers ({exc}): use --resolver") from exc
    return [parse_nameserver(str(ns)) for ns in conf.nameservers]


Callback = Callable[[Answer], None]


class _Lookup:
    """One lookup in flight: every attempt's ID points here, so a late reply still counts."""

    __slots__ = (
        "attempt",
        "callback",
        "deadline",
        "failure",
        "keys",
        "qname",
        "rdtype",
        "typeclass",
    )

    def __init__(
        self, qname: bytes, rdtype: dns.rdatatype.RdataType, callback: Callback, deadline: float
    ) -> None:
        self.qname = qname
        self.rdtype = rdtype
        self.typeclass = _TYPECLASS[rdtype]
        self.callback: Callback | None = callback
        self.deadline = deadline
        self.attempt = 0
        self.failure = ""
        self.keys: list[tuple[_Endpoint, int]] = []


class _Endpoint:
    """One connected, non-blocking UDP socket to one resolver, read in batches."""

    def __init__(self, server: Nameserver, client: DnsClient) -> None:
        self.server = server
        self.client = client
        self.pending: dict[int, _Lookup] = {}
        family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        for level in ((_SO_RCVBUFFORCE, socket.SO_RCVBUF), (_SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            for option in level:
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, option, _SOCKBUF)
                    break
                except OSError:
                    continue
        # connect(): the kernel drops datagrams from any other source, and reports ICMP
        # "port unreachable" as ECONNREFUSED on the next recv.
        self.sock.connect((server.host, server.port))

    def drain(self) -> None:
        for _ in range(_BATCH):
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:
                # Nothing listens there: waiting lookups move on to their next attempt now.
                for lookup in dict.fromkeys(self.pending.values()):
                    if lookup.keys[-1][0] is self:  # its latest attempt went here
                        lookup.failure = f"{self.server}: {exc.strerror or exc}"
                        self.client._retry(lookup)
                return
            self.deliver(data)

    def deliver(self, data: bytes) -> None:
        if len(data) < 12 or not data[2] & 0x80:
            return
        lookup = self.pending.get((data[0] << 8) | data[1])
        if lookup is None:
            return
        # The reply must echo our question (case-insensitively: some resolvers use 0x20).
        end = 12 + len(lookup.qname)
        if data[12:end].lower() != lookup.qname or data[end : end + 4] != lookup.typeclass:
            return
        self.client._answered(lookup, data, self.server)


class DnsClient:
    """Lookups through one or more recursive resolvers, with timeouts and retries.

    `timeout` is the whole budget of one lookup, spread over `attempts` sends that rotate
    through the resolvers. `submit()` calls back with the Answer (no task or future per
    lookup, which is what keeps thousands in flight cheap); `query()` is its awaitable form.
    Use as `async with DnsClient(...) as client:`.
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
        self._step = timeout / attempts
        self._endpoints: list[_Endpoint] = []
        self._random = random.Random(os.urandom(16))
        self._next = 0
        # Attempts in the order they were sent; with one step length for all of them this is
        # also the order they expire in, so one sweep handles every timeout in O(1).
        self._expiries: deque[tuple[float, _Lookup, int]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DnsClient:
        self._loop = asyncio.get_running_loop()
        try:
            for server in self.servers:
                endpoint = _Endpoint(server, self)
                self._endpoints.append(endpoint)
                self._loop.add_reader(endpoint.sock.fileno(), endpoint.drain)
        except OSError as exc:
            self._close()
            raise UsageError(f"cannot use resolver {server}: {exc.strerror or exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        self._close()

    def _close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for endpoint in self._endpoints:
            if self._loop is not None:
                self._loop.remove_reader(endpoint.sock.fileno())
            endpoint.sock.close()
        self._endpoints.clear()

    def submit(
        self, name: dns.name.Name | bytes, rdtype: dns.rdatatype.RdataType, callback: Callback
    ) -> None:
        """Start looking up `name` (a Name, or its wire form); `callback(answer)` follows."""
        if self._loop is None or not self._endpoints:
            raise RuntimeError("DnsClient used outside 'async with'")
        qname = name if isinstance(name, bytes) else name.to_wire()
        assert qname is not None
        lookup = _Lookup(qname.lower(), rdtype, callback, self._loop.time() + self.timeout)
        self._send(lookup)

    async def query(self, name: dns.name.Name | bytes, rdtype: dns.rdatatype.RdataType) -> Answer:
        """Look up `name` and return what came back as an Answer."""
        assert self._loop is not None
        future: asyncio.Future[Answer] = self._loop.create_future()
        self.submit(name, rdtype, future.set_result)
        return await future

    def _send(self, lookup: _Lookup) -> None:
        assert self._loop is not None
        endpoint = self._endpoints[(self._next + lookup.attempt) % len(self._endpoints)]
        if not lookup.attempt:
            self._next = (self._next + 1) % len(self._endpoints)
        while True:
            qid = self._random.getrandbits(16)
            if qid not in endpoint.pending:
                break
        endpoint.pending[qid] = lookup
        lookup.keys.append((endpoint, qid))
        lookup.attempt += 1
        now = self._loop.time()
        expiry = now + self._step
        if expiry > lookup.deadline:
            expiry = lookup.deadline
        self._expiries.append((expiry, lookup, lookup.attempt))
        if self._sweeper is None:
            self._sweeper = self._loop.call_at(now + self._step, self._sweep)
        try:
            endpoint.sock.send(
                _HEADER.pack(qid, _FLAGS_RD, 1, 0, 0, 0) + lookup.qname + lookup.typeclass
            )
        except BlockingIOError:
            pass  # send buffer full: this attempt is lost, its timeout moves on to the next
        except OSError as exc:
            lookup.failure = f"{endpoint.server}: {exc.strerror or exc}"
            self._loop.call_soon(self._retry, lookup)
            return
        self.queries += 1
        if lookup.attempt > 1:
            self.retries += 1

    def _retry(self, lookup: _Lookup) -> None:
        """The current attempt failed or timed out: send again, or report the failure."""
        if lookup.callback is None:
            return
        assert self._loop is not None
        if lookup.attempt < self.attempts and self._loop.time() < lookup.deadline:
            self._send(lookup)
        elif lookup.failure:
            self._finish(lookup, Answer(Outcome.FAILED, detail=lookup.failure))
        else:
            servers = ", ".join(dict.fromkeys(str(e.server) for e, _ in lookup.keys))
            self._finish(
                lookup, Answer(Outcome.TIMEOUT, detail=f"{self.timeout:g}s, asked {servers}")
            )

    def _sweep(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, lookup, attempt = expiries.popleft()
            if lookup.attempt == attempt and lookup.callback is not None:
                self._retry(lookup)
        self._sweeper = (
            self._loop.call_at(max(expiries[0][0], now + _SWEEP), self._sweep) if expiries else None
        )

    def _finish(self, lookup: _Lookup, answer: Answer) -> None:
        callback, lookup.callback = lookup.callback, None
        for endpoint, qid in lookup.keys:
            del endpoint.pending[qid]
        if callback is not None:
            callback(answer)

    def _answered(self, lookup: _Lookup, reply: bytes, server: Nameserver) -> None:
        # The header alone settles the common cases; only records need parsing.
        flags = (reply[2] << 8) | reply[3]
        if flags & _FLAG_TC:
            self._finish_over_tcp(lookup, server)
            return
        rcode = flags & 0x000F
        if rcode == dns.rcode.NXDOMAIN:
            answer = _NXDOMAIN
        elif rcode != dns.rcode.NOERROR:
            answer = _rcode_answer(rcode, server)
        elif reply[6:8] == b"\0\0":
            answer = _NODATA
        else:
            answer = _records(reply, len(lookup.qname), lookup.rdtype, server)
        self._finish(lookup, answer)

    def _finish_over_tcp(self, lookup: _Lookup, server: Nameserver) -> None:
        """A truncated reply: ask the same resolver again over TCP, then finish."""
        assert self._loop is not None
        for endpoint, qid in lookup.keys:
            del endpoint.pending[qid]
        lookup.keys.clear()
        name = dns.name.from_wire(lookup.qname, 0)[0]
        remaining = lookup.deadline - self._loop.time()

        async def ask() -> None:
            self._finish(lookup, await self._query_tcp(name, lookup.rdtype, server, remaining))

        task = self._loop.create_task(ask())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _query_tcp(
        self,
        name: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        server: Nameserver,
        remaining: float,
    ) -> Answer:
        import dns.asyncquery  # pulls in httpx: slow, and needed only after truncation

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


def _rcode_answer(rcode: int, server: Nameserver) -> Answer:
    if rcode == dns.rcode.NXDOMAIN:
        return _NXDOMAIN
    if rcode == dns.rcode.SERVFAIL:
        return Answer(Outcome.SERVFAIL, detail=str(server))
    if rcode == dns.rcode.REFUSED:
        return Answer(Outcome.REFUSED, detail=str(server))
    return Answer(
        Outcome.FAILED, detail=f"{dns.rcode.to_text(dns.rcode.Rcode(rcode))} from {server}"
    )


def _records(
    reply: bytes, qname_length: int, rdtype: dns.rdatatype.RdataType, server: Nameserver
) -> Answer:
    """The records that answer the question, read from the answer section only.

    dns.message.from_wire would also build the authority and additional sections (about
    450 µs for a listing with two A records, against 80 µs here); only listings take this
    path. The question was already matched byte for byte, so it is skipped, and an owner
    that points back at it (0xC00C, what servers write) is not parsed again. A records are
    4 bytes read by the standard library; other rdata goes through dnspython.
    """
    parser = dns.wire.Parser(reply, 12 + qname_length + 4)
    question: dns.name.Name | None = None
    by_owner: dict[dns.name.Name | None, list[Any]] = {}  # None: the question's name
    aliases: dict[dns.name.Name | None, dns.name.Name] = {}
    try:
        for _ in range((reply[6] << 8) | reply[7]):
            owner: dns.name.Name | None = None
            if reply[parser.current : parser.current + 2] == b"\xc0\x0c":
                parser.seek(parser.current + 2)
            else:
                named = parser.get_name(decompress=True)
                question = question or dns.name.from_wire(reply, 12)[0]
                owner = None if named == question else named
            rrtype, rrclass, _ttl, length = parser.get_struct("!HHIH")
            with parser.restrict_to(length):
                if rrtype == dns.rdatatype.A and rrclass == _CLASS_IN and length == 4:
                    rdata: Any = ipaddress.IPv4Address(parser.get_bytes(4))
                else:
                    rdata = dns.rdata.from_wire_parser(rrclass, rrtype, parser)
            if rrtype == dns.rdatatype.CNAME:
                aliases[owner] = rdata.target
            elif rrtype == rdtype and rrclass == _CLASS_IN:
                by_owner.setdefault(owner, []).append(rdata)
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        return Answer(Outcome.FAILED, detail=f"malformed reply from {server}: {exc}")
    name: dns.name.Name | None = None
    for _ in range(16):  # follow a CNAME chain inside the answer, as a resolver returns it
        if name in by_owner or name not in aliases:
            break
        name = aliases[name]
    return _answer_from(rdtype, by_owner.get(name, []))


def _answer_from(rdtype: int, rdatas: Sequence[Any]) -> Answer:
    if not rdatas:
        return _NODATA
    if rdtype == dns.rdatatype.A:
        # IPv4Address from the fast path, dnspython's A rdata from TCP: both sort as addresses.
        addresses = sorted(ipaddress.IPv4Address(getattr(r, "address", r)) for r in rdatas)
        return Answer(Outcome.RECORDS, tuple(str(a) for a in addresses))
    if rdtype == dns.rdatatype.TXT:
        texts = sorted(b"".join(rdata.strings).decode("utf-8", "replace") for rdata in rdatas)
        return Answer(Outcome.RECORDS, tuple(texts))
    return Answer(Outcome.RECORDS, tuple(sorted(rdata.to_text() for rdata in rdatas)))


def _answer_of(message: dns.message.Message, server: Nameserver) -> Answer:
    """An Answer from a whole Message (the TCP path)."""
    rcode = message.rcode()
    if rcode != dns.rcode.NOERROR:
        return _rcode_answer(rcode, server)
    try:
        rrset = message.resolve_chaining().answer  # type: ignore[attr-defined]
    except dns.exception.DNSException as exc:
        return Answer(Outcome.FAILED, detail=f"unusable reply from {server}: {exc}")
    return _answer_from(message.question[0].rdtype, list(rrset) if rrset is not None else [])
