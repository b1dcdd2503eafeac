"""Reading a returned message as MIME: line endings, the Message tree, and the decoded text of
a part. `parse_tree` takes the fast path of `_fastmime` and falls back to the stdlib parser
(`stdlib_tree`, also the tests' oracle) for whatever that path does not follow. Pure.
"""

from __future__ import annotations

import email
import email.message
import functools

from blmonitor.bounces import _fastmime

# (`Message()` has the compat32 policy, as `email.message_from_string` does: importing
# email.policy for it would cost more than the rest of the email imports a run needs.)
Message = email.message.Message


def normalise(data: bytes) -> bytes:
    """Line breaks as '\\n' (CRLF and lone CR alike)."""
    if b"\r" not in data:  # (the usual case, and every chunk of an mbox already normalised)
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def parse_tree(data: bytes) -> Message:
    """`email.message_from_bytes(data, policy=compat32)`, for what `extract` reads of it."""
    text = data.decode("ascii", errors="surrogateescape")
    try:
        return _fastmime.message_tree(text)
    except _fastmime.Irregular:
        return stdlib_tree(text)


def stdlib_tree(text: str) -> Message:
    """The stdlib parser's tree of `text` (bytes decoded as ASCII with surrogate escapes)."""
    return email.message_from_string(text)


@functools.lru_cache(maxsize=512)
def _charset_of(content_type: str) -> str | None:
    """`get_content_charset()` of a part whose Content-Type is `content_type` (a str, so the
    same as stored): the parameter parser is slow and the same few values come back."""
    probe = Message()
    probe.set_raw("Content-Type", content_type)
    return probe.get_content_charset()


def decode_text(part: Message, limit: int | None = None) -> str:
    """The text of a leaf part: transfer encoding undone, decoded by its charset (UTF-8 when
    it names none, Latin-1 when Python does not know it), broken bytes replaced.

    With `limit`, about that many characters are wanted: a much longer encoded payload is
    cut at a line break before it is decoded (a 5 MB attachment costs nothing then)."""
    raw = part.get_payload()
    if limit is not None and isinstance(raw, str) and len(raw) > 2 * limit:
        cut = raw.rfind("\n", 0, 2 * limit)
        short = Message()
        for name, value in part.items():
            short[name] = value
        short.set_payload(raw[: cut if cut > 0 else 2 * limit])
        part = short
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
