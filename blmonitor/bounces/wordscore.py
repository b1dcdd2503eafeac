"""The generic layer's word score: how much a text is worded like the block texts people posted.

`lists/wordscore.json` holds a logistic regression over tf-idf weighted character n-grams (2-5,
inside words) and words (1-2) of the normalised text, trained by `scripts/train-wordscore` on
the opened rejection sets of `bench/rejections/` (held-out sets are never read). This module
only reads the weights and scores a text, in plain Python: no library, no file but the one
shipped, and the same arithmetic as the trainer's (the file carries texts with the trainer's
scores, and the tests check every one).

The score is the last resort of the generic layer: a text no rule, name or grammar took for a
block, that names no negative context (SPF, mailbox, content…) and holds one of the file's
block word stems (its gate), is called a block when its score reaches the file's threshold —
with low confidence, and the words that weighed most.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise

from blmonitor.dnsbl.catalog import read_list_data
from blmonitor.errors import CatalogError

_EMAIL_RE = re.compile(r"\S+@\S+")
_IPV4_RE = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_DIGITS_RE = re.compile(r"\d+")
# The longest text of the training sets has 589 characters: a text is scored on its first 1,024
# (a hostile text of 8 KB costs no more than that).
SCORED = 1024
_CACHED_WORDS = 20_000
_WORD_RE = re.compile(r"(?u)\b\w\w+\b")  # (a word of two or more word characters)
_PUNCTUATION = "\"'.,;:!?()[]<>{}"
_SHOWN = {"zip": "<IP>", "zemail": "<address>"}  # (the normalised text's placeholders)


@dataclass(frozen=True, slots=True)
class WordScore:
    """The weights: per feature its idf and its coefficient."""

    chars: Mapping[str, tuple[float, float]]
    words: Mapping[str, tuple[float, float]]
    intercept: float
    threshold: float
    gate: tuple[str, ...]  # word stems (lower case): a text with none is never scored
    source: str = "wordscore.json"
    # Each word seen, with its character n-grams that are features (words repeat from text
    # to text: "rejected", "your", "the"); bounded.
    _grams: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def gated(self, low: str) -> bool:
        """Whether the lower-cased `low` holds a stem of the gate (only then is it scored)."""
        return any(stem in low for stem in self.gate)

    def score(self, text: str) -> float:
        """The probability the trainer would give that `text` is a block text (0..1); a text
        longer than any it learned from is scored on its first SCORED characters."""
        return _logistic(self._sum(normalised(text[:SCORED]))[0])

    def weighed(self, text: str, most: int = 3) -> list[str]:
        """The words of `text` (or pairs of words) that pushed it most towards a block,
        strongest first: a word's push is that of its own character n-grams and of itself."""
        low = normalised(text[:SCORED])
        _, chars, words = self._sum(low)
        counts = Counter(char_grams(low))
        push: dict[str, float] = {}
        for word in low.split():
            shown = word.strip(_PUNCTUATION) or word
            for gram in char_grams(word):
                if gram in chars:
                    push[shown] = push.get(shown, 0.0) + chars[gram] / counts[gram]
        for gram, value in words.items():
            push[gram] = push.get(gram, 0.0) + value
        strongest = sorted(push.items(), key=lambda item: -item[1])[:most]
        return [_SHOWN.get(gram, gram) for gram, value in strongest if value > 0]

    def _sum(self, low: str) -> tuple[float, dict[str, float], dict[str, float]]:
        """The logit of `low`, and what each character n-gram and each word added to it."""
        total = self.intercept
        pushes: tuple[dict[str, float], dict[str, float]] = ({}, {})
        tables = (
            (self._char_counts(low), self.chars),
            (Counter(g for g in word_grams(low) if g in self.words), self.words),
        )
        for (counts, table), added in zip(tables, pushes, strict=True):
            if not counts:
                continue
            weights = {g: (1.0 + math.log(n)) * table[g][0] for g, n in counts.items()}
            norm = math.sqrt(sum(w * w for w in weights.values()))
            for g, w in weights.items():
                added[g] = w / norm * table[g][1]
                total += added[g]
        return total, *pushes

    def _char_counts(self, low: str) -> Counter[str]:
        """The features among the character n-grams of `low`, counted: `char_grams(low)`
        filtered, word by word through the cache."""
        counts: Counter[str] = Counter()
        for word in low.split():
            grams = self._grams.get(word)
            if grams is None:
                grams = tuple(g for g in char_grams(word) if g in self.chars)
                if len(self._grams) < _CACHED_WORDS:
                    self._grams[word] = grams
            counts.update(grams)
        return counts


def normalised(text: str) -> str:
    """Lower case; e-mail addresses, IPv4 literals and digits replaced (as the trainer does)."""
    low = _EMAIL_RE.sub(" zemail ", text.lower())
    return _DIGITS_RE.sub("0", _IPV4_RE.sub(" zip ", low))


def char_grams(low: str) -> Iterator[str]:
    """Character n-grams of 2 to 5 inside each word padded with a space (a word shorter than
    n gives itself once, and no longer grams)."""
    for word in low.split():
        padded = f" {word} "
        size = len(padded)
        for n in range(2, 6):
            if size <= n:
                yield padded
                break
            for start in range(size - n + 1):
                yield padded[start : start + n]


def word_grams(low: str) -> Iterator[str]:
    """Words and pairs of adjacent words."""
    words = _WORD_RE.findall(low)
    yield from words
    yield from (f"{a} {b}" for a, b in pairwise(words))


def _logistic(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@cache
def embedded_wordscore() -> WordScore:
    """The shipped weights (read once)."""
    text, source = read_list_data("wordscore.json")
    return parse_wordscore(text, source)


def parse_wordscore(text: str, source: str) -> WordScore:
    """JSON → WordScore; a malformed file is one CatalogError naming what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise CatalogError(source, f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise CatalogError(source, "expected a JSON object")
    tables = {}
    for key in ("chars", "words"):
        table = data.get(key)
        if not isinstance(table, dict) or not table:
            raise CatalogError(source, f"{key!r}: expected a non-empty object of features")
        for gram, pair in table.items():
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(v, (int, float)) for v in pair)
                and pair[0] > 0
            ):
                raise CatalogError(source, f"{key!r} {gram!r}: expected [idf > 0, coefficient]")
        tables[key] = {g: (float(p[0]), float(p[1])) for g, p in table.items()}
    intercept, threshold = data.get("intercept"), data.get("threshold")
    if not isinstance(intercept, (int, float)):
        raise CatalogError(source, "'intercept': expected a number")
    if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
        raise CatalogError(source, "'threshold': expected a number between 0 and 1")
    gate = data.get("gate")
    if not (
        isinstance(gate, list)
        and gate
        and all(isinstance(stem, str) and stem and stem == stem.lower() for stem in gate)
    ):
        raise CatalogError(source, "'gate': expected a list of lower-case word stems")
    return WordScore(
        chars=tables["chars"],
        words=tables["words"],
        intercept=float(intercept),
        threshold=float(threshold),
        gate=tuple(gate),
        source=source,
    )
