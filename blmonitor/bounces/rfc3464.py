"""RFC 3464 delivery-status notifications: the per-recipient field blocks of a
message/delivery-status part (or of a DSN pasted into a text body) → one `Hit` per failed or
delayed recipient. Pure.
"""

from __future__ import annotations

import binascii
import quopri
import re
from collections.abc import Iterable

from blmonitor.bounces.hit import Hit, clean_addr, one_line, parse_date, strip_type
from blmonitor.bounces.mime import Message, decode_text, normalise
from blmonitor.bounces.smtp import command_of, reply_code_of, status_of

_FIELD_LINE = re.compile(r"^([A-Za-z][\w-]*):\s*(.*)$")
_RECIPIENT_FIELD = re.compile(r"^(?:Final|Original)-Recipient:", re.M | re.I)
_FIRST_FIELD = re.compile(r"^(?:Reporting-MTA|Arrival-Date|Final-Recipient):", re.M | re.I)


# A field longer than this is read up to there (a diagnostic is a few hundred characters;
# a 5 MB one is a flood, and every reader of it would pay for its length).
MAX_FIELD = 16 * 1024


def _fields(block: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.strip().lower(): one_line(str(v)[:MAX_FIELD]) for k, v in block}


def text_blocks(text: str) -> list[dict[str, str]]:
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
            if len(current[last]) < MAX_FIELD:
                current[last] = (current[last] + " " + line.strip())[:MAX_FIELD]
        elif m := _FIELD_LINE.match(line[: MAX_FIELD + 64]):
            last = m.group(1).lower()
            current[last] = m.group(2).strip()[:MAX_FIELD]
    if current:
        blocks.append(current)
    return blocks


def dsn_hits(blocks: list[dict[str, str]]) -> list[Hit]:
    """The failed and delayed recipients of a DSN's blocks (the per-message fields first)."""
    per_message: dict[str, str] = {}
    hits: list[Hit] = []
    for block in blocks:
        rcpt = block.get("final-recipient") or block.get("original-recipient") or ""
        if not rcpt:
            if not hits:
                per_message.update(block)
            continue
        action = block.get("action", "").lower().split(" ")[0].strip()
        status = status_of(block.get("status", ""))
        diag = strip_type(block.get("diagnostic-code", ""))
        if not action:
            first = (status or reply_code_of(diag) or "5")[0]
            action = {"5": "failed", "4": "delayed"}.get(first, "delivered")
        if action not in ("failed", "delayed"):
            continue
        remote = strip_type(block.get("remote-mta", ""))
        date = parse_date(block.get("last-attempt-date", "")) or parse_date(
            per_message.get("arrival-date", "")
        )
        hits.append(
            Hit(
                recipient=clean_addr(rcpt),
                action=action,
                status=status or status_of(diag),
                reply_code=reply_code_of(diag),
                remote_mta=remote,
                diagnostic=diag,
                command=command_of(diag),
                date=date,
            )
        )
    return hits


def text_dsn_hits(text: str, low: str | None) -> list[Hit]:
    """The recipients of a DSN written into a text body ('Final-Recipient:' lines); `low` is
    the lower-cased text, or None when it is not ASCII (no literal pre-check then)."""
    if (low is None or "-recipient:" in low) and _RECIPIENT_FIELD.search(text):
        start = _FIRST_FIELD.search(text)
        return dsn_hits(text_blocks(text[start.start() if start else 0 :]))
    return []


def delivery_status_blocks(part: Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status part, however it was encoded."""
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
        return text_blocks(normalise(decoded).decode("utf-8", errors="replace"))
    return text_blocks(decode_text(part))
