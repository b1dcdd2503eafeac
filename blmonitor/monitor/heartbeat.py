"""The heartbeat: after each run, a GET to [notify] heartbeat_url — a healthchecks.io check or
an Uptime Kuma push monitor — so that a monitor that stops running, or stops seeing, is
noticed by the service that waits for the ping. `ping_url` decides [pure]; `ping` is the HTTP
[adapter] (httpx) and never raises.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

PING_TIMEOUT = 10.0  # seconds: a ping that takes longer is a failed ping, not a slow run
_KUMA_MESSAGE = 200  # characters of the reason an Uptime Kuma push carries


def ping_url(url: str, *, blind: str = "") -> str | None:
    """What to GET after a run: `url` after a run that saw. After a blind run (`blind` is why),
    the service's own failure signal where it has one — healthchecks.io (hc-ping.com, or a
    self-hosted `/ping/` URL): `<url>/fail`; Uptime Kuma (`/api/push/`): `status=down` with the
    reason as `msg` — else None: no ping, and the service alerts when its grace time ends."""
    if not blind:
        return url
    parts = urlsplit(url)
    if parts.hostname == "hc-ping.com" or parts.path.startswith("/ping/"):
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))
    if "/api/push/" in parts.path:
        query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
                 if key not in ("status", "msg")]  # fmt: skip
        query += [("status", "down"), ("msg", blind[:_KUMA_MESSAGE])]
        return urlunsplit(parts._replace(query=urlencode(query)))
    return None


def ping(url: str, *, timeout: float = PING_TIMEOUT) -> str:
    """GET `url`: "" when it answered (2xx, after redirects), else why not, in one line that
    never quotes the URL (its path is the check's secret)."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            response = client.get(url, headers={"User-Agent": "blmonitor"})
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is not an HTTPError
        return f"{type(exc).__name__}: {str(exc).replace(url, '<heartbeat_url>') or 'no detail'}"
    if not response.is_success:
        return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return ""
