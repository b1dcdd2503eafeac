"""The shipped lists' TOML parsed once (blmonitor/dnsbl/_parsed.py): tomllib is the oracle."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from blmonitor.dnsbl import _parsed
from blmonitor.dnsbl.catalog import parse_list_toml, read_list_data

LISTS = Path(__file__).resolve().parent.parent / "lists"


@pytest.mark.parametrize("name", _parsed.SHIPPED)
def test_each_parsed_file_is_what_tomllib_reads_from_the_file_as_it_is(name):
    text = (LISTS / name).read_text("utf-8")
    table = json.loads((LISTS / f"{name}.json").read_text("utf-8"))
    assert table["digest"] == _parsed.digest(text), (
        f"lists/{name} changed: run python3 -m blmonitor.dnsbl._parsed"
    )
    assert table["data"] == tomllib.loads(text)
    assert _parsed.derived(text, f"lists/{name}") == tomllib.loads(text)


def test_an_edited_file_or_another_source_is_parsed_again():
    text, source = read_list_data("zones.toml")
    edited = text + "\n# a comment added since\n"
    assert _parsed.derived(edited, source) is None
    assert parse_list_toml(edited, source=source, keys={"catalog", "zone"}) == tomllib.loads(text)
    assert _parsed.derived(text, "/etc/blmonitor/zones.toml") is None  # a file of one's own
    assert _parsed.derived(text, "lists/wordscore.json") is None  # not a shipped TOML file


def test_a_broken_parsed_file_is_ignored(monkeypatch):
    text, source = read_list_data("names.toml")

    def broken(name):
        if name.endswith(".toml.json"):
            return "{not json", f"lists/{name}"
        return read_list_data(name)

    monkeypatch.setattr("blmonitor.dnsbl.catalog.read_list_data", broken)
    assert _parsed.derived(text, source) is None


def test_write_all_writes_what_the_tests_check(tmp_path):
    for name in _parsed.SHIPPED:
        (tmp_path / name).write_text((LISTS / name).read_text("utf-8"), "utf-8")
    _parsed.write_all(tmp_path)
    for name in _parsed.SHIPPED:
        assert (tmp_path / f"{name}.json").read_text("utf-8") == (LISTS / f"{name}.json").read_text(
            "utf-8"
        )
