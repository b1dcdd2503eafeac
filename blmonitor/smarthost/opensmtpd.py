"""OpenSMTPD: smart-host routing by giving each relay action a `host` and an `auth` table.

Every change in smtpd.conf sits in a marked block that keeps the line it replaced, so revert can
restore it; credentials go to a table file of blmonitor's own. smtpd has no config reload: the
plan restarts it. Pure: the planner reads the bytes it is given and returns a Plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from blmonitor.errors import PlanError
from blmonitor.smarthost import blocks, plan
from blmonitor.smarthost.plan import PASSWORD, Command, FileEdit, Files, Mta, Plan, Relay, Scope

DEFAULT_DIR = Path("/etc")
WAS = "#was: "  # inside a block: a line of the admin's that the block stands in for
TABLE = "blmonitor"  # the credentials table, and the label in the relay URL
DOMAINS_TABLE = "blmonitor_destinations"
QUOTE = '"'

_ACTION = re.compile(r'^\s*action\s+("[^"]*"|\S+)\s+relay\b')
_MATCH = re.compile(r'^\s*match\b.*\baction\s+("[^"]*"|\S+)')
_FOR_ANY = re.compile(r"\bfor\s+any\b")
# Options of a relay action that the smart host replaces: where to go, how to log in, and the
# TLS policy (the URL's scheme sets it; a `tls no-verify` meant for MXs must not carry over).
_REPLACED = re.compile(
    r"\s+(host\s+\S+|auth\s+<[^>]*>|backup(\s+mx\s+\S+)?|tls(\s+no-verify)?)(?=\s|$)"
)


class _Paths(NamedTuple):
    conf: Path
    secrets: Path


def _paths(config_dir: Path) -> _Paths:
    return _Paths(conf=config_dir / "smtpd.conf", secrets=config_dir / "smtpd.blmonitor-secrets")


def paths(config_dir: Path) -> tuple[Path, ...]:
    """The files this planner reads and may write, under config_dir (/etc)."""
    return tuple(_paths(config_dir))


def plan_apply(files: Files, relay: Relay, *, config_dir: Path, scope: Scope = Scope.ALL,
               destinations: Sequence[str] = ()) -> Plan:  # fmt: skip
    """Route outbound mail (all, or for `destinations` only) through `relay`."""
    where = _paths(config_dir)
    conf_before = files.get(where.conf)
    if conf_before is None:
        raise PlanError(f"{where.conf} does not exist: is opensmtpd installed?")
    current = plan.decode(conf_before)
    original = blocks.unwrap(current, where.conf, was=WAS)
    domains = plan.destination_domains(destinations) if scope is Scope.DESTINATIONS else []
    notes: list[str] = []
    relays = _relay_actions(original, where.conf)
    new_conf = _route_destinations(original, relays, relay, domains, where.secrets)
    if new_conf is None:
        if domains:
            notes.append(
                "no match rule sends 'for any' to a relay action: all outbound mail "
                f"goes through {relay.host}"
            )
            domains = []
        new_conf = _route_all(original, relays, relay, where.secrets)

    edits = [
        FileEdit(where.conf, conf_before, plan.encode(new_conf)),
        blocks.edit(files, where.secrets, _credentials(relay), mode=0o640, secret=True),
    ]
    if domains:
        notes.append(
            f"mail for {', '.join(domains)} goes through {relay.host}; everything "
            "else is delivered as before"
        )
    if relay.authenticated:
        notes.append(f"{where.secrets} is root:opensmtpd 0640 so that smtpd can read it")
    if not relay.tls and not relay.wrapper:
        notes.append("TLS is not required (tls = false): smtp:// uses STARTTLS when offered")
    return plan.apply_plan(
        Mta.OPENSMTPD, edits, notes, lambda kept: _commands(where, kept, flush=True)
    )


def plan_revert(files: Files, saved: Files, changed: frozenset[Path], *, config_dir: Path) -> Plan:
    """Back to the saved files; an edited smtpd.conf gets its replaced lines back, nothing more."""
    where = _paths(config_dir)

    def undo(path: Path, text: str, before_apply: bytes | None) -> bytes | None:
        after = (
            blocks.unwrap(text, path, was=WAS) if path == where.conf else blocks.remove(text, path)
        )
        return plan.encode_or_none(after, before_apply)

    return plan.revert_plan(
        Mta.OPENSMTPD, where, files, saved, changed, secret=where.secrets, secret_mode=0o640,
        undo=undo, commands=lambda kept: _commands(where, kept, flush=False),
    )  # fmt: skip


def _smart_action(line: str, relay: Relay, name: str | None = None) -> str:
    """The relay action `line` sent to the smart host (renamed to `name` if given)."""
    match = _ACTION.match(line)
    assert match is not None
    rest = _REPLACED.sub("", line[match.end() :].split("#", 1)[0]).rstrip()
    auth = f" auth <{TABLE}>" if relay.authenticated else ""
    action = match[1] if name is None else f'"{name}"'
    return f"action {action} relay host {_url(relay)}{auth}{rest}"


def _url(relay: Relay) -> str:
    """smtps:// is TLS from the first byte, smtp+tls:// required STARTTLS, smtp:// optional."""
    if not plan.HOST_OR_IPV6.match(relay.host):
        raise PlanError(f"smart host {relay.host!r} is not a host name or address")
    scheme = "smtps" if relay.wrapper else "smtp+tls" if relay.tls else "smtp"
    label = f"{TABLE}@" if relay.authenticated else ""
    host = f"[{relay.host}]" if ":" in relay.host else relay.host.lower()
    return f"{scheme}://{label}{host}:{relay.port}"


def _tables(relay: Relay, secrets: Path, domains: Sequence[str]) -> list[str]:
    tables = [f"table {TABLE} file:{secrets}"] if relay.authenticated else []
    if domains:
        quoted = ", ".join(QUOTE + d + QUOTE for d in domains)
        tables.append(f"table {DOMAINS_TABLE} {{ {quoted} }}")
    return tables


def _route_all(text: str, relays: Sequence[int], relay: Relay, secrets: Path) -> str:
    lines = text.splitlines(keepends=True)
    if not relays:
        raise PlanError(
            'smtpd.conf has no relay action (action "…" relay): nothing sends '
            "mail out, so there is nothing to route through the smart host"
        )
    tables = _tables(relay, secrets, [])
    for index in reversed(relays):
        line = lines[index].rstrip("\n")
        body = [WAS + line, *(tables if index == relays[0] else []), _smart_action(line, relay)]
        lines[index : index + 1] = blocks.HASH.wrap(body)
    return "".join(lines)


def _route_destinations(
    text: str, relays: Sequence[int], relay: Relay, domains: Sequence[str], secrets: Path
) -> str | None:
    """A smart-host twin of each relay action and, before each `for any` rule that uses one,
    the same rule `for domain <blmonitor_destinations>` (the first matching rule wins)."""
    if not domains:
        return None
    lines = text.splitlines(keepends=True)
    names = {_action_name(lines[i]): i for i in relays}
    rules = []
    for index, line in enumerate(lines):
        match = _MATCH.match(line)
        if match and match[1].strip('"') in names and _FOR_ANY.search(line):
            rules.append(index)
    if not rules:
        return None
    tables = _tables(relay, secrets, domains)
    inserts: dict[int, list[str]] = {}
    for name, index in names.items():
        twin = _smart_action(lines[index], relay, _twin(name))
        block = blocks.HASH.wrap([*(tables if index == relays[0] else []), twin])
        inserts.setdefault(index + 1, []).extend(block)
    for index in rules:
        line = lines[index].rstrip("\n")
        match = _MATCH.match(line)
        assert match is not None
        twin = f'"{_twin(match[1].strip(QUOTE))}"'
        rule = line[: match.start(1)] + twin + line[match.end(1) :]
        rule = _FOR_ANY.sub(f"for domain <{DOMAINS_TABLE}>", rule, count=1)
        inserts.setdefault(index, []).extend(blocks.HASH.wrap([rule]))
    out: list[str] = []
    for index, line in enumerate(lines):
        out.extend(inserts.get(index, []))
        out.append(line)
    out.extend(inserts.get(len(lines), []))
    return "".join(out)


def _twin(name: str) -> str:
    return f"{name} via smart host"


def _action_name(line: str) -> str:
    match = _ACTION.match(line)
    assert match is not None
    return match[1].strip(QUOTE)


def _relay_actions(text: str, path: Path) -> list[int]:
    found = []
    for index, line in enumerate(text.splitlines()):
        if _ACTION.match(line):
            if line.rstrip().endswith("\\"):
                raise PlanError(f"{path}:{index + 1}: write this relay action on one line")
            found.append(index)
    return found


def credentials(relay: Relay, config_dir: Path) -> plan.Credentials:
    """blmonitor's line in its block of its own secrets table."""
    return plan.Credentials(_paths(config_dir).secrets, "".join(_credentials(relay)))


def _credentials(relay: Relay) -> list[str]:
    """`label username:password`. The adapter reads blmonitor's lines masked by position
    (`credentials`): the line it wrote compares equal, an older one reads as STALE."""
    if not relay.authenticated:
        return []
    if any(c in relay.username for c in ": \t\n"):
        raise PlanError(
            f"smart host username {relay.username!r}: OpenSMTPD's credentials "
            "table cannot hold ':' or spaces in it"
        )
    return [f"{TABLE} {relay.username}:{PASSWORD}"]


def _commands(where: _Paths, edits: Sequence[FileEdit], *, flush: bool) -> tuple[Command, ...]:
    commands: list[Command] = []
    if any(e.path == where.secrets and e.after is not None for e in edits):
        commands.append(
            Command(
                ("chown", "root:opensmtpd", str(where.secrets)),
                "smtpd reads the credentials as group opensmtpd",
            )
        )
        commands.append(
            Command(("chmod", "0640", str(where.secrets)), "readable by that group only")
        )
    commands.append(
        Command(("smtpd", "-n", "-f", str(where.conf)), "check the configuration", validates=True)
    )
    # smtpctl has no configuration reload.
    commands.append(
        Command(("systemctl", "restart", "opensmtpd"), "make smtpd use it", reload=True)
    )
    if flush:
        commands.append(
            Command(
                ("smtpctl", "schedule", "all"),
                "retry deferred mail now, via the smart host",
                optional=True,
            )
        )
    return tuple(commands)
