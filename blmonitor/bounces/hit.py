"""A recipient as a reader of returned messages found it (`Hit`), and the small text helpers
that every reader shares (RFC 3464 fields and the detectors alike): folding white space, the
'type;' prefix of DSN fields, addresses and dates. Pure.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

_SMTP_TYPE = re.compile(r"^\s*(?:smtp|x-[\w-]+|dns|rfc822|x-unix)\s*;\s*", re.IGNORECASE)
_MAILTO = re.compile(r"<mailto:[^>]*>$")


@dataclass
class Hit:
    """A recipient as one detector read it, before it becomes a BounceRecord."""

    recipient: str
    action: str = ""
    status: str = ""
    reply_code: str = ""
    date: datetime | None = None
    remote_mta: str = ""
    diagnostic: str = ""
    command: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    fills: bool = True  # may complete a DSN's record of the same recipient (`extract._fill`)


def one_line(text: str) -> str:
    return " ".join(text.split())


def strip_type(value: str) -> str:
    """'dns; mx.example.jp' → 'mx.example.jp', 'rfc822; a@b' → 'a@b', 'smtp; 550 …' → '550 …'."""
    return _SMTP_TYPE.sub("", one_line(value), count=1).strip()


def clean_addr(value: str) -> str:
    value = strip_type(value).strip().strip("<>").strip()
    if "<mailto:" in value:
        value = _MAILTO.sub("", value)
    return value.strip("<>\"' ")


def parse_date(value: str) -> datetime | None:
    return _parsed_date(value) if value else None


@functools.lru_cache(maxsize=256)
def _parsed_date(value: str) -> datetime | None:
    """(A datetime is immutable, and the same dates come back: a per-message Arrival-Date for
    each recipient, a Date header and the Last-Attempt-Date of the same minute.)"""
    try:
        return parsedate_to_datetime(one_line(value).split(" (")[0])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
