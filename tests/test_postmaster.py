"""The Gmail Postmaster core: TrafficStats samples (tests/data/gmail) → records, listings,
errors in words, the days asked, the text and JSON of a poll."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from blmonitor.models import Verdict
from blmonitor.sources import postmaster
from blmonitor.sources.models import Rating, SourceListing, SourceResult

DATA = Path(__file__).parent / "data" / "gmail"
DAY = date(2026, 12, 5)
NOW = datetime(2026, 12, 6, 11, 0, tzinfo=UTC)
OURS = ("203.0.113.5", "203.0.113.8/29", "2001:db8::/64", "example.com")


def sample(name: str) -> object:
    return json.loads((DATA / f"{name}.json").read_text())


def read(name: str, domain: str = "example.com", targets=OURS) -> postmaster.DomainDay:
    return postmaster.parse_stats(sample(name), domain=domain, day=DAY, targets=targets)


@pytest.mark.parametrize(("name", "rating", "raw"), [
    ("good", Rating.GOOD, "HIGH"),
    ("listed", Rating.POOR, "LOW"),
    ("domain_in_rbl", Rating.BAD, "BAD"),
    ("quiet", Rating.UNKNOWN, "REPUTATION_CATEGORY_UNSPECIFIED"),
])  # fmt: skip
def test_the_domain_reputation(name, rating, raw) -> None:
    record = read(name).domain_record
    assert (record.source, record.subject, record.day) == ("gmail", "example.com", DAY)
    assert (record.rating, record.raw) == (rating, raw)


@pytest.mark.parametrize(("name", "expected"), [
    ("good", {"203.0.113.5": (Rating.GOOD, "HIGH"), "2001:db8::25": (Rating.FAIR, "MEDIUM")}),
    # 203.0.113.9 is in our /29, 192.0.2.77 and 198.51.100.3 are not ours
    ("listed", {"203.0.113.5": (Rating.POOR, "LOW"), "203.0.113.9": (Rating.BAD, "BAD")}),
    ("quiet", {}),
])  # fmt: skip
def test_our_addresses_among_the_sampled_ips(name, expected) -> None:
    found = {r.subject: (r.rating, r.raw) for r in read(name).ip_records}
    assert found == expected


def test_addresses_that_are_not_ours_are_not_reported() -> None:
    assert read("listed", targets=("192.0.2.200", "example.com")).ip_records == ()


def test_the_figures_as_the_source_spells_them() -> None:
    figures = dict(read("good").domain_record.figures)
    assert figures == {
        "userReportedSpamRatio": "0.0008", "userReportedSpamRatioLowerBound": "0.0005",
        "userReportedSpamRatioUpperBound": "0.0011", "spfSuccessRatio": "1",
        "dkimSuccessRatio": "0.998", "dmarcSuccessRatio": "0.997",
        "outboundEncryptionRatio": "1", "inboundEncryptionRatio": "0.999",
        "deliveryErrors.TEMPORARY_ERROR.RATE_LIMIT_EXCEEDED": "0.002",
    }  # fmt: skip
    assert dict(read("quiet").domain_record.figures) == {}


def test_ip_in_rbl_is_a_listing_of_the_domain() -> None:
    (listing,) = read("listed").listings  # DOMAIN_IN_RBL at 0.0 is none
    assert listing == SourceListing(
        target="example.com", list="gmail-ip-in-rbl", provider="Gmail",
        reason="Gmail refused 15.00% of example.com's mail on 2026-12-05: a sending IP is on a "
               "public blocklist (IP_IN_RBL)",
        detail="IP_IN_RBL on 2026-12-05: PERMANENT_ERROR 12.00%, TEMPORARY_ERROR 3.00%; "
               "`blmonitor check` names the lists; ask each of them to delist you",
    )  # fmt: skip
    figures = dict(read("listed").domain_record.figures)
    assert figures["deliveryErrors.PERMANENT_ERROR.BAD_PTR_RECORD"] == "0.01"


def test_domain_in_rbl_is_a_listing_of_the_domain() -> None:
    (listing,) = read("domain_in_rbl", "example.org").listings
    assert (listing.target, listing.list, listing.provider) == (
        "example.org",
        "gmail-domain-in-rbl",
        "Gmail",
    )
    assert "40.00%" in listing.reason and "DOMAIN_IN_RBL" in listing.reason
    assert read("good").listings == ()


@pytest.mark.parametrize(("data", "message"), [
    ([], "not a JSON object"),
    ({"domainReputation": 3}, "domainReputation is not a reputation category"),
    ({"spfSuccessRatio": "high"}, "spfSuccessRatio is not a number"),
    ({"spfSuccessRatio": True}, "spfSuccessRatio is not a number"),
    ({"ipReputations": {}}, "ipReputations is not a list"),
    ({"ipReputations": ["x"]}, "ipReputations item 1 is not an object"),
    ({"ipReputations": [{"reputation": "LOW", "sampleIps": "203.0.113.5"}]},
     "ipReputations item 1: sampleIps is not a list of IPs"),
    ({"deliveryErrors": [{"errorClass": "PERMANENT_ERROR", "errorType": "IP_IN_RBL",
                          "errorRatio": "0.1"}]}, "errorRatio is not a number"),
    ({"deliveryErrors": [{"errorType": "IP IN RBL"}]}, "has no errorClass/errorType"),
    ({"deliveryErrors": "none"}, "deliveryErrors is not a list"),
])  # fmt: skip
def test_a_malformed_answer_says_where(data, message) -> None:
    with pytest.raises(postmaster.MalformedStats, match=message):
        postmaster.parse_stats(data, domain="example.com", day=DAY, targets=OURS)


def test_an_unknown_category_is_unknown_not_an_error() -> None:
    record = postmaster.parse_stats({"domainReputation": "EXCELLENT"}, domain="example.com",
                                    day=DAY, targets=()).domain_record  # fmt: skip
    assert (record.rating, record.raw) == (Rating.UNKNOWN, "EXCELLENT")


@pytest.mark.parametrize(("now", "expected"), [
    (NOW, (date(2026, 12, 5), date(2026, 12, 4))),
    (datetime(2026, 12, 6, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # 22:30 UTC the 5th
     (date(2026, 12, 4), date(2026, 12, 3))),
    (datetime(2026, 3, 1, 8, 0), (date(2026, 2, 28), date(2026, 2, 27))),
])  # fmt: skip
def test_yesterday_then_the_day_before(now, expected) -> None:
    assert postmaster.days_to_ask(now) == expected
    assert postmaster.stats_path("example.com", expected[0]) == (
        f"v1/domains/example.com/trafficStats/{expected[0]:%Y%m%d}"
    )


def test_a_poll_merges_domains_and_keeps_the_worst_rating_of_an_ip() -> None:
    days = [read("good"), read("domain_in_rbl", "example.org")]
    result = postmaster.merge(days, fetched=NOW, unknown=["example.net"],
                              no_data=[("example.info", DAY)], targets=OURS)  # fmt: skip
    ratings = {r.subject: r.rating for r in result.reputation}
    assert ratings == {"example.com": Rating.GOOD, "example.org": Rating.BAD,
                       "example.info": Rating.UNKNOWN, "203.0.113.5": Rating.FAIR,
                       "2001:db8::25": Rating.FAIR}  # fmt: skip
    ip = next(r for r in result.reputation if r.subject == "203.0.113.5")
    assert dict(ip.figures) == {"domains": "example.com, example.org"} and ip.raw == "MEDIUM"
    assert [x.list for x in result.listings] == ["gmail-domain-in-rbl"]
    # not the quiet domain, not the unknown one, not a domain target: only what was read
    assert result.checked == ("example.com", "example.org", "203.0.113.5", "203.0.113.8/29",
                              "2001:db8::/64")  # fmt: skip
    nothing_read = postmaster.merge([], fetched=NOW, unknown=["example.net"], targets=OURS)
    assert nothing_read.checked == ()
    assert result.unknown == ("example.net",) and result.ok


@pytest.mark.parametrize(("error", "status", "expected"), [
    ("invalid_grant", 400, "the refresh token was refused (invalid_grant): run `blmonitor "
                           "gmail-postmaster login` again"),
    ("invalid_client", 401, "the token endpoint refused the OAuth client (invalid_client)"),
    ("", 401, "the token endpoint refused to refresh the access token (HTTP 401)"),
    ("weird error <b>", 400, "(HTTP 400)"),
    ("", None, "(no reason given)"),
    ("server_error", 503, "the token endpoint failed (HTTP 503): Google's side, try later"),
    ("", 429, "the token endpoint failed (HTTP 429)"),
    ("", 200, "the token endpoint's answer holds no access token"),
])  # fmt: skip
def test_a_refused_refresh_in_words(error, status, expected) -> None:
    assert expected in postmaster.token_problem(error, status)


@pytest.mark.parametrize(("status", "expected"), [
    (500, "the API failed (HTTP 500) for example.com: Google's side, try later"),
    (503, "HTTP 503"),
    (401, "refused the access token (HTTP 401)"),
    (429, "rate limiting us (HTTP 429)"),
    (400, "the API answered HTTP 400 for example.com"),
])  # fmt: skip
def test_an_api_failure_in_words(status, expected) -> None:
    assert expected in postmaster.api_problem("example.com", status)


def test_a_403_for_the_project_is_not_about_the_domain() -> None:
    body = {
        "error": {
            "code": 403,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED"}
            ],
        }
    }
    assert "API is not enabled" in postmaster.project_problem(403, body)
    assert postmaster.project_problem(403, {"error": {"code": 403}}) == ""
    assert postmaster.project_problem(404, body) == ""
    assert postmaster.api_reason("not json") == ""


def test_text_and_json_of_a_poll() -> None:
    result = postmaster.merge([read("listed")], fetched=NOW, unknown=["example.net"])
    text = postmaster.render_result(result)
    assert text.splitlines()[0].startswith("example.com  2026-12-05  poor (LOW): ")
    assert "203.0.113.9  2026-12-05  bad (BAD)" in text
    assert "example.com  LISTED gmail-ip-in-rbl: Gmail refused 15.00%" in text
    assert ("example.net  unknown to Gmail Postmaster Tools: add and verify it in Postmaster "
            "Tools (https://postmaster.google.com/)") in text  # fmt: skip
    data = postmaster.result_json(result)
    assert data["unknown"] == ["example.net"] and data["error"] == ""
    assert data["listings"][0]["list"] == "gmail-ip-in-rbl"
    assert data["reputation"][0]["figures"]["spfSuccessRatio"] == "0.93"
    json.dumps(data)


@pytest.mark.parametrize(("result", "verdict"), [
    (postmaster.failed(NOW, "down"), Verdict.UNKNOWN),
    (SourceResult("gmail", NOW), Verdict.CLEAN),
    (SourceResult("gmail", NOW, unknown=("example.net",)), Verdict.UNKNOWN),
    (postmaster.merge([read("good")], fetched=NOW, unknown=[]), Verdict.CLEAN),
    (postmaster.merge([read("listed")], fetched=NOW, unknown=["example.net"]), Verdict.LISTED),
    (postmaster.merge([read("domain_in_rbl")], fetched=NOW, unknown=[]), Verdict.LISTED),
])  # fmt: skip
def test_the_verdict_of_a_poll(result, verdict) -> None:
    assert postmaster.verdict(result) is verdict


def test_a_failed_poll_says_nothing_but_why() -> None:
    result = postmaster.failed(NOW, "the API failed")
    assert result.error == "Gmail Postmaster: the API failed" and not result.ok
    assert (result.listings, result.reputation, result.checked) == ((), (), ())
    assert postmaster.render_result(result) == "Gmail Postmaster: the API failed\n"
