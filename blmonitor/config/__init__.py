"""The configuration file: one TOML file parsed into frozen dataclasses, every check made here.

`parse_config(text)` is pure: no disk, no environment. `load_config(path)` reads the file and takes
the defaults that depend on the user (root or not, XDG) from the environment. Every mistake is
one line that names the file, the table and the key; unknown keys are mistakes too.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blmonitor.config.table import (
    Table,
    describe,
    format_duration,
    key_error,
)
from blmonitor.dnsbl.answers import expand_targets
from blmonitor.dnsbl.resolver import Nameserver, parse_nameserver
from blmonitor.errors import ConfigError, UsageError
from blmonitor.models import Severity
from blmonitor.monitor import channels
from blmonitor.monitor.channels import Digest
from blmonitor.smarthost.plan import Mta, Scope
from blmonitor.userfiles import UnreadableFile, read_text

DEFAULT_PATH = Path("/etc/blmonitor/config.toml")
ROOT_DATABASE = Path("/var/lib/blmonitor/blmonitor.db")
AUTO = "auto"  # the target that means: discover this machine's public addresses

DEFAULT_INTERVAL = 15 * 60.0
MIN_INTERVAL = 60.0  # DNSBL operators block clients that ask too often
MAX_DEFAULT_JITTER = 5 * 60.0
DEFAULT_RETENTION = 400 * 86400.0
MIN_RETENTION = 86400.0
MAX_TIMEOUT = 60.0  # a larger value is almost certainly milliseconds


@dataclass(frozen=True, slots=True)
class Defaults:
    """The defaults that depend on who runs blmonitor, found by `environment_defaults()`."""

    database: Path


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """[monitor]: what is checked, how often, and when a change counts."""

    targets: tuple[str, ...]  # as written; AUTO at most once
    zones: tuple[
        str, ...
    ]  # "default", catalog ids or zone names: checked against the catalog later
    lists: Path | None
    interval: float  # seconds
    jitter: float  # seconds
    confirm: int
    silent_first_run: bool
    fail_on: Severity
    database: Path
    retention: float  # seconds
    min_answered: float = 0.5  # share of a target's zones that must answer, or the run is blind

    @property
    def discover(self) -> bool:
        """Whether this machine's public addresses are to be discovered and checked."""
        return AUTO in self.targets

    @property
    def fixed_targets(self) -> tuple[str, ...]:
        """The targets written out: addresses, CIDR blocks and domains, without AUTO."""
        return tuple(t for t in self.targets if t != AUTO)


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """[dns]: how the lists are asked. An empty `resolver` means the system's resolvers."""

    resolver: tuple[Nameserver, ...]
    dqs_key_file: Path | None  # never read here: the key is a secret
    timeout: float  # seconds
    concurrency: int  # 0: the catalog's polite per-zone limits


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """[notify]: where changes are sent (apprise URLs) and which ones."""

    urls: tuple[str, ...] = field(repr=False)  # they hold passwords and tokens
    apprise_config: Path | None
    min_severity: Severity
    retry: int
    title_prefix: str
    server_name: str = ""  # how notifications name this server; "": its FQDN
    heartbeat_url: str = field(default="", repr=False)  # pinged after each run; a secret
    digest: Digest = Digest.OFF


@dataclass(frozen=True, slots=True)
class BouncesConfig:
    """[bounces]: where returned mail and MTA logs are read for blocklist evidence."""

    watch: tuple[Path, ...]  # Maildirs, mbox files, directories of .eml, MTA log files
    expire: float  # seconds without a new bounce before a bounce-evidenced listing ends


class SmarthostMode(enum.StrEnum):
    OFF = "off"
    RECOMMEND = "recommend"  # the exact plan is notified; the admin applies it
    APPLY = "apply"  # done while listed, and undone after


SMARTHOST_MTAS = ("auto", *Mta)


@dataclass(frozen=True, slots=True)
class SmarthostConfig:
    """[smarthost]: the ISP relay that carries mail while we are listed, and when to use it."""

    mode: SmarthostMode = SmarthostMode.OFF
    host: str = ""
    port: int = 587
    username: str = ""
    password_file: Path | None = None  # never the password itself
    tls: bool = True  # required: credentials never go in clear
    mta: Mta | None = None  # None: the one installed here
    config_dir: Path | None = None  # the MTA's directory; None: its usual place (/etc/postfix…)
    scope: Scope = Scope.ALL
    soften: bool = False  # Postfix: defer blocklist 5xx replies instead of bouncing them
    min_severity: Severity = Severity.WARNING
    after: float = 0.0  # seconds listed before acting
    revert_after: float = 86400.0  # seconds clean before going back to direct delivery
    state_dir: Path | None = None  # None: beside the database


@dataclass(frozen=True, slots=True)
class PostureConfig:
    """[posture]: the sender's posture (PTR, HELO, SPF, DMARC, MX), also checked once a day by
    the monitor."""

    helo: str = ""  # the HELO name the MTA sends; "": read from Postfix or Exim
    domains: tuple[str, ...] = ()  # the sending domains; (): Config.sending_domains' defaults
    daily: bool = True  # check the posture on the monitor's first run of each day


@dataclass(frozen=True, slots=True)
class DiagnoseConfig:
    """[diagnose]: the cause-finding checks the daemon makes on each run."""

    queue: bool = True  # inspect the MTA's queue (Postfix or Exim) when one is installed
    logs: tuple[Path, ...] = ()  # MTA logs for per-account and volume analysis (last 24 h)
    local_domains: tuple[str, ...] = ()  # our own domains: mail to them is not "external"
    config_dir: Path | None = None  # Postfix's directory for `postqueue -c`; None: /etc/postfix


SNDS_URL = "https://sendersupport.olc.protection.outlook.com/snds/"
MIN_SOURCE_INTERVAL = 3600.0  # the receivers' data is daily: more often only adds load


@dataclass(frozen=True, slots=True)
class SndsConfig:
    """[snds]: Microsoft's Smart Network Data Services, read with an Automated Data Access key."""

    key_file: Path | None = None  # never the key itself; None: SNDS is not read
    base_url: str = SNDS_URL
    interval: float = 6 * 3600.0  # seconds between polls (its data is daily)
    timeout: float = 30.0  # seconds one request may take

    @property
    def enabled(self) -> bool:
        return self.key_file is not None


GMAIL_BASE_URL = "https://gmailpostmastertools.googleapis.com/"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True, slots=True)
class GmailPostmasterConfig:
    """[gmail_postmaster]: Gmail Postmaster Tools' daily reputation of our domains and IPs."""

    domains: tuple[str, ...] = ()  # verified in Postmaster Tools; none: the source is off
    credentials_file: Path | None = None  # from `gmail-postmaster login`; never read here
    base_url: str = GMAIL_BASE_URL
    token_url: str = GOOGLE_TOKEN_URL
    interval: float = 12 * 3600.0  # seconds: the data is daily
    timeout: float = 30.0  # seconds, per request

    @property
    def enabled(self) -> bool:
        return bool(self.domains)


@dataclass(frozen=True, slots=True)
class Config:
    monitor: MonitorConfig
    dns: DnsConfig
    notify: NotifyConfig
    source: str  # the file it came from, for messages
    bounces: BouncesConfig = field(default_factory=lambda: BouncesConfig((), 7 * 86400.0))
    smarthost: SmarthostConfig = field(default_factory=SmarthostConfig)
    posture: PostureConfig = field(default_factory=PostureConfig)
    diagnose: DiagnoseConfig = field(default_factory=DiagnoseConfig)
    snds: SndsConfig = field(default_factory=SndsConfig)
    gmail_postmaster: GmailPostmasterConfig = field(default_factory=GmailPostmasterConfig)

    @property
    def smarthost_state_dir(self) -> Path:
        """Where the smart-host checkpoints and requests are kept."""
        return self.smarthost.state_dir or self.monitor.database.parent / "smarthost"

    @property
    def sending_domains(self) -> tuple[str, ...]:
        """The domains mail is sent from: [posture] domains, else [diagnose] local_domains,
        else [gmail_postmaster] domains (verified in Postmaster Tools: domains that send)."""
        return self.posture.domains or self.diagnose.local_domains or self.gmail_postmaster.domains

    def error(self, table: str, key: str, message: str) -> ConfigError:
        """An error about one key, for the checks made later (zones against the catalog)."""
        return key_error(self.source, table, key, message)


# The keys each table accepts: the dataclass fields, so the parser and the sample cannot drift.
KEYS: Mapping[str, tuple[str, ...]] = {
    table: tuple(f.name for f in dataclasses.fields(cls))
    for table, cls in (
        ("monitor", MonitorConfig),
        ("dns", DnsConfig),
        ("notify", NotifyConfig),
        ("bounces", BouncesConfig),
        ("smarthost", SmarthostConfig),
        ("posture", PostureConfig),
        ("diagnose", DiagnoseConfig),
        ("snds", SndsConfig),
        ("gmail_postmaster", GmailPostmasterConfig),
    )
}


# --- parsing -------------------------------------------------------------------------------


def parse_config(text: str, *, source: str, defaults: Defaults) -> Config:
    """The Config of one file's text; ConfigError names `source`, the table and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    for name, value in data.items():
        if name not in KEYS:
            raise ConfigError(f"{source}: {_unknown_top_level(name, value)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name}: expected a table [{name}], got {describe(value)}")
    return Config(
        monitor=_parse_monitor(_table(source, "monitor", data.get("monitor", {})), defaults),
        dns=_parse_dns(_table(source, "dns", data.get("dns", {}))),
        notify=_parse_notify(_table(source, "notify", data.get("notify", {}))),
        source=source,
        bounces=_parse_bounces(_table(source, "bounces", data.get("bounces", {}))),
        smarthost=_parse_smarthost(_table(source, "smarthost", data.get("smarthost", {}))),
        posture=_parse_posture(_table(source, "posture", data.get("posture", {}))),
        diagnose=_parse_diagnose(_table(source, "diagnose", data.get("diagnose", {}))),
        snds=_parse_snds(_table(source, "snds", data.get("snds", {}))),
        gmail_postmaster=_parse_gmail_postmaster(
            _table(source, "gmail_postmaster", data.get("gmail_postmaster", {}))
        ),
    )


def _table(source: str, name: str, raw: Any) -> Table:
    def unknown(key: str) -> str:
        return "" if key in KEYS[name] else _unknown_key(name, key)

    return Table(source, name, raw, unknown=unknown)


def _parse_snds(table: Table) -> SndsConfig:
    base_url = _http_url(table, "base_url", SNDS_URL)
    interval, timeout = _poll_timing(table, 6 * 3600.0, "SNDS data is daily")
    return SndsConfig(key_file=table.optional_path("key_file"),
                      base_url=base_url if base_url.endswith("/") else base_url + "/",
                      interval=interval, timeout=timeout)  # fmt: skip


def _parse_diagnose(table: Table) -> DiagnoseConfig:
    logs = table.paths("logs")
    return DiagnoseConfig(queue=table.boolean("queue", True), logs=tuple(logs),
                          local_domains=_domains(table, "local_domains"),
                          config_dir=table.optional_path("config_dir"))  # fmt: skip


_DOMAIN = re.compile(r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def _parse_gmail_postmaster(table: Table) -> GmailPostmasterConfig:
    domains = tuple(d.lower().rstrip(".") for d in table.strings("domains", ()))
    for domain in domains:
        if not _DOMAIN.fullmatch(domain):
            raise table.fail("domains", f"{domain!r} is not a domain name (e.g. example.com)")
    if len(set(domains)) < len(domains):
        raise table.fail("domains", "names a domain twice")
    credentials = table.optional_path("credentials_file")
    if domains and credentials is None:
        raise table.fail("credentials_file", "is needed with domains: the file "
                         "`blmonitor gmail-postmaster login --out FILE` writes")  # fmt: skip
    urls = {key: _http_url(table, key, default) for key, default in
            (("base_url", GMAIL_BASE_URL), ("token_url", GOOGLE_TOKEN_URL))}  # fmt: skip
    interval, timeout = _poll_timing(table, 12 * 3600.0, "Gmail publishes one day at a time")
    return GmailPostmasterConfig(domains=domains, credentials_file=credentials,
                                 base_url=urls["base_url"].rstrip("/") + "/",
                                 token_url=urls["token_url"], interval=interval,
                                 timeout=timeout)  # fmt: skip


def _poll_timing(table: Table, default_interval: float, why: str) -> tuple[float, float]:
    """A receiver's data source's `interval` (at least an hour: `why`) and HTTP `timeout`."""
    interval = table.duration("interval", default_interval)
    if interval < MIN_SOURCE_INTERVAL:
        raise table.fail(
            "interval", f"{table.shown('interval')} is less than the minimum of 1h: {why}"
        )
    timeout = table.number("timeout", 30.0)
    if not 0 < timeout <= MAX_TIMEOUT:
        raise table.fail(
            "timeout", f"expected seconds above 0 and at most {MAX_TIMEOUT:g}, got {timeout:g}"
        )
    return interval, timeout


def _http_url(table: Table, key: str, default: str) -> str:
    url = table.string(key, default).strip()
    if not re.fullmatch(r"https?://[^\s/?#@]+(?:/[^\s?#]*)?", url):
        raise table.fail(key, f"{url!r} is not an http(s) URL (default {default})")
    return url


def _parse_smarthost(table: Table) -> SmarthostConfig:
    mode = SmarthostMode(table.choice("mode", "off", tuple(SmarthostMode)))
    host = table.string("host", "").strip()
    if mode is not SmarthostMode.OFF and not host:
        raise table.fail("host", f'is needed with mode = "{mode}" (e.g. "smtp.isp.example")')
    if host.startswith("[") or host.count(":") == 1 or any(c.isspace() for c in host):
        raise table.fail("host", f"{host!r}: give the name or address alone, the port in port")
    username = table.string("username", "")
    password_file = table.optional_path("password_file")
    if username and password_file is None:
        raise table.fail("password_file", "is needed with username (a file holding the password)")
    mta = table.choice("mta", "auto", SMARTHOST_MTAS)
    return SmarthostConfig(
        mode=mode,
        host=host,
        port=table.integer("port", 587, low=1, high=65535),
        username=username,
        password_file=password_file,
        tls=table.boolean("tls", True),
        mta=None if mta == "auto" else Mta(mta),
        config_dir=table.optional_path("config_dir"),
        scope=Scope(table.choice("scope", "all", tuple(Scope))),
        soften=table.boolean("soften", False),
        min_severity=table.severity("min_severity", Severity.WARNING),
        after=table.duration("after", 0.0),
        revert_after=table.duration("revert_after", 86400.0),
        state_dir=table.optional_path("state_dir"),
    )


# A host or domain name as receivers look it up: labels of letters, digits, "-" and "_".
_HOST_NAME = re.compile(r"(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                        r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")  # fmt: skip


def _domains(table: Table, key: str) -> tuple[str, ...]:
    domains = tuple(d.strip().lower().rstrip(".") for d in table.strings(key, ()))
    for domain in domains:
        if not _HOST_NAME.fullmatch(domain):
            raise table.fail(key, f"{domain!r}: expected domain names such as example.com")
    return tuple(dict.fromkeys(domains))


def _parse_posture(table: Table) -> PostureConfig:
    helo = table.string("helo", "").strip().lower().rstrip(".")
    if helo and (not _HOST_NAME.fullmatch(helo) or "." not in helo):
        raise table.fail("helo", f"{helo!r}: expected the host name your MTA greets with, "
                         'such as "mail.example.com" (an address literal cannot be '
                         "checked)")  # fmt: skip
    return PostureConfig(helo=helo, domains=_domains(table, "domains"),
                         daily=table.boolean("daily", True))  # fmt: skip


def _parse_bounces(table: Table) -> BouncesConfig:
    watch = table.paths("watch")
    expire = table.duration("expire", 7 * 86400.0)
    if expire < 86400:
        raise table.fail("expire", f"{table.shown('expire')} is less than the minimum of 1d")
    return BouncesConfig(watch=tuple(watch), expire=expire)


# A catalog id or a selector ("default"), or a zone as NAME[:ipv4,ipv6,domain].
_ZONE_SPEC = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}(?::(?:ipv4|ipv6|domain)(?:,(?:ipv4|ipv6|domain))*)?"
)


def _parse_monitor(table: Table, defaults: Defaults) -> MonitorConfig:
    targets = table.strings("targets", (AUTO,))
    _check_targets(table, targets)
    zones = table.strings("zones", ("default",))
    if not zones:
        raise table.fail("zones", 'is empty: use ["default"] or name the zones to check')
    if not all(zones):
        raise table.fail("zones", "holds an empty string")
    for spec in zones:
        if not _ZONE_SPEC.fullmatch(spec) or ".." in spec or spec.startswith("."):
            raise table.fail("zones", f"{spec!r} is not a zone name, a catalog id or "
                             '"default" (e.g. "zen.spamhaus.org", "bl.org:ipv4")')  # fmt: skip
    interval = table.duration("interval", DEFAULT_INTERVAL)
    if interval < MIN_INTERVAL:
        raise table.fail(
            "interval",
            f"{table.shown('interval')} is less than the minimum of 60s: "
            "DNSBL operators block clients that ask too often",
        )
    jitter = table.duration("jitter", min(interval / 10, MAX_DEFAULT_JITTER))
    if jitter >= interval:
        raise table.fail(
            "jitter",
            f"{table.shown('jitter')} must be shorter than interval ({format_duration(interval)})",
        )
    retention = table.duration("retention", DEFAULT_RETENTION)
    if retention < MIN_RETENTION:
        raise table.fail("retention", f"{table.shown('retention')} is less than the minimum of 1d")
    return MonitorConfig(
        targets=targets,
        zones=zones,
        lists=table.optional_path("lists"),
        interval=interval,
        jitter=jitter,
        confirm=table.integer("confirm", 2, low=1, high=10),
        silent_first_run=table.boolean("silent_first_run", False),
        fail_on=table.severity("fail_on", Severity.WARNING),
        database=table.path("database", defaults.database),
        retention=retention,
        min_answered=_share(table, "min_answered", 0.5),
    )


def _share(table: Table, key: str, default: float) -> float:
    value = table.raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise table.fail(
            key, f"expected a share above 0 and at most 1 (e.g. 0.5), got {describe(value)}"
        )
    return float(value)


def _check_targets(table: Table, targets: tuple[str, ...]) -> None:
    if not targets:
        raise table.fail(
            "targets", 'is empty: use ["auto"] for this machine\'s public addresses, or list them'
        )
    seen: set[str] = set()
    for text in targets:
        if text in seen:
            raise table.fail("targets", f"{text!r} appears twice")
        seen.add(text)
        if text == AUTO:
            continue
        try:
            found = expand_targets([text])
        except UsageError as exc:
            raise table.fail("targets", str(exc)) from exc
        if not found:  # "" and "# …" are skipped by expand_targets, as in a targets file
            raise table.fail(
                "targets", f'{text!r} is not "auto", an IP address, a CIDR block or a domain'
            )


def _parse_dns(table: Table) -> DnsConfig:
    servers = []
    for text in table.strings("resolver", ()):
        try:
            servers.append(parse_nameserver(text))
        except UsageError as exc:
            raise table.fail("resolver", str(exc).removeprefix("resolver ")) from exc
    timeout = table.number("timeout", 5.0)
    if not 0 < timeout <= MAX_TIMEOUT:
        raise table.fail(
            "timeout", f"expected seconds above 0 and at most {MAX_TIMEOUT:g}, got {timeout:g}"
        )
    return DnsConfig(
        resolver=tuple(servers),
        dqs_key_file=table.optional_path("dqs_key_file"),
        timeout=timeout,
        concurrency=table.integer("concurrency", 0, low=0, high=None),
    )


def _parse_notify(table: Table) -> NotifyConfig:
    urls = table.strings("urls", ())
    for number, url in enumerate(urls, 1):
        if problem := channels.notify_url_problem(url):
            raise table.fail("urls", f"URL #{number} {problem}")
    name = table.string("server_name", "").strip().rstrip(".")
    ping = table.string("heartbeat_url", "").strip()
    for key, problem in (("server_name", channels.server_name_problem(name)),
                         ("heartbeat_url", channels.heartbeat_url_problem(ping))):  # fmt: skip
        if problem:
            raise table.fail(key, problem)
    return NotifyConfig(
        urls=urls,
        apprise_config=table.optional_path("apprise_config"),
        min_severity=table.severity("min_severity", Severity.WARNING),
        retry=table.integer("retry", 3, low=1, high=10),
        title_prefix=table.string("title_prefix", "[blmonitor]"),
        server_name=name,
        heartbeat_url=ping,
        digest=Digest(table.choice("digest", Digest.OFF, tuple(Digest))),
    )


def _unknown_key(table: str, key: str) -> str:
    for other, keys in KEYS.items():
        if key in keys:
            return f"unknown key (it belongs in [{other}])"
    close = difflib.get_close_matches(key, KEYS[table], n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key (known keys: {', '.join(KEYS[table])})"


def _unknown_top_level(name: str, value: object) -> str:
    if not isinstance(value, dict):
        for table, keys in KEYS.items():
            if name in keys:
                return f"{name}: unknown key at the top level (put it under [{table}])"
        return f"{name}: unknown key at the top level (keys go under [monitor], [dns] or [notify])"
    close = difflib.get_close_matches(name, KEYS, n=1)
    hint = f"did you mean [{close[0]}]?" if close else "use [monitor], [dns] or [notify]"
    return f"[{name}]: unknown table ({hint})"


# --- the file and the environment ----------------------------------------------------------


def default_database(is_root: bool, env: Mapping[str, str], home: Path) -> Path:
    """Where the history lives when `database` is not set: /var/lib for root, else XDG."""
    if is_root:
        return ROOT_DATABASE
    data_home = env.get("XDG_DATA_HOME", "")
    # XDG Base Directory spec: a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(data_home) if Path(data_home).is_absolute() else home / ".local" / "share"
    return base / "blmonitor" / "blmonitor.db"


def environment_defaults() -> Defaults:
    """The Defaults for the user running this process."""
    return Defaults(database=default_database(os.geteuid() == 0, os.environ, Path.home()))


def default_path() -> Path:
    return Path(os.environ.get("BLMONITOR_CONFIG") or DEFAULT_PATH)


def config_exists(path: Path | None) -> bool:
    """Whether there is a config to read: the given file, or the default one."""
    return path is not None or default_path().is_file()


def load_config(path: Path | None, *, defaults: Defaults | None = None) -> Config:
    """Read and parse `path`, or the default file when None: $BLMONITOR_CONFIG, else
    DEFAULT_PATH.

    A missing default file means every default; a missing `path` given explicitly is an error.
    `defaults` (for tests) replaces those found in the environment.
    """
    file = path if path is not None else default_path()
    try:
        text = read_text(file, limit=1024 * 1024)
    except FileNotFoundError as exc:
        if path is not None:
            raise ConfigError(f"{file}: no such config file") from exc
        text = ""
    except UnreadableFile as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc}") from None
    if defaults is None:
        defaults = environment_defaults()
    return parse_config(text, source=str(file), defaults=defaults)
