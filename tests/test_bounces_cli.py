"""`blmonitor explain` and `blmonitor bounces scan` on real sample bounces and log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from blmonitor import cli

DATA = Path(__file__).parent / "data"
S3150 = (
    "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your "
    "Internet service provider since part of their network is on our block list (S3150)."
)


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using "
         "zen.spamhaus.org", cli.EXIT_LISTED,
         {"verdict": "listed", "zone": "zen.spamhaus.org", "listed_ip": "203.0.113.5",
          "temporary": False,
          "delist_url": "https://check.spamhaus.org/results/?query=203.0.113.5"}),
        (S3150, cli.EXIT_LISTED,
         {"verdict": "listed", "list": "microsoft-s3150", "provider": "Microsoft",
          "kind": "provider-private", "listed_ip": "203.0.113.5"}),
        ("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown",
         cli.EXIT_CLEAN, {"verdict": "other", "list": None}),
        ("554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using "
         "zen.spamhaus.org; Error: open resolver; https://www.spamhaus.org/returnc/pub/1.2.3.4",
         cli.EXIT_CLEAN, {"verdict": "receiver-error", "listed_ip": None}),
    ],
)  # fmt: skip
def test_explain_json(text, code, expected) -> None:
    result = CliRunner().invoke(cli.main, ["explain", text, "--json"])
    assert result.exit_code == code, result.output
    data = json.loads(result.output)
    assert {k: data[k] for k in expected} == expected


def test_explain_text_and_stdin() -> None:
    result = CliRunner().invoke(cli.main, ["explain", "-"], input=S3150 + "\n")
    assert result.exit_code == cli.EXIT_LISTED
    lines = result.output.splitlines()
    assert lines[0] == "verdict:       listed"
    assert "list:          microsoft-s3150" in lines
    assert "listed IP:     203.0.113.5" in lines
    assert CliRunner().invoke(cli.main, ["explain", "  "]).exit_code == cli.EXIT_USAGE


def test_bounces_scan_messages_and_logs() -> None:
    paths = [str(DATA / "bounces"), str(DATA / "logs" / "postfix.log")]
    result = CliRunner().invoke(cli.main, ["bounces", "scan", *paths, "--json"])
    assert result.exit_code == cli.EXIT_LISTED, result.output
    records = json.loads(result.output)
    assert all(set(r) >= {"recipient", "status", "diagnostic", "source", "attribution"}
               for r in records)  # fmt: skip
    from_log = [r for r in records if r["source"].startswith(str(DATA / "logs"))]
    assert from_log and all(r["format"] == "postfix-log" for r in from_log)
    s3150 = [r for r in records if r["attribution"]["list"] == "microsoft-s3150"]
    assert [r["attribution"]["listed_ip"] for r in s3150] == ["203.0.113.5"]
    assert not [r for r in records if r["attribution"]["listed_ip"]
                and r["attribution"]["listed_ip"] in (r["remote_mta"] or "")]  # fmt: skip
    table = CliRunner().invoke(cli.main, ["bounces", "scan", *paths])
    assert table.output.splitlines()[0].split()[:3] == ["verdict", "list", "bounces"]
    assert table.output.splitlines()[-1].startswith(f"{len(records)} bounce record(s): ")


def test_bounces_scan_of_non_bounces_is_clean() -> None:
    result = CliRunner().invoke(cli.main, ["bounces", "scan", str(DATA / "bounces" / "not")])
    assert result.exit_code == cli.EXIT_CLEAN
    assert result.output.strip() == "0 bounce record(s): 0 blocklist listing(s)"
