"""A fast path of `mime.parse_tree`: the Message tree that the stdlib's FeedParser would build
from a returned message, as far as `extract` reads it, built with str.find and a few regexes.
Private: `mime.parse_tree` uses it and falls back to the stdlib parser, which stays the oracle
of the tests (tests/test_extract_presplit.py, tests/test_extract.py). Pure.

The stdlib parser reads every line of a message in Python, the returned original included, and
compiles one regex per multipart boundary: two thirds of the time went there. `message_tree`
builds the tree by FeedParser's own rules (email/feedparser.py, Python 3.11): boundary lines are
found with str.find, a header block with one regex, only the fields the walk reads are stored,
and a returned message/rfc822 is read no further than its headers (its Message-ID). Decoding
(transfer encodings, charsets, parameters) stays with the email package. Whatever FeedParser
treats in a way of its own (no start boundary, adjacent boundary lines, multipart/digest,
message/global-delivery-status, nesting deeper than _MAX_DEPTH) raises `Irregular`, and the
whole message goes to the stdlib parser: the result is the same, only slower.
"""

from __future__ import annotations

import email
import email.message
import functools
import re
from collections.abc import Iterator
from typing import Any, TypeVar, overload

Message = email.message.Message
_T = TypeVar("_T")

# The header lines at the start of a message, as FeedParser tells them from the body: lines
# that match feedparser.headerRE ('From ', a field name and a colon, or folding white space).
# (Possessive: a line matches one way or not at all, and `re` need not keep a way back.)
_HEADER_LINES = re.compile(r"(?:(?:From |[\041-\071\073-\176]*+:|[\t ])[^\n]*+(?:\n|\Z))*+")
# The only fields the walk of `extract` reads, as a field line starts (the name is what precedes
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


class Irregular(Exception):
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


# The field the walk reads of a returned message/rfc822: the original's Message-ID.
_MESSAGE_ID_FIELD = (("\nmessage-id:", len("message-id")),)


def _head(text: str, fields: tuple[tuple[str, int], ...] = _READ_FIELDS) -> tuple[_Part, int]:
    """The Message of `header_block` (only `fields`, first of each name) and the end of its
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


def header_block(text: str) -> tuple[Message, str]:
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
    and blocks without a field, are left out (`rfc3464.delivery_status_blocks` drops them too)."""
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
        raise Irregular
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
            raise Irregular  # adjacent boundary lines: FeedParser swallows them its own way
        starts.append(i)
        if tail.group().startswith("--"):
            closed = True
            break
        ends.append(size if nl < 0 else nl + 1)
    if not ends:
        raise Irregular  # no start boundary
    if not closed:
        starts.append(size)
    return [body[ends[k] : starts[k + 1]] for k in range(len(ends))]


def message_tree(text: str, depth: int = 0, *, part: bool = False) -> Message:
    """The Message tree FeedParser would build from `text`, as far as the walk reads it.

    `part`: `text` is a part of a multipart, and FeedParser drops the line break before the
    next boundary line from the payload of the last message it made for it (a leaf's payload;
    a multipart's epilogue, the last delivery-status block, the returned message's body are
    never read)."""
    if depth > _MAX_DEPTH:
        raise Irregular
    msg, body = header_block(text)
    ctype = msg.get_content_type()
    maintype = ctype.partition("/")[0]
    if maintype == "multipart":
        if ctype == "multipart/digest":
            raise Irregular  # its parts default to message/rfc822
        boundary = _boundary(msg)
        if boundary is None:
            msg.set_payload(body)  # FeedParser keeps the body as text (a defect), never read
            return msg
        for sub in _split_parts(body, boundary):
            msg.attach(message_tree(sub, depth + 1, part=True))
        return msg
    if maintype == "message":
        if ctype == "message/delivery-status":
            if str(msg.get("content-transfer-encoding", "")).lower() in (
                "base64",
                "quoted-printable",
            ):
                return email.message_from_string(text)  # blocks re-assembled, decoded
            for block in _dsn_blocks(body):
                msg.attach(block)
            return msg
        if ctype == "message/global-delivery-status":
            raise Irregular  # parsed as a message whose every header field is read
        if ctype in ("message/rfc822", "message/global"):
            # The returned original: only its headers are read (Message-ID), never its body.
            msg.attach(_head(body, _MESSAGE_ID_FIELD)[0])
        else:
            msg.attach(message_tree(body, depth + 1, part=part))  # feedback-report, partial…
        return msg
    msg.set_payload(body[:-1] if part and body.endswith("\n") else body)
    return msg
