"""Check the delay proxy: added RTT, and no loss at high rates from one client socket.

    python3 bench/proxytest.py [--delay 40] [--queries 20000] [--window 2000]

Builds the proxy, writes a lab, starts rbldnsd and the proxy, then:
  1. RTT of single queries, direct to rbldnsd and through the proxy (median of 20);
  2. a flood: QUERIES distinct queries from ONE UDP socket with up to WINDOW in flight, with
     DNS IDs i % 500 (so ~4 queries in flight share each ID, the hard case for routing); every
     reply must come back exactly once, with its query's ID, to the right question (the QNAME
     is checked), and the answer must match truth.json; then a blast: the same QUERIES sent
     all at once (window = QUERIES);
  3. the drop rule: a query for z50.lab.test must get no reply.
Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab
from run import Proxy, build_proxy, free_port


def rtt(port: int, name: str, n: int = 20) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def wire_query(name: str, qid: int) -> bytes:
    """A DNS query for NAME/A with RD set, built by hand (dnspython is too slow for a flood)."""
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"


def parse_reply(data: bytes) -> tuple[int, bytes, list[str] | None]:
    """(ID, raw QNAME, sorted A records or None for NXDOMAIN) of a reply, parsed by hand."""
    qid, flags, _qd, ancount = struct.unpack_from(">HHHH", data)
    end = data.index(b"\0", 12)
    qname = data[12:end]
    if flags & 0xF == 3:
        return qid, qname, None
    i, addrs = end + 5, []
    for _ in range(ancount):
        if data[i] & 0xC0 == 0xC0:  # compressed name
            i += 2
        else:
            while data[i]:
                i += data[i] + 1
            i += 1
        rtype, _cls, _ttl, rdlen = struct.unpack_from(">HHIH", data, i)
        i += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(".".join(str(b) for b in data[i : i + 4]))
        i += rdlen
    return qid, qname, sorted(addrs, key=lab.code_key)


class Flood(asyncio.DatagramProtocol):
    """Keeps up to WINDOW queries in flight from one socket; checks every reply."""

    def __init__(self, port: int, names: list[str], window: int, id_mod: int) -> None:
        self.port, self.window = port, window
        self.wires = [wire_query(n, i % id_mod) for i, n in enumerate(names)]
        self.key = {w[12:-4].rstrip(b"\0").lower(): i for i, w in enumerate(self.wires)}
        self.sent_at: list[float] = [0.0] * len(names)
        self.answers: dict[int, list[str] | None] = {}
        self.duplicates = self.mismatched = 0
        self.next = 0
        self.inflight = 0
        self.all_sent = 0.0
        self.done = asyncio.get_running_loop().create_future()
        self.rtts: list[float] = []

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.t0 = time.perf_counter()
        self.fill()

    def fill(self) -> None:
        now = time.perf_counter()
        while self.next < len(self.wires) and self.inflight < self.window:
            self.sent_at[self.next] = now
            self.transport.sendto(self.wires[self.next], ("127.0.0.1", self.port))
            self.next += 1
            self.inflight += 1
        if self.next == len(self.wires) and not self.all_sent:
            self.all_sent = time.perf_counter()

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        qid, qname, answer = parse_reply(data)
        i = self.key.get(qname.lower())
        if i is None or qid != struct.unpack_from(">H", self.wires[i])[0]:
            self.mismatched += 1  # unknown question, or its ID was not restored
            return
        if i in self.answers:
            self.duplicates += 1
            return
        self.inflight -= 1
        self.rtts.append(time.perf_counter() - self.sent_at[i])
        self.answers[i] = answer
        if len(self.answers) == len(self.wires):
            if not self.done.done():
                self.done.set_result(None)
        else:
            self.fill()


async def flood(port: int, names: list[str], window: int, id_mod: int, timeout: float):
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # room for a whole blast of replies (root may exceed net.core.rmem_max)
        sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    sock.bind(("127.0.0.1", 0))
    transport, proto = await loop.create_datagram_endpoint(
        lambda: Flood(port, names, window, id_mod), sock=sock
    )
    t0 = proto.t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(proto.done), timeout)
    elapsed = time.perf_counter() - t0
    transport.close()
    return proto, elapsed


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--delay", type=float, default=40.0)
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--window", type=int, default=2000)
    args = ap.parse_args()

    binary = build_proxy()
    with tempfile.TemporaryDirectory(prefix="blm-proxytest-") as tmp:
        labdir = Path(tmp) / "lab"
        truth = lab.generate(labdir, 1024)
        rbl_port, proxy_port = free_port(), free_port()
        rbl = lab.start_rbldnsd(labdir, rbl_port)
        proxy = Proxy(binary, proxy_port, rbl_port, args.delay, drop=["z50.lab.test"])
        ok = True
        try:
            test = "2.0.0.127.z01.lab.test"
            direct, through = rtt(rbl_port, test), rtt(proxy_port, test)
            print(f"RTT (median of 20): direct {direct:.2f} ms, through proxy {through:.2f} ms, "
                  f"added {through - direct:.2f} ms (want {args.delay:.0f})")  # fmt: skip
            if abs(through - direct - args.delay) > max(5.0, args.delay * 0.15):
                ok = False

            # distinct (ip, zone) questions over zones z01..z46 with known answers
            pairs = [(ip, z) for ip in truth["targets"] for z in truth["zones"][:46]][
                : args.queries
            ]
            names = [".".join(reversed(ip.split("."))) + "." + z for ip, z in pairs]
            for label, window in (("flood", args.window), ("blast", len(names))):
                before = proxy.counters()
                proto, elapsed = asyncio.run(flood(proxy_port, names, window, 500, 60))
                after = proxy.counters()
                wrong = 0
                for i, (ip, z) in enumerate(pairs):
                    want = truth["pairs"][ip][z]
                    expect = want["codes"] if want["status"] == "listed" else None
                    if i in proto.answers and proto.answers[i] != expect:
                        wrong += 1
                answered = len(proto.answers)
                rtts = sorted(proto.rtts) or [0.0]
                send_s = max(proto.all_sent - proto.t0, 1e-9)
                p50, p99 = rtts[len(rtts) // 2] * 1000, rtts[int(len(rtts) * 0.99)] * 1000
                print(
                    f"{label}: {len(names)} queries, window {window}, one socket, DNS IDs i % 500: "
                    f"sent in {send_s:.2f} s ({len(names) / send_s:.0f} q/s offered), "
                    f"{answered} answered in {elapsed:.2f} s ({answered / elapsed:.0f} q/s), "
                    f"{len(names) - answered} lost, {wrong} wrong answers, {proto.duplicates} "
                    f"duplicates, {proto.mismatched} mismatched; RTT p50 {p50:.1f} ms, "
                    f"p99 {p99:.1f} ms"
                )
                delta = {k: after[k] - before.get(k, 0) for k in after if k != "max_queued"}
                print(f"  proxy counters: {delta}, max_queued so far {after.get('max_queued')}")
                if answered != len(names) or wrong or proto.duplicates or proto.mismatched:
                    ok = False

            try:
                lab.query_a("2.0.0.127.z50.lab.test", proxy_port, timeout=1.0)
                print("drop rule: z50 ANSWERED (bad)")
                ok = False
            except Exception as exc:  # dns.exception.Timeout
                print(f"drop rule: z50 query got no reply ({type(exc).__name__}), as intended")
        finally:
            final = proxy.stop()
            rbl.terminate()
            rbl.wait()
        print(f"proxy at exit: {final}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
