"""Read what is new in the watched places since the last run: Maildirs and directories of
messages (by modification time), mbox files (when they change) and MTA logs (from the byte
offset where the last run stopped, starting over when the log was rotated).

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

from blmonitor.bounces.extract import parse_message
from blmonitor.bounces.logs import parse_log_line
from blmonitor.bounces.mailbox import read_path
from blmonitor.bounces.models import BounceRecord

log = logging.getLogger("blmonitor")


def looks_like_log(path: Path) -> bool:
    """An MTA log rather than a mail file: its first line is not a header or mbox "From "."""
    try:
        with path.open("rb") as handle:
            head = handle.readline(4096)
    except OSError:
        return False
    return bool(head.strip()) and not re.match(rb"^(From |[A-Za-z0-9-]+:)", head)


def read_log(path: Path) -> Iterator[BounceRecord]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
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
    """Messages modified after the last run's newest one (Maildir new/ and cur/, or a tree)."""
    since = int(position) if position.isdigit() else -1
    newest = since
    records: list[BounceRecord] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "tmp"]  # Maildir tmp/ holds mail being written
        for name in files:
            file = Path(root, name)
            try:
                stamp = file.stat().st_mtime_ns
                if stamp <= since:
                    continue
                data = file.read_bytes()
            except OSError as exc:
                log.warning("bounces: cannot read %s: %s", file, exc.strerror or exc)
                continue
            newest = max(newest, stamp)
            records.extend(parse_message(data, source=str(file)))
    return records, str(max(newest, 0))


def _new_log_lines(path: Path, position: str) -> tuple[list[BounceRecord], str]:
    inode, _, offset_text = position.partition(":")
    stat = path.stat()
    offset = int(offset_text) if offset_text.isdigit() else 0
    if inode != str(stat.st_ino) or stat.st_size < offset:
        offset = 0  # a new file: rotated or truncated
    records: list[BounceRecord] = []
    with path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            if not raw.endswith(b"\n"):
                break  # a line still being written: read it next time
            offset += len(raw)
            record = parse_log_line(raw.decode("utf-8", "replace"), source=f"{path}@{offset}")
            if record is not None:
                records.append(record)
    return records, f"{stat.st_ino}:{offset}"


def _changed_file(path: Path, position: str) -> tuple[list[BounceRecord], str]:
    """An mbox or a single message: read again whenever it changed (fingerprints dedupe)."""
    stat = path.stat()
    now = f"{stat.st_mtime_ns}:{stat.st_size}"
    if now == position:
        return [], now
    return list(read_path(path)), now
