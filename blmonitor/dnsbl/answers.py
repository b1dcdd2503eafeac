"""DNSBL semantics, pure: targets → query names, answers → results, probes → zone health.

No sockets and no clock: the engine feeds in the Answers its resolver got. The rules follow
RFC 5782 plus each zone's catalog entry: every A record counts (sorted), operator error codes
(Spamhaus 127.255.255.x, URIBL bit 1, …) and answers outside 127/8 are errors, never listings,
and a zone whose test points misbehave is not trusted at all.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import dns.name
import dns.reversename

from blmonitor.dnsbl.catalog import listed_point, unlisted_point
from blmonitor.errors import UsageError
from blmonitor.models import (
    Answer,
    Code,
    ErrorCode,
    ErrorKind,
    Health,
    Outcome,
    Result,
    Severity,
    Status,
    Target,
    TargetKind,
    Verdict,
    Zone,
    ZoneHealth,
    ZoneKind,
)

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_REFUSED_RANGE = ipaddress.IPv4Network("127.255.255.0/24")
MAX_CIDR_ADDRESSES = 4096


# --- targets -------------------------------------------------------------------------------


def parse_target(text: str) -> Target:
    """An IPv4/IPv6 address or a domain name, normalised; UsageError when it is neither."""
    raw = text.strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address):
            if address.scope_id is not None:
                raise UsageError(f"{text!r}: a scoped (link-local) address never reaches a "
                                 "blocklist; give the public address")  # fmt: skip
            if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 sender a.b.c.d
                return Target(str(address.ipv4_mapped), TargetKind.IPV4)
        kind = TargetKind.IPV4 if address.version == 4 else TargetKind.IPV6
        return Target(address.compressed, kind)
    name = raw.lower().rstrip(".")
    try:
        encoded = dns.name.from_unicode(name).to_text(omit_final_dot=True)
    except Exception:  # dnspython raises several unrelated types for bad names
        encoded = ""
    labels = encoded.split(".")
    if (
        not name
        or len(labels) < 2
        or any(not label or label.startswith("-") or label.endswith("-") for label in labels)
        or any(not (c.isalnum() or c in "-_") for c in encoded.replace(".", ""))
        or labels[-1].isdigit()
        # "203.0.113.x", "10.0.0.0/8x": an address with a typo, not a domain anyone sends from
        or (len(labels) >= 3 and all(label.isdigit() for label in labels[:-1]))
    ):
        raise UsageError(
            f"{text!r} is not an IP address, a CIDR block or a domain "
            "(e.g. 203.0.113.5, 2001:db8::/126, example.com)"
        )
    return Target(encoded, TargetKind.DOMAIN)


def expand_targets(texts: Iterable[str], *, cap: int = MAX_CIDR_ADDRESSES) -> list[Target]:
    """Targets from addresses, CIDR blocks (expanded, at most `cap` addresses) and domains.

    Duplicates are dropped; the order of first appearance is kept.
    """
    seen: dict[Target, None] = {}
    for text in texts:
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        if "/" in text:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise UsageError(f"{text!r} is not a CIDR block (e.g. 203.0.113.0/28)") from None
            if network.num_addresses > cap:
                raise UsageError(
                    f"{text} holds {network.num_addresses} addresses, more than the cap of "
                    f"{cap}: check smaller blocks"
                )
            for address in network:
                seen.setdefault(parse_target(str(address)), None)
        else:
            seen.setdefault(parse_target(text), None)
    return list(seen)


def query_name(target: Target, zone: Zone) -> dns.name.Name | None:
    """The name to look up for `target` in `zone`, or None when the zone does not take it."""
    if target.kind not in zone.takes:
        return None
    return _name_for(target.kind, target.text, zone)


def zone_origin(zone: Zone) -> dns.name.Name:
    return dns.name.from_text(zone.queried)


def relative_name(kind: TargetKind, text: str) -> dns.name.Name:
    """The part of a DNSBL query name that comes before the zone (RFC 5782 §2.1, §2.4, §3)."""
    if kind is TargetKind.DOMAIN:
        return dns.name.from_text(text, origin=None)
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # dnspython turns IPv4-mapped addresses into in-addr names; RFC 5782 §5's IPv6 test
        # points are exactly such addresses and must be asked as 32 nibbles.
        return dns.name.from_text(".".join(address.exploded.replace(":", "")[::-1]), origin=None)
    return dns.reversename.from_address(
        address.compressed, v4_origin=dns.name.empty, v6_origin=dns.name.empty
    )


def wire_labels(name: dns.name.Name) -> bytes:
    """Uncompressed wire form of a name's labels; of a relative name, without the root."""
    return b"".join(bytes((len(label),)) + label for label in name.labels)


def check_plan(targets: Sequence[Target], zones: Sequence[Zone]) -> None:
    """A UsageError for what could only come out "clean" without a lookup: a target that no
    zone takes, or a query name past DNS's 255 octets (a zone or domain too long).

    Only the longest target of each kind is spelled out against each zone (a query name is
    longest for the longest text of its kind): a 1,024 × 50 check builds no 51,200 names here."""
    longest: dict[TargetKind, Target] = {}
    for target in targets:
        known = longest.get(target.kind)
        if known is None:
            takers = [z for z in zones if target.kind in z.takes]
            if not takers:
                names = ", ".join(z.label for z in zones[:5]) + (" …" if len(zones) > 5 else "")
                kinds = "/".join(sorted({str(k) for z in zones for k in z.takes}))
                raise UsageError(f"no zone takes {target.text} ({target.kind}): {names} take "
                                 f"{kinds} only; add a zone that does, or leave the target "
                                 "out")  # fmt: skip
        if known is None or len(target.text) > len(known.text):
            longest[target.kind] = target
    for target in longest.values():
        for zone in zones:
            if target.kind not in zone.takes:
                continue
            try:
                _name_for(target.kind, target.text, zone)
            except dns.name.NameTooLong:
                raise UsageError(f"{target.text} on {zone.label}: the query name is longer "
                                 "than DNS allows (255 octets)") from None  # fmt: skip


def _name_for(kind: TargetKind, text: str, zone: Zone) -> dns.name.Name:
    return relative_name(kind, text).concatenate(zone_origin(zone))


# --- answers → results ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Decoded:
    status: Status
    meanings: tuple[str, ...] = ()
    severity: Severity | None = None
    error: str = ""
    error_kind: ErrorKind | None = None
    delist_url: str = ""


_CLEAN = _Decoded(Status.CLEAN)


def _matches(
    code: Code | ErrorCode, address: ipaddress.IPv4Address, text: str, bitmask: bool
) -> bool:
    if code.bit is not None:
        return bitmask and bool(int(address) & 0xFF & code.bit)
    return code.value == text


def decode(zone: Zone, outcome: Outcome, records: Sequence[str], detail: str = "") -> _Decoded:
    """Meaning of one A lookup for a zone: listed, clean or error (with its kind)."""
    if outcome is Outcome.NXDOMAIN or outcome is Outcome.NODATA:
        return _CLEAN
    if outcome is not Outcome.RECORDS:
        return _Decoded(Status.ERROR, error=_outcome_error(outcome, detail))
    addresses = []
    for record in records:
        try:
            address = ipaddress.IPv4Address(record)
        except ValueError:
            return _Decoded(Status.ERROR, error=f"not an IPv4 answer: {record!r}")
        addresses.append((address, str(address)))
    outside = [a for a, _ in addresses if a not in LOOPBACK]
    if outside:
        return _Decoded(
            Status.ERROR,
            error=f"answer outside 127.0.0.0/8 ({outside[0]}): the zone's domain is parked or "
            "expired, or your resolver rewrites NXDOMAIN",
            error_kind=ErrorKind.OTHER,
        )
    for address, text in addresses:
        for err in zone.errors:
            if _matches(err, address, text, zone.bitmask):
                return _Decoded(
                    Status.ERROR, error=f"{address}: {err.meaning}", error_kind=err.kind
                )
    for address, text in addresses:
        # Operators answer a refused querier from 127.255.255.0/24 (Spamhaus' 127.255.255.254
        # and .252, and others after them): never a listing, also for a zone not in the catalog.
        if address in _REFUSED_RANGE and not any(c.value == text for c in zone.codes):
            return _Decoded(
                Status.ERROR,
                error=f"{address}: the 'query refused' range of DNSBL operators",
                error_kind=ErrorKind.REFUSED,
            )
    meanings: list[str] = []
    severity: Severity | None = None
    delist = ""
    for address, text in addresses:
        hits = [c for c in zone.codes if _matches(c, address, text, zone.bitmask)]
        if zone.bitmask:
            known = sum(c.bit or 0 for c in hits)
            if int(address) & 0xFF & ~known:
                hits.append(_unknown_code(f"{address} has bits the catalog does not know"))
        elif not hits:
            if text == "127.0.0.1" or zone.strict:
                why = (
                    "127.0.0.1 is not a listing code (RFC 5782 §2.1)"
                    if text == "127.0.0.1"
                    else "the operator documents no such code"
                )
                return _Decoded(Status.ERROR, error=f"{address}: {why}", error_kind=ErrorKind.OTHER)
            hits.append(
                _unknown_code("listed" if zone.generic else f"{address}: code not in the catalog")
            )
        for code in hits:
            meanings.append(code.meaning)
            severity = code.severity if severity is None else max(severity, code.severity)
            delist = delist or (code.delist_url or "")
    if zone.kind is ZoneKind.ALLOW:
        severity = Severity.INFO
    return _Decoded(
        Status.LISTED,
        meanings=tuple(dict.fromkeys(meanings)),
        severity=severity,
        delist_url=delist,
    )


def _unknown_code(meaning: str) -> Code:
    return Code(meaning=meaning, severity=Severity.WARNING)


def _outcome_error(outcome: Outcome, detail: str) -> str:
    text = {
        Outcome.TIMEOUT: "timed out: no answer from the resolver",
        Outcome.SERVFAIL: "SERVFAIL: the resolver could not reach the zone's servers",
        Outcome.REFUSED: "REFUSED by the resolver",
    }.get(outcome, "lookup failed")
    return f"{text} ({detail})" if detail else text


def delist_link(zone: Zone, target: Target, override: str = "") -> str:
    template = override or zone.delist_url or zone.lookup_url
    return template.replace("{target}", target.text) if template else ""


def judge(target: Target, zone: Zone, answer: Answer | None, txt: Answer | None = None) -> Result:
    """The Result for one (target, zone): `answer` is the A lookup, `txt` the TXT one."""
    if answer is None:
        return Result(
            target, zone, Status.SKIPPED, error=f"{zone.name} does not take {target.kind}"
        )
    if answer.outcome is Outcome.NXDOMAIN or answer.outcome is Outcome.NODATA:
        return Result(target, zone, Status.CLEAN)
    decoded = decode(zone, answer.outcome, answer.records, answer.detail)
    codes = answer.records if answer.outcome is Outcome.RECORDS else ()
    if decoded.status is not Status.LISTED:
        return Result(target, zone, decoded.status, codes=codes, error=decoded.error)
    texts = txt.records if txt is not None and txt.outcome is Outcome.RECORDS else ()
    if texts:
        texts = tuple(_shown_txt(text, zone) for text in texts)
    return Result(
        target,
        zone,
        Status.LISTED,
        codes=codes,
        meanings=decoded.meanings,
        severity=decoded.severity,
        txt=texts,
        delist_url=delist_link(zone, target, decoded.delist_url),
    )


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _shown_txt(text: str, zone: Zone) -> str:
    """A list's TXT words as they may be printed, stored and sent: control characters
    escaped (CR, LF, ESC could forge a line or drive the terminal), the DQS key that a
    resolver or list may echo from the query name replaced (it is a secret)."""
    if zone.query_zone:
        key = zone.query_zone.split(".", 1)[0]
        if key:
            text = text.replace(key, "[DQS key]")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# --- zone health ---------------------------------------------------------------------------


class Probe(enum.Enum):
    LISTED = "listed test point"
    UNLISTED = "unlisted test point"
    RANDOM = "random name"


@dataclass(frozen=True, slots=True)
class ProbeQuery:
    probe: Probe
    kind: TargetKind | None
    point: str
    name: dns.name.Name


def health_probes(zone: Zone, kinds: Iterable[TargetKind], nonce: str) -> list[ProbeQuery]:
    """RFC 5782 §5 test points for each kind asked of `zone`, and a random label.

    The random label (`nonce`, chosen by the caller) catches wildcard zones: a list that
    answers for a name that cannot be listed lists everything.
    """
    probes = []
    for kind in sorted(set(kinds) & zone.takes):
        for probe, point in (
            (Probe.LISTED, listed_point(zone, kind)),
            (Probe.UNLISTED, unlisted_point(zone, kind)),
        ):
            probes.append(ProbeQuery(probe, kind, point, _name_for(kind, point, zone)))
    label = f"blm-{nonce}"
    origin = dns.name.from_text(zone.queried)
    probes.append(
        ProbeQuery(Probe.RANDOM, None, label, dns.name.Name((label,)).concatenate(origin))
    )
    return probes


def judge_health(zone: Zone, answers: Sequence[tuple[ProbeQuery, Answer]]) -> ZoneHealth:
    """Whether a zone's answers can be trusted this run, and why not.

    Every probe is judged and the gravest finding wins: refused, then lists-everything,
    then unreachable, then dead.
    """
    findings: list[tuple[Health, str]] = []
    listed_ok = False
    for probe, answer in answers:
        what = f"the {probe.probe.value} {probe.point}"
        decoded = decode(zone, answer.outcome, answer.records, answer.detail)
        if answer.outcome is Outcome.REFUSED:
            findings.append(
                (
                    Health.REFUSED,
                    f"the resolver ({answer.detail or '?'}) answered REFUSED for {zone.label}: "
                    "it does not resolve this zone for us (check its access rules"
                    + ("; with DQS, that the key covers this zone)" if zone.query_zone else ")"),
                )
            )
        elif decoded.error_kind in (ErrorKind.REFUSED, ErrorKind.RATE_LIMITED):
            findings.append(
                (
                    Health.REFUSED,
                    f"your resolver is refused by {zone.label} ({decoded.error}): use a local "
                    "recursive resolver" + (" or a Spamhaus DQS key" if zone.dqs else ""),
                )
            )
        elif answer.outcome is not Outcome.RECORDS and decoded.status is Status.ERROR:
            findings.append((Health.UNREACHABLE, f"{what}: {decoded.error}"))
        elif _outside_loopback(answer):
            findings.append((Health.LISTS_EVERYTHING, f"{what}: {decoded.error}"))
        elif probe.probe is Probe.LISTED:
            if decoded.status is Status.LISTED:
                listed_ok = True
            elif decoded.status is Status.CLEAN:
                findings.append(
                    (
                        Health.DEAD,
                        f"{what} is not listed: the zone is empty or shut down, so its clean "
                        "answers mean nothing",
                    )
                )
            else:
                findings.append((Health.DEAD, f"{what} answered an error: {decoded.error}"))
        elif answer.outcome is Outcome.RECORDS:
            findings.append(
                (
                    Health.LISTS_EVERYTHING,
                    f"{what} is answered ({', '.join(answer.records)}): the zone lists "
                    "everything, or your resolver rewrites NXDOMAIN",
                )
            )
    if findings:
        health, detail = min(findings, key=lambda f: _GRAVITY.index(f[0]))
        return ZoneHealth(zone, health, detail)
    if not listed_ok:
        return ZoneHealth(zone, Health.UNTESTED, "no listed test point was checked")
    return ZoneHealth(zone, Health.OK)


_GRAVITY = (Health.REFUSED, Health.LISTS_EVERYTHING, Health.UNREACHABLE, Health.DEAD)


def _outside_loopback(answer: Answer) -> bool:
    if answer.outcome is not Outcome.RECORDS:
        return False
    try:
        return any(ipaddress.IPv4Address(r) not in LOOPBACK for r in answer.records)
    except ValueError:
        return True


def distrust(result: Result, health: ZoneHealth) -> Result:
    """A result from a zone that failed its health check: an error, whatever it said."""
    if health.health.trusted or result.status is Status.SKIPPED:
        return result
    return replace(
        result,
        status=Status.ERROR,
        meanings=(),
        severity=None,
        txt=(),
        delist_url="",
        error=f"zone {health.health}: {health.detail}",
    )


# --- verdict -------------------------------------------------------------------------------


def decide(results: Iterable[Result], zones: Iterable[ZoneHealth], *, fail_on: Severity) -> Verdict:
    """listed if any trusted listing reaches `fail_on`; unknown if any answer is missing."""
    listed = unknown = False
    for result in results:
        if result.status is Status.LISTED and result.zone.kind is not ZoneKind.ALLOW:
            if result.severity is not None and result.severity >= fail_on:
                listed = True
        elif result.status is Status.ERROR:
            unknown = True
    if listed:
        return Verdict.LISTED
    if unknown or any(not z.health.trusted for z in zones):
        return Verdict.UNKNOWN
    return Verdict.CLEAN
