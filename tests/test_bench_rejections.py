"""bench/rejections.py: the issue-13 scorer counts what it promises and never shows a test
set's misses."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent

SET = """
[[text]]
id = "t-1"
text = "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"
verdict = "listed"
list = ["zen.spamhaus.org", "spamhaus"]
listed_ip = "192.0.2.1"

[[text]]
id = "t-2"
text = "550 Your IP 192.0.2.3 is on the GMX block list"
verdict = "listed"
list = ["gmx"]
listed_ip = "x.x.x.x"

[[text]]
id = "t-3"
text = "550 5.1.1 User unknown"
verdict = "other"
list = []

[[text]]
id = "t-4"
text = "550 Mailbox full"
verdict = "listed"
list = ["nowhere"]
listed_ip = "192.0.2.4"
"""


def _bench() -> ModuleType:
    name = "bench_rejections"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "rejections.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_scores_a_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dev.toml"
    path.write_text(SET)
    assert _bench().main([str(path), "--misses"]) == 0
    out = capsys.readouterr().out
    assert "block detected   2/3 (0.67)" in out
    assert "list named       2/3 (0.67)" in out  # "gmx" named through the lexicon
    assert "listed IP right  1/2 (0.50)" in out  # x.x.x.x is no IP: not counted
    assert "negatives wrong  0 of 1" in out
    assert "by layer         lexicon 1, none 2, rule 1" in out
    assert "[block] t-4" in out


def test_scores_another_tree_as_this_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # --tree: the attributions made in a child process on a checkout (here this one) give
    # the figures the in-process scorer gives; a tree with no layers says so
    path = tmp_path / "dev.toml"
    path.write_text(SET)
    assert _bench().main([str(path)]) == 0
    here = capsys.readouterr().out
    assert _bench().main(["--tree", str(ROOT), str(path)]) == 0
    assert capsys.readouterr().out == here
    old = tmp_path / "old" / "blmonitor" / "bounces"
    old.mkdir(parents=True)
    (old.parent / "__init__.py").write_text("")
    (old / "__init__.py").write_text("")
    (old / "service.py").write_text(
        "from types import SimpleNamespace\n"
        "def explain(text, remote_mta=''):\n"
        "    return SimpleNamespace(verdict='other', list='', zone='', provider='', listed_ip='')\n"
    )
    assert _bench().main(["--tree", str(tmp_path / "old"), str(path)]) == 0
    out = capsys.readouterr().out
    assert "block detected   0/3 (0.00)" in out and "by layer         unreported 4" in out


def test_refuses_to_show_a_test_sets_misses(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "test.toml"
    path.write_text(SET)
    assert _bench().main([str(path), "--misses"]) == 2
    captured = capsys.readouterr()
    assert "refusing --misses" in captured.err and "t-4" not in captured.out
    assert _bench().main([str(path)]) == 0
    assert "t-4" not in capsys.readouterr().out


def _adjudicate() -> ModuleType:
    name = "bench_adjudicate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "bench" / "rejections" / "adjudicate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _labels(*rows: tuple[str, str, str]) -> str:
    """Blind labels as a labeller writes them: (id, verdict, listed_ip) rows."""
    return "".join(
        f'[[text]]\nid = "{rid}"\nverdict = "{verdict}"\nlist = []\nlisted_ip = "{ip}"\n'
        for rid, verdict, ip in rows
    )


BLIND = _labels(
    ("t-1", "listed", "192.0.2.1"), ("t-2", "other", ""), ("t-3", "listed", "192.0.2.9"),
    ("t-4", "other", ""),
)  # fmt: skip
TIE = _labels(("t-2", "listed", ""), ("t-3", "listed", "192.0.2.9"), ("t-4", "other", ""))


def test_three_labellers_agree_and_the_scorer_takes_their_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # t-2: the second says other, the third listed: the first (listed) stands, no row;
    # t-3: first other, second and third listed: listed, with their IP; t-4: first listed,
    # both others other: other. The labellers see no labels: only id, source, language, text.
    path, blind, tie = tmp_path / "test.toml", tmp_path / "b1.toml", tmp_path / "b2.toml"
    path.write_text(SET)
    blind.write_text(BLIND)
    tie.write_text(TIE)
    adjudicate = _adjudicate()
    assert adjudicate.main(["texts", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "verdict" not in shown.replace("fill verdict", "") and "Mailbox full" in shown
    assert adjudicate.main(["disputed", str(path), "--blind", str(blind)]) == 0
    disputed = capsys.readouterr().out
    assert [f'id = "t-{n}"' in disputed for n in (1, 2, 3, 4)] == [False, True, True, True]
    assert adjudicate.main(["agree", str(path), "--blind", str(blind), "--tie", str(tie)]) == 0
    captured = capsys.readouterr()
    assert "disputed 3, kept 1, to block 1, to not block 1" in captured.err
    agreed = tmp_path / "agreed.toml"
    agreed.write_text(captured.out)
    labels = _bench().load_labels(agreed)
    assert labels == {
        "t-3": {"verdict": "listed", "list": [], "listed_ip": "192.0.2.9"},
        "t-4": {"verdict": "other", "list": [], "listed_ip": ""},
    }
    assert _bench().main([str(path), "--labels", str(agreed)]) == 0
    out = capsys.readouterr().out
    # t-3 (user unknown) now a block we miss; t-4 (mailbox full) a negative we get right
    assert "block detected   2/3 (0.67)" in out and "negatives wrong  0 of 1" in out
    assert "listed IP right  1/2 (0.50)" in out


def test_the_labels_file_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "agreed.toml"
    bad.write_text('[[label]]\nid = "t-1"\nverdict = "spam"\n')
    with pytest.raises(SystemExit, match="not one of four"):
        _bench().load_labels(bad)


def test_the_dev_set_meets_the_issue_aims() -> None:
    path = ROOT / "bench" / "rejections" / "dev.toml"
    bench = _bench()
    score = bench.score_set(path, bench.embedded_lexicon())
    assert score.block_found / score.block >= 0.95
    assert score.named_right / score.named >= 0.90
    assert score.ip_right / score.with_ip >= 0.95
    assert score.negatives_wrong == 0


def test_the_second_dev_set_meets_the_issue_aims() -> None:
    path = ROOT / "bench" / "rejections" / "dev2.toml"
    bench = _bench()
    score = bench.score_set(path, bench.embedded_lexicon())
    assert score.block_found / score.block >= 0.95
    assert score.named_right / score.named >= 0.90
    assert score.ip_right / score.with_ip >= 0.95
    # Orange's "OFR006_103" with no list wording: bounce_labels.toml counts _103 as naming a
    # list, the dev2 label does not (bench/README.md, round 2). Nothing else.
    assert score.negatives_wrong <= 1
