"""The small text files a user names — the config, a DQS key, a catalog, a targets list: read
whole, but only when they are regular files of a sane size and UTF-8 text, so `/dev/zero`, a
FIFO or a binary file is one clear line, never a hang, a MemoryError or a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from blmonitor.errors import BlmonitorError

LIMIT = 16 * 1024 * 1024  # bytes: a catalog is about 100 KB, a config a few KB


class UnreadableFile(BlmonitorError):
    """Why a named file cannot be read, in words (the caller says which file it was)."""


def read_text(path: Path, *, limit: int = LIMIT) -> str:
    """The UTF-8 text of the regular file `path`; `UnreadableFile` (or FileNotFoundError,
    for the caller to tell "missing" apart) otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFile(exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile("Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file (a device, FIFO or socket)")
        if info.st_size > limit:
            raise UnreadableFile(f"larger than {limit // (1024 * 1024)} MB")
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb", closefd=True) as handle:
        data = handle.read(limit + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte {exc.start})") from None
