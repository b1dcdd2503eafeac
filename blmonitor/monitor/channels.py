"""How blmonitor speaks, as [notify] says it [pure]: where notifications and pings go (apprise
URLs, the heartbeat URL, the name they give this server) and how often the digest goes. Each
check returns what is wrong ("" when nothing is) and never quotes a URL: apprise URLs hold
passwords and tokens, and a push URL's path is its secret. Light on purpose: config.py imports it.
"""

from __future__ import annotations

import enum
import re
from datetime import timedelta
from urllib.parse import urlsplit

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class Digest(enum.StrEnum):
    """[notify] digest: how often the summary is sent (`digest.py`)."""

    OFF = "off"
    DAILY = "daily"
    WEEKLY = "weekly"


PERIODS = {Digest.DAILY: timedelta(days=1), Digest.WEEKLY: timedelta(days=7)}


def notify_url_problem(url: str) -> str:
    """An apprise URL: what apprise itself refuses is found when the Notifier is built."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return "has no scheme:// (e.g. mailtos://, slack://, json://)"
    if scheme.end() == len(url) or any(c.isspace() for c in url):
        return "is empty after its scheme or holds spaces"
    return ""


def heartbeat_url_problem(url: str) -> str:
    """The heartbeat URL ("" means none): http or https, a host, a usable port, no spaces."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # "http://[::1", a port that is not a number or out of range
        usable = False
    if usable and not any(c.isspace() for c in url):
        return ""
    return (
        "expected an http:// or https:// URL without spaces "
        "(e.g. https://hc-ping.com/<uuid> or an Uptime Kuma push URL)"
    )


def server_name_problem(name: str) -> str:
    if any(c.isspace() or c in "/@:" for c in name):
        return f"{name!r} is not a host name (e.g. mx1.example.com)"
    return ""
