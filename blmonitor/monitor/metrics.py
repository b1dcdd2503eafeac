"""The daemon's listener (`blmonitor run --listen HOST:PORT`): Prometheus metrics, the live
page, /healthz and /api/status — read-only, loopback unless a password guards it.

`render_metrics` is pure (state in, text exposition format 0.0.4 out); `serve_metrics` answers
from a daemon thread, and `store_renderer` reads the history database afresh on every scrape,
so the figures are those of the last committed run, whoever wrote it.
"""

from __future__ import annotations

import base64
import errno
import hmac
import ipaddress
import json
import logging
import math
import re
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from blmonitor.errors import BlmonitorError, UsageError
from blmonitor.monitor.state import MonitorState
from blmonitor.monitor.store import Store
from blmonitor.sources.models import Rating

if TYPE_CHECKING:
    from blmonitor.config import Config

log = logging.getLogger("blmonitor.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"
DEFAULT_HOST = "127.0.0.1"  # ":PORT" listens on loopback: exposing it is a deliberate choice
PREFIX = "blmonitor_"

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Family:
    """One metric family: every metric here is a gauge."""

    name: str
    help: str
    samples: tuple[tuple[Labels, float], ...]


# --- rendering (pure) ----------------------------------------------------------------------


def render_metrics(
    state: MonitorState,
    *,
    last_run: Mapping[str, Any] | None,
    pending_notifications: int,
    now: datetime,
    smarthost: Mapping[str, Any] | None = None,
    findings: int = 0,
) -> str:
    """The exposition text for one scrape; `last_run` is a row of the runs table (or None).

    Zones are shown by their label (`zen.spamhaus.org (DQS)`), never by the queried name,
    which holds a DQS key.
    """
    pairs = sorted(state.pairs.values(), key=lambda p: (p.target, p.label or p.zone))
    zones = sorted(state.zones.values(), key=lambda z: z.label or z.zone)
    families = [
        _Family(
            "listed",
            "1 if the target is listed on the zone (confirmed over `confirm` runs), else 0.",
            tuple(({"target": p.target, "zone": p.label or p.zone}, p.listed) for p in pairs),
        ),
        _Family(
            "listed_since_seconds",
            "Unix time the current listing began (listed pairs only).",
            tuple(
                ({"target": p.target, "zone": p.label or p.zone}, p.since.timestamp())
                for p in pairs
                if p.listed and p.since is not None
            ),
        ),
        _Family(
            "bounce_listed",
            "Listings known from returned mail: 1 while bounces keep naming the list.",
            tuple(
                ({"target": b.target, "list": b.list}, 1)
                for b in sorted(state.bounces.values(), key=lambda b: (b.target, b.list))
            ),
        ),
        _Family(
            "source_listed",
            "Listings a receiver's own data reports (SNDS blocked ranges): 1 while it shows them.",
            tuple(
                ({"source": s.label, "target": s.target, "list": s.listing.list}, 1)
                for s in sorted(state.sources.values(), key=lambda s: (s.label, s.target))
            ),
        ),
        _Family(
            "source_up",
            "1 if the receiver's data source (SNDS…) was read at its last poll, else 0.",
            tuple(
                ({"source": h.label or h.source}, h.usable)
                for h in sorted(state.source_health.values(), key=lambda h: h.source)
            ),
        ),
        _Family(
            "reputation",
            "The latest daily reputation a receiver's data gives: 0 good (SNDS GREEN), 1 fair, "
            "2 poor (YELLOW), 3 bad (RED or spam trap hits).",
            tuple(
                ({"source": h.label or h.source, "subject": subject}, _RATING[rating])
                for h in sorted(state.source_health.values(), key=lambda h: h.source)
                for subject, (_, rating, _) in sorted(h.ratings.items())
                if rating in _RATING
            ),
        ),
        _Family(
            "zone_usable",
            "1 if the zone passes its health check (confirmed), else 0; `health` says why.",
            tuple(({"zone": z.label or z.zone, "health": z.health}, z.usable) for z in zones),
        ),
        *_last_run_families(last_run, now),
        _Family(
            "notifications_pending",
            "Notifications stored but not delivered yet (retried on every run).",
            (({}, pending_notifications),),
        ),
        _Family(
            "smarthost_routed",
            "1 while outbound mail goes through the smart host (applied by blmonitor), else 0.",
            (({}, _routed(smarthost)),),
        ),
        _Family(
            "cause_findings",
            "Signs of a cause the last run found in the queue and the logs (blmonitor diagnose).",
            (({}, findings),),
        ),
        _Family(
            "checks_failing_runs",
            "Blind runs in a row: runs that saw nothing they could trust (a failing resolver, "
            "too few zones answering, no public IP).",
            (({}, state.failing_runs),),
        ),
    ]
    return _render(families)


_RATING = {Rating.GOOD: 0, Rating.FAIR: 1, Rating.POOR: 2, Rating.BAD: 3}


def _routed(action: Mapping[str, Any] | None) -> bool:
    return bool(action and action["action"] == "apply" and action["outcome"] == "done")


def _last_run_families(last_run: Mapping[str, Any] | None, now: datetime) -> list[_Family]:
    row = last_run or {}
    finished = _unix_time(row.get("finished"))

    def one(value: Any) -> tuple[tuple[Labels, float], ...]:
        return (({}, float(value)),) if isinstance(value, int | float) else ()

    return [
        _Family(
            "last_run_timestamp_seconds",
            "Unix time the last run finished.",
            one(finished),
        ),
        _Family(
            "last_run_age_seconds",
            "Seconds since the last run finished, at scrape time (a stalled daemon grows it).",
            one(None if finished is None else max(now.timestamp() - finished, 0.0)),
        ),
        _Family(
            "last_run_duration_seconds", "How long the last run took.", one(row.get("seconds"))
        ),
        _Family(
            "last_run_lookups",
            "(target, zone) lookups of the last run, skipped ones not counted.",
            one(row.get("lookups")),
        ),
        _Family(
            "last_run_errors",
            "Lookups of the last run without a trustworthy answer (timeouts, unusable zones).",
            one(row.get("errors")),
        ),
        _Family(
            "last_run_listed",
            "Lookups of the last run answered as listed (before confirmation).",
            one(row.get("listed")),
        ),
        _Family(
            "last_run_failed",
            "1 if the last run saw nothing it could trust (blind: the resolver down or refused, "
            "too few zones answering, no public IP), else 0.",
            one(None if last_run is None else bool(row.get("error"))),
        ),
    ]


def _unix_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # the store writes UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _render(families: Iterable[_Family]) -> str:
    lines = []
    for family in families:
        name = PREFIX + family.name
        lines.append(f"# HELP {name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {name} gauge")
        for labels, value in family.samples:
            lines.append(f"{name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items()) + "}"


def escape_label_value(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote, newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _up(ok: bool, why: str = "") -> str:
    comment = f"# {' '.join(why.split())}\n" if why else ""  # one line, whatever the error
    return (
        f"{comment}# HELP {PREFIX}up 1 if the history database could be read for this scrape.\n"
        f"# TYPE {PREFIX}up gauge\n{PREFIX}up {int(ok)}\n"
    )


# --- the history database as a source --------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def store_renderer(database: Path, *, clock: Callable[[], datetime] = _utcnow) -> Callable[[], str]:
    """A `render` for `serve_metrics`: opens the store per scrape, reads it, closes it.

    A database that is missing or unreadable gives a comment line and `blmonitor_up 0`, never
    an HTTP error, so Prometheus can alert on it; a missing one is not created by a scrape.
    """

    def render() -> str:
        if not database.exists():
            return _up(False, f"no history database at {database} yet: no run so far")
        try:
            store = Store(database)
            try:
                state = store.load_state()
                last_run = store.last_run()
                pending = len(store.pending_notifications())
                actions = store.smarthost_actions()
                applied = [a for a in actions if a["outcome"] in ("done", "requested")]
                smarthost = applied[0] if applied else None
                findings = len(store.load_causes().messages)
            finally:
                store.close()
        except Exception as exc:  # a scrape must answer, whatever broke
            why = str(exc)
            if not isinstance(exc, BlmonitorError):
                why = f"cannot read the history database {database}: {type(exc).__name__}: {why}"
            log.warning("metrics: %s", why)
            return _up(False, why)
        text = render_metrics(state, last_run=last_run, pending_notifications=pending,
                              now=clock(), smarthost=smarthost, findings=findings)  # fmt: skip
        return text + _up(True)

    return render


# --- the live routes: the page, health, status --------------------------------------------

# (HTTP status, content type, body) of one answer
Response = tuple[int, str, str]
Route = Callable[[], Response]
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
PAGE_REFRESH = 60  # seconds: the live page reloads itself (a meta refresh, no script)


def judge_liveness(last_run: Mapping[str, Any] | None, *, now: datetime, max_age: float) -> str:
    """Why the monitor is not healthy ("" when it is): no run yet, the last run blind, or the
    last run older than `max_age` seconds (the daemon stalled or died)."""
    if not last_run:
        return "no run recorded yet"
    if last_run.get("error"):
        return f"the last run was blind: {last_run['error']}"
    finished = _unix_time(last_run.get("finished"))
    if finished is None:
        return "the last run has no finishing time"
    age = now.timestamp() - finished
    if age > max_age:
        return f"the last run finished {int(age)} s ago, more than {int(max_age)} s"
    return ""


def live_routes(
    config: Callable[[], Config], *, clock: Callable[[], datetime] = _utcnow
) -> dict[str, Route]:
    """`/`, `/healthz` and `/api/status` for the daemon's listener; `config` is called per
    request, so a reload (SIGHUP) is seen. Each reads the history database read-only."""
    from blmonitor.monitor.page import cached_page
    from blmonitor.monitor.page_html import render_page
    from blmonitor.monitor.status import read_status, status_json

    page = cached_page(config, lambda p: render_page(p, refresh=PAGE_REFRESH), clock=clock)

    def home() -> Response:
        return 200, HTML, page()

    def healthz() -> Response:
        cfg = config()
        last = read_status(cfg).last_run
        why = judge_liveness(last, now=clock(),
                             max_age=2 * cfg.monitor.interval + cfg.monitor.jitter)  # fmt: skip
        return (503, TEXT, f"unhealthy: {why}\n") if why else (200, TEXT, "ok\n")

    def api_status() -> Response:
        document = status_json(read_status(config()))
        return 200, "application/json", json.dumps(document, indent=2, default=str) + "\n"

    return {"/": home, "/healthz": healthz, "/api/status": api_status}


def read_password(path: Path) -> str:
    """The listener's password: the first line of `path`."""
    from blmonitor.userfiles import UnreadableFile, read_text

    try:
        text = read_text(path, limit=4096)
    except FileNotFoundError:
        raise UsageError(f"listen password file {path}: no such file") from None
    except UnreadableFile as exc:
        raise UsageError(f"listen password file {path}: {exc}") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise UsageError(f"listen password file {path} is empty: put the password on line 1")
    return lines[0]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


# --- the HTTP adapter ----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    def __init__(
        self, address: tuple[str, int], routes: Mapping[str, Route], password: str | None
    ) -> None:
        self.routes = routes
        self.password = password
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "blmonitor"
    timeout = 30  # seconds: a client that opens a connection and sends nothing lets go of it

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _refuse(self) -> None:
        """Read-only: every other method is 405 (after the password, which is asked first)."""
        if self._authorized():
            self._send(405, TEXT, "read-only: only GET and HEAD\n", body=True,
                       headers={"Allow": "GET, HEAD"})  # fmt: skip

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _authorized(self) -> bool:
        password = self.server.password
        if password is None:
            return True
        kind, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            given = ""
        if kind.lower() == "basic" and hmac.compare_digest(given.encode(), password.encode()):
            return True
        challenge = {"WWW-Authenticate": 'Basic realm="blmonitor", charset="UTF-8"'}
        self._send(401, TEXT, "authentication required\n", body=True, headers=challenge)
        return False

    def _answer(self, *, body: bool) -> None:
        if not self._authorized():
            return
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            known = ", ".join(sorted(self.server.routes))
            self._send(404, TEXT, f"not found: try {known}\n", body=body)
            return
        try:
            status, kind, text = route()
        except Exception as exc:  # a broken renderer answers 500, the server lives on
            log.exception("listener: rendering %s failed", self.path)
            status, kind, text = 500, TEXT, f"error: {exc}\n"
        self._send(status, kind, text, body=body)

    def _send(
        self, status: int, kind: str, text: str, *, body: bool, headers: Mapping[str, str] = {}
    ) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("listener: %s %s", self.address_string(), format % args)


class MetricsServer:
    """A running listener; `close()` stops it and frees the port."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def address(self) -> tuple[str, int]:
        """The address actually bound (the real port when 0 was asked)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def base(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def url(self) -> str:
        return self.base + PATH

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_BIND_HINTS = {
    errno.EADDRINUSE: "another process listens there: choose another port",
    errno.EACCES: "ports below 1024 need root: choose a higher port",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address",
}


def serve_metrics(
    host: str,
    port: int,
    render: Callable[[], str],
    *,
    routes: Mapping[str, Route] = {},
    password: str | None = None,
) -> MetricsServer:
    """Serve GET /metrics (and `routes`) on HOST:PORT from a daemon thread; `render` runs once
    per scrape. An address other than loopback needs a password (HTTP basic auth)."""
    if password is None and not is_loopback(host):
        raise UsageError(
            f"listening on {host} needs a password: give --listen-password-file FILE "
            "(HTTP basic auth), or listen on 127.0.0.1"
        )

    def metrics() -> Response:
        return 200, CONTENT_TYPE, render()

    try:
        server = _Server((host, port), {**routes, PATH: metrics}, password)
    except OSError as exc:
        shown = f"[{host}]" if ":" in host else host
        hint = _BIND_HINTS.get(exc.errno or 0, "give another address with --listen HOST:PORT")
        raise UsageError(
            f"cannot serve metrics on {shown}:{port}: {exc.strerror or exc} ({hint})"
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name="blmonitor-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


def serve_live(
    host: str, port: int, config: Callable[[], Config], *, password: str | None = None
) -> MetricsServer:
    """The daemon's listener: the live page, /metrics, /healthz and /api/status."""
    database = config().monitor.database
    return serve_metrics(host, port, store_renderer(database), routes=live_routes(config),
                         password=password)  # fmt: skip


# --- the listen address --------------------------------------------------------------------

_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*",
    re.IGNORECASE,
)
_EXAMPLES = "e.g. 127.0.0.1:9810, [::1]:9810, or :9810 for 127.0.0.1"


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPV6]:PORT` or `:PORT` (loopback, not every interface) → (host, port)."""
    spec = text.strip()

    def fail(why: str) -> UsageError:
        return UsageError(f"metrics address {text!r}: {why} ({_EXAMPLES})")

    if "/" in spec:
        raise fail("give HOST:PORT, not a URL")
    if spec.startswith("["):
        host, bracket, rest = spec[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise fail("give a port after the bracketed IPv6 address")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise fail(f"{host!r} is not an IPv6 address") from None
        port_text = rest[1:]
    else:
        host, colon, port_text = spec.rpartition(":")
        if not colon:
            raise fail("give HOST:PORT")
        if ":" in host:
            raise fail("put an IPv6 address in brackets, [ADDRESS]:PORT")
        host = host or DEFAULT_HOST
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise fail(f"{host!r} is not an IPv4 address") from None
        elif not _HOSTNAME_RE.fullmatch(host):
            raise fail(f"{host!r} is not an address or a host name")
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
        raise fail(f"the port must be a number from 1 to 65535, not {port_text!r}")
    return host, int(port_text)
