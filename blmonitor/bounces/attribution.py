"""Attribution: from a rejection text (and its remote MTA), which blocklist rejected us, if any.

Pure and data-driven: the patterns live in `lists/bounces.toml` (`load_rules`, `embedded_rules`),
the DNS zones in the catalog (`blmonitor.zones`). `attribute()` does no I/O.

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

import ipaddress
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import CatalogError
from ..models import TargetKind, Zone
from ..zones import Catalog, read_list_data
from .models import Attribution, BounceRecord, BounceVerdict, ListKind

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


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern of lists/bounces.toml, compiled."""

    id: str
    source: str
    provider: str
    kind: ListKind
    verdict: BounceVerdict
    meaning: str
    patterns: tuple[re.Pattern[str], ...]
    list: str = ""
    zone: str = ""
    temporary: bool | None = None
    delist_url: str = ""
    unless: tuple[re.Pattern[str], ...] = ()
    remote_mta: tuple[re.Pattern[str], ...] = ()
    codes: tuple[str, ...] = ()
    bits: tuple[tuple[int, str], ...] = ()
    zone_like: re.Pattern[str] | None = None
    zone_known: bool = False


@dataclass(frozen=True, slots=True)
class Rules:
    """All rules in precedence order, and the slots a listed IP or domain is read from."""

    rules: tuple[Rule, ...]
    ip_slots: tuple[re.Pattern[str], ...] = ()
    domain_slots: tuple[re.Pattern[str], ...] = ()
    zone_slots: tuple[re.Pattern[str], ...] = ()
    source: str = ""
    by_id: Mapping[str, Rule] = field(default_factory=dict)


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

    def slot(name: str, group: str) -> tuple[re.Pattern[str], ...]:
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


def _compile(pattern: str, what: str, source: str) -> re.Pattern[str]:
    for macro, expansion in _MACROS.items():
        pattern = pattern.replace(macro, expansion)
    try:
        return re.compile(pattern, re.IGNORECASE)
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
    for rule in rules.rules:
        hit = _match(rule, subject, remote_mta, catalog)
        if hit is not None:
            return _build(rule, hit, subject, remote_mta, status, reply_code, rules, catalog)
    return Attribution(
        verdict=BounceVerdict.OTHER,
        temporary=_temporary(None, status, reply_code),
        reason="not about a block list (no list or reputation wording found)",
    )


def _match(rule: Rule, subject: str, remote_mta: str, catalog: Catalog) -> re.Match[str] | None:
    if rule.remote_mta and not any(
        p.search(remote_mta) or p.search(subject) for p in rule.remote_mta
    ):
        return None
    for pattern in rule.patterns:
        for hit in pattern.finditer(subject):
            if not _accept(rule, hit, catalog):
                continue
            if any(p.search(subject) for p in rule.unless):
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
) -> Attribution:
    groups = hit.groupdict()
    code = groups.get("code") or ""
    decoded = _decode_bits(rule, code)
    zone_name = rule.zone or _clean_name(groups.get("zone") or "")
    if not zone_name and rule.verdict is BounceVerdict.RECEIVER_ERROR:
        zone_name = _first_zone(rules, subject)
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
        domain = _slot_domain(groups.get("domain"), rules, subject)
    else:
        ip = _slot_ip(groups.get("ip"), rules, subject, remote_mta)
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


def _first_zone(rules: Rules, subject: str) -> str:
    for slot in rules.zone_slots:
        hit = slot.search(subject)
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


def _slot_ip(own: str | None, rules: Rules, subject: str, remote_mta: str) -> str:
    mx = _remote_ip(remote_mta)
    candidates = [own] if own else []
    for slot in rules.ip_slots:
        candidates.extend(hit["ip"] for hit in slot.finditer(subject))
        for candidate in candidates:
            ip = _valid_ip(candidate)
            if ip and ip != mx and not ip.startswith("127."):
                return ip
        candidates = []
    return ""


def _slot_domain(own: str | None, rules: Rules, subject: str) -> str:
    if own and "." in own:
        return _clean_name(own)
    for slot in rules.domain_slots:
        hit = slot.search(subject)
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
