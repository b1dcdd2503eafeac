"""The bounce rules of `lists/bounces.toml`: TOML → `Rules`, every promise of that file's header
and of `lists/README.md` checked at load. A mistake raises a one-line `CatalogError` that names
the file and the rule. Each pattern is compiled once, at load, and carries the needles of the
literal pre-check (`needles.required_literals`). Pure: the caller reads the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from blmonitor.bounces.models import BounceVerdict, ListKind
from blmonitor.bounces.needles import (
    NEEDLE_TABLE,
    minimal,
    read_needle_table,
    required_literals,
)
from blmonitor.dnsbl.catalog import parse_list_toml, read_list_data
from blmonitor.errors import CatalogError

if TYPE_CHECKING:
    from blmonitor.bounces.lexicon import Lexicon
    from blmonitor.bounces.wordscore import WordScore

__all__ = [
    "Rule", "RulePattern", "Rules", "check_pattern", "check_url", "embedded_rules", "load_rules",
]  # fmt: skip

RANK = {
    BounceVerdict.RECEIVER_ERROR: 0,
    BounceVerdict.LISTED: 1,
    BounceVerdict.REPUTATION: 2,
    BounceVerdict.OTHER: 3,
}
_MACROS = {
    "{IP}": r"(?P<ip>[0-9a-f][0-9a-f:.]{5,44})",
    "{ZONE}": r"(?P<zone>[a-z0-9][a-z0-9.-]{1,251}[a-z0-9])",
    "{DOMAIN}": r"(?P<domain>[a-z0-9][a-z0-9.-]{1,251}[a-z0-9])",
}
_TOP_KEYS = {"meta", "slots", "rule"}
_META_KEYS = {"version", "updated"}
_SLOT_GROUPS = {"ip": "ip", "domain": "domain", "zone": "zone"}
_RULE_KEYS = {
    "id", "source", "provider", "kind", "verdict", "meaning", "list", "zone", "temporary",
    "delist_url", "match", "unless", "remote_mta", "codes", "bits", "zone_like", "zone_known",
}  # fmt: skip
_REQUIRED = ("id", "source", "kind", "verdict", "meaning", "match")
_TEXT_KEYS = ("source", "provider", "meaning", "list", "zone", "delist_url", "zone_like")
_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_ZONE_RE = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_URL_RE = re.compile(r"^(?:https?://[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?(?:[/?#]\S*)?|mailto:\S+@\S+)$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDERS = {"ip", "domain", "target"}
_CODE_RE = re.compile(r"^(?:\d+-\d+|[a-z0-9][a-z0-9._-]*)$")
_MACRO_RE = re.compile(r"\{[A-Z][A-Z_]*\}")
# "Keep regexes linear": an unbounded '.*' or '.+' (a class or an escaped dot aside), or a
# repeated group that itself holds an unbounded repeat, can make a hostile text slow.
_UNBOUNDED_DOT = re.compile(r"(?<![\\\[])\.[*+]")
_NESTED_REPEAT = re.compile(r"\([^()]*(?<!\\)[*+][^()]*\)[*+{]")
_GROUP_NAME = re.compile(r"(?<!\\)\(\?P<(\w+)>")


class RulePattern:
    """One regular expression of the rules (macros expanded, case ignored), with its `needles`:
    lower-case ASCII strings one of which the lower-cased text holds if the pattern matches an
    ASCII text (() when none is known), and the names of its groups. Compiled when the rules
    are loaded (a mistake is reported then), or, with `compile_now=False`, the first time a
    text is tried against it (most patterns are never needed in a short run, and compiling is
    the larger part of loading the rules)."""

    __slots__ = ("_compiled", "groups", "needles", "pattern")

    def __init__(
        self, pattern: str, *, compile_now: bool = True, needles: tuple[str, ...] | None = None
    ) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None
        if compile_now:
            self._compiled = re.compile(pattern, re.IGNORECASE)  # raises re.error on a mistake
        self.groups: frozenset[str] = (
            frozenset(self._compiled.groupindex)
            if self._compiled is not None
            else frozenset(_GROUP_NAME.findall(pattern))
        )
        # (`needles`: the pattern's needles as lists/needles.json gives them, already derived)
        self.needles: tuple[str, ...] = (
            needles if needles is not None else required_literals(pattern)
        )

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, re.IGNORECASE)
        return self._compiled

    def may_match(self, low: str | None) -> bool:
        """False only when the pattern surely does not match the text whose lower-cased form
        is `low` (None: the text is not ASCII, no pre-check)."""
        return low is None or not self.needles or any(n in low for n in self.needles)

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RulePattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"RulePattern({self.pattern!r})"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of lists/bounces.toml, its patterns parsed (and compiled when first needed)."""

    id: str
    source: str
    provider: str
    kind: ListKind
    verdict: BounceVerdict
    meaning: str
    patterns: tuple[RulePattern, ...]
    list: str = ""
    zone: str = ""
    temporary: bool | None = None
    delist_url: str = ""
    unless: tuple[RulePattern, ...] = ()
    remote_mta: tuple[RulePattern, ...] = ()
    codes: tuple[str, ...] = ()
    bits: tuple[tuple[int, str], ...] = ()
    zone_like: RulePattern | None = None
    zone_known: bool = False
    # Derived from the patterns' needles: the rule can only match an ASCII text whose
    # lower-cased form holds one of `needles`, and its remote_mta condition only holds when
    # the lower-cased remote MTA or text holds one of `remote_needles`. () = no such pre-check.
    needles: tuple[str, ...] = field(init=False, repr=False, compare=False)
    remote_needles: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needles", _rule_needles(self.patterns))
        object.__setattr__(self, "remote_needles", _rule_needles(self.remote_mta))


@dataclass(frozen=True, slots=True)
class Rules:
    """All rules in precedence order, and the slots a listed IP or domain is read from."""

    rules: tuple[Rule, ...]
    ip_slots: tuple[RulePattern, ...] = ()
    domain_slots: tuple[RulePattern, ...] = ()
    zone_slots: tuple[RulePattern, ...] = ()
    source: str = ""
    by_id: Mapping[str, Rule] = field(default_factory=dict)
    # The names and block wording of the open-world layers (lists/names.toml); None: only the
    # specific rules decide (a closed world, as a rules file of your own alone gives).
    lexicon: Lexicon | None = None
    # The generic layer's last resort (lists/wordscore.json): a text worded like the block
    # texts it was trained on; None: no score (only with a lexicon does it run).
    wordscore: WordScore | None = None
    # Derived, for the pre-check in `attribute`: every needle of any rule, with the positions
    # (in `rules`) of the rules that name it, and the positions of the rules without needles.
    by_needle: Mapping[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    unfiltered: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_needle: dict[str, list[int]] = {}
        unfiltered = set()
        for i, rule in enumerate(self.rules):
            if not rule.needles:
                unfiltered.add(i)
            for needle in rule.needles:
                by_needle.setdefault(needle, []).append(i)
        object.__setattr__(self, "by_needle", {k: tuple(v) for k, v in by_needle.items()})
        object.__setattr__(self, "unfiltered", frozenset(unfiltered))


def embedded_rules() -> Rules:
    """The rules shipped inside the package (or beside it, in a source checkout). Checked as
    any file is, but its patterns are compiled when first used: the tests compile every one
    (tests/test_attribution.py), and a short run then does not pay for the patterns it never
    needs."""
    from dataclasses import replace

    from blmonitor.bounces.lexicon import embedded_lexicon
    from blmonitor.bounces.wordscore import embedded_wordscore

    text, source = read_list_data("bounces.toml")
    known = embedded_needles()
    return replace(
        load_rules(text, source=source, compile_now=False, needles=known),
        lexicon=embedded_lexicon(known),
        wordscore=embedded_wordscore(),
    )


def embedded_needles() -> Mapping[str, tuple[str, ...]]:
    """The needles of the shipped patterns as lists/needles.json holds them (deriving them is a
    third of loading the rules), keyed by each pattern's own text: a pattern edited since the
    table was written is derived again, never given stale needles. Empty without the table.
    Written by `python3 -m blmonitor.bounces.needles`; tests/test_needles.py checks every entry
    against `required_literals`, the oracle, and that it is complete."""
    try:
        text, _ = read_list_data(NEEDLE_TABLE)
    except CatalogError:
        return {}
    return read_needle_table(text)


def shipped_patterns() -> list[str]:
    """Every pattern of the shipped rules and lexicon as it is compiled (macros expanded): the
    keys of lists/needles.json."""
    rules = embedded_rules()
    found = [p.pattern for p in (*rules.ip_slots, *rules.domain_slots, *rules.zone_slots)]
    for rule in rules.rules:
        found.extend(p.pattern for p in (*rule.patterns, *rule.unless, *rule.remote_mta))
        if rule.zone_like is not None:
            found.append(rule.zone_like.pattern)
    if rules.lexicon is not None:
        wording = rules.lexicon.wording
        for kind in fields(wording):
            phrases = getattr(wording, kind.name)
            found.extend(p.pattern for p in getattr(phrases, "patterns", ()))
    return found


def load_rules(
    text: str,
    *,
    source: str,
    compile_now: bool = True,
    needles: Mapping[str, tuple[str, ...]] | None = None,
) -> Rules:
    """Parse and validate bounce rules; every mistake names `source` and the rule.
    `compile_now=False`: compile each pattern when first used (for data the tests compile);
    `needles`: the patterns' needles already derived (embedded_needles)."""
    known = needles or {}
    data = parse_list_toml(text, source=source, keys=_TOP_KEYS)
    check_meta(data.get("meta", {}), source)
    raw = data.get("rule")
    if not isinstance(raw, list) or not raw:
        raise CatalogError(source, "no [[rule]] tables found")
    slots = data.get("slots", {})
    if not isinstance(slots, dict):
        raise CatalogError(source, "[slots] is not a table")
    unknown = set(slots) - set(_SLOT_GROUPS)
    if unknown:
        raise CatalogError(source, f"[slots]: unknown key(s) {', '.join(sorted(unknown))}")

    def slot(name: str) -> tuple[RulePattern, ...]:
        group = _SLOT_GROUPS[name]
        out = []
        for pattern in _strings(slots.get(name, []), f"slots.{name}", source):
            compiled = _compile(pattern, f"slots.{name}", source, compile_now, known)
            if group not in compiled.groups:
                raise CatalogError(source, f"slots.{name}: {pattern!r} has no {{{group.upper()}}}")
            out.append(compiled)
        return tuple(out)

    rules = [_parse_rule(entry, source, i, compile_now, known) for i, entry in enumerate(raw, 1)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise CatalogError(source, f"rule {rule.id}: the id appears twice")
        seen.add(rule.id)
    ordered = tuple(sorted(rules, key=lambda r: RANK[r.verdict]))  # stable: file order kept
    return Rules(
        rules=ordered,
        ip_slots=slot("ip"),
        domain_slots=slot("domain"),
        zone_slots=slot("zone"),
        source=source,
        by_id={r.id: r for r in ordered},
    )


def check_meta(meta: Any, source: str) -> None:
    """A lists/ data file's [meta] table: `version` (1) and `updated` only."""
    if not isinstance(meta, dict):
        raise CatalogError(source, "[meta] is not a table")
    unknown = set(meta) - _META_KEYS
    if unknown:
        raise CatalogError(source, f"[meta]: unknown key(s) {', '.join(sorted(unknown))}")
    if meta.get("version", 1) != 1:
        raise CatalogError(source, f"[meta]: version {meta['version']!r} is not 1")


def _strings(value: Any, what: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(source, f"{what}: expected a list of strings")
    return list(value)


def check_pattern(pattern: str, what: str, source: str, *, compile_now: bool = True) -> None:
    """A pattern of a lists/ file without macros: linear, and (`compile_now`) it compiles."""
    _check_linear(pattern, what, source)
    if not compile_now:
        return
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise CatalogError(source, f"{what}: bad regular expression {pattern!r}: {exc}") from exc


def _check_linear(pattern: str, what: str, source: str) -> None:
    if _UNBOUNDED_DOT.search(pattern) or _NESTED_REPEAT.search(pattern):
        raise CatalogError(
            source,
            f"{what}: {pattern!r} is not linear (an unbounded '.*' or '.+', or a repeated "
            "group holding a repeat): bound it, e.g. '.{0,80}'",
        )


def _compile(
    pattern: str,
    what: str,
    source: str,
    now: bool,
    known: Mapping[str, tuple[str, ...]],
) -> RulePattern:
    if unknown := [m for m in _MACRO_RE.findall(pattern) if m not in _MACROS]:
        raise CatalogError(
            source, f"{what}: unknown macro {unknown[0]} (known: {', '.join(_MACROS)})"
        )
    _check_linear(pattern, what, source)
    for macro, expansion in _MACROS.items():
        pattern = pattern.replace(macro, expansion)
    try:
        return RulePattern(pattern, compile_now=now, needles=known.get(pattern))
    except re.error as exc:
        raise CatalogError(source, f"{what}: bad regular expression {pattern!r}: {exc}") from exc


def _parse_rule(
    entry: Any, source: str, index: int, now: bool, known: Mapping[str, tuple[str, ...]]
) -> Rule:
    if not isinstance(entry, dict):
        raise CatalogError(source, f"rule #{index} is not a table")
    rid = str(entry.get("id", f"#{index}"))

    def fail(message: str) -> CatalogError:
        return CatalogError(source, f"rule {rid}: {message}")

    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))}")
    for key in _REQUIRED:
        if key not in entry:
            raise fail(f"missing key {key!r}")
    if not isinstance(entry["id"], str) or not _LABEL_RE.match(rid.replace(".", "-")):
        raise fail("the id must be lower-case letters, digits and dashes")
    for key in _TEXT_KEYS:
        if key in entry and not isinstance(entry[key], str):
            raise fail(f"{key!r} must be a string")
    for key in ("source", "meaning"):
        if not entry[key].strip():
            raise fail(f"{key!r} is empty")
    try:
        kind = ListKind(entry["kind"])
    except ValueError:
        raise fail(f"kind {entry['kind']!r} is not one of {', '.join(ListKind)}") from None
    try:
        verdict = BounceVerdict(entry["verdict"])
    except ValueError:
        raise fail(
            f"verdict {entry['verdict']!r} is not one of {', '.join(BounceVerdict)}"
        ) from None
    temporary = entry.get("temporary")
    if temporary is not None and not isinstance(temporary, bool):
        raise fail("'temporary' must be true or false")
    zone_known = entry.get("zone_known", False)
    if not isinstance(zone_known, bool):
        raise fail("'zone_known' must be true or false")
    zone = entry.get("zone", "").lower()
    if zone and not _ZONE_RE.match(zone):
        raise fail(f"zone {entry['zone']!r} is not a DNS name")
    delist_url = entry.get("delist_url", "")
    if delist_url:
        check_url(delist_url, fail)
    try:
        patterns = tuple(
            _compile(p, f"rule {rid}: match", source, now, known)
            for p in _strings(entry["match"], "match", source)
        )
        unless = tuple(
            _compile(p, f"rule {rid}: unless", source, now, known)
            for p in _strings(entry.get("unless", []), "unless", source)
        )
        remote = tuple(
            _compile(p, f"rule {rid}: remote_mta", source, now, known)
            for p in _strings(entry.get("remote_mta", []), "remote_mta", source)
        )
        codes = tuple(c.lower() for c in _strings(entry.get("codes", []), "codes", source))
    except CatalogError as exc:
        if f"rule {rid}" in str(exc):
            raise
        raise fail(str(exc).removeprefix(f"{source}: ")) from exc
    if not patterns:
        raise fail("'match' is empty")
    _check_codes(codes, fail)
    bits = _parse_bits(entry.get("bits", {}), fail)
    if (codes or bits) and not any("code" in p.groups for p in patterns):
        raise fail("'codes' or 'bits' need a (?P<code>…) group in 'match'")
    zone_like = None
    if "zone_like" in entry:
        zone_like = _compile(entry["zone_like"], f"rule {rid}: zone_like", source, now, known)
    return Rule(
        id=rid,
        source=entry["source"],
        provider=entry.get("provider", ""),
        kind=kind,
        verdict=verdict,
        meaning=entry["meaning"],
        patterns=patterns,
        list=entry.get("list", ""),
        zone=zone,
        temporary=temporary,
        delist_url=delist_url,
        unless=unless,
        remote_mta=remote,
        codes=codes,
        bits=bits,
        zone_like=zone_like,
        zone_known=zone_known,
    )


def check_url(url: str, fail: Callable[[str], CatalogError]) -> None:
    """An http(s) or mailto URL whose only placeholders are {ip}, {domain} and {target}."""
    names = set(_PLACEHOLDER_RE.findall(url))
    if names - _PLACEHOLDERS:
        raise fail(
            f"delist_url {url!r}: unknown placeholder {{{sorted(names - _PLACEHOLDERS)[0]}}}"
            " (known: {ip}, {domain}, {target})"
        )
    if not _URL_RE.match(_PLACEHOLDER_RE.sub("x", url).lower()):
        raise fail(f"delist_url {url!r} is not an http(s) or mailto URL")


def _check_codes(codes: Sequence[str], fail: Callable[[str], CatalogError]) -> None:
    for code in codes:
        low, dash, high = code.partition("-")
        if not _CODE_RE.match(code) or (
            dash and low.isdigit() and high.isdigit() and int(low) > int(high)
        ):
            raise fail(f"codes: {code!r} must be a number, a range N-M (N ≤ M) or a word")


def _parse_bits(raw: Any, fail: Callable[[str], CatalogError]) -> tuple[tuple[int, str], ...]:
    if not isinstance(raw, dict):
        raise fail("'bits' must be a table of binary codes")
    out = []
    for key, name in raw.items():
        if not re.fullmatch(r"[01]{1,16}", key) or key.count("1") != 1 or not isinstance(name, str):
            raise fail(f"bits: {key!r} must be a binary code with exactly one 1, naming a list")
        out.append((int(key, 2), name))
    return tuple(out)


def _rule_needles(patterns: Sequence[RulePattern]) -> tuple[str, ...]:
    """Strings one of which a text holds (lower-cased) if any of `patterns` matches it; ()
    when some pattern has none (then the rule is always tried)."""
    found: set[str] = set()
    for pattern in patterns:
        if not pattern.needles:
            return ()
        found.update(pattern.needles)
    return minimal(found)
