"""Bounce benchmark: accuracy of blmonitor's bounce attribution, and speed against sisimai.

    python3 bench/bounces.py [--corpus DIR] [--labels FILE] [--repeat N] [--no-sisimai]
                             [--skip-speed] [--skip-accuracy] [--skip-worst] [--json FILE]
                             [--jobs N] [--baseline DIR] [--no-bytecode-cache]

Accuracy (maildir/bsd of the shared corpus, labels in bench/bounce_labels.toml): blmonitor's
extraction + attribution per failed-recipient record against the hand labels; precision and
recall for "blocklist or reputation bounce" (listed + reputation) and for listed alone; list-name
and listed-IP accuracy on the true positives; the confusion table. The same figures for
Debian's sisimai (libsisimai-perl 4.25.x), where the reason `blocked` is the classifier.

Speed (the whole corpus: maildir/bsd, mac, dos, err and the mailbox/ files): blmonitor
(extraction + attribution, one Python process) and sisimai (`Sisimai->make($path)`, one Perl
process) run as child processes on the same files, alternately, N times after one untimed
run each; wall time (start-up included), messages/s, the parse time each process measures
itself, and peak RSS (os.wait4 rusage); the same commands on an empty file list (start-up
alone); where blmonitor's wall time goes (imports, rules and catalog, extraction, attribution,
as its child measures them); with --jobs N, blmonitor over N forked processes too.

Worst case (in this process): the slowest single input among the hostile messages of
tests/test_extract.py (`mutations`), every corpus message, and the backtracking texts of
tests/test_attribution.py (`adversarial`), against a bound of WORST_BOUND seconds an input
(the bound the tests asserted before timing left them). Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "sisimai-set-of-emails"
LABELS = ROOT / "bench" / "bounce_labels.toml"
POSITIVE = frozenset({"listed", "reputation"})
VERDICTS = ("listed", "reputation", "receiver-error", "other")
NONE = "(no record)"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# One Perl script, two modes: "labels" prints {file: [{rcpt, reason, diag}]} for the accuracy
# comparison; "speed" parses every path and prints the record count and its own parse time.
SISIMAI_PL = r"""
use strict; use warnings;
use Time::HiRes qw(time);
use JSON::PP;
use Sisimai;
my $mode = shift @ARGV;
my @paths = map { chomp; $_ } grep { /\S/ } do { local @ARGV = (shift @ARGV); <> };
my (%out, $records);
my $t0 = time;
for my $path (@paths) {
    my $list = Sisimai->make($path) || [];
    $records += scalar @$list;
    next unless $mode eq 'labels';
    (my $name = $path) =~ s{.*/}{};
    $out{$name} = [ map { { rcpt => $_->recipient->address, reason => $_->reason,
                            diag => ($_->diagnosticcode // '') } } @$list ];
}
my $elapsed = time - $t0;
print JSON::PP->new->canonical->encode(
    $mode eq 'labels' ? \%out
    : { records => $records // 0, seconds => $elapsed, version => "$Sisimai::VERSION" });
"""


# The blmonitor side of the speed run, as small as the Perl one: `python -c BLMONITOR_PY ROOT
# LISTING JOBS` (run as a script of its own so that the harness's imports are not timed). It
# extracts and attributes every path and prints the record count and its own time. JOBS > 1:
# the files are shared among that many forked processes (parse and attribution both), the
# records and attributions sent back to the parent, as a parallel scan would have them. In one
# process it also reports its phases: imports, loading the rules and catalog, extraction and
# attribution (a clock read per file, not per record).
BLMONITOR_PY = r"""
import json, sys, time
T0 = time.perf_counter()
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from blmonitor.bounces.attribution import attribute_record
from blmonitor.bounces.rules import embedded_rules
try:
    from blmonitor.bounces.mailbox import read_path
except ImportError:  # a --baseline checkout from before bounces/mailbox.py
    from blmonitor.bounces.mailbox import read_path
from blmonitor.dnsbl.catalog import embedded_catalog

imported = time.perf_counter() - T0
paths = [line for line in Path(sys.argv[2]).read_text().splitlines() if line.strip()]
jobs = int(sys.argv[3])
t0 = time.perf_counter()
rules, catalog = embedded_rules(), embedded_catalog()
phases = {"imports": imported, "load": time.perf_counter() - t0, "extract": 0.0, "attribute": 0.0}


def attributed(path):
    t1 = time.perf_counter()
    records = list(read_path(Path(path)))
    t2 = time.perf_counter()
    out = [(r, attribute_record(r, rules=rules, catalog=catalog)) for r in records]
    phases["extract"] += t2 - t1
    phases["attribute"] += time.perf_counter() - t2
    return out


if jobs > 1:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        found = [x for part in pool.imap(attributed, paths, chunksize=8) for x in part]
else:
    found = [x for path in paths for x in attributed(path)]
positive = sum(a.verdict != "other" for _, a in found)
elapsed = time.perf_counter() - t0
report = {"records": len(found), "positive": positive, "seconds": elapsed}
print(json.dumps({**report, "phases": phases} if jobs == 1 else report))
"""


# --------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Expected:
    file: str
    recipient: str
    verdict: str
    list: str = ""
    listed_ip: str = ""
    listed_domain: str = ""


@dataclass(frozen=True)
class Predicted:
    verdict: str
    list: str = ""
    listed_ip: str = ""
    listed_domain: str = ""
    diagnostic: str = ""


def load_labels(path: Path = LABELS) -> dict[str, dict[str, Any]]:
    with path.open("rb") as fh:
        messages: dict[str, dict[str, Any]] = tomllib.load(fh)["messages"]
    return messages


def expected_records(labels: dict[str, dict[str, Any]]) -> list[Expected]:
    out: list[Expected] = []
    for name, message in sorted(labels.items()):
        for rec in message["records"]:
            out.append(
                Expected(
                    file=name,
                    recipient=rec["recipient"],
                    verdict=rec["verdict"],
                    list=rec.get("list", ""),
                    listed_ip=rec.get("listed_ip", ""),
                    listed_domain=rec.get("listed_domain", ""),
                )
            )
    return out


def _match(
    expected: list[Expected], predicted: dict[str, list[tuple[str, Predicted]]]
) -> tuple[list[tuple[Expected, Predicted | None]], list[tuple[str, str, Predicted]]]:
    """Pair each expected record with the prediction for the same file and recipient (in
    order, for a recipient that repeats); predictions left over are returned apart."""
    pools: dict[tuple[str, str], list[Predicted]] = {}
    for name, items in predicted.items():
        for rcpt, pred in items:
            pools.setdefault((name, rcpt.lower()), []).append(pred)
    pairs: list[tuple[Expected, Predicted | None]] = []
    for exp in expected:
        pool = pools.get((exp.file, exp.recipient.lower()))
        pairs.append((exp, pool.pop(0) if pool else None))
    extra = [(name, rcpt, p) for (name, rcpt), pool in pools.items() for p in pool]
    return pairs, extra


# --------------------------------------------------------------------------- scoring


@dataclass
class Score:
    name: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    listed_tp: int = 0
    listed_fp: int = 0
    listed_fn: int = 0
    list_ok: int = 0
    list_total: int = 0
    ip_ok: int = 0
    ip_total: int = 0
    spurious_ip: int = 0
    domain_ok: int = 0
    domain_total: int = 0
    unlabelled: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: list[tuple[str, str, str, str]] = field(default_factory=list)  # file, exp, got, text

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def listed_precision(self) -> float:
        total = self.listed_tp + self.listed_fp
        return self.listed_tp / total if total else 0.0

    @property
    def listed_recall(self) -> float:
        total = self.listed_tp + self.listed_fn
        return self.listed_tp / total if total else 0.0


def score(
    name: str,
    expected: list[Expected],
    predicted: dict[str, list[tuple[str, Predicted]]],
    *,
    attributes: bool = True,
) -> Score:
    """Per-record scores; a prediction that matches no label counts against precision."""
    pairs, extra = _match(expected, predicted)
    result = Score(name)
    for exp, pred in pairs:
        got = pred.verdict if pred else NONE
        result.confusion[exp.verdict, got] += 1
        want_pos, got_pos = exp.verdict in POSITIVE, got in POSITIVE
        result.tp += want_pos and got_pos
        result.fp += got_pos and not want_pos
        result.fn += want_pos and not got_pos
        result.listed_tp += exp.verdict == "listed" and got == "listed"
        result.listed_fp += got == "listed" and exp.verdict != "listed"
        result.listed_fn += exp.verdict == "listed" and got != "listed"
        text = pred.diagnostic if pred else ""
        if want_pos != got_pos or (want_pos and exp.verdict != got):
            result.errors.append((exp.file, exp.verdict, got, text))
        if not (attributes and want_pos and got_pos and pred):
            continue
        if exp.list:
            result.list_total += 1
            if pred.list == exp.list:
                result.list_ok += 1
            else:
                result.errors.append((exp.file, f"list {exp.list}", f"list {pred.list!r}", text))
        if exp.listed_ip:
            result.ip_total += 1
            if pred.listed_ip == exp.listed_ip:
                result.ip_ok += 1
            else:
                result.errors.append(
                    (exp.file, f"ip {exp.listed_ip}", f"ip {pred.listed_ip!r}", text)
                )
        elif pred.listed_ip:
            result.spurious_ip += 1
            result.errors.append((exp.file, "no ip", f"ip {pred.listed_ip!r}", text))
        if exp.listed_domain:
            result.domain_total += 1
            result.domain_ok += pred.listed_domain == exp.listed_domain
    for file, _rcpt, pred in extra:
        result.unlabelled += 1
        result.confusion["(unlabelled)", pred.verdict] += 1
        if pred.verdict in POSITIVE:
            result.fp += 1
            result.listed_fp += pred.verdict == "listed"
            result.errors.append((file, "(unlabelled)", pred.verdict, pred.diagnostic))
    return result


def blmonitor_predictions(bsd: Path) -> dict[str, list[tuple[str, Predicted]]]:
    from blmonitor.bounces.attribution import attribute_record
    from blmonitor.bounces.extract import parse_message
    from blmonitor.bounces.rules import embedded_rules
    from blmonitor.dnsbl.catalog import embedded_catalog

    rules, catalog = embedded_rules(), embedded_catalog()
    out: dict[str, list[tuple[str, Predicted]]] = {}
    for path in sorted(bsd.iterdir()):
        items = out.setdefault(path.name, [])
        for rec in parse_message(path.read_bytes(), source=path.name):
            att = attribute_record(rec, rules=rules, catalog=catalog)
            pred = Predicted(
                verdict=str(att.verdict),
                list=att.list,
                listed_ip=att.listed_ip,
                listed_domain=att.listed_domain,
                diagnostic=rec.diagnostic,
            )
            items.append((rec.recipient, pred))
    return out


def blmonitor_score(corpus: Path = CORPUS, labels: Path = LABELS) -> Score:
    return score(
        "blmonitor",
        expected_records(load_labels(labels)),
        blmonitor_predictions(corpus / "maildir" / "bsd"),
    )


def sisimai_available() -> bool:
    if not shutil.which("perl"):
        return False
    probe = subprocess.run(["perl", "-MSisimai", "-e", "1"], capture_output=True, check=False)
    return probe.returncode == 0


def _sisimai_script(tmp: Path) -> Path:
    script = tmp / "sisimai-bench.pl"
    script.write_text(SISIMAI_PL)
    return script


def _dedupe(items: list[dict[str, str]]) -> list[dict[str, str]]:
    """sisimai sometimes gives the same recipient and reason twice (rhost-cox-01): keep one."""
    seen: set[tuple[str, str]] = set()
    out = []
    for item in items:
        key = (item["rcpt"].lower(), item["reason"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def sisimai_predictions(bsd: Path, tmp: Path) -> dict[str, list[tuple[str, Predicted]]]:
    listing = tmp / "sisimai-labels.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(bsd.iterdir())))
    run = subprocess.run(
        ["perl", str(_sisimai_script(tmp)), "labels", str(listing)],
        capture_output=True,
        check=True,
    )
    raw: dict[str, list[dict[str, str]]] = json.loads(run.stdout)
    out: dict[str, list[tuple[str, Predicted]]] = {}
    for name, items in raw.items():
        out[name] = [
            (
                item["rcpt"],
                Predicted(
                    # sisimai's reason `blocked` is read as "listed"; it has no reputation
                    # reason in 4.25 and no list name or listed IP.
                    verdict="listed" if item["reason"] == "blocked" else "other",
                    diagnostic=item.get("diag", ""),
                ),
            )
            for item in _dedupe(items)
            if item["reason"] != "delivered"
        ]
    return out


# --------------------------------------------------------------------------- speed


def corpus_files(corpus: Path) -> list[Path]:
    files: list[Path] = []
    for sub in ("bsd", "mac", "dos", "err"):
        files += sorted(p for p in (corpus / "maildir" / sub).iterdir() if p.is_file())
    files += sorted(p for p in (corpus / "mailbox").iterdir() if p.is_file())
    return files


def count_messages(files: list[Path]) -> int:
    from blmonitor.bounces.mailbox import parse_mbox

    total = 0
    for path in files:
        data = path.read_bytes()
        if data.startswith(b"From "):
            total += sum(1 for _ in parse_mbox(data))
        elif data.strip():
            total += 1
    return total


@dataclass
class Run:
    wall: float
    inner: float
    maxrss_kib: int
    records: int
    version: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # blmonitor in one process


def _run_child(argv: list[str], env: dict[str, str] | None = None) -> Run:
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited with {proc.returncode}")
        out.seek(0)
        report = json.loads(out.read())
    return Run(
        wall=wall,
        inner=float(report["seconds"]),
        maxrss_kib=usage.ru_maxrss,
        records=int(report["records"]),
        version=str(report.get("version", "")),
        phases={k: float(v) for k, v in report.get("phases", {}).items()},
    )


def _python_env(tmp: Path, bytecode_cache: bool) -> dict[str, str]:
    """The blmonitor child's environment. With `bytecode_cache`, Python may cache compiled
    modules (in the bench's temporary directory), as an installed package is byte-compiled:
    a sandbox that sets PYTHONDONTWRITEBYTECODE otherwise makes every run compile blmonitor's
    sources anew (~50 ms). Perl has no such cache: it compiles Sisimai at every start."""
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def speed(
    corpus: Path,
    repeat: int,
    with_sisimai: bool,
    tmp: Path,
    *,
    jobs: int = 1,
    bytecode_cache: bool = True,
    baseline: Path | None = None,
) -> dict[str, list[Run]]:
    """Each command once untimed (file cache, byte-code cache), then `repeat` alternating runs
    on the corpus; and as many on an empty file list (start-up and set-up alone). `baseline`:
    the blmonitor of another checkout too, in the same runs (before/after on equal terms)."""
    listing = tmp / "speed-files.txt"
    listing.write_text("".join(f"{p}\n" for p in corpus_files(corpus)))
    empty = tmp / "speed-none.txt"
    empty.write_text("")
    env = _python_env(tmp, bytecode_cache)
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {}
    for n in sorted({1, jobs}):
        name = "blmonitor" if n == 1 else f"blmonitor, {n} processes"
        argv = [sys.executable, "-c", BLMONITOR_PY, str(ROOT), str(listing), str(n)]
        commands[name] = (argv, env)
    if baseline is not None:
        argv = [sys.executable, "-c", BLMONITOR_PY, str(baseline.resolve()), str(listing), "1"]
        commands[f"blmonitor at {baseline}"] = (argv, env)
    if with_sisimai:
        commands["sisimai"] = (["perl", str(_sisimai_script(tmp)), "speed", str(listing)], None)
    for name in [n for n in commands if n in ("blmonitor", "sisimai")]:
        argv, child_env = commands[name]
        commands[f"{name}, no input"] = (
            [str(empty) if a == str(listing) else a for a in argv],
            child_env,
        )
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for argv, child_env in commands.values():
        _run_child(argv, child_env)  # warm-up, not counted
    for i in range(repeat):
        order = list(commands) if i % 2 == 0 else list(reversed(commands))
        for name in order:
            runs[name].append(_run_child(*commands[name]))
    return runs


# --------------------------------------------------------------------------- worst case

WORST_BOUND = 0.5  # seconds for any one message or rejection text


def worst_case(corpus: Path) -> dict[str, tuple[float, str]]:
    """The slowest input of each kind: (seconds, a short description of it)."""
    from blmonitor.bounces.attribution import attribute
    from blmonitor.bounces.extract import extract_records
    from blmonitor.bounces.mailbox import is_mbox, parse_mbox
    from blmonitor.bounces.rules import embedded_rules
    from blmonitor.dnsbl.catalog import embedded_catalog
    from tests.test_attribution import adversarial
    from tests.test_extract import mutations

    def slowest(items: list[tuple[str, Any]], run: Any) -> tuple[float, str]:
        worst = (0.0, "")
        for name, item in items:
            t0 = time.perf_counter()
            run(item)
            worst = max(worst, (time.perf_counter() - t0, name))
        return worst

    rules, catalog = embedded_rules(), embedded_catalog()
    hostile = [(f"seed {seed} #{i}", m) for seed in (1, 2) for i, m in enumerate(mutations(seed))]
    messages = []
    for path in corpus_files(corpus):
        data = path.read_bytes()
        chunks = list(parse_mbox(data)) if is_mbox(data) else [(0, data)]
        messages += [(f"{path.name}:{n}" if n else path.name, chunk) for n, chunk in chunks]
    texts = [(repr(t[:40]), t) for t in adversarial()]
    return {
        "hostile messages (extraction)": slowest(hostile, extract_records),
        "corpus messages (extraction)": slowest(messages, extract_records),
        "backtracking texts (attribution)": slowest(
            texts,
            lambda t: attribute(t, remote_mta=t[:300], status="", rules=rules, catalog=catalog),
        ),
    }


def worst_report(worst: dict[str, tuple[float, str]]) -> str:
    lines = [
        "## Worst case: the slowest single input\n",
        "| inputs | slowest s | bound s | within | input |\n|---|---:|---:|---|---|",
    ]
    for kind, (seconds, name) in worst.items():
        ok = "yes" if seconds < WORST_BOUND else "**NO**"
        lines.append(f"| {kind} | {seconds:.3f} | {WORST_BOUND} | {ok} | {name} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- report


def _pct(ok: int, total: int) -> str:
    return f"{ok}/{total} ({ok / total:.2f})" if total else "n/a"


def accuracy_report(scores: list[Score]) -> str:
    lines = ["## Accuracy on maildir/bsd (per failed-recipient record)", ""]
    lines.append(
        "| classifier | TP | FP | FN | precision | recall | listed P | listed R "
        "| list name | listed IP | IP where none named |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for s in scores:
        attrs = s.name == "blmonitor"
        lines.append(
            f"| {s.name} | {s.tp} | {s.fp} | {s.fn} | {s.precision:.2f} | {s.recall:.2f} "
            f"| {s.listed_precision:.2f} | {s.listed_recall:.2f} "
            f"| {_pct(s.list_ok, s.list_total) if attrs else 'none given'} "
            f"| {_pct(s.ip_ok, s.ip_total) if attrs else 'none given'} "
            f"| {s.spurious_ip if attrs else '-'} |"
        )
    lines.append("")
    lines.append(
        "Positive = verdict listed or reputation. For sisimai, reason `blocked` counts as "
        "listed (4.25 has no reputation reason). A prediction on a record without a label "
        "counts as a false positive."
    )
    for s in scores:
        cols = [*VERDICTS, NONE]
        rows = [*VERDICTS, "(unlabelled)"] if s.unlabelled else list(VERDICTS)
        present_cols = [c for c in cols if any(s.confusion[r, c] for r in rows)]
        lines += ["", f"### Confusion, {s.name} (rows: expected, columns: got)", ""]
        lines.append("| expected \\ got | " + " | ".join(present_cols) + " |")
        lines.append("|---|" + "---:|" * len(present_cols))
        for r in rows:
            if any(s.confusion[r, c] for c in cols):
                cells = " | ".join(str(s.confusion[r, c]) for c in present_cols)
                lines.append(f"| {r} | {cells} |")
    return "\n".join(lines)


def errors_report(s: Score, limit: int = 80) -> str:
    lines = ["", f"### Mis-attributed records, {s.name}", ""]
    if not s.errors:
        return "\n".join([*lines, "none"])
    lines.append("| file | expected | got | diagnostic |")
    lines.append("|---|---|---|---|")
    for file, exp, got, text in s.errors[:limit]:
        text = text.replace("|", "\\|")[:200]
        lines.append(f"| {file} | {exp} | {got} | {text} |")
    if len(s.errors) > limit:
        lines.append(f"| … {len(s.errors) - limit} more | | | |")
    return "\n".join(lines)


def speed_report(runs: dict[str, list[Run]], messages: int, files: int) -> str:
    def med(name: str, what: str) -> float:
        return float(statistics.median(getattr(r, what) for r in runs[name]))

    lines = [
        "",
        f"## Speed: whole corpus, {files} files, {messages} messages "
        f"(median of {len(next(iter(runs.values())))} alternating runs)",
        "",
        "| parser | records | wall s | parse s | msgs/s (wall) | msgs/s (parse only) "
        "| peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, items in runs.items():
        if name.endswith(", no input"):
            continue
        wall, inner = med(name, "wall"), med(name, "inner")
        rss = max(r.maxrss_kib for r in items) / 1024
        label = f"{name} {items[0].version}".strip()
        lines.append(
            f"| {label} | {items[0].records} | {wall:.2f} | {inner:.2f} | {messages / wall:,.0f} "
            f"| {messages / inner:,.0f} | {rss:.0f} |"
        )
    fixed = [n for n in runs if n.endswith(", no input")]
    if fixed:
        lines += [
            "",
            "The same commands on an empty file list (interpreter start-up, imports; blmonitor's",
            "'parse' is loading its rules and catalog):",
            "",
            "| parser | wall s | parse s |",
            "|---|---:|---:|",
        ]
        lines += [f"| {n} | {med(n, 'wall'):.2f} | {med(n, 'inner'):.2f} |" for n in fixed]
    lines += phases_report(runs)
    if "sisimai" in runs:
        lines.append("")
        ss_wall, ss_inner = med("sisimai", "wall"), med("sisimai", "inner")
        for name in [n for n in runs if n.startswith("blmonitor") and n not in fixed]:
            lines.append(
                f"{name} / sisimai: wall {ss_wall / med(name, 'wall'):.1f}×, "
                f"parse only {ss_inner / med(name, 'inner'):.1f}×"
            )
        if "blmonitor, no input" in runs and "sisimai, no input" in runs:
            bl = med("blmonitor", "wall") - med("blmonitor, no input", "wall")
            ss = ss_wall - med("sisimai, no input", "wall")
            lines.append(
                f"blmonitor / sisimai, wall less the no-input run: {bl:.2f} s vs {ss:.2f} s, "
                f"{ss / bl:.1f}×"
            )
    return "\n".join(lines)


PHASES = {
    "imports": "imports",
    "load": "rules and catalog",
    "extract": "extraction",
    "attribute": "attribution",
}


def phases_report(runs: dict[str, list[Run]]) -> list[str]:
    """Where a blmonitor run's wall time goes (medians; "start-up and exit" is the wall time
    less the phases the child measures: interpreter start, site hooks, teardown, spawning)."""
    named = [n for n, rs in runs.items() if rs and all(r.phases for r in rs)]
    named = [n for n in named if not n.endswith(", no input")]
    if not named:
        return []
    lines = [
        "",
        "Where blmonitor's wall time goes (median s of each phase, as the child measures it):",
        "",
        "| parser | start-up and exit | " + " | ".join(PHASES.values()) + " | wall |",
        "|---|" + "---:|" * (len(PHASES) + 2),
    ]
    for name in named:
        items = runs[name]
        cells = [statistics.median(r.phases.get(k, 0.0) for r in items) for k in PHASES]
        rest = statistics.median(r.wall - sum(r.phases.values()) for r in items)
        wall = statistics.median(r.wall for r in items)
        lines.append(
            f"| {name} | {rest:.3f} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {wall:.2f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-sisimai", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-worst", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="also time blmonitor over this many processes (a two-core figure: --jobs 2)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also time the blmonitor of this checkout (e.g. `git worktree add ../base HEAD`)",
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE for the blmonitor child (compile at every start)",
    )
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    with_sisimai = not args.no_sisimai and sisimai_available()
    if not with_sisimai and not args.no_sisimai:
        print("sisimai not found (apt-get install libsisimai-perl): blmonitor only\n")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bounces-") as tmpdir:
        tmp = Path(tmpdir)
        if not args.skip_accuracy:
            expected = expected_records(load_labels(args.labels))
            bsd = args.corpus / "maildir" / "bsd"
            scores = [score("blmonitor", expected, blmonitor_predictions(bsd))]
            if with_sisimai:
                scores.append(
                    score(
                        "sisimai blocked", expected, sisimai_predictions(bsd, tmp), attributes=False
                    )
                )
            print(accuracy_report(scores))
            print(errors_report(scores[0]))
            figures["accuracy"] = {
                s.name: {
                    "tp": s.tp,
                    "fp": s.fp,
                    "fn": s.fn,
                    "precision": s.precision,
                    "recall": s.recall,
                    "listed_precision": s.listed_precision,
                    "listed_recall": s.listed_recall,
                    "list_ok": s.list_ok,
                    "list_total": s.list_total,
                    "ip_ok": s.ip_ok,
                    "ip_total": s.ip_total,
                    "spurious_ip": s.spurious_ip,
                    "errors": s.errors,
                }
                for s in scores
            }
        if not args.skip_speed:
            files = corpus_files(args.corpus)
            messages = count_messages(files)
            runs = speed(
                args.corpus,
                args.repeat,
                with_sisimai,
                tmp,
                jobs=args.jobs,
                bytecode_cache=not args.no_bytecode_cache,
                baseline=args.baseline,
            )
            print(speed_report(runs, messages, len(files)))
            figures["speed"] = {
                "messages": messages,
                "files": len(files),
                "bytecode_cache": not args.no_bytecode_cache,
                "runs": {n: [r.__dict__ for r in rs] for n, rs in runs.items()},
            }
    if not args.skip_worst:
        worst = worst_case(args.corpus)
        print(worst_report(worst))
        figures["worst"] = {k: {"seconds": v[0], "input": v[1]} for k, v in worst.items()}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
