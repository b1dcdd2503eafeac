"""Exim on Debian: smart-host routing through update-exim4.conf.conf, passwd.client and macros.

A hand-written /etc/exim4/exim4.conf, which update-exim4.conf never regenerates, gets a printed
recommendation instead. Pure: the planner reads the bytes it is given and returns a Plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from blmonitor.errors import PlanError
from blmonitor.smarthost import blocks, plan
from blmonitor.smarthost.plan import PASSWORD, Command, FileEdit, Files, Mta, Plan, Relay, Scope

DEFAULT_DIR = Path("/etc/exim4")

_TYPE = "dc_eximconfig_configtype"
_SMARTHOST = "dc_smarthost"
_SPLIT = "dc_use_split_config"
# Without it Exim delivers in clear when the relay's certificate does not verify, then keeps
# the password back (AUTH_CLIENT_ALLOW_NOTLS_PASSWORDS is unset), the relay answers 530 and
# the message bounces; with it, a TLS problem only defers.
_REQUIRE_TLS = "REMOTE_SMTP_SMARTHOST_HOSTS_REQUIRE_TLS"
_PROTOCOL = "REMOTE_SMTP_SMARTHOST_PROTOCOL"
_ASSIGNMENT = re.compile(r"^\s*(\w+)=(.*)$")


_NAMES = ("update-exim4.conf.conf", "passwd.client", "exim4.conf.localmacros",
          "conf.d/main/000_localmacros", "exim4.conf")  # fmt: skip


class _Paths(NamedTuple):
    conf: Path
    passwd: Path
    macros: Path  # non-split configuration
    split_macros: Path  # split configuration: read before conf.d/main/01_…
    handwritten: Path


def _paths(config_dir: Path) -> _Paths:
    return _Paths(*(config_dir / name for name in _NAMES))


def paths(config_dir: Path) -> tuple[Path, ...]:
    """The files this planner reads and may write, under config_dir (/etc/exim4)."""
    return tuple(_paths(config_dir))


def plan_apply(files: Files, relay: Relay, *, config_dir: Path, scope: Scope = Scope.ALL,
               destinations: Sequence[str] = ()) -> Plan:  # fmt: skip
    """Route all outbound mail through `relay`; an already-routed config gives an empty plan."""
    where = _paths(config_dir)
    if scope is Scope.DESTINATIONS and not destinations:
        raise PlanError("smart host scope = destinations needs at least one destination")
    smarthost = _smarthost(relay)
    if files.get(where.handwritten) is not None:
        return _manual_apply(relay, where.handwritten, smarthost)
    conf_text = _text(files.get(where.conf), where.conf)
    values = _values(conf_text)
    configtype = values.get(_TYPE, "")
    if configtype == "none":
        return _manual_apply(relay, where.conf, smarthost, none=True)

    notes: list[str] = []
    # 'satellite' already sends everything to a smart host and keeps no local mail: keep that.
    wanted_type = "satellite" if configtype == "satellite" else "smarthost"
    new_conf = _set_value(conf_text, _TYPE, wanted_type, values)
    new_conf = _set_value(new_conf, _SMARTHOST, smarthost, values)

    macros_path = where.split_macros if values.get(_SPLIT) == "true" else where.macros
    macros_text = plan.decode(files.get(macros_path))
    macro_lines: list[str] = []
    for name, value, wanted in (
        (_REQUIRE_TLS, "*", relay.tls or relay.wrapper),
        (_PROTOCOL, "smtps", relay.wrapper),
    ):
        if not wanted:
            continue
        if _defined_outside(macros_text, name, macros_path):
            notes.append(f"{macros_path} already defines {name}: left as it is")
        else:
            macro_lines.append(f"{name} = {value}")
    edits = [
        FileEdit(where.conf, files.get(where.conf), plan.encode(new_conf)),
        blocks.edit(files, macros_path, macro_lines),
        # passwd.client is searched top down and the first matching line wins: ours goes first
        blocks.edit(files, where.passwd, _credentials(relay), at=blocks.after_comments,
                    mode=0o640, secret=True),
    ]  # fmt: skip

    if scope is Scope.DESTINATIONS:
        notes.append(
            "per-destination routing is Postfix-only: Exim sends all outbound mail "
            f"through {relay.host}"
        )
    if configtype not in ("internet", "smarthost", "satellite"):
        notes.append(f"{_TYPE} was {configtype!r}; it becomes 'smarthost'")
    if relay.authenticated:
        if not plan.is_address(relay.host):
            notes.append(
                f"passwd.client is matched against the smart host's name as DNS returns it: "
                f"if {relay.host} is a CNAME, add a line for the name it points to"
            )
        notes.append("passwd.client is root:Debian-exim 0640 so that Exim can read it")
    if not relay.tls and not relay.wrapper:
        notes.append(
            "TLS is not required (tls = false)"
            + ("; Exim still sends the password only over TLS" if relay.authenticated else "")
        )
    return plan.apply_plan(
        Mta.EXIM,
        edits,
        notes,
        lambda kept: _commands(config_dir, kept, where.passwd, flush=True),
    )


def plan_revert(files: Files, saved: Files, changed: frozenset[Path], *, config_dir: Path) -> Plan:
    """Back to the saved files; a file edited since apply loses only what blmonitor added."""
    where = _paths(config_dir)
    if files.get(where.handwritten) is not None:
        return Plan(
            Mta.EXIM,
            "revert",
            notes=(
                f"{where.handwritten} is a hand-written configuration: remove the blmonitor "
                "router, transport and authenticator from it by hand",
            ),
            manual=True,
            snippet=_manual_revert_snippet(where.handwritten),
        )

    def undo(path: Path, text: str, before_apply: bytes | None) -> bytes | None:
        if path == where.conf:
            old = plan.decode(before_apply)
            for key in (_TYPE, _SMARTHOST):
                text = _restore_key(text, old, key)
            return plan.encode(text)
        return plan.encode_or_none(blocks.remove(text, path), before_apply)

    paths = (where.conf, where.macros, where.split_macros, where.passwd)
    return plan.revert_plan(
        Mta.EXIM, paths, files, saved, changed, secret=where.passwd, secret_mode=0o640,
        undo=undo, commands=lambda kept: _commands(config_dir, kept, where.passwd, flush=False),
    )  # fmt: skip


def _smarthost(relay: Relay) -> str:
    """dc_smarthost: host::port (two colons: the value is an Exim colon-separated list)."""
    if not plan.HOST.match(relay.host):
        raise PlanError(
            f"smart host {relay.host!r}: Exim's dc_smarthost needs a host name or IPv4 address"
        )
    return f"{relay.host.lower()}::{relay.port}"


def credentials(relay: Relay, config_dir: Path) -> plan.Credentials:
    """blmonitor's line in its block of passwd.client (the admin's lines are theirs)."""
    return plan.Credentials(_paths(config_dir).passwd, "".join(_credentials(relay)))


def _credentials(relay: Relay) -> list[str]:
    """The block's line, host:login:password.

    The adapter reads blmonitor's lines masked by position (`credentials`): the line it wrote
    compares equal (nothing to do), one with an older password reads as STALE (it is rewritten).
    """
    if not relay.authenticated:
        return []
    if ":" in relay.username or "\n" in relay.username:
        raise PlanError(f"smart host username {relay.username!r}: passwd.client cannot hold ':'")
    return [f"{relay.host.lower()}:{relay.username}:{PASSWORD}"]


def _commands(
    config_dir: Path, edits: Sequence[FileEdit], passwd: Path, *, flush: bool
) -> tuple[Command, ...]:
    commands: list[Command] = []
    if any(e.path == passwd and e.after is not None for e in edits):
        commands.append(
            Command(
                ("chown", "root:Debian-exim", str(passwd)),
                "Exim reads passwd.client as group Debian-exim",
            )
        )
        commands.append(Command(("chmod", "0640", str(passwd)), "readable by that group only"))
    if config_dir == DEFAULT_DIR:
        commands.append(
            Command(
                ("update-exim4.conf",),
                "regenerate /var/lib/exim4/config.autogenerated",
                rebuild=True,
            )
        )
        commands.append(Command(("exim4", "-bV"), "check the configuration", validates=True))
    else:
        # update-exim4.conf writes the live configuration unless told otherwise.
        generated = str(config_dir / "config.autogenerated")
        commands.append(
            Command(
                ("update-exim4.conf", "-d", str(config_dir), "-o", generated),
                f"generate {generated} from {config_dir}",
                rebuild=True,
            )
        )
        commands.append(
            Command(("exim4", "-C", generated, "-bV"), "check the configuration", validates=True)
        )
    commands.append(Command(("systemctl", "reload", "exim4"), "make Exim use it", reload=True))
    if flush:
        commands.append(
            Command(("exim4", "-qf"), "retry deferred mail now, via the smart host", optional=True)
        )
    return tuple(commands)


def _manual_apply(relay: Relay, path: Path, smarthost: str, *, none: bool = False) -> Plan:
    if none:
        why = (
            f"{_TYPE}='none' in {path}: update-exim4.conf does not manage this configuration; "
            "blmonitor does not edit it"
        )
        target = "your Exim configuration"
    else:
        why = (
            f"{path} exists: a hand-written configuration that update-exim4.conf leaves alone; "
            "blmonitor does not edit it"
        )
        target = str(path)
    transport = ["  hosts_require_tls = *"] if relay.tls or relay.wrapper else []
    if relay.wrapper:
        transport.append("  protocol = smtps")
    auth: list[str] = []
    if relay.authenticated:
        transport.append("  hosts_require_auth = *")
        auth = [
            "",
            "# in the authenticators section (type the password in place, with ^ and : doubled):",
            "blmonitor_plain:",
            "  driver = plaintext",
            "  public_name = PLAIN",
            f"  client_send = ^{relay.username}^{relay.shown_password()}",
        ]
    snippet = "\n".join(
        [
            f"# --- blmonitor: route outbound mail via {relay.host} (add to {target}) ---",
            "# in the routers section, before the dnslookup router:",
            "blmonitor_smarthost:",
            "  driver = manualroute",
            "  domains = ! +local_domains",
            "  transport = blmonitor_smarthost",
            f"  route_list = * {smarthost} byname",
            "  host_find_failed = defer",
            "  same_domain_copy_routing = yes",
            "  no_more",
            "",
            "# in the transports section:",
            "blmonitor_smarthost:",
            "  driver = smtp",
            *transport,
            *auth,
            "",
            "# then: exim4 -bV && systemctl reload exim4 && exim4 -qf",
        ]
    )
    return Plan(Mta.EXIM, "apply", notes=(why,), manual=True, snippet=snippet + "\n")


def _manual_revert_snippet(path: Path) -> str:
    return (
        f"# --- blmonitor: back to direct delivery (edit {path}) ---\n"
        "# remove the blmonitor_smarthost router, the blmonitor_smarthost transport and the\n"
        "# blmonitor_plain authenticator, then: exim4 -bV && systemctl reload exim4\n"
    )


def _values(text: str) -> dict[str, str]:
    """update-exim4.conf.conf is sourced by sh: name='value' lines, the last one wins."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            raw = match[2].strip()
            if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
                raw = raw[1:-1]
            values[match[1]] = raw
    return values


def _set_value(text: str, key: str, value: str, values: Mapping[str, str]) -> str:
    if values.get(key) == value:
        return text
    return _replace_key(text, key, f"{key}='{value}'")


def _restore_key(text: str, old: str, key: str) -> str:
    """`key`'s line(s) as they were in `old` (removed when `old` had none)."""
    pattern = re.compile(rf"^\s*{key}=")
    old_lines = [line.rstrip("\n") for line in old.splitlines() if pattern.match(line)]
    if not old_lines:
        return _replace_key(text, key, None)
    return _replace_key(text, key, "\n".join(old_lines))


def _replace_key(text: str, key: str, line: str | None) -> str:
    """Every `key=` line replaced by `line` at the first one's place (appended when absent)."""
    pattern = re.compile(rf"^\s*{key}=")
    out: list[str] = []
    done = False
    for current in text.splitlines(keepends=True):
        if pattern.match(current):
            if not done and line is not None:
                out.append(line + "\n")
            done = True
            continue
        out.append(current)
    if not done and line is not None:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(line + "\n")
    return "".join(out)


def _defined_outside(text: str, macro: str, path: Path) -> bool:
    """Whether `macro` is defined outside blmonitor's block (Exim refuses a second definition)."""
    pattern = re.compile(rf"^\s*{macro}\s*==?")
    return any(pattern.match(line) for line in blocks.remove(text, path).splitlines())


def _text(data: bytes | None, path: Path) -> str:
    if data is None:
        raise PlanError(f"{path} does not exist: is exim4-config installed?")
    return plan.decode(data)
