"""The mail queue: postqueue -j and exim -bp samples, the NDR-attack and spam-run verdicts,
growth, the clean-up commands, and a real Postfix queue filled, read and cleaned on loopback."""

from __future__ import annotations

import json
import smtplib
import stat
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blmonitor.causes.queue import (
    Command,
    FindingKind,
    QueuedMessage,
    QueueError,
    QueueSnapshot,
    analyse_queue,
    growth_finding,
    parse_exim_queue,
    parse_postqueue_json,
    purge_deferred_command,
    queue_growth,
    queue_report_json,
    read_exim_queue,
    read_postfix_queue,
    removal_commands,
    render_queue_report,
    run_removal,
    select_queue_ids,
)
from tests.postfixlab import postfix_missing
from tests.test_relaytest import postfix  # the lab, with settings applied before it starts

DATA = Path(__file__).parent / "data" / "diagnose"
NORMAL = parse_postqueue_json((DATA / "postqueue-normal.jsonl").read_text())
BACKSCATTER = parse_postqueue_json((DATA / "postqueue-backscatter.jsonl").read_text())
NOW = datetime(2024, 11, 5, 11, 20, tzinfo=UTC)


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "queue_id", "sender", "recipients", "size", "queue_name", "arrival", "bounce"),
    [
        (
            0,
            "4XkQ2b1xYz",
            "alice@example.com",
            ("bob@example.net",),
            1834,
            "deferred",
            at(1730801702),
            False,
        ),
        (
            1,
            "4XkQ4c2aBc",
            "carol@example.com",
            ("dan@gmail.com", "erin@gmail.com"),
            52011,
            "deferred",
            at(1730798102),
            False,
        ),
        (
            2,
            "4XkQ5d3DeF",
            "alice@example.com",
            ("frank@example.org",),
            912,
            "active",
            at(1730805302),
            False,
        ),
        (
            3,
            "4XkQ6e4GhI",
            "MAILER-DAEMON",
            ("grace@example.net",),
            2210,
            "hold",
            at(1730633000),
            True,
        ),
        (
            4,
            "4XkQ7f5JkL",
            "www-data@mail.example.com",
            ("heidi@example.com",),
            640,
            "incoming",
            at(1730805592),
            False,
        ),
        (5, "9F1E2D3C4B", "", ("ivan@example.org",), 120400, "deferred", at(1730373302), True),
    ],
)
def test_postqueue_json(index, queue_id, sender, recipients, size, queue_name, arrival, bounce):
    m = NORMAL[index]
    assert (m.queue_id, m.sender, m.recipients, m.size, m.queue_name, m.arrival, m.bounce) == (
        queue_id, sender, recipients, size, queue_name, arrival, bounce)  # fmt: skip


def test_postqueue_json_keeps_delay_reasons():
    assert NORMAL[0].reasons == (
        "connect to mx.example.net[198.51.100.25]:25: Connection timed out",
    )
    assert len(NORMAL[1].reasons) == 2 and NORMAL[2].reasons == ()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json\n", "postqueue -j: line 1 is not a queue entry"),
        ('{"queue_id": "ABCDEF123"}\n[1, 2]\n', "postqueue -j: line 2 is not a queue entry"),
        ('{"sender": "a@b"}\n', "postqueue -j: line 1 is not a queue entry: 'queue_id'"),
        ('{"queue_id": "../../etc"}\n', "odd queue id"),
        ('{"queue_id": "ABCDEF123", "recipients": [{"delay_reason": "x"}]}\n', "line 1"),
    ],
)
def test_postqueue_json_errors(text, error):
    with pytest.raises(QueueError, match=error.replace("(", r"\(").replace(".", r"\.")):
        parse_postqueue_json(text)


def test_postqueue_json_empty_queue():
    assert parse_postqueue_json("") == () == parse_postqueue_json("\n\n")


EXIM = parse_exim_queue((DATA / "exim-bp.txt").read_text(), now=NOW)


@pytest.mark.parametrize(
    ("index", "queue_id", "sender", "recipients", "size", "age", "frozen"),
    [
        (
            0,
            "1tA2bC-000Xyz-AB",
            "alice@example.com",
            ("bob@example.net",),
            2969,
            timedelta(minutes=25),
            False,
        ),
        (1, "1tA2bD-000Abc-CD", "", ("carol@example.org",), 512, timedelta(hours=4), False),
        (
            2,
            "1tA2bE-000Def-EF",
            "carol@example.com",
            ("erin@example.net",),
            1258291,
            timedelta(hours=62),
            True,
        ),
        (
            3,
            "1tA2bF-0000000Ghi-GHIJ",
            "wordpress@example.com",
            ("frank@example.org", "grace@example.org"),
            22528,
            timedelta(days=4),
            False,
        ),
    ],
)
def test_exim_bp(index, queue_id, sender, recipients, size, age, frozen):
    m = EXIM[index]
    assert (m.queue_id, m.sender, m.recipients, m.size, NOW - m.arrival, m.frozen) == (
        queue_id, sender, recipients, size, age, frozen)  # fmt: skip
    assert m.bounce is (sender == "")


def test_exim_bp_frozen_on_its_own_line_and_errors():
    text = " 3h  1.9K 1rTuZp-000C1d-9K <root@example.com>\n          *** frozen ***\n          ops@example.net\n"
    (m,) = parse_exim_queue(text, now=NOW)
    assert m.frozen and m.recipients == ("ops@example.net",) and m.queue_name == "frozen"
    with pytest.raises(QueueError, match=r"exim -bp: line 1 is not a queue entry: 'Total: 3'"):
        parse_exim_queue("Total: 3\n", now=NOW)


# --- verdicts -----------------------------------------------------------------------------------


def test_backscatter_queue_is_an_ndr_attack():
    report = analyse_queue(BACKSCATTER, now=NOW, local_domains=["example.com"])
    (finding,) = report.findings
    assert finding.kind is FindingKind.NDR_ATTACK
    assert (
        finding.message
        == "60 of 68 messages are bounces (null sender) to 60 external addresses in 30 domains: NDR attack?"
    )
    assert (finding.sender, finding.messages, finding.recipients, finding.domains) == (
        "",
        60,
        60,
        30,
    )
    assert finding.queue_ids == tuple(
        m.queue_id for m in BACKSCATTER if m.sender == "MAILER-DAEMON"
    )
    assert report.bounces == 60 and report.messages == 68
    assert report.senders[:3] == (("", 60), ("sales@example.com", 4), ("alice@example.com", 3))


def test_a_normal_queue_has_no_finding():
    report = analyse_queue(NORMAL, now=NOW)
    assert report.findings == ()
    assert (report.messages, report.recipients, report.bounces, report.size) == (6, 7, 2, 178007)
    assert report.queues == (("deferred", 3), ("active", 1), ("hold", 1), ("incoming", 1))
    assert report.ages == (("< 1 h", 2), ("1–6 h", 2), ("6–24 h", 0), ("1–3 d", 1), ("> 3 d", 1))
    assert report.oldest == NOW - at(1730373302)


def queue(*groups: tuple[int, str, str, int]) -> list[QueuedMessage]:
    """Messages from (count, sender, recipient local part, number of domains they go to)."""
    out: list[QueuedMessage] = []
    for count, sender, user, domains in groups:
        for i in range(count):
            out.append(QueuedMessage(f"Q{len(out):08X}", sender, (f"{user}{i}@d{i % domains}.example",),
                                     1000, NOW - timedelta(minutes=i)))  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("messages", "kwargs", "expected"),
    [
        (
            queue((60, "", "v", 30)),
            {},
            [
                "ndr-attack: 60 of 60 messages are bounces (null sender) to 60 external addresses in 30 domains: NDR attack?"
            ],
        ),
        (queue((100, "", "v", 5)), {}, []),  # bounces to few domains: a broken local mailbox, say
        (queue((49, "", "v", 30)), {}, []),  # too few
        (
            queue((49, "", "v", 30)),
            {"ndr_min_messages": 20},
            [
                "ndr-attack: 49 of 49 messages are bounces (null sender) to 49 external addresses in 30 domains: NDR attack?"
            ],
        ),
        (
            queue((60, "", "v", 30), (61, "news@example.com", "r", 2)),
            {},
            [],
        ),  # under half are bounces
        (
            queue((60, "MAILER-DAEMON", "v", 30), (61, "news@example.com", "r", 2)),
            {"ndr_min_share": 0.4},
            [
                "ndr-attack: 60 of 121 messages are bounces (null sender) to 60 external addresses in 30 domains: NDR attack?"
            ],
        ),
        (
            queue((80, "admin@example.com", "x", 40)),
            {"local_domains": ["example.com"]},
            [
                "spam-run: 80 messages from the local sender admin@example.com to 80 addresses in 40 domains, queued within 79 min: spam run from this account?"
            ],
        ),
        (
            queue((80, "Admin@Example.com", "x", 40)),
            {},
            [
                "spam-run: 80 messages from the sender admin@example.com to 80 addresses in 40 domains, queued within 79 min: spam run from this account?"
            ],
        ),
        (
            queue((80, "paypal@phish.example", "x", 40)),
            {"local_domains": ["example.com"]},
            [
                "spam-run: 80 messages from the sender paypal@phish.example to 80 addresses in 40 domains, queued within 79 min: spam relayed for an outside sender: open relay or a compromised account?"
            ],
        ),
        (queue((80, "news@example.com", "x", 3)), {}, []),  # a newsletter to a few domains
        (queue((80, "a@example.com", "x", 40)), {"spam_min_messages": 81}, []),
        (queue((80, "a@example.com", "x", 40)), {"spam_min_domains": 41}, []),
        (
            queue((30, "a@example.com", "x", 30), (40, "a@example.com", "y", 10)),
            {"local_domains": ["d0.example"], "spam_min_domains": 29},
            [
                "spam-run: 70 messages from the sender a@example.com to 65 addresses in 29 domains, queued within 39 min: spam relayed for an outside sender: open relay or a compromised account?"
            ],
        ),
    ],
)
def test_signatures(messages, kwargs, expected):
    report = analyse_queue(messages, now=NOW, **kwargs)
    assert [f"{f.kind.value}: {f.message}" for f in report.findings] == expected


def test_spam_run_names_its_queue_ids():
    messages = queue((3, "ok@example.com", "a", 3), (60, "admin@example.com", "x", 30))
    (finding,) = analyse_queue(messages, now=NOW).findings
    assert finding.queue_ids == tuple(m.queue_id for m in messages[3:])
    assert finding.sender == "admin@example.com"


@pytest.mark.parametrize(
    ("earlier", "later", "per_hour", "finding"),
    [
        (
            (0, 1000),
            (7200, 40000),
            19500.0,
            "the queue grew from 1,000 to 40,000 messages in 2 h (+19,500/h)",
        ),
        (
            (0, 100),
            (1800, 1200),
            2200.0,
            "the queue grew from 100 to 1,200 messages in 30 min (+2,200/h)",
        ),
        ((0, 100), (3600, 900), 800.0, None),  # fast, but still small
        ((0, 5000), (36000, 6000), 100.0, None),  # big, but slow
        ((0, 40000), (3600, 1000), -39000.0, None),  # shrinking
        ((0, 10), (0, 5000), 0.0, None),  # same moment: no rate
    ],
)
def test_growth(earlier, later, per_hour, finding):
    growth = queue_growth(QueueSnapshot(NOW + timedelta(seconds=earlier[0]), earlier[1]),
                          QueueSnapshot(NOW + timedelta(seconds=later[0]), later[1]))  # fmt: skip
    assert growth.per_hour == pytest.approx(per_hour)
    assert growth.delta == later[1] - earlier[1]
    got = growth_finding(growth)
    assert (got.message if got else None) == finding
    if got:
        assert got.kind is FindingKind.GROWTH and got.messages == later[1]


def test_small_and_undated_queues():
    messages = [
        QueuedMessage("ABCDEF1234", "a@example.com", ("b@example.net",), 700),
        *queue((1, "c@example.com", "d", 1)),
    ]
    report = analyse_queue(messages, now=NOW)
    assert report.oldest == timedelta(0) and sum(n for _, n in report.ages) == 1
    assert (
        render_queue_report(report).splitlines()[0]
        == "QUEUE: 2 messages, 2 recipients, 1.7 kB; 0 bounces"
    )
    assert (
        render_queue_report(analyse_queue(messages[:1], now=NOW))
        == "QUEUE: 1 messages, 1 recipients, 700 B; 0 bounces\n  busiest senders: a@example.com 1\n"
    )


def test_slow_growth_over_days():
    growth = queue_growth(QueueSnapshot(NOW, 0), QueueSnapshot(NOW + timedelta(days=3), 72000))
    finding = growth_finding(growth)
    assert finding is not None
    assert finding.message == "the queue grew from 0 to 72,000 messages in 3 d (+1,000/h)"


# --- clean-up commands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "ids"),
    [
        ("", ("4XkQ6e4GhI", "9F1E2D3C4B")),
        ("<>", ("4XkQ6e4GhI", "9F1E2D3C4B")),
        ("MAILER-DAEMON", ("4XkQ6e4GhI", "9F1E2D3C4B")),
        ("Alice@Example.COM", ("4XkQ2b1xYz", "4XkQ5d3DeF")),
        ("<alice@example.com>", ("4XkQ2b1xYz", "4XkQ5d3DeF")),
        ("nobody@example.com", ()),
    ],
)
def test_select_by_sender(sender, ids):
    assert select_queue_ids(NORMAL, sender=sender) == ids


def test_select_by_finding_and_misuse():
    finding = analyse_queue(BACKSCATTER, now=NOW).findings[0]
    assert select_queue_ids(BACKSCATTER, finding=finding) == finding.queue_ids
    assert select_queue_ids(NORMAL, finding=finding) == ()  # ids no longer in the queue
    with pytest.raises(ValueError, match="one of the two"):
        select_queue_ids(NORMAL)
    with pytest.raises(ValueError, match="one of the two"):
        select_queue_ids(NORMAL, sender="", finding=finding)


@pytest.mark.parametrize(
    ("mta", "ids", "kwargs", "expected"),
    [
        (
            "postfix",
            ["4XkQ6e4GhI", "9F1E2D3C4B"],
            {},
            [(("postsuper", "-d", "-"), "4XkQ6e4GhI\n9F1E2D3C4B\n")],
        ),
        (
            "postfix",
            ["4XkQ6e4GhI", "4XkQ6e4GhI"],
            {"config_dir": "/etc/postfix-out"},
            [(("postsuper", "-c", "/etc/postfix-out", "-d", "-"), "4XkQ6e4GhI\n")],
        ),
        ("postfix", [], {}, []),
        (
            "exim",
            ["1tA2bC-000Xyz-AB", "1tA2bD-000Abc-CD", "1tA2bF-0000000Ghi-GHIJ"],
            {},
            [
                (
                    (
                        "exim",
                        "-Mrm",
                        "1tA2bC-000Xyz-AB",
                        "1tA2bD-000Abc-CD",
                        "1tA2bF-0000000Ghi-GHIJ",
                    ),
                    "",
                )
            ],
        ),
        (
            "exim",
            ["1tA2bC-000Xyz-AB", "1tA2bD-000Abc-CD", "1tA2bF-0000000Ghi-GHIJ"],
            {"chunk": 2, "exim": "exim4"},
            [
                (("exim4", "-Mrm", "1tA2bC-000Xyz-AB", "1tA2bD-000Abc-CD"), ""),
                (("exim4", "-Mrm", "1tA2bF-0000000Ghi-GHIJ"), ""),
            ],
        ),
    ],
)
def test_removal_commands(mta, ids, kwargs, expected):
    commands = removal_commands(mta, ids, **kwargs)
    assert [(c.argv, c.stdin) for c in commands] == expected
    assert [i for c in commands for i in c.ids] == list(dict.fromkeys(ids))


@pytest.mark.parametrize(
    ("mta", "ids", "error"),
    [
        (
            "postfix",
            ["ALL"],
            "'ALL' is not a Postfix queue id",
        ),  # postsuper's word for every message
        ("postfix", ["-d"], "'-d' is not a Postfix queue id: nothing removed"),
        ("postfix", ["4XkQ6e4GhI\nALL"], "is not a Postfix queue id"),
        ("postfix", ["4XkQ6e4GhI\n"], "is not a Postfix queue id"),
        ("exim", ["4XkQ6e4GhI"], "'4XkQ6e4GhI' is not an Exim queue id: nothing removed"),
        ("exim", ["1tA2bC-000Xyz-AB; rm"], "is not an Exim queue id"),
    ],
)
def test_removal_refuses_odd_ids(mta, ids, error):
    with pytest.raises(QueueError, match=error):
        removal_commands(mta, ids)


def test_purge_deferred_is_explicit():
    assert purge_deferred_command().argv == ("postsuper", "-d", "ALL", "deferred")
    assert purge_deferred_command(config_dir="/etc/postfix-b").argv == (
        "postsuper",
        "-c",
        "/etc/postfix-b",
        "-d",
        "ALL",
        "deferred",
    )


def test_command_lines_for_people():
    (command,) = removal_commands("postfix", ["4XkQ6e4GhI", "9F1E2D3C4B"])
    assert command.summary() == "postsuper -d -  (2 queue ids on standard input)"
    assert command.shell() == "postsuper -d - <<'EOF'\n4XkQ6e4GhI\n9F1E2D3C4B\nEOF"
    exim = Command(("exim", "-Mrm", "1tA2bC-000Xyz-AB"), ids=("1tA2bC-000Xyz-AB",))
    assert exim.summary() == exim.shell() == "exim -Mrm 1tA2bC-000Xyz-AB"


# --- rendering ----------------------------------------------------------------------------------


def test_text_and_json():
    report = analyse_queue(BACKSCATTER, now=NOW)
    text = render_queue_report(report)
    assert text.splitlines()[0] == "QUEUE: 68 messages, 68 recipients, 259.6 kB; 60 bounces"
    assert (
        "  busiest senders: <> 60, sales@example.com 4, alice@example.com 3, www-data@example.com 1"
        in text
    )
    assert (
        text.splitlines()[-1]
        == "  ndr-attack: 60 of 68 messages are bounces (null sender) to 60 external addresses in 30 domains: NDR attack?"
    )
    data = queue_report_json(report)
    assert json.loads(json.dumps(data)) == data
    assert (
        data["findings"][0]["kind"] == "ndr-attack" and len(data["findings"][0]["queue_ids"]) == 60
    )
    assert data["ages"]["< 1 h"] == 0 and data["oldest_seconds"] == int(
        (NOW - at(1730801702 - 3540)).total_seconds()
    )


# --- adapters -----------------------------------------------------------------------------------


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_adapter_errors_are_one_line(tmp_path):
    with pytest.raises(
        QueueError,
        match=r"^/nonexistent/postqueue: command not found: is the MTA installed, and on PATH\?$",
    ):
        read_postfix_queue(postqueue="/nonexistent/postqueue")
    failing = script(
        tmp_path,
        "postqueue",
        'echo "postqueue: warning: x" >&2; echo "postqueue: fatal: open /etc/postfix-x/main.cf: No such file or directory" >&2; exit 75',
    )
    with pytest.raises(
        QueueError,
        match=rf"^{failing} -c /etc/postfix-x -j failed: postqueue: fatal: open /etc/postfix-x/main.cf: No such file or directory$",
    ):
        read_postfix_queue(postqueue=failing, config_dir="/etc/postfix-x")
    slow = script(tmp_path, "slow", "sleep 5")
    with pytest.raises(QueueError, match=r"no result within 0\.2 s"):
        read_postfix_queue(postqueue=slow, timeout=0.2)
    exim = script(tmp_path, "exim", f"cat {DATA / 'exim-bp.txt'}")
    assert [m.queue_id for m in read_exim_queue(exim=exim, now=NOW)] == [m.queue_id for m in EXIM]
    broken = script(tmp_path, "exim-broken", "echo 'exim: permission denied' >&2; exit 1")
    with pytest.raises(QueueError, match="exim-broken -bp failed: exim: permission denied"):
        read_exim_queue(exim=broken)


def test_a_command_that_cannot_run(tmp_path):
    plain = tmp_path / "postqueue"
    plain.write_text("not executable\n")
    with pytest.raises(QueueError, match=rf"^{plain}: cannot run it: Permission denied$"):
        read_postfix_queue(postqueue=str(plain))


def test_run_removal_reports_what_it_removed(tmp_path):
    postsuper = script(
        tmp_path,
        "postsuper",
        'while read id; do echo "postsuper: $id: removed" >&2; done; echo "postsuper: Deleted: 2 messages" >&2',
    )
    (command,) = removal_commands("postfix", ["4XkQ6e4GhI", "9F1E2D3C4B", "AAAAAA1234"])
    removal = run_removal([Command((postsuper, *command.argv[1:]), command.stdin, command.ids)])
    assert removal.removed == ("4XkQ6e4GhI", "9F1E2D3C4B", "AAAAAA1234") and removal.error == ""
    exim = script(
        tmp_path,
        "exim",
        'echo "Message $2 has been removed"; echo "Message $3 has been removed or did not exist"; exit 1',
    )
    commands = removal_commands(
        "exim",
        ["1tA2bC-000Xyz-AB", "1tA2bD-000Abc-CD", "1tA2bE-000Def-EF", "1tA2bF-000Ghi-GH"],
        exim=exim,
        chunk=2,
    )
    removal = run_removal(commands)
    assert removal.removed == ("1tA2bC-000Xyz-AB", "1tA2bD-000Abc-CD")  # the first command only
    assert removal.missing == ("1tA2bE-000Def-EF", "1tA2bF-000Ghi-GH")
    assert (
        removal.error
        == f"{exim} failed: Message 1tA2bD-000Abc-CD has been removed or did not exist"
    )
    gone = run_removal([Command(("/nonexistent/postsuper", "-d", "-"), "X\n", ("X",))])
    assert gone.removed == () and "command not found" in gone.error


# --- a real Postfix queue -------------------------------------------------------------------------


def ours(queue: Sequence[QueuedMessage], sent: set[str]) -> list[QueuedMessage]:
    """The messages of `queue` to the recipients the test sent to. A loaded machine's Postfix
    once queued one more message of its own (28 became 29, once 25 of 29 bounces): a notice
    of Postfix's is not the test's queue."""
    return [m for m in queue if set(m.recipients) <= sent and m.recipients]


@pytest.mark.slow
@pytest.mark.skipif(bool(postfix_missing()), reason=postfix_missing() or "ok")
def test_real_postfix_queue_backscatter_found_and_removed():
    """A queue filled over SMTP (no delivery is tried: defer_transports), read with postqueue -j,
    judged, and exactly the bounces removed with postsuper -d -."""
    settings = {
        "relayhost": "[127.0.0.2]",
        "defer_transports": "smtp",
        "mydestination": "blmtest.example",
    }
    with postfix(settings) as lab:
        with smtplib.SMTP(
            "127.0.0.1", lab.smtpd_port, local_hostname="client.test", timeout=10
        ) as smtp:
            for i in range(24):
                smtp.sendmail(
                    "",
                    [f"victim{i}@spoofed{i % 12}.test"],
                    f"Subject: Undelivered Mail {i}\n\nreturned\n",
                )
            for i in range(4):
                smtp.sendmail(
                    "alice@blmtest.example",
                    [f"friend{i}@example.net"],
                    f"Subject: hi {i}\n\nhello\n",
                )
        sent = {f"victim{i}@spoofed{i % 12}.test" for i in range(24)}
        sent |= {f"friend{i}@example.net" for i in range(4)}
        deadline = time.monotonic() + 20
        while (
            len(queue := ours(read_postfix_queue(config_dir=lab.conf), sent)) < 28
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        report = analyse_queue(
            queue, now=datetime.now(UTC), local_domains=["blmtest.example"], ndr_min_messages=20
        )
        assert [f.message for f in report.findings] == [
            "24 of 28 messages are bounces (null sender) to 24 external addresses in 12 domains: NDR attack?"
        ]
        ids = select_queue_ids(queue, finding=report.findings[0])
        assert len(ids) == 24 and all(
            m.sender == "MAILER-DAEMON" for m in queue if m.queue_id in ids
        )
        removal = run_removal(removal_commands("postfix", ids, config_dir=lab.conf))
        assert (
            sorted(removal.removed) == sorted(ids) and removal.error == "" and removal.missing == ()
        )
        left = ours(read_postfix_queue(config_dir=lab.conf), sent)
        assert sorted(m.sender for m in left) == ["alice@blmtest.example"] * 4
        assert (
            analyse_queue(left, now=datetime.now(UTC), local_domains=["blmtest.example"]).findings
            == ()
        )
        subprocess.run(
            ["postsuper", "-c", str(lab.conf), "-d", "ALL"], check=True, capture_output=True
        )
