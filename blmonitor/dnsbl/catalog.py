"""The zone catalog: lists/*.toml (data, not code) parsed into Zone objects, and zone selection.

Pure: `parse_catalog(text)` never touches the disk; `load_catalog(path)` and
`embedded_catalog()` only read a file. Every mistake in a catalog names the file and the zone.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from blmonitor.errors import CatalogError, UsageError
from blmonitor.models import (
    Code,
    ErrorCode,
    ErrorKind,
    Severity,
    TargetKind,
    Zone,
    ZoneKind,
    ZoneStatus,
)

# RFC 5782 §5: every DNSxL lists these test points and never lists the negative ones.
RFC5782_LISTED = {
    TargetKind.IPV4: "127.0.0.2",
    TargetKind.IPV6: "::ffff:7f00:2",
    TargetKind.DOMAIN: "test",
}
RFC5782_UNLISTED = {
    TargetKind.IPV4: "127.0.0.1",
    TargetKind.IPV6: "::ffff:7f00:1",
    TargetKind.DOMAIN: "invalid",
}

_ZONE_KEYS = {
    "id", "name", "operator", "takes", "kind", "default", "status", "status_date",
    "status_source", "lookup_url", "delist_url", "fair_use", "access", "bitmask", "strict",
    "codes", "errors", "test_listed", "test_unlisted", "max_inflight", "dqs",
}  # fmt: skip
_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}$")
DQS_SUFFIX = "dq.spamhaus.net"
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")  # where every answer code lies


@dataclass(frozen=True, slots=True)
class Catalog:
    zones: tuple[Zone, ...]
    source: str

    def find(self, key: str) -> Zone | None:
        key = key.strip().lower().rstrip(".")
        for zone in self.zones:
            if key in (zone.id, zone.name):
                return zone
        return None

    @property
    def defaults(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.default)


def read_list_data(name: str) -> tuple[str, str]:
    """A data file of lists/ (its text and where it came from): shipped inside the package,
    or beside it in a source checkout."""
    try:
        return resources.files("blmonitor.lists").joinpath(name).read_text("utf-8"), f"lists/{name}"
    except (ModuleNotFoundError, FileNotFoundError):
        path = Path(__file__).resolve().parent.parent / "lists" / name
        try:
            return path.read_text("utf-8"), str(path)
        except OSError as exc:
            raise CatalogError(str(path), f"cannot read it: {exc.strerror}") from exc


def embedded_catalog() -> Catalog:
    """The catalog shipped inside the package (or beside it, in a source checkout)."""
    text, source = read_list_data("zones.toml")
    return parse_catalog(text, source=source)


def catalog_from(path: Path | None) -> Catalog:
    """The catalog at `path`, or the embedded one."""
    return load_catalog(path) if path is not None else embedded_catalog()


def load_catalog(path: Path) -> Catalog:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise CatalogError(str(path), f"cannot read the catalog: {exc.strerror}") from exc
    return parse_catalog(text, source=str(path))


def parse_catalog(text: str, *, source: str) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(source, f"not valid TOML: {exc}") from exc
    raw = data.get("zone")
    if not isinstance(raw, list) or not raw:
        raise CatalogError(source, "no [[zone]] tables found")
    zones = [_parse_zone(entry, source, i) for i, entry in enumerate(raw, 1)]
    seen: set[str] = set()
    for zone in zones:
        for key in (zone.id, zone.name):
            if key in seen:
                raise CatalogError(source, f"zone {zone.id}: {key!r} appears twice")
            seen.add(key)
    return Catalog(tuple(zones), source)


def _parse_zone(entry: Any, source: str, index: int) -> Zone:
    if not isinstance(entry, dict):
        raise CatalogError(source, f"zone #{index} is not a table")
    zid = entry.get("id", f"#{index}")

    def fail(message: str) -> CatalogError:
        return CatalogError(source, f"zone {zid}: {message}")

    unknown = set(entry) - _ZONE_KEYS
    if unknown:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("id", "name", "takes"):
        if key not in entry:
            raise fail(f"missing key {key!r}")
    name = str(entry["name"]).lower().rstrip(".")
    if not _NAME_RE.match(name):
        raise fail(f"{name!r} is not a DNS zone name")
    try:
        takes = frozenset(TargetKind(t) for t in entry["takes"])
        kind = ZoneKind(entry.get("kind", "block"))
        status = ZoneStatus(entry.get("status", "unknown"))
        bitmask = bool(entry.get("bitmask", False))
        codes = tuple(_parse_code(c, bitmask) for c in entry.get("codes", ()))
        errors = tuple(_parse_error(e, bitmask) for e in entry.get("errors", ()))
        test_listed = _parse_points(entry.get("test_listed", {}), takes)
        test_unlisted = _parse_points(entry.get("test_unlisted", {}), takes)
    except (ValueError, TypeError, KeyError) as exc:
        raise fail(str(exc)) from exc
    if not takes:
        raise fail("'takes' is empty (use ipv4, ipv6 and/or domain)")
    max_inflight = entry.get("max_inflight", 8)
    if not isinstance(max_inflight, int) or max_inflight < 1:
        raise fail("'max_inflight' must be a positive integer")
    return Zone(
        id=str(zid),
        name=name,
        takes=takes,
        kind=kind,
        operator=str(entry.get("operator", "")),
        default=bool(entry.get("default", False)),
        status=status,
        status_date=str(entry.get("status_date", "")),
        status_source=str(entry.get("status_source", "")),
        lookup_url=str(entry.get("lookup_url", "")),
        delist_url=str(entry.get("delist_url", "")),
        fair_use=str(entry.get("fair_use", "")),
        access=str(entry.get("access", "free")),
        bitmask=bitmask,
        strict=bool(entry.get("strict", False)),
        codes=codes,
        errors=errors,
        test_listed=test_listed,
        test_unlisted=test_unlisted,
        max_inflight=max_inflight,
        dqs=str(entry.get("dqs", "")),
    )


def _value_or_bit(raw: Mapping[str, Any], bitmask: bool) -> tuple[str | None, int | None]:
    if "bit" in raw:
        bit = raw["bit"]
        if not bitmask or not isinstance(bit, int) or bit < 1 or bit > 128 or bit & (bit - 1):
            raise ValueError(f"bit {bit!r} needs bitmask = true and a power of two up to 128")
        return None, bit
    value = str(raw["code"])
    if ipaddress.IPv4Address(value) not in _LOOPBACK:
        raise ValueError(f"code {value} is outside 127.0.0.0/8")
    return value, None


def _parse_code(raw: Mapping[str, Any], bitmask: bool) -> Code:
    value, bit = _value_or_bit(raw, bitmask)
    return Code(
        meaning=str(raw["meaning"]),
        severity=Severity.parse(str(raw["severity"])),
        value=value,
        bit=bit,
        delist_url=raw.get("delist_url"),
    )


def _parse_error(raw: Mapping[str, Any], bitmask: bool) -> ErrorCode:
    value, bit = _value_or_bit(raw, bitmask)
    return ErrorCode(
        kind=ErrorKind(raw.get("kind", "other")),
        meaning=str(raw["meaning"]),
        value=value,
        bit=bit,
    )


def _parse_points(
    raw: Mapping[str, Any], takes: frozenset[TargetKind]
) -> tuple[tuple[TargetKind, str], ...]:
    points = []
    for key, value in raw.items():
        kind = TargetKind(key)
        if kind not in takes:
            raise ValueError(f"test point for {kind} but the zone does not take {kind}")
        points.append((kind, str(value)))
    return tuple(points)


def generic_zone(spec: str) -> Zone:
    """A zone not in the catalog, with plain RFC 5782 semantics: `NAME[:ipv4,ipv6,domain]`."""
    name, _, kinds = spec.strip().lower().partition(":")
    name = name.rstrip(".")
    if not _NAME_RE.match(name):
        raise UsageError(f"--zone {spec!r}: not a DNS zone name (e.g. bl.example.org[:ipv4,ipv6])")
    try:
        takes = frozenset(TargetKind(k.strip()) for k in kinds.split(",")) if kinds else None
    except ValueError:
        raise UsageError(f"--zone {spec!r}: kinds are ipv4, ipv6 and domain") from None
    return Zone(
        id=name,
        name=name,
        takes=takes or frozenset({TargetKind.IPV4}),
        generic=True,
        max_inflight=8,
    )


def select_zones(
    catalog: Catalog, specs: Sequence[str], *, dqs_key: str = ""
) -> tuple[list[Zone], list[str]]:
    """Resolve zone names (catalog ids, zone names, "default", or new names) to Zones.

    Returns the zones and warnings (a zone the catalog knows as dead, a generic zone).
    """
    warnings: list[str] = []
    chosen: list[Zone] = []
    for spec in specs or ["default"]:
        if spec.strip().lower() == "default":
            chosen.extend(catalog.defaults)
            continue
        zone = catalog.find(spec.partition(":")[0])
        if zone is None:
            zone = generic_zone(spec)
            warnings.append(
                f"{zone.name} is not in the catalog: using plain RFC 5782 semantics "
                f"(any 127.0.0.2-255 answer is a listing) for {', '.join(sorted(zone.takes))}"
            )
        chosen.append(zone)
    unique = list({z.name: z for z in chosen}.values())
    for zone in unique:
        if zone.status in (ZoneStatus.DEAD, ZoneStatus.LISTS_EVERYTHING):
            warnings.append(
                f"{zone.name} is known as {zone.status} since {zone.status_date or '?'} "
                f"({zone.status_source or 'catalog'}): remove it from your zones"
            )
    if dqs_key:
        unique = [with_dqs(z, dqs_key) for z in unique]
    return unique, warnings


_DQS_KEY_RE = re.compile(r"^[a-z0-9]{20,40}$")


def read_dqs_key(path: Path | None) -> str:
    """The Spamhaus DQS key from its file ("" without one); a secret: never printed."""
    if path is None:
        return ""
    try:
        return path.read_text("utf-8").strip()
    except OSError as exc:
        raise UsageError(f"cannot read the DQS key file {path}: {exc.strerror}") from exc


def with_dqs(zone: Zone, key: str) -> Zone:
    """Point a Spamhaus zone at its DQS twin `<key>.<dqs>.dq.spamhaus.net`."""
    if not zone.dqs:
        return zone
    key = key.strip().lower()
    if not _DQS_KEY_RE.match(key):
        raise UsageError("the DQS key is not 20-40 letters and digits: check the key file")
    return replace(zone, query_zone=f"{key}.{zone.dqs}.{DQS_SUFFIX}")


def listed_point(zone: Zone, kind: TargetKind) -> str:
    return dict(zone.test_listed).get(kind, RFC5782_LISTED[kind])


def unlisted_point(zone: Zone, kind: TargetKind) -> str:
    return dict(zone.test_unlisted).get(kind, RFC5782_UNLISTED[kind])
