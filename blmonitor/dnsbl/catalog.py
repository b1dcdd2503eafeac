"""The zone catalog: lists/*.toml (data, not code) parsed into Zone objects, a file of one's own
laid over the embedded catalog, and zone selection ("default", "all", "alive", names).

Pure: `parse_catalog(text)` and `overlay` never touch the disk; `load_catalog(path)` and
`embedded_catalog()` only read a file. The loader enforces every rule of lists/README.md: each
mistake is one CatalogError line naming the file, the zone and the rule.
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
from urllib.parse import urlsplit

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
from blmonitor.userfiles import UnreadableFile, read_text

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
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_POINT_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)
_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")  # what --zone finds (it lower-cases its key)
_DQS_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_KINDS = [k.value for k in TargetKind]
_ACCESS = ["free", "registration", "key"]
SCHEMA_VERSION = 1  # [catalog] version
DQS_SUFFIX = "dq.spamhaus.net"
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")  # where every answer code lies
# The words --zone and [monitor] zones take for a set of zones; no zone may have them as id.
SELECTORS = ("default", "all", "alive")
_GONE = (ZoneStatus.DEAD, ZoneStatus.LISTS_EVERYTHING)  # broken for good: never in a set


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

    def named(self, name: str) -> Zone | None:
        """The zone a rejection names: by id or name, and a Spamhaus DQS twin
        (`<key>.zen.dq.spamhaus.net`, the receiver's key in it) as the public zone it mirrors.
        (Not for `[monitor] zones`: there a DQS name is queried as written.)"""
        name = name.strip().lower().rstrip(".")
        labels = name.removesuffix(f".{DQS_SUFFIX}").split(".")
        if name.endswith(f".{DQS_SUFFIX}") and len(labels) <= 2:  # [<key>.]<dataset>
            return next((z for z in self.zones if z.dqs and z.dqs == labels[-1]), None)
        return self.find(name)

    @property
    def defaults(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.default)


def read_list_data(name: str) -> tuple[str, str]:
    """A data file of lists/ (its text and where it came from): beside the package in a source
    checkout (so that a checkout reads its own lists even when an editable install maps
    `blmonitor.lists` to another tree), else shipped inside the package."""
    root = Path(__file__).resolve().parent.parent.parent
    path = root / "lists" / name
    if (root / "pyproject.toml").is_file() and path.is_file():
        try:
            return path.read_text("utf-8"), f"lists/{name}"
        except OSError as exc:
            raise CatalogError(str(path), f"cannot read it: {exc.strerror}") from exc
    try:
        return resources.files("blmonitor.lists").joinpath(name).read_text("utf-8"), f"lists/{name}"
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise CatalogError(f"lists/{name}", "cannot read it: not shipped with the package") from exc


def parse_list_toml(text: str, *, source: str, keys: set[str]) -> dict[str, Any]:
    """A data file of lists/ as TOML, with no top-level key but `keys` (one line on error).
    A shipped file comes parsed already when it is unchanged (`_parsed`)."""
    from blmonitor.dnsbl._parsed import derived

    data = derived(text, source)
    if data is None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(source, f"not valid TOML: {exc}") from exc
    unknown = set(data) - keys
    if unknown:
        raise CatalogError(source, f"unknown top-level key(s) {', '.join(sorted(unknown))}")
    return data


def embedded_catalog() -> Catalog:
    """The catalog shipped inside the package (or beside it, in a source checkout)."""
    text, source = read_list_data("zones.toml")
    return parse_catalog(text, source=source)


def catalog_from(path: Path | None) -> Catalog:
    """The embedded catalog, with the zones of `path` (`--lists`, `[monitor] lists`) laid over
    it."""
    embedded = embedded_catalog()
    return embedded if path is None else overlay(embedded, load_catalog(path))


def overlay(base: Catalog, own: Catalog) -> Catalog:
    """`base` with the zones of `own` laid over it (lists/README.md, "Your own catalog").

    A zone of `own` takes the place of every zone of `base` that has its id or name (so ids and
    names stay unique); the other zones of `own` come after, in file order. When `own` marks
    any zone default, its default zones are the whole default set, as they were when a file
    replaced the catalog: a copy of zones.toml, or a lab of its own, never asks the embedded
    default zones. Otherwise the embedded default set stays, less a zone `own` redefines
    without `default = true`.
    """
    mine = {key: zone for zone in own.zones for key in (zone.id, zone.name)}
    own_defaults = any(zone.default for zone in own.zones)
    zones: list[Zone] = []
    placed: set[str] = set()
    for zone in base.zones:
        new = mine.get(zone.id) or mine.get(zone.name)
        if new is None:
            zones.append(replace(zone, default=False) if own_defaults and zone.default else zone)
        elif new.id not in placed:
            zones.append(new)
            placed.add(new.id)
    zones.extend(zone for zone in own.zones if zone.id not in placed)
    return Catalog(tuple(zones), f"{base.source} + {own.source}")


def load_catalog(path: Path) -> Catalog:
    try:
        text = read_text(path)
    except (OSError, UnreadableFile) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise CatalogError(str(path), f"cannot read the catalog: {why}") from None
    return parse_catalog(text, source=str(path))


def parse_catalog(text: str, *, source: str) -> Catalog:
    """Parse a catalog, enforcing every rule lists/README.md gives for it.

    A broken rule is one CatalogError line naming `source` and the zone, so a `--lists` file
    with a mistake never loads (and never runs as if it were right).
    """
    data = parse_list_toml(text, source=source, keys={"catalog", "zone"})
    _check_header(data.get("catalog", {}), source)
    raw = data.get("zone")
    if not isinstance(raw, list) or not raw:
        raise CatalogError(source, "no [[zone]] tables found")
    zones = [_parse_zone(entry, source, i) for i, entry in enumerate(raw, 1)]
    owners: dict[str, str] = {}
    for zone in zones:
        # A zone may use its name as its id; no other zone may reuse either of them.
        for key in dict.fromkeys((zone.id, zone.name)):
            if key in owners:
                earlier = f"is already the id or name of an earlier zone, {owners[key]}"
                raise CatalogError(source, f"zone {zone.id}: {key!r} {earlier}")
            owners[key] = zone.id
    return Catalog(tuple(zones), source)


def _check_header(header: Any, source: str) -> None:
    if not isinstance(header, dict):
        raise CatalogError(source, "[catalog] must be a table")
    unknown = set(header) - {"version", "updated"}
    if unknown:
        raise CatalogError(source, f"[catalog]: unknown key(s) {', '.join(sorted(unknown))}")
    version = header.get("version", SCHEMA_VERSION)
    if type(version) is not int or version != SCHEMA_VERSION:
        raise CatalogError(
            source,
            f"[catalog] version {version!r} is not supported: this blmonitor reads version "
            f"{SCHEMA_VERSION}",
        )
    if not isinstance(header.get("updated", ""), str):
        raise CatalogError(source, '[catalog] updated must be a quoted date, e.g. "2026-11-30"')


class _Broken(Exception):
    """One rule a [[zone]] table breaks; _parse_zone adds the file and the zone to it."""


def _parse_zone(entry: Any, source: str, index: int) -> Zone:
    if not isinstance(entry, dict):
        raise CatalogError(source, f"zone #{index} is not a table")
    raw_id = entry.get("id")
    label = raw_id if isinstance(raw_id, str) and _ID_RE.fullmatch(raw_id) else f"#{index}"
    try:
        return _zone(entry)
    except _Broken as exc:
        raise CatalogError(source, f"zone {label}: {exc}") from None


def _zone(entry: dict[str, Any]) -> Zone:
    unknown = set(entry) - _ZONE_KEYS
    if unknown:
        raise _Broken(f"unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("id", "name", "takes"):
        if key not in entry:
            raise _Broken(f"missing key {key!r}")
    zid = _text(entry, "id")
    if not _ID_RE.fullmatch(zid) or zid in SELECTORS:
        raise _Broken(
            f"id {zid!r} cannot be given to --zone: use lower-case letters, digits, '.', '-' "
            "and '_' (and not 'default', 'all' or 'alive')"
        )
    name = _text(entry, "name").lower().rstrip(".")
    if not _NAME_RE.fullmatch(name):
        raise _Broken(f"{name!r} is not a DNS zone name")
    takes = _takes(entry["takes"])
    kind = ZoneKind(_one_of(entry, "kind", [k.value for k in ZoneKind], ZoneKind.BLOCK))
    status = ZoneStatus(_one_of(entry, "status", [s.value for s in ZoneStatus], ZoneStatus.UNKNOWN))
    default = _flag(entry, "default")
    if default and status is not ZoneStatus.ALIVE:
        raise _Broken(f"a default zone must be alive, not {status}: remove default = true")
    if default and kind is ZoneKind.ALLOW:
        raise _Broken("an allow list is never default: remove default = true")
    status_date = _text(entry, "status_date")
    status_source = _text(entry, "status_source")
    if status in (ZoneStatus.DEAD, ZoneStatus.LISTS_EVERYTHING):
        for key, value, what in (
            ("status_date", status_date, "when"),
            ("status_source", status_source, "where it is told"),
        ):
            if not value.strip():
                raise _Broken(f"status {status} needs a {key} ({what})")
    max_inflight = entry.get("max_inflight", 8)
    if type(max_inflight) is not int or max_inflight < 1:
        raise _Broken("'max_inflight' must be a positive integer")
    dqs = _text(entry, "dqs")
    if dqs and not _DQS_RE.fullmatch(dqs):
        raise _Broken(f"dqs {dqs!r} is not a DQS dataset name (one DNS label, e.g. zen)")
    bitmask = _flag(entry, "bitmask")
    codes = tuple(
        _parse_code(raw, bitmask, f"codes entry #{i}") for i, raw in _tables(entry, "codes")
    )
    errors = tuple(
        _parse_error(raw, bitmask, f"errors entry #{i}") for i, raw in _tables(entry, "errors")
    )
    _check_answers_unique(codes, errors)
    return Zone(
        id=zid,
        name=name,
        takes=takes,
        kind=kind,
        operator=_text(entry, "operator"),
        default=default,
        status=status,
        status_date=status_date,
        status_source=status_source,
        lookup_url=_url(entry, "lookup_url"),
        delist_url=_url(entry, "delist_url"),
        fair_use=_line(entry, "fair_use", ""),
        access=_one_of(entry, "access", _ACCESS, "free"),
        bitmask=bitmask,
        strict=_flag(entry, "strict"),
        codes=codes,
        errors=errors,
        test_listed=_parse_points(entry, "test_listed", takes),
        test_unlisted=_parse_points(entry, "test_unlisted", takes),
        max_inflight=max_inflight,
        dqs=dqs,
    )


def _text(raw: Mapping[str, Any], key: str, where: str = "") -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise _Broken(f"{where}{key} must be a quoted string, not {value!r}")
    return value


def _line(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(raw, key, where)
    if "\n" in value or "\r" in value:
        raise _Broken(f"{where}{key} must be one line")
    return value


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise _Broken(f"{key} must be true or false, not {value!r}")
    return value


def _one_of(
    raw: Mapping[str, Any], key: str, allowed: Sequence[str], default: str, where: str = ""
) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise _Broken(f"{where}{key} {value!r} is not one of {', '.join(allowed)}")
    return value


def _takes(raw: Any) -> frozenset[TargetKind]:
    if not isinstance(raw, list) or not raw:
        raise _Broken("'takes' must be a non-empty list of ipv4, ipv6 and/or domain")
    return frozenset(_kind(item, "takes") for item in raw)


def _kind(value: Any, key: str) -> TargetKind:
    if isinstance(value, str) and value in _KINDS:
        return TargetKind(value)
    raise _Broken(f"{key}: {value!r} is not one of {', '.join(_KINDS)}")


def _url(raw: Mapping[str, Any], key: str, where: str = "") -> str:
    value = _text(raw, key, where)
    plain = value.replace("{target}", "x")
    try:
        parts = urlsplit(plain)
    except ValueError:  # e.g. an unclosed [ in the host
        parts = None
    if value and (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(c.isspace() or c in "{}" for c in plain)
    ):
        raise _Broken(f"{where}{key} {value!r} is not an http(s) URL (braces only in {{target}})")
    return value


def _tables(entry: Mapping[str, Any], key: str) -> list[tuple[int, dict[str, Any]]]:
    raw = entry.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise _Broken(f'{key} must be a list of tables, e.g. [ {{ code = "127.0.0.2", … }} ]')
    return list(enumerate(raw, 1))


def _answer(
    raw: Mapping[str, Any], bitmask: bool, where: str
) -> tuple[str, str | None, int | None]:
    """The value or bit an entry of codes/errors names, and how messages call the entry."""
    if ("code" in raw) == ("bit" in raw):
        raise _Broken(f"{where} needs exactly one of code and bit")
    group = where.partition(" ")[0]
    if "bit" in raw:
        bit = raw["bit"]
        if type(bit) is not int or not 1 <= bit <= 128 or bit & (bit - 1):
            raise _Broken(f"{where}: bit {bit!r} is not a power of two from 1 to 128")
        if not bitmask:
            raise _Broken(f"{group} entry bit {bit}: a bit needs bitmask = true")
        return f"{group} entry bit {bit}", None, bit
    value = raw["code"]
    if not isinstance(value, str):
        raise _Broken(f'{where}: code {value!r} must be quoted, e.g. "127.0.0.2"')
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise _Broken(f"{where}: code {value!r} is not an IPv4 address") from None
    if address not in _LOOPBACK:
        raise _Broken(f"{group} entry {value}: code {value} is outside 127.0.0.0/8")
    if bitmask:
        raise _Broken(f"{group} entry {value}: a bitmask zone gives its answers as bit = N")
    return f"{group} entry {value}", value, None


def _meaning(raw: Mapping[str, Any], label: str) -> str:
    if "meaning" not in raw:
        raise _Broken(f"{label}: missing key 'meaning'")
    meaning = _line(raw, "meaning", f"{label}: ")
    if not meaning.strip():
        raise _Broken(f"{label}: meaning is empty")
    return meaning


def _parse_code(raw: Mapping[str, Any], bitmask: bool, where: str) -> Code:
    label, value, bit = _answer(raw, bitmask, where)
    unknown = set(raw) - {"code", "bit", "severity", "meaning", "delist_url"}
    if unknown:
        raise _Broken(f"{label}: unknown key(s) {', '.join(sorted(unknown))}")
    if "severity" not in raw:
        raise _Broken(f"{label}: missing key 'severity'")
    try:
        severity = Severity.parse(_text(raw, "severity", f"{label}: "))
    except ValueError:
        raise _Broken(
            f"{label}: severity {raw['severity']!r} is not one of info, warning, critical"
        ) from None
    return Code(
        meaning=_meaning(raw, label),
        severity=severity,
        value=value,
        bit=bit,
        delist_url=_url(raw, "delist_url", f"{label}: ") or None,
    )


def _parse_error(raw: Mapping[str, Any], bitmask: bool, where: str) -> ErrorCode:
    label, value, bit = _answer(raw, bitmask, where)
    unknown = set(raw) - {"code", "bit", "kind", "meaning"}
    if unknown:
        raise _Broken(f"{label}: unknown key(s) {', '.join(sorted(unknown))}")
    kind = _one_of(raw, "kind", [k.value for k in ErrorKind], ErrorKind.OTHER, f"{label}: ")
    return ErrorCode(kind=ErrorKind(kind), meaning=_meaning(raw, label), value=value, bit=bit)


def _check_answers_unique(codes: Sequence[Code], errors: Sequence[ErrorCode]) -> None:
    """One answer has one meaning: never twice in a list, never both a listing and an error."""
    seen: dict[tuple[str | None, int | None], str] = {}
    for group, entries in (("codes", codes), ("errors", errors)):
        for entry in entries:
            key = (entry.value, entry.bit)
            what = entry.value or f"bit {entry.bit}"
            if seen.get(key) == group:
                raise _Broken(f"{what} appears twice in {group}")
            if key in seen:
                raise _Broken(f"{what} is both a code and an error")
            seen[key] = group


def _parse_points(
    entry: Mapping[str, Any], key: str, takes: frozenset[TargetKind]
) -> tuple[tuple[TargetKind, str], ...]:
    raw = entry.get(key, {})
    if not isinstance(raw, dict):
        raise _Broken(f'{key} must be a table, e.g. {{ ipv4 = "127.0.0.2" }}')
    points = []
    for kind_key, value in raw.items():
        kind = _kind(kind_key, key)
        if kind not in takes:
            raise _Broken(f"{key}: the zone does not take {kind} (see takes)")
        if not isinstance(value, str) or not _is_target(kind, value):
            raise _Broken(f"{key}: {value!r} is not a valid {kind} target")
        points.append((kind, value))
    return tuple(points)


def _is_target(kind: TargetKind, text: str) -> bool:
    """A test point the query name can be built from (RFC 5782 §5 domains have one label)."""
    if kind is TargetKind.DOMAIN:
        return bool(_POINT_RE.fullmatch(text))
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == (4 if kind is TargetKind.IPV4 else 6)


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


def selected(catalog: Catalog, selector: str) -> tuple[Zone, ...]:
    """The zones a selector names: `default` the default set; `all` every zone not known as
    gone (dead or lists-everything: alive and unknown ones, allow lists too); `alive` every
    zone whose status is alive."""
    if selector == "default":
        return catalog.defaults
    if selector == "all":
        return tuple(z for z in catalog.zones if z.status not in _GONE)
    return tuple(z for z in catalog.zones if z.status is ZoneStatus.ALIVE)


def select_zones(
    catalog: Catalog, specs: Sequence[str], *, dqs_key: str = ""
) -> tuple[list[Zone], list[str]]:
    """Resolve zone names (catalog ids, zone names, a selector of SELECTORS, or new names) to
    Zones.

    Returns the zones and warnings: a zone the catalog knows as gone, and a zone it does not
    know named bare (`NAME:ipv4` declares its semantics, and then there is nothing to say).
    """
    warnings: list[str] = []
    chosen: list[Zone] = []
    for spec in specs or ["default"]:
        if spec.strip().lower() in SELECTORS:
            chosen.extend(selected(catalog, spec.strip().lower()))
            continue
        name, _, declared = spec.partition(":")
        zone = catalog.find(name)
        if zone is None:
            zone = generic_zone(spec)
            if not declared.strip():
                kinds = ",".join(sorted(zone.takes))
                warnings.append(
                    f"{zone.name} is not in the catalog: using plain RFC 5782 semantics "
                    f"(any 127.0.0.2-255 answer is a listing) for {kinds}; name it "
                    f"{zone.name}:{kinds} to say so and silence this warning"
                )
        chosen.append(zone)
    unique = list({z.name: z for z in chosen}.values())
    for zone in unique:
        if zone.status in _GONE:
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
        return read_text(path, limit=4096).strip()
    except (OSError, UnreadableFile) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UsageError(f"cannot read the DQS key file {path}: {why}") from None


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
