"""Hostile bounces: how long one message may cost, and how much memory a scan of them takes.

Generates N messages (seeded) of the kinds an attacker or a broken MTA sends — MIME bombs
(tens of thousands of parts), deep nesting, huge headers, DSNs with 100,000 recipients,
strings built to make regular expressions backtrack, binary garbage, endless lines — and
times `parse_message` plus attribution on each, in this process. Prints p50, p99 and max per
message and the peak RSS, by kind, against the bounds of issue 12 (p99 <= 50 ms, max <= 500 ms,
peak RSS <= 200 MB). Nothing is read from or sent to the network.

    python3 bench/hostile.py                 # 2,000 messages, seed 12
    python3 bench/hostile.py -n 5000 --seed 7 --check   # exit 1 when a bound is exceeded
"""

from __future__ import annotations

import argparse
import base64
import random
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blmonitor.bounces.attribution import attribute_record  # noqa: E402
from blmonitor.bounces.extract import parse_message  # noqa: E402
from blmonitor.bounces.rules import embedded_rules  # noqa: E402
from blmonitor.dnsbl.catalog import embedded_catalog  # noqa: E402

P99_MS, MAX_MS, RSS_MB = 50.0, 500.0, 200.0

HEAD = (
    "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.com\n"
    "Subject: Undelivered Mail Returned to Sender\nDate: Sun, 6 Dec 2026 08:00:00 +0000\n"
)


def dsn(recipients: int, rng: random.Random) -> bytes:
    blocks = "\n".join(
        f"Final-Recipient: rfc822; u{i}@example.org\nAction: failed\nStatus: 5.7.1\n"
        f"Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.{i % 250}]"
        " blocked using zen.spamhaus.org\n"
        for i in range(recipients)
    )
    return (
        HEAD + "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
        ' boundary="B"\n\n--B\nContent-Type: text/plain\n\nThe mail system\n\n--B\n'
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"{blocks}\n--B--\n"
    ).encode()


def mime_bomb(parts: int, rng: random.Random) -> bytes:
    body = "".join(f"--B\nContent-Type: text/plain\n\npart {i}\n" for i in range(parts))
    return (HEAD + f'Content-Type: multipart/mixed; boundary="B"\n\n{body}--B--\n').encode()


def deep(levels: int, rng: random.Random) -> bytes:
    opening = "".join(
        f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n' for i in range(levels)
    )
    closing = "".join(f"--b{i}--\n" for i in reversed(range(levels)))
    return (
        HEAD + 'Content-Type: multipart/mixed; boundary="b0"\n\n' + opening
        + f"--b{levels}\nContent-Type: text/plain\n\n550 5.7.1 blocked\n--b{levels}--\n" + closing
    ).encode()  # fmt: skip


def huge_header(size: int, rng: random.Random) -> bytes:
    return (HEAD + "X-Junk: " + "a" * size + "\n\n550 5.7.1 blocked using bl.example\n").encode()


def folded_header(lines: int, rng: random.Random) -> bytes:
    return (HEAD + "Received: from x\n" + " by y\n" * lines + "\nbody\n").encode()


def backtracking(size: int, rng: random.Random) -> bytes:
    """Texts shaped like the rules' wordings, repeated without their ending, as the
    diagnostic of a DSN (so attribution reads them too)."""
    pieces = [
        "blocked using " + "a." * size,
        "listed at " + "x" * size + " ",
        "Client host [" + "1." * size,
        "550-5.7.1 " * (size // 10) + "is ",
        "https://" + "a/" * size,
        ("on " + "example" * 5 + " ") * (size // 40),
        "(" * size + ")" * (size // 2),
        "spam" + " " * size + "!",
        "@" * size,
    ]
    return _one_recipient("550 5.7.1 " + rng.choice(pieces))


def _one_recipient(diagnostic: str) -> bytes:
    return (
        HEAD + "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
        ' boundary="B"\n\n--B\nContent-Type: message/delivery-status\n\n'
        "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; u@example.org\n"
        f"Action: failed\nStatus: 5.7.1\nDiagnostic-Code: smtp; {diagnostic}\n\n--B--\n"
    ).encode()


def garbage(size: int, rng: random.Random) -> bytes:
    return HEAD.encode() + b"\n" + rng.randbytes(size)


def endless_line(size: int, rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return _one_recipient("550 5.7.1 " + "blocked " * (size // 8))
    return (HEAD + "\n" + "550 5.7.1 " + "blocked " * (size // 8)).encode()


def base64_blob(size: int, rng: random.Random) -> bytes:
    blob = base64.encodebytes(rng.randbytes(size)).decode()
    return (
        HEAD + 'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n'
        f"Content-Transfer-Encoding: base64\n\n{blob}\n--B--\n"
    ).encode()


def many_boundaries(count: int, rng: random.Random) -> bytes:
    """Boundary lines of parts that never close, and nested boundaries that reuse names."""
    body = "".join('--B\nContent-Type: multipart/mixed; boundary="B"\n\n' for _ in range(count))
    return (HEAD + f'Content-Type: multipart/mixed; boundary="B"\n\n{body}\n').encode()


# kind -> (generator, sizes to draw from)
KINDS: dict[str, tuple[Callable[[int, random.Random], bytes], tuple[int, ...]]] = {
    "dsn-recipients": (dsn, (1, 50, 1_000, 10_000, 100_000)),
    "mime-bomb": (mime_bomb, (100, 5_000, 50_000)),
    "deep-nesting": (deep, (50, 500, 3_000)),
    "huge-header": (huge_header, (10_000, 1_000_000, 8_000_000)),
    "folded-header": (folded_header, (1_000, 100_000)),
    "backtracking": (backtracking, (1_000, 20_000, 60_000)),
    "garbage": (garbage, (1_000, 100_000, 2_000_000)),
    "endless-line": (endless_line, (100_000, 5_000_000)),
    "base64": (base64_blob, (10_000, 3_000_000)),
    "boundaries": (many_boundaries, (100, 20_000)),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="messages (default 2000)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--check", action="store_true", help="exit 1 when a bound is exceeded")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rules, catalog = embedded_rules(), embedded_catalog()
    names = sorted(KINDS)
    times: dict[str, list[float]] = defaultdict(list)
    worst = ("", 0.0, 0)
    for i in range(args.n):
        kind = names[i % len(names)]
        make, sizes = KINDS[kind]
        # every size of every kind once, then the biggest rarer: most hostile input is small
        first = i // len(names)
        size = sizes[first] if first < len(sizes) else sizes[min(int(rng.expovariate(1.2)),
                                                                  len(sizes) - 1)]  # fmt: skip
        data = make(size, rng)
        started = time.perf_counter()
        for record in parse_message(data, source=f"{kind}-{i}"):
            attribute_record(record, rules=rules, catalog=catalog)
        spent = (time.perf_counter() - started) * 1000
        times[kind].append(spent)
        if spent > worst[1]:
            worst = (kind, spent, size)
        del data
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    every = sorted(t for ts in times.values() for t in ts)
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))]
    print(f"hostile bounces: {len(every)} messages, seed {args.seed}")
    print("| kind | messages | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for kind in names:
        ts = sorted(times[kind])
        if ts:
            k99 = ts[min(len(ts) - 1, int(len(ts) * 0.99))]
            print(
                f"| {kind} | {len(ts)} | {statistics.median(ts):.2f} | {k99:.2f} | {ts[-1]:.1f} |"
            )
    print(
        f"| **all** | {len(every)} | {statistics.median(every):.2f} | {p99:.2f} | {every[-1]:.1f} |"
    )
    print(f"slowest: {worst[0]} (size {worst[2]:,}) {worst[1]:.1f} ms; peak RSS {rss:.0f} MB")
    ok = p99 <= P99_MS and every[-1] <= MAX_MS and rss <= RSS_MB
    print(f"bounds: p99 <= {P99_MS:g} ms, max <= {MAX_MS:g} ms, RSS <= {RSS_MB:g} MB: "
          + ("met" if ok else "NOT MET"))  # fmt: skip
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
