"""The literal pre-check of the bounce readers and rules: 'needles', lower-case ASCII strings
one of which a text must hold, lower-cased, for a pattern (or a detector) to find anything.
Case-insensitive searches are slow in `re`; `str.__contains__` is fast. A pre-check never
changes a result: it only skips work that would find nothing. Pure.

Needles are declared (the detectors, `smtp.command_of`) or derived from a pattern's own text
by `required_literals`. The detectors pre-check ASCII texts only; the rules and the lexicon's
wording pre-check any text in its `folded` form: case-insensitive `re` matches an ASCII letter
with four characters outside ASCII ('İ' and 'ı' with 'i', 'ſ' with 's', 'K' (Kelvin) with 'k'),
which `str.lower()` alone does not all turn into that letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The last text `lowered` lower-cased, and its lower case (one tuple: rebinding it is atomic).
_LOWERED: tuple[str, str] = ("", "")


def lowered(text: str) -> str:
    """`text.lower()`, without doing it again for the text lowered just before (a message's
    text is pre-checked by every detector, then searched by some)."""
    global _LOWERED
    last = _LOWERED
    if last[0] is not text:
        last = _LOWERED = (text, text.lower())
    return last[1]


# The characters outside ASCII that case-insensitive `re` matches with an ASCII letter and
# that `str.lower()` does not turn into it (or turns into two characters: 'İ' -> 'i̇');
# Kelvin's 'K' lowers to 'k' by itself. (tests/test_needles.py checks every code point.)
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


def folded(text: str) -> str:
    """`text` lower-cased so that every ASCII needle of a case-insensitive match of a pattern
    on `text` is a substring of it (the same length as `text`)."""
    return text.lower() if text.isascii() else text.translate(_FOLD).lower()


def may_hold(needles: Iterable[str], low: str | None) -> bool:
    """False only when `low` (a lower-cased ASCII text; None: not ASCII) holds none of
    `needles`; no needles at all means no pre-check."""
    if low is None:
        return True
    found = False
    for needle in needles:
        if needle in low:
            return True
        found = True
    return not found


def search_if(literal: str, pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """`pattern.search(text)` when `text` holds `literal` (as it is: a literal part of every
    match of a case-sensitive pattern), else None without a search."""
    return pattern.search(text) if literal in text else None


def search_at(
    pattern: re.Pattern[str], text: str, anchors: tuple[str, ...]
) -> re.Match[str] | None:
    """`pattern.search(text)` for a case-insensitive pattern whose every match starts with one
    of `anchors`: on ASCII text only the places where one occurs are tried (str.find is much
    faster than a case-insensitive scan), in order, so the first match is the same."""
    if not text.isascii():
        return pattern.search(text)
    low = lowered(text)
    starts: list[int] = []
    for anchor in anchors:
        i = low.find(anchor)
        while i >= 0:
            starts.append(i)
            i = low.find(anchor, i + 1)
    for i in sorted(starts):
        if m := pattern.match(text, i):
            return m
    return None


def minimal(needles: Iterable[str]) -> tuple[str, ...]:
    """One of {"ab", "xaby"} is present exactly when "ab" is: keep the shorter."""
    found = set(needles)
    return tuple(sorted(n for n in found if not any(m != n and m in n for m in found)))


# ─── needles derived from a pattern's text ────────────────────────────────────────────────
# A small reader of Python's regular-expression syntax, enough to tell which runs of literal
# characters every match must cross. What it does not know (inline flags, conditionals, numbered
# back-references, \x escapes…) gives no needles, so the pattern is always tried: it may be
# weaker than a full parse, never wrong. The pattern must already compile.

_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")
_ESCAPED = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_ZERO_WIDTH = "bBAZ"
_CLASSES = "dDsSwW"

# An item of a read sequence: a literal (lower-case ASCII) character; a zero-width anchor;
# a group of alternatives (each a sequence) that must match at least once; anything else.
_Item = tuple[str, object]


class _Unreadable(Exception):
    """The pattern uses syntax the reader does not follow: derive no needles."""


# ─── the shipped table of derived needles (lists/needles.json) ────────────────────────────

NEEDLE_TABLE = "needles.json"


def read_needle_table(text: str) -> dict[str, tuple[str, ...]]:
    """pattern → needles from the text of lists/needles.json; {} for a text that is not such a
    table (the needles are then derived, as without it)."""
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return {}
    table = data.get("needles") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        return {}
    return {
        p: tuple(n)
        for p, n in table.items()
        if isinstance(p, str) and isinstance(n, list) and all(isinstance(x, str) and x for x in n)
    }


def write_needle_table(patterns: Iterable[str]) -> str:
    """The text of lists/needles.json for `patterns`: one line per pattern, sorted."""
    import json

    rows = [
        f"{json.dumps(p)}: {json.dumps(list(required_literals(p)))}" for p in sorted(set(patterns))
    ]
    return '{"version": 1, "needles": {\n' + ",\n".join(rows) + "\n}}\n"


def required_literals(pattern: str) -> tuple[str, ...]:
    """Lower-case ASCII strings one of which every match of the case-insensitive `pattern` on
    an ASCII text holds, lower-cased: the strongest set found (longest shortest string); ()
    when there is none."""
    try:
        branches, end = _alternatives(pattern, 0)
    except _Unreadable:
        return ()
    if end != len(pattern):
        return ()
    found = _required([("group", branches)])
    return minimal(found) if found else ()


def _alternatives(p: str, i: int) -> tuple[list[list[_Item]], int]:
    """The branches from `i` up to an unmatched ')' or the end, and where they stop."""
    branches: list[list[_Item]] = []
    items: list[_Item] = []
    while i < len(p) and p[i] != ")":
        if p[i] == "|":
            branches.append(items)
            items = []
            i += 1
            continue
        item, i = _atom(p, i)
        item, i = _quantified(p, i, item)
        items.append(item)
    branches.append(items)
    return branches, i


def _atom(p: str, i: int) -> tuple[_Item, int]:
    c = p[i]
    if c == "\\":
        if i + 1 >= len(p):
            raise _Unreadable
        e = p[i + 1]
        if e in _ZERO_WIDTH:
            return ("zero", None), i + 2
        if e in _CLASSES:
            return ("other", None), i + 2
        if e in _ESCAPED:
            return ("literal", _ESCAPED[e]), i + 2
        if e.isascii() and e.isalnum():
            raise _Unreadable  # \x.., \u…, \N{…}, \1…: not followed
        return _literal(e), i + 2
    if c == "[":
        return ("other", None), _class_end(p, i)
    if c == "(":
        return _group(p, i)
    if c in ".":
        return ("other", None), i + 1
    if c in "^$":
        return ("zero", None), i + 1
    if c in "*+?":
        raise _Unreadable  # a quantifier with nothing to repeat: not a pattern that compiles
    return _literal(c), i + 1


def _literal(c: str) -> _Item:
    return ("literal", c.lower()) if c.isascii() else ("other", None)


def _class_end(p: str, i: int) -> int:
    """The offset after the character class that starts at `p[i]` ('[')."""
    i += 1
    if i < len(p) and p[i] == "^":
        i += 1
    if i < len(p) and p[i] == "]":
        i += 1  # a ']' first is a member
    while i < len(p) and p[i] != "]":
        i += 2 if p[i] == "\\" else 1
    if i >= len(p):
        raise _Unreadable
    return i + 1


def _group(p: str, i: int) -> tuple[_Item, int]:
    if p.startswith("(?", i):
        head = p[i + 2 : i + 4]
        if head.startswith(":") or head.startswith(">"):
            start, kind = i + 3, "group"
        elif head.startswith("P<"):
            close = p.find(">", i)
            if close < 0:
                raise _Unreadable
            start, kind = close + 1, "group"
        elif head.startswith("=") or head.startswith("!"):
            start, kind = i + 3, "other"  # a look-ahead: nothing of its own is required
        elif head in ("<=", "<!"):
            start, kind = i + 4, "other"
        else:
            raise _Unreadable  # inline flags, (?P=…), (?#…), conditionals
    else:
        start, kind = i + 1, "group"
    branches, end = _alternatives(p, start)
    if end >= len(p):
        raise _Unreadable
    return (kind, branches if kind == "group" else None), end + 1


def _quantified(p: str, i: int, item: _Item) -> tuple[_Item, int]:
    """`item`, or what it becomes under the quantifier at `p[i]`: required only when the
    quantifier asks for at least one."""
    least: int | None = None
    if i < len(p) and p[i] in "*?":
        least, i = 0, i + 1
    elif i < len(p) and p[i] == "+":
        least, i = 1, i + 1
    elif i < len(p) and p[i] == "{" and (m := _QUANTIFIER.match(p, i)) and (m[1] or m[2]):
        least, i = int(m[1] or 0), m.end()
    if least is None:
        return item, i
    if i < len(p) and p[i] in "?+":
        i += 1  # lazy or possessive: the same characters are required
    if least == 0 or item[0] in ("zero", "other"):
        return ("other", None), i
    # Repeated: its needles still hold, but the characters around it are no longer adjacent.
    return ("repeat", [[item]]), i


def _required(items: list[_Item]) -> frozenset[str] | None:
    """Of a read sequence: a set of lower-case ASCII strings, one of which every match holds,
    the strongest found (longest shortest string); None when there is none."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def keep(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or _strength(found) > _strength(best)):
            best = found

    for kind, value in _inlined(items):
        if kind == "literal":
            assert isinstance(value, str)
            run.append(value)
            continue
        if kind == "zero":  # ^, $, \b: the characters around it are adjacent
            continue
        if run:
            keep(frozenset(("".join(run),)))
            run = []
        if kind in ("group", "repeat"):  # one needle of every alternative
            assert isinstance(value, list)
            alternatives = [_required(branch) for branch in value]
            found = [a for a in alternatives if a]
            if len(found) == len(alternatives):
                keep(frozenset().union(*found))
    if run:
        keep(frozenset(("".join(run),)))
    return best


def _inlined(items: list[_Item]) -> list[_Item]:
    """The items of a sequence with each group of one branch in line: such a group matches
    what its content matches, where it stands."""
    out: list[_Item] = []
    for kind, value in items:
        if kind == "group" and isinstance(value, list) and len(value) == 1:
            out.extend(_inlined(value[0]))
        else:
            out.append((kind, value))
    return out


def _strength(needles: frozenset[str]) -> tuple[int, int]:
    return min(len(n) for n in needles), -len(needles)


if __name__ == "__main__":  # python3 -m blmonitor.bounces.needles > lists/needles.json
    from blmonitor.bounces.rules import shipped_patterns

    print(write_needle_table(shipped_patterns()), end="")
