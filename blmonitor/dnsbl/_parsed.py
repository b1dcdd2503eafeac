"""The shipped lists' TOML, parsed once: `lists/<file>.toml.json` holds what `tomllib` reads
from `lists/<file>.toml`, with the length and CRC-32 of the text it was read from (zlib is loaded
already; hashlib's OpenSSL would add ~4 ms to every start — and this only has to tell an edited
file from the one the JSON was written from). Parsing TOML in pure Python is most of loading
the rules, the lexicon and the catalog (~30 ms); JSON is read in C.
A file edited since its JSON was written is simply parsed again (slower, never wrong); the
tests check every JSON against `tomllib` (the oracle) and say when one is stale.

Write them anew after editing a list file:  python3 -m blmonitor.dnsbl._parsed
"""

from __future__ import annotations

import json
import sys
import tomllib
import zlib
from pathlib import Path
from typing import Any

SHIPPED = ("zones.toml", "bounces.toml", "names.toml")


def digest(text: str) -> str:
    """Which text a JSON was written from: its length and CRC-32 ("31415:1a2b3c4d")."""
    raw = text.encode("utf-8")
    return f"{len(raw)}:{zlib.crc32(raw):08x}"


def derived(text: str, source: str) -> dict[str, Any] | None:
    """What `tomllib.loads(text)` gives, from the JSON written for `source` ("lists/<name>"),
    when that JSON was written from this very text; else None."""
    from blmonitor.dnsbl.catalog import read_list_data
    from blmonitor.errors import CatalogError

    name = source.removeprefix("lists/")
    if name == source or name not in SHIPPED:
        return None
    try:
        raw, _ = read_list_data(f"{name}.json")
        table = json.loads(raw)
    except (CatalogError, ValueError):
        return None
    if not isinstance(table, dict) or table.get("digest") != digest(text):
        return None
    data = table.get("data")
    return data if isinstance(data, dict) else None


def write_all(lists: Path) -> None:
    """Write `<file>.toml.json` beside each shipped list file."""
    for name in SHIPPED:
        text = (lists / name).read_text("utf-8")
        table = {"digest": digest(text), "data": tomllib.loads(text)}
        (lists / f"{name}.json").write_text(
            json.dumps(table, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8"
        )


if __name__ == "__main__":
    write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[2] / "lists")
