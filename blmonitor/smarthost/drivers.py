"""One driver per MTA (certbot's installers): what the generic apply/revert needs of a server.

A driver knows the files and settings its planner changes, reads the current settings, writes
settings, and tells whether the MTA runs. Every program it runs, reads included, goes through the
injected Runner; `run_command` is the one real runner. Postfix keeps its own tables and changes
main.cf with postconf; Exim, Sendmail and OpenSMTPD are changed by whole files.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from blmonitor.errors import SmarthostError
from blmonitor.smarthost import exim, opensmtpd, postfix, sendmail
from blmonitor.smarthost.checkpoint import Checkpoint, Snapshot
from blmonitor.smarthost.plan import Command, Credentials, Files, Mta, Plan, Relay, Scope

DEFAULT_CONFIG_DIRS = {
    Mta.POSTFIX: postfix.DEFAULT_DIR,
    Mta.EXIM: exim.DEFAULT_DIR,
    Mta.SENDMAIL: sendmail.DEFAULT_DIR,
    Mta.OPENSMTPD: opensmtpd.DEFAULT_DIR,
}


@dataclass(frozen=True, slots=True)
class Ran:
    """A program's exit: its stderr for validation, its stdout for the reads (postconf)."""

    command: str
    returncode: int
    stderr: str
    stdout: str = ""


class Runner(Protocol):
    def __call__(self, argv: Sequence[str]) -> Ran: ...


def run_command(argv: Sequence[str]) -> Ran:
    """Run one program without a shell: the one place the smart host starts a process."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Ran(" ".join(argv), 127, str(exc))
    return Ran(" ".join(argv), done.returncode, done.stderr.strip(), done.stdout)


@dataclass(frozen=True, slots=True)
class Routing:
    """What apply is asked for: the relay, the mail that goes through it, softened bounces."""

    relay: Relay
    scope: Scope = Scope.ALL
    destinations: tuple[str, ...] = ()
    soften: bool = False  # Postfix: blocklist rejections deferred (4xx) instead of bounced


class Driver(Protocol):
    """What `Smarthost` asks of one MTA."""

    mta: Mta
    config_dir: Path
    # revert deletes the files apply created (Postfix's own tables) instead of restoring bytes,
    # so the files its commands created (the indexes) are recorded as created too
    deletes_created: bool

    def paths(self) -> tuple[Path, ...]:
        """The files the planner reads and may write."""
        ...

    def guarded(self) -> tuple[Path, ...]:
        """Every file a change may touch (settings files included): saved before each change."""
        ...

    def check_password(self, password: str, relay: Relay) -> None:
        """SmarthostError for a password the MTA's credentials file cannot hold."""
        ...

    def credentials(self, relay: Relay) -> Credentials:
        """The credentials file and blmonitor's line in it, to mask by position."""
        ...

    def settings(self) -> dict[str, str | None]:
        """The current explicit values of the settings the driver changes ({} for none)."""
        ...

    def plan_apply(self, files: Files, routing: Routing) -> Plan: ...

    def plan_revert(self, files: Files, checkpoint: Checkpoint, saved: Files) -> Plan:
        """Back to `checkpoint`; `saved` is its files' bytes as the planner reads files."""
        ...

    def write_settings(self, settings: Mapping[str, str | None]) -> None: ...

    def running(self) -> bool: ...

    def exact_revert(self, plan: Plan, untouched: Snapshot) -> tuple[Plan, Snapshot]:
        """The revert plan and the files to restore byte for byte, given the saved bytes of
        the files nobody changed since apply."""
        ...

    def rebuild_and_reload(self, plan: Plan) -> tuple[Command, ...]:
        """After files are restored wholesale: what rebuilds from them, a check, the reload."""
        ...


class FilePlanner(Protocol):
    """The planner module of an MTA configured by whole files (exim, sendmail, opensmtpd)."""

    def paths(self, config_dir: Path) -> tuple[Path, ...]: ...

    def credentials(self, relay: Relay, config_dir: Path) -> Credentials: ...

    def plan_apply(self, files: Files, relay: Relay, *, config_dir: Path, scope: Scope = ...,
                   destinations: Sequence[str] = ...) -> Plan: ...  # fmt: skip

    def plan_revert(self, files: Files, saved: Files, changed: frozenset[Path], *,
                    config_dir: Path) -> Plan: ...  # fmt: skip


class FileDriver:
    """Exim, Sendmail or OpenSMTPD: every change is a file edit; revert restores saved bytes."""

    deletes_created = False

    def __init__(
        self,
        mta: Mta,
        planner: FilePlanner,
        config_dir: Path,
        runner: Runner,
        *,
        process: str,
        unquotable: str = "",
    ) -> None:
        self.mta = mta
        self.planner = planner
        self.config_dir = config_dir
        self.run = runner
        self.process = process  # its name for pidof
        self.unquotable = unquotable  # characters its credentials file cannot hold

    def paths(self) -> tuple[Path, ...]:
        return self.planner.paths(self.config_dir)

    def guarded(self) -> tuple[Path, ...]:
        return self.paths()

    def check_password(self, password: str, relay: Relay) -> None:
        if any(c in password for c in self.unquotable):
            raise SmarthostError(
                f"the password in {relay.password_file} holds a {self.unquotable}, which "
                f"{self.mta}'s authinfo cannot quote: choose another password at the relay"
            )

    def credentials(self, relay: Relay) -> Credentials:
        return self.planner.credentials(relay, self.config_dir)

    def settings(self) -> dict[str, str | None]:
        return {}

    def plan_apply(self, files: Files, routing: Routing) -> Plan:
        # routing.soften is Postfix's alone: the others have no delivery status filter
        return self.planner.plan_apply(
            files, routing.relay, config_dir=self.config_dir, scope=routing.scope,
            destinations=routing.destinations,
        )  # fmt: skip

    def plan_revert(self, files: Files, checkpoint: Checkpoint, saved: Files) -> Plan:
        changed = checkpoint.verify()
        return self.planner.plan_revert(files, saved, changed, config_dir=self.config_dir)

    def write_settings(self, settings: Mapping[str, str | None]) -> None:
        if settings:
            raise SmarthostError(f"a plan for {self.mta} holds settings: it has none")

    def running(self) -> bool:
        if not shutil.which("pidof"):
            return False
        return self.run(("pidof", self.process)).returncode == 0

    def exact_revert(self, plan: Plan, untouched: Snapshot) -> tuple[Plan, Snapshot]:
        return plan, {}  # the planner's revert already restores untouched files exactly

    def rebuild_and_reload(self, plan: Plan) -> tuple[Command, ...]:
        return tuple(c for c in plan.commands if c.rebuild or c.validates or c.reload)


class PostfixDriver:
    """Postfix: main.cf changed with postconf, blmonitor's own tables beside it."""

    mta = Mta.POSTFIX
    deletes_created = True

    def __init__(self, config_dir: Path, runner: Runner) -> None:
        self.config_dir = config_dir
        self.run = runner

    @property
    def main_cf(self) -> Path:
        return self.config_dir / "main.cf"

    def _postconf(self, *args: str) -> str:
        ran = self.run(("postconf", "-c", str(self.config_dir), *args))
        if ran.returncode != 0:
            raise SmarthostError(
                f"postconf cannot read {self.config_dir}: {ran.stderr or 'failed'}"
            )
        return ran.stdout

    def _db_type(self) -> str:
        return self._postconf("-h", "default_database_type").strip() or "hash"

    def paths(self) -> tuple[Path, ...]:
        return postfix.paths(self.config_dir, self._db_type())

    def guarded(self) -> tuple[Path, ...]:
        return (*self.paths(), self.main_cf)

    def check_password(self, password: str, relay: Relay) -> None:
        """postmap takes the whole rest of the line as the value: any password fits."""

    def credentials(self, relay: Relay) -> Credentials:
        return postfix.credentials(relay, self.config_dir)

    def settings(self) -> dict[str, str | None]:
        values: dict[str, str | None] = dict.fromkeys(postfix.MANAGED)
        for line in self._postconf("-n", *postfix.MANAGED).splitlines():
            name, _, value = line.partition(" = ")
            values[name.strip()] = value
        return values

    def plan_apply(self, files: Files, routing: Routing) -> Plan:
        return postfix.plan_apply(
            self.settings(), files, routing.relay, config_dir=self.config_dir,
            db_type=self._db_type(), scope=routing.scope, destinations=routing.destinations,
            soften=routing.soften,
        )  # fmt: skip

    def plan_revert(self, files: Files, checkpoint: Checkpoint, saved: Files) -> Plan:
        ours = {p: data for p, data in files.items() if p in checkpoint.created}
        return postfix.plan_revert(
            self.settings(), checkpoint.settings, ours, config_dir=self.config_dir
        )

    def write_settings(self, settings: Mapping[str, str | None]) -> None:
        remove = [k for k, v in settings.items() if v is None]
        assign = [f"{k}={v}" for k, v in settings.items() if v is not None]
        for argv in (
            ["postconf", "-c", str(self.config_dir), "-X", *remove] if remove else None,
            ["postconf", "-c", str(self.config_dir), "-e", *assign] if assign else None,
        ):
            if argv is None:
                continue
            ran = self.run(argv)
            if ran.returncode != 0 or "fatal:" in ran.stderr or "warning:" in ran.stderr:
                raise SmarthostError(
                    f"postconf failed: {first_line(ran.stderr) or f'exit {ran.returncode}'}; "
                    "the previous configuration is restored"
                )

    def running(self) -> bool:
        return self.run(("postfix", "-c", str(self.config_dir), "status")).returncode == 0

    def exact_revert(self, plan: Plan, untouched: Snapshot) -> tuple[Plan, Snapshot]:
        if self.main_cf not in untouched:
            return plan, {}
        # main.cf as blmonitor left it: its old bytes are the exact revert of the settings
        return dataclasses.replace(plan, settings={}), {self.main_cf: untouched[self.main_cf]}

    def rebuild_and_reload(self, plan: Plan) -> tuple[Command, ...]:
        directory = str(self.config_dir)
        return (
            Command(("postfix", "-c", directory, "check"), "validate", validates=True),
            Command(("postfix", "-c", directory, "reload"), "re-read main.cf", reload=True),
        )


def driver_for(mta: Mta, config_dir: Path, runner: Runner) -> Driver:
    """The driver of `mta` for the configuration in `config_dir`."""
    if mta is Mta.POSTFIX:
        return PostfixDriver(config_dir, runner)
    if mta is Mta.EXIM:
        return FileDriver(mta, exim, config_dir, runner, process="exim4")
    if mta is Mta.SENDMAIL:
        return FileDriver(mta, sendmail, config_dir, runner, process="sendmail", unquotable='"')
    if mta is Mta.OPENSMTPD:
        return FileDriver(mta, opensmtpd, config_dir, runner, process="smtpd")
    raise SmarthostError("Exchange is changed by hand: use `blmonitor smarthost plan`")


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
