"""Attribution: from a rejection text (and its remote MTA), which blocklist rejected us, if any.

Pure and data-driven: the patterns live in `lists/bounces.toml` (`load_rules`, `embedded_rules`),
the DNS zones in the catalog (`blmonitor.dnsbl.catalog`). `attribute()` does no I/O.

Precedence, first hit wins:
  1. receiver-error — the receiver's own DNSBL query failed ("open resolver", "query refused",
     127.255.255.x, a DNSBL timeout): never a listing, even when the text names a zone;
  2. listed — a named list: provider codes (Microsoft S3150, Yahoo [BL21], Comcast BL bit mask…),
     then DNSBL wording that names a zone ("blocked using <zone>", "listed in <zone>"), then
     lists named in words or lookup URLs (Spamhaus, Barracuda, SpamCop…);
  3. reputation — a reputation block or deferral without a named list (Gmail, Yahoo TSS04…);
  4. other — anything else (unknown user, mailbox full, SPF, PTR, content…).
Within a class, the file order of the rules decides. `list` is the rule's stable id
("microsoft-s3150"), or the zone for plain DNSBL wording; `zone` is the catalog zone behind it
when the text or the code names one. The listed IP or domain is read only from the slots of
`[slots]` (or a rule's own `{IP}`), never from the remote MTA or from a status code.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from blmonitor.bounces.models import Attribution, BounceRecord, BounceVerdict, ListKind
from blmonitor.dnsbl.catalog import Catalog, read_list_data
from blmonitor.errors import CatalogError
from blmonitor.models import TargetKind, Zone

# RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets; a diagnostic of many lines still fits.
# Longer input is cut so that no text can make the patterns slow.
MAX_TEXT = 8192

_RANK = {
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
_RULE_KEYS = {
    "id", "source", "provider", "kind", "verdict", "meaning", "list", "zone", "temporary",
    "delist_url", "match", "unless", "remote_mta", "codes", "bits", "zone_like", "zone_known",
}  # fmt: skip
_REQUIRED = ("id", "source", "kind", "verdict", "meaning", "match")
_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_REPLY_RE = re.compile(r"^\W{0,4}(?P<reply>[245]\d\d)(?:[ -]+(?P<status>[245]\.\d{1,3}\.\d{1,3}))?")
_REPLY_PAIR_RE = re.compile(
    r"(?<![\w.])(?P<reply>[245]\d\d)[ -](?P<status>[245]\.\d{1,3}\.\d{1,3})(?![\d.])"
)
_STATUS_RE = re.compile(r"(?<![\d.])(?P<status>[245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_CONTINUATION_RE = re.compile(
    r"(?<=\s)[245]\d\d(?:-|\s(?=[245]\.\d{1,3}\.\d{1,3}\s))(?:[245]\.\d{1,3}\.\d{1,3}(?![\d.]))?"
)
_SPACE_RE = re.compile(r"\s+")
_HOST_IP_RE = re.compile(r"\[?([0-9a-f][0-9a-f:.]{5,44})\]?\s*$")


class RulePattern:
    """One regular expression of the rules (macros expanded, case ignored). Parsed when the
    rules are loaded: a mistake is reported then, and the needles of the literal pre-check (see
    below) are read from the parse. Compiled the first time a text is tried against it: most
    patterns are never needed in a run, and compiling is the larger part of loading the rules.
    """

    __slots__ = ("_compiled", "groupindex", "needles", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None
        tree = _parse(pattern)  # raises re.error, as re.compile would
        if tree is None or "(?<" in pattern:
            # No parser to read (another Python), or a look-behind, whose width is checked
            # by the compiler rather than the parser: compile now, so mistakes show at load.
            self._compiled = re.compile(pattern, re.IGNORECASE)
        self.groupindex: Mapping[str, int] = (
            self.compiled.groupindex if tree is None else dict(tree.state.groupdict)
        )
        # Lower-case ASCII strings one of which the lower-cased text holds if the pattern
        # matches an ASCII text; () when the parse tells none.
        self.needles: tuple[str, ...] = _minimal(_needles(tree) or ()) if tree is not None else ()

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
    """The rules shipped inside the package (or beside it, in a source checkout)."""
    text, source = read_list_data("bounces.toml")
    return load_rules(text, source=source)


def load_rules(text: str, *, source: str) -> Rules:
    """Parse and validate bounce rules; every mistake names `source` and the rule."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(source, f"not valid TOML: {exc}") from exc
    raw = data.get("rule")
    if not isinstance(raw, list) or not raw:
        raise CatalogError(source, "no [[rule]] tables found")
    slots = data.get("slots", {})
    if not isinstance(slots, dict):
        raise CatalogError(source, "[slots] is not a table")

    def slot(name: str, group: str) -> tuple[RulePattern, ...]:
        out = []
        for pattern in _strings(slots.get(name, []), f"slots.{name}", source):
            compiled = _compile(pattern, f"slots.{name}", source)
            if group not in compiled.groupindex:
                raise CatalogError(source, f"slots.{name}: {pattern!r} has no {{{group.upper()}}}")
            out.append(compiled)
        return tuple(out)

    rules = [_parse_rule(entry, source, i) for i, entry in enumerate(raw, 1)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise CatalogError(source, f"rule {rule.id}: the id appears twice")
        seen.add(rule.id)
    ordered = tuple(sorted(rules, key=lambda r: _RANK[r.verdict]))  # stable: file order kept
    return Rules(
        rules=ordered,
        ip_slots=slot("ip", "ip"),
        domain_slots=slot("domain", "domain"),
        zone_slots=slot("zone", "zone"),
        source=source,
        by_id={r.id: r for r in ordered},
    )


def _strings(value: Any, what: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(source, f"{what}: expected a list of strings")
    return list(value)


def _compile(pattern: str, what: str, source: str) -> RulePattern:
    for macro, expansion in _MACROS.items():
        pattern = pattern.replace(macro, expansion)
    try:
        return RulePattern(pattern)
    except re.error as exc:
        raise CatalogError(source, f"{what}: bad regular expression {pattern!r}: {exc}") from exc


def _parse_rule(entry: Any, source: str, index: int) -> Rule:
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
    if not _LABEL_RE.match(rid.replace(".", "-")):
        raise fail("the id must be lower-case letters, digits and dashes")
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
    try:
        patterns = tuple(
            _compile(p, f"rule {rid}: match", source)
            for p in _strings(entry["match"], "match", source)
        )
        unless = tuple(
            _compile(p, f"rule {rid}: unless", source)
            for p in _strings(entry.get("unless", []), "unless", source)
        )
        remote = tuple(
            _compile(p, f"rule {rid}: remote_mta", source)
            for p in _strings(entry.get("remote_mta", []), "remote_mta", source)
        )
        codes = tuple(c.lower() for c in _strings(entry.get("codes", []), "codes", source))
    except CatalogError as exc:
        if f"rule {rid}" in str(exc):
            raise
        raise fail(str(exc).removeprefix(f"{source}: ")) from exc
    if not patterns:
        raise fail("'match' is empty")
    bits = _parse_bits(entry.get("bits", {}), fail)
    if (codes or bits) and not any("code" in p.groupindex for p in patterns):
        raise fail("'codes' or 'bits' need a (?P<code>…) group in 'match'")
    zone_like = None
    if "zone_like" in entry:
        zone_like = _compile(str(entry["zone_like"]), f"rule {rid}: zone_like", source)
    zone = str(entry.get("zone", "")).lower()
    return Rule(
        id=rid,
        source=str(entry["source"]),
        provider=str(entry.get("provider", "")),
        kind=kind,
        verdict=verdict,
        meaning=str(entry["meaning"]),
        patterns=patterns,
        list=str(entry.get("list", "")),
        zone=zone,
        temporary=temporary,
        delist_url=str(entry.get("delist_url", "")),
        unless=unless,
        remote_mta=remote,
        codes=codes,
        bits=bits,
        zone_like=zone_like,
        zone_known=bool(entry.get("zone_known", False)),
    )


def _parse_bits(raw: Any, fail: Any) -> tuple[tuple[int, str], ...]:
    if not isinstance(raw, dict):
        raise fail("'bits' must be a table of binary codes")
    out = []
    for key, name in raw.items():
        if not re.fullmatch(r"[01]{1,16}", key) or key.count("1") != 1 or not isinstance(name, str):
            raise fail(f"bits: {key!r} must be a binary code with exactly one 1, naming a list")
        out.append((int(key, 2), name))
    return tuple(out)


# ─── literal pre-check ───────────────────────────────────────────────────────────────────
# Case-insensitive patterns are slow to try one by one, and a text is tried against ~100 of
# them. On an ASCII text, an ASCII character of a pattern matches a character of the text, case
# ignored, exactly when both are the same once lower-cased; so every match of a pattern holds,
# lower-cased, one of the literal strings read here from the pattern's own parse tree (Python's
# `re` parser): a run of ASCII literal characters that any match must cross. Such a pre-check
# never changes a result: it only skips patterns that cannot match. A text that is not ASCII
# is tried against every pattern (Unicode case folding: 'K' (Kelvin) matches 'k', 'ſ' 's').

try:
    _RE_PARSER: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - another Python: every pattern is tried
    _RE_PARSER = None
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _parse(pattern: str) -> Any:
    """The parse tree of a case-insensitive pattern (raises re.error on a mistake), or None
    when this Python's parser cannot be used."""
    if _RE_PARSER is None:
        return None
    try:
        return _RE_PARSER.parse(pattern, int(re.IGNORECASE))
    except re.error:
        raise
    except Exception:  # pragma: no cover - a parser that changed: compile instead
        return None


def _rule_needles(patterns: Sequence[RulePattern]) -> tuple[str, ...]:
    """Strings one of which a text holds (lower-cased) if any of `patterns` matches it; ()
    when some pattern has none (then the rule is always tried)."""
    found: set[str] = set()
    for pattern in patterns:
        if not pattern.needles:
            return ()
        found.update(pattern.needles)
    return _minimal(found)


def _minimal(needles: Iterable[str]) -> tuple[str, ...]:
    """One of {"ab", "xaby"} is present exactly when "ab" is: keep the shorter."""
    found = set(needles)
    return tuple(sorted(n for n in found if not any(m != n and m in n for m in found)))


def _needles(tree: Any) -> frozenset[str] | None:
    try:
        return _required(tree)
    except (TypeError, ValueError, IndexError, AttributeError):  # pragma: no cover
        return None


def _required(items: Any) -> frozenset[str] | None:
    """Of a parsed sequence: a set of lower-case ASCII strings, one of which every match of the
    sequence holds, the strongest found (longest shortest string); None when there is none."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def keep(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and (best is None or _strength(found) > _strength(best)):
            best = found

    for name, av in _inlined(items):
        if name == "LITERAL" and av < 128:
            run.append(chr(av).lower())
            continue
        if name == "AT":  # \b, ^, $: zero width, the characters around it are adjacent
            continue
        if run:
            keep(frozenset(("".join(run),)))
            run = []
        if name == "BRANCH":  # one needle of every alternative
            alternatives = [_required(branch) for branch in av[1]]
            found = [a for a in alternatives if a]
            if len(found) == len(alternatives):
                keep(frozenset().union(*found))
        elif name in _REPEATS and av[0] >= 1:
            keep(_required(av[2]))
        # Anything else (classes, any character, look-arounds, back-references, optional
        # repeats) requires no literal of its own and ends the run.
    if run:
        keep(frozenset(("".join(run),)))
    return best


def _inlined(items: Any) -> Iterator[tuple[str, Any]]:
    """The (operator name, argument) items of a parsed sequence, with the content of groups in
    line: a group matches what its content matches, where it stands."""
    for op, av in items:
        name = getattr(op, "name", "")
        if name == "SUBPATTERN":
            yield from _inlined(av[3])
        elif name == "ATOMIC_GROUP":
            yield from _inlined(av)
        else:
            yield name, av


def _strength(needles: frozenset[str]) -> tuple[int, int]:
    return min(len(n) for n in needles), -len(needles)


# ─── attribution ─────────────────────────────────────────────────────────────────────────


def attribute_record(record: BounceRecord, *, rules: Rules, catalog: Catalog) -> Attribution:
    """The attribution of one extracted bounce record."""
    return attribute(
        record.diagnostic,
        remote_mta=record.remote_mta,
        status=record.status,
        reply_code=record.reply_code,
        rules=rules,
        catalog=catalog,
    )


def attribute(
    text: str,
    *,
    remote_mta: str = "",
    status: str = "",
    reply_code: str = "",
    rules: Rules,
    catalog: Catalog,
) -> Attribution:
    """Decide what a rejection text means for us (see the module docstring for precedence)."""
    text = _SPACE_RE.sub(" ", text[: MAX_TEXT * 2]).strip()[:MAX_TEXT]
    head = _REPLY_RE.match(text) or _REPLY_PAIR_RE.search(text[:256])
    if head:
        reply_code = reply_code or head["reply"]
        status = status or (head["status"] or "")
    if not status:
        found = _STATUS_RE.search(text[:64])
        status = found["status"] if found else ""
    # A multi-line reply unfolded to one line repeats its code: "…is 550-5.7.1 likely…".
    text = _CONTINUATION_RE.sub("", text).replace("  ", " ")
    prefix = [part for part in (reply_code, status) if part and part not in text]
    subject = " ".join([*prefix, text])
    remote_mta = remote_mta.strip()[:512]
    # For the literal pre-checks: the lower-cased texts, or None for a text that is not ASCII.
    low = subject.lower() if subject.isascii() else None
    remote_low = remote_mta.lower() if remote_mta.isascii() else None
    for rule in _candidates(rules, low, remote_low):
        hit = _match(rule, subject, remote_mta, catalog, low, remote_low)
        if hit is not None:
            return _build(rule, hit, subject, remote_mta, status, reply_code, rules, catalog, low)
    return Attribution(
        verdict=BounceVerdict.OTHER,
        temporary=_temporary(None, status, reply_code),
        reason="not about a block list (no list or reputation wording found)",
    )


def _candidates(rules: Rules, low: str | None, remote_low: str | None) -> Sequence[Rule]:
    """The rules that may match, in precedence order (see the literal pre-check above)."""
    if low is None:
        return rules.rules
    picked = set(rules.unfiltered)
    for needle, positions in rules.by_needle.items():
        if needle in low:
            picked.update(positions)
    out = []
    for i in sorted(picked):
        rule = rules.rules[i]
        if (
            rule.remote_needles
            and remote_low is not None
            and not any(n in low or n in remote_low for n in rule.remote_needles)
        ):
            continue
        out.append(rule)
    return out


def _search(pattern: RulePattern, text: str, low: str | None) -> re.Match[str] | None:
    return pattern.search(text) if pattern.may_match(low) else None


def _match(
    rule: Rule,
    subject: str,
    remote_mta: str,
    catalog: Catalog,
    low: str | None = None,
    remote_low: str | None = None,
) -> re.Match[str] | None:
    if rule.remote_mta and not any(
        _search(p, remote_mta, remote_low) or _search(p, subject, low) for p in rule.remote_mta
    ):
        return None
    for pattern in rule.patterns:
        if not pattern.may_match(low):
            continue
        for hit in pattern.finditer(subject):
            if not _accept(rule, hit, catalog):
                continue
            if any(_search(p, subject, low) for p in rule.unless):
                return None
            return hit
    return None


def _accept(rule: Rule, hit: re.Match[str], catalog: Catalog) -> bool:
    groups = hit.groupdict()
    code = (groups.get("code") or "").lower()
    if rule.codes and code and not any(_code_in(code, c) for c in rule.codes):
        return False
    zone = _clean_name(groups.get("zone") or "")
    if "zone" in groups:
        if not zone or "." not in zone:
            return False
        known = catalog.find(zone) is not None
        if rule.zone_known and not known:
            return False
        if rule.zone_like is not None and not known and not rule.zone_like.search(zone):
            return False
    return True


def _code_in(code: str, spec: str) -> bool:
    low, dash, high = spec.partition("-")
    if dash and low.isdigit() and high.isdigit() and code.isdigit():
        return int(low) <= int(code) <= int(high)
    return code == spec


def _clean_name(name: str) -> str:
    return name.strip().strip(".-").lower()


def _build(
    rule: Rule,
    hit: re.Match[str],
    subject: str,
    remote_mta: str,
    status: str,
    reply_code: str,
    rules: Rules,
    catalog: Catalog,
    low: str | None = None,
) -> Attribution:
    groups = hit.groupdict()
    code = groups.get("code") or ""
    decoded = _decode_bits(rule, code)
    zone_name = rule.zone or _clean_name(groups.get("zone") or "")
    if not zone_name and rule.verdict is BounceVerdict.RECEIVER_ERROR:
        zone_name = _first_zone(rules, subject, low)
    if not zone_name:
        known = [name for name in decoded if catalog.find(name) is not None]
        zone_name = known[0] if len(known) == 1 else ""
    zone = catalog.find(zone_name) if zone_name else None
    kind = rule.kind
    if zone is not None and TargetKind.IPV4 not in zone.takes and TargetKind.IPV6 not in zone.takes:
        kind = ListKind.DOMAIN_LIST
    list_id = rule.list or (zone.name if zone is not None else zone_name) or rule.id
    provider = rule.provider or (zone.operator if zone is not None else "")
    temporary = _temporary(rule.temporary, status, reply_code)
    if rule.verdict is BounceVerdict.RECEIVER_ERROR:
        return Attribution(
            verdict=rule.verdict,
            list=list_id if zone_name else "",
            zone=zone.name if zone is not None else "",
            provider=provider,
            kind=kind,
            temporary=temporary,
            reason=(
                f"{_capital(rule.meaning)}: this is the receiver's misconfiguration, "
                "not a listing of your IP; nothing to delist"
            ),
            rule=rule.id,
        )
    if rule.verdict is BounceVerdict.OTHER:
        return Attribution(
            verdict=rule.verdict, temporary=temporary, reason=_capital(rule.meaning), rule=rule.id
        )
    ip = ""
    domain = ""
    if kind is ListKind.DOMAIN_LIST:
        domain = _slot_domain(groups.get("domain"), rules, subject, low)
    else:
        ip = _slot_ip(groups.get("ip"), rules, subject, remote_mta, low)
    delist = _delist_url(rule, zone, ip or domain)
    return Attribution(
        verdict=rule.verdict,
        list=list_id,
        zone=zone.name if zone is not None else "",
        provider=provider,
        kind=kind,
        temporary=temporary,
        listed_ip=ip,
        listed_domain=domain,
        delist_url=delist,
        reason=_reason(rule, list_id, zone, zone_name, decoded, code, ip or domain, delist),
        rule=rule.id,
    )


def _decode_bits(rule: Rule, code: str) -> list[str]:
    if not rule.bits or not code or not code.isdigit() or set(code) - {"0", "1"}:
        return []
    value = int(code, 2)
    return [name for bit, name in rule.bits if value & bit]


def _first_zone(rules: Rules, subject: str, low: str | None = None) -> str:
    for slot in rules.zone_slots:
        hit = _search(slot, subject, low)
        if hit:
            name = _clean_name(hit["zone"])
            if "." in name:
                return name
    return ""


def _temporary(fixed: bool | None, status: str, reply_code: str) -> bool:
    if fixed is not None:
        return fixed
    return (reply_code or status).startswith("4")


def _valid_ip(candidate: str) -> str:
    candidate = candidate.rstrip(".:")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return ""


def _remote_ip(remote_mta: str) -> str:
    hit = _HOST_IP_RE.search(remote_mta)
    return _valid_ip(hit.group(1)) if hit else ""


def _slot_ip(
    own: str | None, rules: Rules, subject: str, remote_mta: str, low: str | None = None
) -> str:
    mx = _remote_ip(remote_mta)
    candidates = [own] if own else []
    for slot in rules.ip_slots:
        if slot.may_match(low):
            candidates.extend(hit["ip"] for hit in slot.finditer(subject))
        for candidate in candidates:
            ip = _valid_ip(candidate)
            if ip and ip != mx and not ip.startswith("127."):
                return ip
        candidates = []
    return ""


def _slot_domain(own: str | None, rules: Rules, subject: str, low: str | None = None) -> str:
    if own and "." in own:
        return _clean_name(own)
    for slot in rules.domain_slots:
        hit = _search(slot, subject, low)
        if hit and "." in hit["domain"]:
            return _clean_name(hit["domain"])
    return ""


def _delist_url(rule: Rule, zone: Zone | None, target: str) -> str:
    template = rule.delist_url
    if not template and zone is not None:
        template = zone.delist_url or zone.lookup_url
    if not template:
        return ""
    if not target and any(k in template for k in ("{ip}", "{domain}", "{target}")):
        # Without the address, point at the page rather than at a query for nothing.
        return template.split("?", 1)[0] if "?" in template else template.split("{", 1)[0]
    for key in ("{ip}", "{domain}", "{target}"):
        template = template.replace(key, target)
    return template


def _reason(
    rule: Rule,
    list_id: str,
    zone: Zone | None,
    zone_name: str,
    decoded: Sequence[str],
    code: str,
    target: str,
    delist: str,
) -> str:
    what = _capital(rule.meaning)
    if zone_name and rule.id.startswith("dnsbl-"):
        what = f"The public block list {zone_name} lists the sender"
    elif zone is not None and rule.zone:
        what = f"{what} ({zone.name})"
    if decoded:
        what = f"{what}: BL code {code} means {', '.join(decoded)}"
    parts = [what]
    if target:
        parts.append(f"listed: {target}")
    if rule.verdict is BounceVerdict.REPUTATION:
        parts.append("a reputation block, not a list: slow down and check complaints")
    if delist:
        parts.append(
            f"ask for delisting at {delist}"
            if rule.verdict is BounceVerdict.LISTED
            else f"see {delist}"
        )
    return "; ".join(parts) + f" [{list_id}]"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
