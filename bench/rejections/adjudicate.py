#!/usr/bin/env python3
"""A second opinion on a set's labels: a blind labeller's, and a third for their disagreements.

The first labels are the collector's, made beside the page the text came from. A second
labeller, who sees only each row's id, source, language and text and FORMAT.md (never the first
labels, never blmonitor's output), labels every row again (`blind`). Where the two disagree on
whether a text is a block text at all (listed or reputation against other or receiver-error), a
third labeller, as blind, labels those rows only (`tie`); the majority of the three stands.

    python3 adjudicate.py texts test9.toml test10.toml > batch.toml         # what labellers see
    python3 adjudicate.py disputed test9.toml test10.toml --blind b1.toml > tie.toml
    python3 adjudicate.py agree test9.toml test10.toml --blind b1.toml --tie b2.toml > agreed.toml

`agree` writes `[[label]]` rows for `bench/rejections.py --labels` — only the rows whose
majority differs from the first label — each with the three votes. Pure file work: nothing
here reads blmonitor.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tomllib
from pathlib import Path

_BLOCK = {"listed", "reputation"}
_VERDICTS = _BLOCK | {"other", "receiver-error"}


def rows_of(paths: list[Path], table: str = "text") -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in paths:
        found = tomllib.loads(path.read_text("utf-8")).get(table, [])
        rows += [r for r in found if isinstance(r, dict)]
    return rows


def by_id(rows: list[dict[str, object]], what: str) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for row in rows:
        rid = str(row.get("id", ""))
        if str(row.get("verdict", "")) not in _VERDICTS:
            raise SystemExit(f"{what}: {rid}: verdict {row.get('verdict')!r} is not one of four")
        found[rid] = row
    return found


def _q(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def texts(rows: list[dict[str, object]], seed: int = 11) -> str:
    """The rows as a labeller sees them: id, source, language, text; in a shuffled order."""
    shown = list(rows)
    random.Random(seed).shuffle(shown)
    out = ["# Texts to label blind: fill verdict, list, listed_ip, listed_domain, note."]
    for row in shown:
        out.append("\n[[text]]")
        out += [f"{k} = {_q(row.get(k, ''))}" for k in ("id", "source", "language", "text")]
    return "\n".join(out) + "\n"


def is_block(row: dict[str, object]) -> bool:
    return str(row.get("verdict")) in _BLOCK


def disputed(first: list[dict[str, object]], blind: dict[str, dict[str, object]]) -> list:
    """The rows the blind labeller put on the other side of block / not block."""
    missing = [str(r["id"]) for r in first if str(r["id"]) not in blind]
    if missing:
        raise SystemExit(f"the blind labels lack {len(missing)} rows, e.g. {missing[0]}")
    return [r for r in first if is_block(r) != is_block(blind[str(r["id"])])]


def agree(
    first: list[dict[str, object]],
    blind: dict[str, dict[str, object]],
    tie: dict[str, dict[str, object]],
) -> tuple[str, dict[str, int]]:
    """`[[label]]` rows where the majority of three differs from the first label."""
    out = [
        "# Labels agreed by three labellers where the first two disagreed on block / not block",
        "# (bench/rejections/adjudicate.py); rows whose first label the majority kept: left out.",
    ]
    counts = {"disputed": 0, "kept": 0, "to block": 0, "to not block": 0}
    for row in disputed(first, blind):
        rid = str(row["id"])
        if rid not in tie:
            raise SystemExit(f"the tie labels lack {rid}")
        counts["disputed"] += 1
        second, third = blind[rid], tie[rid]
        if is_block(third) == is_block(row):
            counts["kept"] += 1
            continue
        counts["to block" if is_block(third) else "to not block"] += 1
        # (the majority is the second and third: their verdict; the list and IP of the
        # second when both call it a block, as the first's were not for a block)
        voter = second if is_block(second) and is_block(third) else third
        votes = ", ".join(str(r.get("verdict")) for r in (row, second, third))
        out.append("\n[[label]]")
        out.append(f"id = {_q(rid)}")
        out.append(f"verdict = {_q(str(third.get('verdict')))}")
        out.append(f"list = {_q(list(voter.get('list', []) or []) if is_block(third) else [])}")
        ip = str(voter.get("listed_ip", "")) if is_block(third) else ""
        out.append(f"listed_ip = {_q(ip)}")
        out.append(f"votes = {_q(votes)}  # first, second (blind), third (blind)")
    return "\n".join(out) + "\n", counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("texts", "disputed", "agree"))
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--blind", type=Path, help="the second labeller's labels")
    parser.add_argument("--tie", type=Path, help="the third labeller's labels of the disputed rows")
    args = parser.parse_args(argv)
    first = rows_of(args.sets)
    if args.step == "texts":
        sys.stdout.write(texts(first))
        return 0
    if args.blind is None:
        parser.error("--blind is needed")
    blind = by_id(rows_of([args.blind]), str(args.blind))
    if args.step == "disputed":
        sys.stdout.write(texts(disputed(first, blind), seed=12))
        return 0
    if args.tie is None:
        parser.error("--tie is needed")
    written, counts = agree(first, blind, by_id(rows_of([args.tie]), str(args.tie)))
    sys.stdout.write(written)
    print(", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
