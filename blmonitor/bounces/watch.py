"""Read what is new in the watched places since the last run: Maildirs and directories of
messages (by status-change time), mbox files (when they change) and MTA logs (from the byte
offset where the last run stopped, starting over when the log was rotated).

A message moved or copied in keeps its modification time (mv, cp -p, rsync, delivery agents
that set it to the received date), so new messages are found by ctime, which every rename
and every new file sets to now and nobody can set back. Only regular files are read, links
inside a watched tree are not followed, and an entry that cannot be read is logged once and
skipped: it costs only itself (see `mailbox.open_regular`).

An adapter: it reads files. Positions are opaque strings the store keeps in the same
transaction as the evidence, so a killed run reads the same lines again and the evidence's
fingerprints keep them from counting twice.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from blmonitor.bounces.logs import parse_log_line
from blmonitor.bounces.mailbox import open_regular, read_file
from blmonitor.bounces.models import BounceRecord

log = logging.getLogger("blmonitor")

_MAX_LINE = 64 * 1024  # of one log line: a longer one is read up to there


def looks_like_log(path: Path) -> bool:
    """An MTA log rather than a mail file: its first line is not a header or mbox "From "."""
    try:
        with open_regular(path, follow=True) as handle:
            head = handle.readline(4096)
    except OSError:
        return False
    return bool(head.strip()) and not re.match(rb"^(From |[A-Za-z0-9-]+:)", head)


def read_log(path: Path) -> Iterator[BounceRecord]:
    with open_regular(path, follow=True) as handle:
        for number, raw in enumerate(handle, 1):
            line = raw[:_MAX_LINE].decode("utf-8", "replace")
            record = parse_log_line(line, source=f"{path}:{number}")
            if record is not None:
                yield record


def collect(
    paths: Sequence[Path], positions: Mapping[str, str]
) -> tuple[list[BounceRecord], dict[str, str]]:
    """The records that are new in each watched path, and each path's new position."""
    records: list[BounceRecord] = []
    moved: dict[str, str] = {}
    for path in paths:
        key = str(path)
        try:
            if path.is_dir():
                found, position = _new_messages(path, positions.get(key, ""))
            elif path.is_file():
                if looks_like_log(path):
                    found, position = _new_log_lines(path, positions.get(key, ""))
                else:
                    found, position = _changed_file(path, positions.get(key, ""))
            elif path.exists():
                log.warning("bounces: %s is neither a file nor a directory: skipped", path)
                continue
            else:
                log.warning("bounces: %s does not exist: check [bounces] watch", path)
                continue
        except OSError as exc:
            log.warning("bounces: cannot read %s: %s", path, exc.strerror or exc)
            continue
        records.extend(found)
        moved[key] = position
    return records, moved


def _new_messages(folder: Path, position: str) -> tuple[list[BounceRecord], str]:
    """Messages that appeared after the last run's newest one (Maildir new/ and cur/, or a
    tree), by ctime; one that cannot be read is skipped once, never read again."""
    since = int(position) if position.isdigit() else -1
    newest = since
    records: list[BounceRecord] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "tmp"]  # Maildir tmp/ holds mail being written
        for name in files:
            file = Path(root, name)
            try:
                stamp = file.lstat().st_ctime_ns
                if stamp <= since:
                    continue
                newest = max(newest, stamp)
                records.extend(read_file(file, follow=False))
            except OSError as exc:
                log.warning("bounces: skipped %s: %s", file, exc.strerror or exc)
    return records, str(max(newest, 0))


def _new_log_lines(path: Path, position: str) -> tuple[list[BounceRecord], str]:
    inode, _, offset_text = position.partition(":")
    stat = path.stat()
    offset = int(offset_text) if offset_text.isdigit() else 0
    if inode != str(stat.st_ino) or stat.st_size < offset:
        offset = 0  # a new file: rotated or truncated
    records: list[BounceRecord] = []
    with open_regular(path, follow=True) as handle:
        handle.seek(offset)
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a line still being written: read it next time
            offset += len(raw)
            line = raw[:_MAX_LINE].decode("utf-8", "replace")
            record = parse_log_line(line, source=f"{path}@{offset}")
            if record is not None:
                records.append(record)
    return records, f"{stat.st_ino}:{offset}"


def _changed_file(path: Path, position: str) -> tuple[list[BounceRecord], str]:
    """An mbox or a single message: read again whenever it changed (fingerprints dedupe)."""
    stat = path.stat()
    now = f"{stat.st_mtime_ns}:{stat.st_size}"
    if now == position:
        return [], now
    return list(read_file(path, follow=True)), now
