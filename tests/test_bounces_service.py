"""The bounce services: explain a pasted rejection, and a scan grouped by blocklist."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from blmonitor.bounces import service
from blmonitor.bounces.models import Attribution, BounceRecord, BounceVerdict
from blmonitor.errors import UsageError
from blmonitor.models import Verdict


def test_explain_reads_the_reply_code_and_status() -> None:
    found = service.explain("554 5.7.1 Client host [203.0.113.5] blocked using zen.spamhaus.org")
    assert (found.verdict, found.zone, found.listed_ip) == (BounceVerdict.LISTED,
                                                            "zen.spamhaus.org", "203.0.113.5")  # fmt: skip
    assert service.verdict_of([found]) is Verdict.LISTED
    text = service.render_explanation(found)
    assert text.splitlines()[0] == "verdict:       listed"
    assert service.attribution_json(found)["zone"] == "zen.spamhaus.org"


@pytest.mark.parametrize("text", ["", "  \n\t "])
def test_nothing_to_explain_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="nothing to explain"):
        service.explain(text)


def _found(verdict: BounceVerdict, name: str, day: int) -> tuple[BounceRecord, Attribution]:
    record = BounceRecord(recipient=f"r{day}@example.net", source="test",
                          date=datetime(2026, 11, day, tzinfo=UTC))  # fmt: skip
    return record, Attribution(verdict=verdict, list=name, listed_ip="203.0.113.5")


def test_scan_groups_listings_by_list_largest_first() -> None:
    scan = service.BounceScan((
        _found(BounceVerdict.LISTED, "spamcop", 1),
        _found(BounceVerdict.REPUTATION, "gmail", 2), _found(BounceVerdict.REPUTATION, "gmail", 3),
        _found(BounceVerdict.OTHER, "", 4),
    ))  # fmt: skip
    assert list(service.group_by_list(scan)) == [("reputation", "gmail"), ("listed", "spamcop")]
    assert scan.verdict is Verdict.LISTED and len(scan.listed) == 1
    lines = service.render_scan(scan).splitlines()
    assert lines[0].split()[:3] == ["verdict", "list", "bounces"]
    assert lines[1].split()[:5] == ["reputation", "gmail", "2", "2026-11-02T00:00+00:00",
                                    "2026-11-03T00:00+00:00"]  # fmt: skip
    assert lines[-1] == "4 bounce record(s): 1 blocklist listing(s), 1 other"
    assert [r["attribution"]["verdict"] for r in service.scan_json(scan)] == [
        "listed", "reputation", "reputation", "other"]  # fmt: skip
