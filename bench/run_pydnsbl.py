"""Run pydnsbl on the bench lab and print what it found as JSON (the bench driver's format).

    python3 bench/run_pydnsbl.py --targets FILE --zones FILE --server 127.0.0.1:PORT
                                 [--timeout 5] [--tries 2] [--concurrency 200]

pydnsbl is used as shipped: DNSBLIpChecker(providers=[Provider(z) ...], timeout, tries,
concurrency).bulk_check(targets). Two things are added around it, neither changing its logic:

* the DNS server. pydnsbl builds `aiodns.DNSResolver(timeout=, tries=, loop=)` itself and
  pycares' `servers` setter takes bare IP addresses only ("127.0.0.1:5353" raises "invalid IP
  address"); the port is a channel option (`udp_port`/`tcp_port`). So aiodns.DNSResolver is
  wrapped to add nameservers=["127.0.0.1"], udp_port/tcp_port=PORT and a private resolv.conf
  (`resolvconf_path`, naming only 127.0.0.1) so that c-ares never even reads /etc/resolv.conf.
* the raw A records: `dnsbl_request` is wrapped (subclass) to keep each answer's addresses,
  since DNSBLResult only keeps categories ("unknown") per provider, not the codes.

Status per (ip, zone) comes from pydnsbl's own DNSBLResult: "listed" if the zone is in
`detected_by`, "error" if in `failed_providers`, else "clean".
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import aiodns  # noqa: E402
import pydnsbl.checker  # noqa: E402
from pydnsbl import DNSBLIpChecker  # noqa: E402
from pydnsbl.providers import Provider  # noqa: E402


def code_key(code: str) -> tuple[int, ...]:
    return tuple(int(x) for x in code.split("."))


def point_aiodns_at(host: str, port: int, resolv_conf: str) -> None:
    real = aiodns.DNSResolver

    def resolver(*args, **kwargs):
        kwargs.setdefault("nameservers", [host])
        kwargs.setdefault("udp_port", port)
        kwargs.setdefault("tcp_port", port)
        kwargs.setdefault("resolvconf_path", resolv_conf)
        return real(*args, **kwargs)

    pydnsbl.checker.aiodns.DNSResolver = resolver  # pydnsbl calls aiodns.DNSResolver(...)


class RecordingChecker(DNSBLIpChecker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.raw: dict[tuple[str, str], list[str]] = {}
        self.errors: dict[tuple[str, str], str] = {}
        self.requests = 0

    async def dnsbl_request(self, request, provider):
        self.requests += 1
        result = await super().dnsbl_request(request, provider)
        if result.response:
            self.raw[(request, provider.host)] = sorted(
                {r.host for r in result.response}, key=code_key
            )
        if result.error is not None:
            self.errors[(request, provider.host)] = " ".join(str(a) for a in result.error.args)
        return result


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--targets", required=True)
    ap.add_argument("--zones", required=True)
    ap.add_argument("--server", required=True, help="HOST:PORT of the DNS server (the proxy)")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--tries", type=int, default=2)
    ap.add_argument(
        "--concurrency", type=int, default=200, help="pydnsbl's semaphore (default 200)"
    )
    args = ap.parse_args()

    host, _, port = args.server.rpartition(":")
    targets = [ln.strip() for ln in Path(args.targets).read_text().splitlines() if ln.strip()]
    zones = [ln.strip() for ln in Path(args.zones).read_text().splitlines() if ln.strip()]

    with tempfile.NamedTemporaryFile("w", prefix="pydnsbl-resolv-", suffix=".conf") as conf:
        conf.write(f"nameserver {host}\n")
        conf.flush()
        point_aiodns_at(host, int(port), conf.name)
        checker = RecordingChecker(
            providers=[Provider(z) for z in zones],
            timeout=args.timeout,
            tries=args.tries,
            concurrency=args.concurrency,
        )
        servers = list(checker._resolver.nameservers)
        t0 = time.perf_counter()
        outcome = checker.bulk_check(targets)
        t1 = time.perf_counter()

    results = []
    for res in outcome:
        failed = {p.host for p in res.failed_providers}
        for provider in res.providers:
            key = (res.addr, provider.host)
            if provider.host in res.detected_by:
                status = "listed"
            elif provider.host in failed:
                status = "error"
            else:
                status = "clean"
            results.append(
                {
                    "target": res.addr,
                    "zone": provider.host,
                    "status": status,
                    "codes": checker.raw.get(key, []) if status == "listed" else [],
                    "error": checker.errors.get(key, ""),
                }
            )
    stats = {
        "queries": checker.requests,
        "seconds": round(t1 - t0, 4),  # bulk_check only
        "startup_seconds": round(t0 - T_START, 4),  # imports and setup
    }
    out = {"tool": "pydnsbl", "servers": servers, "results": results, "stats": stats}
    stats["post_seconds"] = round(time.perf_counter() - t1, 4)  # building the results
    # one write: json.dump() would write ~1M small chunks (seconds for 51,200 results)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
