"""DNS servers on 127.0.0.1 for the tests: rbldnsd with generated zone data, and a small
resolver of ours (dnspython messages) that misbehaves on purpose for chosen zones and
forwards every other question to rbldnsd, like a recursive resolver would."""

from __future__ import annotations

import contextlib
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
ZONE_APEX = (
    "$SOA 60 ns.lab.test. hostmaster.lab.test. 2026120601 600 300 86400 60\n$NS 60 ns.lab.test.\n"
)
ROOT_SOA = "a.root-servers.net. nstld.verisign-grs.com. 2026120600 1800 900 604800 86400"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return int(port)


def wait_answering(port: int, name: str = "2.0.0.127.probe.invalid") -> None:
    query = dns.message.make_query(name, "A")
    for _ in range(100):
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.1)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"no DNS server answers on 127.0.0.1:{port}")


@contextlib.contextmanager
def rbldnsd(workdir: Path, zones: dict[str, list[tuple[str, str]]]) -> Iterator[int]:
    """Serve `zones` ({zone: [(dataset type, file text), ...]}) with rbldnsd; yields the port."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    specs = []
    for zone, datasets in zones.items():
        for i, (kind, text) in enumerate(datasets):
            path = workdir / f"{zone}.{i}.{kind}"
            # every zone has its SOA and NS at the apex, as real zones do
            path.write_text((ZONE_APEX if i == 0 else "") + text)
            path.chmod(0o644)
            specs.append(f"{zone}:{kind}:{path.name}")
    port = free_port()
    log = (workdir / "rbldnsd.log").open("wb")
    proc = subprocess.Popen(
        [RBLDNSD, "-n", "-e", "-q", "-u", "nobody", "-w", str(workdir), "-t", "60",
         "-b", f"127.0.0.1/{port}", *specs],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_answering(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)
        log.close()


Rule = Callable[[dns.message.Message], dns.message.Message | None]


class FakeResolver:
    """A resolver on 127.0.0.1 (UDP and TCP): rules by zone suffix, the rest forwarded."""

    def __init__(self, upstream: int | None = None) -> None:
        self.upstream = upstream
        self.rules: list[tuple[dns.name.Name, Rule]] = []
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        outer = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = outer.answer(data, tcp=False)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = int.from_bytes(self.rfile.read(2), "big")
                reply = outer.answer(self.rfile.read(length), tcp=True)
                if reply is not None:
                    self.wfile.write(len(reply).to_bytes(2, "big") + reply)

        socketserver.ThreadingUDPServer.allow_reuse_address = True
        self.udp = socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp)
        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp)
        for server in (self.udp, self.tcp):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in (self.udp, self.tcp):
            server.shutdown()
            server.server_close()

    def add(self, zone: str, rule: Rule) -> None:
        self.rules.append((dns.name.from_text(zone), rule))

    def answer(self, wire: bytes, *, tcp: bool) -> bytes | None:
        query = dns.message.from_wire(wire)
        qname = query.question[0].name
        with self.lock:
            self.seen.append(qname.to_text())
        for zone, rule in self.rules:
            if qname.is_subdomain(zone):
                reply = rule(query)
                if reply is not None and not tcp and getattr(rule, "truncate_udp", False):
                    reply.flags |= dns.flags.TC
                    reply.answer.clear()
                return None if reply is None else reply.to_wire()
        if self.upstream is None:  # a resolver that knows no name at all (a sandbox's)
            reply = dns.message.make_response(query)
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply.to_wire()
        if qname == dns.name.root:  # what any working recursive resolver knows: the root
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            reply.answer.append(dns.rrset.from_text(dns.name.root, 60, "IN", "SOA", ROOT_SOA))
            return reply.to_wire()
        forwarded = dns.query.udp(query, "127.0.0.1", port=self.upstream, timeout=2)
        forwarded.flags |= dns.flags.RA
        return forwarded.to_wire()


# --- rules ---------------------------------------------------------------------------------


def rcode(code: dns.rcode.Rcode) -> Rule:
    def rule(query: dns.message.Message) -> dns.message.Message:
        reply = dns.message.make_response(query)
        reply.set_rcode(code)
        return reply

    return rule


def drop(query: dns.message.Message) -> None:
    return None


def records(*values: str, rdtype: str = "A", delay: float = 0.0) -> Rule:
    """Answer every A question of the zone with `values`; TXT questions get one string."""

    def rule(query: dns.message.Message) -> dns.message.Message:
        if delay:
            time.sleep(delay)
        question = query.question[0]
        reply = dns.message.make_response(query)
        if question.rdtype == dns.rdatatype.from_text(rdtype):
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", rdtype, *values))
        elif question.rdtype == dns.rdatatype.TXT:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", '"listed"'))
        return reply

    return rule


def truncating(*values: str, txt: str = "") -> Rule:
    """A UDP answer with TC set and no records; the full answer only over TCP."""

    def rule(query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        reply = dns.message.make_response(query)
        if question.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", *values))
        else:
            chunks = " ".join(f'"{txt[i : i + 200]}"' for i in range(0, len(txt), 200))
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", chunks))
        return reply

    rule.truncate_udp = True  # type: ignore[attr-defined]
    return rule


class Switchable:
    """A well-behaved IPv4 DNSBL whose listings a test changes between runs."""

    def __init__(self) -> None:
        self.listed: set[str] = set()

    def __call__(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        reply = dns.message.make_response(query)
        labels = [label.decode() for label in question.name.labels[:4]]
        address = ".".join(reversed(labels))
        if address == "127.0.0.2" or address in self.listed:
            text = "127.0.0.2" if question.rdtype == dns.rdatatype.A else '"listed"'
            kind = "A" if question.rdtype == dns.rdatatype.A else "TXT"
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, text))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        return reply


class StaticZone:
    """An authoritative server's data for a FakeResolver rule: records as (name, type, value)
    with values in zone-file syntax (TXT quoted); a name it does not hold is NXDOMAIN, a type
    it does not hold NODATA; names in `servfail` answer SERVFAIL, and names in `dropped` and
    under them nothing."""

    def __init__(
        self,
        records: list[tuple[str, str, str]],
        *,
        servfail: tuple[str, ...] = (),
        dropped: tuple[str, ...] = (),
    ) -> None:
        self.records: dict[dns.name.Name, dict[str, list[str]]] = {}
        for name, rdtype, value in records:
            owner = dns.name.from_text(name)
            self.records.setdefault(owner, {}).setdefault(rdtype.upper(), []).append(value)
        self.servfail = {dns.name.from_text(n) for n in servfail}
        self.dropped = {dns.name.from_text(n) for n in dropped}

    def __call__(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        if any(question.name.is_subdomain(name) for name in self.dropped):
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        if question.name in self.servfail:
            reply.set_rcode(dns.rcode.SERVFAIL)
            return reply
        held = self.records.get(question.name)
        if held is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if rdtype in held:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", rdtype, *held[rdtype]))
        return reply
