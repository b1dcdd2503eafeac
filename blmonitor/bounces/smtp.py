"""SMTP replies in bounce texts: the reply code (RFC 5321 §4.2), the enhanced status code
(RFC 3463), the command a reply answered, and the unfolding of multi-line replies. The one
place these patterns live: the message readers, the log-line parser and attribution use them.
Pure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from blmonitor.bounces.needles import may_hold

# A reply code inside a diagnostic: after white space, an opening bracket or quote, or '#'
# (Exchange's '#550'), and before white space, '-' (a continued line) or ':'.
_REPLY_CODE = re.compile(r"(?:^|[\s(\[#'\"])([245]\d\d)(?=[\s\-:]|$)")
# A reply code in an MTA log line: only between white space (or '-') and the line's ends.
_LOG_REPLY_CODE = re.compile(r"(?:^|\s)([245]\d\d)(?=[\s\-]|$)")
# An enhanced status code, not part of a longer dotted number; a sentence may end after it.
_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.]*\d)")
# The same, followed by neither a digit nor a dot (attribution's stricter reading: a version
# number "5.7.1.2" or a status glued to a full stop is not taken).
_STRICT_STATUS = re.compile(r"(?<![\d.])(?P<status>[245]\.\d{1,3}\.\d{1,3})(?![\d.])")
# The code (and status) a reply starts with, after up to four non-word characters…
_HEAD = re.compile(r"^\W{0,4}(?P<reply>[245]\d\d)(?:[ -]+(?P<status>[245]\.\d{1,3}\.\d{1,3}))?")
# …or, failing that, the first 'code status' pair near the start.
_PAIR = re.compile(
    r"(?<![\w.])(?P<reply>[245]\d\d)[ -](?P<status>[245]\.\d{1,3}\.\d{1,3})(?![\d.])"
)
# The repeated '550-5.7.1' of a multi-line reply unfolded to one line: "…is 550-5.7.1 likely…".
_CONTINUATION = re.compile(
    r"(?<=\s)[245]\d\d(?:-|\s(?=[245]\.\d{1,3}\.\d{1,3}\s))(?:[245]\.\d{1,3}\.\d{1,3}(?![\d.]))?"
)
_REPLY_PREFIX = re.compile(r"^[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\s+)?")
_INLINE_PREFIX = re.compile(r"^([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?")

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
# Every pattern of _COMMANDS holds one of these (lower-cased): on ASCII text, none of them
# means no command (the case-insensitive patterns are slow to try one by one).
_COMMAND_NEEDLES = (
    "reply to", "data", "after", "did not like", "response", "[rcpt_to]", "[mail_from]",
    "sender was rejected", "message was rejected", "greeting", "connect to ", ">>> ",
)  # fmt: skip
COMMAND_NAMES = {"RCPT TO": "RCPT", "RCPT_TO": "RCPT", "MAIL FROM": "MAIL", "MAIL_FROM": "MAIL"}


@functools.lru_cache(maxsize=1024)
def command_of(text: str) -> str:
    """The SMTP command a reply text names. (Cached: a record's diagnostic is read here by the
    detector, then by the DSN reader or the record builder, often unchanged.)"""
    if not may_hold(_COMMAND_NEEDLES, text.lower() if text.isascii() else None):
        return ""
    for pattern, name in _COMMANDS:
        m = pattern.search(text)
        if m:
            if name:
                return name
            word = m.group(1).upper()
            return COMMAND_NAMES.get(word, word.split()[0])
    return ""


def reply_code_of(text: str) -> str:
    """The first reply code in a diagnostic text, or ''."""
    m = _REPLY_CODE.search(text)
    return m.group(1) if m else ""


def log_reply_code_of(text: str) -> str:
    """The first reply code in the text of an MTA log line, or ''."""
    m = _LOG_REPLY_CODE.search(text)
    return m.group(1) if m else ""


def status_of(text: str) -> str:
    """The first enhanced status code in a text, or ''."""
    m = _STATUS.search(text)
    return m.group(1) if m else ""


def reply_head(text: str) -> tuple[str, str] | None:
    """(reply code, status or '') of the reply a one-line rejection text starts with, else of
    the first 'code status' pair in its first 256 characters; None when there is neither."""
    head = _HEAD.match(text) or _PAIR.search(text[:256])
    return (head["reply"], head["status"] or "") if head else None


def leading_status(text: str) -> str:
    """A status code (strict reading) in the first 64 characters of a text, or ''."""
    found = _STRICT_STATUS.search(text[:64])
    return found["status"] if found else ""


def drop_continuations(text: str) -> str:
    """A one-line reply without the code (and status) each continued line repeated."""
    return _CONTINUATION.sub("", text)


def unfold_reply(lines: Iterable[str]) -> str:
    """Join a multi-line SMTP reply ('550-5.7.26 a' / '550 5.7.26 b') into one line."""
    out: list[str] = []
    for i, line in enumerate(lines):
        line = line.strip()
        if i and (m := _REPLY_PREFIX.match(line)):
            line = line[m.end() :]
        if line:
            out.append(line)
    return " ".join(out)


def unfold_inline(diag: str) -> str:
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
