"""blmonitor vs pydnsbl on identical work, in one run, against a local lab with a delay proxy.

    python3 bench/run.py [--ips 1024] [--delay 40] [--concurrency 200] [--only pydnsbl|blmonitor]

Builds bench/delayproxy.c, writes the lab (bench/lab.py) into a temporary directory, starts
rbldnsd on 127.0.0.1 and, for every (scenario, tool) run, a fresh delay proxy in front of it
(DELAY ms added RTT, queries for z50.lab.test dropped). Scenarios: A = 1 IP x 50 zones,
B = N IPs x 50 zones. Each tool runs as its own child process, one after the other; the driver
measures wall time, peak RSS (wait4 ru_maxrss) and scores the output against truth.json.
Prints a Markdown table and writes bench/results/bench-<time>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / ".build"
RESULTS = BENCH / "results"
sys.path.insert(0, str(BENCH))
import lab  # noqa: E402

SPECIAL_FALSE_LISTING = ("z47", "z48", "z49")


# ---------------------------------------------------------------- infrastructure


def build_proxy() -> Path:
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / "delayproxy"
    source = BENCH / "delayproxy.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


def free_port() -> int:
    """A UDP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_counters(line: str) -> dict[str, int]:
    return {k: int(v) for k, _, v in (t.partition("=") for t in line.split()) if v.isdigit()}


class Proxy:
    """The C delay proxy as a child process; counters come from its stderr."""

    def __init__(self, binary: Path, port: int, upstream: int, delay_ms: float, drop: list[str]):
        self.port = port
        self.log = tempfile.NamedTemporaryFile("w+", prefix="delayproxy-", suffix=".log")  # noqa: SIM115
        cmd = [str(binary)]
        for suffix in drop:
            cmd += ["-d", suffix]
        cmd += [str(port), str(upstream), str(delay_ms)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        self._wait_line("listening", 0)

    def _lines(self) -> list[str]:
        self.log.seek(0)
        return self.log.read().splitlines()

    def _wait_line(self, word: str, seen: int, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [ln for ln in self._lines() if word in ln]
            if len(lines) > seen:
                return lines[-1]
            if self.proc.poll() is not None and word != "exit":
                raise RuntimeError(f"delayproxy exited: {self._lines()}")
            time.sleep(0.01)
        raise RuntimeError(f"delayproxy: no {word!r} line within {timeout} s: {self._lines()}")

    def counters(self) -> dict[str, int]:
        seen = sum(1 for ln in self._lines() if "counters" in ln)
        self.proc.send_signal(signal.SIGUSR1)
        return parse_counters(self._wait_line("counters", seen))

    def stop(self) -> dict[str, int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(5)
        try:
            return parse_counters(self._wait_line("exit", 0, 1.0))
        finally:
            self.log.close()


def run_child(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run CMD; wall time, peak RSS (ru_maxrss of this child, via wait4), exit code, output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        deadline = t0 + timeout
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline and not killed:
                proc.kill()
                killed = True
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait() again
        out.seek(0)
        err.seek(0)
        return {
            "cmd": cmd,
            "exit": proc.returncode,
            "killed_after_timeout": killed,
            "wall": wall,
            "maxrss_kb": usage.ru_maxrss,
            "user_s": usage.ru_utime,
            "sys_s": usage.ru_stime,
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }


# ---------------------------------------------------------------- scoring


def score(
    results: list[dict],
    zone_health: list[dict] | None,
    truth: dict,
    targets: list[str],
    only_zones: list[str] | None = None,
) -> dict:
    """Compare a tool's per-(ip, zone) results (and zone health) with truth.json."""
    zones = only_zones or truth["zones"]
    # zone -> dead | lists-everything | refused | unreachable (those in this scenario)
    special = {z: h for z, h in truth["special"].items() if z in zones}
    got: dict[tuple[str, str], dict] = {}
    duplicates = 0
    for r in results:
        key = (r.get("target"), r.get("zone"))
        if key in got:
            duplicates += 1
        got[key] = r
    s = {
        "pairs": len(targets) * len(zones), "correct": 0, "missing": 0, "duplicates": duplicates,
        "normal_pairs": 0, "normal_correct": 0, "special_pairs": 0, "special_correct": 0,
        "listed_expected": 0, "listed_found": 0, "listed_missed": 0, "wrong_codes": 0,
        "false_listed_normal": 0, "errors_normal": 0, "skipped_normal": 0,
        "false_listed_special": 0, "clean_special": 0, "z47_clean": 0, "z50_clean": 0,
        "by_special_zone": {},
    }  # fmt: skip
    per_special = {
        z: {"listed": 0, "clean": 0, "error": 0, "skipped": 0, "missing": 0} for z in special
    }
    samples: list[str] = []
    for ip in targets:
        for z in zones:
            want = truth["pairs"][ip][z]
            r = got.get((ip, z))
            status = r.get("status") if r else None
            codes = sorted(r.get("codes") or [], key=lab.code_key) if r else []
            if r is None:
                s["missing"] += 1
            if z in special:
                s["special_pairs"] += 1
                per_special[z][status or "missing"] = per_special[z].get(status or "missing", 0) + 1
                ok = status in ("error", "skipped")  # no verdict is the only right answer
                if status == "listed" and z.split(".")[0] in SPECIAL_FALSE_LISTING:
                    s["false_listed_special"] += 1
                if status == "clean":
                    s["clean_special"] += 1
                    label = z.split(".")[0]
                    if label in ("z47", "z50"):
                        s[f"{label}_clean"] += 1
                if ok:
                    s["special_correct"] += 1
            else:
                s["normal_pairs"] += 1
                if want["status"] == "listed":
                    s["listed_expected"] += 1
                    ok = status == "listed" and codes == want["codes"]
                    if status == "listed":
                        s["listed_found"] += 1
                        if not ok:
                            s["wrong_codes"] += 1
                    elif status == "clean":
                        s["listed_missed"] += 1
                else:
                    ok = status == "clean"
                    if status == "listed":
                        s["false_listed_normal"] += 1
                if status == "error":
                    s["errors_normal"] += 1
                elif status == "skipped":
                    s["skipped_normal"] += 1
                if ok:
                    s["normal_correct"] += 1
            if ok:
                s["correct"] += 1
            elif len(samples) < 8:
                samples.append(
                    f"{ip} {z}: want {want}, got {status} {codes} {(r or {}).get('error', '')}"
                )
    s["by_special_zone"] = per_special
    s["wrong_samples"] = samples
    s["correct_pct"] = 100.0 * s["correct"] / s["pairs"] if s["pairs"] else 0.0
    s["normal_correct_pct"] = (
        100.0 * s["normal_correct"] / s["normal_pairs"] if s["normal_pairs"] else 0.0
    )
    if zone_health is not None:
        health = {h.get("zone"): h.get("health") for h in zone_health}
        want_health = truth["health"]
        s["health"] = {z: health.get(z) for z in special}
        s["health_special_right"] = sum(1 for z in special if health.get(z) == want_health[z])
        s["health_normal_ok"] = sum(1 for z in zones if z not in special and health.get(z) == "ok")
        s["normal_zones"] = sum(1 for z in zones if z not in special)
        s["health_wrong"] = {z: health.get(z) for z in zones if health.get(z) != want_health[z]}
    return s


# ---------------------------------------------------------------- the tools


def pydnsbl_cmd(targets: Path, zones: Path, port: int, a: argparse.Namespace) -> list[str]:
    return [
        sys.executable, str(BENCH / "run_pydnsbl.py"), "--targets", str(targets),
        "--zones", str(zones), "--server", f"127.0.0.1:{port}", "--timeout", str(a.timeout),
        "--tries", str(a.tries), "--concurrency", str(a.pydnsbl_concurrency),
    ]  # fmt: skip


def blmonitor_help() -> str:
    try:
        p = subprocess.run(
            [sys.executable, "-m", "blmonitor", "check", "--help"], cwd=ROOT, env=child_env(),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return p.stdout + p.stderr if p.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


def blmonitor_cmd(
    labdir: Path, targets: Path, port: int, a: argparse.Namespace, help_text: str
) -> list[str]:
    cmd = [
        sys.executable, "-m", "blmonitor", "check", "--lists", str(labdir / "catalog.toml"),
        "--resolver", f"127.0.0.1:{port}", "--targets-file", str(targets),
        "--timeout", str(a.timeout), "--concurrency", str(a.concurrency), "--json",
    ]  # fmt: skip
    if "--tries" in help_text:  # same tries as pydnsbl, when the CLI has the option
        cmd += ["--tries", str(a.tries)]
    return cmd + a.blmonitor_arg


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def parse_output(tool: str, run: dict) -> tuple[dict | None, str]:
    text = run["stdout"].strip()
    if not text:
        return None, "no output"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"output is not JSON: {exc}"
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        return None, "JSON has no 'results' list"
    return data, ""


# ---------------------------------------------------------------- report


def fmt_row(r: dict) -> str:
    if r.get("failed"):
        cells = [r["scenario"], r["tool"], str(r["lookups"]), f"{r['wall']:.2f}", "", "", ""]
        cells += [f"FAILED: {r['failed']}".replace("|", "/")] + [""] * 7 + [str(r["exit"])]
        return "| " + " | ".join(cells) + " |"
    s = r["score"]
    health = (
        f"{s['health_special_right']}/{len(s['health'])} + "
        f"{s['health_normal_ok']}/{s['normal_zones']}"
        if "health" in s
        else "n/a"
    )
    retries = r["stats"].get("retries", "")
    queries = f"{r['stats'].get('queries', '')}" + (f" / {retries}" if retries != "" else "")
    return (
        f"| {r['scenario']} | {r['tool']} | {r['lookups']} | {r['wall']:.2f} | "
        f"{r['stats'].get('seconds', float('nan')):.2f} | {r['lookups_per_s']:.0f} | "
        f"{r['maxrss_kb'] / 1024:.1f} | {s['correct_pct']:.2f} | {s['normal_correct_pct']:.2f} | "
        f"{s['listed_found'] - s['wrong_codes']}/{s['listed_expected']} | "
        f"{s['false_listed_special']} | {s['z47_clean']} / {s['z50_clean']} | {health} | "
        f"{r['proxy'].get('forwarded', '?')} / {r['proxy'].get('dropped', '?')} | {queries} | "
        f"{r['exit']} |"
    )


HEADER = (
    "| scen. | tool | lookups | wall s | tool s | lookups/s | peak RSS MB | correct % "
    "| normal zones % | listings found | false listed z47-49 | clean z47 / z50 "
    "| health right (special + ok) | proxy fwd / dropped | queries / retries | exit |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
)


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--ips", type=int, default=1024, help="targets in scenario B (default 1024)")
    ap.add_argument("--delay", type=float, default=40.0, help="added RTT in ms (default 40)")
    ap.add_argument("--concurrency", type=int, default=200, help="blmonitor --concurrency (200)")
    ap.add_argument(
        "--pydnsbl-concurrency", type=int, default=200, help="pydnsbl semaphore (its default, 200)"
    )
    ap.add_argument("--timeout", type=float, default=5.0, help="DNS timeout for both tools (5 s)")
    ap.add_argument("--tries", type=int, default=2, help="DNS tries for both tools (2)")
    ap.add_argument("--only", choices=["pydnsbl", "blmonitor"])
    ap.add_argument("--scenarios", default="ABC", help="which scenarios to run (default ABC)")
    ap.add_argument("--seed", type=int, default=5782)
    ap.add_argument("--child-timeout", type=float, default=900.0, help="kill a tool after this (s)")
    ap.add_argument(
        "--blmonitor-arg", action="append", default=[], help="extra arg for blmonitor check"
    )
    ap.add_argument("--keep-lab", action="store_true", help="do not delete the lab directory")
    a = ap.parse_args()

    binary = build_proxy()
    tools = [a.only] if a.only else ["pydnsbl", "blmonitor"]
    tmp = Path(tempfile.mkdtemp(prefix="blm-bench-"))
    labdir = tmp / "lab"
    truth = lab.generate(labdir, a.ips, a.seed)
    targets_all = truth["targets"]
    (labdir / "targets-1.txt").write_text(targets_all[0] + "\n")
    rbl_port = free_port()
    rbl = lab.start_rbldnsd(labdir, rbl_port, log=tmp / "rbldnsd.log")
    problems = lab.verify(truth, rbl_port)
    if problems:
        print("lab verification failed:", *problems, sep="\n  ", file=sys.stderr)
        return 2
    help_text = blmonitor_help() if "blmonitor" in tools else ""

    lab50 = truth["zones"][:50]  # z01..z50, with the four broken zones z47..z50
    healthy = [z for z in truth["zones"] if z not in truth["special"]]  # 50 healthy zones
    (labdir / "zones-50.txt").write_text("".join(f"{z}\n" for z in lab50))
    (labdir / "zones-healthy.txt").write_text("".join(f"{z}\n" for z in healthy))
    # name -> (targets file, targets, zones file, zones): C is 1024 IPs x 50 healthy zones,
    # the pure throughput comparison (no zone that times out sets the wall time).
    scenarios = {
        "A": (labdir / "targets-1.txt", targets_all[:1], labdir / "zones-50.txt", lab50),
        "B": (labdir / "targets.txt", targets_all, labdir / "zones-50.txt", lab50),
        "C": (labdir / "targets.txt", targets_all, labdir / "zones-healthy.txt", healthy),
    }
    runs: list[dict] = []
    started = time.strftime("%Y%m%d-%H%M%S")
    print(
        f"lab: {len(targets_all)} IPs x {len(truth['zones'])} zones in {labdir}, rbldnsd on "
        f"127.0.0.1:{rbl_port}, +{a.delay:g} ms RTT, z50 dropped, timeout {a.timeout:g} s, "
        f"tries {a.tries}",
        file=sys.stderr,
    )
    try:
        for name in a.scenarios:
            tfile, targets, zfile, zones = scenarios[name]
            lookups = len(targets) * len(zones)
            for tool in tools:
                port = free_port()
                proxy = Proxy(binary, port, rbl_port, a.delay, drop=["z50.lab.test"])
                try:
                    if tool == "pydnsbl":
                        cmd = pydnsbl_cmd(tfile, zfile, port, a)
                    else:
                        cmd = blmonitor_cmd(labdir, tfile, port, a, help_text)
                        if zones != truth["zones"]:  # the catalog's default set is all 54
                            cmd += [arg for z in zones for arg in ("--zone", z)]
                    print(f"[{name}] {tool}: {lookups} lookups ...", file=sys.stderr, flush=True)
                    run = run_child(cmd, a.child_timeout, env=child_env())
                finally:
                    counters = proxy.stop()
                data, why = parse_output(tool, run)
                ok_exit = run["exit"] in ((0,) if tool == "pydnsbl" else (0, 1, 3))
                rec = {
                    "scenario": name, "tool": tool, "lookups": lookups, "cmd": run["cmd"],
                    "exit": run["exit"], "wall": run["wall"], "maxrss_kb": run["maxrss_kb"],
                    "user_s": run["user_s"], "sys_s": run["sys_s"],
                    "lookups_per_s": lookups / run["wall"], "proxy": counters,
                    "stderr_tail": run["stderr"][-3000:],
                }  # fmt: skip
                if data is None or not ok_exit or run["killed_after_timeout"]:
                    rec["failed"] = why or (
                        "killed after timeout" if run["killed_after_timeout"] else "bad exit"
                    )
                    tail = run["stderr"].strip().splitlines()[-1:] or [""]
                    rec["failed"] += f" ({tail[0][:160]})" if tail[0] else ""
                else:
                    rec["stats"] = data.get("stats") or {}
                    rec["verdict"] = data.get("verdict")
                    rec["zones"] = data.get("zones")
                    rec["score"] = score(
                        data["results"],
                        data.get("zones") if tool == "blmonitor" else None,
                        truth,
                        targets,
                        zones,
                    )
                    errs: dict[str, int] = {}
                    for r in data["results"]:
                        if r.get("status") == "error":
                            key = f"{r['zone']}: {r.get('error', '')}"[:120]
                            errs[key] = errs.get(key, 0) + 1
                    rec["error_kinds"] = dict(sorted(errs.items(), key=lambda kv: -kv[1])[:20])
                runs.append(rec)
                print(f"[{name}] {tool}: " + fmt_row(rec), file=sys.stderr, flush=True)
    finally:
        rbl.terminate()
        rbl.wait(5)
        if a.keep_lab:
            print(f"lab kept in {labdir}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        "\nblmonitor vs pydnsbl: A and B ask z01..z50 (z47 dead, z48 lists everything, "
        "z49 refused, z50 times out), C asks the 50 healthy zones (z01..z46, z51..z54); "
        f"+{a.delay:g} ms RTT, timeout {a.timeout:g} s, "
        f"tries {a.tries}, blmonitor --concurrency {a.concurrency}, pydnsbl concurrency "
        f"{a.pydnsbl_concurrency}\n"
    )
    print(HEADER)
    for rec in runs:
        print(fmt_row(rec))
    for rec in runs:
        if "score" in rec:
            s = rec["score"]
            print(
                f"\n{rec['scenario']} {rec['tool']}: special zones {s['by_special_zone']}; "
                f"normal zones: {s['listed_missed']} listings missed, "
                f"{s['wrong_codes']} wrong codes, "
                f"{s['false_listed_normal']} false listings, {s['errors_normal']} errors, "
                f"{s['skipped_normal']} skipped, {s['missing']} pairs missing"
                + (f"; zone health {s['health']}" if "health" in s else "")
            )
            if rec.get("error_kinds"):
                print(f"  errors: {rec['error_kinds']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{started}.json"
    settings = {k: v for k, v in vars(a).items()}
    out.write_text(json.dumps({"started": started, "settings": settings, "runs": runs}, indent=1))
    print(f"\nresults: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
