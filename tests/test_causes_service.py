"""The cause-finding services: which MTA's queue there is (one detection for the command line
and the daemon), and the verdicts of a diagnosis and a relay test."""

from __future__ import annotations

from pathlib import Path

import pytest

from blmonitor.causes import diagnosis, service
from blmonitor.causes import queue as mailqueue
from blmonitor.causes.relaytest import Attempt, AttemptResult, Outcome, RelayReport
from blmonitor.errors import UsageError
from blmonitor.models import Verdict


def on_path(*programs: str):
    return lambda name: f"/usr/sbin/{name}" if name in programs else None


@pytest.mark.parametrize(
    ("programs", "main_cf", "found"),
    [((), None, None), (("postqueue",), None, mailqueue.Mta.POSTFIX),
     (("postqueue", "exim4"), None, mailqueue.Mta.POSTFIX), (("exim4",), None, mailqueue.Mta.EXIM),
     (("exim",), None, mailqueue.Mta.EXIM),
     # with a Postfix directory, Postfix counts only when its main.cf is there
     (("postqueue",), False, None), (("postqueue", "exim"), False, mailqueue.Mta.EXIM),
     (("postqueue",), True, mailqueue.Mta.POSTFIX)],
)  # fmt: skip
def test_detect_queue_mta(tmp_path: Path, programs, main_cf, found) -> None:
    postfix_dir = None
    if main_cf is not None:
        postfix_dir = tmp_path
        if main_cf:
            (tmp_path / "main.cf").write_text("")
    assert service.detect_queue_mta(postfix_dir=postfix_dir, which=on_path(*programs)) == found


def test_queue_mta_given_wins_and_none_found_is_a_usage_error() -> None:
    assert service.queue_mta("exim", which=on_path("postqueue")) is mailqueue.Mta.EXIM
    assert service.queue_mta(None, which=on_path("exim4")) is mailqueue.Mta.EXIM
    with pytest.raises(UsageError, match="found neither postqueue"):
        service.queue_mta(None, which=on_path())


ATTEMPT = Attempt(
    "plain", "an outside sender and recipient", "a@sender.invalid", "b@relaytest.invalid"
)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [((Outcome.REFUSED, Outcome.ACCEPTED), Verdict.LISTED),  # an open relay
     ((Outcome.REFUSED, Outcome.REFUSED), Verdict.CLEAN),
     ((Outcome.REFUSED, Outcome.ERROR), Verdict.UNKNOWN), ((), Verdict.UNKNOWN)],
)  # fmt: skip
def test_relay_verdict(outcomes: tuple[Outcome, ...], expected: Verdict) -> None:
    report = RelayReport("mx.example", 25, tuple(AttemptResult(ATTEMPT, o) for o in outcomes))
    assert service.relay_verdict(report) is expected


@pytest.mark.parametrize(
    ("listings", "checked", "expected"),
    [((), ("the postfix queue",), Verdict.CLEAN), ((), (), Verdict.UNKNOWN),
     ((diagnosis.Listing("203.0.113.5", "bl.lab.test", None),), ("listings in the history",),
      Verdict.LISTED)],
)  # fmt: skip
def test_diagnose_verdict(listings, checked, expected) -> None:
    found = diagnosis.diagnose(listings=listings, checked=checked)
    assert service.DiagnoseResult(found, None, None, None).verdict is expected
