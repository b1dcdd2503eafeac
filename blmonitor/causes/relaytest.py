"""The SMTP open-relay probe, in the spirit of the telnet test: relay attempts from outside.

`build_attempts` and `judge_relay` are pure: the MAIL FROM / RCPT TO pairs (address tricks
included), and the verdict from the answers, the probe's source address and the networks the
MTA trusts. `probe` is the only I/O (smtplib): EHLO, then for each attempt MAIL, RCPT and RSET.
It never sends DATA, so no mail is ever sent: a 2xx to RCPT is enough to call the relay open.
"""

from __future__ import annotations

import enum
import errno
import ipaddress
import re
import smtplib
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blmonitor.dnsbl.report import table

__all__ = [
    "Attempt",
    "AttemptResult",
    "Judgement",
    "Outcome",
    "RelayReport",
    "RelayVerdict",
    "TrustMatch",
    "TrustedNetworks",
    "build_attempts",
    "judge_relay",
    "match_trusted",
    "probe",
    "render_report",
    "report_json",
    "verdict_line",
]

EXTERNAL_DOMAIN = "relaytest.invalid"  # RFC 2606: .invalid never resolves, mail cannot leave
SENDER_DOMAIN = "sender.invalid"
USER = "relaytest"
HELO = "relaytest.invalid"

# The only commands probe() may write. DATA, BDAT, and anything that carries a message
# body are absent on purpose; `_Session.command` refuses the rest.
_ALLOWED = frozenset({"MAIL", "RCPT", "RSET"})


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"  # 2xx to RCPT TO: the server agreed to take the mail
    REFUSED = "refused"  # 4xx/5xx to MAIL FROM or RCPT TO
    ERROR = "error"  # no answer we can read: dropped, timed out, 421, not tried


class RelayVerdict(enum.StrEnum):
    OPEN = "open"  # at least one attempt was accepted
    CLOSED = "closed"  # every attempt was refused
    UNKNOWN = "unknown"  # none accepted, but some could not be tried or read
    # sent from an address the MTA trusts (loopback is in Postfix's default mynetworks): an
    # accepted attempt may be relaying by design, so neither OPEN nor CLOSED can be said
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One relay attempt: an envelope sender and an outside recipient (no angle brackets)."""

    name: str
    description: str
    mail_from: str
    rcpt_to: str

    def __post_init__(self) -> None:
        for value in (self.mail_from, self.rcpt_to):
            if any(c in value for c in "\r\n<>\0") or value != value.strip():
                raise ValueError(f"attempt {self.name}: {value!r} cannot go into an SMTP command")


@dataclass(frozen=True, slots=True)
class AttemptResult:
    attempt: Attempt
    outcome: Outcome
    stage: str = ""  # the command that decided: MAIL, RCPT, or "" when not tried
    code: int = 0
    reply: str = ""  # the server's reply text, or what went wrong


POSTFIX = "Postfix"
EXIM = "Exim"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Exim looks "localhost" up in /etc/hosts; RFC 6761 reserves it for the loopback addresses.
_LOCALHOST = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True, slots=True)
class TrustedNetworks:
    """The clients an MTA relays for by design: Postfix `mynetworks`, Exim `relay_from_hosts`."""

    mta: str  # POSTFIX or EXIM: which list syntax `value` is in
    setting: str  # "mynetworks", "relay_from_hosts"
    value: str  # as the MTA reports it (Postfix computes it from mynetworks_style when unset)
    origin: str = ""  # where an unset value came from, e.g. "mynetworks_style = host"

    @property
    def patterns(self) -> tuple[str, ...]:
        if self.mta == EXIM:
            return _exim_items(self.value)
        # postconf(5): "separated by commas and/or whitespace"
        return tuple(p for p in re.split(r"[\s,]+", self.value) if p)


def _exim_items(value: str) -> tuple[str, ...]:
    """An Exim list: ':' separates unless it starts with '<' and another separator; in a
    colon list '::' is a literal colon (so ::1 is written ::::1)."""
    text = value.strip()
    sep = ":"
    if text.startswith("<") and len(text) > 1 and not text[1].isspace():
        sep, text = text[1], text[2:]
    if sep == ":":
        parts = [p.replace("\0", ":") for p in text.replace("::", "\0").split(":")]
    else:
        parts = text.split(sep)
    return tuple(p.strip() for p in parts if p.strip())


def _networks(pattern: str) -> tuple[_Network, ...] | None:
    """The networks an address pattern names ([::1]/128 as Postfix writes it); None when it
    needs what a pure function cannot do: a table, a file, a name to look up."""
    try:
        return (ipaddress.ip_network(pattern.replace("[", "").replace("]", ""), strict=False),)
    except ValueError:
        return None


def _matches(mta: str, source: ipaddress.IPv4Address | ipaddress.IPv6Address, pattern: str) -> (
    bool | None
):  # fmt: skip
    if mta == EXIM and pattern in ("*", "@[]"):
        return True  # @[] is any address of this host, and the probe's source is one of them
    networks = _LOCALHOST if mta == EXIM and pattern.lower() == "localhost" else _networks(pattern)
    if networks is None:
        return None
    return any(source in network for network in networks if network.version == source.version)


@dataclass(frozen=True, slots=True)
class TrustMatch:
    pattern: str
    certain: bool  # False: the pattern could not be evaluated, so the source may be in it


def match_trusted(source: str, trusted: TrustedNetworks) -> TrustMatch | None:
    """The pattern of `trusted` that takes in `source`, first match wins (a !pattern that matches
    excludes it); None when none does. A pattern that cannot be evaluated stops the walk as a
    possible match: the answer must never be "not trusted" when it might be."""
    address = ipaddress.ip_address(source.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 to the MTA's lists
    for pattern in trusted.patterns:
        negated = pattern.startswith("!")
        found = _matches(trusted.mta, address, pattern.lstrip("!").strip())
        if found is None:
            return TrustMatch(pattern, certain=False)
        if found:
            return None if negated else TrustMatch(pattern, certain=True)
    return None


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: RelayVerdict
    reason: str = ""  # why it is inconclusive


def judge_relay(
    results: Sequence[AttemptResult],
    *,
    source: str = "",
    trusted: Sequence[TrustedNetworks] = (),
) -> Judgement:
    """OPEN when an attempt was accepted, CLOSED when all were refused, UNKNOWN otherwise, and
    INCONCLUSIVE whatever the answers when `source` is (or may be) in the `trusted` networks
    of the MTA probed: an MTA relays for those by design, so the probe proves nothing."""
    for networks in trusted if source else ():
        found = match_trusted(source, networks)
        if found is not None:
            return Judgement(RelayVerdict.INCONCLUSIVE, _inconclusive(source, networks, found))
    if any(r.outcome is Outcome.ACCEPTED for r in results):
        return Judgement(RelayVerdict.OPEN)
    if results and all(r.outcome is Outcome.REFUSED for r in results):
        return Judgement(RelayVerdict.CLOSED)
    return Judgement(RelayVerdict.UNKNOWN)


def _inconclusive(source: str, trusted: TrustedNetworks, found: TrustMatch) -> str:
    shown = trusted.value.strip() or "empty"
    if trusted.origin:
        shown += f", from {trusted.origin}"
    if not found.certain:
        shown += f"; blmonitor cannot evaluate {found.pattern}"
    where = "is in" if found.certain else "may be in"
    return (f"inconclusive from here: {source} {where} {trusted.mta}'s {trusted.setting} "
            f"({shown}), so it may relay by design; run it from outside your network")  # fmt: skip


@dataclass(frozen=True, slots=True)
class RelayReport:
    host: str
    port: int
    results: tuple[AttemptResult, ...] = ()
    banner: str = ""
    error: str = ""  # why the probe stopped before every attempt had an answer
    source: str = ""  # our end of the SMTP connection, once connected
    peer: str = ""  # the server's end: the address the host name led to
    this_host: bool = False  # the peer is one of this machine's own addresses
    trusted: tuple[TrustedNetworks, ...] = ()  # this host's MTA trusts these (read when this_host)
    note: str = ""  # why the trust settings of this host's MTA could not be read

    @property
    def accepted(self) -> tuple[AttemptResult, ...]:
        return tuple(r for r in self.results if r.outcome is Outcome.ACCEPTED)

    @property
    def judgement(self) -> Judgement:
        return judge_relay(self.results, source=self.source, trusted=self.trusted)

    @property
    def verdict(self) -> RelayVerdict:
        return self.judgement.verdict

    @property
    def open(self) -> bool:
        return self.verdict is RelayVerdict.OPEN


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return ""


def _literal(ip: str) -> str:
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def build_attempts(
    target: str,
    *,
    local_domain: str = "",
    target_ip: str = "",
    external_domain: str = EXTERNAL_DOMAIN,
    sender_domain: str = SENDER_DOMAIN,
    user: str = USER,
) -> tuple[Attempt, ...]:
    """The relay attempts against `target` (a host name or an IP address).

    `local_domain` is a domain the server receives mail for (else the host name, else its
    address literal stands in); `target_ip` adds the [address] tricks when `target` is a name.
    The outside domains default to .invalid names, so an open relay cannot deliver them.
    """
    ip = _ip(target) or _ip(target_ip)
    host = "" if _ip(target) else target.strip().rstrip(".").lower()
    literal = _literal(ip) if ip else ""
    local = local_domain.strip().rstrip(".").lower() or host or literal
    if not local:
        raise ValueError("relay attempts need a target host name or address")
    outside = f"{user}@{external_domain}"
    stranger = f"{user}@{sender_domain}"
    attempts = [
        Attempt("external-sender", "an outside sender to an outside recipient", stranger, outside),
        Attempt("null-sender", "the null sender <> (a bounce) to an outside recipient",
                "", outside),
        Attempt("unqualified-sender", "a sender without a domain", user, outside),
        Attempt("local-sender", f"the server's own domain ({local}) as sender",
                f"{user}@{local}", outside),
    ]  # fmt: skip
    if host and host != local:
        attempts.append(
            Attempt("host-sender", "the server's host name as sender", f"{user}@{host}", outside)
        )
    if literal and literal != local:
        attempts.append(
            Attempt("ip-sender", "the server's address literal as sender", f"{user}@{literal}",
                    outside)
        )  # fmt: skip
    attempts += [
        Attempt("trailing-dot", "an outside recipient domain written with a trailing dot",
                stranger, f"{outside}."),
        Attempt("percent-hack", "percent hack: user%outside@local",
                stranger, f"{user}%{external_domain}@{local}"),
    ]  # fmt: skip
    if literal and literal != local:
        attempts.append(
            Attempt("percent-hack-ip", "percent hack at the address literal: user%outside@[ip]",
                    stranger, f"{user}%{external_domain}@{literal}")
        )  # fmt: skip
    attempts += [
        Attempt("bang-path", "UUCP bang path: outside!user@local",
                stranger, f"{external_domain}!{user}@{local}"),
        Attempt("bang-path-bare", "UUCP bang path without a domain: outside!user",
                stranger, f"{external_domain}!{user}"),
        Attempt("quoted-at", 'a quoted local part holding an @: "user@outside"@local',
                stranger, f'"{outside}"@{local}'),
        Attempt("quoted-at-bare", 'a quoted outside address without a domain: "user@outside"',
                stranger, f'"{outside}"'),
        Attempt("source-route", "an RFC 821 source route through the server: @local:user@outside",
                stranger, f"@{local}:{outside}"),
    ]  # fmt: skip
    return tuple(attempts)


class _Lost(Exception):
    """The session is gone (dropped, timed out, 421): the detail says how, for a person."""


class _Session:
    """One SMTP session through smtplib; only EHLO/HELO, MAIL, RCPT, RSET and QUIT."""

    def __init__(self, host: str, port: int, *, timeout: float, helo: str, source: str) -> None:
        self.timeout = timeout
        self.where = _where(host, port)
        self.wanted = source
        self.source = self.peer = ""  # the two ends of the connection, once connected
        # local_hostname is given so that smtplib does not ask the resolver for our FQDN.
        self.client = smtplib.SMTP(local_hostname=helo, timeout=timeout,
                                   source_address=(source, 0) if source else None)  # fmt: skip
        try:
            self.banner = self._greet(host, port, helo)
        except _Lost:
            self.close()
            raise

    def _greet(self, host: str, port: int, helo: str) -> str:
        code, banner = self._call(lambda: self.client.connect(host, port), "connect")
        if self.client.sock is not None:
            self.source = _host_of(self.client.sock.getsockname())
            self.peer = _host_of(self.client.sock.getpeername())
        if code != 220:
            raise _Lost(f"{self.where} greeted us with {_reply(code, banner)}"
                        ": it refuses our connections")  # fmt: skip
        code, text = self._call(lambda: self.client.ehlo(helo), "EHLO")
        if code == 421:
            raise _Lost(f"{self.where} answered EHLO with {_reply(code, text)}")
        if not 200 <= code < 300:
            code, text = self._call(lambda: self.client.helo(helo), "HELO")
            if not 200 <= code < 300:
                raise _Lost(f"{self.where} refused both EHLO and HELO: {_reply(code, text)}")
        return banner

    def _why(self, exc: BaseException, doing: str) -> str:
        text = str(exc)
        if isinstance(exc, TimeoutError) or "timed out" in text:
            return f"{self.where}: no answer to {doing} within {self.timeout:g} s"
        if isinstance(exc, OSError) and exc.errno == errno.EADDRNOTAVAIL and self.wanted:
            return f"{self.where}: cannot send from {self.wanted}: not an address of this machine"
        if isinstance(exc, ConnectionRefusedError):
            return f"{self.where}: connection refused (is an SMTP server listening there?)"
        if isinstance(exc, socket.gaierror):
            return f"{self.where}: the host name does not resolve ({exc.strerror})"
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return f"{self.where} closed the connection at {doing}"
        if isinstance(exc, smtplib.SMTPResponseException):
            reply = _reply(exc.smtp_code, exc.smtp_error)
            return f"{self.where}: unreadable reply to {doing}: {reply}"
        return f"{self.where}: {doing} failed: {text or type(exc).__name__}"

    def _call(self, call: Any, doing: str) -> tuple[int, str]:
        try:
            code, raw = call()
        except (smtplib.SMTPException, OSError) as exc:
            raise _Lost(self._why(exc, doing)) from exc
        return int(code), _text(raw)

    def command(self, verb: str, argument: str = "") -> tuple[int, str]:
        if verb not in _ALLOWED:  # pragma: no cover - a programming error, never data
            raise AssertionError(f"the relay probe never sends {verb}")
        code, text = self._call(lambda: self.client.docmd(verb, argument), verb)
        if code == 421:
            raise _Lost(f"{self.where} answered {verb} with {_reply(code, text)}")
        if code == -1:
            raise _Lost(f"{self.where}: unreadable reply to {verb}: {text!r}")
        return code, text

    def close(self) -> None:
        try:
            self.client.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            self.client.close()


def _host_of(sockaddr: Any) -> str:
    return str(sockaddr[0]).partition("%")[0]  # an IPv6 link-local scope is not part of it


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())


def _reply(code: int, raw: bytes | str) -> str:
    return f"{code} {_text(raw)}".strip()


def _judged(attempt: Attempt, stage: str, code: int, text: str) -> AttemptResult:
    if 200 <= code < 300:
        return AttemptResult(attempt, Outcome.ACCEPTED, stage, code, text)
    if 400 <= code < 600:
        return AttemptResult(attempt, Outcome.REFUSED, stage, code, text)
    return AttemptResult(attempt, Outcome.ERROR, stage, code, f"unexpected reply: {text}")


def _try(session: _Session, attempt: Attempt) -> AttemptResult:
    """MAIL FROM, then RCPT TO if MAIL passed; raises _Lost when the session dies."""
    code, text = session.command("MAIL", f"FROM:<{attempt.mail_from}>")
    if not 200 <= code < 300:
        return _judged(attempt, "MAIL", code, text)
    code, text = session.command("RCPT", f"TO:<{attempt.rcpt_to}>")
    return _judged(attempt, "RCPT", code, text)


def probe(
    host: str,
    port: int,
    attempts: Sequence[Attempt],
    *,
    timeout: float = 30.0,
    helo: str = HELO,
    per_session: int = 8,
    source: str = "",
) -> RelayReport:
    """Try each attempt on `host`:`port` and report which were accepted; never sends DATA.

    A new session is opened every `per_session` attempts (servers slow down or drop clients
    after many refusals), and once more when a session dies after some progress: the attempt
    it died on is tried again. Connection problems are data in the report, never exceptions.
    `source` binds our end to one of this machine's addresses (else the kernel picks one); the
    report says which address was ours and which was the server's.
    """
    pending = list(attempts)
    results: list[AttemptResult] = []
    banner, error, ends = "", "", ("", "")
    while pending and not error:
        try:
            session = _Session(host, port, timeout=timeout, helo=helo, source=source)
        except _Lost as lost:
            error = str(lost)
            break
        banner = banner or session.banner
        ends = ends if ends[0] else (session.source, session.peer)
        done = 0
        try:
            while pending and done < max(per_session, 1):
                try:
                    result = _try(session, pending[0])
                except _Lost as lost:
                    if done == 0:  # a fresh session died on this attempt: give up on it
                        attempt = pending.pop(0)
                        results.append(AttemptResult(attempt, Outcome.ERROR, "", 0, str(lost)))
                        error = str(lost)
                    break
                pending.pop(0)
                results.append(result)
                done += 1
                try:
                    session.command("RSET")
                except _Lost:
                    break  # the answer is in; the next attempt gets a new session
        finally:
            session.close()
    results += [AttemptResult(a, Outcome.ERROR, "", 0, f"not tried: {error}") for a in pending]
    return RelayReport(host, port, tuple(results), banner=banner, error=error, source=ends[0],
                       peer=ends[1])  # fmt: skip


def _address(text: str) -> str:
    return f"<{text}>"


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def verdict_line(report: RelayReport) -> str:
    """One line: OPEN RELAY (naming the accepted attempts), CLOSED, INCONCLUSIVE or UNKNOWN and
    why."""
    where = _where(report.host, report.port)
    total = len(report.results)
    judgement = report.judgement
    if judgement.verdict is RelayVerdict.INCONCLUSIVE:
        return f"INCONCLUSIVE: {where}: {judgement.reason}"
    if judgement.verdict is RelayVerdict.OPEN:
        names = ", ".join(r.attempt.name for r in report.accepted)
        return (f"OPEN RELAY: {where} accepted {len(report.accepted)} of {total} relay attempts"
                f" ({names}): close the relay before you ask for delisting")  # fmt: skip
    if judgement.verdict is RelayVerdict.CLOSED:
        return f"CLOSED: {where} refused all {total} relay attempts"
    errors = (f"{r.attempt.name}: {r.reply}" for r in report.results if r.outcome is Outcome.ERROR)
    why = report.error or next(errors, "no relay attempts")
    return f"UNKNOWN: {where} could not be tested to the end: {why}"


def render_report(report: RelayReport) -> str:
    """The human report: one row per attempt, a note when the trust settings of this host's MTA
    could not be read, then one verdict line."""
    lines: list[str] = []
    tried = [r for r in report.results if r.outcome is not Outcome.ERROR or r.stage]
    if tried:  # a server that could not be reached: the verdict line alone says it
        rows = [["attempt", "MAIL FROM", "RCPT TO", "result", "reply"]]
        for r in report.results:
            reply = (
                f"{r.stage} {r.reply}".strip() if r.code == 0 else f"{r.stage} {r.code} {r.reply}"
            )
            rows.append([r.attempt.name, _address(r.attempt.mail_from),
                         _address(r.attempt.rcpt_to), r.outcome.value, reply[:100]])  # fmt: skip
        lines += table(rows)
        lines.append("")
    if report.note:
        lines.append(f"note: {report.note}")
    lines.append(verdict_line(report))
    return "\n".join(lines) + "\n"


def report_json(report: RelayReport) -> dict[str, Any]:
    judgement = report.judgement
    return {
        "host": report.host,
        "port": report.port,
        "verdict": judgement.verdict.value,
        "open": judgement.verdict is RelayVerdict.OPEN,
        "reason": judgement.reason or None,
        "source": report.source or None,
        "address": report.peer or None,
        "this_host": report.this_host,
        "trusted": [
            {"mta": t.mta, "setting": t.setting, "value": t.value, "origin": t.origin or None}
            for t in report.trusted
        ],
        "note": report.note or None,
        "banner": report.banner or None,
        "error": report.error or None,
        "attempts": [
            {
                "name": r.attempt.name,
                "description": r.attempt.description,
                "mail_from": r.attempt.mail_from,
                "rcpt_to": r.attempt.rcpt_to,
                "result": r.outcome.value,
                "stage": r.stage or None,
                "code": r.code or None,
                "reply": r.reply or None,
            }
            for r in report.results
        ],
    }
