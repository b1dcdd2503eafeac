"""Attribution of rejection texts: the labelled table, the rules loader, and hostile input.

(How long hostile input takes is measured by bench/bounces.py, not asserted here.)
"""

import random
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from blmonitor.bounces.attribution import attribute, attribute_record
from blmonitor.bounces.models import BounceRecord, BounceVerdict
from blmonitor.bounces.rules import embedded_rules, load_rules
from blmonitor.dnsbl.catalog import embedded_catalog, read_list_data
from blmonitor.errors import CatalogError

ROWS = tomllib.loads((Path(__file__).parent / "data" / "rejections.toml").read_text("utf-8"))["row"]
RULES = embedded_rules()
CATALOG = embedded_catalog()
FIELDS = ("verdict", "list", "zone", "provider", "kind", "listed_ip", "listed_domain", "temporary")


def test_table_is_big_and_sourced():
    assert len(ROWS) >= 40
    assert len({row["id"] for row in ROWS}) == len(ROWS)
    assert all(row.get("source") for row in ROWS)
    verdicts = {row["verdict"] for row in ROWS}
    assert verdicts == {"listed", "reputation", "receiver-error", "other"}


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_rejection_table(row):
    got = attribute(
        row["text"],
        remote_mta=row.get("remote_mta", ""),
        status=row.get("status", ""),
        reply_code=row.get("reply_code", ""),
        rules=RULES,
        catalog=CATALOG,
    )
    expected = {f: row.get(f, False if f == "temporary" else "") for f in FIELDS}
    actual = {f: getattr(got, f) for f in FIELDS}
    actual["kind"] = str(got.kind) if got.kind is not None and got.verdict != "other" else ""
    actual["verdict"] = str(got.verdict)
    assert actual == expected, got.reason
    assert got.reason
    if got.verdict is BounceVerdict.RECEIVER_ERROR:
        assert not got.listed_ip and not got.delist_url
    if got.verdict in (BounceVerdict.LISTED, BounceVerdict.REPUTATION):
        assert got.rule in RULES.by_id


def test_record_uses_status_and_never_the_remote_mx():
    record = BounceRecord(
        recipient="someone@yahoo.com",
        status="4.7.0",
        reply_code="421",
        remote_mta="mta7.am0.yahoodns.net [67.195.204.72]",
        diagnostic="[TSS04] Messages from 67.195.204.72 temporarily deferred - 4.16.55.1",
    )
    got = attribute_record(record, rules=RULES, catalog=CATALOG)
    assert got.verdict is BounceVerdict.REPUTATION
    assert got.temporary
    assert got.listed_ip == ""


def test_status_alone_decodes_microsoft_range():
    got = attribute("Access denied", status="5.7.606", rules=RULES, catalog=CATALOG)
    assert (got.verdict, got.list) == (BounceVerdict.LISTED, "microsoft-5.7.6xx")
    assert got.delist_url == "https://sender.office.com/"


def test_delist_url_from_the_catalog_with_the_listed_ip():
    got = attribute(
        "554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using bl.spamcop.net",
        rules=RULES,
        catalog=CATALOG,
    )
    assert got.delist_url == "https://www.spamcop.net/w3m?action=checkblock&ip=192.0.2.9"
    assert "ask for delisting at" in got.reason


def test_every_rule_is_sourced_and_every_verdict_present():
    assert all(rule.source and rule.meaning for rule in RULES.rules)
    ranks = [rule.verdict for rule in RULES.rules]
    order = ["receiver-error", "listed", "reputation", "other"]
    assert [order.index(v) for v in ranks] == sorted(order.index(v) for v in ranks)


GOOD = """
[[rule]]
id = "x"
source = "s"
kind = "public-dnsbl"
verdict = "listed"
meaning = "m"
match = ['blocked using {ZONE}']
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not valid TOML"),
        ("[meta]\nversion = 1\n", "no [[rule]] tables"),
        (GOOD.replace('verdict = "listed"', 'verdict = "maybe"'), "rule x: verdict 'maybe'"),
        (GOOD.replace('kind = "public-dnsbl"', 'kind = "nope"'), "rule x: kind 'nope'"),
        (
            GOOD.replace("match = ['blocked using {ZONE}']", "match = ['(']"),
            "rule x: match: bad regular expression",
        ),
        (GOOD.replace('source = "s"\n', ""), "rule x: missing key 'source'"),
        (GOOD + 'colour = "red"\n', "rule x: unknown key(s) colour"),
        (GOOD + 'codes = ["1"]\n', "rule x: 'codes' or 'bits' need"),
        (GOOD + 'bits = { "11" = "a" }\n', "rule x: bits: '11'"),
        (GOOD + "temporary = 1\n", "rule x: 'temporary' must be"),
        (GOOD + GOOD, "rule x: the id appears twice"),
        (GOOD + "[slots]\nip = ['client']\n", "slots.ip: 'client' has no {IP}"),
        (GOOD + "[slots]\nipv4 = ['{IP}']\n", "[slots]: unknown key(s) ipv4"),
        (
            GOOD + "[slots]\nip = 'client {IP}'\nzone = ['(']\n",
            "slots.zone: bad regular expression",
        ),
        ("[colour]\n" + GOOD, "unknown top-level key(s) colour"),
        ("[meta]\nversion = 2\n" + GOOD, "[meta]: version 2 is not 1"),
        ("[meta]\nowner = 'me'\n" + GOOD, "[meta]: unknown key(s) owner"),
        ("slots = 1\n" + GOOD, "[slots] is not a table"),
        ("rule = [1]\n", "rule #1 is not a table"),
        (GOOD.replace('id = "x"', 'id = "X Y"'), "rule X Y: the id must be lower-case"),
        (GOOD.replace('id = "x"', "id = 7"), "rule 7: the id must be lower-case"),
        (GOOD.replace('meaning = "m"', 'meaning = " "'), "rule x: 'meaning' is empty"),
        (GOOD.replace('source = "s"', "source = 1"), "rule x: 'source' must be a string"),
        (GOOD + "provider = true\n", "rule x: 'provider' must be a string"),
        (GOOD + 'zone = "not a zone"\n', "rule x: zone 'not a zone' is not a DNS name"),
        (GOOD + "zone_known = 1\n", "rule x: 'zone_known' must be true or false"),
        (GOOD + "zone_like = 3\n", "rule x: 'zone_like' must be a string"),
        (GOOD + "zone_like = '['\n", "rule x: zone_like: bad regular expression"),
        (GOOD + 'delist_url = "www.example.net"\n', "rule x: delist_url 'www.example.net' is not"),
        (GOOD + 'delist_url = "https://x.example/?ip={addr}"\n', "unknown placeholder {addr}"),
        (GOOD + 'delist_url = "ftp://x.example/"\n', "is not an http(s) or mailto URL"),
        (GOOD + "unless = ['(']\n", "rule x: unless: bad regular expression"),
        (GOOD + "remote_mta = [1]\n", "rule x: remote_mta: expected a list of strings"),
        (
            GOOD.replace("match = ['blocked using {ZONE}']", "match = []"),
            "rule x: 'match' is empty",
        ),
        (GOOD.replace("{ZONE}", "{ZONES}"), "rule x: match: unknown macro {ZONES}"),
        (
            GOOD.replace("{ZONE}", "{ZONE}.*listed"),
            "rule x: match: 'blocked using {ZONE}.*listed' is not linear",
        ),
        (GOOD.replace("{ZONE}", "(?:a+ )+"), "is not linear"),
        (
            GOOD.replace("{ZONE}']", "(?P<code>\\d+)']") + 'codes = ["9-1"]\n',
            "rule x: codes: '9-1' must be",
        ),
        (
            GOOD.replace("{ZONE}']", "(?P<code>\\d+)']") + 'codes = ["a b"]\n',
            "rule x: codes: 'a b' must be",
        ),
        (GOOD + 'bits = "1"\n', "rule x: 'bits' must be a table"),
    ],
)
def test_loader_errors_name_file_and_rule(text, message):
    with pytest.raises(CatalogError) as info:
        load_rules(text, source="my-rules.toml")
    assert str(info.value).startswith("my-rules.toml: ")
    assert message in str(info.value)


def test_the_shipped_rules_load():
    text, source = read_list_data("bounces.toml")
    rules = load_rules(text, source=source)  # every pattern compiled
    assert len(rules.rules) == len(rules.by_id) >= 60
    assert rules.ip_slots and rules.domain_slots and rules.zone_slots
    assert all(rule.needles for rule in rules.rules if rule.verdict != BounceVerdict.OTHER)
    # embedded_rules() compiles each pattern when first used: the same rules, and the group
    # names it read from each pattern's text are the compiled pattern's.
    # It also carries the lexicon of the open-world layers (lists/names.toml) and the
    # generic layer's word score (lists/wordscore.json).
    lazy = embedded_rules()
    assert lazy.lexicon is not None and rules.lexicon is None
    assert lazy.wordscore is not None and rules.wordscore is None
    assert replace(lazy, lexicon=None, wordscore=None) == rules
    patterns = [p for r in lazy.rules for p in (*r.patterns, *r.unless, *r.remote_mta)]
    patterns += [r.zone_like for r in lazy.rules if r.zone_like is not None]
    patterns += [*lazy.ip_slots, *lazy.domain_slots, *lazy.zone_slots]
    assert all(p.groups == set(p.compiled.groupindex) for p in patterns)


def test_loader_accepts_a_minimal_file():
    rules = load_rules(GOOD, source="mine.toml")
    got = attribute("blocked using bl.example.net", rules=rules, catalog=CATALOG)
    assert (got.verdict, got.list, got.zone) == (BounceVerdict.LISTED, "bl.example.net", "")


FRAGMENTS = [
    "blocked using ", "listed in ", "zen.spamhaus.org", "a.", "1.2.3.", "[", "]", "AUP#In-",
    "BL0", "OFR_", "POL-", "?ip=", "spamhaus ", "550-5.7.1 ", "client host [", "open ",
    "timeout ", "dnsbl ", "-", ".", " ", "a", "9", "é", "\n",
    # round 3's patterns: addresses in brackets, a header's From, later actions, lookup URLs
    "<a", "> black listed", "header from ", "may feed ", "http:// a_b", "/denyip.php", "/sbl.x",
    "&ip=", "_rbl", "NOT ", "links ", " is on our block list", "too many messages containing ",
]  # fmt: skip


def adversarial() -> Iterator[str]:
    """Texts made to make the patterns backtrack (bench/bounces.py times them too)."""
    rnd = random.Random(4)
    yield "x" * 100_000
    yield "a." * 50_000
    yield "1." * 50_000
    yield "blocked using " + "a" * 100_000
    yield "blocked using " + "a-" * 50_000
    yield "listed in " * 10_000
    yield "[1.2.3.4" * 12_000
    yield "550-5.7.1 " * 10_000
    yield "dnsbl " + " " * 100_000 + "timeout"
    for fragment in FRAGMENTS:
        yield fragment * (100_000 // len(fragment))
    for _ in range(40):
        yield "".join(rnd.choice(FRAGMENTS) for _ in range(rnd.randint(1, 4000)))
    for _ in range(20):
        yield "".join(chr(rnd.randint(0, 0x2FF)) for _ in range(rnd.randint(0, 5000)))


def test_no_input_raises():
    for text in adversarial():
        got = attribute(text, remote_mta=text[:300], status="", rules=RULES, catalog=CATALOG)
        assert got.verdict in BounceVerdict


# ─── the memo of the last attributions ───────────────────────────────────────────────────


def test_the_memo_serves_a_repeated_text_and_never_another_rules_answer() -> None:

    catalog = embedded_catalog()
    text = "554 5.7.1 Service unavailable; Client host [192.0.2.9] blocked using zen.spamhaus.org"
    first = attribute(text, rules=RULES, catalog=catalog)
    assert attribute(text, rules=RULES, catalog=catalog) is first  # served from the memo
    # other rules (a closed world that knows nothing of Spamhaus): their own answer
    closed = replace(RULES, rules=(), by_id={}, lexicon=None)
    assert attribute(text, rules=closed, catalog=catalog).verdict is BounceVerdict.OTHER
    assert first.verdict is BounceVerdict.LISTED


def test_the_memo_is_bounded() -> None:
    from blmonitor.bounces import attribution

    catalog = embedded_catalog()
    for i in range(attribution._MEMO_SIZE + 50):
        attribute(f"550 5.1.1 user{i} unknown", rules=RULES, catalog=catalog)
    assert len(attribution._MEMO) <= attribution._MEMO_SIZE
