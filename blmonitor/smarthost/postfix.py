"""Postfix: the main.cf settings and lookup tables that send mail through a smart host, and back.

Pure: the adapter passes the explicit main.cf values (`postconf -n`) and the current map files.
blmonitor keeps its own tables (blmonitor_*) beside main.cf and never edits the admin's, so a
revert deletes them and restores each setting's previous explicit value, or removes it. The
relay's certificate is verified (TLS level `secure`), as the password goes to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from blmonitor.errors import PlanError
from blmonitor.smarthost.plan import (
    PASSWORD,
    Command,
    Credentials,
    FileEdit,
    Mta,
    Plan,
    Relay,
    Scope,
    is_address,
)

DEFAULT_DIR = Path("/etc/postfix")
SASL = "blmonitor_sasl_passwd"
TLS_POLICY = "blmonitor_tls_policy"
TRANSPORT = "blmonitor_transport"
SOFTEN = "blmonitor_soften"

# The settings blmonitor may change; their explicit values are saved before apply.
MANAGED = (
    "relayhost",
    "transport_maps",
    "smtp_sasl_auth_enable",
    "smtp_sasl_password_maps",
    "smtp_sasl_security_options",
    "smtp_sasl_tls_security_options",
    "smtp_tls_policy_maps",
    "smtp_tls_wrappermode",
    "smtp_delivery_status_filter",
    "smtp_tls_CAfile",
)
# The system's CA bundle (ca-certificates). A file, not a directory: Postfix opens it before the
# smtp client enters its chroot, so it works with Debian's chrooted master.cf as it is.
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"

# Blocklist rejections that are deferred (4xx) instead of bounced while routing is switched.
# Narrow on purpose: a genuine policy rejection turned into 4xx is retried for days.
SOFTEN_RULE = (
    r"/^5(\.[0-9]+\.[0-9]+ .*(blocked using|listed (at|in|on|by)|blocklist|blacklist|"
    r"spamhaus|barracuda|spamcop|S3150|S3140|5\.7\.606|RBL Restriction|\[TS[S0-9]+\]).*)/"
    "\n    4$1\n"
)

_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb", "dbm": ".dir"}


def next_hop(relay: Relay) -> str:
    """The relay as Postfix writes it: brackets turn off MX lookups; the key of every table."""
    return f"[{relay.host}]:{relay.port}"


def paths(config_dir: Path, db_type: str = "hash") -> tuple[Path, ...]:
    """Every file blmonitor may create beside main.cf: the table sources and their indexes."""
    suffix = _SUFFIX.get(db_type, ".db")
    out: list[Path] = []
    for name in (SASL, TLS_POLICY, TRANSPORT):
        out += [config_dir / name, config_dir / (name + suffix)]
    out.append(config_dir / SOFTEN)
    return tuple(out)


def credentials(relay: Relay, config_dir: Path) -> Credentials:
    """blmonitor_sasl_passwd is blmonitor's alone: every line of it is ours."""
    line = f"{next_hop(relay)} {relay.username}:{PASSWORD}" if relay.authenticated else ""
    return Credentials(config_dir / SASL, line, whole=True)


def tls_policy(relay: Relay) -> str:
    """The relay's TLS policy: `secure`, the certificate verified against the relay's name (and
    only that name: not `nexthop:dot-nexthop`'s subdomains). Not `dane`: it needs a validating
    resolver for all of Postfix's lookups, and without TLSA records it falls back to unverified
    TLS. Postfix matches certificates against names only: a relay given as an address gets
    `encrypt`, TLS required but unverified (the plan says so)."""
    if is_address(relay.host):
        return f"{next_hop(relay)} encrypt"
    return f"{next_hop(relay)} secure match={relay.host.lower()}"


def _verifies(relay: Relay) -> bool:
    return relay.tls and not is_address(relay.host)


def _prepend(ours: str, existing: str | None) -> str:
    """Our table first, the admin's after it: both stay in use."""
    if not existing:
        return ours
    parts = [p for p in existing.replace(",", " ").split() if p != ours]
    return ", ".join([ours, *parts])


def wanted_settings(
    explicit: Mapping[str, str | None],
    relay: Relay,
    *,
    config_dir: Path,
    db_type: str = "hash",
    scope: Scope = Scope.ALL,
    soften: bool = False,
) -> dict[str, str]:
    """The main.cf values that route through `relay` (the admin's own tables kept after ours)."""
    table = f"{db_type}:{config_dir}"
    out: dict[str, str] = {}
    if scope is Scope.ALL:
        out["relayhost"] = next_hop(relay)
    else:
        out["transport_maps"] = _prepend(f"{table}/{TRANSPORT}", explicit.get("transport_maps"))
    if relay.authenticated:
        out["smtp_sasl_auth_enable"] = "yes"
        out["smtp_sasl_password_maps"] = _prepend(
            f"{table}/{SASL}", explicit.get("smtp_sasl_password_maps")
        )
        out["smtp_sasl_security_options"] = "noanonymous"
        # PLAIN and LOGIN inside TLS: the usual mechanisms of an ISP's submission port
        out["smtp_sasl_tls_security_options"] = "noanonymous"
    if relay.tls:
        out["smtp_tls_policy_maps"] = _prepend(
            f"{table}/{TLS_POLICY}", explicit.get("smtp_tls_policy_maps")
        )
        if relay.wrapper:
            out["smtp_tls_wrappermode"] = "yes"
        # the admin's trust store (Debian sets smtp_tls_CApath) is kept; else the system's
        if _verifies(relay) and not (
            explicit.get("smtp_tls_CAfile") or explicit.get("smtp_tls_CApath")
        ):
            out["smtp_tls_CAfile"] = SYSTEM_CA
    if soften:
        out["smtp_delivery_status_filter"] = f"regexp:{config_dir}/{SOFTEN}"
    return out


def plan_apply(
    explicit: Mapping[str, str | None],
    files: Mapping[Path, bytes | None],
    relay: Relay,
    *,
    config_dir: Path,
    db_type: str = "hash",
    scope: Scope = Scope.ALL,
    destinations: Sequence[str] = (),
    soften: bool = False,
) -> Plan:
    """The change that sends mail through `relay`; an empty Plan when it is already so."""
    notes: list[str] = []
    if scope is Scope.DESTINATIONS and relay.wrapper:
        raise PlanError("port 465 (SMTPS) works only with scope = all in Postfix: use 587")
    if scope is Scope.DESTINATIONS and not destinations:
        return Plan(
            Mta.POSTFIX, "apply", notes=("no receiving domain blocks us: nothing to route",)
        )
    existing_filter = explicit.get("smtp_delivery_status_filter")
    if soften and existing_filter and SOFTEN not in existing_filter:
        soften = False
        notes.append(f"smtp_delivery_status_filter is already set ({existing_filter}): kept")
    wanted = wanted_settings(
        explicit, relay, config_dir=config_dir, db_type=db_type, scope=scope, soften=soften
    )
    settings: dict[str, str | None] = {k: v for k, v in wanted.items() if explicit.get(k) != v}
    hop = next_hop(relay)
    contents: dict[str, str] = {}
    if relay.authenticated:
        contents[SASL] = credentials(relay, config_dir).line + "\n"
    if relay.tls:
        contents[TLS_POLICY] = tls_policy(relay) + "\n"
        if not _verifies(relay):
            notes.append(
                f"{relay.host} is an address: TLS is required but its certificate is not "
                "verified (Postfix matches certificates against names); set host to its name"
            )
    if scope is Scope.DESTINATIONS:
        contents[TRANSPORT] = "".join(
            f"{d} smtp:{hop}\n.{d} smtp:{hop}\n" for d in sorted(set(destinations))
        )
    if soften:
        contents[SOFTEN] = SOFTEN_RULE
    edits: list[FileEdit] = []
    commands: list[Command] = []
    suffix = _SUFFIX.get(db_type, ".db")
    for name, text in contents.items():
        path = config_dir / name
        after = text.encode()
        secret = name == SASL
        current = files.get(path)  # the adapter masks blmonitor's line (`credentials`)
        if current != after:
            edits.append(FileEdit(path, current, after, 0o600 if secret else 0o644, secret))
        if name != SOFTEN and (
            current != after or files.get(path.with_name(name + suffix)) is None
        ):
            commands.append(
                Command(("postmap", "-c", str(config_dir), f"{db_type}:{path}"), f"index {name}")
            )
    if settings.get("smtp_tls_CAfile") == SYSTEM_CA:
        commands.append(
            Command(("test", "-s", SYSTEM_CA), "the relay's certificate is verified against the "
                    "system CAs (apt install ca-certificates)", validates=True)
        )  # fmt: skip
    if settings:
        commands.append(
            Command(("postfix", "-c", str(config_dir), "check"), "validate", validates=True)
        )
    if edits or settings or commands:
        if relay.authenticated:
            table = f"{db_type}:{config_dir}/{SASL}"
            commands.append(
                Command(("postmap", "-c", str(config_dir), "-q", hop, table),
                        "prove the password table answers for the relay", validates=True)
            )  # fmt: skip
        commands += _reload_and_flush(config_dir)
    if scope is Scope.DESTINATIONS:
        notes.append("routed through the relay: " + ", ".join(sorted(set(destinations))))
    return Plan(Mta.POSTFIX, "apply", tuple(edits), tuple(commands), tuple(notes),
                settings=settings)  # fmt: skip


def plan_revert(
    explicit: Mapping[str, str | None],
    saved: Mapping[str, str | None],
    files: Mapping[Path, bytes | None],
    *,
    config_dir: Path,
) -> Plan:
    """Back to the settings saved before apply; blmonitor's own tables are deleted. A setting
    the checkpoint did not save (an apply by an older blmonitor that never changed it) stays."""
    settings = {k: saved.get(k) for k in MANAGED if k in saved and explicit.get(k) != saved.get(k)}
    edits = tuple(FileEdit(p, data, None) for p, data in files.items() if data is not None)
    commands: list[Command] = []
    if settings or edits:
        commands.append(
            Command(("postfix", "-c", str(config_dir), "check"), "validate", validates=True)
        )
        commands += _reload_and_flush(config_dir)
    return Plan(Mta.POSTFIX, "revert", edits, tuple(commands), settings=settings)


def _reload_and_flush(config_dir: Path) -> list[Command]:
    return [
        Command(("postfix", "-c", str(config_dir), "reload"), "re-read main.cf", reload=True),
        Command(("postqueue", "-c", str(config_dir), "-f"), "send deferred mail the new way",
                reload=True, optional=True),
    ]  # fmt: skip
