"""Reading what is new in watched places: logs from an offset across rotation, Maildirs by
change, missing paths."""

from __future__ import annotations

import logging
from pathlib import Path

from blmonitor.bounces import watch

LINE = (
    "Nov  1 12:00:0{n} mx postfix/smtp[42]: Q{n}: to=<u{n}@example.com>, relay=mx.example.com"
    "[198.51.100.25]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.7.1, status=bounced (host "
    "mx.example.com[198.51.100.25] said: 554 5.7.1 Client host [203.0.113.5] blocked using "
    "zen.spamhaus.org (in reply to RCPT TO command))\n"
)
DATA = Path(__file__).parent / "data" / "bounces"


def test_log_offset_partial_line_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(LINE.format(n=1) + LINE.format(n=2)[:40])  # the second still being written
    records, positions = watch.collect([log], {})
    assert [r.recipient for r in records] == ["u1@example.com"]
    with log.open("a") as rest:
        rest.write(LINE.format(n=2)[40:])
    records, positions = watch.collect([log], positions)
    assert [r.recipient for r in records] == ["u2@example.com"]
    records, positions = watch.collect([log], positions)
    assert records == []
    log.rename(tmp_path / "mail.log.1")  # rotated: a new file under the old name
    log.write_text(LINE.format(n=3))
    records, _ = watch.collect([log], positions)
    assert [r.recipient for r in records] == ["u3@example.com"]


def test_maildir_by_change_and_tmp_ignored(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    sample = DATA / "bsd" / "lhost-exim-02.eml"
    (maildir / "tmp" / "partial").write_bytes(sample.read_bytes()[:100])
    records, positions = watch.collect([maildir], {})
    assert records == []
    (maildir / "new" / "1").write_bytes(sample.read_bytes())
    records, positions = watch.collect([maildir], positions)
    assert records and all(r.source.endswith("new/1") for r in records)
    assert watch.collect([maildir], positions)[0] == []


def test_missing_path_is_a_warning_not_a_crash(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="blmonitor"):
        records, positions = watch.collect([tmp_path / "nope"], {})
    assert (records, positions) == ([], {})
    assert "does not exist: check [bounces] watch" in caplog.text
