"""The shapes every smart-host planner returns: what to write, what to run, what to tell.

A Plan never holds blmonitor's relay password, the current one or one it replaces: the adapter
reads a credentials file with blmonitor's own lines masked by their position (PASSWORD or STALE),
and only the adapter that writes the file puts the password (read from `password_file`) in its
place. A credentials file is shown as what happens to it, never as its lines.
"""

from __future__ import annotations

import difflib
import enum
import ipaddress
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from blmonitor.errors import PlanError

# What a relay's host may be where it is written into a config file unquoted.
HOST = re.compile(r"^[A-Za-z0-9._-]+$")  # a host name or an IPv4 address
HOST_OR_IPV6 = re.compile(r"^[A-Za-z0-9._:-]+$")
_DOMAIN = re.compile(r"[a-z0-9.-]+")
_WILDCARD_DOMAIN = re.compile(r"[a-z0-9.*-]+")

# Stands in for the relay password in planned file contents; never a valid password.
PASSWORD = "\x00blmonitor-password\x00"
SHOWN_PASSWORD = "<password from {file}>"
# Stands in for a line of blmonitor's in a credentials file that is not the wanted one (an older
# password, an older login): never shown, never written back, and never equal to a wanted line.
STALE = "\x00blmonitor-stale-credentials\x00"
# A file that exists and is not read (a binary index such as sasl_passwd.db holds the password).
PRESENT = b"\x00present\x00"

# What a planner is given: each file's bytes as the adapter read them, None when it is missing.
Files = Mapping[Path, bytes | None]


class Mta(enum.StrEnum):
    POSTFIX = "postfix"
    EXIM = "exim"
    SENDMAIL = "sendmail"
    OPENSMTPD = "opensmtpd"
    EXCHANGE = "exchange"


class Scope(enum.StrEnum):
    ALL = "all"  # every outbound message goes through the relay
    DESTINATIONS = "destinations"  # only the receiving domains that block us


@dataclass(frozen=True, slots=True)
class Relay:
    """The ISP's smart host, as [smarthost] in the config names it."""

    host: str
    port: int = 587
    username: str = ""
    password_file: Path | None = None
    tls: bool = True  # TLS required: credentials are never sent in clear

    @property
    def wrapper(self) -> bool:
        """Port 465 speaks TLS from the first byte (SMTPS), not STARTTLS."""
        return self.port == 465

    @property
    def authenticated(self) -> bool:
        return bool(self.username)

    def shown_password(self) -> str:
        return SHOWN_PASSWORD.format(file=self.password_file or "password_file")


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where an MTA keeps the relay password, and blmonitor's line there (PASSWORD in place).

    blmonitor's lines are found by position, never by searching for a password: the whole file
    when it is blmonitor's alone (`whole`), else the lines of its marked block.
    """

    path: Path
    line: str  # "" without a login: any line of blmonitor's left there is stale
    whole: bool = False


@dataclass(frozen=True, slots=True)
class FileEdit:
    """One file's whole content before and after; None means the file does not exist."""

    path: Path
    before: bytes | None
    after: bytes | None
    mode: int = 0o644
    secret: bool = False  # `after` holds PASSWORD; written 0600, shown masked

    def shown(self, relay: Relay) -> str:
        """A unified diff for a person; for a credentials file only what happens to the relay's
        credentials, never a line of it (neither ours, old or new, nor the admin's others)."""

        def lines(data: bytes | None) -> list[str]:
            return (data or b"").decode("utf-8", "replace").splitlines(keepends=True)

        name = str(self.path)
        if self.secret:
            return f"{name}: credentials for [{relay.host}]:{relay.port} ({self.change})\n"
        if self.after is None:
            return f"delete {name}\n"
        if self.before == PRESENT:
            return f"rewrite {name}\n"
        old = "/dev/null" if self.before is None else name
        return "".join(difflib.unified_diff(lines(self.before), lines(self.after), old, name))

    @property
    def change(self) -> str:
        """What the edit does to blmonitor's credentials: new, changed, unchanged or removed."""
        had, has = _holds_ours(self.before), _holds_ours(self.after)
        if has and not had:
            return "new"
        if had and not has:
            return "removed"
        if had and self.before is not None and STALE.encode() in self.before:
            return "changed"  # an older password or login of blmonitor's is replaced
        return "unchanged"


def _holds_ours(data: bytes | None) -> bool:
    return data is not None and (PASSWORD.encode() in data or STALE.encode() in data)


@dataclass(frozen=True, slots=True)
class Command:
    """One program to run after the files are written, and why."""

    argv: tuple[str, ...]
    why: str
    validates: bool = False  # a check: any output on stderr naming warning:/fatal: fails it
    reload: bool = False  # run only when the MTA is running
    optional: bool = False  # a failure is reported, not rolled back (e.g. flushing the queue)
    rebuild: bool = False  # regenerates files outside the checkpoint: run again on rollback

    def shown(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True, slots=True)
class Plan:
    """An exact change for one MTA: the files, the commands in order, and what a person must know.

    `manual` plans (Exchange, a hand-written Exim config) are printed, never applied.
    """

    mta: Mta
    action: str  # "apply" or "revert"
    edits: tuple[FileEdit, ...] = ()
    commands: tuple[Command, ...] = ()
    notes: tuple[str, ...] = ()
    manual: bool = False
    snippet: str = ""  # ready-to-paste text for a manual plan (PowerShell for Exchange)
    settings: dict[str, str | None] = field(default_factory=dict)  # Postfix main.cf: name → value

    @property
    def empty(self) -> bool:
        """Nothing to do: the MTA is already in the wanted state."""
        changed = [e for e in self.edits if e.before != e.after]
        return not changed and not self.settings and not self.manual


def render_plan(plan: Plan, relay: Relay) -> str:
    """The plan as text for a person: notes, file diffs, commands (password masked)."""
    out: list[str] = [f"# {plan.mta} smart host: {plan.action}"]
    out.extend(f"# {note}" for note in plan.notes)
    if plan.empty:
        out.append("# nothing to change: already in that state")
    if plan.settings:
        out.append("# main.cf settings (made with postconf -e, removed with postconf -X):")
    for name, value in plan.settings.items():
        out.append(f"{name} = {value}" if value is not None else f"(remove) {name}")
    for edit in plan.edits:
        if edit.before != edit.after:
            out.append(edit.shown(relay).rstrip("\n"))
    out.extend(f"{c.shown()}    # {c.why}" for c in plan.commands)
    if plan.snippet:
        out.append(plan.snippet.rstrip("\n"))
    return "\n".join(out) + "\n"


# --- helpers of the planners that edit whole files (exim, sendmail, opensmtpd) ---------------


def decode(data: bytes | None) -> str:
    """A config file as text; bytes that are not UTF-8 come back unchanged from `encode`."""
    return "" if data is None else data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def encode_or_none(text: str, before: bytes | None) -> bytes | None:
    """A file blmonitor created and that is empty again is removed rather than left empty."""
    if not text and before is None:
        return None
    return encode(text)


def apply_plan(
    mta: Mta,
    edits: Iterable[FileEdit],
    notes: Iterable[str],
    commands: Callable[[Sequence[FileEdit]], tuple[Command, ...]],
) -> Plan:
    """The plan of the edits that change something, with `commands(those edits)` to run after
    them; an empty plan, notes dropped, when the files are already as wanted."""
    changed = [e for e in edits if e.before != e.after]
    if not changed:
        return Plan(mta, "apply")
    return Plan(mta, "apply", tuple(changed), commands(changed), tuple(notes))


def revert_plan(
    mta: Mta,
    paths: Iterable[Path],
    files: Files,
    saved: Files,
    changed: frozenset[Path],
    *,
    secret: Path,
    secret_mode: int,
    undo: Callable[[Path, str, bytes | None], bytes | None],
    commands: Callable[[Sequence[FileEdit]], tuple[Command, ...]],
) -> Plan:
    """The plan back to the saved files: exact for a file nobody touched since apply; for one
    the admin edited, `undo(path, current text, saved bytes)` takes out only blmonitor's part.
    `commands(edits)` are what the MTA needs run after those edits."""
    edits: list[FileEdit] = []
    notes: list[str] = []
    for path in paths:
        is_secret = path == secret
        mode = secret_mode if is_secret else 0o644
        current, before_apply = files.get(path), saved.get(path)
        if path not in changed:
            edits.append(FileEdit(path, current, before_apply, mode=mode, secret=is_secret))
            continue
        if current is None:
            notes.append(f"{path} was removed since apply: left as it is")
            continue
        notes.append(f"{path} was edited since apply: only blmonitor's changes are undone")
        after = undo(path, decode(current), before_apply)
        edits.append(FileEdit(path, current, after, mode=mode, secret=is_secret))
    edits = [e for e in edits if e.before != e.after]
    if not edits:
        return Plan(mta, "revert", notes=tuple(notes))
    return Plan(mta, "revert", tuple(edits), commands(edits), tuple(notes))


def refuse_smtps(relay: Relay, why: str) -> None:
    """A PlanError for port 465 where the MTA or blmonitor's plan speaks STARTTLS only."""
    if relay.wrapper:
        raise PlanError(
            f"smart host port 465 (TLS from the first byte): {why}; "
            "use the relay's submission port 587"
        )


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def destination_domains(destinations: Iterable[str], *, wildcards: bool = False) -> list[str]:
    """The receiving domains of scope = destinations, lower case, sorted, each once; PlanError
    for none or for one that is not a domain name (`*` allowed with `wildcards`)."""
    domains = sorted({d.strip().lower().rstrip(".") for d in destinations if d.strip()})
    if not domains:
        raise PlanError("smart host scope = destinations needs at least one destination")
    allowed = _WILDCARD_DOMAIN if wildcards else _DOMAIN
    for domain in domains:
        if not allowed.fullmatch(domain):
            raise PlanError(f"destination {domain!r} is not a domain name")
    return domains
