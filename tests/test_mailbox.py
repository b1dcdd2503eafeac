"""Mailboxes are hostile input: FIFOs, links to devices, huge files and old mtimes cost only
themselves, and nothing blocks (issue 12). Everything here is made in a temporary directory."""

from __future__ import annotations

import io
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.bounces import extract, mailbox, watch

DATA = Path(__file__).parent / "data" / "bounces"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sisimai-set-of-emails"
SAMPLE = DATA / "bsd" / "lhost-postfix-80.eml"  # a Postfix bounce naming a blocklist


def finishes(call: Callable[[], Any], seconds: float = 10.0) -> Any:
    """The call's result, failing the test (instead of hanging it) when it blocks."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "blocked: a FIFO or a device was read"
    return out[0]


def maildir(tmp_path: Path) -> Path:
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    return box


def test_a_fifo_and_a_link_to_a_device_are_skipped_and_the_rest_is_read(tmp_path, caplog) -> None:
    box = maildir(tmp_path)
    os.mkfifo(box / "new" / "1.fifo")
    (box / "new" / "2.zero").symlink_to("/dev/zero")
    (box / "new" / "3.link").symlink_to(SAMPLE)  # a link inside a watched tree: not followed
    shutil.copy(SAMPLE, box / "new" / "4.eml")
    records, positions = finishes(lambda: watch.collect([box], {}))
    assert {r.source for r in records} == {str(box / "new" / "4.eml")}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3
    # logged once: the next run does not try them again
    caplog.clear()
    assert finishes(lambda: watch.collect([box], positions))[0] == []
    assert not [r for r in caplog.records if "skipped" in r.getMessage()]


def test_bounces_scan_of_a_fifo_or_a_tree_holding_one_does_not_hang(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = finishes(lambda: CliRunner().invoke(cli.main, ["bounces", "scan", str(fifo)]))
    assert got.exit_code == 0 and "0 bounce record(s)" in got.output
    shutil.copy(SAMPLE, tmp_path / "a.eml")
    got = finishes(lambda: CliRunner().invoke(cli.main, ["bounces", "scan", str(tmp_path)]))
    assert got.exit_code in (0, 1) and "Traceback" not in got.output
    assert "0 bounce record(s)" not in got.output


def test_a_huge_file_is_read_up_to_the_cap(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(mailbox, "MAX_MESSAGE", 64 * 1024)
    huge = tmp_path / "huge.eml"
    with huge.open("wb") as handle:
        handle.write(SAMPLE.read_bytes())
        handle.truncate(2 * 1024**3)  # sparse: 2 GB of zeros after a real bounce
    read: list[int] = []
    real = extract.parse_message

    def spy(data: bytes, *, source: str) -> Any:
        read.append(len(data))
        return real(data, source=source)

    monkeypatch.setattr(mailbox, "parse_message", spy)
    finishes(lambda: list(mailbox.read_path(huge)))
    assert read == [64 * 1024]


def test_a_big_mbox_is_split_as_it_is_read_with_the_same_messages(tmp_path, monkeypatch) -> None:
    boxes = [p for p in sorted(DATA.rglob("*")) if p.is_file() and mailbox.is_mbox(p.read_bytes())]
    assert boxes
    data = b"".join(p.read_bytes().rstrip(b"\n") + b"\n\n" for p in boxes)
    path = tmp_path / "big.mbox"
    path.write_bytes(data)
    whole = list(mailbox.read_path(path))
    monkeypatch.setattr(mailbox, "STREAM_ABOVE", 1024)  # this one is "big" now
    streamed = list(mailbox.read_path(path))
    assert streamed == whole and len({r.source for r in whole}) >= 5


@pytest.mark.parametrize("block", [1, 7, 4096, 1 << 20])
def test_streaming_split_is_the_plain_split(block: int) -> None:
    """The oracle: `parse_mbox` on the whole file (test data, and the shared corpus if here)."""
    roots = [DATA, *([CORPUS] if CORPUS.is_dir() else [])]
    files = [p for r in roots for p in sorted(r.rglob("*")) if p.is_file()]
    boxes = [p.read_bytes() for p in files if mailbox.is_mbox(p.read_bytes())]
    assert boxes
    for data in boxes:
        assert list(mailbox.stream_mbox(io.BytesIO(data), block=block)) == list(
            mailbox.parse_mbox(data)
        )


def test_a_message_moved_in_with_its_old_mtime_is_read(tmp_path) -> None:
    box = maildir(tmp_path)
    shutil.copy(SAMPLE, box / "new" / "1.eml")
    first, positions = watch.collect([box], {})
    assert len({r.source for r in first}) == 1
    outside = tmp_path / "2.eml"
    shutil.copy(SAMPLE, outside)
    os.utime(outside, (1_000_000_000, 1_000_000_000))  # 2001: older than anything read
    outside.rename(box / "cur" / "2.eml")  # as mv, rsync or a delivery agent leave it
    second, _ = watch.collect([box], positions)
    assert {r.source for r in second} == {str(box / "cur" / "2.eml")}
