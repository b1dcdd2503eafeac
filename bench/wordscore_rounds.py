"""What the word score adds on a round it never learned from, beside the tree of that time.

    python3 -m venv /tmp/train && /tmp/train/bin/pip install scikit-learn
    git worktree add /tmp/r6 98ad5c0        # the tree that had seen rounds 1-5 only
    /tmp/train/bin/python bench/wordscore_rounds.py --tree /tmp/r6 \\
        --train dev,dev2,test,test2,dev3,test3,dev4,test4,dev5,test5 --score dev7,test7

A word score is fitted (scripts/train-wordscore's `fit`) on the --train sets only; each text of
the --score sets is attributed by the older checkout --tree (in a child process, with that
tree's own negative contexts), and the word score of this tree (its gate, the status subjects it
skips, its threshold) is asked only where that tree found no block and saw no negative context
or plain rate limit — as blmonitor asks it. Printed: block texts detected and negatives called
a block, the tree alone and with the score, and every text the score added. Only sets opened
for tuning are accepted, on both sides: a held-out set stays unread.
"""

from __future__ import annotations

import argparse
import json
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blmonitor.bounces.smtp import leading_status, reply_head  # noqa: E402
from blmonitor.bounces.wordscore import parse_wordscore  # noqa: E402

TRAINER = runpy.run_path(str(ROOT / "scripts" / "train-wordscore"))

_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from blmonitor.bounces.service import explain
from blmonitor.bounces.rules import embedded_rules
rules = embedded_rules()
wording = rules.lexicon.wording
out = []
for text in json.load(sys.stdin):
    got = explain(text, rules=rules)
    low = text.lower()
    veto = wording.negative.found(text, low) or (
        wording.ratelimit.found(text, low) and not wording.reputation.starts(text, low))
    # block wording the grammar judged itself (list wording, "blocked"…): its call stands
    veto = veto or wording.listed.found(text, low) or wording.weak.found(text, low)
    out.append([str(got.verdict.value) in ("listed", "reputation"), bool(veto)])
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="an older checkout")
    parser.add_argument("--train", required=True, help="sets to fit on, comma-separated")
    parser.add_argument("--score", required=True, help="sets to score, comma-separated")
    parser.add_argument(
        "--thresholds", default="", help="also count the added texts at these thresholds (0.5,0.7)"
    )
    args = parser.parse_args()
    train = tuple(args.train.split(","))
    score = tuple(args.score.split(","))
    if set(train) & set(score):
        parser.error("a set may not be both fitted on and scored")
    texts, blocks, _ = TRAINER["load_sets"](train)
    fitted, _, _ = TRAINER["fit"](texts, blocks)
    model = parse_wordscore(json.dumps(fitted), "fitted")
    rows, _, _ = TRAINER["load_sets"](score)
    truth = []
    for name in score:
        with (ROOT / "bench" / "rejections" / f"{name}.toml").open("rb") as fh:
            truth += [r["verdict"] in ("listed", "reputation") for r in tomllib.load(fh)["text"]]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(args.tree)],
        input=json.dumps(rows), capture_output=True, text=True, check=True,
    )  # fmt: skip
    tree = json.loads(done.stdout)
    added = []
    asked_scores: list[float] = []  # the score where the word score is asked, else -1
    for text, (found, veto) in zip(rows, tree, strict=True):
        status = (reply_head(text) or ("", ""))[1] or leading_status(text)
        subject = status.split(".")[1] if status.count(".") == 2 else ""
        asked = not found and not veto and subject not in {"1", "2", "6"}
        asked = asked and model.gated(text.lower())
        asked_scores.append(model.score(text) if asked else -1.0)
        added.append(asked and asked_scores[-1] >= model.threshold)
    alone = [found for found, _ in tree]
    both = [found or more for found, more in zip(alone, added, strict=True)]
    for name, picks in (("tree alone", alone), ("tree + word score", both)):
        hit = sum(p and t for p, t in zip(picks, truth, strict=True))
        wrong = sum(p and not t for p, t in zip(picks, truth, strict=True))
        print(f"{name:18} block {hit}/{sum(truth)} ({hit / sum(truth):.3f})  "
              f"negatives wrong {wrong} of {len(truth) - sum(truth)}")  # fmt: skip
    for cut in (float(c) for c in args.thresholds.split(",") if c):
        more = [a >= cut for a in asked_scores]
        hit = sum(m and t for m, t in zip(more, truth, strict=True))
        wrong = sum(m and not t for m, t in zip(more, truth, strict=True))
        print(f"  at {cut:.2f}: adds {hit} blocks, {wrong} negatives")
    for text, a, t in zip(rows, added, truth, strict=True):
        if a:
            print(f"  {'block' if t else 'NEGATIVE'}: {text[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
