"""The shipped zone catalog (lists/zones.toml) as data: it parses and its facts hold together.

These tests read the catalog file itself, not a fixture, so a bad edit to the data fails here.
"""

from pathlib import Path

import pytest

from blmonitor.dnsbl.catalog import Catalog, listed_point, parse_catalog
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


def test_catalog_parses_with_many_zones() -> None:
    catalog = _load()
    assert catalog.source == "lists/zones.toml"
    assert len(catalog.zones) >= 60


def test_default_set_is_small() -> None:
    assert 5 <= len(CATALOG.defaults) <= 12


def test_default_set_covers_every_target_kind() -> None:
    covered = set().union(*(z.takes for z in CATALOG.defaults))
    assert covered >= {TargetKind.IPV4, TargetKind.IPV6, TargetKind.DOMAIN}


@pytest.mark.parametrize("zone", CATALOG.defaults, ids=_ids(CATALOG.defaults))
def test_default_zone_is_alive_and_not_an_allow_list(zone: Zone) -> None:
    assert zone.status is ZoneStatus.ALIVE
    assert zone.kind is not ZoneKind.ALLOW


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


GONE_ZONES = [z for z in ZONES if z.status in GONE]


@pytest.mark.parametrize("zone", GONE_ZONES, ids=_ids(GONE_ZONES))
def test_gone_zone_is_dated_sourced_and_never_default(zone: Zone) -> None:
    assert zone.status_date.strip()
    assert zone.status_source.strip()
    assert not zone.default


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


@pytest.mark.parametrize("zone", ZONES, ids=_ids(ZONES))
def test_codes_do_not_overlap_errors(zone: Zone) -> None:
    codes = {(c.value, c.bit) for c in zone.codes}
    errors = {(e.value, e.bit) for e in zone.errors}
    assert not codes & errors
    assert len(codes) == len(zone.codes), "a code appears twice"
    assert len(errors) == len(zone.errors), "an error appears twice"


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
def test_zone_metadata_is_well_formed(zone: Zone) -> None:
    assert zone.operator.strip()
    assert zone.access in ("free", "registration", "key")
    for url in (zone.lookup_url, zone.delist_url, *(c.delist_url or "" for c in zone.codes)):
        if url:
            assert url.startswith(("https://", "http://")), url
            assert " " not in url
            assert url.replace("{target}", "").count("{") == 0, url
    for meaning in [c.meaning for c in zone.codes] + [e.meaning for e in zone.errors]:
        assert meaning.strip()
        assert "\n" not in meaning


LIVE_ZONES = [z for z in ZONES if z.status not in GONE]


@pytest.mark.parametrize("zone", LIVE_ZONES, ids=_ids(LIVE_ZONES))
def test_live_zone_says_how_it_may_be_used(zone: Zone) -> None:
    assert zone.fair_use.strip()
    assert zone.status_source.strip()
