"""Sendmail: smart-host routing through a marked block in sendmail.mc and marked map entries.

The block goes before MAILER_DEFINITIONS; credentials go to authinfo, the TLS requirement to
access (TLS_Srv), per-destination routes to mailertable. Revert removes exactly those blocks.
Pure: the planner reads the bytes it is given and returns a Plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from blmonitor.errors import PlanError
from blmonitor.smarthost import blocks, plan
from blmonitor.smarthost.plan import PASSWORD, Command, FileEdit, Files, Mta, Plan, Relay, Scope

DEFAULT_DIR = Path("/etc/mail")
# sendmail.mc is m4: "dnl" comments a line out
MC = blocks.Markers("dnl ### BEGIN blmonitor smarthost", "dnl ### END blmonitor smarthost")


_MAPS = ("authinfo", "access", "mailertable")


class _Paths(NamedTuple):
    mc: Path
    authinfo: Path
    access: Path
    mailertable: Path


def _paths(config_dir: Path) -> _Paths:
    return _Paths(*(config_dir / name for name in ("sendmail.mc", *_MAPS)))


def paths(config_dir: Path) -> tuple[Path, ...]:
    """The files this planner reads and may write, under config_dir (/etc/mail).

    sendmail.cf and the .db maps are rebuilt by the plan's commands, not edited: they are listed
    so that the adapter's checkpoint covers them and a failed step restores them too.
    """
    where = _paths(config_dir)
    built = (config_dir / "sendmail.cf", *(Path(f"{p}.db") for p in where[1:]))
    return (*where, *built)


def plan_apply(files: Files, relay: Relay, *, config_dir: Path, scope: Scope = Scope.ALL,
               destinations: Sequence[str] = ()) -> Plan:  # fmt: skip
    """Route outbound mail (all, or for `destinations` only) through `relay`."""
    where = _paths(config_dir)
    host = _check(relay)
    domains = plan.destination_domains(destinations) if scope is Scope.DESTINATIONS else []
    mc_before = files.get(where.mc)
    if mc_before is None:
        raise PlanError(f"{where.mc} does not exist: is sendmail installed?")
    mc_text = plan.decode(mc_before)
    outside = blocks.remove(mc_text, where.mc, markers=MC)
    notes: list[str] = []

    maps: dict[Path, list[str]] = {where.authinfo: [], where.access: [], where.mailertable: []}
    texts = {path: plan.decode(files.get(path)) for path in maps}
    if relay.authenticated:
        key = f"AuthInfo:{host}"
        if _has_key(texts[where.authinfo], key, where.authinfo):
            notes.append(f"{where.authinfo} already has {key} outside blmonitor's block: kept")
        else:
            maps[where.authinfo] = _authinfo(relay, host)
    if relay.tls:
        key = f"TLS_Srv:{host}"
        if _has_key(texts[where.access], key, where.access):
            notes.append(f"{where.access} already has {key} outside blmonitor's block: kept")
        else:
            # The relay's certificate must verify and the cipher be 128 bits or more; otherwise
            # delivery is deferred (4xx) before AUTH, so the password never goes in clear.
            maps[where.access] = [f"{key}\tVERIFY:128"]
    for domain in domains:
        if _has_key(texts[where.mailertable], domain, where.mailertable):
            notes.append(f"{where.mailertable} already routes {domain}: left as it is")
        else:
            maps[where.mailertable].append(f"{domain}\trelay:[{host}]")

    mc_lines = [f"dnl blmonitor: outbound mail via {host}, port {relay.port}"]
    if domains:
        # Only the relay mailer gets the port: esmtp keeps port 25 for every other domain.
        mc_lines.append(f"define(`RELAY_MAILER_ARGS', `TCP $h {relay.port}')dnl")
        if not _has_feature(outside, "mailertable"):
            mc_lines.append(_feature("mailertable", where.mailertable))
        elif maps[where.mailertable]:
            notes.append(
                f"sendmail.mc already has FEATURE(`mailertable'): its map must be "
                f"{where.mailertable}"
            )
    else:
        # [host]: no MX lookup for the relay's name.
        mc_lines.append(f"define(`SMART_HOST', `esmtp:[{host}]')dnl")
        mc_lines.append(f"define(`ESMTP_MAILER_ARGS', `TCP $h {relay.port}')dnl")
        mc_lines.append(f"define(`RELAY_MAILER_ARGS', `TCP $h {relay.port}')dnl")
    if relay.authenticated and not _has_feature(outside, "authinfo"):
        mc_lines.append(_feature("authinfo", where.authinfo))
    if maps[where.access] and not _has_feature(outside, "access_db"):
        mc_lines.append(_feature("access_db", where.access))
    new_mc = blocks.put(mc_text, mc_lines, where.mc, markers=MC, at=_before_mailers(where.mc))

    edits = [FileEdit(where.mc, mc_before, plan.encode(new_mc))]
    for path, body in maps.items():
        secret = path == where.authinfo
        edits.append(blocks.edit(files, path, body, mode=0o600 if secret else 0o644, secret=secret))

    if domains:
        notes.append(
            f"mail for {', '.join(domains)} goes through {host} (mailertable, relay "
            "mailer); everything else is delivered directly"
        )
    if relay.tls:
        notes.append(
            f"TLS is required with TLS_Srv:{host} VERIFY:128 in {where.access}: sendmail "
            "must trust the relay's CA (confCACERT_PATH), or mail waits in the queue"
        )
    else:
        notes.append(
            "TLS is not required (tls = false): sendmail uses STARTTLS when the relay offers it"
            + (", and may otherwise send the password in clear" if relay.authenticated else "")
        )
    if relay.authenticated and not plan.is_address(host):
        notes.append(
            f"AuthInfo is looked up by the relay's name as DNS returns it: if {host} is "
            "a CNAME, add a line for the name it points to"
        )
    return plan.apply_plan(
        Mta.SENDMAIL, edits, notes, lambda kept: _commands(config_dir, kept, flush=True)
    )


def plan_revert(files: Files, saved: Files, changed: frozenset[Path], *, config_dir: Path) -> Plan:
    """Back to the saved files; a file edited since apply loses only blmonitor's blocks."""
    where = _paths(config_dir)

    def undo(path: Path, text: str, before_apply: bytes | None) -> bytes | None:
        markers = MC if path == where.mc else blocks.HASH
        return plan.encode_or_none(blocks.remove(text, path, markers=markers), before_apply)

    return plan.revert_plan(
        Mta.SENDMAIL, where, files, saved, changed, secret=where.authinfo, secret_mode=0o600,
        undo=undo, commands=lambda kept: _commands(config_dir, kept, flush=False),
    )  # fmt: skip


def _check(relay: Relay) -> str:
    if not plan.HOST.match(relay.host):
        raise PlanError(f"smart host {relay.host!r}: Sendmail needs a host name or IPv4 address")
    plan.refuse_smtps(relay, "blmonitor configures Sendmail for STARTTLS only")
    if any(c in relay.username for c in '"\n'):
        raise PlanError(f"smart host username {relay.username!r}: authinfo cannot hold '\"'")
    return relay.host.lower()


def credentials(relay: Relay, config_dir: Path) -> plan.Credentials:
    """blmonitor's AuthInfo line in its block of authinfo (the admin's lines are theirs)."""
    line = _authinfo(relay, relay.host.lower()) if relay.authenticated else []
    return plan.Credentials(_paths(config_dir).authinfo, "".join(line))


def _authinfo(relay: Relay, host: str) -> list[str]:
    """The AuthInfo line. The adapter reads blmonitor's lines masked by position (`credentials`):
    the line it wrote compares equal, one with an older password reads as STALE and is rewritten."""
    return [f'AuthInfo:{host} "U:{relay.username}" "P:{PASSWORD}" "M:PLAIN LOGIN"']


def _feature(name: str, path: Path) -> str:
    return f"FEATURE(`{name}', `hash -o {path}.db')dnl"


def _has_feature(mc: str, name: str) -> bool:
    return re.search(rf"^\s*FEATURE\(\s*`?{name}\b", mc, re.MULTILINE) is not None


def _has_key(text: str, key: str, path: Path) -> bool:
    """Whether a map line for `key` exists outside blmonitor's block (makemap refuses doubles)."""
    for line in blocks.remove(text, path).splitlines():
        fields = line.split(None, 1)
        if fields and fields[0].lower() == key.lower():
            return True
    return False


def _commands(config_dir: Path, edits: Sequence[FileEdit], *, flush: bool) -> tuple[Command, ...]:
    mc, cf = config_dir / "sendmail.mc", config_dir / "sendmail.cf"
    new_cf = config_dir / "sendmail.cf.blmonitor"
    commands = [
        # Into a new file first: a failed m4 run must not leave sendmail.cf half written.
        Command(
            ("sh", "-c", 'm4 "$1" > "$2"', "sh", str(mc), str(new_cf)),
            f"build sendmail.cf from {mc}",
            validates=True,
        ),
    ]
    for edit in edits:
        if edit.path.name not in _MAPS:
            continue
        if edit.after is None:
            commands.append(Command(("rm", "-f", f"{edit.path}.db"), f"{edit.path} is gone"))
            continue
        # -C: makemap reads TrustedUser from the configuration (the new one, under config_dir).
        umask = "umask 077 && " if edit.secret else ""
        script = umask + 'makemap -C "$2" hash "$1" < "$1"'
        commands.append(
            Command(
                ("sh", "-c", script, "sh", str(edit.path), str(new_cf)), f"rebuild {edit.path}.db"
            )
        )
    commands.append(Command(("mv", str(new_cf), str(cf)), "install the new sendmail.cf"))
    commands.append(
        Command(("systemctl", "reload", "sendmail"), "make sendmail use it", reload=True)
    )
    if flush:
        commands.append(
            Command(
                ("sendmail", "-q"), "retry deferred mail now, via the smart host", optional=True
            )
        )
    return tuple(commands)


_MAILER_DEFINITIONS = re.compile(r"^\s*(MAILER_DEFINITIONS|MAILER\()")


def _before_mailers(path: Path) -> Callable[[list[str]], int]:
    """Where a new block goes in sendmail.mc: before MAILER_DEFINITIONS, as FEATUREs must
    precede MAILERs."""

    def at(lines: list[str]) -> int:
        for index, line in enumerate(lines):
            if _MAILER_DEFINITIONS.match(line):
                return index
        raise PlanError(f"{path} has no MAILER_DEFINITIONS or MAILER() line: is it a sendmail.mc?")

    return at
