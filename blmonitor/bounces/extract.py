"""Returned messages (DSNs and NDRs) → one BounceRecord per failed or delayed recipient.

The walk of the MIME tree (`mime`) collects the delivery-status parts (`rfc3464`), the text
parts and the returned message's Message-ID; RFC 3464 comes first, then the detectors of
non-standard text formats (`detectors`, in their registry's order) fill in or stand in for it.
Parsing is pure: `parse_message` never raises; mbox, Maildir and files are `mailbox`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from blmonitor.bounces.detectors import find_hits
from blmonitor.bounces.hit import Hit, clean_addr, one_line, parse_date
from blmonitor.bounces.mime import Message, decode_text, normalise, parse_tree
from blmonitor.bounces.models import BounceRecord
from blmonitor.bounces.needles import lowered
from blmonitor.bounces.rfc3464 import delivery_status_blocks, dsn_hits, text_dsn_hits
from blmonitor.bounces.smtp import command_of, reply_code_of, status_of, unfold_inline

if TYPE_CHECKING:
    import logging

__all__ = ["MAX_PARTS", "MAX_RECIPIENTS", "extract_records", "parse_message"]

# Bounces are hostile input: cap what the text detectors look at so that no message costs
# more than a few milliseconds (the returned copy of the original is not needed), and what
# is parsed at all: a message is read up to its MAX_PARTS-th MIME boundary line and its
# MAX_RECIPIENTS-th recipient (bench/hostile.py measures why: 100,000 recipients cost 4.6 s
# and 388 MB, 50,000 parts half a second, without these).
_MAX_TEXT = 64 * 1024
_MAX_DEPTH = 20
MAX_PARTS = 100  # MIME boundary lines; a real bounce has fewer than 20
MAX_RECIPIENTS = 1000
MAX_HEADER = 256 * 1024  # of the top header section; a real one is a few KB
_RECIPIENT = re.compile(rb"\n(?i:final-recipient):")

_MESSAGE_ID = re.compile(r"^Message-I[Dd]:[ \t]*(<[^>\s]+>)", re.MULTILINE | re.IGNORECASE)
# Where a returned copy starts in a text body: its Message-ID is read after it, never before.
_RETURNED_COPY = re.compile(
    r"^(?:-+ ?(?:This is a copy|Below this line|Original message|Unsent message"
    r"|Returned message|Original Message)|Original message headers:|Message headers follow"
    r"|Received: )",
    re.MULTILINE | re.IGNORECASE,
)
_HTML_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</tr>", re.I)
_HTML_TAG = re.compile(r"<[^>]*>")
_MISSING: Any = object()


def _log() -> logging.Logger:
    """This module's logger: `logging` is imported only when something is logged (a scan
    of bounces needs it only for messages that failed to parse)."""
    import logging

    return logging.getLogger(__name__)


def parse_message(data: bytes, *, source: str = "") -> list[BounceRecord]:
    """One record per failed or delayed recipient of a returned message; [] if none is found.

    Never raises: a message that cannot be understood gives what could be found, or [].
    """
    try:
        return extract_records(data, source=source)
    except Exception:  # hostile input must not stop a scan; the failure is logged for debugging
        _log().debug("could not parse %s", source or "message", exc_info=True)
        return []


def extract_records(data: bytes, *, source: str = "") -> list[BounceRecord]:
    """`parse_message` without its safety net: an exception here is a parsing bug (the fuzz
    tests call this)."""
    data = _bounded(normalise(data), source)
    msg = parse_tree(data)
    parts = _Parts()
    _walk(msg, parts)
    if not parts.texts and not parts.dsn_blocks:
        parts.texts = parts.bare
    text = "\n".join(parts.texts)
    low = lowered(text) if text.isascii() else None  # for the literal pre-checks
    message_id = parts.message_id
    if not message_id and (low is None or "message-id:" in low):  # _MESSAGE_ID
        message_id = _text_message_id(text)

    hits = dsn_hits(parts.dsn_blocks) or text_dsn_hits(text, low)
    fmt = "rfc3464"
    text_fmt, text_hits = find_hits(text, low, notices=not hits)
    if hits:
        text_hits = [h for h in text_hits if h.fills]
        by_rcpt = {clean_addr(h.recipient).lower(): h for h in text_hits}
        for hit in hits:
            if other := by_rcpt.get(hit.recipient.lower()):
                _fill(hit, other)
            elif len(text_hits) == 1 and len(hits) == 1:
                _fill(hit, text_hits[0])
    else:
        hits, fmt = text_hits, text_fmt

    if len(hits) > MAX_RECIPIENTS:  # a text format listing too many (a DSN is cut before)
        _log().warning("%s: %d recipients, only the first %d read", source or "a message",
                       len(hits), MAX_RECIPIENTS)  # fmt: skip
        hits = hits[:MAX_RECIPIENTS]
    records: dict[str, BounceRecord] = {}
    top_date: Any = _MISSING  # the message's Date, read when a hit has none of its own
    for hit in hits:
        if hit.date is None:
            if top_date is _MISSING:
                top_date = parse_date(str(msg.get("Date", "")))
            hit.date = top_date
        record = _to_record(hit, fmt=fmt, source=source, message_id=message_id)
        if record.recipient and ("@" in record.recipient or fmt == "exim"):
            records.setdefault(record.recipient.lower(), record)
    return list(records.values())


def _bounded(data: bytes, source: str) -> bytes:
    """`data` up to its MAX_PARTS-th boundary line and MAX_RECIPIENTS-th recipient field, its
    header section up to MAX_HEADER; a message cut short is said so in the log (it is a
    flood, not a bounce)."""
    end = _nth(data, b"\n--", MAX_PARTS)
    if data.count(b"Recipient:", 0, end) > MAX_RECIPIENTS:  # (cheap: most have a few)
        for n, field in enumerate(_RECIPIENT.finditer(data, 0, end)):
            if n == MAX_RECIPIENTS:
                end = field.start()
                break
    head = data.find(b"\n\n", 0, end)
    if end < len(data) or head > MAX_HEADER or (head < 0 and end > MAX_HEADER):
        _log().warning("%s: more than %d MIME parts, %d recipients or %d KB of header: read "
                       "up to there", source or "a message", MAX_PARTS, MAX_RECIPIENTS,
                       MAX_HEADER // 1024)  # fmt: skip
    if head > MAX_HEADER:
        return data[:MAX_HEADER] + data[head:end]
    return data[: min(end, MAX_HEADER) if head < 0 else end]


def _nth(data: bytes, needle: bytes, n: int) -> int:
    """Where the (n+1)-th occurrence of `needle` starts in `data`; its length if fewer."""
    at = -1
    for _ in range(n + 1):
        at = data.find(needle, at + 1)
        if at < 0:
            return len(data)
    return at


@dataclass
class _Parts:
    dsn_blocks: list[dict[str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    message_id: str = ""
    bare: list[str] = field(default_factory=list)  # multipart bodies without their boundary


def _walk(msg: Message, parts: _Parts, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        return
    ctype = msg.get_content_type()
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        parts.dsn_blocks.extend(delivery_status_blocks(msg))
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
        parts.bare.append(decode_text(msg, _MAX_TEXT)[:_MAX_TEXT])
        return
    if maintype == "text" or ctype == "application/octet-stream":
        text = decode_text(msg, _MAX_TEXT)
        if subtype == "html":
            text = _HTML_BREAK.sub("\n", text)
            text = _HTML_TAG.sub("", text).replace("&nbsp;", " ").replace("&#39;", "'")
        parts.texts.append(text[:_MAX_TEXT])


def _returned_message_id(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        value = payload[0].get("Message-ID")
        if value:
            return one_line(str(value))
        return ""
    text = decode_text(part)
    m = _MESSAGE_ID.search(text)
    return m.group(1) if m else ""


def _text_message_id(text: str) -> str:
    """The returned copy's Message-ID, in a text body: after the report, never before it."""
    m = _RETURNED_COPY.search(text)
    if not m:
        return ""
    idm = _MESSAGE_ID.search(text, m.start())
    return idm.group(1) if idm else ""


def _to_record(hit: Hit, *, fmt: str, source: str, message_id: str) -> BounceRecord:
    diag = unfold_inline(one_line(hit.diagnostic[:_MAX_TEXT]))
    status = hit.status or status_of(diag)
    reply = hit.reply_code or reply_code_of(diag)
    action = hit.action
    if not action:
        action = "delayed" if (status or reply or "5").startswith("4") else "failed"
    return BounceRecord(
        recipient=clean_addr(hit.recipient),
        action=action,
        status=status,
        reply_code=reply,
        remote_mta=hit.remote_mta.rstrip("."),
        diagnostic=diag,
        command=hit.command or command_of(diag),
        date=hit.date,
        message_id=message_id,
        source=source,
        format=fmt,
    )


def _fill(hit: Hit, other: Hit) -> Hit:
    """Complete a DSN hit with what the human-readable part says about the same recipient."""
    if not hit.diagnostic:
        hit.diagnostic = other.diagnostic
    if not hit.remote_mta:
        hit.remote_mta = other.remote_mta
    if not hit.command:
        hit.command = other.command or command_of(other.diagnostic)
    return hit
