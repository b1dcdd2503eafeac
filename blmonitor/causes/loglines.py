"""Mail log lines (Postfix, Exim) → the events the log analysis counts: a message accepted (from
which client, which SASL user), its envelope sender, one recipient's delivery attempt, the queue
id done; and each line's wall-clock time. Pure: one line in, one event (or None) out.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from blmonitor.bounces.logs import MONTHS, log_date

__all__ = ["LineEvent", "LineKind", "is_loopback", "line_time", "parse_line_event"]

_PF = r"postfix(?:/[\w.-]+)*/"
_PF_SMTPD = re.compile(_PF + r"smtpd\[\d+\]: (?P<qid>[0-9A-Za-z]+): client=(?P<client>[^,\s]+)")
_PF_PICKUP = re.compile(_PF + r"pickup\[\d+\]: (?P<qid>[0-9A-Za-z]+): uid=(?P<uid>\d+) from=<")
_PF_QMGR = re.compile(
    _PF + r"qmgr\[\d+\]: (?P<qid>[0-9A-Za-z]+): (?:from=<(?P<from>[^>]*)>|removed)"
)
_PF_DELIVERY = re.compile(
    _PF + r"(?P<svc>smtp|relay|lmtp|local|virtual|pipe|error|discard|retry)\[\d+\]: "
    r"(?P<qid>[0-9A-Za-z]+): to=<(?P<rcpt>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]*),"
    r".*? status=(?P<status>\w+)(?: \((?P<text>.*)\))?\s*$"
)
_SASL = re.compile(r"\bsasl_username=(?P<user>[^,\s]+)")
_EXIM = re.compile(
    r"(?:^|\s)(?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) "
    r"(?:(?P<flag><=|=>|->|\*\*|==) (?P<addr>\S*)(?P<rest>.*)|(?P<done>Completed))\s*$"
)
_EXIM_HOST_IP = re.compile(r"\bH=(?:[^\s\[]+ )?(?:\([^)]*\) )?\[(?P<ip>[0-9A-Fa-f:.]+)\]")
_EXIM_AUTH = re.compile(r"\bA=[\w.-]+:(?P<user>\S+)")
_EXIM_LOCAL_USER = re.compile(r"\bU=(?P<user>\S+)")
_EXIM_TRANSPORT = re.compile(r"\bT=(?P<t>\S+)")
_EXIM_TEXT = re.compile(r": (?P<text>.*)$")
_BRACKET_IP = re.compile(r"\[(?P<ip>[0-9A-Fa-f:.]+)\]")


class LineKind(enum.Enum):
    ARRIVAL = 1  # a message was accepted: client, SASL user, maybe sender
    SENDER = 2  # Postfix qmgr: the envelope sender of a queue id
    DELIVERY = 3  # one recipient's delivery attempt
    REMOVED = 4  # the queue id is done


@dataclass(slots=True)
class LineEvent:
    """What one mail log line says about one queue id (the fields its kind has)."""

    kind: LineKind
    queue_id: str
    client: str = ""
    user: str = ""
    sender: str | None = None
    recipient: str = ""
    status: str = ""  # sent | bounced | deferred | …
    remote: bool = False
    text: str = ""


@functools.lru_cache(maxsize=4096)
def is_loopback(ip: str) -> bool:
    """Whether `ip` is a loopback address (False for anything that is not an address)."""
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _client_ip(client: str) -> str:
    """'mail.example.com[203.0.113.9]:4567' → '203.0.113.9'."""
    m = _BRACKET_IP.search(client)
    return m["ip"] if m else client


def _postfix(line: str) -> LineEvent | None:
    if m := _PF_DELIVERY.search(line):
        ip = _client_ip(m["relay"]) if "[" in m["relay"] else ""
        remote = m["svc"] in ("smtp", "relay") and not is_loopback(ip)
        return LineEvent(LineKind.DELIVERY, m["qid"], recipient=m["rcpt"], status=m["status"],
                         remote=remote, text=m["text"] or "")  # fmt: skip
    if m := _PF_SMTPD.search(line):
        user = u["user"] if (u := _SASL.search(line)) else ""
        return LineEvent(LineKind.ARRIVAL, m["qid"], client=_client_ip(m["client"]), user=user)
    if m := _PF_QMGR.search(line):
        if m["from"] is None:
            return LineEvent(LineKind.REMOVED, m["qid"])
        return LineEvent(LineKind.SENDER, m["qid"], sender=m["from"])
    if m := _PF_PICKUP.search(line):
        return LineEvent(LineKind.ARRIVAL, m["qid"], client=f"local (uid {m['uid']})")
    return None


def _exim(line: str) -> LineEvent | None:
    m = _EXIM.search(line)
    if m is None:
        return None
    if m["done"]:
        return LineEvent(LineKind.REMOVED, m["id"])
    rest = m["rest"]
    if m["flag"] == "<=":
        host = _EXIM_HOST_IP.search(rest)
        sender = "" if m["addr"] in ("<>", "") else m["addr"]
        if host:
            client = host["ip"]
        elif sender == "" and " R=" in rest:
            client = ""  # a bounce Exim made itself: nobody sent it
        else:
            local = _EXIM_LOCAL_USER.search(rest)
            client = f"local ({local['user']})" if local else "local"
        auth = _EXIM_AUTH.search(rest)
        return LineEvent(LineKind.ARRIVAL, m["id"], client=client,
                         user=auth["user"] if auth else "", sender=sender)  # fmt: skip
    transport = t["t"] if (t := _EXIM_TRANSPORT.search(rest)) else ""
    host = _EXIM_HOST_IP.search(rest)
    remote = "lmtp" not in transport and (
        "smtp" in transport or (host is not None and not is_loopback(host["ip"]))
    )
    if host is not None and is_loopback(host["ip"]):
        remote = False
    status = {"=>": "sent", "->": "sent", "**": "bounced", "==": "deferred"}[m["flag"]]
    text = x["text"] if (x := _EXIM_TEXT.search(rest)) else ""
    return LineEvent(LineKind.DELIVERY, m["id"], recipient=m["addr"], status=status,
                     remote=remote, text=text)  # fmt: skip


def parse_line_event(line: str) -> LineEvent | None:
    """The event of a Postfix or Exim line, or None for any other line."""
    if "postfix/" in line:
        return _postfix(line)
    return _exim(line)


_MONTH_SET = frozenset(MONTHS)


def line_time(line: str, reference: datetime | None) -> datetime | None:
    """The line's wall-clock time; a syslog date gets `reference`'s year (or the one before)."""
    # Lines come many to a second: the date part is parsed once per distinct value.
    if line[3:4] == " " and line[:3] in _MONTH_SET:  # syslog: "Nov  5 10:00:01", 15 characters
        return _when_stamp(line[:15], reference)
    stamp = line.partition(" ")[0]
    if "T" in stamp:  # ISO 8601 in one word
        return _when_stamp(stamp, reference)
    return _when_line(line, reference)


@functools.lru_cache(maxsize=4096)
def _when_stamp(stamp: str, reference: datetime | None) -> datetime | None:
    return _when_line(stamp + " ", reference)


def _when_line(line: str, reference: datetime | None) -> datetime | None:
    when = log_date(line, None)
    if when is None and reference is not None:
        when = log_date(line, reference.year)
        # later than the log's end: last year's (or 29 February, seen from a common year)
        if when is None or when > reference.replace(tzinfo=None) + timedelta(days=1):
            when = log_date(line, reference.year - 1)
    return when.replace(tzinfo=None) if when is not None else None
