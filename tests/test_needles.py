"""The literal pre-check (blmonitor.bounces.needles): needles read from a pattern's text, and
checks that never change a result."""

from __future__ import annotations

import random
import re
import tomllib
from pathlib import Path

import pytest

from blmonitor.bounces.needles import may_hold, minimal, required_literals, search_at
from blmonitor.bounces.rules import embedded_rules

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("pattern", "needles"),
    [
        (r"blocked using (?P<zone>[a-z0-9.-]{3,50})", ("blocked using ",)),
        (r"\bSpamhaus\b", ("spamhaus",)),
        (r"a\.b", ("a.b",)),
        (r"abc+d", ("ab",)),  # the repeated 'c' ends the run
        (r"a?bcd", ("bcd",)),
        (r"x{2,3}yz", ("yz",)),
        (r"x{0,3}yz", ("yz",)),
        (r"\d+ blocked", (" blocked",)),
        (r"(?:foo|barbaz) x", ("barbaz", "foo")),  # one of every alternative
        (r"foo|barbaz", ("barbaz", "foo")),
        (r"(?:foo|\d+) xyz", (" xyz",)),  # an alternative without a literal: not that group
        (r"foo(?:bar)?baz", ("foo",)),
        (r"(?:ab)+cd", ("ab",)),  # the first of equal strength
        (r"(?P<x>abc)+", ("abc",)),
        (r"(?=abc)abd", ("abd",)),
        (r"(?<!x)abc", ("abc",)),
        (r"é+ blocked", (" blocked",)),  # not ASCII: no needle of its own
        (r"^550 5\.7\.1$", ("550 5.7.1",)),
        (r"a\nb", ("a\nb",)),
        (r"[abc]+", ()),
        (r".{0,8}", ()),
        (r"(?i)abc", ()),  # inline flags: not followed, always tried
        (r"x\x41yz", ()),  # \x escapes: not followed
        (r"(a)\1", ()),  # back-references: not followed
    ],
)
def test_required_literals(pattern: str, needles: tuple[str, ...]) -> None:
    re.compile(pattern)
    assert required_literals(pattern) == needles


def test_minimal_and_may_hold() -> None:
    assert minimal(["ab", "xaby", "cd"]) == ("ab", "cd")
    assert may_hold(("ab",), None)  # not ASCII: always try
    assert may_hold((), "anything")  # no needles: no pre-check
    assert may_hold(("ab", "cd"), "xxcdxx")
    assert not may_hold(("ab", "cd"), "xxxx")


def _texts() -> list[str]:
    rows = tomllib.loads((DATA / "rejections.toml").read_text("utf-8"))["row"]
    texts = [row["text"] for row in rows]
    rng = random.Random(5)
    words = " ".join(texts).split()
    texts += [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 30))) for _ in range(500)]
    return texts


TEXTS = _texts()


def test_rule_needles_never_skip_a_match() -> None:
    rules = embedded_rules()
    patterns = [p for r in rules.rules for p in (*r.patterns, *r.unless, *r.remote_mta)]
    patterns += [*rules.ip_slots, *rules.domain_slots, *rules.zone_slots]
    missed = [
        (p.pattern, text)
        for p in patterns
        for text in TEXTS
        if text.isascii() and p.search(text) and not p.may_match(text.lower())
    ]
    assert missed == []
    assert sum(1 for p in patterns if p.needles) > 100


def test_search_at_finds_what_search_finds() -> None:
    pattern = re.compile(r"(?:following address|could not be delivered)[^\n]{0,20}", re.I)
    anchors = ("following address", "could not be delivered")
    rng = random.Random(3)
    pieces = ["Following Address", "could NOT be delivered", "x", "\n", " ", "é", "follow"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12)))
        got, want = search_at(pattern, text, anchors), pattern.search(text)
        assert (got and got.span()) == (want and want.span()), text


# ─── lists/needles.json: the shipped patterns' needles, derived once ────────────────────


def test_the_shipped_needle_table_is_what_the_oracle_derives() -> None:
    from blmonitor.bounces.needles import NEEDLE_TABLE, read_needle_table
    from blmonitor.bounces.rules import shipped_patterns
    from blmonitor.dnsbl.catalog import read_list_data

    table = read_needle_table(read_list_data(NEEDLE_TABLE)[0])
    wrong = {p: n for p, n in table.items() if n != required_literals(p)}
    assert not wrong, f"stale needles: {wrong}"
    missing = sorted(set(shipped_patterns()) - set(table))
    assert not missing, (
        f"{len(missing)} shipped pattern(s) not in lists/needles.json (they are derived at every "
        "start): python3 -m blmonitor.bounces.needles > lists/needles.json"
    )


def test_the_loaded_patterns_have_the_oracles_needles() -> None:
    rules = embedded_rules()
    assert rules.lexicon is not None
    patterns = [p for rule in rules.rules for p in rule.patterns]
    patterns += [p for p in rules.lexicon.wording.negative.patterns]
    assert all(p.needles == required_literals(p.pattern) for p in patterns)


def test_a_pattern_the_table_lacks_is_derived_and_a_bad_table_is_no_table() -> None:
    from blmonitor.bounces.needles import read_needle_table, write_needle_table
    from blmonitor.bounces.rules import RulePattern

    table = read_needle_table(write_needle_table([r"\bfoo bar\b"]))
    assert table == {r"\bfoo bar\b": ("foo bar",)}
    assert RulePattern(r"blocked using x", needles=table.get(r"blocked using x")).needles == (
        "blocked using x",
    )
    for text in ("", "not json", "[1, 2]", '{"needles": []}', '{"needles": {"a": [1]}}'):
        assert read_needle_table(text) == {}


# ─── texts outside ASCII: pre-checked in their folded form ──────────────────────────────


def test_folding_covers_every_character_re_matches_with_an_ascii_letter() -> None:
    from blmonitor.bounces.needles import folded

    letter = re.compile("[a-z]", re.IGNORECASE)
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if letter.fullmatch(c):
            # re matches it with an ASCII letter: folding must give that letter (one character)
            assert folded(c) in {x.lower() for x in "abcdefghijklmnopqrstuvwxyz"}, hex(cp)
        assert len(folded("x" + c)) == 2, hex(cp)  # the same length: offsets keep their meaning


def _texts_outside_ascii() -> list[str]:
    rows = []
    for path in sorted((Path(__file__).parent.parent / "bench" / "rejections").glob("dev*.toml")):
        rows += [str(r["text"]) for r in tomllib.loads(path.read_text("utf-8"))["text"]]
    texts = [t for t in rows if not t.isascii()]
    # ASCII texts made non-ASCII by the four characters re matches with an ASCII letter
    swap = str.maketrans({"i": "\u0131", "I": "\u0130", "s": "\u017f", "k": "\u212a"})
    texts += [t.translate(swap) + " é" for t in rows[::7]]
    return texts


def test_a_pattern_that_matches_a_text_outside_ascii_is_never_skipped() -> None:
    from blmonitor.bounces.attribution import _candidates
    from blmonitor.bounces.needles import folded

    rules = embedded_rules()
    assert rules.lexicon is not None
    wording = rules.lexicon.wording
    kinds = [getattr(wording, k) for k in ("listed", "weak", "refusal", "deferral", "object")]
    kinds += [getattr(wording, k) for k in ("reputation", "negative", "ratelimit")]
    texts = _texts_outside_ascii()
    assert len(texts) > 100
    for text in texts:
        low = folded(text)
        candidates = set(map(id, _candidates(rules, low, "")))
        for rule in rules.rules:
            if any(p.compiled.search(text) for p in rule.patterns) and not rule.remote_mta:
                assert id(rule) in candidates, (rule.id, text)
            for p in (*rule.patterns, *rule.unless):
                assert p.may_match(low) or not p.compiled.search(text), (p.pattern, text)
        for phrases in kinds:
            live = set(map(id, phrases.live(low)))
            for p in phrases.patterns:
                assert id(p) in live or not p.compiled.search(text), (p.pattern, text)


def test_the_last_texts_live_patterns_are_kept_for_that_text_only():
    from blmonitor.bounces.lexicon import Phrases

    phrases = Phrases([r"\bblocked\b", r"\blisted\b", r"spam"])
    one, two = "ip blocked", "ip listed as spam"
    assert [p.pattern for p in phrases.live(one)] == [r"\bblocked\b"]
    assert [p.pattern for p in phrases.live(two)] == [r"\blisted\b", "spam"]
    assert phrases.live(two) is phrases.live(two)  # (kept: asked again for the same text)
    # an equal text that is another object is worked out again, the same
    again = "".join(["ip ", "blocked"])
    assert again == one and again is not one
    assert [p.pattern for p in phrases.live(again)] == [r"\bblocked\b"]
    assert phrases.live(None) == phrases.patterns
