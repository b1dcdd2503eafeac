"""Where returned messages are read from: a file (.eml or mbox, told apart by content), a
directory tree, a Maildir (cur/ and new/) or standard input. The only module of `bounces/`
that does file I/O; splitting an mbox (`parse_mbox`) is pure and sits here with it.

Mailboxes are hostile input: only regular files are read (a FIFO would block, a device never
ends), symlinks inside a tree are not followed, at most MAX_MESSAGE bytes of one message are
read, and an mbox larger than STREAM_ABOVE is split as it is read, one message in memory.
"""

from __future__ import annotations

import errno
import io
import itertools
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from blmonitor.bounces.extract import parse_message
from blmonitor.bounces.mime import normalise
from blmonitor.bounces.models import BounceRecord

if TYPE_CHECKING:
    import logging

__all__ = ["NotRegular", "open_regular", "parse_mbox", "read_file", "read_path", "stream_mbox"]

_FROM_ESCAPE = re.compile(rb"(?m)^>(>*From )")

MAX_MESSAGE = 10 * 1024 * 1024  # bytes of one message read; the DSN parts come first
STREAM_ABOVE = 32 * 1024 * 1024  # an mbox larger than this is split while it is read


class NotRegular(OSError):
    """A FIFO, device or socket where a mail file was expected: never opened for reading."""


def _log() -> logging.Logger:
    """This module's logger: `logging` is imported only when something is logged (a scan
    of bounces needs it only for unreadable files)."""
    import logging

    return logging.getLogger(__name__)


def parse_mbox(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Split a Unix mbox into (number from 1, message bytes), 'From ' separator lines removed.

    A 'From ' line separates only at the start or after a blank line; '>From ' is unescaped.
    """
    data = normalise(data)
    starts = _mbox_starts(data)
    if not starts:
        if data.strip():
            yield 1, data
        return
    bounds = [*starts, len(data)]
    for n, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        chunk = data[start:end]
        chunk = _unescape(chunk[chunk.find(b"\n") + 1 :])
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


def is_mbox(data: bytes) -> bool:
    """The file holds an mbox (it starts with a 'From ' line), not one message."""
    return data.startswith(b"From ") and b"\n" in data[:1000].replace(b"\r", b"\n")


def _parse_bytes(data: bytes, source: str) -> Iterator[BounceRecord]:
    if is_mbox(data):
        for n, chunk in parse_mbox(data):
            yield from parse_message(chunk, source=f"{source}:{n}")
    else:
        yield from parse_message(data, source=source)


def _files(path: Path) -> Iterator[Path]:
    if (path / "cur").is_dir() or (path / "new").is_dir():
        for sub in ("cur", "new"):
            if (path / sub).is_dir():
                yield from sorted(p for p in (path / sub).iterdir() if not p.is_dir())
        return
    for root, dirs, names in os.walk(path, onerror=lambda e: _log().warning("skipped: %s", e)):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "tmp")
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(root) / name


def read_path(path: Path) -> Iterator[BounceRecord]:
    """Records from a file (.eml or mbox, told apart by content), a directory tree, a Maildir
    (cur/ and new/) or standard input (`-`). What cannot be read (not a regular file, a link
    inside a tree, no permission) is logged and skipped; it costs only itself."""
    if str(path) == "-":
        yield from _parse_bytes(_cap(sys.stdin.buffer), "-")
        return
    try:  # a file, most of the time: no stat() to tell it from a directory first
        yield from read_file(path, follow=True)
        return
    except IsADirectoryError:
        pass
    except OSError as exc:
        if not path.is_dir():  # (a directory that cannot be opened is walked as before)
            _log().warning("skipped %s: %s", path, exc.strerror or exc)
            return
    for file in _files(path):
        try:
            yield from read_file(file, follow=False)
        except OSError as exc:
            _log().warning("skipped %s: %s", file, exc.strerror or exc)


def read_file(path: Path, *, follow: bool) -> Iterator[BounceRecord]:
    """The records of one mail file (a message or an mbox). `follow`: a symlink is read
    (a path the admin named) rather than refused (an entry found inside a tree)."""
    with open_regular(path, follow=follow) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > STREAM_ABOVE and handle.peek(5)[:5] == b"From ":
            for n, chunk in stream_mbox(handle):
                yield from parse_message(chunk, source=f"{path}:{n}")
            return
        data = _cap(handle)
    yield from _parse_bytes(data, str(path))


def open_regular(path: Path, *, follow: bool = False) -> io.BufferedReader:
    """`path` opened for reading if it is a regular file; else `NotRegular` (never blocks on
    a FIFO: it is opened non-blocking and looked at before any read)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise NotRegular(exc.errno, "a symbolic link: not followed inside a mailbox") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegular(errno.EINVAL, "not a regular file (a FIFO, device or socket)")
        os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def _cap(handle: BinaryIO) -> bytes:
    """At most MAX_MESSAGE bytes (a message larger than that is read up to there)."""
    return handle.read(MAX_MESSAGE)


def stream_mbox(handle: BinaryIO, *, block: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """`parse_mbox` over a file read line by line: one message in memory, each at most
    MAX_MESSAGE bytes (the rest of an oversized one is skipped up to the next separator)."""
    number, size, blank = 0, 0, True
    parts: list[bytes] = []
    for line in _lines(handle, block):
        if blank and line.startswith(b"From ") and line.endswith(b"\n"):
            if number and any(p.strip() for p in parts):
                yield number, _unescape(b"".join(parts))
            number, parts, size = number + 1, [], 0
        elif number == 0:  # text before the first separator: a message of its own
            number = 1
            parts, size = [line], len(line)
        elif size < MAX_MESSAGE:
            parts.append(line)
            size += len(line)
        blank = line == b"\n"
    if number and any(p.strip() for p in parts):
        yield number, _unescape(b"".join(parts))


def _lines(handle: BinaryIO, block: int = 1 << 20) -> Iterator[bytes]:
    """The file's lines with '\n' line breaks (CRLF and lone CR alike, as `normalise`), read a
    block at a time; a line longer than MAX_MESSAGE is cut there (a binary file has none)."""
    carry = b""
    while data := handle.read(block):
        if data.endswith(b"\r"):  # maybe the first half of a CRLF: decide with the next block
            more = handle.read(1)
            data += more
        lines = normalise(carry + data).split(b"\n")
        carry = lines.pop()[:MAX_MESSAGE]
        for line in lines:
            yield line[:MAX_MESSAGE] + b"\n"
    if carry:
        yield carry


def _unescape(chunk: bytes) -> bytes:
    return _FROM_ESCAPE.sub(rb"\1", chunk) if b">From " in chunk else chunk
