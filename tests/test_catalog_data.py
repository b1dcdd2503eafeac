"""The zone catalog's rules (lists/README.md), and the shipped lists/zones.toml as data.

The loader enforces every rule the README gives: a table of broken snippets checks each one
names the file, the zone and the rule. What is left here about the shipped file are facts no
loader can know (which zones are default, which codes Spamhaus documents, ...).
"""

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.dnsbl.catalog import (
    Catalog,
    catalog_from,
    embedded_catalog,
    listed_point,
    overlay,
    parse_catalog,
    select_zones,
)
from blmonitor.errors import CatalogError
from blmonitor.models import ErrorKind, Severity, TargetKind, Zone, ZoneKind, ZoneStatus

CATALOG_PATH = Path(__file__).parent.parent / "lists" / "zones.toml"
GONE = (ZoneStatus.DEAD, ZoneStatus.LISTS_EVERYTHING)


def _load() -> Catalog:
    return parse_catalog(CATALOG_PATH.read_text("utf-8"), source="lists/zones.toml")


CATALOG = _load()
ZONES = CATALOG.zones


def _zone(name: str) -> Zone:
    zone = CATALOG.find(name)
    assert zone is not None, f"{name} is missing from the catalog"
    return zone


def _ids(zones: tuple[Zone, ...] | list[Zone]) -> list[str]:
    return [z.id for z in zones]


# --- the loader enforces the README's rules ------------------------------------------------

GOOD = '[[zone]]\nid = "good"\nname = "bl.good.example"\ntakes = ["ipv4"]\n'
CODE = '{ code = "127.0.0.2", severity = "critical", meaning = "spam" }'
BIT = '{ bit = 2, severity = "critical", meaning = "black" }'
ERROR = '{ code = "127.255.255.254", kind = "refused", meaning = "public resolver" }'
GONE_DATED = 'status_date = "2024"\nstatus_source = "operator page"'


def bad(*lines: str, header: str = 'id = "bad"\nname = "bl.bad.example"\ntakes = ["ipv4"]') -> str:
    """A valid first zone, then zone `bad` with `lines` added to it."""
    return f"{GOOD}\n[[zone]]\n{header}\n" + "\n".join(lines) + "\n"


BROKEN = [
    # the file
    ("[[zone]\n", "not valid TOML: Expected ']]' at the end of an array declaration (at line 1, column 7)"),
    ('[catalog]\nversion = 1\n', "no [[zone]] tables found"),
    ("zone = [1]\n", "zone #1 is not a table"),
    (f"{GOOD}colours = 3\n", "zone good: unknown key(s) colours"),
    (f"title = 'x'\n{GOOD}", "unknown top-level key(s) title"),
    (f"[catalog]\nversion = 2\n{GOOD}",
     "[catalog] version 2 is not supported: this blmonitor reads version 1"),
    (f"[catalog]\nversion = '1'\n{GOOD}",
     "[catalog] version '1' is not supported: this blmonitor reads version 1"),
    (f"[catalog]\nreviewed = 'x'\n{GOOD}", "[catalog]: unknown key(s) reviewed"),
    (f"catalog = 'v1'\n{GOOD}", "[catalog] must be a table"),
    (f"[catalog]\nupdated = 2026-11-30\n{GOOD}",
     '[catalog] updated must be a quoted date, e.g. "2026-11-30"'),
    # id and name: required, usable, unique across the file
    (bad(header='name = "bl.bad.example"\ntakes = ["ipv4"]'), "zone #2: missing key 'id'"),
    (bad(header='id = "bad"\ntakes = ["ipv4"]'), "zone bad: missing key 'name'"),
    (bad(header='id = "bad"\nname = "bl.bad.example"'), "zone bad: missing key 'takes'"),
    (bad(header='id = "Bad"\nname = "bl.bad.example"\ntakes = ["ipv4"]'),
     "zone #2: id 'Bad' cannot be given to --zone: use lower-case letters, digits, '.', '-' and "
     "'_' (and not 'default', 'all' or 'alive')"),
    (bad(header='id = "default"\nname = "bl.bad.example"\ntakes = ["ipv4"]'),
     "zone default: id 'default' cannot be given to --zone: use lower-case letters, digits, '.', '-' "
     "and '_' (and not 'default', 'all' or 'alive')"),
    (bad(header='id = "alive"\nname = "bl.bad.example"\ntakes = ["ipv4"]'),
     "zone alive: id 'alive' cannot be given to --zone: use lower-case letters, digits, '.', '-' "
     "and '_' (and not 'default', 'all' or 'alive')"),
    (bad(header='id = "bad\\n"\nname = "bl.bad.example"\ntakes = ["ipv4"]'),
     "zone #2: id 'bad\\n' cannot be given to --zone: use lower-case letters, digits, '.', '-' "
     "and '_' (and not 'default', 'all' or 'alive')"),
    (bad(header='id = "bad"\nname = "bl.bad.example\\n"\ntakes = ["ipv4"]'),
     "zone bad: 'bl.bad.example\\n' is not a DNS zone name"),
    (bad(header='id = 7\nname = "bl.bad.example"\ntakes = ["ipv4"]'),
     "zone #2: id must be a quoted string, not 7"),
    (bad(header='id = "bad"\nname = "not a zone"\ntakes = ["ipv4"]'),
     "zone bad: 'not a zone' is not a DNS zone name"),
    (bad(header='id = "good"\nname = "bl.bad.example"\ntakes = ["ipv4"]'),
     "zone good: 'good' is already the id or name of an earlier zone, good"),
    (bad(header='id = "bad"\nname = "bl.good.example"\ntakes = ["ipv4"]'),
     "zone bad: 'bl.good.example' is already the id or name of an earlier zone, good"),
    (bad(header='id = "bl.good.example"\nname = "bl.bad.example"\ntakes = ["ipv4"]'),
     "zone bl.good.example: 'bl.good.example' is already the id or name of an earlier zone, good"),
    # takes, kind, status, access, flags and numbers: only the documented values
    (bad(header='id = "bad"\nname = "bl.bad.example"\ntakes = []'),
     "zone bad: 'takes' must be a non-empty list of ipv4, ipv6 and/or domain"),
    (bad(header='id = "bad"\nname = "bl.bad.example"\ntakes = "ipv4"'),
     "zone bad: 'takes' must be a non-empty list of ipv4, ipv6 and/or domain"),
    (bad(header='id = "bad"\nname = "bl.bad.example"\ntakes = ["ipv5"]'),
     "zone bad: takes: 'ipv5' is not one of ipv4, ipv6, domain"),
    (bad('kind = "evil"'), "zone bad: kind 'evil' is not one of block, reputation, policy, allow"),
    (bad('status = "gone"'),
     "zone bad: status 'gone' is not one of alive, dead, lists-everything, unknown"),
    (bad('access = "paid"'), "zone bad: access 'paid' is not one of free, registration, key"),
    (bad("default = 'yes'"), "zone bad: default must be true or false, not 'yes'"),
    (bad("bitmask = 1"), "zone bad: bitmask must be true or false, not 1"),
    (bad("strict = 'no'"), "zone bad: strict must be true or false, not 'no'"),
    (bad("operator = 3"), "zone bad: operator must be a quoted string, not 3"),
    (bad("status_date = 2024-06-05"),
     "zone bad: status_date must be a quoted string, not datetime.date(2024, 6, 5)"),
    (bad('fair_use = """free\nfor all"""'), "zone bad: fair_use must be one line"),
    (bad("max_inflight = 0"), "zone bad: 'max_inflight' must be a positive integer"),
    (bad("max_inflight = true"), "zone bad: 'max_inflight' must be a positive integer"),
    (bad('dqs = "zen.dq"'), "zone bad: dqs 'zen.dq' is not a DQS dataset name (one DNS label, e.g. zen)"),
    # the default set: alive, never an allow list
    (bad("default = true"), "zone bad: a default zone must be alive, not unknown: remove default = true"),
    (bad("default = true", 'status = "dead"', GONE_DATED),
     "zone bad: a default zone must be alive, not dead: remove default = true"),
    (bad("default = true", 'status = "lists-everything"', GONE_DATED),
     "zone bad: a default zone must be alive, not lists-everything: remove default = true"),
    (bad("default = true", 'status = "alive"', 'kind = "allow"'),
     "zone bad: an allow list is never default: remove default = true"),
    # a gone zone is dated and sourced
    (bad('status = "dead"', 'status_source = "operator page"'),
     "zone bad: status dead needs a status_date (when)"),
    (bad('status = "lists-everything"', 'status_date = "2021"', 'status_source = " "'),
     "zone bad: status lists-everything needs a status_source (where it is told)"),
    # URLs: http(s), no spaces, no braces but {target}
    (bad('lookup_url = "ftp://bl.bad.example/{target}"'),
     "zone bad: lookup_url 'ftp://bl.bad.example/{target}' is not an http(s) URL (braces only in "
     "{target})"),
    (bad('lookup_url = "https://bl.bad.example/?q={ip}"'),
     "zone bad: lookup_url 'https://bl.bad.example/?q={ip}' is not an http(s) URL (braces only "
     "in {target})"),
    (bad('delist_url = "https://bl.bad.example/remove me"'),
     "zone bad: delist_url 'https://bl.bad.example/remove me' is not an http(s) URL (braces only "
     "in {target})"),
    (bad('delist_url = "bl.bad.example/remove"'),
     "zone bad: delist_url 'bl.bad.example/remove' is not an http(s) URL (braces only in "
     "{target})"),
    (bad('delist_url = "https://[bl.bad.example/"'),
     "zone bad: delist_url 'https://[bl.bad.example/' is not an http(s) URL (braces only in "
     "{target})"),
    (bad('codes = [{ code = "127.0.0.2", severity = "info", meaning = "policy", delist_url = "https:///x" }]'),
     "zone bad: codes entry 127.0.0.2: delist_url 'https:///x' is not an http(s) URL (braces "
     "only in {target})"),
    # codes and errors
    (bad('codes = ["127.0.0.2"]'),
     'zone bad: codes must be a list of tables, e.g. [ { code = "127.0.0.2", … } ]'),
    (bad("errors = { code = '127.0.0.1' }"),
     'zone bad: errors must be a list of tables, e.g. [ { code = "127.0.0.2", … } ]'),
    (bad(f'codes = [{CODE}, {{ severity = "info", meaning = "x" }}]'),
     "zone bad: codes entry #2 needs exactly one of code and bit"),
    (bad("bitmask = true", 'codes = [{ code = "127.0.0.2", bit = 2, severity = "info", meaning = "x" }]'),
     "zone bad: codes entry #1 needs exactly one of code and bit"),
    (bad('codes = [{ code = "127.0.0.x", severity = "info", meaning = "x" }]'),
     "zone bad: codes entry #1: code '127.0.0.x' is not an IPv4 address"),
    (bad('codes = [{ code = 2130706434, severity = "info", meaning = "x" }]'),
     'zone bad: codes entry #1: code 2130706434 must be quoted, e.g. "127.0.0.2"'),
    (bad('errors = [{ code = "10.0.0.1", meaning = "x" }]'),
     "zone bad: errors entry 10.0.0.1: code 10.0.0.1 is outside 127.0.0.0/8"),
    (bad(f"codes = [{BIT}]"), "zone bad: codes entry bit 2: a bit needs bitmask = true"),
    (bad("bitmask = true", 'codes = [{ bit = 3, severity = "info", meaning = "x" }]'),
     "zone bad: codes entry #1: bit 3 is not a power of two from 1 to 128"),
    (bad("bitmask = true", 'errors = [{ bit = 256, meaning = "x" }]'),
     "zone bad: errors entry #1: bit 256 is not a power of two from 1 to 128"),
    (bad("bitmask = true", f"codes = [{CODE}]"),
     "zone bad: codes entry 127.0.0.2: a bitmask zone gives its answers as bit = N"),
    (bad('codes = [{ code = "127.0.0.2", meaning = "x" }]'),
     "zone bad: codes entry 127.0.0.2: missing key 'severity'"),
    (bad('codes = [{ code = "127.0.0.2", severity = "high", meaning = "x" }]'),
     "zone bad: codes entry 127.0.0.2: severity 'high' is not one of info, warning, critical"),
    (bad('codes = [{ code = "127.0.0.2", severity = "info" }]'),
     "zone bad: codes entry 127.0.0.2: missing key 'meaning'"),
    (bad('codes = [{ code = "127.0.0.2", severity = "info", meaning = " " }]'),
     "zone bad: codes entry 127.0.0.2: meaning is empty"),
    (bad('errors = [{ code = "127.0.0.255", meaning = """two\nlines""" }]'),
     "zone bad: errors entry 127.0.0.255: meaning must be one line"),
    (bad('codes = [{ code = "127.0.0.2", severity = "info", meaning = "x", colour = "red" }]'),
     "zone bad: codes entry 127.0.0.2: unknown key(s) colour"),
    (bad('errors = [{ code = "127.0.0.255", meaning = "x", severity = "info" }]'),
     "zone bad: errors entry 127.0.0.255: unknown key(s) severity"),
    (bad('errors = [{ code = "127.0.0.255", kind = "blocked", meaning = "x" }]'),
     "zone bad: errors entry 127.0.0.255: kind 'blocked' is not one of refused, rate-limited, wrong-query, other"),
    (bad(f"codes = [{CODE}, {CODE}]"), "zone bad: 127.0.0.2 appears twice in codes"),
    (bad(f"errors = [{ERROR}, {ERROR}]"), "zone bad: 127.255.255.254 appears twice in errors"),
    (bad(f"codes = [{CODE}]", 'errors = [{ code = "127.0.0.2", meaning = "x" }]'),
     "zone bad: 127.0.0.2 is both a code and an error"),
    (bad("bitmask = true", f"codes = [{BIT}]", 'errors = [{ bit = 2, meaning = "x" }]'),
     "zone bad: bit 2 is both a code and an error"),
    # test points: a kind the zone takes, and a valid target of that kind
    (bad('test_listed = { ipv6 = "::ffff:7f00:2" }'),
     "zone bad: test_listed: the zone does not take ipv6 (see takes)"),
    (bad('test_listed = { ip = "127.0.0.2" }'),
     "zone bad: test_listed: 'ip' is not one of ipv4, ipv6, domain"),
    (bad('test_listed = { ipv4 = "::1" }'),
     "zone bad: test_listed: '::1' is not a valid ipv4 target"),
    (bad('test_unlisted = { ipv4 = "127.0.0.256" }'),
     "zone bad: test_unlisted: '127.0.0.256' is not a valid ipv4 target"),
    (bad('test_unlisted = { ipv4 = 2130706433 }'),
     "zone bad: test_unlisted: 2130706433 is not a valid ipv4 target"),
    (bad('test_listed = { ipv6 = "127.0.0.2" }',
         header='id = "bad"\nname = "bl.bad.example"\ntakes = ["ipv6"]'),
     "zone bad: test_listed: '127.0.0.2' is not a valid ipv6 target"),
    (bad('test_listed = { domain = "not a name" }',
         header='id = "bad"\nname = "dbl.bad.example"\ntakes = ["domain"]'),
     "zone bad: test_listed: 'not a name' is not a valid domain target"),
    (bad('test_listed = "127.0.0.2"'),
     'zone bad: test_listed must be a table, e.g. { ipv4 = "127.0.0.2" }'),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BROKEN, ids=[m[:70] for _, m in BROKEN])
def test_loader_rejects_a_broken_rule_naming_the_file_and_the_zone(text: str, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, source="my.toml")
    assert str(info.value) == f"my.toml: {message}"


def test_a_catalog_using_every_rule_rightly_loads() -> None:
    catalog = parse_catalog(
        '[catalog]\nversion = 1\nupdated = "2026-11-30"\n\n'
        + bad('status = "dead"', GONE_DATED, 'lookup_url = "https://bl.bad.example/?q={target}"',
              'access = "key"', "max_inflight = 2", 'dqs = "zen"', 'test_listed = { ipv4 = "127.0.0.99" }',
              f'codes = [{CODE[:-2]}, delist_url = "http://bl.bad.example/{{target}}" }}]',
              f"errors = [{ERROR}]")
        + '\n[[zone]]\nid = "uri.bits.example"\nname = "URI.bits.example."\nkind = "allow"\n'
        'takes = ["domain", "ipv6"]\nbitmask = true\nstrict = true\n'
        'test_listed = { domain = "test", ipv6 = "::FFFF:7F00:2" }\n'
        f'test_unlisted = {{ domain = "not-listed.example" }}\ncodes = [{BIT}]\n'
        'errors = [{ bit = 1, meaning = "blocked" }]\n',
        source="my.toml",
    )  # fmt: skip
    bad_zone, bits = catalog.zones[1:]
    assert (bad_zone.status, bad_zone.access, bad_zone.max_inflight) == (ZoneStatus.DEAD, "key", 2)
    assert bad_zone.codes[0].delist_url == "http://bl.bad.example/{target}"
    assert bad_zone.errors[0].kind is ErrorKind.REFUSED
    assert (bits.id, bits.name, bits.kind) == (
        "uri.bits.example",
        "uri.bits.example",
        ZoneKind.ALLOW,
    )
    assert listed_point(bits, TargetKind.IPV6) == "::FFFF:7F00:2"
    assert bits.errors[0].kind is ErrorKind.OTHER


def test_check_with_a_broken_catalog_exits_2_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "bad.toml"
    broken.write_text(bad('access = "paid"'))
    result = CliRunner().invoke(cli.main, ["check", "--lists", str(broken), "203.0.113.5"])
    assert result.exit_code == 2
    assert result.output == (
        f"blmonitor: error: {broken}: zone bad: access 'paid' is not one of free, registration, key\n"
    )


# --- --lists FILE is laid over the embedded catalog -------------------------------------------


def _catalog(*zones: str, source: str = "t") -> Catalog:
    """A catalog of zones given as `id name [default]`."""
    text = "".join(
        f'[[zone]]\nid = "{z.split()[0]}"\nname = "{z.split()[1]}"\ntakes = ["ipv4"]\n'
        + ('default = true\nstatus = "alive"\n' if z.endswith(" default") else "")
        for z in zones
    )
    return parse_catalog(text, source=source)


BASE = _catalog("a a.example default", "b b.example default", "c c.example", source="base")


@pytest.mark.parametrize(
    ("own", "zones", "defaults"),
    [
        # added after; the embedded default set stays
        (["d d.example"], "a b c d", "a b"),
        # replaced in place by id, or by name; one redefined without default = true leaves the set
        (["b b2.example", "c2 c.example"], "a b c2", "a"),
        # a zone with the id of one and the name of another takes the place of both
        (["a c.example default"], "a b", "a"),
        # a file that names a default zone gives the whole default set
        (["d d.example default"], "a b c d", "d"),
        (["b b.example default", "e e.example default"], "a b c e", "b e"),
    ],
)  # fmt: skip
def test_own_catalog_is_laid_over_the_embedded_one(own, zones, defaults) -> None:
    merged = overlay(BASE, _catalog(*own, source="mine.toml"))
    assert [z.id for z in merged.zones] == zones.split()
    assert [z.id for z in merged.defaults] == defaults.split()
    assert merged.source == "base + mine.toml"
    keys = [k for z in merged.zones for k in {z.id, z.name}]
    assert len(keys) == len(set(keys))  # ids and names stay unique across the overlay


def test_lists_file_adds_to_the_embedded_catalog_and_keeps_its_own_defaults() -> None:
    lab_path = Path(__file__).parent / "data" / "lab.toml"
    lab = parse_catalog(lab_path.read_text("utf-8"), source=str(lab_path))
    merged = catalog_from(lab_path)
    assert len(merged.zones) == len(ZONES) + len(lab.zones)
    zen = replace(_zone("zen.spamhaus.org"), default=False)  # out of the default set (below)
    assert merged.find("zen.spamhaus.org") == zen  # still there, for --zone zen
    assert merged.find("flip") == lab.find("flip")
    # the lab names default zones: they are the default set, never a real zone of the embedded set
    assert [z.name for z in merged.defaults] == [z.name for z in lab.defaults]
    assert catalog_from(None).zones == ZONES


def test_lists_file_without_a_default_zone_keeps_the_embedded_default_set(tmp_path) -> None:
    own = tmp_path / "mine.toml"
    own.write_text(GOOD)
    merged = catalog_from(own)
    assert merged.defaults == CATALOG.defaults
    assert merged.zones[-1].name == "bl.good.example"


# --- zone selection: "default", "all", "alive", names; its warnings ----------------------------


def test_all_is_every_zone_not_known_as_gone_and_alive_every_alive_one() -> None:
    everything, warnings = select_zones(CATALOG, ["all"])
    assert [z.id for z in everything] == [z.id for z in ZONES if z.status not in GONE]
    assert {z.status for z in everything} == {ZoneStatus.ALIVE, ZoneStatus.UNKNOWN}
    alive, _ = select_zones(CATALOG, ["Alive"])
    assert [z.id for z in alive] == [z.id for z in ZONES if z.status is ZoneStatus.ALIVE]
    assert warnings == []  # a gone zone is never selected, so never warned about
    both, _ = select_zones(CATALOG, ["default", "alive"])
    assert len(both) == len(alive)  # a zone named twice is asked once


@pytest.mark.parametrize(
    ("spec", "warned"),
    [
        ("bl.mine.example", True),  # bare: the semantics are a guess
        ("bl.mine.example:ipv4", False),  # declared
        ("bl.mine.example:ipv4,ipv6,domain", False),
        ("bl.mine.example:", True),
        ("spamcop", False),  # the catalog knows it
    ],
)
def test_an_unknown_zone_is_warned_about_only_when_named_bare(spec: str, warned: bool) -> None:
    _, warnings = select_zones(CATALOG, [spec])
    assert bool(warnings) is warned
    if warned:
        assert warnings == [
            "bl.mine.example is not in the catalog: using plain RFC 5782 semantics (any "
            "127.0.0.2-255 answer is a listing) for ipv4; name it bl.mine.example:ipv4 to say so "
            "and silence this warning"
        ]


# --- the shipped catalog: it loads, and its facts hold ---------------------------------------


def test_shipped_catalog_loads_with_many_zones() -> None:
    catalog = _load()
    assert catalog.source == "lists/zones.toml"
    assert len(catalog.zones) >= 60
    assert embedded_catalog().zones == catalog.zones  # the copy inside the package is this file


def test_default_set_is_small() -> None:
    assert 5 <= len(CATALOG.defaults) <= 12


def test_default_set_covers_every_target_kind() -> None:
    covered = set().union(*(z.takes for z in CATALOG.defaults))
    assert covered >= {TargetKind.IPV4, TargetKind.IPV6, TargetKind.DOMAIN}


@pytest.mark.parametrize(
    "name",
    [
        "zen.spamhaus.org",
        "dbl.spamhaus.org",
        "b.barracudacentral.org",
        "bl.spamcop.net",
        "bl.mailspike.net",
        "dnsbl-1.uceprotect.net",
        "multi.surbl.org",
        "multi.uribl.com",
    ],
)
def test_high_impact_zone_is_default(name: str) -> None:
    assert _zone(name).default


@pytest.mark.parametrize(
    "name",
    ["psbl.surriel.com", "dnsbl-3.uceprotect.net", "pbl.spamhaus.org", "list.dnswl.org"],
)
def test_conflicting_or_informational_zone_is_not_default(name: str) -> None:
    assert not _zone(name).default


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("dnsbl.sorbs.net", ZoneStatus.DEAD),
        ("spam.dnsbl.sorbs.net", ZoneStatus.DEAD),
        ("rhsbl.sorbs.net", ZoneStatus.DEAD),
        ("ix.dnsbl.manitu.net", ZoneStatus.DEAD),
        ("bl.spamcannibal.org", ZoneStatus.LISTS_EVERYTHING),
        ("dnsbl.cyberlogic.net", ZoneStatus.LISTS_EVERYTHING),
        ("dnsbl.njabl.org", ZoneStatus.DEAD),
        ("spamrbl.imp.ch", ZoneStatus.DEAD),
    ],
)
def test_known_gone_zone_is_present_and_not_default(name: str, status: ZoneStatus) -> None:
    zone = _zone(name)
    assert zone.status is status
    assert not zone.default


def test_spamcop_is_alive_and_its_2021_event_is_recorded() -> None:
    zone = _zone("bl.spamcop.net")
    assert zone.status is ZoneStatus.ALIVE
    assert "2021" in zone.status_source


def test_renamed_zone_points_at_its_new_name() -> None:
    assert "spamrbl.swinog.ch" in _zone("spamrbl.imp.ch").status_source


SPAMHAUS_ZONES = [z for z in ZONES if z.name.endswith(".spamhaus.org")]


def test_spamhaus_zones_are_there() -> None:
    names = {z.name for z in SPAMHAUS_ZONES}
    assert names >= {
        "zen.spamhaus.org",
        "dbl.spamhaus.org",
        "sbl.spamhaus.org",
        "xbl.spamhaus.org",
        "pbl.spamhaus.org",
    }


@pytest.mark.parametrize("zone", SPAMHAUS_ZONES, ids=_ids(SPAMHAUS_ZONES))
def test_spamhaus_zone_knows_the_public_resolver_refusal(zone: Zone) -> None:
    errors = {e.value: e.kind for e in zone.errors}
    assert errors.get("127.255.255.254") is ErrorKind.REFUSED
    assert errors.get("127.255.255.255") is ErrorKind.RATE_LIMITED


@pytest.mark.parametrize(
    ("name", "dqs"),
    [
        ("zen.spamhaus.org", "zen"),
        ("dbl.spamhaus.org", "dbl"),
        ("sbl.spamhaus.org", "sbl"),
        ("xbl.spamhaus.org", "xbl"),
        ("pbl.spamhaus.org", "pbl"),
    ],
)
def test_spamhaus_zone_has_its_dqs_twin(name: str, dqs: str) -> None:
    assert _zone(name).dqs == dqs


def test_only_spamhaus_zones_have_a_dqs_twin() -> None:
    assert {z.name for z in ZONES if z.dqs} <= {z.name for z in SPAMHAUS_ZONES}


@pytest.mark.parametrize("name", ["multi.surbl.org", "multi.uribl.com"])
def test_bitmask_zone_has_bit_one_as_an_error_not_a_code(name: str) -> None:
    zone = _zone(name)
    assert zone.bitmask
    assert TargetKind.DOMAIN in zone.takes
    assert 1 in {e.bit for e in zone.errors if e.kind is ErrorKind.REFUSED}
    assert 1 not in {c.bit for c in zone.codes}
    assert all(c.bit is not None and c.value is None for c in zone.codes)


def test_suomispam_test_point_answers_its_own_code() -> None:
    # Its RFC 5782 test point 2.0.0.127 answers 127.0.0.99 (wraps-team/wraps PR #115):
    # the point queried stays 127.0.0.2 and the .99 answer must be a known listing code.
    zone = _zone("bl.suomispam.net")
    assert listed_point(zone, TargetKind.IPV4) == "127.0.0.2"
    codes = {c.value: c.severity for c in zone.codes}
    assert codes.get("127.0.0.99") in (Severity.WARNING, Severity.CRITICAL)


def test_scientificspam_rhsbl_test_point_answers_127_0_1_2() -> None:
    zone = _zone("rhsbl.scientificspam.net")
    assert listed_point(zone, TargetKind.DOMAIN) == "test"
    assert "127.0.1.2" in {c.value for c in zone.codes}


@pytest.mark.parametrize(
    ("name", "code", "kind"),
    [
        ("dbl.spamhaus.org", "127.0.1.255", ErrorKind.WRONG_QUERY),
        ("list.dnswl.org", "127.0.0.255", ErrorKind.REFUSED),
        ("bl.score.senderscore.com", "127.255.255.255", ErrorKind.REFUSED),
    ],
)
def test_known_error_code_is_an_error(name: str, code: str, kind: ErrorKind) -> None:
    zone = _zone(name)
    assert {e.value: e.kind for e in zone.errors}.get(code) is kind
    assert code not in {c.value for c in zone.codes}


BLOCK_ZONES = [z for z in ZONES if z.kind is ZoneKind.BLOCK and z.status not in GONE]


@pytest.mark.parametrize("zone", BLOCK_ZONES, ids=_ids(BLOCK_ZONES))
def test_live_block_zone_has_a_code_that_matters(zone: Zone) -> None:
    assert any(c.severity >= Severity.WARNING for c in zone.codes)


ALLOW_ZONES = [z for z in ZONES if z.kind is ZoneKind.ALLOW]


def test_allow_lists_are_there() -> None:
    names = {z.name for z in ALLOW_ZONES}
    assert names >= {"list.dnswl.org", "swl.spamhaus.org", "wl.mailspike.net"}


@pytest.mark.parametrize("zone", ALLOW_ZONES, ids=_ids(ALLOW_ZONES))
def test_allow_list_answers_are_only_informational(zone: Zone) -> None:
    assert all(c.severity is Severity.INFO for c in zone.codes)


@pytest.mark.parametrize(
    ("name", "code", "severity"),
    [
        ("zen.spamhaus.org", "127.0.0.2", Severity.CRITICAL),
        ("zen.spamhaus.org", "127.0.0.10", Severity.INFO),
        ("pbl.spamhaus.org", "127.0.0.11", Severity.INFO),
        ("b.barracudacentral.org", "127.0.0.2", Severity.CRITICAL),
        ("bl.spamcop.net", "127.0.0.2", Severity.CRITICAL),
        ("bl.mailspike.net", "127.0.0.2", Severity.CRITICAL),
        ("rep.mailspike.net", "127.0.0.15", Severity.INFO),
        ("rep.mailspike.net", "127.0.0.20", Severity.INFO),
        ("dnsbl-3.uceprotect.net", "127.0.0.2", Severity.INFO),
        ("ips.backscatterer.org", "127.0.0.2", Severity.INFO),
        ("hostkarma.junkemailfilter.com", "127.0.0.1", Severity.INFO),
        ("hostkarma.junkemailfilter.com", "127.0.0.2", Severity.WARNING),
    ],
)
def test_code_severity(name: str, code: str, severity: Severity) -> None:
    assert {c.value: c.severity for c in _zone(name).codes}.get(code) is severity


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("dyna.spamrats.com", {"127.0.0.36"}),
        ("noptr.spamrats.com", {"127.0.0.37"}),
        ("spam.spamrats.com", {"127.0.0.38"}),
    ],
)
def test_spamrats_is_strict_with_its_exact_codes(name: str, codes: set[str]) -> None:
    zone = _zone(name)
    assert zone.strict
    assert {c.value for c in zone.codes} == codes


@pytest.mark.parametrize(
    ("name", "takes"),
    [
        ("zen.spamhaus.org", {TargetKind.IPV4, TargetKind.IPV6}),
        ("all.s5h.net", {TargetKind.IPV4, TargetKind.IPV6}),
        ("bip.virusfree.cz", {TargetKind.IPV4, TargetKind.IPV6}),
        ("bl.spameatingmonkey.net", {TargetKind.IPV4}),
        ("bl.ipv6.spameatingmonkey.net", {TargetKind.IPV6}),
        ("dbl.spamhaus.org", {TargetKind.DOMAIN}),
        ("multi.surbl.org", {TargetKind.DOMAIN}),
        ("rhsbl.sorbs.net", {TargetKind.DOMAIN}),
    ],
)
def test_zone_takes(name: str, takes: set[TargetKind]) -> None:
    assert set(_zone(name).takes) == takes


@pytest.mark.parametrize(
    ("name", "access"),
    [
        ("zen.spamhaus.org", "free"),
        ("b.barracudacentral.org", "registration"),
        ("bl.score.senderscore.com", "registration"),
    ],
)
def test_zone_access(name: str, access: str) -> None:
    assert _zone(name).access == access


@pytest.mark.parametrize("zone", ZONES, ids=_ids(ZONES))
def test_zone_names_its_operator(zone: Zone) -> None:
    # The loader checks the rest of what test_zone_metadata_is_well_formed checked: access,
    # URLs and one-line meanings (see BROKEN).
    assert zone.operator.strip()


LIVE_ZONES = [z for z in ZONES if z.status not in GONE]


@pytest.mark.parametrize("zone", LIVE_ZONES, ids=_ids(LIVE_ZONES))
def test_live_zone_says_how_it_may_be_used(zone: Zone) -> None:
    assert zone.fair_use.strip()
    assert zone.status_source.strip()
