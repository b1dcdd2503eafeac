"""The SMTP open-relay probe, in the spirit of the telnet test: relay attempts from outside.

`build_attempts` is pure: the list of MAIL FROM / RCPT TO pairs, address tricks included.
`probe` is the only I/O (smtplib): EHLO, then for each attempt MAIL, RCPT and RSET. It never
sends DATA, so no mail is ever sent: a 2xx to RCPT is enough to call the relay open.
"""

from __future__ import annotations

import enum
import ipaddress
import smtplib
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blmonitor.dnsbl.report import table

__all__ = [
    "Attempt",
    "AttemptResult",
    "Outcome",
    "RelayReport",
    "RelayVerdict",
    "build_attempts",
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


@dataclass(frozen=True, slots=True)
class RelayReport:
    host: str
    port: int
    results: tuple[AttemptResult, ...] = ()
    banner: str = ""
    error: str = ""  # why the probe stopped before every attempt had an answer

    @property
    def accepted(self) -> tuple[AttemptResult, ...]:
        return tuple(r for r in self.results if r.outcome is Outcome.ACCEPTED)

    @property
    def open(self) -> bool:
        return bool(self.accepted)

    @property
    def verdict(self) -> RelayVerdict:
        if self.open:
            return RelayVerdict.OPEN
        if self.results and all(r.outcome is Outcome.REFUSED for r in self.results):
            return RelayVerdict.CLOSED
        return RelayVerdict.UNKNOWN


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

    def __init__(self, host: str, port: int, *, timeout: float, helo: str) -> None:
        self.timeout = timeout
        self.where = _where(host, port)
        # local_hostname is given so that smtplib does not ask the resolver for our FQDN.
        self.client = smtplib.SMTP(local_hostname=helo, timeout=timeout)
        try:
            self.banner = self._greet(host, port, helo)
        except _Lost:
            self.close()
            raise

    def _greet(self, host: str, port: int, helo: str) -> str:
        code, banner = self._call(lambda: self.client.connect(host, port), "connect")
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
) -> RelayReport:
    """Try each attempt on `host`:`port` and report which were accepted; never sends DATA.

    A new session is opened every `per_session` attempts (servers slow down or drop clients
    after many refusals), and once more when a session dies after some progress: the attempt
    it died on is tried again. Connection problems are data in the report, never exceptions.
    """
    pending = list(attempts)
    results: list[AttemptResult] = []
    banner, error = "", ""
    while pending and not error:
        try:
            session = _Session(host, port, timeout=timeout, helo=helo)
        except _Lost as lost:
            error = str(lost)
            break
        banner = banner or session.banner
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
    return RelayReport(host, port, tuple(results), banner=banner, error=error)


def _address(text: str) -> str:
    return f"<{text}>"


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def verdict_line(report: RelayReport) -> str:
    """One line: OPEN RELAY (naming the accepted attempts), CLOSED, or UNKNOWN and why."""
    where = _where(report.host, report.port)
    total = len(report.results)
    if report.verdict is RelayVerdict.OPEN:
        names = ", ".join(r.attempt.name for r in report.accepted)
        return (f"OPEN RELAY: {where} accepted {len(report.accepted)} of {total} relay attempts"
                f" ({names}): close the relay before you ask for delisting")  # fmt: skip
    if report.verdict is RelayVerdict.CLOSED:
        return f"CLOSED: {where} refused all {total} relay attempts"
    errors = (f"{r.attempt.name}: {r.reply}" for r in report.results if r.outcome is Outcome.ERROR)
    why = report.error or next(errors, "no relay attempts")
    return f"UNKNOWN: {where} could not be tested to the end: {why}"


def render_report(report: RelayReport) -> str:
    """The human report: one row per attempt, then one verdict line."""
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
    lines.append(verdict_line(report))
    return "\n".join(lines) + "\n"


def report_json(report: RelayReport) -> dict[str, Any]:
    return {
        "host": report.host,
        "port": report.port,
        "verdict": report.verdict.value,
        "open": report.open,
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
