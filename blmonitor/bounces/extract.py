"""Returned messages (DSNs and NDRs) → one BounceRecord per failed or delayed recipient.

RFC 3464 delivery-status parts come first; then one detector per non-standard text format
(Exim, qmail/Yahoo, Postfix/Sendmail plain text, DragonFly, Gmail, Exchange/Office 365).
Parsing is pure and never raises; only `read_path` opens files.
"""

from __future__ import annotations

import binascii
import email
import email.message
import email.parser
import email.policy
import itertools
import logging
import os
import quopri
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from blmonitor.bounces.models import BounceRecord

__all__ = ["parse_mbox", "parse_message", "read_path"]

log = logging.getLogger(__name__)

Message = email.message.Message

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


# --------------------------------------------------------------------------- helpers


def _normalise(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _strip_type(value: str) -> str:
    """'dns; mx.example.jp' → 'mx.example.jp', 'rfc822; a@b' → 'a@b', 'smtp; 550 …' → '550 …'."""
    return _SMTP_TYPE.sub("", _one_line(value), count=1).strip()


def _clean_addr(value: str) -> str:
    value = _strip_type(value).strip().strip("<>").strip()
    value = re.sub(r"<mailto:[^>]*>$", "", value).strip("<>\"' ")
    return value


def _parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(_one_line(value).split(" (")[0])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _command_of(text: str) -> str:
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


def _unfold_reply(lines: Iterable[str]) -> str:
    """Join a multi-line SMTP reply ('550-5.7.26 a' / '550 5.7.26 b') into one line."""
    out: list[str] = []
    for i, line in enumerate(lines):
        line = line.strip()
        if i and (m := re.match(r"^[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\s+)?", line)):
            line = line[m.end() :]
        if line:
            out.append(line)
    return " ".join(out)


def _decode_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken base64/qp: the library raises a variety of errors
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
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
        return [_fields(sub.items()) for sub in payload if isinstance(sub, Message)]
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
    r"host\s+(?P<host>\S+)\s+\[(?P<ip>[^\]]+)\]:?\s*SMTP error from remote mail(?:er| server)"
    r" after (?P<cmd>.+?):\s*(?P<diag>[245]\d\d\b.*)",
    re.IGNORECASE,
)


def _exim(text: str) -> list[_Hit]:
    m = _EXIM_START.search(text)
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
        am = re.match(r"^ {1,3}<?([^\s<>]+?)>?:?\s*(?:\(.*\))?\s*$", line)
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
        m = _ANGLE_START.match(lines[i])
        if not m:
            i += 1
            continue
        detail = [m.group(2)]
        i += 1
        while i < len(lines) and lines[i].strip() and not _ANGLE_START.match(lines[i]):
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


def _exchange2003(text: str) -> list[_Hit]:
    m = _EXCHANGE2003.search(text)
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
        if tm := re.search(r"while talking to (\S+?)\.?:\s*$", s):
            host, command, last_reply = tm.group(1), "", ""
        elif s.startswith(">>> "):
            command = _command_of(s)
        elif s.startswith("<<< "):
            last_reply = s[4:]
        elif rm := re.match(
            rf"^([245]\d\d)(?:[ -]([245]\.\d+\.\d+))?\s+<?({_ADDR})>?\.\.\.\s*(.*)$", s
        ):
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


_OPENSMTPD = re.compile(r"for the following\s+list of recipients:", re.IGNORECASE)
_OPENSMTPD_LINE = re.compile(r"^\s*([^\s<>@:]+@[^\s<>:]+):\s+(\d{3}[ -].*)$")


def _opensmtpd(text: str) -> list[_Hit]:
    """OpenSMTPD: '… for the following list of recipients:' then 'rcpt: reply' lines."""
    start = _OPENSMTPD.search(text)
    if not start:
        return []
    hits = []
    for line in text[start.end() :].split("\n"):
        if m := _OPENSMTPD_LINE.match(line):
            reply = m.group(2).strip()
            hits.append(_Hit(recipient=m.group(1), diagnostic=reply, command=_command_of(reply)))
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
    body = re.search(r"generated response:\s*\n(.*?)(?:\n\s*\n|\Z)", text, re.IGNORECASE | re.S)
    if not rcpt or not body:
        return []
    return [_Hit(recipient=rcpt.group(1), diagnostic=_unfold_reply(body.group(1).split("\n")))]


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
)


# --------------------------------------------------------------------------- message walk


@dataclass
class _Parts:
    dsn_blocks: list[dict[str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    message_id: str = ""


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
    if msg.get_content_maintype() == "text" or ctype == "application/octet-stream":
        text = _decode_text(msg)
        if msg.get_content_subtype() == "html":
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


def _unfold_inline(diag: str) -> str:
    """Drop the repeated '550-5.7.1' prefixes of a multi-line reply already joined into one."""
    m = re.match(r"^([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?", diag)
    if not m:
        return diag
    prefix = re.escape(m.group(1)) + r"[ -]" + (re.escape(m.group(2)) + " " if m.group(2) else "")
    return diag[: m.end()] + re.sub(r" " + prefix, " ", diag[m.end() :])


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
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    parts = _Parts()
    _walk(msg, parts)
    text = "\n".join(parts.texts)
    message_id = parts.message_id or _text_message_id(text)
    top_date = _parse_date(str(msg.get("Date", "")))

    hits = _dsn_hits(parts.dsn_blocks)
    fmt = "rfc3464"
    if not hits and re.search(r"^(?:Final|Original)-Recipient:", text, re.M | re.I):
        start = re.search(r"^(?:Reporting-MTA|Arrival-Date|Final-Recipient):", text, re.M | re.I)
        hits = _dsn_hits(_text_blocks(text[start.start() if start else 0 :]))
    text_hits: list[_Hit] = []
    text_fmt = ""
    for name, detect in _DETECTORS:
        text_hits = [h for h in detect(text) if h.recipient]
        if text_hits:
            text_fmt = name
            break
    if hits:
        by_rcpt = {_clean_addr(h.recipient).lower(): h for h in text_hits}
        for hit in hits:
            if other := by_rcpt.get(hit.recipient.lower()):
                _fill(hit, other)
            elif len(text_hits) == 1 and len(hits) == 1:
                _fill(hit, text_hits[0])
    else:
        hits, fmt = text_hits, text_fmt

    records: dict[str, BounceRecord] = {}
    for hit in hits:
        if hit.date is None:
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
        log.debug("could not parse %s", source or "message", exc_info=True)
        return []


# --------------------------------------------------------------------------- mbox and files


def parse_mbox(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Split a Unix mbox into (number from 1, message bytes), 'From ' separator lines removed.

    A 'From ' line separates only at the start or after a blank line; '>From ' is unescaped.
    """
    data = _normalise(data)
    starts = [m.start() for m in re.finditer(rb"(?:\A|(?<=\n\n))From [^\n]*\n", data)]
    if not starts:
        if data.strip():
            yield 1, data
        return
    bounds = [*starts, len(data)]
    for n, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        chunk = data[start:end]
        chunk = chunk[chunk.find(b"\n") + 1 :]
        chunk = re.sub(rb"(?m)^>(>*From )", rb"\1", chunk)
        if chunk.strip():
            yield n, chunk


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
    for root, dirs, names in os.walk(path, onerror=lambda e: log.warning("skipped: %s", e)):
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
    paths = _files(path) if path.is_dir() else iter([path])
    for file in paths:
        try:
            data = file.read_bytes()
        except OSError as exc:
            log.warning("skipped %s: %s", file, exc.strerror or exc)
            continue
        yield from _parse_bytes(data, str(file))
