"""The name lexicon and block wording of `lists/names.toml`: TOML → `Lexicon`, every promise of
that file's header checked at load; a mistake raises a one-line `CatalogError` naming the file
and the entry. The open-world layers of attribution (`openworld`) read it. [core] Pure: the
caller reads the file (`embedded_lexicon` reads the shipped one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from blmonitor.bounces.models import ListKind
from blmonitor.bounces.needles import minimal
from blmonitor.bounces.rules import (
    RulePattern,
    check_meta,
    check_pattern,
    check_url,
    embedded_needles,
)
from blmonitor.dnsbl.catalog import parse_list_toml, read_list_data
from blmonitor.errors import CatalogError

__all__ = ["Lexicon", "Name", "Phrases", "Wording", "embedded_lexicon", "load_lexicon", "name_key"]

_TOP_KEYS = {"meta", "wording", "name"}
_WORDING_KEYS = (
    "listed", "weak", "refusal", "deferral", "object", "reputation", "negative", "ratelimit"
)  # fmt: skip
_NAME_KEYS = {"id", "provider", "kind", "zone", "names", "hosts", "lookup", "delist_url", "source"}
_REQUIRED = ("id", "provider", "kind", "source")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9.&-]{0,62}$")
_HOST_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_KEY_RE = re.compile(r"[\W_]+")
# How many words (as the text splits them) a name may span: "uceprotect network level 1".
MAX_WORDS = 5


def name_key(text: str) -> str:
    """The form names are compared in: lower case, without spaces, dashes, dots or other marks
    ("UCEPROTECT-Level1", "uceprotect level 1" → "uceprotectlevel1")."""
    return _KEY_RE.sub("", text.lower())


@dataclass(frozen=True, slots=True)
class Name:
    """One list, vendor or provider a receiver may name."""

    id: str
    provider: str
    kind: ListKind
    source: str
    zone: str = ""
    names: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    lookup: bool = False
    delist_url: str = ""

    @property
    def list_id(self) -> str:
        """What attribution reports as the list: the catalog zone, else the id."""
        return self.zone or self.id


class Phrases:
    """The patterns of one kind of wording, each with its needles: only those whose needles
    the lower-cased text holds are tried (on an ASCII text, never one that starts with a letter
    outside ASCII). Compiled when first tried."""

    __slots__ = ("_by_needle", "_last", "_outside", "_unfiltered", "patterns")

    def __init__(
        self, patterns: Sequence[str], needles: Mapping[str, tuple[str, ...]] | None = None
    ) -> None:
        known = needles or {}
        self.patterns = tuple(
            RulePattern(p, compile_now=False, needles=known.get(p)) for p in patterns
        )
        by_needle: dict[str, list[int]] = {}
        unfiltered = []
        outside = []
        for i, (text, pattern) in enumerate(zip(patterns, self.patterns, strict=True)):
            if _outside_ascii(text):
                outside.append(i)  # never tried on an ASCII text
                continue
            if not pattern.needles:
                unfiltered.append(i)
            for needle in pattern.needles:
                by_needle.setdefault(needle, []).append(i)
        self._by_needle = tuple((n, tuple(i)) for n, i in by_needle.items())
        self._unfiltered = tuple(unfiltered)
        self._outside = tuple(outside)
        # The last text's answer (one text asks several times): (low, patterns), set at once.
        self._last: tuple[str, tuple[RulePattern, ...]] | None = None

    def live(self, low: str | None) -> tuple[RulePattern, ...]:
        """The patterns that may match the text whose folded form (needles.folded) is `low`
        (None: no pre-check, all of them)."""
        if low is None:
            return self.patterns
        last = self._last
        if last is not None and last[0] is low:
            return last[1]
        picked = {i for needle, found in self._by_needle if needle in low for i in found}
        picked.update(self._unfiltered)
        if not low.isascii():
            picked.update(self._outside)
        patterns = tuple(self.patterns[i] for i in sorted(picked))
        self._last = (low, patterns)
        return patterns

    def starts(self, text: str, low: str | None) -> list[int]:
        """Where any of the patterns matches, in order."""
        return sorted(m.start() for p in self.live(low) for m in islice(p.finditer(text), 24))

    def found(self, text: str, low: str | None, start: int = 0, end: int | None = None) -> bool:
        stop = len(text) if end is None else end
        return any(p.compiled.search(text, start, stop) for p in self.live(low))


@dataclass(frozen=True, slots=True)
class Wording:
    """The generic grammar: the patterns of each kind of wording (case ignored)."""

    listed: Phrases
    weak: Phrases
    refusal: Phrases
    deferral: Phrases
    object: Phrases
    reputation: Phrases
    negative: Phrases
    ratelimit: Phrases
    # Lower-case strings one of which an ASCII text holds if `listed`, `weak` or `reputation`
    # may match it (a pattern that starts with a letter outside ASCII cannot match such a
    # text); None: no such pre-check.
    needles: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Lexicon:
    names: tuple[Name, ...]
    wording: Wording
    source: str = ""
    # Derived: name key → entry (ASCII names, matched on the text's words), the names that are
    # not ASCII (matched as substrings: CJK text has no spaces), host → entry, id → entry.
    by_key: Mapping[str, Name] = field(init=False, repr=False, compare=False)
    # Every beginning of a key of `by_key`: a word that is none starts no name (a fast skip)
    key_starts: frozenset[str] = field(init=False, repr=False, compare=False)
    unspaced: tuple[tuple[str, Name], ...] = field(init=False, repr=False, compare=False)
    by_host: Mapping[str, Name] = field(init=False, repr=False, compare=False)
    by_id: Mapping[str, Name] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, Name] = {}
        unspaced: list[tuple[str, Name]] = []
        by_host: dict[str, Name] = {}
        for entry in self.names:
            for alias in entry.names:
                if alias.isascii():
                    by_key[name_key(alias)] = entry
                else:
                    unspaced.append((alias.lower(), entry))
            for host in entry.hosts:
                by_host[host] = entry
        object.__setattr__(self, "by_key", by_key)
        starts = {key[:n] for key in by_key for n in range(1, len(key) + 1)}
        object.__setattr__(self, "key_starts", frozenset(starts))
        object.__setattr__(self, "unspaced", tuple(unspaced))
        object.__setattr__(self, "by_host", by_host)
        object.__setattr__(self, "by_id", {n.id: n for n in self.names})

    def resolve(self, word: str) -> Name | None:
        """The entry a list id, name, host, zone or provider written in any form stands for."""
        low = word.strip().lower()
        if not low:
            return None
        if (hit := self.by_id.get(low) or self.by_host.get(low)) is not None:
            return hit
        if (hit := self.by_key.get(name_key(low))) is not None:
            return hit
        for entry in self.names:
            if low == entry.zone or name_key(low) == name_key(entry.provider):
                return entry
        return None


def embedded_lexicon(needles: Mapping[str, tuple[str, ...]] | None = None) -> Lexicon:
    """The lexicon shipped inside the package (or beside it, in a source checkout). Checked as
    any file is, but its patterns are compiled when first used (the tests compile every one);
    their needles from lists/needles.json (`needles`, else read here)."""
    text, source = read_list_data("names.toml")
    if needles is None:
        needles = embedded_needles()
    return load_lexicon(text, source=source, compile_now=False, needles=needles)


def load_lexicon(
    text: str,
    *,
    source: str,
    compile_now: bool = True,
    needles: Mapping[str, tuple[str, ...]] | None = None,
) -> Lexicon:
    """Parse and validate a name lexicon; every mistake names `source` and the entry.
    `compile_now=False`: compile each pattern when first used (for data the tests compile);
    `needles`: the patterns' needles already derived (rules.embedded_needles)."""
    data = parse_list_toml(text, source=source, keys=_TOP_KEYS)
    check_meta(data.get("meta", {}), source)
    wording = _parse_wording(data.get("wording"), source, compile_now, needles)
    raw = data.get("name")
    if not isinstance(raw, list) or not raw:
        raise CatalogError(source, "no [[name]] tables found")
    names = tuple(_parse_name(entry, source, i) for i, entry in enumerate(raw, 1))
    ids: set[str] = set()
    for entry in names:
        if entry.id in ids:
            raise CatalogError(source, f"name {entry.id}: the id appears twice")
        ids.add(entry.id)
    seen: dict[str, str] = {}
    for entry in names:
        for what, value in [("name", name_key(n)) for n in entry.names] + [
            ("host", h) for h in entry.hosts
        ]:
            key = f"{what}:{value}"
            if seen.get(key, entry.id) != entry.id:
                raise CatalogError(
                    source, f"name {entry.id}: {what} {value!r} already belongs to {seen[key]}"
                )
            seen[key] = entry.id
    return Lexicon(names=names, wording=wording, source=source)


def _parse_wording(
    raw: Any, source: str, compile_now: bool, known: Mapping[str, tuple[str, ...]] | None
) -> Wording:
    if not isinstance(raw, dict):
        raise CatalogError(source, "[wording] is missing or not a table")
    if unknown := set(raw) - set(_WORDING_KEYS):
        raise CatalogError(source, f"[wording]: unknown key(s) {', '.join(sorted(unknown))}")
    parts: dict[str, Phrases] = {}
    needles: set[str] | None = set()
    for key in _WORDING_KEYS:
        value = raw.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise CatalogError(source, f"[wording] {key}: expected a non-empty list of patterns")
        for pattern in value:
            check_pattern(pattern, f"[wording] {key}", source, compile_now=compile_now)
        parts[key] = Phrases(value, known)
        if key in ("listed", "weak", "reputation"):
            for compiled in parts[key].patterns:  # their needles, found once (RulePattern)
                if not _outside_ascii(compiled.pattern):
                    found = compiled.needles
                    needles = needles | set(found) if needles is not None and found else None
    return Wording(**parts, needles=minimal(needles) if needles is not None else None)


def _outside_ascii(pattern: str) -> bool:
    """Every match starts with a letter outside ASCII ('黑名单', 'черн(?:ый|ом) спис')."""
    return not pattern[0].isascii() and pattern[0].isalpha() and "|" not in pattern.split("(")[0]


def _parse_name(entry: Any, source: str, index: int) -> Name:
    if not isinstance(entry, dict):
        raise CatalogError(source, f"name #{index} is not a table")
    nid = str(entry.get("id", f"#{index}"))

    def fail(message: str) -> CatalogError:
        return CatalogError(source, f"name {nid}: {message}")

    if unknown := set(entry) - _NAME_KEYS:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))}")
    for key in _REQUIRED:
        if key not in entry:
            raise fail(f"missing key {key!r}")
    for key in ("id", "provider", "kind", "zone", "delist_url", "source"):
        if key in entry and not isinstance(entry[key], str):
            raise fail(f"{key!r} must be a string")
    if not _ID_RE.match(nid):
        raise fail("the id must be lower-case letters, digits, dots, '&' and dashes")
    for key in ("provider", "source"):
        if not entry[key].strip():
            raise fail(f"{key!r} is empty")
    try:
        kind = ListKind(entry["kind"])
    except ValueError:
        raise fail(f"kind {entry['kind']!r} is not one of {', '.join(ListKind)}") from None
    names = _words(entry.get("names", []), "names", fail)
    hosts = _words(entry.get("hosts", []), "hosts", fail)
    if not names and not hosts:
        raise fail("give at least one of 'names' and 'hosts'")
    for name in names:
        if len(name_key(name)) < 3 and name.isascii():
            raise fail(f"names: {name!r} is shorter than 3 letters or digits (too ambiguous)")
        if len(name.split()) > MAX_WORDS:
            raise fail(f"names: {name!r} has more than {MAX_WORDS} words")
    for host in hosts:
        if host != host.lower() or not _HOST_RE.match(host):
            raise fail(f"hosts: {host!r} is not a lower-case DNS name")
    zone = entry.get("zone", "")
    if zone and (zone != zone.lower() or not _HOST_RE.match(zone)):
        raise fail(f"zone {zone!r} is not a lower-case DNS name")
    lookup = entry.get("lookup", False)
    if not isinstance(lookup, bool):
        raise fail("'lookup' must be true or false")
    if lookup and not hosts:
        raise fail("'lookup' needs 'hosts' (the lookup pages' hosts)")
    delist_url = entry.get("delist_url", "")
    if delist_url:
        check_url(delist_url, fail)
    return Name(
        id=nid,
        provider=entry["provider"],
        kind=kind,
        source=entry["source"],
        zone=zone,
        names=names,
        hosts=hosts,
        lookup=lookup,
        delist_url=delist_url,
    )


def _words(value: Any, what: str, fail: Callable[[str], CatalogError]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(f"{what}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)
