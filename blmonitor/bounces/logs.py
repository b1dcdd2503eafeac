"""MTA log lines (Postfix, Exim, Sendmail) → a BounceRecord for each bounced or deferred delivery.

Pure: one line in, one record (or None) out. Classic syslog lines carry no year, so their date
is None unless the caller passes `year`; ISO timestamps (RFC 5424, Exim) are used as they are.
"""

from __future__ import annotations

import re
from datetime import datetime

from blmonitor.bounces.models import BounceRecord
from blmonitor.bounces.smtp import log_reply_code_of, status_of

__all__ = ["MONTHS", "log_date", "parse_log_line"]

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_SYSLOG = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d) ")
_ISO = re.compile(
    r"^(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?: ?(?:Z|[+-]\d\d:?\d\d))?) "
)

_POSTFIX = re.compile(
    r"postfix(?:/[\w.-]+)*/(?:smtp|lmtp|local|virtual|pipe|error|discard)\[\d+\]: "
    r"\w+: to=<(?P<rcpt>[^>]*)>,.*? relay=(?P<relay>[^,]*),.*? dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), "
    r"status=(?P<status>bounced|deferred|undeliverable|expired) \((?P<text>.*)\)\s*$"
)
_POSTFIX_SAID = re.compile(r"host (?P<host>\S+?)\[[^\]]*\] said: (?P<diag>.*)$")
_IN_REPLY = re.compile(r"\s*\(in reply to (?P<cmd>.+?) command\)\s*$")

_EXIM = re.compile(
    r"\b\w{6}-\w{6,11}-\w{2,4} (?P<flag>\*\*|==) (?P<rcpt>\S+)(?: <[^>]*>)?"
    r"(?: [RT]=\S+)*(?: defer \(-?\d+\))?(?:: | (?P<rest>.*)$|$)(?P<tail>.*)$"
)
_EXIM_HOST = re.compile(r"\bH=(?P<host>\S+)(?: \[[^\]]*\])?")
_EXIM_SMTP = re.compile(
    r"SMTP error from remote mail(?:er| server) after (?P<cmd>.+?):\s*"
    r"(?:host \S+ \[[^\]]*\]:\s*)?(?P<diag>[245]\d\d\b.*)$"
)

_SENDMAIL = re.compile(
    r"(?:sendmail|sm-mta)\[\d+\]: \w+: to=(?P<rcpt>[^,]+),"
    r".*? dsn=(?P<dsn>[45]\.\d{1,3}\.\d{1,3}), stat=(?P<stat>.*)$"
)

_RELAY = re.compile(r" relay=([^,]*),")
_COMMANDS = {"rcpt to": "RCPT", "mail from": "MAIL", "end of data": "DATA", "data": "DATA"}


def log_date(line: str, year: int | None) -> datetime | None:
    """The line's leading timestamp: an ISO one as written; a syslog one only given `year`."""
    if m := _ISO.match(line):
        try:
            return datetime.fromisoformat(m.group("iso").replace(" ", "T", 1).replace(" ", ""))
        except ValueError:
            return None
    if year is not None and (m := _SYSLOG.match(line)):
        try:
            h, mi, s = (int(x) for x in m.group("time").split(":"))
            return datetime(year, MONTHS[m.group("mon")], int(m.group("day")), h, mi, s)
        except (KeyError, ValueError):
            return None
    return None


def _command(text: str) -> str:
    t = text.strip().lower()
    for words, name in _COMMANDS.items():
        if t.startswith(words):
            return name
    if "initial connection" in t or "greeting" in t or t.startswith("connect"):
        return "CONN"
    return t.split(":")[0].split(" ")[0].upper() if t else ""


def _host(relay: str) -> str:
    """'mx.example.com[203.0.113.5]:25' → 'mx.example.com'; 'none' → ''."""
    host = relay.split("[")[0].strip().rstrip(".")
    return "" if host in ("none", "local") else host


def _first(pattern: re.Pattern[str], text: str) -> str:
    m = pattern.search(text)
    return m.group(1) if m else ""


def _postfix(m: re.Match[str], base: dict[str, object]) -> BounceRecord:
    text = m.group("text")
    command = ""
    if rm := _IN_REPLY.search(text):
        command = _command(rm.group("cmd"))
        text = text[: rm.start()]
    remote = _host(m.group("relay"))
    if sm := _POSTFIX_SAID.search(text):
        remote, diag = sm.group("host"), sm.group("diag")
    else:
        diag = text
        if re.match(r"connect to |lost connection .*greeting", text):
            command = "CONN"
    status = m.group("status")
    dsn = m.group("dsn")
    action = "delayed" if status == "deferred" or dsn.startswith("4") else "failed"
    return BounceRecord(
        recipient=m.group("rcpt"),
        action=action,
        status=dsn,
        reply_code=log_reply_code_of(diag),
        remote_mta=remote,
        diagnostic=diag.strip(),
        command=command,
        format="postfix-log",
        **base,  # type: ignore[arg-type]
    )


def _exim(m: re.Match[str], line: str, base: dict[str, object]) -> BounceRecord:
    tail = line[m.start("rcpt") :]
    diag, command = "", ""
    if sm := _EXIM_SMTP.search(tail):
        diag, command = sm.group("diag"), _command(sm.group("cmd"))
    else:
        diag = tail.split(": ", 1)[1] if ": " in tail else ""
    remote = ""
    if hm := _EXIM_HOST.search(tail):
        remote = hm.group("host").rstrip(":")
    elif hm := re.search(r"host (\S+) \[[^\]]*\]", tail):
        remote = hm.group(1)
    status = status_of(diag)
    reply = log_reply_code_of(diag)
    delayed = m.group("flag") == "==" or (reply or status or "5").startswith("4")
    return BounceRecord(
        recipient=m.group("rcpt"),
        action="delayed" if delayed else "failed",
        status=status,
        reply_code=reply,
        remote_mta=remote,
        diagnostic=diag.strip(),
        command=command,
        format="exim-log",
        **base,  # type: ignore[arg-type]
    )


def _sendmail(m: re.Match[str], base: dict[str, object]) -> BounceRecord:
    stat = m.group("stat").strip()
    diag = re.sub(r"^Deferred: ", "", stat)
    dsn = m.group("dsn")
    command = ""
    if "in reply to" in diag.lower():
        command = _command(diag.lower().rsplit("in reply to", 1)[1])
    return BounceRecord(
        recipient=m.group("rcpt").strip().strip("<>").split(",")[0],
        action="delayed" if dsn.startswith("4") else "failed",
        status=dsn,
        reply_code=log_reply_code_of(diag),
        remote_mta=_host(_first(_RELAY, m.group(0))),
        diagnostic=diag,
        command=command,
        format="sendmail-log",
        **base,  # type: ignore[arg-type]
    )


def parse_log_line(line: str, *, source: str = "", year: int | None = None) -> BounceRecord | None:
    """The bounce or deferral a Postfix, Exim or Sendmail log line reports, else None."""
    line = line.rstrip("\r\n")
    if len(line) > 8192:  # no MTA writes such lines; do not spend time on garbage
        return None
    base: dict[str, object] = {"date": log_date(line, year), "source": source}
    if "status=" in line and (m := _POSTFIX.search(line)):
        return _postfix(m, base)
    if ("**" in line or "==" in line) and (m := _EXIM.search(line)):
        return _exim(m, line, base)
    if "stat=" in line and (m := _SENDMAIL.search(line)):
        return _sendmail(m, base)
    return None
