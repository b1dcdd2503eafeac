#!/usr/bin/env python3
"""Score bounce attribution on labelled sets of real rejection texts (issue 13).

Each FILE is a rejection set in the format of bench/rejections/FORMAT.md: `[[text]]` rows with
the receiver's text and its labels (verdict, list ids, listed IP). Every text goes through the
same path as `blmonitor explain` (the reply code and status read from its start). Per set:

  block detected   texts labelled listed or reputation that we call listed or reputation
  list named       of those whose label names a list: our list, zone or provider matches one of
                   the accepted ids (lower case), directly or through the lexicon's aliases
  listed IP right  of those whose label gives an IP literal: ours is that address
  negatives wrong  texts labelled other or receiver-error that we call listed or reputation
  by layer         how many texts each layer (rule, lexicon, generic, none) decided

--misses lists the texts each figure missed, for a development set only: it refuses a file
named test*.toml (the held-out set must stay unseen, or its figures mean nothing).
--tree scores another checkout of blmonitor (the anchor, an older round): its attributions are
made in a child process on that tree, and compared here with this tree's list matching.
--labels takes the labels of the rows it names from a file of `[[label]]` rows (id, verdict,
list, listed_ip) instead of the set's own: the labels agreed by a second, blind labeller and a
third for their disagreements (bench/rejections/adjudicate.py), scored beside the first ones.

    python3 bench/rejections.py bench/rejections/dev.toml --misses
    python3 bench/rejections.py --tree ../anchor bench/rejections/test7.toml
    python3 bench/rejections.py --labels bench/rejections/second/agreed.toml \
        bench/rejections/test9.toml
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from blmonitor.bounces.lexicon import Lexicon, embedded_lexicon  # noqa: E402
from blmonitor.bounces.models import Attribution, BounceVerdict  # noqa: E402
from blmonitor.bounces.rules import Rules, embedded_rules  # noqa: E402
from blmonitor.bounces.service import explain  # noqa: E402
from blmonitor.dnsbl.catalog import Catalog, embedded_catalog  # noqa: E402

_BLOCK = {"listed", "reputation"}
_PARTS_RE = re.compile(r"[/(),]")
_NEGATIVE = {"other", "receiver-error"}


@dataclass
class Score:
    name: str
    texts: int = 0
    block: int = 0
    block_found: int = 0
    named: int = 0
    named_right: int = 0
    with_ip: int = 0
    ip_right: int = 0
    negatives: int = 0
    negatives_wrong: int = 0
    layers: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[str, str, dict[str, object], Attribution]] = field(default_factory=list)


def load_set(
    path: Path, labels: dict[str, dict[str, object]] | None = None
) -> list[dict[str, object]]:
    """The set's rows with text; a row `labels` names takes its verdict, list and listed IP
    from there."""
    data = tomllib.loads(path.read_text("utf-8"))
    rows = data.get("text", [])
    if not isinstance(rows, list):
        raise SystemExit(f"{path}: no [[text]] rows")
    kept = [r for r in rows if isinstance(r, dict) and str(r.get("text", "")).strip()]
    return [{**r, **(labels or {}).get(str(r.get("id", "")), {})} for r in kept]


_LABEL_KEYS = ("verdict", "list", "listed_ip")


def load_labels(path: Path) -> dict[str, dict[str, object]]:
    """`[[label]]` rows by id: the labels that stand instead of a set's own."""
    rows = tomllib.loads(path.read_text("utf-8")).get("label", [])
    if not isinstance(rows, list):
        raise SystemExit(f"{path}: no [[label]] rows")
    found: dict[str, dict[str, object]] = {}
    for row in rows:
        if not isinstance(row, dict) or not row.get("id"):
            raise SystemExit(f"{path}: a [[label]] row without an id")
        if str(row.get("verdict")) not in _BLOCK | _NEGATIVE:
            raise SystemExit(
                f"{path}: {row['id']}: verdict {row.get('verdict')!r} is not one of four"
            )
        found[str(row["id"])] = {k: row[k] for k in _LABEL_KEYS if k in row}
    return found


def real_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return ""


def list_matches(got: Attribution, accepted: list[str], lexicon: Lexicon) -> bool:
    """Our list, zone or provider is one of the accepted ids, or stands for the same entry of
    the lexicon as one of them."""
    ours = {w.lower() for w in (got.list, got.zone, got.provider) if w}
    # "GMX/web.de", "Validity (SenderScore)": each part of a provider's name stands for it.
    ours |= {p.strip() for w in (got.provider.lower(),) for p in _PARTS_RE.split(w) if p.strip()}
    wanted = {w.lower() for w in accepted if w}
    if ours & wanted:
        return True
    ours_ids = {n.id for w in ours if (n := lexicon.resolve(w)) is not None}
    wanted_ids = {n.id for w in wanted if (n := lexicon.resolve(w)) is not None}
    return bool(ours_ids & wanted_ids)


# Run on another tree: its own `blmonitor explain` for each [text, remote_mta] read as JSON.
_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from blmonitor.bounces.service import explain
out = []
for text, mta in json.load(sys.stdin):
    got = explain(text, remote_mta=mta)
    found = {k: str(getattr(got, k, "") or "") for k in
             ("verdict", "list", "zone", "provider", "listed_ip", "layer")}
    if not hasattr(got, "layer"):  # a tree from before issue 13 reports no layer
        found["layer"] = "unreported"
    out.append(found)
print(json.dumps(out))
"""


def tree_attributions(tree: Path, rows: list[dict[str, object]]) -> list[Attribution]:
    """The attributions another checkout makes of the rows' texts (in a child process)."""
    pairs = [[str(r["text"]), str(r.get("remote_mta", ""))] for r in rows]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree)],
        input=json.dumps(pairs),
        capture_output=True,
        text=True,
        check=True,
    )
    # (duck-typed: the scorer reads only these fields, as strings)
    return [SimpleNamespace(**g) for g in json.loads(done.stdout)]  # type: ignore[misc]


def score_set(
    path: Path,
    lexicon: Lexicon,
    rules: Rules | None = None,
    catalog: Catalog | None = None,
    tree: Path | None = None,
    labels: dict[str, dict[str, object]] | None = None,
) -> Score:
    """The figures of one set; every text goes the way of `blmonitor explain` (of this tree,
    or of `tree`)."""
    rules, catalog = rules or embedded_rules(), catalog or embedded_catalog()
    score = Score(path.name)
    rows = load_set(path, labels)
    theirs = tree_attributions(tree, rows) if tree is not None else None
    for n, row in enumerate(rows):
        text, label = str(row["text"]), str(row.get("verdict", ""))
        got = (
            theirs[n]
            if theirs is not None
            else explain(
                text, remote_mta=str(row.get("remote_mta", "")), rules=rules, catalog=catalog
            )
        )
        score.texts += 1
        score.layers[str(got.layer) if got.layer else "none"] += 1
        rid = str(row.get("id", "?"))
        positive = got.verdict in (BounceVerdict.LISTED, BounceVerdict.REPUTATION)
        if label in _BLOCK:
            score.block += 1
            if positive:
                score.block_found += 1
            else:
                score.misses.append(("block", rid, row, got))
            accepted = [str(a) for a in row.get("list", []) or []]  # type: ignore[attr-defined]
            if accepted:
                score.named += 1
                if positive and list_matches(got, accepted, lexicon):
                    score.named_right += 1
                else:
                    score.misses.append(("list", rid, row, got))
            want_ip = real_ip(str(row.get("listed_ip", "")))
            if want_ip:
                score.with_ip += 1
                if real_ip(got.listed_ip) == want_ip:
                    score.ip_right += 1
                else:
                    score.misses.append(("ip", rid, row, got))
        elif label in _NEGATIVE:
            score.negatives += 1
            if positive:
                score.negatives_wrong += 1
                score.misses.append(("negative", rid, row, got))
    return score


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole} ({part / whole:.2f})" if whole else "-"


def render(score: Score) -> str:
    layers = ", ".join(f"{k} {v}" for k, v in sorted(score.layers.items()))
    return "\n".join(
        [
            f"## {score.name}: {score.texts} texts",
            f"block detected   {_ratio(score.block_found, score.block)}",
            f"list named       {_ratio(score.named_right, score.named)}",
            f"listed IP right  {_ratio(score.ip_right, score.with_ip)}",
            f"negatives wrong  {score.negatives_wrong} of {score.negatives}",
            f"by layer         {layers}",
        ]
    )


def render_misses(score: Score) -> str:
    lines = [f"### misses of {score.name}"]
    for what, rid, row, got in score.misses:
        lines.append(
            f"- [{what}] {rid} label={row.get('verdict')} list={row.get('list')} "
            f"ip={row.get('listed_ip')!r} | got {got.verdict} layer={got.layer} "
            f"list={got.list!r} zone={got.zone!r} provider={got.provider!r} "
            f"ip={got.listed_ip!r}\n    {str(row.get('text'))[:400]}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="rejection-set TOML files")
    parser.add_argument("--misses", action="store_true", help="list the misses (dev sets only)")
    parser.add_argument("--tree", type=Path, help="score this other checkout of blmonitor")
    parser.add_argument(
        "--labels", type=Path, help="[[label]] rows that stand instead of the sets' own labels"
    )
    args = parser.parse_args(argv)
    if args.misses:
        held_out = [f for f in args.files if f.name.lower().startswith("test")]
        if held_out:
            print(
                f"refusing --misses for {held_out[0]}: a test set's texts stay unseen; "
                "score it without --misses",
                file=sys.stderr,
            )
            return 2
    rules, catalog = embedded_rules(), embedded_catalog()
    lexicon = rules.lexicon or embedded_lexicon()
    labels = load_labels(args.labels) if args.labels else None
    for path in args.files:
        score = score_set(path, lexicon, rules, catalog, args.tree, labels)
        print(render(score))
        if args.misses:
            print(render_misses(score))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
