"""[core] SPF's check_host() (RFC 7208 §4) without I/O: does a domain's SPF record cover an IP?

The evaluator is a generator (dnspython's `_Resolution` shape): it yields each DNS question and
is sent the Answer back, so a table of records drives it in tests and the DnsClient in use.
It counts the DNS-querying terms (at most 10, §4.6.4) and the void lookups (at most 2), sees
include loops, expands macros (§7), and judges `ip4`/`ip6`/`a`/`mx`/`ptr`/`exists`/`include`/
`all` with their qualifiers and `redirect=`.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Generator
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdatatype
import dns.reversename

from blmonitor.models import Answer, Outcome

Question = tuple[dns.name.Name, dns.rdatatype.RdataType]
Asking = Generator[Question, Answer, "SpfResult"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_LOOKUPS = 10  # §4.6.4: include, a, mx, ptr, exists and redirect
MAX_VOIDS = 2  # §4.6.4: lookups that answer NXDOMAIN or no records
MAX_NAMES = 10  # §4.6.4: names an mx or ptr term may look at
_FAILED = (Outcome.SERVFAIL, Outcome.REFUSED, Outcome.TIMEOUT, Outcome.FAILED)


class SpfVerdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"  # no SPF record
    PERMERROR = "permerror"  # a record that cannot be evaluated: syntax, limits, loops
    TEMPERROR = "temperror"  # a lookup not answered: nothing is known


_QUALIFIERS = {"+": SpfVerdict.PASS, "-": SpfVerdict.FAIL, "~": SpfVerdict.SOFTFAIL,
               "?": SpfVerdict.NEUTRAL}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SpfResult:
    verdict: SpfVerdict
    domain: str
    record: str = ""  # the top domain's record, as published
    mechanism: str = ""  # the term that decided, e.g. "-all" or "include:_spf.example.net"
    lookups: int = 0  # DNS-querying terms evaluated
    voids: int = 0
    reason: str = ""  # why a permerror or temperror, in words


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


@dataclass
class _Run:
    """One check_host() evaluation: what every nested include shares."""

    ip: IpAddress
    sender: str
    helo: str
    lookups: int = 0
    voids: int = 0
    stack: list[str] = field(default_factory=list)
    record: str = ""  # the checked domain's own record

    def count(self, term: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError(f"more than {MAX_LOOKUPS} DNS lookups (at {term})")


def to_name(text: str) -> dns.name.Name:
    """A domain name for a question; a name that cannot be one is a permerror (§4.8)."""
    try:
        name = dns.name.from_text(text.rstrip(".") + ".")
    except dns.exception.DNSException as exc:
        raise _PermError(f"{text!r} is not a domain name ({exc})") from None
    if len(name.labels) < 3:  # §4.8: a domain-spec ends in a top-level domain, not a bare label
        raise _PermError(f"{text!r} is not a fully qualified domain name")
    return name


def _ask(name: dns.name.Name, rdtype: dns.rdatatype.RdataType, run: _Run, *,
         void: bool = True) -> Generator[Question, Answer, tuple[str, ...]]:  # fmt: skip
    """Records of one question; an unanswered lookup is a temperror, an empty one is void."""
    answer = yield (name, rdtype)
    if answer.outcome in _FAILED:
        raise _TempError(f"{name.to_text(True)} {rdtype.name}: {answer.outcome}"
                         + (f" ({answer.detail})" if answer.detail else ""))  # fmt: skip
    if answer.outcome is not Outcome.RECORDS:
        if not void:
            return ()
        run.voids += 1
        if run.voids > MAX_VOIDS:
            raise _PermError(f"more than {MAX_VOIDS} void lookups (at {name.to_text(True)})")
        return ()
    return answer.records


def _addresses(name: dns.name.Name, run: _Run) -> Generator[Question, Answer, list[IpAddress]]:
    rdtype = dns.rdatatype.A if run.ip.version == 4 else dns.rdatatype.AAAA
    records = yield from _ask(name, rdtype, run)
    found: list[IpAddress] = []
    for text in records:
        try:
            found.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    return found


_TERM = re.compile(r"^([+\-~?]?)([a-z0-9]+)(?::(.*?))?((?:/\d+)?(?://\d+)?)$", re.I)
_CIDR = re.compile(r"^(?:/(\d+))?(?://(\d+))?$")


def _cidrs(text: str) -> tuple[int, int]:
    match = _CIDR.match(text)
    if not match:
        raise _PermError(f"bad prefix length {text!r}")
    v4, v6 = int(match[1] or 32), int(match[2] or 128)
    if v4 > 32 or v6 > 128:
        raise _PermError(f"bad prefix length {text!r}")
    return v4, v6


def _covered(ip: IpAddress, found: list[IpAddress], v4: int, v6: int) -> bool:
    length = v4 if ip.version == 4 else v6
    return any(ipaddress.ip_network(f"{a}/{length}", strict=False).__contains__(ip)
               for a in found if a.version == ip.version)  # fmt: skip


def expand_macros(spec: str, domain: str, run: _Run) -> str:
    """§7: the macro letters s, l, o, d, i, p, v, h with digits, `r` and delimiters."""
    local, _, sender_domain = run.sender.rpartition("@")
    ip = run.ip
    dotted = ".".join(ip.exploded.replace(":", "")) if ip.version == 6 else str(ip)
    values = {"s": run.sender, "l": local or "postmaster", "o": sender_domain or domain,
              "d": domain, "i": dotted, "p": "unknown", "v": "in-addr" if ip.version == 4
              else "ip6", "h": run.helo or domain}  # fmt: skip

    def one(match: re.Match[str]) -> str:
        if match[0] in ("%%", "%_", "%-"):
            return {"%%": "%", "%_": " ", "%-": "%20"}[match[0]]
        letter, digits, reverse, delimiters = match[1], match[2], match[3], match[4]
        if letter.lower() not in values:
            raise _PermError(f"unknown macro %{{{letter}}}")
        parts = re.split("[" + re.escape(delimiters or ".") + "]", values[letter.lower()])
        if reverse:
            parts.reverse()
        if digits:
            if int(digits) == 0:
                raise _PermError("a macro may not keep 0 labels")
            parts = parts[-int(digits) :]
        return ".".join(parts)

    pattern = r"%\{([a-zA-Z])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-"
    if "%" in re.sub(pattern, "", spec):
        raise _PermError(f"a bad macro in {spec!r}")
    return re.sub(pattern, one, spec)


def _record(domain: str, run: _Run) -> Generator[Question, Answer, str]:
    """The domain's one v=spf1 record, "" when it has none (§4.5)."""
    # the checked domain's own record is no term's lookup: only those count as void (§4.6.4)
    texts = yield from _ask(to_name(domain), dns.rdatatype.TXT, run, void=len(run.stack) > 1)
    records = [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]
    if len(records) > 1:
        raise _PermError(f"{domain} publishes {len(records)} SPF records (one is allowed)")
    return records[0] if records else ""


def _check(domain: str, run: _Run) -> Generator[Question, Answer, tuple[SpfVerdict, str, str]]:
    """(verdict, the deciding term, the record) for `domain`; raises on perm/temp errors."""
    if domain.lower() in run.stack:
        raise _PermError(f"include loop: {' → '.join([*run.stack, domain.lower()])}")
    run.stack.append(domain.lower())
    record = yield from _record(domain, run)
    if len(run.stack) == 1:
        run.record = record
    if not record:
        run.stack.pop()
        return SpfVerdict.NONE, "", ""
    redirect = ""
    for term in record.split()[1:]:
        name, sep, value = term.partition("=")
        if sep and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9\-_.]*", name):
            if name.lower() == "redirect":
                if redirect:
                    raise _PermError(f"{domain}: two redirect= modifiers")
                redirect = value
            continue  # exp= and unknown modifiers change no verdict (§6)
        matched = yield from _mechanism(term, domain, run)
        if matched is not None:
            run.stack.pop()
            return matched, term, record
    run.stack.pop()
    if redirect:  # §6.1: only when no mechanism matched (an `all` always does)
        run.count(f"redirect={redirect}")
        target = expand_macros(redirect, domain, run)
        verdict, term, _ = yield from _check(target, run)
        if verdict is SpfVerdict.NONE:
            raise _PermError(f"redirect={target}: {target} has no SPF record")
        return verdict, term, record
    return SpfVerdict.NEUTRAL, "", record


def _mechanism(term: str, domain: str, run: _Run) -> (
    Generator[Question, Answer, SpfVerdict | None]
):  # fmt: skip
    """The term's qualifier when it matches the IP, else None."""
    match = _TERM.match(term)
    if not match:
        raise _PermError(f"{domain}: cannot parse {term!r}")
    qualifier, kind, arg, prefix = match[1] or "+", match[2].lower(), match[3], match[4]
    verdict = _QUALIFIERS[qualifier]
    ip = run.ip
    if kind == "all":
        if arg is not None or prefix:
            raise _PermError(f"{domain}: {term!r} takes no argument")
        return verdict
    if kind in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(f"{arg}{prefix}", strict=False)
        except ValueError:
            raise _PermError(f"{domain}: {term!r} is not a network") from None
        if network.version != (4 if kind == "ip4" else 6):
            raise _PermError(f"{domain}: {term!r} is not an IPv{kind[-1]} network")
        return verdict if ip.version == network.version and ip in network else None
    if kind not in ("a", "mx", "ptr", "exists", "include"):
        raise _PermError(f"{domain}: unknown mechanism {term!r}")
    if arg == "" or (kind in ("include", "exists") and not arg):
        raise _PermError(f"{domain}: {term!r} needs a domain")
    run.count(term)
    target = expand_macros(arg, domain, run) if arg else domain
    if kind == "include":
        found, _, _ = yield from _check(target, run)
        if found is SpfVerdict.NONE:
            raise _PermError(f"{term}: {target} has no SPF record")
        return verdict if found is SpfVerdict.PASS else None
    if kind == "exists":
        records = yield from _ask(to_name(target), dns.rdatatype.A, run)
        return verdict if records else None
    v4, v6 = _cidrs(prefix)
    if kind == "a":
        found_ips = yield from _addresses(to_name(target), run)
        return verdict if _covered(ip, found_ips, v4, v6) else None
    if kind == "mx":
        exchanges = yield from _ask(to_name(target), dns.rdatatype.MX, run)
        if len(exchanges) > MAX_NAMES:
            raise _PermError(f"{term}: more than {MAX_NAMES} MX names")
        for exchange in exchanges:
            host = exchange.split()[-1]
            if host == ".":
                continue
            found_ips = yield from _addresses(to_name(host), run)
            if _covered(ip, found_ips, v4, v6):
                return verdict
        return None
    names = yield from _ask(dns.reversename.from_address(str(ip)), dns.rdatatype.PTR, run)
    for host in names[:MAX_NAMES]:  # ptr (§5.5, not recommended): a validated name in target
        found_ips = yield from _addresses(to_name(host), run)
        if ip in found_ips and to_name(host).is_subdomain(to_name(target)):
            return verdict
    return None


def check_host(ip: str, domain: str, *, sender: str = "", helo: str = "") -> Asking:
    """Evaluate `domain`'s SPF record for `ip`: yields questions, returns the SpfResult.

    `sender` defaults to postmaster@domain (§2.4, the null sender's check)."""
    run = _Run(ipaddress.ip_address(ip), sender or f"postmaster@{domain}", helo)
    try:
        verdict, term, record = yield from _check(domain, run)
    except _PermError as exc:
        return SpfResult(SpfVerdict.PERMERROR, domain, run.record, lookups=run.lookups,
                         voids=run.voids, reason=str(exc))  # fmt: skip
    except _TempError as exc:
        return SpfResult(SpfVerdict.TEMPERROR, domain, run.record, lookups=run.lookups,
                         voids=run.voids, reason=str(exc))  # fmt: skip
    return SpfResult(verdict, domain, record, term, run.lookups, run.voids)
