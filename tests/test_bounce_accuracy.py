"""Bounce attribution accuracy on the shared corpus, against bench/bounce_labels.toml.

The corpus (../shared/corpus/sisimai-set-of-emails, BSD-2-Clause) is not in the repository:
these tests are skipped where it is absent (CI). The scoring code is bench/bounces.py's, so the
benchmark and the test cannot disagree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "sisimai-set-of-emails"
BSD = CORPUS / "maildir" / "bsd"
LABELS = ROOT / "bench" / "bounce_labels.toml"

# Issue 4, "Done when": blocklist and reputation bounces found with these figures.
MIN_PRECISION = 0.9
MIN_RECALL = 0.95

pytestmark = pytest.mark.skipif(not BSD.is_dir(), reason=f"shared corpus not found at {CORPUS}")


def _bench() -> ModuleType:
    name = "bench_bounces"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "bounces.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def score():
    bench = _bench()
    return bench.blmonitor_score(CORPUS, LABELS)


def test_every_label_names_a_corpus_file_and_every_file_is_labelled():
    labels = _bench().load_labels(LABELS)
    on_disk = {p.name for p in BSD.iterdir() if p.is_file()}
    assert sorted(set(labels) - on_disk) == []
    assert sorted(on_disk - set(labels)) == []
    assert len(labels) == 629


def test_labels_are_well_formed():
    labels = _bench().load_labels(LABELS)
    for name, message in labels.items():
        assert message["kind"] in ("bounce", "unread-bounce", "not-bounce"), name
        if message["kind"] == "not-bounce":
            assert message["records"] == [], name
        for rec in message["records"]:
            assert rec["recipient"], name
            assert rec["verdict"] in ("listed", "reputation", "receiver-error", "other"), name
            if rec["verdict"] not in ("listed", "reputation"):
                assert not {"list", "listed_ip", "listed_domain"} & set(rec), name


def test_blocklist_and_reputation_bounces_reach_the_issue_thresholds(score):
    assert score.precision >= MIN_PRECISION, f"precision {score.precision:.2f}"
    assert score.recall >= MIN_RECALL, f"recall {score.recall:.2f} (misses: {score.errors})"


def test_found_listings_name_the_right_list_and_ip(score):
    assert score.list_total > 0 and score.ip_total > 0
    assert score.list_ok == score.list_total, score.errors
    assert score.ip_ok == score.ip_total, score.errors
    assert score.spurious_ip == 0, score.errors


def test_no_false_listing_on_the_corpus(score):
    """Precision is the part of the issue's threshold that holds today: keep it."""
    assert score.precision >= MIN_PRECISION, score.errors
