"""The status and history services: --since parsing, the verdict, and their renderers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from blmonitor.config import load_config
from blmonitor.errors import UsageError
from blmonitor.models import Verdict
from blmonitor.monitor import status
from blmonitor.monitor.state import PairState

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "cutoff"),
    [("7d", NOW - timedelta(days=7)), ("24h", NOW - timedelta(hours=24)),
     ("1h30m", NOW - timedelta(minutes=90)),
     ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
     ("2026-11-01T08:00+02:00", datetime(2026, 11, 1, 6, 0, tzinfo=UTC))],
)  # fmt: skip
def test_since_is_a_duration_or_a_date(text: str, cutoff: datetime) -> None:
    assert status.parse_since(text, now=NOW) == cutoff


@pytest.mark.parametrize("text", ["yesterday", "400", "2026-13-01"])
def test_since_that_is_neither_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="give a duration"):
        status.parse_since(text, now=NOW)


@pytest.mark.parametrize(
    ("moment", "shown"),
    [(None, "?"), (NOW - timedelta(minutes=5), "5 min"), (NOW - timedelta(minutes=200), "3 h 20 min"),
     (NOW - timedelta(days=2, hours=4), "2 d 4 h")],
)  # fmt: skip
def test_ago(moment: datetime | None, shown: str) -> None:
    assert status.ago(moment.isoformat() if moment else None, NOW) == shown


def _status(last: dict[str, Any] | None, listed: tuple[Any, ...] = ()) -> status.Status:
    return status.Status(listed=listed, pending=(), bounced=(), sick=(), routing=None,
                         findings=(), last_run=last, next_run=None, confirm=2,
                         database=Path("/db"))  # fmt: skip


@pytest.mark.parametrize(
    ("last", "listed", "verdict"),
    [(None, (), Verdict.UNKNOWN), ({"error": "no resolver"}, (), Verdict.UNKNOWN),
     ({"error": ""}, (), Verdict.CLEAN),
     ({"error": ""}, (PairState("203.0.113.5", "bl", listed=True),), Verdict.LISTED)],
)  # fmt: skip
def test_status_verdict(last, listed, verdict) -> None:
    assert _status(last, listed).verdict is verdict


def test_without_a_database_nothing_is_read_or_created(tmp_path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[monitor]\ndatabase = "{tmp_path / "none.db"}"\n')
    config = load_config(config_path)
    found = status.read_status(config)
    assert found.verdict is Verdict.UNKNOWN and found.database == tmp_path / "none.db"
    assert status.render_status(found, now=NOW) == (
        f"no check has run yet (database {tmp_path / 'none.db'}): "
        "start one with 'blmonitor run --once'"
    )
    history = status.read_history(config, since=datetime(2026, 11, 1, tzinfo=UTC))
    assert status.history_json(history) == {"episodes": [], "zone_episodes": [], "reputation": []}
    assert status.render_history(history) == "no listing episodes since 2026-11-01T00:00+00:00"
    assert not (tmp_path / "none.db").exists()


def test_json_says_null_for_what_is_missing_and_shows_the_lists_words(tmp_path) -> None:
    from blmonitor.monitor.state import PairState

    pair = PairState("203.0.113.5", "bl.lab.test", listed=True, codes=("127.0.0.2",),
                     txt=("Spam sent from 203.0.113.5",), label="bl.lab.test")  # fmt: skip
    found = _status({"error": "", "finished": "2026-11-01T12:00:00+00:00", "verdict": "listed"},
                    listed=(pair,))  # fmt: skip
    data = status.status_json(found)
    assert data["last_run"]["error"] is None
    assert data["listed"][0]["meaning"] is None and data["listed"][0]["delist_url"] is None
    assert data["listed"][0]["txt"] == ["Spam sent from 203.0.113.5"]
    from datetime import UTC, datetime

    text = status.render_status(found, now=datetime(2026, 11, 1, 13, 0, tzinfo=UTC))
    assert "      says: Spam sent from 203.0.113.5" in text
