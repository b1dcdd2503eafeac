"""notify: good news as good news, the data a json:// webhook gets, and why a delivery failed.

Rendering is pure (tables); deliveries go to the HTTP server of tests/httpservers.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from blmonitor.models import Event, EventKind, Severity
from blmonitor.monitor.notify import Notifier, mask_secrets, render_batch, render_test_message
from tests import httpservers
from tests.test_notify import DELISTED, HOST, MOVED, RECOVERED, SBL, UNUSABLE, WORKING


@dataclass
class Webhook:
    base: str  # json://127.0.0.1:PORT
    routes: dict[str, tuple[int, str]] = field(default_factory=dict)
    posted: list[tuple[str, str]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.posted]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(base="")
    with httpservers.serve(hook.routes, hook.posted) as base:
        hook.base = base.replace("http://", "json://")
        yield hook


# --- good news [pure] ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "all_clear", "title"),
    [
        ([DELISTED], True, "all clean again: no listing left (203.0.113.9 delisted from bl.spamcop.net)"),
        ([DELISTED, WORKING], True, "all clean again: no listing left (203.0.113.9 delisted from bl.spamcop.net (+1 more change))"),
        ([DELISTED], False, "203.0.113.9 delisted from bl.spamcop.net"),  # another listing is left
        ([RECOVERED], True, "zone bl.spamcop.net usable again"),  # no listing ended here
        ([UNUSABLE, DELISTED], True, "203.0.113.9 delisted from bl.spamcop.net (+1 more change); all clean again: no listing left"),  # not only good news
        ([UNUSABLE, replace(DELISTED, severity=Severity.INFO)], True,
         "zone bl.spamcop.net unusable (+1 more change); all clean again: no listing left"),
    ],
)  # fmt: skip
def test_the_end_of_the_last_listing_says_all_clean(
    events: list[Event], all_clear: bool, title: str
) -> None:
    message = render_batch(events, host=HOST, all_clear=all_clear)
    assert message.title == f"[blmonitor] {HOST}: {title}"
    said = "all clean again: no listing left: every listing blmonitor knew of has ended."
    cleared = all_clear and any(event.kind is EventKind.DELISTED for event in events)
    assert (message.body.splitlines()[0] == said) is cleared
    assert message.payload["all_clear"] is cleared


def test_endings_are_marked_resolved_not_with_their_severity() -> None:
    body = render_batch([DELISTED, RECOVERED, WORKING], host=HOST).body
    headlines = [line for line in body.splitlines() if line.endswith("]")]
    assert headlines == [
        "203.0.113.9 delisted from bl.spamcop.net [resolved]",
        "zone bl.spamcop.net usable again [resolved]",
        "checking again [resolved]",
    ]


def test_payload_of_an_ending_has_its_span_and_nulls_for_what_is_missing() -> None:
    [event] = render_batch([DELISTED], host=HOST).payload["events"]
    assert event == {
        "event": "delisted", "target": "203.0.113.9", "zone": "bl.spamcop.net",
        "codes": ["127.0.0.2"], "severity": "critical", "meaning": None,
        "since": "2026-11-01T08:15:00+00:00", "ended": "2026-11-01T11:27:40+00:00",
        "delist_url": None, "detail": None, "txt": [],
    }  # fmt: skip
    [moved] = render_batch([MOVED], host=HOST).payload["events"]
    assert (moved["zone"], moved["since"], moved["ended"]) == (
        None,
        "2026-11-01T08:15:00+00:00",
        None,
    )


# --- what a json:// webhook gets, and why a delivery failed --------------------------------------


def test_json_webhook_gets_the_event_data_beside_apprise_keys(webhook: Webhook) -> None:
    notifier = Notifier(urls=[f"{webhook.base}/hook"], min_severity=Severity.INFO)
    message = render_batch([SBL, DELISTED], host=HOST)
    assert notifier.send(message).ok
    [body] = webhook.bodies()
    assert set(body) == {"version", "title", "message", "attachments", "type", "blmonitor"}
    data = body["blmonitor"]
    assert (data["server"], data["kinds"], data["severity"]) == (
        HOST,
        ["listed", "delisted"],
        "critical",
    )
    assert [(e["event"], e["target"], e["zone"], e["codes"], e["severity"], e["since"], e["delist_url"])
            for e in data["events"]] == [
        ("listed", "203.0.113.5", "zen.spamhaus.org", ["127.0.0.2"], "critical",
         "2026-11-01T08:15:00+00:00", "https://check.spamhaus.org/"),
        ("delisted", "203.0.113.9", "bl.spamcop.net", ["127.0.0.2"], "critical",
         "2026-11-01T08:15:00+00:00", None),
    ]  # fmt: skip
    assert data == json.loads(json.dumps(message.payload))
    # the configured target is left as it was: a second message carries its own data only
    assert notifier.send(render_test_message(HOST)).ok
    assert webhook.bodies()[1]["blmonitor"]["events"] == []


def test_a_url_that_sets_its_own_blmonitor_key_keeps_it(webhook: Webhook) -> None:
    notifier = Notifier(urls=[f"{webhook.base}/own?:blmonitor=mine"])
    assert notifier.send(render_batch([SBL], host=HOST)).ok
    assert webhook.bodies()[0]["blmonitor"] == "mine"


def test_a_rejected_post_gives_the_reason(webhook: Webhook) -> None:
    webhook.routes["/flaky"] = (500, "oops")
    notifier = Notifier(urls=[f"{webhook.base}/flaky"], retries=1)
    delivery = notifier.send(render_batch([SBL], host=HOST))
    assert delivery.error == (
        f"{webhook.base}/flaky: failed: Failed to send JSON POST notification: "
        "Internal server error, error=500"
    )


def test_secrets_of_the_url_are_masked_in_a_reason() -> None:
    url = "json://bob:hunter2@hooks.example/api/Zx81TokenTokenToken99?+X-Token=t0ps3cr3t"
    [service] = Notifier(urls=[url])._services
    text = "POST to hooks.example/api/Zx81TokenTokenToken99 as bob:hunter2 (X-Token t0ps3cr3t)"
    assert (
        mask_secrets(text, service) == "POST to hooks.example/api/**** as bob:**** (X-Token ****)"
    )
