"""Tell people what changed: one plain-text message per batch of events, sent through apprise.

`render_batch` and `render_test_message` are pure (no clock, no socket, no apprise); `Notifier`
is the apprise adapter, imported lazily so that rendering never pays for apprise.

Severity rule. A message has the highest severity of its events. An *ending* event (delisted,
zone-recovered, checks-recovered) carries the severity of the episode it ends — the monitor
sets it so — hence a recovery reaches exactly the people who heard of the problem:
- `min_severity`: a message below it is not sent (`Delivery(ok=True, attempts=0, …)`); a batch
  that reaches it is sent whole, lower events included as context.
- severity tags in the apprise config name the *lowest* severity a service wants: `warning`
  gets warning and critical messages, `critical` only critical, `info` everything. A service
  with none of these tags (untagged, `always`, or only tags such as `chat`) gets every message
  that passes `min_severity`. URLs given directly (`urls`) are untagged.
- apprise type: critical → failure, warning → warning, info → info; a batch made only of
  endings (delisted, usable again, checking again) is good news: sent as success (green in
  chat apps), each ending marked `[resolved]`, and titled "all clean again: no listing left"
  when it ended the last listing. The test message goes as info.

Each message also carries its data (`Message.payload`: the server, the events with target,
zone, codes, severity, since, delist_url): json:// and jsons:// targets get it as a
`blmonitor` object beside apprise's own keys (through the plugin's payload extras, the
mechanism of apprise's `:key=value` URL option), so a webhook never has to parse the text.

Delivery never raises: each target gets up to `retries` attempts with exponential backoff
(2 s, 4 s, 8 s… by default, at most 5 min); a target that succeeded is not sent the message
again. apprise's `notify()` says only whether it worked: the reason is what apprise logged
while sending (warnings and errors, captured with `apprise.LogCapture`). Secrets never reach
our log lines, a `Delivery.error` or a ConfigError: `describe_target` names targets, and the
URL's secrets are masked in a captured reason.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from blmonitor.errors import ConfigError
from blmonitor.models import Event, EventKind, Severity

if TYPE_CHECKING:
    from apprise import NotifyType
    from apprise.plugins.base import NotifyBase

_log = logging.getLogger(__name__)

# Good news: a batch made only of these is sent as success ("digest-all-clear": digest.py).
ENDINGS = frozenset(
    {EventKind.DELISTED, EventKind.ZONE_RECOVERED, EventKind.CHECKS_RECOVERED, "smarthost-revert",
     "digest-all-clear", EventKind.SOURCE_RECOVERED, EventKind.REPUTATION_RECOVERED}
)  # fmt: skip
TEST_KIND = "test"
SEVERITY_TAGS = {s.label: s for s in Severity}

# Generic webhooks do not know which part of their path is a secret, so apprise's privacy
# mode shows it whole; there, a long path segment with a digit in it is masked.
GENERIC_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
_TOKEN_LIKE = re.compile(r"(?=.*\d)[^/]{16,}")
JSON_SCHEMES = frozenset({"json", "jsons"})
PAYLOAD_KEY = "blmonitor"  # the key of our data in a json:// body
ALL_CLEAR = "all clean again: no listing left"


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: what `Notifier.send` delivers and the caller stores on failure."""

    title: str
    body: str
    severity: Severity
    kinds: tuple[str, ...]  # distinct EventKind values (or "test"), in body order
    payload: Mapping[str, Any] = field(default_factory=dict)  # for webhooks: `render_payload`

    def queued(self) -> tuple[str, str, Severity, tuple[str, ...], Mapping[str, Any]]:
        """As the store keeps a notification to send."""
        return (self.title, self.body, self.severity, self.kinds, self.payload)


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending one message went. `ok` False means: store it and retry next run."""

    ok: bool
    attempts: int
    error: str = ""
    failed: tuple[str, ...] = ()  # the targets (as `describe_target` names them) still owed


# ---------------------------------------------------------------------------------------------
# Rendering [pure]


def render_batch(
    events: Sequence[Event],
    *,
    host: str,
    title_prefix: str = "[blmonitor]",
    all_clear: bool = False,
) -> Message:
    """One message for a batch of events: the worst event in the title, every event in the body.

    Events are listed worst first (severity, then problems before endings, then batch order).
    `all_clear`: no listing is left once these events are applied (the caller knows the
    state); a batch that ends the last one says so in its title and first line.
    """
    if not events:
        raise ValueError("render_batch needs at least one event")
    ordered = sorted(events, key=_rank)
    more = len(ordered) - 1
    headline = _headline(ordered[0])
    if more:
        headline += f" (+{more} more change{'s' if more > 1 else ''})"
    good_news = all(event.kind in ENDINGS for event in ordered)
    cleared = all_clear and any(event.kind is EventKind.DELISTED for event in ordered)
    if cleared:  # the news an admin waits for leads when all is good news, else it follows
        headline = f"{ALL_CLEAR} ({headline})" if good_news else f"{headline}; {ALL_CLEAR}"
    title = f"{title_prefix} {host}: {headline}"
    blocks = ["\n".join(_describe(event)) for event in ordered]
    if cleared:
        blocks.insert(0, f"{ALL_CLEAR}: every listing blmonitor knew of has ended.")
    body = "\n\n".join([*blocks, f"-- \nblmonitor on {host}"])
    kinds = tuple(dict.fromkeys(str(event.kind) for event in ordered))
    severity = max(event.severity for event in events)
    payload = render_payload(host, kinds, severity, ordered, all_clear=cleared)
    return Message(title, body, severity, kinds, payload)


def render_payload(
    host: str,
    kinds: Sequence[str],
    severity: Severity,
    events: Sequence[Event] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The data of a message for programs (the `blmonitor` object of a json:// body).

    Missing values are null, never "", as in every JSON blmonitor writes.
    """
    return {
        "server": host,
        "kinds": list(kinds),
        "severity": severity.label,
        **extra,
        "events": [
            {
                "event": str(event.kind),
                "target": event.target or None,
                "zone": event.zone or None,
                "codes": list(event.codes),
                "severity": event.severity.label,
                "meaning": event.meaning or None,
                "since": iso_time(event.since or (None if event.kind in ENDINGS else event.at)),
                "ended": iso_time(event.ended or (event.at if event.kind in ENDINGS else None)),
                "delist_url": event.delist_url or None,
                "detail": event.detail or None,
                "txt": list(event.txt),
            }
            for event in events
        ],
    }


def iso_time(moment: datetime | None) -> str | None:
    """A time for JSON, as every JSON blmonitor writes it: ISO 8601 to the second, or null."""
    return moment.isoformat(timespec="seconds") if moment is not None else None


def render_test_message(host: str, title_prefix: str = "[blmonitor]") -> Message:
    """What `blmonitor notify --test` sends: critical, so every tagged target gets it."""
    body = (
        f"This is a test notification from blmonitor on {host}.\n"
        "If you can read it, blocklist alerts will reach you here.\n"
        "next step: no action.\n\n"
        f"-- \nblmonitor on {host}"
    )
    kinds = (TEST_KIND,)
    return Message(
        f"{title_prefix} {host}: test notification", body, Severity.CRITICAL, kinds,
        render_payload(host, kinds, Severity.CRITICAL),
    )  # fmt: skip


def render_smarthost(
    action: str,
    *,
    host: str,
    mta: str,
    relay: str,
    reason: str,
    recommend: bool = False,
    error: str = "",
    plan_text: str = "",
    notes: Sequence[str] = (),
    title_prefix: str = "[blmonitor]",
) -> Message:
    """A smart-host action (`apply` or `revert`) for people: done, failed (`error`), or only
    recommended with the ready-to-use change (`plan_text`)."""
    going = "through the smart host" if action == "apply" else "direct again"
    if error:
        title = f"{title_prefix} {host}: smart-host {action} FAILED"
        lines = [f"blmonitor could not {action} the smart host {relay} on {mta}: {error}",
                 "The MTA configuration was left as it was before.", f"reason: {reason}",
                 "next step: run `blmonitor smarthost plan` and fix what it reports."]  # fmt: skip
        severity = Severity.CRITICAL
    elif recommend:
        title = f"{title_prefix} {host}: send mail {going} (recommended)"
        command = f"blmonitor smarthost {action}"
        lines = [f"reason: {reason}",
                 f"next step: make this change on {mta} (or run `{command}`):", "",
                 plan_text.rstrip("\n")]  # fmt: skip
        severity = Severity.WARNING
    elif action == "apply":
        title = f"{title_prefix} {host}: outbound mail now goes through {relay}"
        lines = [f"{mta} now sends mail through the smart host {relay}.", f"reason: {reason}",
                 "next step: fix the cause and request delisting; blmonitor goes back to "
                 "direct delivery once the listing has ended."]  # fmt: skip
        severity = Severity.WARNING
    else:
        title = f"{title_prefix} {host}: outbound mail goes direct again"
        lines = [f"{mta} delivers directly again; the smart host {relay} is no longer used.",
                 f"reason: {reason}", "next step: no action."]  # fmt: skip
        severity = Severity.WARNING
    lines += [f"note: {note}" for note in notes]
    body = "\n".join([*lines, "", f"-- \nblmonitor on {host}"])
    kinds = (f"smarthost-{action}" + ("-recommended" if recommend else ""),)
    return Message(title, body, severity, kinds, render_payload(host, kinds, severity))


TITLE_MAX = 100  # characters of a findings title: a mail subject, a chat line


def _gist(message: str) -> str:
    """A finding's first clause, without its asides: "203.0.113.6 has no PTR record" of
    "203.0.113.6 has no PTR record (reverse DNS): receivers such as Gmail …; fix: …"."""
    depth, out = 0, []
    for i, char in enumerate(message):
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0 and char in ":;" and message[i + 1 : i + 2] in (" ", ""):
            break
        elif depth == 0:
            out.append(char)
    return " ".join("".join(out).split()) or message


def _shorten(text: str, limit: int) -> str:
    """`text`, cut at the last word boundary that leaves room for " …" within `limit` (within a
    word when the last boundary is far back: a long name, a long run of digits)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 2]  # room for " …"
    cut = (head if text[limit - 2] == " " else head.rpartition(" ")[0]).rstrip(" ;,:")
    return f"{cut} …" if len(cut) >= limit - 24 else f"{text[: limit - 1]}…"


def render_findings(
    findings: Sequence[tuple[str, str]], *, host: str, title_prefix: str = "[blmonitor]"
) -> Message:
    """New signs of a cause (an NDR attack, a spam run, an account sending far too much, no
    PTR): a short title naming each finding's gist (cut at a word boundary within TITLE_MAX),
    every finding's full text in the body."""
    if not findings:
        raise ValueError("render_findings needs at least one finding")
    count = "new sign" if len(findings) == 1 else f"{len(findings)} new signs"
    gist = "; ".join(_gist(message) for _, message in findings)
    title = _shorten(f"{title_prefix} {host}: {count} of a cause: {gist}", TITLE_MAX)
    lines = [f"{kind}: {message}" for kind, message in findings]
    lines.append("next step: run `blmonitor diagnose` for the evidence and the steps in order.")
    body = "\n".join([*lines, "", f"-- \nblmonitor on {host}"])
    kinds = tuple(dict.fromkeys(k for k, _ in findings))
    findings_data = [{"kind": kind, "message": message} for kind, message in findings]
    payload = render_payload(host, kinds, Severity.WARNING, findings=findings_data)
    return Message(title, body, Severity.WARNING, kinds, payload)


def _rank(event: Event) -> tuple[int, int]:
    return (-event.severity, event.kind in ENDINGS)


_HEADLINES = {
    EventKind.LISTED: "{target} LISTED on {zone}",
    EventKind.DELISTED: "{target} delisted from {zone}",
    EventKind.ZONE_UNUSABLE: "zone {zone} unusable",
    EventKind.ZONE_RECOVERED: "zone {zone} usable again",
    EventKind.RESOLVER_REFUSED: "{zone} refuses our resolver",
    EventKind.ADDRESS_CHANGED: "public address changed to {target}",
    EventKind.CHECKS_FAILING: "UNKNOWN: nothing checked since {since}",
    EventKind.CHECKS_RECOVERED: "checking again",
    EventKind.SOURCE_UNUSABLE: "{zone} cannot be read",
    EventKind.SOURCE_RECOVERED: "{zone} can be read again",
    EventKind.SOURCE_UNKNOWN: "{zone} knows nothing of {target}",
    EventKind.REPUTATION: "{zone}: {target} {detail}",
    EventKind.REPUTATION_RECOVERED: "{zone}: {target} {detail}",
}


def _headline(event: Event) -> str:
    since = format_time(event.since or event.at)
    return _HEADLINES[event.kind].format(
        target=event.target, zone=event.zone, since=since, detail=event.detail
    )


def _is_policy(event: Event) -> bool:
    """A policy listing (Spamhaus PBL and the like) says "should not send direct", not "spam".

    Only when every meaning is a policy one: SBL plus PBL is still a spam listing.
    """
    meanings = [part for part in event.meaning.split(";") if part.strip()]
    return event.severity is Severity.INFO or (bool(meanings) and all("PBL" in m for m in meanings))


def next_step(event: Event) -> str:
    kind = event.kind
    link = event.delist_url or "the list's website"
    if kind is EventKind.LISTED and _is_policy(event):
        yourself = f" (or remove it yourself at {event.delist_url})" if event.delist_url else ""
        return (
            "this is a policy listing, not a spam report: the address is in a range its owner "
            "says should not send mail directly. Ask your ISP for a static address with "
            f"matching reverse DNS (rDNS) and to take it out of the policy list{yourself}, "
            "or relay through your ISP's smart host"
        )
    if kind is EventKind.LISTED:
        return (
            "find the cause first (open relay, compromised account, infected host, NDR "
            f"backscatter), fix it, then request delisting at {link}; while listed, consider "
            "relaying through your ISP's smart host"
        )
    if kind is EventKind.ZONE_UNUSABLE:
        return (
            "its answers are ignored until it recovers; if it is dead, remove it from "
            "[monitor] zones"
        )
    if kind is EventKind.RESOLVER_REFUSED:
        return "use a local recursive resolver (unbound) or a Spamhaus DQS key"
    if kind is EventKind.ADDRESS_CHANGED:
        return "the new address is now monitored; check its reputation before sending"
    if kind is EventKind.CHECKS_FAILING:
        return (
            "until checks work again, listings go unnoticed (none is ended meanwhile): fix "
            "what the detail names, and run `blmonitor check` by hand to see it work"
        )
    if kind is EventKind.ZONE_RECOVERED:
        return "no action; its answers count again"
    if kind is EventKind.CHECKS_RECOVERED:
        return "no action; every zone is checked again"
    if kind is EventKind.SOURCE_UNUSABLE:
        return (
            "fix what the detail names; until then what it said last is kept (no listing is "
            "ended, nothing is called clean)"
        )
    if kind is EventKind.SOURCE_UNKNOWN:
        return "see the detail: until then this address's listings there go unnoticed"
    if kind is EventKind.REPUTATION:
        return (
            "the receiver's filters send much of this address's mail to junk: look for the "
            "cause (`blmonitor diagnose`), check complaints and list hygiene, slow down bulk mail"
        )
    if kind in (EventKind.SOURCE_RECOVERED, EventKind.REPUTATION_RECOVERED):
        return "no action"
    return "no action; keep watching"


def _describe(event: Event) -> list[str]:
    """The block for one event: a headline, then `label: value` lines an admin can act on."""
    mark = "resolved" if event.kind in ENDINGS else event.severity.label
    lines = [f"{_headline(event)} [{mark}]"]

    def add(label: str, value: str) -> None:
        if value:
            lines.append(f"  {label}: {value}")

    if event.codes:
        codes = ", ".join(event.codes)
        add("codes", f"{codes} — {event.meaning}" if event.meaning else codes)
    else:
        add("meaning", event.meaning)
    if event.kind in ENDINGS:
        label = {
            EventKind.DELISTED: "was listed",
            EventKind.ZONE_RECOVERED: "was unusable",
            EventKind.CHECKS_RECOVERED: "were failing",
            EventKind.SOURCE_RECOVERED: "could not be read",
            EventKind.REPUTATION_RECOVERED: "rated poor or bad",
        }[event.kind]
        if event.since is not None:
            span = f"{format_time(event.since)} → {format_time(event.at)}"
            add(label, f"{span} (for {format_duration(event.at - event.since)})")
        else:
            add("ended", format_time(event.at))
    else:
        add("since", format_time(event.since or event.at))
    add("detail", event.detail)
    add("list says", " | ".join(event.txt))
    if event.kind is EventKind.LISTED:
        add("delist", event.delist_url)
    add("next step", next_step(event))
    return lines


def format_time(moment: datetime) -> str:
    """UTC, ISO-8601 to the minute: 2026-11-01T08:15Z. A naive time is taken as UTC."""
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%MZ")


def format_duration(span: timedelta) -> str:
    """'3 h 12 min', '2 d 4 h', '12 min' or 'less than a minute' (floored)."""
    minutes = max(int(span.total_seconds()) // 60, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return "less than a minute"


# ---------------------------------------------------------------------------------------------
# Delivery through apprise [adapter]


class Notifier:
    """Sends messages to apprise URLs and/or an apprise config file (YAML or TEXT).

    Raises ConfigError at construction for a URL apprise cannot parse or a config file that
    is missing or holds no usable URL; after that, `send` never raises. The config file is
    read once, here: build a new Notifier to pick up changes. `send` blocks (apprise is
    synchronous): from asyncio, call it through `asyncio.to_thread`.
    """

    def __init__(
        self,
        *,
        urls: Sequence[str] = (),
        apprise_config: Path | None = None,
        min_severity: Severity = Severity.WARNING,
        retries: int = 3,
        backoff: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 1:
            raise ConfigError(f"notify retries must be at least 1, not {retries}")
        self.min_severity = min_severity
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        with warnings.catch_warnings():
            # apprise 2.x's email plugin imports `imghdr` for PGPy, deprecated on Python 3.11
            # and 3.12: apprise's warning, not one a blmonitor user can act on.
            warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
            self._services = _load_services(urls, apprise_config)

    def targets(self) -> list[str]:
        """One safe line per target, passwords and tokens masked: for logs and `notify --test`."""
        return [describe_target(service) for service in self._services]

    def send(self, message: Message, only: Collection[str] | None = None) -> Delivery:
        """Deliver to every target that wants it; retry only the failed ones. Never raises.

        `only` (target descriptions from an earlier `Delivery.failed`) limits a later retry to
        the targets that did not get the message, so the others never get it twice.
        """
        if message.severity < self.min_severity:
            return Delivery(ok=True, attempts=0, error="below min_severity")
        if not self._services:
            return Delivery(ok=False, attempts=0, error="no notification targets configured")
        pending = [
            s
            for s in self._services
            if _wants(s, message.severity) and (only is None or describe_target(s) in only)
        ]
        if not pending:
            return Delivery(
                ok=True, attempts=0, error=f"no target takes {message.severity.label} messages"
            )
        notify_type = _notify_type(message)
        errors: dict[int, str] = {}
        for attempt in range(1, self.retries + 1):
            failed = []
            for service in pending:
                error = _deliver(service, message, notify_type)
                if error:
                    errors[id(service)] = error
                    failed.append(service)
                    _log.warning("%s (attempt %d of %d)", error, attempt, self.retries)
            pending = failed
            if not pending:
                return Delivery(ok=True, attempts=attempt)
            if attempt < self.retries:
                self._sleep(min(self.backoff * 2 ** (attempt - 1), 300.0))
        detail = "; ".join(errors[id(service)] for service in pending)
        owed = tuple(describe_target(service) for service in pending)
        return Delivery(ok=False, attempts=self.retries, error=detail, failed=owed)


def _wants(service: NotifyBase, severity: Severity) -> bool:
    """Whether a service takes a message of this severity: see the module docstring."""
    levels = [SEVERITY_TAGS[t] for t in map(str, service.tags) if t in SEVERITY_TAGS]
    return not levels or severity >= min(levels)


def _load_services(urls: Sequence[str], apprise_config: Path | None) -> list[NotifyBase]:
    import apprise

    # Names us in what receivers see (X-Application header, footers) instead of "Apprise".
    asset = apprise.AppriseAsset(app_id="blmonitor", app_desc="blmonitor DNSBL monitor")
    services: list[NotifyBase] = []
    for number, url in enumerate(urls, 1):
        one = apprise.Apprise(asset=asset)
        if not one.add(url):
            # Never echo the URL: it may hold a password or token. The scheme is safe.
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            raise ConfigError(
                f"notify URL #{number} ({scheme}://…) is not a URL apprise can use: "
                "check the service name and syntax with `apprise --dry-run URL`"
            )
        services.extend(one.find())
    if apprise_config is not None:
        if not apprise_config.is_file():
            raise ConfigError(f"{apprise_config}: apprise config file not found")
        loaded = apprise.Apprise(asset=asset)
        loaded.add(apprise.AppriseConfig(str(apprise_config.resolve()), asset=asset))
        found = list(loaded.find())
        if not found:
            raise ConfigError(
                f"{apprise_config}: no usable notification URL in it (is every example "
                "still commented out, or is the YAML broken?)"
            )
        services.extend(found)
    return services


def _notify_type(message: Message) -> NotifyType:
    from apprise import NotifyType

    if message.kinds == (TEST_KIND,):
        return NotifyType.INFO
    if message.kinds and all(kind in ENDINGS for kind in message.kinds):
        return NotifyType.SUCCESS
    return {
        Severity.CRITICAL: NotifyType.FAILURE,
        Severity.WARNING: NotifyType.WARNING,
        Severity.INFO: NotifyType.INFO,
    }[message.severity]


# LogCapture adds a handler to the one `apprise` logger: one capture at a time, or two sends
# from two threads would each read the other's reasons.
_CAPTURE = threading.Lock()


def _deliver(service: NotifyBase, message: Message, notify_type: NotifyType) -> str:
    """One attempt at one target: '' on success, else "<target>: failed: <reason>" (safe)."""
    import apprise

    try:
        one = apprise.Apprise()
        one.add(_with_payload(service, message.payload))
        capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")  # type: ignore[no-untyped-call]
        with _CAPTURE, capture as logged:
            # TEXT: an email keeps its line breaks (apprise's default makes text one line).
            sent = one.notify(
                body=message.body,
                title=message.title,
                notify_type=notify_type,
                body_format=apprise.NotifyFormat.TEXT,
            )
            captured = logged.getvalue()
    except Exception as exc:  # apprise or a plugin bug must not stop the monitor
        # The exception's text may quote a URL with its token: name its type only.
        return f"{describe_target(service)}: failed: apprise raised {type(exc).__name__}"
    if sent:
        return ""
    reason = mask_secrets(_reason(captured), service) or "apprise gave no reason"
    return f"{describe_target(service)}: failed: {reason}"


def _reason(captured: str) -> str:
    """apprise's warnings of one send, each once, as one line."""
    # apprise ends its sentences, even inside a line ("Internal server error., error=500")
    lines = (line.strip().rstrip(".").replace("., ", ", ") for line in captured.splitlines())
    return "; ".join(dict.fromkeys(line for line in lines if line))


def mask_secrets(text: str, service: NotifyBase) -> str:
    """`text` with the secrets of the service's URL masked: what apprise's privacy form hides,
    token-like path segments (as `describe_target`) and the values of custom headers."""
    full = urlsplit(str(service.url(privacy=False)))  # type: ignore[no-untyped-call]
    shown = _words(str(service.url(privacy=True)))  # type: ignore[no-untyped-call]
    secrets = {word for word in _words(full.geturl()) if word not in shown}
    secrets |= {s for s in unquote(full.path).split("/") if _TOKEN_LIKE.fullmatch(s)}
    secrets |= {value for key, value in parse_qsl(full.query) if key.startswith("+")}
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "****")
    return text


def _words(url: str) -> set[str]:
    return set(re.split(r"[/:@?&=#,+ ]", unquote(url)))


def _with_payload(service: NotifyBase, payload: Mapping[str, Any]) -> NotifyBase:
    """A json:// target that also sends `payload` as a `blmonitor` key of its body.

    apprise's JSON plugin adds its `payload_extras` (what `:key=value` URL options fill) to the
    body as given: a copy of the target gets ours, so the configured one never changes. A URL
    that sets `:blmonitor=` itself keeps its own value.
    """
    extras = getattr(service, "payload_extras", None)
    scheme = urlsplit(str(service.url(privacy=True))).scheme  # type: ignore[no-untyped-call]
    if not payload or scheme not in JSON_SCHEMES or not isinstance(extras, dict):
        return service
    if PAYLOAD_KEY in extras:
        return service
    clone = copy.copy(service)
    clone.payload_extras = {**extras, PAYLOAD_KEY: dict(payload)}  # type: ignore[attr-defined]
    return clone


def describe_target(service: NotifyBase) -> str:
    """apprise's privacy URL without its query (custom headers, defaults) plus the tags."""
    url = str(service.url(privacy=True))  # type: ignore[no-untyped-call]  # apprise: untyped
    parts = urlsplit(url)
    segments = [unquote(segment) for segment in parts.path.split("/")]
    if parts.scheme in GENERIC_SCHEMES:
        segments = [f"{s[0]}...{s[-1]}" if _TOKEN_LIKE.fullmatch(s) else s for s in segments]
    text = f"{parts.scheme}://{parts.netloc}{'/'.join(segments).rstrip('/')}"
    tags = sorted(map(str, service.tags))
    return f"{text} [{', '.join(tags)}]" if tags else text
