"""Where returned messages are read from: a file (.eml or mbox, told apart by content), a
directory tree, a Maildir (cur/ and new/) or standard input. The only module of `bounces/`
that does file I/O; splitting an mbox (`parse_mbox`) is pure and sits here with it.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from blmonitor.bounces.extract import parse_message
from blmonitor.bounces.mime import normalise
from blmonitor.bounces.models import BounceRecord

if TYPE_CHECKING:
    import logging

__all__ = ["parse_mbox", "read_path"]

_FROM_ESCAPE = re.compile(rb"(?m)^>(>*From )")


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
        chunk = chunk[chunk.find(b"\n") + 1 :]
        if b">From " in chunk:  # (every match of the pattern holds it)
            chunk = _FROM_ESCAPE.sub(rb"\1", chunk)
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
