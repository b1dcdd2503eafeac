"""[core] A sender's posture as receivers judge it before any list: for each sending IP its PTR,
forward-confirmed (FCrDNS) and not generic, and the HELO name resolving to it; for each sending
domain an SPF record covering the IPs, a DMARC record and an MX. Each finding has its fix.

No I/O: the checks are generators that yield DNS questions and are sent Answers (as in `spf`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.reversename

from blmonitor.causes import spf
from blmonitor.models import Answer, Outcome, Severity, Verdict

Question = spf.Question
# With no sending IP, a domain's SPF record is still evaluated (for its errors and its lookup
# count) for an address of TEST-NET-1, which no real record covers (RFC 5737).
NO_IP = "192.0.2.0"
_FAILED = (Outcome.SERVFAIL, Outcome.REFUSED, Outcome.TIMEOUT, Outcome.FAILED)


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    subject: str  # the IP or the domain
    kind: str  # no-ptr, ptr-not-confirmed, generic-ptr, helo, spf-…, dmarc-…, no-mx
    message: str
    fix: str  # one line: what to do, and who does it


@dataclass(frozen=True, slots=True)
class Part:
    """What one check of one subject came to: findings, or why nothing is known."""

    checked: str  # e.g. "PTR of 203.0.113.5"
    findings: tuple[Finding, ...] = ()
    unknown: str = ""  # the lookup that was not answered
    check: str = ""  # which check: ptr, helo, spf, dmarc, mx
    subject: str = ""  # of which IP or domain


@dataclass(frozen=True, slots=True)
class PostureReport:
    ips: tuple[str, ...]
    domains: tuple[str, ...]
    helo: str
    parts: tuple[Part, ...]
    skipped: tuple[str, ...] = ()  # checks not made, and why (no HELO name known…)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for p in self.parts for f in p.findings)

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(f"{p.checked}: {p.unknown}" for p in self.parts if p.unknown)

    @property
    def verdict(self) -> Verdict:
        """Listed for a finding at warning or worse; unknown when a lookup went unanswered or
        nothing was checked; clean otherwise."""
        if any(f.severity >= Severity.WARNING for f in self.findings):
            return Verdict.LISTED
        return Verdict.UNKNOWN if self.unknown or not self.parts else Verdict.CLEAN


# --- generic names -------------------------------------------------------------------------

# Words ISPs put in the names of their customers' dynamic or residential addresses (the naming
# conventions of draft-msullivan-dnsop-generic-naming-schemes and Spamhaus' PBL FAQ): any of
# them in the host part marks the name generic. The weak words mark it only beside digits in
# the same label ("host-5", "static123"), since "host" or "static" alone may name a server.
_STRONG = {
    "dynamic", "dyn", "dynip", "dhcp", "pool", "dsl", "adsl", "vdsl", "xdsl", "cable", "ppp",
    "pppoe", "dialup", "dial", "dialin", "broadband", "residential", "cpe", "ftth", "fttx",
    "unassigned", "customer", "cust", "client", "clients",
}  # fmt: skip
_WEAK = {"host", "ip", "static", "user", "node", "nat", "wireless", "mobile"}


def _ip_forms(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[re.Pattern[str]]:
    if ip.version == 6:
        groups = ip.exploded.split(":")
        return [re.compile(r"[-.]?".join(groups[-4:]))]  # the interface id, written out
    octets = str(ip).split(".")
    padded = [o.zfill(3) for o in octets]
    forms = [
        r"(?<!\d)" + r"\D{1,3}".join(octets) + r"(?!\d)",
        r"(?<!\d)" + r"\D{1,3}".join(reversed(octets)) + r"(?!\d)",
        r"(?<!\d)" + r"\D?".join(padded) + r"(?!\d)",
        rf"(?<![0-9a-f]){int(ip):08x}(?![0-9a-f])",
        rf"(?<!\d){int(ip)}(?!\d)",
    ]
    return [re.compile(f, re.I) for f in forms]


def generic_reason(name: str, ip: str) -> str:
    """Why a PTR name looks generic (dynamic, residential), "" when it looks like a server's.

    A heuristic: the IP written into the name (203-0-113-5, 5.113.0.203, 203000113005, its hex
    or decimal number), or an ISP's word for pools in the labels before the registered domain
    (taken as the last two labels)."""
    text = name.lower().rstrip(".")
    address = ipaddress.ip_address(ip)
    for form in _ip_forms(address):
        if form.search(text):
            return f"the name holds the address {ip}"
    for label in text.split(".")[:-2]:
        words = set(re.findall(r"[a-z]+", label))
        if words & _STRONG:
            return f"the name has the word {sorted(words & _STRONG)[0]!r}"
        if words & _WEAK and re.search(r"\d", label):
            return f"the name has {sorted(words & _WEAK)[0]!r} beside digits"
    return ""


# --- the checks (generators: yield a question, are sent its Answer) -------------------------

Checking = Generator[Question, Answer, Part]

# Why a PTR matters, said with the finding (Gmail's BAD_PTR_RECORD, Spectrum's AUP 1100-1150).
_FCRDNS = ("receivers such as Gmail and Spectrum refuse mail from an address without "
           "forward-confirmed reverse DNS")  # fmt: skip


def _name(text: str) -> dns.name.Name:
    """A name to ask for; dns.exception.DNSException when the text cannot be one."""
    return dns.name.from_text(text.rstrip(".") + ".")


def _failed(answer: Answer, what: str) -> str:
    return f"{what}: {answer.outcome}" + (f" ({answer.detail})" if answer.detail else "")


def _addresses(host: str, version: int) -> Generator[Question, Answer, Answer]:
    rdtype = dns.rdatatype.A if version == 4 else dns.rdatatype.AAAA
    answer = yield (_name(host), rdtype)
    return answer


def check_ptr(ip: str, *, example: str = "mail.example.com") -> Checking:
    """PTR exists, forward-confirms (its name's A/AAAA holds the IP), and is not generic."""
    checked = f"PTR of {ip}"
    version = ipaddress.ip_address(ip).version
    answer = yield (dns.reversename.from_address(ip), dns.rdatatype.PTR)
    if answer.outcome in _FAILED:
        return Part(checked, unknown=_failed(answer, "PTR"))
    names = [r.rstrip(".") for r in answer.records] if answer.outcome is Outcome.RECORDS else []
    if not names:
        return Part(checked, (Finding(
            Severity.CRITICAL, ip, "no-ptr", f"{ip} has no PTR record (reverse DNS): {_FCRDNS}",
            f"ask whoever holds {ip} (your ISP or host) to set its PTR to {example}, "
            f"a name whose A record is {ip}"),))  # fmt: skip
    findings: list[Finding] = []
    confirmed, unanswered = [], []
    for host in names[:5]:
        try:
            forward = yield from _addresses(host, version)
        except dns.exception.DNSException:
            continue
        if forward.outcome in _FAILED:
            unanswered.append(_failed(forward, host))
        elif ip in {str(ipaddress.ip_address(a)) for a in forward.records}:
            confirmed.append(host)
    if not confirmed:
        if unanswered:
            return Part(checked, unknown="; ".join(unanswered))
        kind = "A" if version == 4 else "AAAA"
        findings.append(Finding(
            Severity.CRITICAL, ip, "ptr-not-confirmed",
            f"the PTR of {ip} is {names[0]}, but {names[0]} does not resolve to {ip} "
            f"(not forward-confirmed): {_FCRDNS}",
            f"add `{names[0]}. {kind} {ip}` in the zone of {names[0]}, or have the PTR of {ip} "
            "set to a name that resolves to it"))  # fmt: skip
    for host in confirmed or names[:1]:
        reason = generic_reason(host, ip)
        if reason:
            findings.append(Finding(
                Severity.WARNING, ip, "generic-ptr",
                f"the PTR of {ip}, {host}, looks like a dynamic or residential name ({reason})",
                f"ask whoever holds {ip} to set its PTR to a name of your own domain, such as "
                f"{example}"))  # fmt: skip
            break
    return Part(checked, tuple(findings))


def check_helo(ip: str, helo: str) -> Checking:
    """The MTA's HELO name resolves to the IP (receivers look it up; many reject otherwise)."""
    checked = f"HELO {helo} of {ip}"
    version = ipaddress.ip_address(ip).version
    kind = "A" if version == 4 else "AAAA"
    try:
        answer = yield from _addresses(helo, version)
    except dns.exception.DNSException:
        answer = Answer(Outcome.NXDOMAIN)
    if answer.outcome in _FAILED:
        return Part(checked, unknown=_failed(answer, helo))
    if ip in {str(ipaddress.ip_address(a)) for a in answer.records}:
        return Part(checked)
    found = ", ".join(answer.records) or "nothing"
    return Part(checked, (Finding(
        Severity.WARNING, ip, "helo",
        f"the HELO name {helo} resolves to {found}, not to {ip}",
        f"add `{helo}. {kind} {ip}`, or set the MTA's HELO name (Postfix smtp_helo_name) to a "
        f"name that resolves to {ip}"),))  # fmt: skip


def check_spf(domain: str, ips: Sequence[str]) -> Checking:
    """The domain's SPF record parses, stays within the limits and covers every sending IP."""
    checked = f"SPF of {domain}"
    findings: list[Finding] = []
    for ip in ips or (NO_IP,):
        result = yield from spf.check_host(ip, domain)
        verdict = result.verdict
        if verdict is spf.SpfVerdict.TEMPERROR:
            return Part(checked, tuple(findings), unknown=result.reason)
        if verdict is spf.SpfVerdict.NONE:
            covered = " ".join(f"ip{ipaddress.ip_address(i).version}:{i}" for i in ips)
            return Part(checked, (Finding(
                Severity.WARNING, domain, "spf-missing", f"{domain} publishes no SPF record",
                f'publish `{domain}. TXT "v=spf1 {covered or "mx"} -all"`'),))  # fmt: skip
        if verdict is spf.SpfVerdict.PERMERROR:
            too_many = "DNS lookups" in result.reason
            loop = result.reason.removeprefix("include loop: ").split(" → ")
            fix = (f"the record of {domain} needs {spf.MAX_LOOKUPS} DNS lookups at most: replace "
                   "includes you do not use, or an include by its ip4:/ip6: ranges" if too_many
                   else f"remove the include of {loop[-1]} from the SPF record of {loop[-2]}: "
                   "it leads back to a record already being read"
                   if result.reason.startswith("include loop: ") and len(loop) > 1
                   else f"correct the SPF record of {domain} (receivers treat it as absent or "
                   "reject)")  # fmt: skip
            return Part(checked, (Finding(
                Severity.CRITICAL, domain, "spf-lookups" if too_many else "spf-invalid",
                f"the SPF record of {domain} is unusable: {result.reason}", fix),))  # fmt: skip
        if ip == NO_IP or verdict is spf.SpfVerdict.PASS:
            continue
        how = f" ({result.mechanism})" if result.mechanism else ""
        findings.append(Finding(
            Severity.WARNING, domain, "spf-not-covering",
            f"the SPF record of {domain} does not cover {ip}: {verdict}{how}",
            f"add ip{ipaddress.ip_address(ip).version}:{ip} to the SPF record of {domain}, "
            "before its `all`"))  # fmt: skip
    return Part(checked, tuple(findings))


def parse_dmarc(record: str) -> dict[str, str]:
    """The tags of a DMARC record (RFC 7489 §6.4); ValueError when it is not one."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.strip().partition("=")
        if not part.strip():
            continue
        if not sep:
            raise ValueError(f"{part.strip()!r} is not tag=value")
        tags.setdefault(name.strip().lower(), value.strip())
    if next(iter(tags), "") != "v" or tags["v"] != "DMARC1":
        raise ValueError("it does not begin with v=DMARC1")
    if tags.get("p", "").lower() not in ("none", "quarantine", "reject"):
        raise ValueError(f"p={tags.get('p', '')!r}: give none, quarantine or reject")
    return tags


def check_dmarc(domain: str) -> Checking:
    """A DMARC record at _dmarc.<domain>, else at a parent domain (the organizational domain,
    taken without the public suffix list: parents down to two labels)."""
    checked = f"DMARC of {domain}"
    labels = domain.split(".")
    for start in range(max(len(labels) - 1, 1)):
        where = "_dmarc." + ".".join(labels[start:])
        answer = yield (_name(where), dns.rdatatype.TXT)
        if answer.outcome in _FAILED:
            return Part(checked, unknown=_failed(answer, where))
        records = [r for r in answer.records if r.lower().startswith("v=dmarc1")]
        if len(records) > 1:
            return Part(checked, (_bad_dmarc(domain, where, f"{len(records)} records"),))
        if records:
            try:
                parse_dmarc(records[0])
            except ValueError as exc:
                return Part(checked, (_bad_dmarc(domain, where, str(exc)),))
            return Part(checked)
    return Part(checked, (Finding(
        Severity.WARNING, domain, "no-dmarc", f"{domain} publishes no DMARC record",
        f'publish `_dmarc.{domain}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"` '
        "(Gmail and Yahoo require one of bulk senders)"),))  # fmt: skip


def _bad_dmarc(domain: str, where: str, why: str) -> Finding:
    return Finding(Severity.WARNING, domain, "dmarc-invalid",
                   f"the DMARC record at {where} is unusable: {why}",
                   f'publish one record: `{where}. TXT "v=DMARC1; p=none"`')  # fmt: skip


def check_mx(domain: str) -> Checking:
    """An MX, so replies and bounces can reach the domain (receivers check a sender's)."""
    checked = f"MX of {domain}"
    answer = yield (_name(domain), dns.rdatatype.MX)
    if answer.outcome in _FAILED:
        return Part(checked, unknown=_failed(answer, "MX"))
    hosts = [r.split()[-1] for r in answer.records]
    if hosts and hosts != ["."]:
        return Part(checked)
    said = "a null MX (RFC 7505: it takes no mail)" if hosts else "no MX record"
    return Part(
        checked,
        (
            Finding(
                Severity.WARNING,
                domain,
                "no-mx",
                f"{domain} has {said}",
                f"publish `{domain}. MX 10 mail.{domain}.` for the server that receives its mail",
            ),
        ),
    )


def _named(check: str, subject: str, checking: Checking) -> Checking:
    part = yield from checking
    return replace(part, check=check, subject=subject)


def posture_checks(ips: Sequence[str], domains: Sequence[str], helo: str) -> list[Checking]:
    """Every check of a posture, in report order: each IP's, then each domain's."""
    example = helo or (f"mail.{domains[0]}" if domains else "mail.example.com")
    checks: list[Checking] = []
    for ip in ips:
        checks.append(_named("ptr", ip, check_ptr(ip, example=example)))
        if helo:
            checks.append(_named("helo", ip, check_helo(ip, helo)))
    for domain in domains:
        checks.extend((_named("spf", domain, check_spf(domain, ips)),
                       _named("dmarc", domain, check_dmarc(domain)),
                       _named("mx", domain, check_mx(domain))))  # fmt: skip
    return checks


def still_stands(report: PostureReport, check: str, subject: str) -> bool:
    """Whether an earlier finding of `check` about `subject` stands after `report` without
    finding it again: when the subject was looked at but that check was not answered in full
    (a lookup unanswered, no HELO name known this time). A finding goes only when its check
    was answered, or when its subject is no longer the monitor's."""
    if subject not in report.ips and subject not in report.domains:
        return False
    return not any(p.check == check and p.subject == subject and not p.unknown
                   for p in report.parts)  # fmt: skip


def not_checked(ips: Sequence[str], domains: Sequence[str]) -> tuple[str, ...]:
    """The half of the posture left out, and what would bring it in."""
    if ips and not domains:
        return ("SPF, DMARC and MX: no sending domain (give a domain TARGET, or set [posture] "
                "domains in the config)",)  # fmt: skip
    if domains and not ips:
        return ("PTR and HELO: no sending address (give an address TARGET, or set [monitor] "
                "targets in the config)",)  # fmt: skip
    return ()


def render_posture(report: PostureReport) -> str:
    """Findings (worst first) with their fixes; one line when there is nothing to say."""
    out: list[str] = []
    for f in sorted(report.findings, key=lambda f: -f.severity):
        out.append(f"{f.severity.label.upper():<8}  {f.subject}: {f.message}")
        out.append(f"{'':<8}  fix: {f.fix}")
    if not report.findings and not report.unknown:
        out.append("posture: nothing to fix")
    out.append("checked: " + (", ".join(p.checked for p in report.parts) or "nothing"))
    out.extend(f"unknown: {line}" for line in report.unknown)
    out.extend(f"not checked: {line}" for line in report.skipped)
    return "\n".join(out) + "\n"


def posture_json(report: PostureReport) -> dict[str, Any]:
    return {
        "verdict": str(report.verdict), "ips": list(report.ips),
        "domains": list(report.domains), "helo": report.helo,
        "findings": [{"severity": f.severity.label, "subject": f.subject, "kind": f.kind,
                      "message": f.message, "fix": f.fix} for f in report.findings],
        "checked": [p.checked for p in report.parts], "unknown": list(report.unknown),
        "skipped": list(report.skipped),
    }  # fmt: skip
