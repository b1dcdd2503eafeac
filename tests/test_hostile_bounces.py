"""Floods dressed as bounces are read up to the caps, and say so; none of them can make the
parser raise (the generators are bench/hostile.py's, which measures the time and memory)."""

from __future__ import annotations

import importlib.util
import logging
import random
from pathlib import Path

import pytest

from blmonitor.bounces import extract

_spec = importlib.util.spec_from_file_location(
    "hostile", Path(__file__).resolve().parent.parent / "bench" / "hostile.py"
)
assert _spec is not None and _spec.loader is not None
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
def test_every_kind_of_flood_parses_without_raising(kind: str) -> None:
    make, sizes = hostile.KINDS[kind]
    rng = random.Random(12)
    for size in sizes[:2]:  # the small ones: the big ones are the benchmark's
        extract.extract_records(make(size, rng), source=kind)


def test_a_dsn_with_100000_recipients_is_read_up_to_the_cap(caplog) -> None:
    data = hostile.dsn(100_000, random.Random(1))
    with caplog.at_level(logging.WARNING):
        records = extract.parse_message(data, source="flood.eml")
    assert len(records) == extract.MAX_RECIPIENTS
    assert records[0].recipient == "u0@example.org"
    assert any("flood.eml: more than" in r.getMessage() for r in caplog.records)


def test_a_mime_bomb_is_cut_at_the_part_cap_and_a_huge_header_does_not_hide_the_body() -> None:
    assert extract._bounded(hostile.mime_bomb(50_000, random.Random(1)), "x").count(b"\n--") == (
        extract.MAX_PARTS
    )
    data = hostile._one_recipient("550 5.7.1 blocked using zen.spamhaus.org")
    padded = data.replace(
        b"Subject:", b"X-Junk: " + b"a" * (extract.MAX_HEADER * 2) + b"\nSubject:"
    )
    [record] = extract.parse_message(padded, source="padded.eml")
    assert record.recipient == "u@example.org" and "zen.spamhaus.org" in record.diagnostic
