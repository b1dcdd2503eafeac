"""Returned messages (DSNs and NDRs) → one BounceRecord per failed or delayed recipient.

RFC 3464 delivery-status parts come first; then one detector per non-standard text format
(Exim, qmail/Yahoo, Postfix/Sendmail plain text, DragonFly, Gmail, Exchange/Office 365, and
after them Google Groups, Zoho, m-FILTER, IMail, 1&1/GMX, X1, X3, MX Logic; and, when nothing
else found a recipient, Lotus Notes, KDDI, TrendMicro, Active!hunter, BIGLOBE, Domino, Amazon SES
JSON, X6, MailFoundry, Mimecast, MessageLabs, MailMarshal, Apache James, EZweb, X2).
Parsing is pure and never raises; only `read_path` opens files.
"""

from __future__ import annotations

import binascii
import email
import email.message
import functools
import itertools
import os
import quopri
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from blmonitor.bounces.models import BounceRecord

if TYPE_CHECKING:
    import logging

__all__ = ["parse_mbox", "parse_message", "read_path"]

# (`Message()` has the compat32 policy, as `email.message_from_string` does: importing
# email.policy for it would cost more than the rest of the email imports a run needs.)
Message = email.message.Message
_T = TypeVar("_T")


def _log() -> logging.Logger:
    """This module's logger: `logging` is imported only when something is logged (a scan
    of bounces needs it only for unreadable files and messages that failed to parse)."""
    import logging

    return logging.getLogger(__name__)


# Bounces are hostile input: cap what the text detectors look at so that no message costs
# more than a few milliseconds (the returned copy of the original is not needed).
_MAX_TEXT = 64 * 1024

_ADDR = r"[^\s<>\"(),;:@]+@[^\s<>\"(),;:@]+\.[A-Za-z0-9-]+"
_REPLY_CODE = re.compile(r"(?:^|[\s(\[#'\"])([245]\d\d)(?=[\s\-:]|$)")
_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.]*\d)")
_SMTP_TYPE = re.compile(r"^\s*(?:smtp|x-[\w-]+|dns|rfc822|x-unix)\s*;\s*", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"^Message-I[Dd]:[ \t]*(<[^>\s]+>)", re.MULTILINE | re.IGNORECASE)
_COMMANDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"in reply to (?:the )?end of data", re.I), "DATA"),
    (re.compile(r"final DATA|after end of data|end of DATA command", re.I), "DATA"),
    (re.compile(r"in reply to (RCPT TO|MAIL FROM|DATA|HELO|EHLO|STARTTLS|AUTH)", re.I), ""),
    (re.compile(r"after (RCPT TO|MAIL FROM|DATA|HELO|EHLO|STARTTLS|AUTH)\b", re.I), ""),
    (re.compile(r"did not like our (RCPT TO|MAIL FROM|DATA|HELO|EHLO)", re.I), ""),
    (re.compile(r"(RCPT TO|MAIL FROM|DATA) response", re.I), ""),
    (re.compile(r"\[(RCPT_TO|MAIL_FROM)\]"), ""),
    (re.compile(r"sender was rejected", re.I), "MAIL"),
    (re.compile(r"failed after I sent the message|my message was rejected", re.I), "DATA"),
    (re.compile(r"after initial connection|initial server greeting|connect to ", re.I), "CONN"),
    (re.compile(r"^>>> (RCPT|MAIL|DATA|HELO|EHLO)", re.I | re.M), ""),
)
_COMMAND_NAMES = {"RCPT TO": "RCPT", "RCPT_TO": "RCPT", "MAIL FROM": "MAIL", "MAIL_FROM": "MAIL"}


@dataclass
class _Hit:
    """A recipient as one detector read it, before it becomes a BounceRecord."""

    recipient: str
    action: str = ""
    status: str = ""
    reply_code: str = ""
    remote_mta: str = ""
    diagnostic: str = ""
    command: str = ""
    date: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)
    fills: bool = True  # may complete a DSN's record of the same recipient (`_fill`)


# --------------------------------------------------------------------------- helpers


def _normalise(data: bytes) -> bytes:
    if b"\r" not in data:  # (the usual case, and every chunk of an mbox already normalised)
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _strip_type(value: str) -> str:
    """'dns; mx.example.jp' → 'mx.example.jp', 'rfc822; a@b' → 'a@b', 'smtp; 550 …' → '550 …'."""
    return _SMTP_TYPE.sub("", _one_line(value), count=1).strip()


_MAILTO = re.compile(r"<mailto:[^>]*>$")


def _clean_addr(value: str) -> str:
    value = _strip_type(value).strip().strip("<>").strip()
    if "<mailto:" in value:
        value = _MAILTO.sub("", value)
    return value.strip("<>\"' ")


def _parse_date(value: str) -> datetime | None:
    return _parsed_date(value) if value else None


@functools.lru_cache(maxsize=256)
def _parsed_date(value: str) -> datetime | None:
    """(A datetime is immutable, and the same dates come back: a per-message Arrival-Date for
    each recipient, a Date header and the Last-Attempt-Date of the same minute.)"""
    try:
        return parsedate_to_datetime(_one_line(value).split(" (")[0])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# Every pattern of _COMMANDS holds one of these (lower-cased): on ASCII text, none of them
# means no command (the case-insensitive patterns are slow to try one by one).
_COMMAND_NEEDLES = (
    "reply to", "data", "after", "did not like", "response", "[rcpt_to]", "[mail_from]",
    "sender was rejected", "message was rejected", "greeting", "connect to ", ">>> ",
)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _command_of(text: str) -> str:
    """The SMTP command a reply text names. (Cached: a record's diagnostic is read here by the
    detector, then by `_dsn_hits` or `_to_record`, often unchanged.)"""
    if text.isascii():
        low = text.lower()
        if not any(needle in low for needle in _COMMAND_NEEDLES):
            return ""
    for pattern, name in _COMMANDS:
        m = pattern.search(text)
        if m:
            if name:
                return name
            word = m.group(1).upper()
            return _COMMAND_NAMES.get(word, word.split()[0])
    return ""


def _reply_code_of(text: str) -> str:
    m = _REPLY_CODE.search(text)
    return m.group(1) if m else ""


def _status_of(text: str) -> str:
    m = _STATUS.search(text)
    return m.group(1) if m else ""


_REPLY_PREFIX = re.compile(r"^[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\s+)?")


def _unfold_reply(lines: Iterable[str]) -> str:
    """Join a multi-line SMTP reply ('550-5.7.26 a' / '550 5.7.26 b') into one line."""
    out: list[str] = []
    for i, line in enumerate(lines):
        line = line.strip()
        if i and (m := _REPLY_PREFIX.match(line)):
            line = line[m.end() :]
        if line:
            out.append(line)
    return " ".join(out)


@functools.lru_cache(maxsize=512)
def _charset_of(content_type: str) -> str | None:
    """`get_content_charset()` of a part whose Content-Type is `content_type` (a str, so the
    same as stored): the parameter parser is slow and the same few values come back."""
    probe = Message()
    probe.set_raw("Content-Type", content_type)
    return probe.get_content_charset()


def _decode_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken base64/qp: the library raises a variety of errors
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    ctype = part.get("content-type")
    charset = (
        _charset_of(ctype) if isinstance(ctype, str) else part.get_content_charset()
    ) or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("latin-1")


# --------------------------------------------------------------------------- RFC 3464


def _fields(block: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.strip().lower(): _one_line(str(v)) for k, v in block}


def _text_blocks(text: str) -> list[dict[str, str]]:
    """Header-like blocks separated by blank lines, folded lines joined (a DSN body as text)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, ""
        elif line[0] in " \t" and last:
            current[last] += " " + line.strip()
        elif m := re.match(r"^([A-Za-z][\w-]*):\s*(.*)$", line):
            last = m.group(1).lower()
            current[last] = m.group(2).strip()
    if current:
        blocks.append(current)
    return blocks


def _dsn_hits(blocks: list[dict[str, str]]) -> list[_Hit]:
    per_message: dict[str, str] = {}
    hits: list[_Hit] = []
    for block in blocks:
        rcpt = block.get("final-recipient") or block.get("original-recipient") or ""
        if not rcpt:
            if not hits:
                per_message.update(block)
            continue
        action = block.get("action", "").lower().split(" ")[0].strip()
        status = _status_of(block.get("status", ""))
        diag = _strip_type(block.get("diagnostic-code", ""))
        if not action:
            first = (status or _reply_code_of(diag) or "5")[0]
            action = {"5": "failed", "4": "delayed"}.get(first, "delivered")
        if action not in ("failed", "delayed"):
            continue
        remote = _strip_type(block.get("remote-mta", ""))
        date = _parse_date(block.get("last-attempt-date", "")) or _parse_date(
            per_message.get("arrival-date", "")
        )
        hits.append(
            _Hit(
                recipient=_clean_addr(rcpt),
                action=action,
                status=status or _status_of(diag),
                reply_code=_reply_code_of(diag),
                remote_mta=remote,
                diagnostic=diag,
                command=_command_of(diag),
                date=date,
            )
        )
    return hits


def _delivery_status_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    cte = str(part.get("content-transfer-encoding", "")).lower()
    if isinstance(payload, list) and cte not in ("base64", "quoted-printable"):
        # (a block without fields, as extra blank lines make, would change nothing)
        blocks = (_fields(sub.items()) for sub in payload if isinstance(sub, Message))
        return [block for block in blocks if block]
    if isinstance(payload, list):
        # An encoded delivery-status was split into header blocks by the parser: rebuild the
        # encoded text from them and decode it ourselves.
        raw = "".join(sub.as_string() for sub in payload if isinstance(sub, Message))
        try:
            if cte == "base64":
                decoded = binascii.a2b_base64(re.sub(r"[^A-Za-z0-9+/=]", "", raw).encode())
            else:
                decoded = quopri.decodestring(raw.encode())
        except (binascii.Error, ValueError):
            return []
        return _text_blocks(_normalise(decoded).decode("utf-8", errors="replace"))
    return _text_blocks(_decode_text(part))


# --------------------------------------------------------------------------- text detectors

_EXIM_START = re.compile(
    r"(?:following address(?:\(es\))? failed:|following addresses? had (?:permanent|transient)"
    r" (?:fatal )?errors|has not yet been delivered to the following|could not be delivered to"
    r" one or more)",
    re.IGNORECASE,
)
_EXIM_SMTP = re.compile(
    r"SMTP error from remote mail(?:er| server) after (?P<cmd>[^\[]*?)\s*:?\s*"
    r"host\s+(?P<host>\S+)\s+\[(?P<ip>[^\]]+)\]:?\s*(?P<diag>.*)",
    re.IGNORECASE,
)
# Exim ≥ 4.8x names the host first: "host H [IP] SMTP error from remote mail server after X: …"
_EXIM_SMTP_NEW = re.compile(
    r"host\s+(?P<host>\S+)\s+\[(?P<ip>[^\]]+)\]:?\s*(?:Delay reason:\s*)?"
    r"SMTP error from remote mail(?:er| server)"
    r" after (?P<cmd>.+?):\s*(?P<diag>[245]\d\d\b.*)",
    re.IGNORECASE,
)


# Every match of _EXIM_START starts with one of these (lower-cased).
_EXIM_ANCHORS = ("following address", "has not yet been delivered", "could not be delivered")
# Exim's delay notice: "The address(es) to which the message has not yet been delivered is:"
# (tried, after a literal check, when _EXIM_START finds nothing).
_EXIM_DELAY = re.compile(r"(?:has not yet been delivered is|have not yet been delivered are):")


# The last text `_extract` lower-cased, and its lower case (one tuple: rebinding it is atomic).
_LOWERED: tuple[str, str] = ("", "")


def _lower(text: str) -> str:
    """`text.lower()`, without doing it again for the text `_extract` has just lowered."""
    global _LOWERED
    last = _LOWERED
    if last[0] is not text:
        last = _LOWERED = (text, text.lower())
    return last[1]


def _search_at(
    pattern: re.Pattern[str], text: str, anchors: tuple[str, ...]
) -> re.Match[str] | None:
    """`pattern.search(text)` for a case-insensitive pattern whose every match starts with one
    of `anchors`: on ASCII text only the places where one occurs are tried (str.find is much
    faster than a case-insensitive scan), in order, so the first match is the same."""
    if not text.isascii():
        return pattern.search(text)
    low = _lower(text)
    starts: list[int] = []
    for anchor in anchors:
        i = low.find(anchor)
        while i >= 0:
            starts.append(i)
            i = low.find(anchor, i + 1)
    for i in sorted(starts):
        if m := pattern.match(text, i):
            return m
    return None


_EXIM_RCPT = re.compile(r"^ {1,3}<?([^\s<>]+?)>?:?\s*(?:\(.*\))?\s*$")


def _exim(text: str) -> list[_Hit]:
    m = _search_at(_EXIM_START, text, _EXIM_ANCHORS)
    if not m and "yet been delivered" in text:
        m = _EXIM_DELAY.search(text)
    if not m:
        return []
    delayed = "not yet been delivered" in m.group(0).lower()
    hits: list[_Hit] = []
    lines = text[m.end() :].split("\n")[1:]
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("----") or line.startswith("******"):
            break
        am = _EXIM_RCPT.match(line) if line.startswith(" ") else None
        indented = i + 1 < len(lines) and lines[i + 1].startswith("    ")
        if am and ("@" in am.group(1) or indented):
            detail: list[str] = []
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                detail.append(lines[i].strip())
                i += 1
            text_detail = " ".join(detail)
            hit = _Hit(recipient=am.group(1), action="delayed" if delayed else "failed")
            sm = _EXIM_SMTP.search(text_detail) or _EXIM_SMTP_NEW.search(text_detail)
            if sm:
                hit.remote_mta = sm.group("host")
                hit.diagnostic = sm.group("diag").strip()
                hit.command = _command_of("after " + sm.group("cmd"))
                if not hit.command and "connection" in sm.group("cmd").lower():
                    hit.command = "CONN"
            else:
                hit.diagnostic = text_detail
                hm = re.search(r"host\s+(\S+)\s+\[[^\]]+\]", text_detail)
                if hm:
                    hit.remote_mta = hm.group(1)
            hits.append(hit)
            continue
        i += 1
    return hits


_ANGLE_START = re.compile(rf"^<({_ADDR})>(?:\s*\(expanded from [^)]*\))?:\s*(.*)$")


_SAID = re.compile(r"(?:host (\S+?)\[[^\]]*\]|remote host (\S+)) said:\s*(.*)", re.IGNORECASE)


def _angle_blocks(text: str) -> list[_Hit]:
    """qmail, Yahoo, Postfix plain text: '<rcpt>:' then the reason, up to a blank line."""
    hits: list[_Hit] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _ANGLE_START.match(lines[i]) if lines[i].startswith("<") else None
        if not m:
            i += 1
            continue
        detail = [m.group(2)]
        i += 1
        while (
            i < len(lines)
            and lines[i].strip()
            and not (lines[i].startswith("<") and _ANGLE_START.match(lines[i]))
        ):
            if lines[i].startswith("---") or lines[i].startswith("(Other MXes"):
                break
            detail.append(lines[i].strip())
            i += 1
        joined = _unfold_reply(detail)
        hit = _Hit(recipient=m.group(1), diagnostic=joined)
        if sm := _SAID.search(joined):
            hit.remote_mta, hit.diagnostic = sm.group(1) or sm.group(2), sm.group(3)
        elif sm := re.search(r"Remote host said:\s*(.*)", joined):
            hit.diagnostic = sm.group(1)
        # qmail names the host and the stage in a sentence of its own
        if qm := re.search(r"(?:Connected to (\S+) but|^(\S+) failed after I sent)", joined):
            hit.remote_mta = hit.remote_mta or qm.group(1) or qm.group(2)
        hit.diagnostic = re.sub(r"\s*\(in reply to [^)]*\)\s*$", "", hit.diagnostic)
        hit.diagnostic = re.sub(
            r"\s*(?:I'm not going to try again|Giving up on ).*$", "", hit.diagnostic
        )
        hit.diagnostic = re.sub(r"\s*\.?\s*\(#(\d\.\d+\.\d+)\)\s*$", "", hit.diagnostic)
        if qm := re.search(r"\(#(\d\.\d+\.\d+)\)", joined):
            hit.status = qm.group(1)
        hit.command = _command_of(joined)
        hits.append(hit)
    return hits


_DRAGONFLY = re.compile(r"There was an error delivering your mail to <([^>]+)>\.")


def _dragonfly(text: str) -> list[_Hit]:
    m = _DRAGONFLY.search(text)
    if not m:
        return []
    rest = text[m.end() :].lstrip("\n").split("\n\n")[0].split("\n")
    hit = _Hit(recipient=m.group(1))
    first = rest[0] if rest else ""
    if hm := re.match(r"^(\S+) \[[^\]]*\] did not like our ([^:]+):\s*(.*)$", first):
        hit.remote_mta = hm.group(1)
        hit.command = _command_of("did not like our " + hm.group(2))
        hit.diagnostic = _unfold_reply([hm.group(3), *rest[1:]])
    else:
        hit.diagnostic = _unfold_reply(rest)
    return [hit]


_GMAIL = re.compile(
    r"Delivery to the following recipients? (failed permanently|has been delayed|failed)",
    re.IGNORECASE,
)


def _gmail(text: str) -> list[_Hit]:
    m = _GMAIL.search(text)
    if not m:
        return []
    delayed = "delayed" in m.group(1).lower()
    after = text[m.end() :]
    rcpts = re.findall(rf"^\s+({_ADDR})\s*$", after.split("\n\n")[0], re.MULTILINE)
    if not rcpts:
        rcpts = re.findall(rf"^\s*({_ADDR})\s*$", after[:2000], re.MULTILINE)[:1]
    details = ""
    if dm := re.search(r"Technical details of (?:permanent|temporary) failure:\s*", after):
        tail = after[dm.end() :]
        details = re.split(r"\n\s*\n(?=\S)|\n-{3,}", tail, maxsplit=1)[0]
        if em := re.search(r"returned\s*was:\s*(.*?)(?:\n\s*\n|\n-{3,}|$)", tail, re.S):
            details = em.group(1)
    diag = _unfold_reply(details.split("\n"))
    remote = ""
    if hm := re.search(r"by (\S+?)\.? \[[\d.:a-fA-F]+\]", after):
        remote = hm.group(1)
    return [
        _Hit(
            recipient=r,
            action="delayed" if delayed else "failed",
            diagnostic=diag,
            remote_mta=remote,
            command=_command_of(diag),
        )
        for r in dict.fromkeys(rcpts)
    ]


_EXCHANGE = re.compile(r"Diagnostic information for administrators:", re.IGNORECASE)


def _exchange(text: str) -> list[_Hit]:
    """Office 365 / Exchange 2007+ NDR text: the addresses under the administrators' section."""
    m = _EXCHANGE.search(text)
    if not m:
        return []
    body = text[m.end() :]
    end = re.search(r"^(?:Original message headers:|Received: )", body, re.MULTILINE)
    body = body[: end.start()] if end else body[:8000]
    hits: list[_Hit] = []
    lines = body.split("\n")
    for i, line in enumerate(lines):
        am = re.match(rf"^\s*<?({_ADDR})>?(?:<mailto:[^>]*>)?\s*$", line)
        if not am:
            continue
        detail = " ".join(x.strip() for x in lines[i + 1 : i + 6] if x.strip())
        hit = _Hit(recipient=am.group(1))
        if rm := re.search(r"Remote Server (?:at (\S+) \([^)]*\) )?returned '(.*?)'", detail):
            hit.remote_mta = rm.group(1) or ""
            hit.diagnostic = rm.group(2)
        elif rm := re.search(r"#<?\s*#?(\d\.\d+\.\d+)?\s*(?:smtp;)?\s*(\d{3}[^>#]*)", detail):
            hit.diagnostic = rm.group(2).strip()
            hit.status = rm.group(1) or ""
        else:
            continue
        hit.diagnostic = re.sub(r"^<[^>]*>\s*#", "", hit.diagnostic).strip()
        hits.append(hit)
    return hits


_EXCHANGE2003 = re.compile(r"did not reach the following recipient\(s\):\s*\n", re.IGNORECASE)
# Another wording, tried when the first is not found (after a literal check).
_EXCHANGE2003_OTHER = re.compile(r"following recipient\(s\) could not be reached:\s*\n")


def _exchange2003(text: str) -> list[_Hit]:
    m = _EXCHANGE2003.search(text)
    if not m and "could not be reached:" in text:
        m = _EXCHANGE2003_OTHER.search(text)
    if not m:
        return []
    hits: list[_Hit] = []
    lines = text[m.end() :].split("\n")
    i = 0
    while i < len(lines):
        am = re.match(rf"^\s*({_ADDR}) on .*$", lines[i])
        if not am:
            if hits and not lines[i].startswith(" "):
                break
            i += 1
            continue
        detail: list[str] = []
        i += 1
        while i < len(lines) and lines[i].startswith(" "):
            detail.append(lines[i].strip())
            i += 1
        hits.append(_Hit(recipient=am.group(1), diagnostic=" ".join(detail)))
    return hits


_TRANSCRIPT = re.compile(r"-+ ?Transcript of session follows ?-+", re.IGNORECASE)


_TALKING_TO = re.compile(r"while talking to (\S+?)\.?:\s*$")
_SENDMAIL_RCPT = re.compile(
    rf"^([245]\d\d)(?:[ -]([245]\.\d+\.\d+))?\s+<?({_ADDR})>?\.\.\.\s*(.*)$"
)


def _sendmail(text: str) -> list[_Hit]:
    """Sendmail's plain-text transcript: '... while talking to host.:', '>>> CMD', '<<< reply'."""
    m = _TRANSCRIPT.search(text)
    if not m:
        return []
    body = re.split(r"\n\s*-+ ?(?:Unsent message|Original message|Message)", text[m.end() :])[0]
    hits: dict[str, _Hit] = {}
    host = command = ""
    last_reply = ""
    for line in body.split("\n"):
        s = line.strip()
        if "while talking to " in s and (tm := _TALKING_TO.search(s)):
            host, command, last_reply = tm.group(1), "", ""
        elif s.startswith(">>> "):
            command = _command_of(s)
        elif s.startswith("<<< "):
            last_reply = s[4:]
        elif s[:1] in ("2", "4", "5") and (rm := _SENDMAIL_RCPT.match(s)):
            rcpt = rm.group(3)
            hits.setdefault(
                rcpt.lower(),
                _Hit(
                    recipient=rcpt,
                    reply_code=rm.group(1),
                    status=rm.group(2) or "",
                    remote_mta=host,
                    command=command,
                    diagnostic=last_reply or s,
                ),
            )
    return list(hits.values())


_OPENSMTPD = re.compile(r"for\s+the following\s+list of recipients:", re.IGNORECASE)
_OPENSMTPD_LINE = re.compile(r"^\s*([^\s<>@:]+@[^\s<>:]+):\s+(\d{3}[ -].*)$")
# A recipient whose reason is OpenSMTPD's own ('Domain does not exist', 'Envelope expired'):
# read only before the returned copy.
_OPENSMTPD_REASON = re.compile(r"^([^\s<>@:]+@[^\s<>:]+):\s+(\S.*)$")


def _opensmtpd(text: str) -> list[_Hit]:
    """OpenSMTPD: '… for the following list of recipients:' then 'rcpt: reply' lines."""
    start = _OPENSMTPD.search(text)
    if not start:
        return []
    # Hits read after a line break in 'for the following', or from a reason without a reply
    # code, are not given to a DSN's records of the same recipients: those kept their own
    # (empty) diagnostic before these were read, and stay as they were.
    fills = "for the following" in start.group(0).lower()
    hits = []
    own = True  # before 'Below is a copy of the original message:'
    for line in text[start.end() :].split("\n"):
        if m := _OPENSMTPD_LINE.match(line):
            reply = m.group(2).strip()
            hit = _Hit(recipient=m.group(1), diagnostic=reply, command=_command_of(reply))
            hit.fills = fills
            hits.append(hit)
        elif own and "Below is a copy of the original message" in line:
            own = False
        elif own and (m := _OPENSMTPD_REASON.match(line)):
            delayed = "A message is delayed" in text[: start.start()]
            action = "delayed" if delayed else "failed"
            reason = m.group(2).strip()
            hits.append(_Hit(recipient=m.group(1), action=action, diagnostic=reason, fills=False))
    return hits


_TRANSCRIPT_RCPT = re.compile(r"^\s*Recipient:\s*<([^>]+)>", re.IGNORECASE)


def _transcript(text: str) -> list[_Hit]:
    """'Recipient: <rcpt>' followed by the SMTP dialogue ('>>> MAIL FROM…', '<<< 550 …'),
    as au/EZweb and some appliances write it."""
    hits: list[_Hit] = []
    current: _Hit | None = None
    for line in text.split("\n"):
        if m := _TRANSCRIPT_RCPT.match(line):
            current = _Hit(recipient=m.group(1))
            hits.append(current)
        elif current is not None and (sent := re.match(r"^\s*>>>\s*(\S+)", line)):
            current.command = sent.group(1).upper().rstrip(":").split(":")[0]
        elif current is not None and (reply := re.match(r"^\s*<<<\s*(.*)$", line)):
            current.diagnostic = (current.diagnostic + " " + reply.group(1)).strip()
    return [h for h in hits if h.diagnostic]


_IMAIL = re.compile(r"^undeliverable to (\S+@\S+)\s*$", re.IGNORECASE | re.MULTILINE)


def _imail(text: str) -> list[_Hit]:
    """IMail: 'undeliverable to rcpt' then 'Body of message generated response:' + reply."""
    rcpt = _IMAIL.search(text)
    if not rcpt:
        return []
    body = re.search(r"generated response:\s*\n(.*?)(?:\n\s*\n|\Z)", text, re.IGNORECASE | re.S)
    if not body:
        return []
    return [_Hit(recipient=rcpt.group(1), diagnostic=_unfold_reply(body.group(1).split("\n")))]


# --------------------------------------------------------------------------- more text formats
# These run after the detectors above, when none of them found anything: each starts with a
# literal check (case-sensitive where the text may not be ASCII) so that other formats pay
# nearly nothing.

_GROUPS_ORIGINAL = re.compile(r"^-{5} Original message -{5}$", re.MULTILINE)


def _googlegroups(text: str) -> list[_Hit]:
    """Google Groups: a localised notice (the group may not exist or may refuse posts), the
    group's address only in the returned original's To: field."""
    if "groups.google.com/support" not in text:
        return []
    m = _GROUPS_ORIGINAL.search(text)
    if not m:
        return []
    head = text[m.end() :].lstrip("\n").split("\n\n", 1)[0]
    rcpt = re.search(rf"^To:[ \t]*(?:[^<\n]*<)?({_ADDR})", head, re.MULTILINE)
    if not rcpt:
        return []
    paragraphs = [p.strip() for p in text[: m.start()].split("\n\n") if p.strip()]
    diag = paragraphs[1] if len(paragraphs) > 2 else ""
    return [_Hit(recipient=rcpt.group(1), action="failed", diagnostic=diag)]


_ZOHO_LINE = re.compile(
    rf"^\s*({_ADDR})\s+[^,\n]*,\s*ERROR_CODE\s*:\s*(\d{{3}})?\s*,\s*ERROR_CODE\s*:\s*,?\s*(.*)$",
    re.MULTILINE,
)
_ZOHO_WARNING = re.compile(
    rf"^\[Status: \w+, Address: <({_ADDR})>, ResponseCode (\d{{3}})?\s*,[\s,]*(.*?)\]$",
    re.MULTILINE,
)


def _zoho(text: str) -> list[_Hit]:
    """Zoho Mail: 'rcpt Invalid Address, ERROR_CODE :550, ERROR_CODE :reply' lines, or
    '[Status: Error, Address: <rcpt>, ResponseCode 421, , text]' in its warnings."""
    if "ERROR_CODE" not in text and "ResponseCode" not in text:
        return []
    permanent = "This is a permanent error" in text
    hits = []
    for m in itertools.chain(_ZOHO_LINE.finditer(text), _ZOHO_WARNING.finditer(text)):
        code, reply = m.group(2) or "", m.group(3).strip()
        diag = f"{code} {reply}".strip()
        action = "failed" if permanent else ""
        hits.append(_Hit(recipient=m.group(1), action=action, reply_code=code, diagnostic=diag))
    return hits


_MFILTER = re.compile(r"\n-------server message\n(.*?)\n-------SMTP command\n([^\n]*)", re.DOTALL)


def _mfilter(text: str) -> list[_Hit]:
    """m-FILTER (Japanese notice): the recipient lines, '-------server message' and the
    reply, '-------SMTP command' and the command."""
    if "-------server message" not in text:
        return []
    m = _MFILTER.search(text)
    if not m:
        return []
    rcpts = re.findall(rf"^\s*<?({_ADDR})>?\s*$", text[: m.start()], re.MULTILINE)
    diag = _unfold_reply(m.group(1).split("\n"))
    command = m.group(2).strip().upper()
    return [_Hit(recipient=r, diagnostic=diag, command=command) for r in dict.fromkeys(rcpts)]


_IMAIL_SHORT = re.compile(rf"^([^\n:]{{3,80}}):\s*({_ADDR})\s*\nOriginal message follows\.")


def _imail_short(text: str) -> list[_Hit]:
    """IMail's short notice: 'Unknown user: rcpt' then 'Original message follows.'."""
    if "\nOriginal message follows." not in text:
        return []
    m = _IMAIL_SHORT.search(text)
    return [_Hit(recipient=m.group(2), diagnostic=m.group(1).strip())] if m else []


_NEMESIS_START = re.compile(r"The following address(?:\(es\))?\s+failed:")
_NEMESIS_RCPT = re.compile(rf'^"?<?({_ADDR})>?"?:?$')
_NEMESIS_SMTP = re.compile(
    r"SMTP error from remote server (?:after|for) (\S+) command:?,?\s*"
    r"(?:host:\s*(\S+)(?:\s+\([^)]*\))?)?\s*(?:reason:\s*)?(.*)"
)


def _nemesis(text: str) -> list[_Hit]:
    """1&1 / GMX (mail.com): 'The following address failed:', each recipient on a line of
    its own (quoted, angled or bare), then the SMTP error or 'Reason:' and the text, up to
    '--- The header of the original message is following. ---'."""
    end = text.find("--- The header of the original message is following. ---")
    if end < 0:
        return []
    m = _NEMESIS_START.search(text, 0, end)
    if not m:
        return []
    blocks: list[tuple[str, list[str]]] = []
    for line in text[m.end() : end].split("\n"):
        line = line.strip()
        if not line:
            continue
        if rm := _NEMESIS_RCPT.match(line):
            blocks.append((rm.group(1), []))
        elif blocks and line.lower() not in ("reason:", "for the following reason:"):
            blocks[-1][1].append(line)
    hits = []
    for rcpt, lines in blocks:
        detail = " ".join(lines)
        hit = _Hit(recipient=rcpt, diagnostic=detail)
        if sm := _NEMESIS_SMTP.search(detail):
            word = sm.group(1).upper()  # ('TEXT': the message text, after DATA)
            hit.command = "DATA" if word == "TEXT" else _command_of("after " + word) or word
            hit.remote_mta = sm.group(2) or ""
            hit.diagnostic = sm.group(3)
        hits.append(hit)
    return hits


_X1_LINE = re.compile(rf"^({_ADDR}) \[([^\]\n]+)\]\s*$", re.MULTILINE)


def _x1(text: str) -> list[_Hit]:
    """'---The following addresses had delivery errors---', then 'rcpt [reason]' lines."""
    start = text.find("---The following addresses had delivery errors---")
    if start < 0:
        return []
    return [
        _Hit(recipient=m.group(1), diagnostic=m.group(2)) for m in _X1_LINE.finditer(text, start)
    ]


_X3_START = re.compile(
    r"Del[ei]very to the following recipients (failed permanently|was aborted after [^:\n]*):"
)
_X3_SMTP = re.compile(r"^SMTP:(\w+) host (\S+?):\s*(.*)$")


def _x3(text: str) -> list[_Hit]:
    """'This is an automatically generated Delivery Status Notification.': '* rcpt' lines,
    then 'Technical details:' and the reply ('SMTP:RCPT host IP: 553 …')."""
    m = _X3_START.search(text) if "automatically generated Delivery Status" in text else None
    if not m:
        return []
    rcpts = re.findall(rf"^\s+\* ({_ADDR})\s*$", text[m.end() : m.end() + 4000], re.MULTILINE)
    diag = m.group(0).rstrip(":")
    remote = command = ""
    tech = text.find("Technical details:", m.end())
    if tech >= 0:
        for line in text[tech + len("Technical details:") :].split("\n"):
            line = line.strip()
            if line.startswith("#") or line.startswith("=") or not line:
                continue
            diag = line
            if sm := _X3_SMTP.match(line):
                command, remote, diag = sm.group(1).upper(), sm.group(2), sm.group(3)
            break
    action = "failed" if m.group(1).startswith("failed") or tech >= 0 else ""
    return [
        _Hit(recipient=r, action=action, diagnostic=diag, remote_mta=remote, command=command)
        for r in dict.fromkeys(rcpts)
    ]


_MXLOGIC = re.compile(
    rf"The following address failed:\n\s+<({_ADDR})>:\s*(.*?)\nIncluded is a copy", re.DOTALL
)


def _mxlogic(text: str) -> list[_Hit]:
    """MX Logic (McAfee): 'The following address failed:', then '  <rcpt>: reply'."""
    if "Included is a copy of the message header" not in text:
        return []
    m = _MXLOGIC.search(text)
    if not m:
        return []
    return [_Hit(recipient=m.group(1), diagnostic=_unfold_reply(m.group(2).split("\n")))]


_NOTES = re.compile(
    r"^-{7} Failure Reasons +-{8}\n(.*?)^-{7} Returned Message -{8}", re.MULTILINE | re.DOTALL
)
_LONE_ADDR = re.compile(rf"^\s*<?({_ADDR})>?\s*$")


def _notes(text: str) -> list[_Hit]:
    """Lotus Notes: '------- Failure Reasons --------', the reason, then the recipients,
    up to '------- Returned Message --------'."""
    if "------- Failure Reasons" not in text:
        return []
    m = _NOTES.search(text)
    if not m:
        return []
    rcpts: list[str] = []
    reason: list[str] = []
    for line in m.group(1).split("\n"):
        if am := _LONE_ADDR.match(line):
            rcpts.append(am.group(1))
        elif line.strip():
            reason.append(line.strip())
    diag = " ".join(reason)
    return [_Hit(recipient=r, action="failed", diagnostic=diag) for r in dict.fromkeys(rcpts)]


_KDDI = re.compile(rf"^\s*Could not be delivered to: <({_ADDR})>\s*\n\s*(\S[^\n]*)", re.MULTILINE)


def _kddi(text: str) -> list[_Hit]:
    """KDDI (au one net): 'Could not be delivered to: <rcpt>', the reason on the next line."""
    if "Could not be delivered to: <" not in text:
        return []
    return [
        _Hit(recipient=m.group(1), action="failed", diagnostic=m.group(2).strip())
        for m in _KDDI.finditer(text)
    ]


_TRENDMICRO_SENT = re.compile(
    rf"^\s*Sent <<< (RCPT TO|MAIL FROM|DATA)\b:?\s*<?({_ADDR})?>?\s*\n\s*Received >>> ([^\n]*)",
    re.MULTILINE,
)
_TRENDMICRO_UNABLE = re.compile(rf"Unable to deliver message to <({_ADDR})>[^\n]*")


def _trendmicro(text: str) -> list[_Hit]:
    """Trend Micro InterScan: 'Sent <<< RCPT TO:<rcpt>' and 'Received >>> reply', or
    'Unable to deliver message to <rcpt> (and other recipients …).'"""
    if "Sent <<< " not in text and "Unable to deliver message to <" not in text:
        return []
    hits = []
    for m in _TRENDMICRO_SENT.finditer(text):
        if m.group(2):
            command = _COMMAND_NAMES.get(m.group(1), m.group(1))
            hits.append(_Hit(recipient=m.group(2), diagnostic=m.group(3), command=command))
    if not hits:
        for m in _TRENDMICRO_UNABLE.finditer(text):
            hits.append(_Hit(recipient=m.group(1), action="failed", diagnostic=m.group(0)))
    return hits


_ACTIVEHUNTER_RCPT = re.compile(rf"^>>> ({_ADDR}) <[^>\n]*>\s*$", re.MULTILINE)
_ACTIVEHUNTER_REPLY = re.compile(r"-{5} Transcript of session follows -{5}\n+([^\n]+)")


def _activehunter(text: str) -> list[_Hit]:
    """Active!hunter: '>>> rcpt <rcpt>' under the sendmail-like heading, the reply after
    '----- Transcript of session follows -----'."""
    if "\n>>> " not in text:
        return []
    rcpts = _ACTIVEHUNTER_RCPT.findall(text)
    reply = _ACTIVEHUNTER_REPLY.search(text) if rcpts else None
    if not reply:
        return []
    diag = reply.group(1).strip()
    return [_Hit(recipient=r, action="failed", diagnostic=diag) for r in dict.fromkeys(rcpts)]


_BIGLOBE = re.compile(
    r"-{5} The following addresses had delivery problems -{5}\n(.*?)"
    r"-{5} Non-delivered information -{5}\n+(.*?)(?:\n\s*\n|\Z)",
    re.DOTALL,
)


def _biglobe(text: str) -> list[_Hit]:
    """BIGLOBE: the recipients under '----- The following addresses had delivery problems
    -----', the reason under '----- Non-delivered information -----'."""
    if "----- Non-delivered information -----" not in text:
        return []
    m = _BIGLOBE.search(text)
    if not m:
        return []
    rcpts = [am.group(1) for line in m.group(1).split("\n") if (am := _LONE_ADDR.match(line))]
    diag = _one_line(m.group(2))
    return [_Hit(recipient=r, action="failed", diagnostic=diag) for r in dict.fromkeys(rcpts)]


_DOMINO = re.compile(
    r"^was not delivered to:\s*\n(.*?)^because:\s*\n\s*\n?(.*?)(?:\n\s*\n|\Z)",
    re.MULTILINE | re.DOTALL,
)


def _domino(text: str) -> list[_Hit]:
    """Lotus Domino: 'was not delivered to:', the recipients, 'because:' and the reason."""
    if "\nbecause:" not in text:
        return []
    m = _DOMINO.search(text)
    if not m:
        return []
    rcpts = [am.group(1) for line in m.group(1).split("\n") if (am := _LONE_ADDR.match(line))]
    diag = _one_line(m.group(2))
    return [_Hit(recipient=r, action="failed", diagnostic=diag) for r in dict.fromkeys(rcpts)]


# One recipient of an Amazon SES bounce notification (JSON, maybe inside an SNS envelope
# where every quote is escaped): its fields are strings, without nested objects.
_SES_RECIPIENT = re.compile(r'\{"emailAddress":"(?:[^"\\]|\\.)*"(?:,"\w+":"(?:[^"\\]|\\.)*")*\}')


def _amazonses_json(text: str) -> list[_Hit]:
    """Amazon SES bounce notification as JSON (sent by SNS): 'bouncedRecipients', each with
    emailAddress, action, status and diagnosticCode."""
    if "bouncedRecipients" not in text:
        return []
    import json

    plain = text.replace('\\"', '"') if '\\"bouncedRecipients' in text else text
    if not re.search(r'"notificationType"\s*:\s*"Bounce"', plain):
        return []
    hits = []
    for m in _SES_RECIPIENT.finditer(plain):
        try:
            entry = json.loads(m.group())
        except ValueError:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("emailAddress"), str):
            continue
        fields = {k: v for k, v in entry.items() if isinstance(v, str)}
        action = fields.get("action", "").lower()
        hits.append(
            _Hit(
                recipient=fields["emailAddress"],
                action=action if action in ("failed", "delayed") else "",
                status=_status_of(fields.get("status", "")),
                diagnostic=_strip_type(fields.get("diagnosticCode", "")),
            )
        )
    return hits


_X6_PERMANENT = re.compile(
    rf"returned permanent errors: ({_ADDR})\. Reason: (?:SMTP Server <([^>\s]+)> )?([^\n]*)"
)
_X6_REJECTED = re.compile(
    rf"SMTP Server <([^>\s]+)> rejected recipient <({_ADDR})> \(Error following (\w+)"
    r" command\)\. It responded as follows: \[([^\n]*)\]"
)


def _x6(text: str) -> list[_Hit]:
    """'We had trouble delivering your message.': 'The following recipients returned permanent
    errors: rcpt. Reason: SMTP Server <IP> refused … error message: [reply]', or 'SMTP Server
    <host> rejected recipient <rcpt> (Error following RCPT command). … [reply]'."""
    if "We had trouble delivering your message" not in text:
        return []
    hits = []
    for m in _X6_PERMANENT.finditer(text):
        hit = _Hit(recipient=m.group(1), action="failed", remote_mta=m.group(2) or "")
        reason = m.group(3)
        hit.diagnostic = reason.partition("error message: [")[2].rstrip("]") or reason
        if cm := re.search(r"your message \((\w+)\)", reason):
            hit.command = cm.group(1).upper()
        hits.append(hit)
    for m in _X6_REJECTED.finditer(text):
        hits.append(
            _Hit(
                recipient=m.group(2),
                action="failed",
                remote_mta=m.group(1),
                command=m.group(3).upper(),
                diagnostic=m.group(4),
            )
        )
    return hits


_MAILFOUNDRY = re.compile(
    rf"Unable to deliver message to: <({_ADDR})>\s*\nDelivery failed for the following reason:"
    r"\s*\n(?:Server )?(?:(\S+?)\[[^\]]*\] (?:failed with|responded with failure):\s*)?([^\n]*)"
)


def _mailfoundry(text: str) -> list[_Hit]:
    """MailFoundry: 'Unable to deliver message to: <rcpt>', 'Delivery failed for the following
    reason:', then 'Server host[IP] failed with: reply'."""
    if "Delivery failed for the following reason:" not in text:
        return []
    return [
        _Hit(recipient=m.group(1), remote_mta=m.group(2) or "", diagnostic=m.group(3).strip())
        for m in _MAILFOUNDRY.finditer(text)
    ]


_MIMECAST_RCPT = re.compile(
    rf"(?:following address could not be delivered:|addressed to email address :)\s*\n"
    rf"\s*-- ({_ADDR})\s*\n"
)
_MIMECAST_INFO = re.compile(
    r"(The problem appears to be|Additional information follows) :\s*\n\s*-- ([^\n]*)"
)


def _mimecast(text: str) -> list[_Hit]:
    """Mimecast: '-- rcpt' after '… could not be delivered:' or '… email address :', the
    problem and 'Additional information follows :' '-- reply'."""
    if "Additional information follows :" not in text:
        return []
    m = _MIMECAST_RCPT.search(text)
    if not m:
        return []
    info = {k: v.strip() for k, v in _MIMECAST_INFO.findall(text)}
    diag = info.get("Additional information follows") or info.get("The problem appears to be", "")
    return [_Hit(recipient=m.group(1), action="failed", diagnostic=diag)]


_MESSAGELABS = re.compile(
    rf"I was unable to deliver your message to the following addresses:\s*\n+"
    rf"((?:\s*<?{_ADDR}>?\s*\n)+)\s*Reason: ((?:[^\n]+\n)*)"
)


def _messagelabs(text: str) -> list[_Hit]:
    """Symantec Email Security.cloud (MessageLabs): the recipients under 'I was unable to
    deliver your message to the following addresses:', then 'Reason:' and the reply."""
    if "unable to deliver your message to the following addresses:" not in text:
        return []
    m = _MESSAGELABS.search(text)
    if not m:
        return []
    rcpts = [am.group(1) for line in m.group(1).split("\n") if (am := _LONE_ADDR.match(line))]
    diag = _unfold_reply(m.group(2).split("\n"))
    return [_Hit(recipient=r, action="failed", diagnostic=diag) for r in dict.fromkeys(rcpts)]


_MAILMARSHAL = re.compile(
    r"Could not be delivered because of\s*\n\s*\n?((?:[^\n]+\n)+)\s*"
    r"The following recipients were affected:[ \t]*\n((?:[ \t]+\S[^\n]*\n?)+)"
)


def _mailmarshal(text: str) -> list[_Hit]:
    """MailMarshal: 'Could not be delivered because of', the reply, 'The following recipients
    were affected:' and the indented recipients; 'Remote-MTA: <IP>' below."""
    if "The following recipients were affected:" not in text:
        return []
    m = _MAILMARSHAL.search(text)
    if not m:
        return []
    rcpts = [am.group(1) for line in m.group(2).split("\n") if (am := _LONE_ADDR.match(line))]
    diag = _unfold_reply(m.group(1).split("\n"))
    rm = re.search(r"^Remote-MTA:\s*<([^>\s]+)>", text[m.end() :], re.MULTILINE)
    remote = rm.group(1) if rm else ""
    return [
        _Hit(recipient=r, action="failed", diagnostic=diag, remote_mta=remote)
        for r in dict.fromkeys(rcpts)
    ]


_APACHEJAMES = re.compile(r"Error message below:\s*\n((?:[^\n]+\n)+)")
_APACHEJAMES_RCPT = re.compile(rf"^\s*RCPT TO: ({_ADDR})\s*$", re.MULTILINE)


def _apachejames(text: str) -> list[_Hit]:
    """Apache James: 'Error message below:' and the reply, the recipients as 'RCPT TO: rcpt'
    under 'Message details:'."""
    if "Error message below:" not in text:
        return []
    m = _APACHEJAMES.search(text)
    if not m:
        return []
    diag = _unfold_reply(m.group(1).split("\n"))
    rcpts = _APACHEJAMES_RCPT.findall(text, m.end())
    return [_Hit(recipient=r, action="failed", diagnostic=diag) for r in dict.fromkeys(rcpts)]


_EZWEB_RCPT = re.compile(rf"^<({_ADDR})>\s*$", re.MULTILINE)


def _ezweb(text: str) -> list[_Hit]:
    """au/EZweb notices without a transcript: the recipients as '<rcpt>' lines, the English
    sentences of the notice (before its '----' line) as the reason."""
    if "@ezweb.ne.jp>" not in text:
        return []
    body = re.split(r"^-{10,}\s*$", text, maxsplit=1, flags=re.MULTILINE)[0]
    rcpts = _EZWEB_RCPT.findall(body)
    if not rcpts:
        return []
    reason = [
        line.strip()
        for line in body.split("\n")
        if line.strip() and line.isascii() and not _EZWEB_RCPT.match(line)
    ]
    diag = " ".join(reason)
    return [_Hit(recipient=r, action="failed", diagnostic=diag) for r in dict.fromkeys(rcpts)]


_X2_FAILED = re.compile(
    rf"^Delivery failed: ({_ADDR})\s*\n(?:(\S+) failed after I sent the message\.\s*\n)?"
    r"Remote host said(?:\[Response Message\])?:\s*([^\n]*)(?:\nSTEP: (\w+))?",
    re.MULTILINE,
)


def _x2(text: str) -> list[_Hit]:
    """'NOTICE: Delivery Failure.': 'Delivery failed: rcpt', 'host failed after I sent the
    message.', 'Remote host said[Response Message]: reply', 'STEP: DATA SEND'."""
    if "\nDelivery failed: " not in text:
        return []
    hits = []
    for m in _X2_FAILED.finditer(text):
        hit = _Hit(recipient=m.group(1), remote_mta=m.group(2) or "", diagnostic=m.group(3))
        if m.group(2):
            hit.command = "DATA"  # 'failed after I sent the message'
        elif m.group(4):
            hit.command = m.group(4).upper()
        hits.append(hit)
    return hits


_UNABLE_MAIL = re.compile(rf"^([^\n:<>]{{3,80}}): <({_ADDR})>\s*\nUnable to deliver mail\.", re.M)


def _unable_mail(text: str) -> list[_Hit]:
    """A short notice: 'User's mailbox is full: <rcpt>' then 'Unable to deliver mail.'."""
    if "\nUnable to deliver mail." not in text:
        return []
    return [
        _Hit(recipient=m.group(2), action="failed", diagnostic=m.group(1).strip())
        for m in _UNABLE_MAIL.finditer(text)
    ]


_DETECTORS: tuple[tuple[str, Callable[[str], list[_Hit]]], ...] = (
    ("opensmtpd", _opensmtpd),
    ("transcript", _transcript),
    ("imail", _imail),
    ("exim", _exim),
    ("dragonfly", _dragonfly),
    ("gmail", _gmail),
    ("exchange", _exchange),
    ("exchange2003", _exchange2003),
    ("sendmail", _sendmail),
    ("text", _angle_blocks),  # qmail, Yahoo, Postfix and others that write '<rcpt>: reason'
    ("googlegroups", _googlegroups),
    ("zoho", _zoho),
    ("mfilter", _mfilter),
    ("imailserver", _imail_short),  # IMail's short notice
    ("nemesis", _nemesis),  # 1&1, GMX, mail.com
    ("x1", _x1),
    ("x3", _x3),
    ("mxlogic", _mxlogic),
)
# Notices of their own, never the human-readable part of a DSN: tried only when neither a
# delivery-status part nor a detector above found a recipient (a DSN pays nothing for them).
_NOTICE_DETECTORS: tuple[tuple[str, Callable[[str], list[_Hit]]], ...] = (
    ("notes", _notes),  # Lotus Notes
    ("kddi", _kddi),  # au one net
    ("trendmicro", _trendmicro),  # InterScan
    ("activehunter", _activehunter),
    ("biglobe", _biglobe),
    ("domino", _domino),
    ("amazonses", _amazonses_json),  # SES notifications sent by SNS
    ("x6", _x6),
    ("mailfoundry", _mailfoundry),
    ("mimecast", _mimecast),
    ("messagelabs", _messagelabs),
    ("mailmarshal", _mailmarshal),
    ("apachejames", _apachejames),
    ("ezweb", _ezweb),  # au/EZweb notices without a transcript
    ("x2", _x2),
    ("unabletodeliver", _unable_mail),  # 'rcpt is …: <rcpt>' / 'Unable to deliver mail.'
)

# Case-insensitive searches are slow in `re`; most texts are ASCII, and there a detector can
# only find something if the lower-cased text holds one of these strings: each is a literal part
# of every match of the pattern the detector starts from (dragonfly's is case-sensitive and
# fast). `_may_find` is a pure pre-check: it never changes what a detector returns.
_NEEDLES: dict[str, tuple[str, ...]] = {
    "opensmtpd": ("list of recipients:",),  # _OPENSMTPD
    "transcript": ("recipient:",),  # _TRANSCRIPT_RCPT, on every line
    "imail": ("undeliverable to",),  # _IMAIL
    "exim": ("following address", "not yet been delivered", "could not be delivered to one"),
    "gmail": ("delivery to the following recipient",),  # _GMAIL
    "exchange": ("diagnostic information for administrators:",),  # _EXCHANGE
    "exchange2003": (  # _EXCHANGE2003
        "did not reach the following recipient(s):",
        "following recipient(s) could not be reached:",
    ),
    "sendmail": ("transcript of session follows",),  # _TRANSCRIPT
    "text": ("\n<",),  # _ANGLE_START, a line that starts with '<' (or the text does)
    "googlegroups": ("groups.google.com/support",),
    "zoho": ("error_code", "responsecode"),
    "mfilter": ("-------server message",),
    "imailserver": ("\noriginal message follows.",),
    "nemesis": ("--- the header of the original message is following. ---",),
    "x1": ("---the following addresses had delivery errors---",),
    "x3": ("automatically generated delivery status",),
    "mxlogic": ("included is a copy of the message header",),
    "notes": ("------- failure reasons",),
    "kddi": ("could not be delivered to: <",),
    "trendmicro": ("sent <<< ", "unable to deliver message to <"),
    "activehunter": ("\n>>> ",),
    "biglobe": ("----- non-delivered information -----",),
    "domino": ("\nbecause:",),
    "amazonses": ("bouncedrecipients",),
    "x6": ("we had trouble delivering your message",),
    "mailfoundry": ("delivery failed for the following reason:",),
    "mimecast": ("additional information follows :",),
    "messagelabs": ("unable to deliver your message to the following addresses:",),
    "mailmarshal": ("the following recipients were affected:",),
    "apachejames": ("error message below:",),
    "ezweb": ("@ezweb.ne.jp>",),
    "x2": ("\ndelivery failed: ",),
    "unabletodeliver": ("\nunable to deliver mail.",),
}


def _may_find(name: str, low: str | None) -> bool:
    """False only when detector `name` surely finds nothing; `low` is the lower-cased text, or
    None when the text is not ASCII (Unicode case folding is not ASCII's: always try then)."""
    needles = _NEEDLES.get(name)
    if low is None or needles is None:
        return True
    if name == "text" and low.startswith("<"):
        return True
    return any(needle in low for needle in needles)


# --------------------------------------------------------------------------- MIME pre-split

# The stdlib parser reads every line of a message in Python, the returned original included,
# and compiles one regex per multipart boundary: two thirds of the time went there. `_message`
# builds the `Message` tree it would build, as far as `_walk` reads it, by FeedParser's own
# rules (email/feedparser.py, Python 3.11): boundary lines are found with str.find, a header
# block with one regex, only the fields `_walk` reads are stored, and a returned message/rfc822
# is read no further than its headers (its Message-ID). Decoding (transfer encodings, charsets,
# parameters) stays with the email package. Whatever FeedParser treats in a way of its own
# (no start boundary, adjacent boundary lines, multipart/digest, an encoded delivery-status,
# message/global-delivery-status, nesting deeper than _MAX_DEPTH) raises _Irregular, and the
# whole message goes to the stdlib parser: the result is the same, only slower.

# The header lines at the start of a message, as FeedParser tells them from the body: lines
# that match feedparser.headerRE ('From ', a field name and a colon, or folding white space).
# (Possessive: a line matches one way or not at all, and `re` need not keep a way back.)
_HEADER_LINES = re.compile(r"(?:(?:From |[\041-\071\073-\176]*+:|[\t ])[^\n]*+(?:\n|\Z))*+")
# The only fields `_walk` and `_extract` read, as a field line starts (the name is what precedes
# the first colon, so "Date :" is another field, as in Message.get).
_READ_FIELDS = tuple(
    (f"\n{name}:", len(name))
    for name in ("content-type", "content-transfer-encoding", "date", "message-id")
)
_FIELD_VALUE = re.compile(r"[^\n]*(?:\n[\t ][^\n]*)*")  # up to the next field line
# Every field of a header block: a line that does not start with white space, and its
# continuation lines (for the delivery-status blocks, where every field is read).
_FIELD = re.compile(r"^([^\t \n][^\n]*)((?:\n[\t ][^\n]*)*)", re.MULTILINE)
_BOUNDARY_TAIL = re.compile(r"(?:--)?[ \t]*")
_BLANK_LINES = re.compile(r"\n*")
_MAX_DEPTH = 30


class _Irregular(Exception):
    """The pre-split met something the stdlib parser handles in its own way: use that."""


_MISSING: Any = object()


class _Part(Message):
    """A Message of the pre-split. `get`, `items` and `get_content_type` answer as Message's
    do (compat32: a value with surrogate escapes becomes a Header), without the policy's
    method calls for the values that are ASCII, which are nearly all."""

    @overload
    def get(self, name: str, failobj: None = None) -> Any: ...
    @overload
    def get(self, name: str, failobj: _T) -> Any: ...
    def get(self, name: str, failobj: object = None) -> Any:
        name = name.lower()
        for k, v in self._headers:  # type: ignore[attr-defined]
            if k.lower() == name:
                return v if v.isascii() else self.policy.header_fetch_parse(k, v)
        return failobj

    def items(self) -> list[tuple[str, Any]]:
        return [
            (k, v if v.isascii() else self.policy.header_fetch_parse(k, v))
            for k, v in self._headers  # type: ignore[attr-defined]
        ]

    def get_content_type(self) -> str:
        value = self.get("content-type", _MISSING)
        if value is _MISSING:
            return self.get_default_type()
        return _content_type(value) if isinstance(value, str) else super().get_content_type()


@functools.lru_cache(maxsize=256)
def _content_type(value: str) -> str:
    """Message.get_content_type() for a Content-Type field whose value is `value`."""
    ctype = value.partition(";")[0].strip().lower()  # email.message._splitparam
    return ctype if ctype.count("/") == 1 else "text/plain"


# A Content-Type value whose parameters `_boundary` reads by itself: a type with a '/', then
# each parameter `name=value` or `name="value"`, without a backslash, a star (RFC 2231), a
# semicolon or a stray quote in it.
_SIMPLE_PARAMS = re.compile(
    r'[^;="\\*/]*/[^;="\\*]*'
    r'(?:;[ \t\n]*[^;="\\*\s]+[ \t\n]*=[ \t\n]*(?:"[^;"\\*]*"|[^;"\\*\s]*)[ \t\n]*)*;?[ \t\n]*'
)


def _boundary(msg: Message) -> str | None:
    """`msg.get_boundary()`. Email's parameter parser is slow (and boundaries are all
    different, nothing to cache): a plain value is read here, the same way; anything else
    goes to email."""
    value = msg.get("content-type", _MISSING)
    if not isinstance(value, str) or not _SIMPLE_PARAMS.fullmatch(value):
        return msg.get_boundary()
    for param in value.split(";")[1:]:  # _parseparam: no ';' is quoted here
        name, eq, raw = param.partition("=")
        if eq and name.strip().lower() == "boundary":
            # decode_params unquotes the value once (quoting it again changes nothing
            # without quotes or backslashes), get_param's unquote undoes that quoting, and
            # collapse_rfc2231_value unquotes once more: "x", <x> and "<x>" all give x.
            return _unquote(_unquote(raw.strip())).rstrip()
    return None


def _unquote(value: str) -> str:
    """email.utils.unquote, for a value without backslashes."""
    if len(value) > 1 and (
        (value[0] == '"' and value[-1] == '"') or (value[0] == "<" and value[-1] == ">")
    ):
        return value[1:-1]
    return value


# The field `_walk` reads of a returned message/rfc822: the original's Message-ID.
_MESSAGE_ID_FIELD = (("\nmessage-id:", len("message-id")),)


def _head(text: str, fields: tuple[tuple[str, int], ...] = _READ_FIELDS) -> tuple[_Part, int]:
    """The Message of `_header_block` (only `fields`, first of each name) and the end of its
    header lines in `text`."""
    msg = _Part()
    end = m.end() if (m := _HEADER_LINES.match(text)) else 0  # (it matches, maybe empty)
    if not end:
        return msg, 0
    low = "\n" + text[:end].lower()  # low[i + 1] is text[i]: a field line starts after '\n'
    for key, size in fields:
        start = low.find(key)  # the field line's offset in text
        if start >= 0:
            m = _FIELD_VALUE.match(text, start + size + 1, end)
            value = m.group() if m else ""  # (it matches, maybe empty)
            # compat32.header_source_parse: value lstripped, inner line breaks kept
            msg.set_raw(text[start : start + size], value.lstrip(" \t").rstrip("\r\n"))
    return msg, end


def _header_block(text: str) -> tuple[Message, str]:
    """The headers at the start of `text` as FeedParser reads them (`_parsegen` and
    `_parse_headers`), and the body after them. Only the first field of each name in
    `_READ_FIELDS` is kept: `Message.get` answers the same for them as on the full list.

    `text` comes from bytes decoded as ASCII with surrogate escapes (as the stdlib parser
    decodes them), so `lower()` keeps every offset."""
    msg, end = _head(text)
    body_start = end + 1 if text.startswith("\n", end) else end  # the blank line is dropped
    if end:
        last = text.rfind("\n", 0, end - 1) + 1  # the start of the last header line
        if last and text.startswith("From ", last):
            # FeedParser pushes a last 'From ' line (not the first) back into the body.
            return msg, text[last:end] + text[body_start:]
    return msg, text[body_start:]


def _dsn_blocks(body: str) -> Iterator[Message]:
    """The header blocks of a message/delivery-status body, as FeedParser splits them: a block
    ends at a blank line (lines after a non-header line are the block's unread body) and the
    blank line is dropped. FeedParser makes an empty block of each further blank line: those,
    and blocks without a field, are left out (`_delivery_status_blocks` drops them too)."""
    size = len(body)
    pos = 0
    while True:
        end = m.end() if (m := _HEADER_LINES.match(body, pos)) else pos
        block = _Part()
        for m in _FIELD.finditer(body, pos, end):
            line = m.group(1)
            # 'From ' lines are an envelope line, a line pushed back into the body or a
            # misplaced one: never a field (feedparser `_parse_headers`); nor is ': x'.
            if not line.startswith("From ") and (i := line.find(":")) > 0:
                value = (line[i + 1 :] + m.group(2)).lstrip(" \t").rstrip("\r\n")
                block.set_raw(line[:i], value)
        if len(block):
            yield block
        if body.startswith("\n", end):
            blank = end
        elif (blank := body.find("\n\n", end)) >= 0:
            blank += 1
        else:
            return
        pos = m.end() if (m := _BLANK_LINES.match(body, blank + 1)) else blank + 1
        if pos >= size:
            return


def _line_starts(text: str, prefix: str) -> Iterator[int]:
    """The offsets of the lines of `text` that start with `prefix`, in order."""
    if text.startswith(prefix):
        yield 0
    needle = "\n" + prefix
    i = text.find(needle)
    while i >= 0:
        yield i + 1
        i = text.find(needle, i + 1)


def _split_parts(body: str, boundary: str) -> list[str]:
    """The parts of a multipart body, each with the line break before the next boundary line
    (FeedParser strips that one itself); preamble and epilogue dropped."""
    if not boundary or "\n" in boundary:
        raise _Irregular
    sep = "--" + boundary
    size = len(body)
    starts: list[int] = []  # the offsets of boundary lines, and of the line after each
    ends: list[int] = []
    closed = False
    for i in _line_starts(body, sep):
        nl = body.find("\n", i)
        tail = _BOUNDARY_TAIL.fullmatch(body, i + len(sep), size if nl < 0 else nl)
        if not tail:
            continue
        if ends and ends[-1] == i:
            raise _Irregular  # adjacent boundary lines: FeedParser swallows them its own way
        starts.append(i)
        if tail.group().startswith("--"):
            closed = True
            break
        ends.append(size if nl < 0 else nl + 1)
    if not ends:
        raise _Irregular  # no start boundary
    if not closed:
        starts.append(size)
    return [body[ends[k] : starts[k + 1]] for k in range(len(ends))]


def _message(text: str, depth: int = 0, *, part: bool = False) -> Message:
    """The Message tree FeedParser would build from `text`, as far as `_walk` reads it.

    `part`: `text` is a part of a multipart, and FeedParser drops the line break before the
    next boundary line from the payload of the last message it made for it (a leaf's payload;
    a multipart's epilogue, the last delivery-status block, the returned message's body are
    never read)."""
    if depth > _MAX_DEPTH:
        raise _Irregular
    msg, body = _header_block(text)
    ctype = msg.get_content_type()
    maintype = ctype.partition("/")[0]
    if maintype == "multipart":
        if ctype == "multipart/digest":
            raise _Irregular  # its parts default to message/rfc822
        boundary = _boundary(msg)
        if boundary is None:
            msg.set_payload(body)  # FeedParser keeps the body as text (a defect), never read
            return msg
        for sub in _split_parts(body, boundary):
            msg.attach(_message(sub, depth + 1, part=True))
        return msg
    if maintype == "message":
        if ctype == "message/delivery-status":
            if str(msg.get("content-transfer-encoding", "")).lower() in (
                "base64",
                "quoted-printable",
            ):
                return _stdlib_message(text)  # the blocks are re-assembled and decoded
            for block in _dsn_blocks(body):
                msg.attach(block)
            return msg
        if ctype == "message/global-delivery-status":
            raise _Irregular  # parsed as a message whose every header field is read
        if ctype in ("message/rfc822", "message/global"):
            # The returned original: only its headers are read (Message-ID), never its body.
            msg.attach(_head(body, _MESSAGE_ID_FIELD)[0])
        else:
            msg.attach(_message(body, depth + 1, part=part))  # feedback-report, partial…
        return msg
    msg.set_payload(body[:-1] if part and body.endswith("\n") else body)
    return msg


def _stdlib_message(text: str) -> Message:
    return email.message_from_string(text)


def _parse_tree(data: bytes) -> Message:
    """`email.message_from_bytes(data, policy=compat32)`, for what `_walk` reads of it."""
    text = data.decode("ascii", errors="surrogateescape")
    try:
        return _message(text)
    except _Irregular:
        return _stdlib_message(text)


# --------------------------------------------------------------------------- message walk


@dataclass
class _Parts:
    dsn_blocks: list[dict[str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    message_id: str = ""
    bare: list[str] = field(default_factory=list)  # multipart bodies without their boundary


def _walk(msg: Message, parts: _Parts, depth: int = 0) -> None:
    if depth > 20:
        return
    ctype = msg.get_content_type()
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        parts.dsn_blocks.extend(_delivery_status_blocks(msg))
        return
    if ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
        if not parts.message_id:
            parts.message_id = _returned_message_id(msg)
        return
    if msg.is_multipart():
        payload = msg.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    _walk(sub, parts, depth + 1)
        return
    maintype, _, subtype = ctype.partition("/")  # get_content_type() has exactly one '/'
    if maintype == "multipart":
        # (no part: its boundary is missing; read only if the message has nothing else)
        parts.bare.append(_decode_text(msg)[:_MAX_TEXT])
        return
    if maintype == "text" or ctype == "application/octet-stream":
        text = _decode_text(msg)
        if subtype == "html":
            text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>", "\n", text, flags=re.I)
            text = re.sub(r"<[^>]*>", "", text).replace("&nbsp;", " ").replace("&#39;", "'")
        parts.texts.append(text[:_MAX_TEXT])


def _returned_message_id(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        value = payload[0].get("Message-ID")
        if value:
            return _one_line(str(value))
        return ""
    text = _decode_text(part)
    m = _MESSAGE_ID.search(text)
    return m.group(1) if m else ""


def _text_message_id(text: str) -> str:
    """The returned copy's Message-ID, in a text body: after the report, never before it."""
    m = re.search(
        r"^(?:-+ ?(?:This is a copy|Below this line|Original message|Unsent message"
        r"|Returned message|Original Message)|Original message headers:|Message headers follow"
        r"|Received: )",
        text,
        re.MULTILINE | re.IGNORECASE,
    )
    if not m:
        return ""
    idm = _MESSAGE_ID.search(text, m.start())
    return idm.group(1) if idm else ""


_INLINE_PREFIX = re.compile(r"^([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?")


def _unfold_inline(diag: str) -> str:
    """Drop the repeated '550-5.7.1' prefixes of a multi-line reply already joined into one:
    each ' 550[ -]5.7.1 ' after the first becomes ' ', left to right as re.sub would (a
    literal scan: one compiled pattern per code and status would cost more than the work)."""
    m = _INLINE_PREFIX.match(diag)
    if not m:
        return diag
    head, rest = diag[: m.end()], diag[m.end() :]
    needle, tail = " " + m.group(1), (m.group(2) + " " if m.group(2) else "")
    out: list[str] = []
    done = 0
    i = rest.find(needle)
    while i >= 0:
        j = i + len(needle)
        if rest[j : j + 1] in (" ", "-") and rest.startswith(tail, j + 1):
            out.append(rest[done:i])
            done = j + 1 + len(tail)
            i = rest.find(needle, done)
        else:
            i = rest.find(needle, i + 1)
    if not out:
        return diag
    out.append(rest[done:])
    return head + " ".join(out)


def _to_record(hit: _Hit, *, fmt: str, source: str, message_id: str) -> BounceRecord:
    diag = _unfold_inline(_one_line(hit.diagnostic))
    status = hit.status or _status_of(diag)
    reply = hit.reply_code or _reply_code_of(diag)
    action = hit.action
    if not action:
        action = "delayed" if (status or reply or "5").startswith("4") else "failed"
    return BounceRecord(
        recipient=_clean_addr(hit.recipient),
        action=action,
        status=status,
        reply_code=reply,
        remote_mta=hit.remote_mta.rstrip("."),
        diagnostic=diag,
        command=hit.command or _command_of(diag),
        date=hit.date,
        message_id=message_id,
        source=source,
        format=fmt,
    )


def _fill(hit: _Hit, other: _Hit) -> _Hit:
    """Complete a DSN hit with what the human-readable part says about the same recipient."""
    if not hit.diagnostic:
        hit.diagnostic = other.diagnostic
    if not hit.remote_mta:
        hit.remote_mta = other.remote_mta
    if not hit.command:
        hit.command = other.command or _command_of(other.diagnostic)
    return hit


def _extract(data: bytes, source: str) -> list[BounceRecord]:
    data = _normalise(data)
    msg = _parse_tree(data)
    parts = _Parts()
    _walk(msg, parts)
    if not parts.texts and not parts.dsn_blocks:
        parts.texts = parts.bare
    text = "\n".join(parts.texts)
    low = _lower(text) if text.isascii() else None  # for the exact pre-checks (_may_find)
    message_id = parts.message_id
    if not message_id and (low is None or "message-id:" in low):  # _MESSAGE_ID
        message_id = _text_message_id(text)

    hits = _dsn_hits(parts.dsn_blocks)
    fmt = "rfc3464"
    if (
        not hits
        and (low is None or "-recipient:" in low)
        and re.search(r"^(?:Final|Original)-Recipient:", text, re.M | re.I)
    ):
        start = re.search(r"^(?:Reporting-MTA|Arrival-Date|Final-Recipient):", text, re.M | re.I)
        hits = _dsn_hits(_text_blocks(text[start.start() if start else 0 :]))
    text_hits: list[_Hit] = []
    text_fmt = ""
    detectors = _DETECTORS if hits else itertools.chain(_DETECTORS, _NOTICE_DETECTORS)
    for name, detect in detectors:
        if not _may_find(name, low):
            continue
        text_hits = [h for h in detect(text) if h.recipient]
        if text_hits:
            text_fmt = name
            break
    if hits:
        text_hits = [h for h in text_hits if h.fills]
        by_rcpt = {_clean_addr(h.recipient).lower(): h for h in text_hits}
        for hit in hits:
            if other := by_rcpt.get(hit.recipient.lower()):
                _fill(hit, other)
            elif len(text_hits) == 1 and len(hits) == 1:
                _fill(hit, text_hits[0])
    else:
        hits, fmt = text_hits, text_fmt

    records: dict[str, BounceRecord] = {}
    top_date: Any = _MISSING  # the message's Date, read when a hit has none of its own
    for hit in hits:
        if hit.date is None:
            if top_date is _MISSING:
                top_date = _parse_date(str(msg.get("Date", "")))
            hit.date = top_date
        record = _to_record(hit, fmt=fmt, source=source, message_id=message_id)
        if record.recipient and ("@" in record.recipient or fmt == "exim"):
            records.setdefault(record.recipient.lower(), record)
    return list(records.values())


def parse_message(data: bytes, *, source: str = "") -> list[BounceRecord]:
    """One record per failed or delayed recipient of a returned message; [] if none is found.

    Never raises: a message that cannot be understood gives what could be found, or [].
    """
    try:
        return _extract(data, source)
    except Exception:  # hostile input must not stop a scan; the failure is logged for debugging
        _log().debug("could not parse %s", source or "message", exc_info=True)
        return []


# --------------------------------------------------------------------------- mbox and files


def parse_mbox(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Split a Unix mbox into (number from 1, message bytes), 'From ' separator lines removed.

    A 'From ' line separates only at the start or after a blank line; '>From ' is unescaped.
    """
    data = _normalise(data)
    starts = _mbox_starts(data)
    if not starts:
        if data.strip():
            yield 1, data
        return
    bounds = [*starts, len(data)]
    for n, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        chunk = data[start:end]
        chunk = chunk[chunk.find(b"\n") + 1 :]
        if b">From " in chunk:  # (every match of the pattern holds it)
            chunk = re.sub(rb"(?m)^>(>*From )", rb"\1", chunk)
        if chunk.strip():
            yield n, chunk


def _mbox_starts(data: bytes) -> list[int]:
    """The offsets of the matches of `(?:\\A|(?<=\\n\\n))From [^\\n]*\\n` in `data`, found with
    bytes.find (the pattern has no literal prefix for `re` to search for: it tries every
    offset). A match is one line, so the next one cannot start inside it."""
    starts = [0] if data.startswith(b"From ") and b"\n" in data else []
    i = data.find(b"\n\nFrom ")
    while i >= 0:
        if data.find(b"\n", i + 2) < 0:
            break  # a last 'From ' line without its line break, and none after it
        starts.append(i + 2)
        i = data.find(b"\n\nFrom ", i + 2)
    return starts


def _is_mbox(data: bytes) -> bool:
    return data.startswith(b"From ") and b"\n" in data[:1000].replace(b"\r", b"\n")


def _parse_bytes(data: bytes, source: str) -> Iterator[BounceRecord]:
    if _is_mbox(data):
        for n, chunk in parse_mbox(data):
            yield from parse_message(chunk, source=f"{source}:{n}")
    else:
        yield from parse_message(data, source=source)


def _files(path: Path) -> Iterator[Path]:
    if (path / "cur").is_dir() or (path / "new").is_dir():
        for sub in ("cur", "new"):
            if (path / sub).is_dir():
                yield from sorted(p for p in (path / sub).iterdir() if p.is_file())
        return
    for root, dirs, names in os.walk(path, onerror=lambda e: _log().warning("skipped: %s", e)):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "tmp")
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(root) / name


def read_path(path: Path) -> Iterator[BounceRecord]:
    """Records from a file (.eml or mbox, told apart by content), a directory tree, a Maildir
    (cur/ and new/) or standard input (`-`). Unreadable files are logged and skipped."""
    if str(path) == "-":
        yield from _parse_bytes(sys.stdin.buffer.read(), "-")
        return
    try:  # a file, most of the time: no stat() to tell it from a directory first
        data = _read(path)
    except IsADirectoryError:
        pass
    except OSError as exc:
        if not path.is_dir():  # (a directory that cannot be opened is walked as before)
            _log().warning("skipped %s: %s", path, exc.strerror or exc)
            return
    else:
        yield from _parse_bytes(data, str(path))
        return
    for file in _files(path):
        try:
            data = _read(file)
        except OSError as exc:
            _log().warning("skipped %s: %s", file, exc.strerror or exc)
            continue
        yield from _parse_bytes(data, str(file))


def _read(path: Path) -> bytes:
    """`path.read_bytes()` without the buffered reader (fewer system calls, which cost much
    in some sandboxes): the whole file is read at once in any case."""
    with open(path, "rb", buffering=0) as fh:
        return fh.readall()
