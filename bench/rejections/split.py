"""Split the collected rejection texts once, by source, before any rule is written.

    python3 split.py c1.toml c2.toml c3-kept.toml          ->  dev.toml, test.toml
    python3 split.py --suffix 2 c4.toml c5.toml            ->  dev2.toml, test2.toml

Every text of one source (page or thread) goes to the same part. Sources are shuffled with a
fixed seed and taken into the test part until it holds at least 36 % of the texts.
"""

import random
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

SEED = 20261206
SHARE = 0.36


def q(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(q(v) for v in value) + "]"
    out = []
    for ch in str(value):
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def write(path: str, rows: list[dict], header: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(header)
        for row in rows:
            out.write("\n[[text]]\n")
            for key, value in row.items():
                out.write(f"{key} = {q(value)}\n")


def group_key(source: str, by_repo: bool) -> str:
    """The source a text goes with: its page; with --by-repo, a GitHub repository's files go
    together (round 9: many rows are a project's defaults spread over several files)."""
    key = source.strip().rstrip("/").lower()
    if by_repo and key.startswith("https://github.com/"):
        key = "/".join(key.split("/")[:5])
    return key


def main(paths: list[str], suffix: str = "", by_repo: bool = False) -> None:
    rows = [row for p in paths for row in tomllib.loads(Path(p).read_text("utf-8"))["text"]]
    ids = [r["id"] for r in rows]
    if len(ids) != len(set(ids)):
        raise SystemExit("duplicate ids")
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[group_key(row["source"], by_repo)].append(row)
    sources = sorted(groups)
    random.Random(SEED).shuffle(sources)
    test: list[dict] = []
    dev: list[dict] = []
    for source in sources:
        (test if len(test) < SHARE * len(rows) else dev).extend(groups[source])
    head = (
        "# Real rejection texts, cited row by row (collected 2026-12-06, see FORMAT.md).\n"
        f"# Split by source with split.py (seed {SEED}, test share >= {SHARE}).\n"
    )
    write(f"dev{suffix}.toml", dev, head + "# DEVELOPMENT part: rules may be tuned on it.\n")
    write(f"test{suffix}.toml", test, head + "# TEST part: held apart, scored only at the end.\n")
    for name, part in (("dev", dev), ("test", test)):
        pos = sum(r["verdict"] in ("listed", "reputation") for r in part)
        print(
            f"{name}: {len(part)} texts, {pos} block, {len(part) - pos} other/receiver-error, "
            f"{len({r['source'] for r in part})} sources"
        )


if __name__ == "__main__":
    # --suffix 2: a later collection, split the same way into dev2.toml and test2.toml
    args = sys.argv[1:]
    suffix = ""
    if args[:1] == ["--suffix"]:
        suffix, args = args[1], args[2:]
    by_repo = args[:1] == ["--by-repo"]
    main(args[1:] if by_repo else args, suffix, by_repo)
