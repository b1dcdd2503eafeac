"""The daemon's cause finder and the sender's posture, once a day: against an authoritative zone
of ours on 127.0.0.1 whose records a test changes between runs, and a real history database.
Each run is `look_for_causes` at a time the test chooses."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.message
import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.causes import posture
from blmonitor.causes.findings import check_posture, look_for_causes
from blmonitor.config import Config, load_config
from blmonitor.models import Severity, Verdict
from blmonitor.monitor.run import run_once
from blmonitor.monitor.state import CauseMemory, MonitorState, PostureFinding
from blmonitor.monitor.store import RunRecord, Store
from tests import dnsservers
from tests.conftest import Lab
from tests.test_daemon import Clock

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
DAY = timedelta(hours=24)

# 203.0.113.5 and example.com: clean. 203.0.113.6: no PTR; nodmarc.example: no DMARC.
CLEAN = [
    ("5.113.0.203.in-addr.arpa", "PTR", "mail.example.com."),
    ("mail.example.com", "A", "203.0.113.5"),
    ("mail.example.com", "A", "203.0.113.6"),  # the HELO name of both
    ("example.com", "TXT", '"v=spf1 ip4:203.0.113.0/29 -all"'),
    ("example.com", "MX", "10 mail.example.com."),
    ("_dmarc.example.com", "TXT", '"v=DMARC1; p=reject"'),
    ("nodmarc.example", "TXT", '"v=spf1 ip4:203.0.113.0/29 -all"'),
    ("nodmarc.example", "MX", "10 mail.example.com."),
]
# 203.0.113.6 given its PTR, forward-confirmed
PTR_SET = [
    ("6.113.0.203.in-addr.arpa", "PTR", "mail6.example.com."),
    ("mail6.example.com", "A", "203.0.113.6"),
]


class Zone:
    """Our authoritative data, replaced between runs; the questions asked, counted."""

    def __init__(self) -> None:
        self.data = dnsservers.StaticZone(CLEAN)
        self.server = dnsservers.FakeResolver()
        self.server.add(".", self)

    def __call__(self, query: dns.message.Message) -> dns.message.Message | None:
        return self.data(query)

    def serve(self, records: list[tuple[str, str, str]], *, servfail: tuple[str, ...] = ()) -> None:
        self.data = dnsservers.StaticZone(records, servfail=servfail)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def asked(self) -> int:
        return len(self.server.seen)


@pytest.fixture
def zone() -> Iterator[Zone]:
    served = Zone()
    yield served
    served.server.close()


def settings(tmp_path: Path, port: int, targets: Sequence[str], *, domains: Sequence[str] = (),
             posture_table: str = 'helo = "mail.example.com"') -> Config:  # fmt: skip
    path = tmp_path / "config.toml"
    path.write_text(f"""[monitor]
targets = {json.dumps(list(targets))}
database = "{tmp_path / "h.db"}"
[dns]
resolver = ["127.0.0.1:{port}"]
timeout = 0.5
[diagnose]
queue = false
[posture]
domains = {json.dumps(list(domains))}
{posture_table}
""")
    return load_config(path)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "h.db")
    yield opened
    opened.close()


def told(store: Store) -> list[str]:
    """The findings recorded as events, in order: each is told once."""
    rows = store.db.execute("SELECT kind, detail FROM events ORDER BY id").fetchall()
    return [f"{kind}: {detail}" for kind, detail in rows]


def run(config: Config, store: Store, at: datetime) -> list[str]:
    return look_for_causes(config, store, now=at, host="mx.example")


NO_PTR = (
    "203.0.113.6 has no PTR record (reverse DNS): receivers such as Gmail and Spectrum refuse "
    "mail from an address without forward-confirmed reverse DNS; fix: ask whoever holds "
    "203.0.113.6 (your ISP or host) to set its PTR to mail.example.com, a name whose A record "
    "is 203.0.113.6"
)


def test_a_clean_setup_tells_nothing(tmp_path: Path, zone: Zone, store: Store) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.5"], domains=["example.com"])
    assert run(config, store, T0) == []
    assert zone.asked > 0
    assert told(store) == [] and store.pending_notifications() == []
    assert store.load_causes() == CauseMemory(posture_at=T0)


def test_a_posture_finding_is_told_once_with_its_fix_over_two_daily_checks(
    tmp_path: Path, zone: Zone, store: Store
) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.5", "203.0.113.6"],
                      domains=["example.com", "nodmarc.example"])  # fmt: skip
    first = run(config, store, T0)
    assert first[0] == NO_PTR
    assert first[1].startswith("nodmarc.example publishes no DMARC record; fix: publish ")
    assert len(first) == 2
    asked = zone.asked
    second = run(config, store, T0 + DAY)  # checked again: the same findings
    assert zone.asked > asked
    assert second == first
    assert told(store) == [f"posture-no-ptr: {NO_PTR}", f"posture-no-dmarc: {first[1]}"]
    pending = store.pending_notifications()
    assert len(pending) == 1  # both findings, in one notification, once
    assert pending[0].title == (
        "[blmonitor] mx.example: 2 new signs of a cause: 203.0.113.6 has no PTR record; "
        "nodmarc.example …"
    )
    assert "posture-no-ptr: 203.0.113.6 has no PTR record" in pending[0].body
    assert pending[0].severity is Severity.WARNING
    memory = store.load_causes()
    assert memory.posture_at == T0 + DAY
    assert memory.findings == ("posture-no-dmarc:nodmarc.example", "posture-no-ptr:203.0.113.6")


def test_the_posture_is_checked_once_a_day_and_its_findings_stay_in_between(
    tmp_path: Path, zone: Zone, store: Store
) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.6"])
    assert run(config, store, T0) == [NO_PTR]
    asked = zone.asked
    zone.serve([*CLEAN, *PTR_SET])  # fixed, but not looked at again before a day has passed
    for later in (timedelta(minutes=15), timedelta(hours=12), DAY - timedelta(seconds=1)):
        assert run(config, store, T0 + later) == [NO_PTR]
    assert zone.asked == asked
    assert store.load_causes().posture_at == T0
    assert run(config, store, T0 + DAY) == []  # gone: dropped silently
    assert zone.asked > asked
    assert told(store) == [f"posture-no-ptr: {NO_PTR}"]
    assert len(store.pending_notifications()) == 1
    assert store.load_causes() == CauseMemory(posture_at=T0 + DAY)


def test_status_shows_the_posture_findings(tmp_path: Path, zone: Zone, store: Store) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.6"])
    store.record_run(RunRecord(T0, T0, None, "offline"), MonitorState(), MonitorState(), [])
    run(config, store, T0)
    result = CliRunner().invoke(cli.main, ["status", "-c", str(tmp_path / "config.toml")])
    assert f"  {NO_PTR}\n" in result.output


def test_status_says_what_the_posture_check_could_not_answer_and_since_when(
    tmp_path: Path, zone: Zone, store: Store
) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.5"], domains=["example.com"])
    store.record_run(RunRecord(T0, T0, None, "offline"), MonitorState(), MonitorState(), [])
    zone.serve(CLEAN, servfail=("5.113.0.203.in-addr.arpa",))
    assert run(config, store, T0) == []
    run(config, store, T0 + timedelta(hours=1))  # still not answered: since the first
    args = ["status", "-c", str(tmp_path / "config.toml")]
    result = CliRunner().invoke(cli.main, args)
    part = f"PTR of 203.0.113.5: PTR: servfail (127.0.0.1:{zone.port})"
    assert (
        "SIGNS OF A CAUSE (blmonitor diagnose tells more)\n"
        "  the posture check could not answer since 2026-12-01T06:00+00:00 (tried again "
        f"hourly): {part}\n\n"
    ) in result.output
    data = json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)
    assert data["posture_unanswered"] == {"since": T0.isoformat(), "parts": [part]}
    assert data["findings"] == []
    zone.serve(CLEAN)  # answered in full: nothing more to say
    run(config, store, T0 + timedelta(hours=2))
    assert "SIGNS OF A CAUSE" not in CliRunner().invoke(cli.main, args).output
    assert json.loads(CliRunner().invoke(cli.main, [*args, "--json"]).output)[
        "posture_unanswered"] is None  # fmt: skip


def test_a_lookup_that_fails_keeps_the_finding_it_could_not_check_again(
    tmp_path: Path, zone: Zone, store: Store
) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.6"], domains=["nodmarc.example"])
    first = run(config, store, T0)
    assert [f.kind for f in store.load_causes().posture] == ["no-ptr", "no-dmarc"]
    # the next day the PTR question fails and DMARC is published: only DMARC's finding goes
    zone.serve([*CLEAN, ("_dmarc.nodmarc.example", "TXT", '"v=DMARC1; p=none"')],
               servfail=("6.113.0.203.in-addr.arpa",))  # fmt: skip
    assert run(config, store, T0 + DAY) == [NO_PTR]
    # the PTR still fails, and DMARC is gone again: told again, as it came back
    zone.serve(CLEAN, servfail=("6.113.0.203.in-addr.arpa",))
    assert run(config, store, T0 + 2 * DAY) == first
    # then nothing answers at all: both stand, neither is told again
    zone.serve(CLEAN, servfail=("6.113.0.203.in-addr.arpa", "_dmarc.nodmarc.example",
                                "nodmarc.example"))  # fmt: skip
    assert run(config, store, T0 + 3 * DAY) == first
    memory = store.load_causes()
    assert [(f.check, f.subject, f.kind) for f in memory.posture] == [
        ("ptr", "203.0.113.6", "no-ptr"), ("dmarc", "nodmarc.example", "no-dmarc")]  # fmt: skip
    assert memory.posture_at == T0 + 3 * DAY
    assert [line.split(":")[0] for line in told(store)] == [
        "posture-no-ptr", "posture-no-dmarc", "posture-no-dmarc"]  # fmt: skip


def test_a_check_that_could_not_answer_is_tried_again_within_the_hour(
    tmp_path: Path, zone: Zone, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.6"], domains=["nodmarc.example"])
    zone.serve(CLEAN, servfail=("6.113.0.203.in-addr.arpa",))
    dmarc = run(config, store, T0)
    assert [line.split(" ")[0] for line in dmarc] == ["nodmarc.example"]
    memory = store.load_causes()
    assert memory.posture_unanswered == (
        f"PTR of 203.0.113.6: PTR: servfail (127.0.0.1:{zone.port})",
    )
    assert memory.posture_unanswered_since == T0
    asked = zone.asked
    assert run(config, store, T0 + timedelta(minutes=59)) == dmarc  # not yet
    assert zone.asked == asked
    caplog.clear()
    assert run(config, store, T0 + timedelta(hours=1)) == dmarc  # still failing: kept, and since
    assert zone.asked > asked
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []  # told once
    memory = store.load_causes()
    assert (memory.posture_at, memory.posture_unanswered_since) == (T0 + timedelta(hours=1), T0)
    assert [f.kind for f in memory.posture] == ["no-dmarc"]
    zone.serve(CLEAN)  # answered now: no PTR, and fully answered, so daily again
    assert run(config, store, T0 + timedelta(hours=2)) == [NO_PTR, *dmarc]
    memory = store.load_causes()
    assert (memory.posture_unanswered, memory.posture_unanswered_since) == ((), None)
    asked = zone.asked
    assert run(config, store, T0 + timedelta(hours=3)) == [NO_PTR, *dmarc]
    assert run(config, store, T0 + timedelta(hours=2) + DAY - timedelta(seconds=1)) == [
        NO_PTR, *dmarc]  # fmt: skip
    assert zone.asked == asked
    assert run(config, store, T0 + timedelta(hours=2) + DAY) == [NO_PTR, *dmarc]
    assert zone.asked > asked


def test_a_posture_memory_without_the_unanswered_parts_still_loads(store: Store) -> None:
    """A row written before the unanswered parts were kept."""
    row = {
        "at": T0.isoformat(),
        "findings": [
            {"check": "ptr", "subject": "203.0.113.6", "kind": "no-ptr", "message": NO_PTR}
        ],
    }
    store._save_memo({"posture_check": row})
    assert store.load_causes() == CauseMemory(
        posture_at=T0, posture=(PostureFinding("ptr", "203.0.113.6", "no-ptr", NO_PTR),)
    )


def test_the_monitors_discovered_addresses_are_checked(
    tmp_path: Path, zone: Zone, store: Store
) -> None:
    config = settings(tmp_path, zone.port, ["auto"])
    assert run(config, store, T0) == []  # nothing to look at yet: not counted as checked
    assert (store.load_causes().posture_at, zone.asked) == (None, 0)
    found = MonitorState(addresses=("203.0.113.6",))
    store.record_run(RunRecord(T0, T0, None, "offline"), MonitorState(), found, [])
    assert run(config, store, T0 + timedelta(minutes=15)) == [NO_PTR]
    # the address changes: the old one's finding goes with it
    moved = MonitorState(addresses=("203.0.113.5",))
    store.record_run(RunRecord(T0, T0, None, "offline"), found, moved, [])
    assert run(config, store, T0 + timedelta(minutes=15) + DAY) == []


def test_an_unknown_helo_name_keeps_the_helo_finding(
    tmp_path: Path, zone: Zone, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.5"], posture_table='helo = "mx.example.net"')
    first = run(config, store, T0)
    assert first[0].startswith("the HELO name mx.example.net resolves to nothing")
    # no HELO name known now: no [posture] helo, and a host with neither Postfix nor Exim
    monkeypatch.setattr(shutil, "which", lambda _: None)
    unset = settings(tmp_path, zone.port, ["203.0.113.5"], posture_table="")
    assert run(unset, store, T0 + DAY) == first
    assert store.load_causes().posture_at == T0 + DAY


def fake_exim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `exim` first on PATH that prints a primary_hostname and notes each call."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "exim-calls"
    exim = bindir / "exim"
    exim.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
echo "primary_hostname = mail.example.com"
""")
    exim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ.get('PATH', '')}")
    return calls


def test_the_tests_never_run_this_machines_exim(
    tmp_path: Path, zone: Zone, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No [posture] helo, the queue read, an Exim on PATH: conftest keeps the daemon from it."""
    calls = fake_exim(tmp_path, monkeypatch)
    settings(tmp_path, zone.port, ["203.0.113.5"], posture_table="")
    path = tmp_path / "config.toml"
    path.write_text(path.read_text().replace("queue = false", "queue = true"))
    config = load_config(path)
    assert run(config, store, T0) == []
    assert not calls.exists()
    # the same runs on a host with Exim: its queue is read, and its HELO name
    monkeypatch.setattr("blmonitor.causes.findings.EXIM_NAMES", ("exim4", "exim"))
    run(config, store, T0 + DAY)
    assert sorted(calls.read_text().splitlines()) == ["-bP primary_hostname", "-bp"]


def test_daily_off_asks_nothing_and_forgets(tmp_path: Path, zone: Zone, store: Store) -> None:
    config = settings(tmp_path, zone.port, ["203.0.113.6"])
    assert run(config, store, T0) == [NO_PTR]
    asked = zone.asked
    off = settings(tmp_path, zone.port, ["203.0.113.6"], posture_table="daily = false")
    assert run(off, store, T0 + DAY) == []
    assert zone.asked == asked
    assert store.load_causes() == CauseMemory()


def test_the_posture_memory_round_trips(store: Store) -> None:
    memory = CauseMemory(
        findings=("posture-helo:203.0.113.5",), messages=("m",), posture_at=T0,
        posture=(PostureFinding("helo", "203.0.113.5", "helo", "the HELO name …; fix: …"),),
        posture_unanswered=("SPF of example.com: TXT: timeout",), posture_unanswered_since=T0,
    )  # fmt: skip
    store.save_causes(memory)
    assert store.load_causes() == memory


def test_check_posture_without_a_resolver_answering_keeps_what_it_knew(
    tmp_path: Path, store: Store
) -> None:
    silent = dnsservers.FakeResolver()
    silent.add(".", dnsservers.drop)
    try:
        config = settings(tmp_path, silent.port, ["203.0.113.6"])
        known = (PostureFinding("ptr", "203.0.113.6", "no-ptr", NO_PTR),)
        memory = CauseMemory(posture_at=T0, posture=known)
        checked = check_posture(config, store, memory, now=T0 + DAY)
        assert (checked.posture_at, checked.posture) == (T0 + DAY, known)
        assert checked.posture_unanswered_since == T0 + DAY
        assert checked.posture_unanswered[0].startswith("PTR of 203.0.113.6: ")
    finally:
        silent.close()


def test_the_monitor_run_checks_the_posture_on_its_first_run_of_the_day(
    tmp_path: Path, lab: Lab
) -> None:
    """run_once, its clock injected: the DNSBL questions go on to rbldnsd, the posture's to our
    zone; the PTR is asked on the first run, not 15 minutes later, and again a day later."""
    resolver = dnsservers.FakeResolver(upstream=lab.rbldnsd_port)
    data = dnsservers.StaticZone([*CLEAN, ("mail.example.com", "A", "203.0.113.9")])
    for apex in ("arpa", "example.com"):
        resolver.add(apex, data)
    path = tmp_path / "config.toml"
    path.write_text(f"""[monitor]
targets = ["203.0.113.9"]
zones = ["bl"]
lists = "{lab.catalog_path}"
database = "{tmp_path / "h.db"}"
[dns]
resolver = ["127.0.0.1:{resolver.port}"]
timeout = 0.6
[diagnose]
queue = false
[posture]
helo = "mail.example.com"
""")
    config = load_config(path)
    ptr = "9.113.0.203.in-addr.arpa."
    store = Store(config.monitor.database)
    try:
        for minutes, asked in ((0, 1), (15, 1), (24 * 60, 2)):
            clock = Clock()
            clock.now = T0 + timedelta(minutes=minutes)
            summary = run_once(config, store, None, clock=clock, host="mx.example")
            assert summary.verdict is Verdict.CLEAN
            assert resolver.seen.count(ptr) == asked
        assert [line.split(":")[0] for line in told(store)] == ["posture-no-ptr"]
        assert store.load_causes().posture_at == T0 + DAY
    finally:
        store.close()
        resolver.close()


# --- the pure rule: which earlier finding still stands -------------------------------------

REPORT = posture.PostureReport(
    ("203.0.113.5",), ("example.com",), "",
    (posture.Part("PTR of 203.0.113.5", check="ptr", subject="203.0.113.5"),
     posture.Part("SPF of example.com", unknown="TXT: timeout", check="spf",
                  subject="example.com"),
     posture.Part("DMARC of example.com", check="dmarc", subject="example.com")),
)  # fmt: skip


@pytest.mark.parametrize(
    ("check", "subject", "stands"),
    [
        ("ptr", "203.0.113.5", False),  # answered: gone when not found again
        ("dmarc", "example.com", False),
        ("spf", "example.com", True),  # unanswered: stands
        ("helo", "203.0.113.5", True),  # not made (no HELO name): stands
        ("mx", "example.com", True),
        ("ptr", "203.0.113.9", False),  # no longer the monitor's address
        ("spf", "example.org", False),
    ],
)
def test_still_stands(check: str, subject: str, stands: bool) -> None:
    assert posture.still_stands(REPORT, check, subject) is stands
