"""Attribution: from a rejection text (and its remote MTA), which blocklist rejected us, if any.

Pure and data-driven: the patterns live in `lists/bounces.toml` (loaded by `rules`), the DNS
zones in the catalog (`blmonitor.dnsbl.catalog`). `attribute()` does no I/O.

Three layers, each tried only when the one before found nothing:
  rule     — the specific rules below (wordings seen before); confidence high;
  lexicon  — a list, vendor or provider named anywhere near block wording (lists/names.toml,
             the catalog's zones, a lookup URL); confidence medium (`openworld`);
  generic  — block or reputation wording in any of several languages, about our IP or host,
             outside the negative contexts (auth, SPF, mailbox, TLS, PTR…): list "unnamed";
             confidence low (`openworld`); last, a text worded like the block texts the word
             score of lists/wordscore.json learned from, outside the same negative contexts
             (`wordscore`, rule "wordscore:<list>"); confidence low.
The open-world layers run when the rules carry a lexicon (`embedded_rules()` does).

Precedence of the rules, first hit wins:
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
from collections.abc import Sequence
from dataclasses import replace

from blmonitor.bounces.models import (
    Attribution,
    BounceRecord,
    BounceVerdict,
    Confidence,
    Layer,
    ListKind,
)
from blmonitor.bounces.needles import folded
from blmonitor.bounces.openworld import (
    attribute_open,
    attribute_scored,
    named_provider,
    sender_ip,
)
from blmonitor.bounces.rules import Rule, RulePattern, Rules
from blmonitor.bounces.smtp import drop_continuations, leading_status, reply_head
from blmonitor.dnsbl.catalog import DQS_SUFFIX, Catalog
from blmonitor.models import TargetKind, Zone

__all__ = ["MAX_TEXT", "attribute", "attribute_record"]

# RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets; a diagnostic of many lines still fits.
# Longer input is cut so that no text can make the patterns slow.
MAX_TEXT = 8192

_SPACE_RE = re.compile(r"\s+")
_BLOCKS = (BounceVerdict.LISTED, BounceVerdict.REPUTATION)
_HOST_IP_RE = re.compile(r"\[?([0-9a-f][0-9a-f:.]{5,44})\]?\s*$")


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


# The last attributions made (the same text comes again and again: one DSN for a thousand
# recipients, one rejection logged for each): key -> (rules, catalog, attribution), the rules
# and catalog kept to tell a key of other ones apart (an id may be reused). At most _MEMO_SIZE,
# the oldest dropped first. An Attribution is frozen: sharing one is safe.
_MEMO: dict[tuple[str, str, str, str, int, int], tuple[Rules, Catalog, Attribution]] = {}
_MEMO_SIZE = 512


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
    key = (text[: MAX_TEXT * 2], remote_mta, status, reply_code, id(rules), id(catalog))
    if (seen := _MEMO.get(key)) is not None and seen[0] is rules and seen[1] is catalog:
        return seen[2]
    found = _attribute(
        text, remote_mta=remote_mta, status=status, reply_code=reply_code, rules=rules,
        catalog=catalog,
    )  # fmt: skip
    if len(_MEMO) >= _MEMO_SIZE:
        try:
            _MEMO.pop(next(iter(_MEMO)), None)
        except (RuntimeError, StopIteration):  # another thread changed it meanwhile
            _MEMO.clear()
    _MEMO[key] = (rules, catalog, found)
    return found


def _attribute(
    text: str, *, remote_mta: str, status: str, reply_code: str, rules: Rules, catalog: Catalog
) -> Attribution:
    text = _SPACE_RE.sub(" ", text[: MAX_TEXT * 2]).strip()[:MAX_TEXT]
    if head := reply_head(text):
        reply_code = reply_code or head[0]
        status = status or head[1]
    if not status:
        status = leading_status(text)
    # A multi-line reply unfolded to one line repeats its code: "…is 550-5.7.1 likely…".
    text = drop_continuations(text).replace("  ", " ")
    prefix = [part for part in (reply_code, status) if part and part not in text]
    subject = " ".join([*prefix, text])
    remote_mta = remote_mta.strip()[:512]
    # For the literal pre-checks: the texts lower-cased (folded: see bounces/needles.py).
    low = folded(subject)
    remote_low = folded(remote_mta)
    for rule in _candidates(rules, low, remote_low):
        hit = _match(rule, subject, remote_mta, catalog, low, remote_low)
        if hit is not None:
            found = _build(rule, hit, subject, remote_mta, status, reply_code, rules, catalog, low)
            if not found.provider and found.verdict in _BLOCKS and rules.lexicon is not None:
                # A rule that knows the wording but not who wrote it: the name the text gives.
                found = replace(found, provider=named_provider(subject, rules.lexicon))
            return replace(found, layer=Layer.RULE, confidence=Confidence.HIGH)
    temporary = _temporary(None, status, reply_code)
    if (lexicon := rules.lexicon) is not None:
        opened = attribute_open(
            subject, remote_mta=remote_mta, temporary=temporary, lexicon=lexicon, catalog=catalog,
            low=low,
        )  # fmt: skip
        if opened is None and rules.wordscore is not None:
            # (the same text and context, and what only the word score needs)
            opened = attribute_scored(
                subject, remote_mta=remote_mta, temporary=temporary, lexicon=lexicon,
                catalog=catalog, low=low, wordscore=rules.wordscore, status=status,
            )  # fmt: skip
        if opened is not None:
            return opened
    return Attribution(
        verdict=BounceVerdict.OTHER,
        temporary=temporary,
        reason="not about a block list (no list or reputation wording found)",
    )


def _candidates(rules: Rules, low: str | None, remote_low: str | None) -> Sequence[Rule]:
    """The rules that may match, in precedence order (see `needles`)."""
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
    zone = catalog.named(zone_name) if zone_name else None
    if zone is not None and zone_name.lower().endswith(DQS_SUFFIX):
        zone_name = zone.name  # a DQS twin holds the receiver's key: name the public zone
    kind = rule.kind
    if zone is not None and TargetKind.IPV4 not in zone.takes and TargetKind.IPV6 not in zone.takes:
        kind = ListKind.DOMAIN_LIST
    list_id = rule.list or (zone.name if zone is not None else zone_name) or rule.id
    provider = rule.provider or (zone.operator if zone is not None else "")
    temporary = _temporary(rule.temporary, status, reply_code)
    named = Attribution(
        verdict=rule.verdict,
        list=list_id,
        zone=zone.name if zone is not None else "",
        provider=provider,
        kind=kind,
        temporary=temporary,
        rule=rule.id,
    )
    if rule.verdict is BounceVerdict.RECEIVER_ERROR:
        return replace(
            named,
            list=list_id if zone_name else "",
            reason=(
                f"{_capital(rule.meaning)}: this is the receiver's misconfiguration, "
                "not a listing of your IP; nothing to delist"
            ),
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
        # The slots first (they name it); else any IP literal the text ties to the sender.
        ip = _slot_ip(groups.get("ip"), rules, subject, remote_mta, low) or sender_ip(
            subject, remote_mta
        )
    delist = _delist_url(rule, zone, ip or domain)
    reason = _reason(rule, list_id, zone, zone_name, decoded, code, ip or domain, delist)
    return replace(named, listed_ip=ip, listed_domain=domain, delist_url=delist, reason=reason)


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
            # A loopback address is an answer code, unless it is the client (a DNSBL's test).
            if ip and ip != mx and (not ip.startswith("127.") or f"host [{ip}]" in subject):
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
