"""The generic layer's word score (blmonitor/bounces/wordscore.py, lists/wordscore.json)."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from blmonitor.bounces import wordscore as ws
from blmonitor.bounces.attribution import attribute
from blmonitor.bounces.models import BounceVerdict, Confidence, Layer
from blmonitor.bounces.rules import embedded_rules
from blmonitor.dnsbl.catalog import embedded_catalog, read_list_data
from blmonitor.errors import CatalogError

ROOT = Path(__file__).resolve().parent.parent
RULES = embedded_rules()
CATALOG = embedded_catalog()
MODEL = ws.embedded_wordscore()
SHIPPED = json.loads(read_list_data("wordscore.json")[0])
# Worded like a block, but in words no rule, name or grammar pattern holds (checked below).
UNSEEN = "550 Bad host 192.0.2.7 - contact postmaster"


def _explain(text: str, rules=RULES):
    return attribute(text, rules=rules, catalog=CATALOG)


def _plain_logit(model: ws.WordScore, text: str) -> float:
    """The arithmetic of a tf-idf + logistic regression, written out: the oracle of `_sum`'s
    word cache (and of nothing shared with it but the n-gram functions)."""
    low = ws.normalised(text[: ws.SCORED])
    total = model.intercept
    for grams, table in ((ws.char_grams(low), model.chars), (ws.word_grams(low), model.words)):
        counts = Counter(g for g in grams if g in table)
        weights = {g: (1 + math.log(n)) * table[g][0] for g, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        total += sum(w / norm * table[g][1] for g, w in weights.items())
    return total


# ─── the weights: as the trainer wrote them, from the sets it names ──────────────────────


def test_scores_are_the_trainers_own():
    # scikit-learn's probabilities for 40 texts, written beside the weights by the trainer
    assert len(SHIPPED["checks"]) >= 40
    for check in SHIPPED["checks"]:
        assert MODEL.score(check["text"]) == pytest.approx(check["score"], abs=1e-9), check


def test_the_word_cache_gives_the_plain_arithmetic():
    texts = []
    for path in sorted((ROOT / "bench" / "rejections").glob("dev*.toml")):
        with path.open("rb") as fh:
            texts += [" ".join(r["text"].split()) for r in tomllib.load(fh)["text"]]
    fresh = ws.parse_wordscore(read_list_data("wordscore.json")[0], "fresh")
    for text in texts + [text.upper() for text in texts[:50]]:
        expected = 1 / (1 + math.exp(-_plain_logit(fresh, text)))
        assert fresh.score(text) == pytest.approx(expected, abs=1e-12), text
        assert fresh.score(text) == pytest.approx(expected, abs=1e-12), text  # (cached now)


def test_the_char_grams_are_those_of_a_char_wb_analyser():
    # padded with a space; a word no longer than n gives itself once, and no longer grams
    # (the lists are what scikit-learn's analyzer="char_wb", ngram_range=(2, 5) gives)
    assert list(ws.char_grams("ab")) == [" a", "ab", "b ", " ab", "ab ", " ab "]
    assert list(ws.char_grams("a bc")) == [" a", "a ", " a ", " b", "bc", "c ", " bc", "bc ",
                                           " bc "]  # fmt: skip
    assert list(ws.word_grams("your ip zip is x blocked")) == [
        "your", "ip", "zip", "is", "blocked", "your ip", "ip zip", "zip is", "is blocked",
    ]  # fmt: skip


def test_trained_on_the_opened_sets_as_they_are_now():
    """A relabelled row means a stale model: run scripts/train-wordscore again. A held-out set
    (test9.toml, test10.toml, and test12.toml and newer when they come) is never trained on;
    test8 and test11 were opened after they were scored (bench/rejections/README.md)."""
    files = {entry["file"] for entry in SHIPPED["trained_on"]}
    held_out = ["test9.toml", "test10.toml"] + [f"test{n}.toml" for n in range(12, 30)]
    assert not any(name.endswith("/" + held) for name in files for held in held_out)
    for entry in SHIPPED["trained_on"]:
        raw = (ROOT / entry["file"]).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"], entry["file"]
    assert SHIPPED["texts"] == sum(entry["rows"] for entry in SHIPPED["trained_on"])


def test_normalised_text_hides_addresses_and_numbers():
    assert (
        ws.normalised("From 192.0.2.7 <a@b.example> code 5.7.1") == "from  zip   zemail  code 0.0.0"
    )
    assert ws.normalised("IP 10.1.2.300")[:3] == "ip "


def test_a_long_text_is_scored_on_its_head():
    text = UNSEEN + " " + "x" * 20_000
    assert MODEL.score(text) == MODEL.score(text[: ws.SCORED])


def test_the_word_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(ws, "_CACHED_WORDS", 3)
    fresh = ws.parse_wordscore(read_list_data("wordscore.json")[0], "fresh")
    first = fresh.score("one two three four five six blocked")
    assert len(fresh._grams) == 3
    assert fresh.score("one two three four five six blocked") == first


# ─── in attribution: the last resort of the generic layer ────────────────────────────────


def test_an_unseen_block_wording_is_found_by_the_word_score():
    closed = replace(RULES, wordscore=None)
    assert _explain(UNSEEN, closed).verdict is BounceVerdict.OTHER  # no rule, name or grammar
    got = _explain(UNSEEN)
    assert (got.verdict, got.layer, got.confidence) == (
        BounceVerdict.LISTED, Layer.GENERIC, Confidence.LOW)  # fmt: skip
    assert (got.list, got.listed_ip, got.rule) == ("unnamed", "192.0.2.7", "wordscore:unnamed")
    assert got.reason.startswith("Probably")
    assert "worded like the block texts it learned from: 0." in got.reason
    assert "most by '" in got.reason  # (the words that weighed most)


def test_the_threshold_decides():
    strict = replace(RULES, wordscore=replace(MODEL, threshold=0.9999))
    assert _explain(UNSEEN, strict).verdict is BounceVerdict.OTHER
    assert MODEL.score(UNSEEN) >= MODEL.threshold


@pytest.mark.parametrize(
    "text",
    [
        "550 5.1.1 seriously bad mailbox for the host 192.0.2.7",  # X.1: the address
        "552 5.2.2 bad host 192.0.2.7: over quota",  # X.2: the mailbox
        "554 5.6.0 bad host 192.0.2.7: content",  # X.6: the content
        "554 Connection from a seriously strange host 192.0.2.7",  # no block word stem
        "550 SPF check failed: bad host 192.0.2.7",  # a negative context
        "421 Too many connections from a bad host 192.0.2.7",  # a plain rate limit
    ],
)
def test_never_asked_outside_its_ground(text):
    # Even a word score that calls everything a block leaves these alone.
    eager = replace(RULES, wordscore=replace(MODEL, threshold=1e-9))
    assert _explain(text, eager).verdict is BounceVerdict.OTHER, text


def test_a_list_named_beside_it_is_reported():
    eager = replace(RULES, wordscore=replace(MODEL, threshold=1e-9))
    got = _explain("554 Connection from a seriously bad host per Spamhaus", eager)
    assert got.rule.startswith("wordscore:") and got.layer is Layer.GENERIC
    assert got.confidence is Confidence.LOW and got.provider == "Spamhaus"


def test_weighed_shows_placeholders_in_words():
    assert "<IP>" in MODEL.weighed("Your IP 192.0.2.1 is blocked", most=10)
    assert MODEL.weighed("", most=3) == []


# ─── a broken file is one line ───────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: "not json", "not JSON"),
        (lambda d: [], "expected a JSON object"),
        (lambda d: {**d, "chars": {}}, "'chars': expected a non-empty object"),
        (lambda d: {**d, "words": {"spam": [0, 1]}}, "'words' 'spam': expected [idf > 0"),
        (lambda d: {**d, "words": {"spam": "x"}}, "'words' 'spam': expected [idf > 0"),
        (lambda d: {**d, "intercept": "0"}, "'intercept': expected a number"),
        (lambda d: {**d, "threshold": 1.5}, "'threshold': expected a number between 0 and 1"),
        (lambda d: {**d, "gate": []}, "'gate': expected a list of lower-case word stems"),
        (lambda d: {**d, "gate": ["Spam"]}, "'gate': expected a list of lower-case word stems"),
    ],
)
def test_a_broken_file_is_one_line(change, message):
    changed = change(dict(SHIPPED))
    text = changed if isinstance(changed, str) else json.dumps(changed)
    with pytest.raises(CatalogError) as caught:
        ws.parse_wordscore(text, "lists/wordscore.json")
    assert str(caught.value).startswith("lists/wordscore.json: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
