"""The bench lab: 54 DNSBL zones served by rbldnsd on 127.0.0.1, with known answers.

z01..z50 are the 50-zone lab of scenarios A and B (z47..z50 broken on purpose); z51..z54 are
healthy zones that let scenario C ask 50 healthy zones (z01..z46 + z51..z54).

    python3 bench/lab.py DIR [--ips 1024] [--seed 5782]        # write the lab into DIR
    python3 bench/lab.py DIR --serve PORT                      # ... and serve it until Ctrl-C

Files written into DIR:
  zNN.ip4set, zNN-b.ip4set   rbldnsd data (the -b file holds the second code of IPs with two)
  catalog.toml               a blmonitor catalog for the 50 zones (schema of lists/zones.toml)
  targets.txt                the target IPs, one a line (198.18.0.0/15, RFC 2544 bench range)
  zones.txt                  the zone names, one a line
  truth.json                 the expected answer for every (ip, zone) pair and zone health

Zones z01..z46 are normal: they list 127.0.0.2 (RFC 5782 test point), not 127.0.0.1, and
~3% of the (ip, zone) pairs with codes 127.0.0.2..127.0.0.11 (some with two codes) and TXT.
z47 is DEAD (lists nothing, not even 127.0.0.2), z48 LISTS EVERYTHING (0.0.0.0/0 -> 127.0.0.2),
z49 REFUSES (answers 127.255.255.254 for everything, like Spamhaus to a public resolver), and
z50 TIMES OUT (rbldnsd serves normal data, the delay proxy drops its queries). For z47..z50
the right answer for every pair is "error" (no verdict), never listed or clean.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

SUFFIX = "lab.test"
N_ZONES = 54  # z01..z50: the 50-zone lab with its 4 broken zones; z51..z54: 4 more healthy ones
CODES = [f"127.0.0.{i}" for i in range(2, 12)]
REFUSED = "127.255.255.254"
SPECIAL = {47: "dead", 48: "lists-everything", 49: "refused", 50: "unreachable"}
RBLDNSD = shutil.which("rbldnsd") or "/usr/sbin/rbldnsd"
SOA = "$SOA 60 ns.lab.test. hostmaster.lab.test. 2026113001 600 300 86400 60\n$NS 60 ns.lab.test.\n"
EVERYTHING = "0.0.0.0-255.255.255.255"  # ip4set refuses 0.0.0.0/0 but takes the full range

# code -> (severity, meaning) for the catalog
CODE_INFO = {
    "127.0.0.2": ("critical", "lab: direct spam source"),
    "127.0.0.3": ("critical", "lab: snowshoe spam"),
    "127.0.0.4": ("critical", "lab: exploited host (bot, proxy)"),
    "127.0.0.5": ("warning", "lab: bad reputation"),
    "127.0.0.6": ("warning", "lab: spam trap hits"),
    "127.0.0.7": ("warning", "lab: backscatter"),
    "127.0.0.8": ("info", "lab: dynamic IP range"),
    "127.0.0.9": ("critical", "lab: hijacked netblock"),
    "127.0.0.10": ("info", "lab: policy (ISP: no direct-to-MX)"),
    "127.0.0.11": ("info", "lab: policy (end-user range)"),
}


def zone_name(i: int) -> str:
    return f"z{i:02d}.{SUFFIX}"


def zone_names() -> list[str]:
    return [zone_name(i) for i in range(1, N_ZONES + 1)]


def code_key(code: str) -> tuple[int, ...]:
    return tuple(int(x) for x in code.split("."))


def generate(
    directory: Path, n_ips: int = 1024, seed: int = 5782, rate: float = 0.03, two_codes: float = 0.2
) -> dict:
    """Write the lab into `directory` (created); return the truth dict."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    targets = [
        str(ipaddress.IPv4Address(base + off)) for off in rng.sample(range(1, 2**17 - 1), n_ips)
    ]
    zones = zone_names()

    # listings[zone index][ip] = sorted codes, for the zones that serve data (normal + z50)
    listings: dict[int, dict[str, list[str]]] = {}
    for zi in range(1, N_ZONES + 1):
        if zi in (47, 48, 49):
            continue
        per: dict[str, list[str]] = {}
        for k, ip in enumerate(targets):
            # the first target is listed in a few zones so that scenario A (1 IP) sees listings
            forced = k == 0 and zi in (3, 17, 29, 50)
            if forced or rng.random() < rate:
                codes = rng.sample(
                    CODES, 2 if (zi == 17 and k == 0) or rng.random() < two_codes else 1
                )
                per[ip] = sorted(codes, key=code_key)
        listings[zi] = per

    for zi in range(1, N_ZONES + 1):
        name = zone_name(zi)
        main = [SOA]
        extra: list[str] = []
        if zi == 47:
            pass  # dead: nothing listed at all
        elif zi == 48:
            main.append(f":127.0.0.2:z48: everything is listed here ($)\n{EVERYTHING}\n")
        elif zi == 49:
            main.append(f":{REFUSED}:z49: query refused, use a local resolver ($)\n{EVERYTHING}\n")
        else:
            main.append(
                f":127.0.0.2:{name}: listed, see http://lab.test/z{zi:02d}?ip=$\n127.0.0.2\n"
            )
            for ip, codes in listings[zi].items():
                main.append(
                    f"{ip} :{codes[0]}:z{zi:02d} reason {codes[0].rsplit('.', 1)[1]} for $\n"
                )
                for code in codes[1:]:  # a second A record: same IP in a second dataset
                    extra.append(
                        f"{ip} :{code}:z{zi:02d} also reason {code.rsplit('.', 1)[1]} for $\n"
                    )
        (directory / f"z{zi:02d}.ip4set").write_text("".join(main))
        (directory / f"z{zi:02d}-b.ip4set").write_text("".join(extra))

    pairs: dict[str, dict[str, dict]] = {}
    for ip in targets:
        row: dict[str, dict] = {}
        for zi, name in enumerate(zones, 1):
            if zi in SPECIAL:
                row[name] = {"status": "error"}
            elif ip in listings[zi]:
                row[name] = {"status": "listed", "codes": listings[zi][ip]}
            else:
                row[name] = {"status": "clean"}
        pairs[ip] = row
    truth = {
        "seed": seed,
        "rate": rate,
        "targets": targets,
        "zones": zones,
        "health": {name: SPECIAL.get(zi, "ok") for zi, name in enumerate(zones, 1)},
        "special": {zone_name(zi): kind for zi, kind in SPECIAL.items()},
        "pairs": pairs,
    }
    (directory / "truth.json").write_text(json.dumps(truth, separators=(",", ":")))
    (directory / "targets.txt").write_text("".join(ip + "\n" for ip in targets))
    (directory / "zones.txt").write_text("".join(z + "\n" for z in zones))
    (directory / "catalog.toml").write_text(catalog_toml(zones))
    # rbldnsd drops root for user rbldns: the files must be world-readable
    os.chmod(directory, 0o755)
    for f in directory.iterdir():
        os.chmod(f, 0o644)
    return truth


def catalog_toml(zones: list[str]) -> str:
    out = [
        "# blmonitor bench lab catalog (written by bench/lab.py): 50 rbldnsd zones on 127.0.0.1.\n"
        "# z47..z50 are broken on purpose (dead, lists everything, refused, times out); the\n"
        "# catalog does not say so: finding out is the checker's job.\n\n"
        '[catalog]\nversion = 1\nupdated = "2026-11-30"\n'
    ]
    codes = ",\n".join(
        f'  {{ code = "{c}", severity = "{sev}", meaning = "{meaning}" }}'
        for c, (sev, meaning) in CODE_INFO.items()
    )
    for i, name in enumerate(zones, 1):
        out.append(
            f"""
[[zone]]
id = "lab-z{i:02d}"
name = "{name}"
operator = "bench lab"
takes = ["ipv4"]
kind = "block"
default = true
status = "alive"
status_date = "2026-11-30"
status_source = "bench/lab.py"
lookup_url = "http://lab.test/z{i:02d}?ip={{target}}"
delist_url = "http://lab.test/z{i:02d}/delist?ip={{target}}"
access = "free"
max_inflight = 1024
codes = [
{codes},
]
errors = [
  {{ code = "{REFUSED}", kind = "refused", meaning = "lab: query refused (public resolver)" }},
]
"""
        )
    return "".join(out)


def zonespecs(directory: Path) -> list[str]:
    """rbldnsd zone specs: `name:ip4set:main,second` (two datasets, one zone)."""
    return [
        f"{zone_name(i)}:ip4set:z{i:02d}.ip4set,z{i:02d}-b.ip4set" for i in range(1, N_ZONES + 1)
    ]


def start_rbldnsd(directory: Path, port: int, log: Path | None = None) -> subprocess.Popen:
    """rbldnsd in the foreground (-n) on 127.0.0.1/PORT; waits until it answers."""
    cmd = [
        RBLDNSD, "-n", "-b", f"127.0.0.1/{port}", "-w", str(directory), "-t", "60",
        "-c", "1h", "-p", str(directory / "rbldnsd.pid"), *zonespecs(directory),
    ]  # fmt: skip
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (outlives this call)
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = query_a("2.0.0.127." + zone_name(1), port, timeout=0.2)
            if answer == ["127.0.0.2"]:
                return proc
            raise RuntimeError(f"rbldnsd answered {answer} for the test point")
        except OSError:
            pass
        except Exception as exc:  # dns.exception.Timeout
            if "Timeout" not in type(exc).__name__:
                raise
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"rbldnsd did not start: {' '.join(cmd[:8])} ... (see {log})")
        time.sleep(0.05)


def query_a(name: str, port: int, timeout: float = 2.0) -> list[str] | None:
    """A records of NAME asked to 127.0.0.1:PORT (never the system resolver); None on NXDOMAIN."""
    import dns.message
    import dns.query
    import dns.rcode

    reply = dns.query.udp(
        dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=timeout
    )
    if reply.rcode() == dns.rcode.NXDOMAIN:
        return None
    return sorted((r.address for rr in reply.answer for r in rr), key=code_key)


def verify(truth: dict, port: int) -> list[str]:
    """Spot-check rbldnsd against the truth; returns a list of problems (empty: all good)."""
    problems = []
    checks = [("2.0.0.127", 1, ["127.0.0.2"]), ("1.0.0.127", 1, None), ("2.0.0.127", 47, None),
              ("1.0.0.127", 48, ["127.0.0.2"]), ("2.0.0.127", 49, [REFUSED])]  # fmt: skip
    for rev, zi, want in checks:
        got = query_a(f"{rev}.{zone_name(zi)}", port)
        if got != want:
            problems.append(f"{rev}.{zone_name(zi)}: got {got}, want {want}")
    multi = [
        (ip, z, v["codes"])
        for ip, row in truth["pairs"].items()
        for z, v in row.items()
        if v["status"] == "listed" and len(v["codes"]) > 1
    ][:5]
    for ip, z, codes in multi:
        rev = ".".join(reversed(ip.split(".")))
        got = query_a(f"{rev}.{z}", port)
        if got != codes:
            problems.append(f"{ip} in {z}: got {got}, want {codes}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("dir", type=Path)
    ap.add_argument("--ips", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=5782)
    ap.add_argument("--serve", type=int, metavar="PORT", help="then run rbldnsd on this port")
    args = ap.parse_args()
    truth = generate(args.dir, args.ips, args.seed)
    listed = sum(
        1 for row in truth["pairs"].values() for v in row.values() if v["status"] == "listed"
    )
    print(
        f"lab in {args.dir}: {len(truth['targets'])} IPs x {N_ZONES} zones, {listed} listed pairs"
    )
    if args.serve:
        proc = start_rbldnsd(args.dir, args.serve)
        problems = verify(truth, args.serve)
        print(f"rbldnsd on 127.0.0.1:{args.serve}: {'; '.join(problems) or 'verified'}")
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
