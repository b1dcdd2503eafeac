"""Log analysis: the Postfix and Exim samples of tests/data/diagnose, scenarios the tests write in
both formats (a compromised account, an infected PC, a web script, rejections), rotated and
compressed files, and the log of a real Postfix on loopback."""

from __future__ import annotations

import gzip
import json
import os
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from blmonitor.causes.logs import (
    FindingKind,
    LogError,
    LogThresholds,
    analyse_log,
    analyse_log_files,
    log_files,
    log_report_json,
    read_log_lines,
    render_log_report,
)
from tests.postfixlab import postfix_missing
from tests.test_relaytest import postfix  # the lab, with settings applied before it starts

DATA = Path(__file__).parent / "data" / "diagnose"
REFERENCE = datetime(2024, 11, 6, 12, 0)
DAY = datetime(2024, 11, 5)


def h(hour: int) -> datetime:
    return DAY + timedelta(hours=hour)


# --- the samples ----------------------------------------------------------------------------------

SAMPLES = {
    "postfix-mail.log": {
        "hours": [(h(9), 1, 2, 2, 1, 1, 0), (h(10), 3, 4, 4, 3, 1, 1), (h(11), 0, 0, 1, 1, 0, 0)],
        "users": [(h(9), "admin@example.com", 1, 3, 3, 0)],
        "clients": [(h(9), "198.51.100.23", 1, 3, 3, 1), (h(10), "10.0.0.23", 1, 2, 2, 0),
                    (h(10), "127.0.0.1", 1, 1, 1, 0), (h(10), "local (uid 33)", 1, 1, 1, 0)],
        "lines": 21,
    },
    "exim-mainlog": {
        "hours": [(h(9), 1, 2, 2, 1, 1, 0), (h(10), 2, 5, 5, 3, 1, 1), (h(11), 1, 1, 2, 1, 0, 0)],
        "users": [(h(9), "admin@example.com", 1, 3, 2, 0), (h(11), "bob@example.com", 1, 1, 1, 0)],
        "clients": [(h(9), "198.51.100.23", 1, 3, 2, 1), (h(10), "10.0.0.23", 1, 2, 2, 0),
                    (h(10), "local (www-data)", 1, 2, 1, 0), (h(11), "192.0.2.10", 1, 1, 1, 1)],
        "lines": 18,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", SAMPLES)
def test_samples(name):
    expected = SAMPLES[name]
    report = analyse_log((DATA / name).read_text().splitlines(), reference=REFERENCE)
    fields = ("hour", "messages", "outbound", "attempts", "rejected", "blocklisted", "bounces")
    assert [tuple(getattr(v, f) for f in fields) for v in report.hours] == expected["hours"]
    row = ("hour", "sender", "messages", "recipients", "domains", "authenticated")
    assert [tuple(getattr(r, f) for f in row) for r in report.users] == expected["users"]
    assert [tuple(getattr(r, f) for f in row) for r in report.clients] == expected["clients"]
    assert report.lines == expected["lines"] and report.undated == 0
    assert report.lists == (("zen.spamhaus.org", 1), ("microsoft-s3150", 1))
    assert report.reputation == 2  # Gmail's "unsolicited mail originating from your IP", twice
    assert (report.first, report.last) == (
        datetime(2024, 11, 5, 9, 58, 2),
        datetime(2024, 11, 5, 11, 20, 32) if "exim" in name else datetime(2024, 11, 5, 11, 5),
    )
    assert [f.message for f in report.findings] == [
        "2 of 5 remote rejections name a blocklist: zen.spamhaus.org (1), microsoft-s3150 (1): we are listed there"
    ]


def test_local_domains_are_not_domains_reached():
    report = analyse_log(
        (DATA / "postfix-mail.log").read_text().splitlines(),
        reference=REFERENCE,
        local_domains=["Example.COM"],
    )
    assert [(r.sender, r.recipients, r.domains) for r in report.users] == [
        ("admin@example.com", 3, 2)
    ]


# --- scenarios, written in both formats -----------------------------------------------------------


@dataclass
class Msg:
    when: datetime
    sender: str
    rcpts: list[str]
    user: str = ""  # SASL login
    client: str = "198.51.100.23"  # "" for a local submission (uid 33 / www-data)
    status: str = "sent"
    said: str = ""


SPAMHAUS = "554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.5"
GMAIL = "421-4.7.0 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail originating from your IP address. 421 4.7.0 https://support.google.com/mail/answer/81126"


def postfix_lines(msgs: list[Msg]) -> list[str]:
    out: list[str] = []
    for n, m in enumerate(msgs):
        ts = f"{m.when:%b} {m.when.day:2d} {m.when:%H:%M:%S}"
        qid = f"4Xk{n:07X}"
        if m.client:
            sasl = f", sasl_method=LOGIN, sasl_username={m.user}" if m.user else ""
            out.append(
                f"{ts} mail postfix/submission/smtpd[100]: {qid}: client=host{n}.example[{m.client}]{sasl}"
            )
        else:
            out.append(f"{ts} mail postfix/pickup[99]: {qid}: uid=33 from=<www-data>")
        out.append(
            f"{ts} mail postfix/qmgr[101]: {qid}: from=<{m.sender}>, size=1000, nrcpt={len(m.rcpts)} (queue active)"
        )
        for r in m.rcpts:
            relay = (
                "gmail-smtp-in.l.google.com[142.250.27.27]"
                if "gmail" in r
                else "mx.example.net[198.51.100.25]"
            )
            dsn = {"sent": "2.0.0", "bounced": "5.7.1", "deferred": "4.7.0"}[m.status]
            text = (
                f"host {relay} said: {m.said} (in reply to RCPT TO command)"
                if m.said
                else "250 2.0.0 Ok"
            )
            out.append(
                f"{ts} mail postfix/smtp[102]: {qid}: to=<{r}>, relay={relay}:25, delay=1, delays=0/0/0.5/0.5, dsn={dsn}, status={m.status} ({text})"
            )
        if m.status != "deferred":
            out.append(f"{ts} mail postfix/qmgr[101]: {qid}: removed")
    return out


def exim_lines(msgs: list[Msg]) -> list[str]:
    out: list[str] = []
    for n, m in enumerate(msgs):
        ts = f"{m.when:%Y-%m-%d %H:%M:%S}"
        mid = f"1t{n:04X}-{n:06d}-AB"
        auth = f" A=dovecot_login:{m.user}" if m.user else ""
        origin = f"H=(pc) [{m.client}]:50000 P=esmtpsa{auth}" if m.client else "U=www-data P=local"
        out.append(f"{ts} {mid} <= {m.sender} {origin} S=1000")
        for i, r in enumerate(m.rcpts):
            host = (
                "gmail-smtp-in.l.google.com [142.250.27.27]"
                if "gmail" in r
                else "mx.example.net [198.51.100.25]"
            )
            if m.status == "sent":
                out.append(
                    f'{ts} {mid} {"=>" if i == 0 else "->"} {r} R=dnslookup T=remote_smtp H={host} C="250 OK"'
                )
            elif m.status == "bounced":
                out.append(
                    f"{ts} {mid} ** {r} R=dnslookup T=remote_smtp H={host}: SMTP error from remote mail server after RCPT TO:<{r}>: {m.said}"
                )
            else:
                out.append(
                    f"{ts} {mid} == {r} R=dnslookup T=remote_smtp defer (-44) H={host}: SMTP error from remote mail server after RCPT TO:<{r}>: {m.said}"
                )
        if m.status != "deferred":
            out.append(f"{ts} {mid} Completed")
    return out


def every_hour(count: int, **fields: str) -> list[Msg]:
    """`count` messages in each hour of the day, each to one of three domains."""
    domains = ("example.net", "example.org", "example.com")
    return [Msg(h(hour) + timedelta(minutes=i), rcpts=[f"r{i}@{domains[i % 3]}"], **fields)
            for hour in range(24) for i in range(count)]  # fmt: skip


def burst(hour: int, count: int, domains: int, **fields: str) -> list[Msg]:
    return [Msg(h(hour) + timedelta(seconds=5 * i), rcpts=[f"v{i}@d{i % domains}.example"], **fields)
            for i in range(count)]  # fmt: skip


def in_order(*groups: list[Msg]) -> list[Msg]:
    return sorted((m for g in groups for m in g), key=lambda m: m.when)


ADMIN = {"user": "admin@example.com", "sender": "admin@example.com"}
BOB = {"user": "bob@example.com", "sender": "bob@example.com", "client": "192.0.2.10"}

SCENARIOS = {
    "compromised-account": (
        in_order(every_hour(12, **ADMIN), every_hour(2, **BOB), burst(10, 400, 150, **ADMIN)),
        [
            "compromised-account: sasl user admin@example.com sent 412 messages to 153 domains in one hour (2024-11-05 10:00; median 12/h): compromised account?",
            "volume-spike: outbound volume spike: 414 recipients in one hour (2024-11-05 10:00), 30× the median of 14/h",
        ],
    ),
    "infected-pc": (
        in_order(every_hour(5, **BOB), burst(3, 300, 100, sender="invoice@paypal.example", client="10.0.0.23")),
        [
            "busy-client: client 10.0.0.23 sent 300 messages without authentication to 100 domains in one hour (2024-11-05 03:00; median 0/h): an infected machine in mynetworks, or an open relay?",
            "volume-spike: outbound volume spike: 305 recipients in one hour (2024-11-05 03:00), 61× the median of 5/h",
        ],
    ),
    "web-script": (
        in_order(every_hour(5, **BOB), burst(5, 250, 60, sender="www-data@example.com", client="")),
        [
            "busy-client: local submission ({local}) sent 250 messages to 60 domains in one hour (2024-11-05 05:00; median 0/h): a compromised web script or account?",
            "volume-spike: outbound volume spike: 255 recipients in one hour (2024-11-05 05:00), 51× the median of 5/h",
        ],
    ),
    "content-filter-reinjection": (
        in_order(burst(7, 150, 50, sender="news@example.com", client="127.0.0.1")),
        [],  # the server's own loopback client is never called infected; one hour: no median
    ),
    "rejections": (
        in_order(every_hour(2, **BOB),
                 burst(9, 30, 1, **ADMIN, status="deferred", said=GMAIL),
                 burst(10, 10, 10, **ADMIN, status="bounced", said=SPAMHAUS)),
        [
            "blocklisted: 10 of 40 remote rejections name a blocklist: zen.spamhaus.org (10): we are listed there",
            "rejections: 40 of 88 remote delivery attempts (45%) were rejected or deferred (10 name a blocklist; 30 are reputation blocks)",
        ],
    ),
    "quiet": (in_order(every_hour(12, **ADMIN), every_hour(3, **BOB)), []),
}  # fmt: skip
FORMATS = {"postfix": (postfix_lines, "uid 33"), "exim": (exim_lines, "www-data")}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenarios(scenario, fmt):
    msgs, expected = SCENARIOS[scenario]
    write, local = FORMATS[fmt]
    report = analyse_log(write(msgs), reference=REFERENCE)
    assert [f"{f.kind.value}: {f.message}" for f in report.findings] == [
        e.format(local=local) for e in expected
    ]


def test_rejections_use_gmail_hosts():
    """The scenario's Gmail deferrals go to gmail recipients, as Gmail's rule wants its own host."""
    msgs = burst(9, 3, 1, **ADMIN, status="deferred", said=GMAIL)
    for m in msgs:
        m.rcpts = ["x@gmail.com"]
    assert analyse_log(postfix_lines(msgs), reference=REFERENCE).reputation == 3


@pytest.mark.parametrize(
    ("limits", "kinds"),
    [
        (LogThresholds(), ["compromised-account", "volume-spike"]),
        (LogThresholds(user_min_messages=413), ["volume-spike"]),
        (LogThresholds(user_min_domains=154), ["volume-spike"]),
        (LogThresholds(spike_factor=34), ["compromised-account"]),  # 412 ≥ 34×12, 414 < 34×14
        (LogThresholds(volume_min=415), ["compromised-account"]),
    ],
)
def test_thresholds(limits, kinds):
    msgs, _ = SCENARIOS["compromised-account"]
    report = analyse_log(postfix_lines(msgs), reference=REFERENCE, thresholds=limits)
    assert [f.kind.value for f in report.findings] == kinds


def test_a_finding_names_its_subject_hour_and_count():
    msgs, _ = SCENARIOS["compromised-account"]
    finding = analyse_log(exim_lines(msgs), reference=REFERENCE).findings[0]
    assert (finding.kind, finding.subject, finding.hour, finding.count) == (
        FindingKind.COMPROMISED_ACCOUNT,
        "admin@example.com",
        h(10),
        412,
    )


def test_retries_count_as_attempts_not_as_new_recipients():
    first = Msg(
        h(1),
        "a@example.com",
        ["x@example.net"],
        user="a@example.com",
        status="deferred",
        said="451 4.3.0 try later",
    )
    lines = postfix_lines([first])
    retry = lines[-1].replace("Nov  5 01:00:00", "Nov  5 02:00:00")
    report = analyse_log(
        [*lines, retry, retry.replace("02:00:00", "03:00:00")], reference=REFERENCE
    )
    assert [(v.outbound, v.attempts, v.rejected) for v in report.hours] == [
        (1, 1, 1),
        (0, 1, 1),
        (0, 1, 1),
    ]
    assert [(r.recipients, r.domains) for r in report.users] == [(1, 1)]


@pytest.mark.parametrize(
    ("line", "reference", "when"),
    [
        (
            "Dec 31 23:59:59 mail postfix/pickup[1]: 4Xk0000001: uid=33 from=<w>",
            datetime(2025, 1, 1, 0, 5),
            datetime(2024, 12, 31, 23, 59, 59),
        ),
        (
            "Jan  1 00:00:01 mail postfix/pickup[1]: 4Xk0000001: uid=33 from=<w>",
            datetime(2025, 1, 1, 0, 5),
            datetime(2025, 1, 1, 0, 0, 1),
        ),
        (
            "Nov  6 12:30:00 mail postfix/pickup[1]: 4Xk0000001: uid=33 from=<w>",
            datetime(2024, 11, 6, 12, 0),
            datetime(2024, 11, 6, 12, 30),
        ),  # a little past: same year
        (
            "Feb 29 10:00:00 mail postfix/pickup[1]: 4Xk0000001: uid=33 from=<w>",
            datetime(2025, 3, 1),
            datetime(2024, 2, 29, 10, 0),
        ),
        (
            "2024-11-05T10:31:42.120211+01:00 mail postfix/pickup[1]: 4Xk0000001: uid=33 from=<w>",
            None,
            datetime(2024, 11, 5, 10, 31, 42, 120211),
        ),
        (
            "2024-11-05 10:31:42 1tA2bF-000Ghi-GH <= w@example.com U=www-data P=local S=900",
            None,
            datetime(2024, 11, 5, 10, 31, 42),
        ),
        (
            "2024-11-05 10:31:42 +0100 1tA2bF-000Ghi-GH <= w@example.com U=www-data P=local S=900",
            None,
            datetime(2024, 11, 5, 10, 31, 42),
        ),
        (
            "2024-11-05 10:31:42 [12345] 1tA2bF-000Ghi-GH <= w@example.com U=www-data P=local S=900",
            None,
            datetime(2024, 11, 5, 10, 31, 42),
        ),
    ],
)
def test_dates(line, reference, when):
    report = analyse_log([line], reference=reference)
    assert (report.first, report.undated, report.hours[0].messages) == (when, 0, 1)


def test_syslog_lines_need_a_reference_and_since_skips():
    lines = postfix_lines(every_hour(1, **BOB))
    report = analyse_log(lines)
    assert (report.lines, report.undated, report.hours) == (0, len(lines), ())
    assert render_log_report(report) == "LOG: no mail lines found\n"
    late = analyse_log(lines, reference=REFERENCE, since=h(20))
    assert [v.hour for v in late.hours] == [h(20), h(21), h(22), h(23)]


def test_a_relay_transport_rejection_is_attributed_from_its_text():
    """postfix/relay is the smtp client under another name: outbound, and its text is read."""
    line = (
        "Nov  5 10:00:00 mail postfix/relay[7]: 4Xk0000001: to=<bob@example.org>, relay=smarthost.example.net[198.51.100.7]:587,"
        f" delay=1, delays=0/0/0.5/0.5, dsn=5.7.1, status=bounced (host smarthost.example.net[198.51.100.7] said: {SPAMHAUS} (in reply to RCPT TO command))"
    )
    report = analyse_log([line], reference=REFERENCE)
    assert (report.attempts, report.rejected, report.blocklisted, report.lists) == (
        1,
        1,
        1,
        (("zen.spamhaus.org", 1),),
    )


def test_lines_that_are_not_mail_are_ignored():
    noise = [
        "Nov  5 10:00:00 mail postfix/smtpd[1]: connect from unknown[192.0.2.1]",
        "Nov  5 10:00:00 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 Relay access denied",
        "Nov  5 10:00:00 mail dovecot: imap-login: Login: user=<a@example.com>",
        "Nov  5 10:00:00 mail postfix/smtpd[1]: " + "x" * 9000,
        "2024-11-05 10:00:00 H=(spammer) [192.0.2.99] F=<s@x.invalid> rejected RCPT <x@y.invalid>: relay not permitted",
        "",
    ]
    report = analyse_log(noise, reference=REFERENCE)
    assert (report.lines, report.undated, report.findings) == (0, 0, ())


# --- rendering ------------------------------------------------------------------------------------


def test_text_and_json():
    msgs, _ = SCENARIOS["compromised-account"]
    report = analyse_log(postfix_lines(msgs), reference=REFERENCE)
    text = render_log_report(report)
    assert text.splitlines() == [
        "LOG: 2024-11-05 00:00 – 2024-11-05 23:00: 736 messages accepted, 736 recipients sent out; 0 of 736 remote attempts rejected or deferred (0%), 0 naming a blocklist",
        "  busiest SASL users (peak hour): admin@example.com 412/h to 153 domains, bob@example.com 2/h to 2 domains",
        "  busiest clients (peak hour): 198.51.100.23 412/h to 153 domains, 192.0.2.10 2/h to 2 domains",
        "  compromised-account: sasl user admin@example.com sent 412 messages to 153 domains in one hour (2024-11-05 10:00; median 12/h): compromised account?",
        "  volume-spike: outbound volume spike: 414 recipients in one hour (2024-11-05 10:00), 30× the median of 14/h",
    ]
    data = log_report_json(report)
    assert json.loads(json.dumps(data)) == data
    assert data["hours"][10] == {
        "hour": "2024-11-05T10:00:00",
        "messages": 414,
        "outbound": 414,
        "attempts": 414,
        "rejected": 0,
        "blocklisted": 0,
        "bounces": 0,
    }
    assert data["findings"][0] == {
        "kind": "compromised-account",
        "message": report.findings[0].message,
        "subject": "admin@example.com",
        "hour": "2024-11-05T10:00:00",
        "count": 412,
    }
    assert data["users"][0] == {
        "hour": "2024-11-05T00:00:00",
        "sender": "admin@example.com",
        "messages": 12,
        "recipients": 12,
        "domains": 3,
        "authenticated": 0,
    }


# --- files: rotated, compressed -------------------------------------------------------------------


def write_rotations(folder: Path, lines: list[str]) -> None:
    """mail.log and four rotations of it, each a quarter of `lines`, oldest in the dated file."""
    quarter = len(lines) // 5
    parts = [lines[i * quarter : (i + 1) * quarter] for i in range(4)] + [lines[4 * quarter :]]
    names = ["mail.log-20241101.gz", "mail.log.3.gz", "mail.log.2.gz", "mail.log.1", "mail.log"]
    for name, part in zip(names, parts, strict=True):
        text = "".join(f"{line}\n" for line in part)
        if name.endswith(".gz"):
            with gzip.open(folder / name, "wt") as handle:
                handle.write(text)
        else:
            (folder / name).write_text(text)
    (folder / "mail.log.bak").write_text("not a rotation\n")
    (folder / "mail.logger").write_text("not a rotation\n")


def test_rotated_and_compressed_files_in_time_order(tmp_path):
    msgs, expected = SCENARIOS["compromised-account"]
    lines = postfix_lines(msgs)
    write_rotations(tmp_path, lines)
    files = log_files(tmp_path / "mail.log")
    assert [p.name for p in files] == [
        "mail.log-20241101.gz",
        "mail.log.3.gz",
        "mail.log.2.gz",
        "mail.log.1",
        "mail.log",
    ]
    assert [line.rstrip("\n") for line in read_log_lines(files)] == lines
    stamp = REFERENCE.timestamp()
    for p in files:
        os.utime(p, (stamp, stamp))
    report = analyse_log_files(tmp_path / "mail.log")  # the year comes from the files' mtime
    assert [f"{f.kind.value}: {f.message}" for f in report.findings] == expected
    assert analyse_log_files([tmp_path / "mail.log.1"], reference=REFERENCE).lines > 0


def test_numbered_rotations_sort_numerically(tmp_path):
    for name in ["mail.log", "mail.log.1", "mail.log.2.gz", "mail.log.10.gz", "mail.log.9"]:
        (tmp_path / name).write_bytes(gzip.compress(b"x\n") if name.endswith(".gz") else b"x\n")
    assert [p.name for p in log_files(tmp_path / "mail.log")] == [
        "mail.log.10.gz",
        "mail.log.9",
        "mail.log.2.gz",
        "mail.log.1",
        "mail.log",
    ]
    (tmp_path / "mail.log").unlink()  # rotated away just now: the rotations still count
    assert log_files(tmp_path / "mail.log")[-1].name == "mail.log.1"


def test_file_errors_are_one_line(tmp_path):
    with pytest.raises(
        LogError, match=rf"^{tmp_path}/mainlog: no such log file \(nor any rotation of it\)$"
    ):
        log_files(tmp_path / "mainlog")
    (tmp_path / "mainlog.1.gz").write_bytes(b"this is not gzip")
    with pytest.raises(LogError, match=r"mainlog.1.gz: not a readable gzip file"):
        list(read_log_lines([tmp_path / "mainlog.1.gz"]))
    (tmp_path / "mainlog.2.gz").write_bytes(gzip.compress(b"line\n" * 100)[:-12])
    with pytest.raises(LogError, match=r"mainlog.2.gz: not a readable gzip file"):
        list(read_log_lines([tmp_path / "mainlog.2.gz"]))
    with pytest.raises(LogError, match=r"mainlog.7: cannot read it: No such file or directory"):
        list(read_log_lines([tmp_path / "mainlog.7"]))
    with pytest.raises(LogError, match=r"cannot read the mail log: No such file or directory"):
        analyse_log_files([tmp_path / "mainlog.7"])


# --- a real Postfix's log -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(bool(postfix_missing()), reason=postfix_missing() or "ok")
def test_real_postfix_log():
    """Postfix 3.x's own lines (through postlogd) are read: messages per client, recipients."""
    with postfix({"relayhost": "[127.0.0.2]", "defer_transports": "smtp"}) as lab:
        with smtplib.SMTP(
            "127.0.0.1", lab.smtpd_port, local_hostname="client.test", timeout=10
        ) as smtp:
            for i in range(5):
                smtp.sendmail(
                    "alice@blmtest.example",
                    [f"a{i}@one.test", f"b{i}@two.test"],
                    f"Subject: {i}\n\nx\n",
                )
        text = lab.wait_log(r"(?s)(status=deferred.*){10}")
        report = analyse_log_files([lab.maillog])
    assert [(r.sender, r.messages, r.recipients, r.domains) for r in report.clients] == [
        ("127.0.0.1", 5, 10, 2)
    ]
    assert sum(v.messages for v in report.hours) == 5 and report.attempts == 0  # nothing went out
    assert report.findings == () and "postfix/qmgr" in text
