"""Apply and revert a smart-host plan on the MTA: checkpoint, write, validate, reload, roll back.

Every file is saved before it changes (certbot's Reverter idea). The saved state lives in one 0600
JSON file in the state directory, so `revert` restores the exact previous bytes when nobody edited
the files since, and undoes only blmonitor's own settings when somebody did. A lock file keeps two
runs from interleaving. The password is read from its file only to write the MTA's credential
table: it is in no argument list, no message, no state file.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from blmonitor.errors import SmarthostError
from blmonitor.smarthost import postfix
from blmonitor.smarthost.plan import PASSWORD, PRESENT, Command, FileEdit, Mta, Plan, Relay, Scope

DEFAULT_CONFIG_DIRS = {
    Mta.POSTFIX: Path("/etc/postfix"),
    Mta.EXIM: Path("/etc/exim4"),
    Mta.SENDMAIL: Path("/etc/mail"),
    Mta.OPENSMTPD: Path("/etc"),
}
STATE_NAME = "smarthost.json"
_INDEX_SUFFIXES = (".db", ".lmdb", ".cdb", ".dir", ".pag")


class FilePlanner(Protocol):
    """The planner module of an MTA configured by whole files (exim, sendmail, opensmtpd)."""

    def paths(self, config_dir: Path) -> tuple[Path, ...]: ...

    def plan_apply(
        self,
        files: Mapping[Path, bytes | None],
        relay: Relay,
        *,
        config_dir: Path,
        scope: Scope = ...,
        destinations: Sequence[str] = ...,
    ) -> Plan: ...

    def plan_revert(
        self,
        files: Mapping[Path, bytes | None],
        saved: Mapping[Path, bytes | None],
        changed: frozenset[Path],
        *,
        config_dir: Path,
    ) -> Plan: ...


def file_planner(mta: Mta) -> FilePlanner:
    """The planner module of an MTA configured by whole files."""
    from blmonitor.smarthost import exim, opensmtpd, sendmail

    planners: dict[Mta, FilePlanner] = {
        Mta.EXIM: exim, Mta.SENDMAIL: sendmail, Mta.OPENSMTPD: opensmtpd
    }  # fmt: skip
    return planners[mta]


@dataclass(frozen=True, slots=True)
class Ran:
    command: str
    returncode: int
    stderr: str


class Runner(Protocol):
    def __call__(self, argv: Sequence[str]) -> Ran: ...


def run_command(argv: Sequence[str]) -> Ran:
    """Run one program without a shell; its stderr is kept for validation."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Ran(" ".join(argv), 127, str(exc))
    return Ran(" ".join(argv), done.returncode, done.stderr.strip())


def detect_mta(root: Path = Path("/")) -> Mta:
    """The MTA installed here, from its configuration files."""
    found = [
        mta
        for mta, marker in (
            (Mta.POSTFIX, "etc/postfix/main.cf"),
            (Mta.EXIM, "etc/exim4/update-exim4.conf.conf"),
            (Mta.SENDMAIL, "etc/mail/sendmail.mc"),
            (Mta.OPENSMTPD, "etc/smtpd.conf"),
        )
        if (root / marker).exists()
    ]
    if len(found) != 1:
        what = "no MTA configuration" if not found else "several MTAs (" + ", ".join(found) + ")"
        raise SmarthostError(f"found {what}: set mta = postfix|exim|sendmail|opensmtpd|exchange")
    return found[0]


def read_password(relay: Relay) -> str:
    """The relay password from `password_file` (first line); "" when no login is configured."""
    if not relay.authenticated:
        return ""
    if relay.password_file is None:
        raise SmarthostError("[smarthost] username is set without password_file: add password_file")
    try:
        lines = relay.password_file.read_text().splitlines()
    except OSError as exc:
        raise SmarthostError(
            f"cannot read the smart-host password file {relay.password_file}: {exc.strerror}"
        ) from exc
    if not lines or not lines[0]:
        raise SmarthostError(f"{relay.password_file} is empty: put the relay password on line 1")
    return lines[0]


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a crash leaves the old or the new file whole."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp = Path(f.name)
    try:
        if path.exists():
            stat = path.stat()
            with contextlib.suppress(PermissionError):
                os.chown(tmp, stat.st_uid, stat.st_gid)
            if mode == 0o644:
                mode = stat.st_mode & 0o7777
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _put(path: Path, data: bytes | None, mode: int = 0o644) -> None:
    if data is None:
        path.unlink(missing_ok=True)
    else:
        _write_atomic(path, data, mode)


@dataclass
class Outcome:
    """What apply or revert did, for the CLI, the history and the notification."""

    plan: Plan
    changed: bool
    reloaded: bool = False
    notes: list[str] = field(default_factory=list)


class Smarthost:
    """One MTA's smart-host switch: plan, apply, revert, status, with its saved state."""

    def __init__(
        self,
        mta: Mta,
        relay: Relay,
        *,
        config_dir: Path | None = None,
        state_dir: Path,
        scope: Scope = Scope.ALL,
        destinations: Sequence[str] = (),
        soften: bool = False,
        runner: Runner = run_command,
    ) -> None:
        if mta is Mta.EXCHANGE:
            raise SmarthostError("Exchange is changed by hand: use `blmonitor smarthost plan`")
        self.mta = mta
        self.relay = relay
        self.config_dir = (config_dir or DEFAULT_CONFIG_DIRS[mta]).absolute()
        self.state_dir = state_dir
        self.scope = scope
        self.destinations = tuple(destinations)
        self.soften = soften
        self.run = runner
        self._password = ""

    # --- reading the MTA ---------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_NAME

    def _main_cf(self) -> Path:
        return self.config_dir / "main.cf"

    def _paths(self) -> tuple[Path, ...]:
        if self.mta is Mta.POSTFIX:
            return postfix.paths(self.config_dir, self._db_type())
        return file_planner(self.mta).paths(self.config_dir)

    def _db_type(self) -> str:
        if self.mta is not Mta.POSTFIX:
            return ""
        value = self._postconf_value("default_database_type", explicit=False)
        return value or "hash"

    def _postconf_value(self, name: str, *, explicit: bool) -> str | None:
        flag = "-n" if explicit else "-h"
        done = subprocess.run(
            ["postconf", "-c", str(self.config_dir), flag, name], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SmarthostError(
                f"postconf cannot read {self.config_dir}: {done.stderr.strip() or 'failed'}"
            )
        out = done.stdout.strip()
        if not explicit:
            return out
        return out.partition(" = ")[2] if out else None

    def _explicit(self) -> dict[str, str | None]:
        done = subprocess.run(
            ["postconf", "-c", str(self.config_dir), "-n", *postfix.MANAGED],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SmarthostError(
                f"postconf cannot read {self.config_dir}: {done.stderr.strip() or 'failed'}"
            )
        values: dict[str, str | None] = dict.fromkeys(postfix.MANAGED)
        for line in done.stdout.splitlines():
            name, _, value = line.partition(" = ")
            values[name.strip()] = value
        return values

    def _read(self, path: Path) -> bytes | None:
        """A file's bytes with our password masked; indexes are only known to exist."""
        if path.suffix in _INDEX_SUFFIXES:
            return PRESENT if path.exists() else None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if self._password:
            data = data.replace(self._password.encode(), PASSWORD.encode())
        return data

    def _files(self) -> dict[Path, bytes | None]:
        return {p: self._read(p) for p in self._paths()}

    def _load_state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SmarthostError(
                f"{self.state_path} cannot be read ({exc}): restore the MTA by hand, then delete it"
            ) from exc
        return data

    def _save_state(self, state: Mapping[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.state_path, json.dumps(state, indent=1).encode(), 0o600)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "smarthost.lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise SmarthostError(
                    "another blmonitor smarthost apply or revert is running: try again later"
                ) from exc
            yield

    # --- plans -----------------------------------------------------------------------------

    def plan_apply(self) -> Plan:
        """The change that routes mail through the relay, from the MTA's current configuration."""
        self._password = read_password(self.relay) if self.relay.authenticated else ""
        if self.mta is Mta.SENDMAIL and '"' in self._password:
            raise SmarthostError(
                f"the password in {self.relay.password_file} holds a \", which sendmail's "
                "authinfo cannot quote: choose another password at the relay"
            )
        files = self._files()
        if self.mta is Mta.POSTFIX:
            return postfix.plan_apply(
                self._explicit(), files, self.relay, config_dir=self.config_dir,
                db_type=self._db_type(), scope=self.scope, destinations=self.destinations,
                soften=self.soften,
            )  # fmt: skip
        return file_planner(self.mta).plan_apply(
            files, self.relay, config_dir=self.config_dir, scope=self.scope,
            destinations=self.destinations,
        )  # fmt: skip

    def plan_revert(self) -> Plan:
        """The change back to the state saved before apply (empty when nothing is applied)."""
        state = self._load_state()
        if state is None:
            return Plan(self.mta, "revert", notes=("the smart host is not applied",))
        if (state["mta"], state["config_dir"]) != (str(self.mta), str(self.config_dir)):
            raise SmarthostError(
                f"the smart host was applied to {state['mta']} in {state['config_dir']}: "
                f"revert with --mta {state['mta']} --config-dir {state['config_dir']}"
            )
        self._password = read_password(self.relay) if self.relay.authenticated else ""
        files = self._files()
        if self.mta is Mta.POSTFIX:
            ours = {p: d for p, d in files.items() if str(p) in state["created"]}
            return postfix.plan_revert(
                self._explicit(), state["settings"], ours, config_dir=self.config_dir
            )
        saved = {Path(p): _unb64(d) for p, d in state["files"].items()}
        changed = frozenset(
            p for p in saved if _digest(self._raw(p)) != state["written"].get(str(p))
        )
        masked_saved = {p: self._mask(d) for p, d in saved.items()}
        return file_planner(self.mta).plan_revert(
            files, masked_saved, changed, config_dir=self.config_dir
        )

    def _raw(self, path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def _mask(self, data: bytes | None) -> bytes | None:
        if data is None or not self._password:
            return data
        return data.replace(self._password.encode(), PASSWORD.encode())

    # --- doing it --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Whether blmonitor's routing is in place, since when, to which relay."""
        state = self._load_state()
        if state is None:
            return {"applied": False, "mta": str(self.mta), "config_dir": str(self.config_dir)}
        keep = ("mta", "config_dir", "relay", "scope", "destinations", "applied_at")
        return {"applied": True, **{k: state[k] for k in keep if k in state}}

    def apply(self, *, now: str) -> Outcome:
        """Route mail through the relay; every touched file is restored if any step fails."""
        with self._lock():
            plan = self.plan_apply()
            if plan.manual:
                raise SmarthostError(
                    "; ".join(plan.notes) or "this configuration is changed by hand"
                )
            if plan.empty and not plan.commands:
                return Outcome(plan, changed=False, notes=["already routed through the relay"])
            before = self._load_state()
            state = copy.deepcopy(before)
            checkpoint = self._checkpoint(plan)
            if state is None:
                state = {
                    "mta": str(self.mta), "config_dir": str(self.config_dir),
                    "applied_at": now, "files": checkpoint,
                    "created": [str(e.path) for e in plan.edits if e.before is None],
                    "settings": self._explicit() if self.mta is Mta.POSTFIX else {},
                }  # fmt: skip
            else:  # applied before (other destinations): keep what was there first
                for name, data in checkpoint.items():
                    state["files"].setdefault(name, data)
                state["created"] = sorted(
                    set(state["created"]) | {str(e.path) for e in plan.edits if e.before is None}
                )
            state.update(
                relay={"host": self.relay.host, "port": self.relay.port,
                       "username": self.relay.username},
                scope=str(self.scope), destinations=list(self.destinations), status="applying",
            )  # fmt: skip
            self._save_state(state)  # before the first change: a crash leaves the way back
            try:
                outcome = self._execute(plan, checkpoint)
            except BaseException:
                if before is None:  # rolled back: nothing is applied
                    self.state_path.unlink(missing_ok=True)
                else:
                    self._save_state(before)
                raise
            if self.mta is Mta.POSTFIX:
                state["created"] = sorted(
                    set(state["created"])
                    | {p for p, d in checkpoint.items() if d is None and Path(p).exists()}
                )
            state["written"] = {p: _digest(self._raw(Path(p))) for p in state["files"]}
            state["status"] = "applied"
            self._save_state(state)
            return outcome

    def revert(self) -> Outcome:
        """Back to direct delivery: the exact saved bytes when untouched since apply."""
        with self._lock():
            state = self._load_state()
            plan = self.plan_revert()
            if state is None:
                return Outcome(plan, changed=False, notes=["the smart host is not applied"])
            checkpoint = self._checkpoint(plan)
            saved = {Path(p): _unb64(d) for p, d in state["files"].items()}
            if state.get("status") == "applying":
                # an apply that was killed half-way: every saved file back, byte for byte
                plan = Plan(plan.mta, plan.action, (), _rebuild_and_reload(plan, self),
                            ("an interrupted apply is undone from its checkpoint",))  # fmt: skip
                outcome = self._execute(plan, checkpoint, restore=saved)
                self.state_path.unlink()
                return outcome
            untouched = {
                p: d for p, d in saved.items()
                if _digest(self._raw(p)) == state.get("written", {}).get(str(p))
            }  # fmt: skip
            if self.mta is Mta.POSTFIX and self._main_cf() in untouched:
                # main.cf as blmonitor left it: its old bytes are the exact revert
                plan = Plan(plan.mta, plan.action, plan.edits, plan.commands, plan.notes,
                            settings={})  # fmt: skip
                restore: dict[Path, bytes | None] = {self._main_cf(): untouched[self._main_cf()]}
            else:
                restore = {}
            outcome = self._execute(plan, checkpoint, restore=restore)
            self.state_path.unlink()
            return outcome

    def _checkpoint(self, plan: Plan) -> dict[str, str | None]:
        """The current bytes of every file the plan may change (main.cf included)."""
        paths = {e.path for e in plan.edits} | set(self._paths())
        if self.mta is Mta.POSTFIX:
            paths.add(self._main_cf())
        return {str(p): _b64(self._raw(p)) for p in sorted(paths)}

    def _execute(
        self,
        plan: Plan,
        checkpoint: Mapping[str, str | None],
        *,
        restore: Mapping[Path, bytes | None] | None = None,
    ) -> Outcome:
        outcome = Outcome(plan, changed=True)
        running = self._running()
        try:
            for path, data in (restore or {}).items():
                _put(path, data)
            for edit in plan.edits:
                self._write(edit)
            if plan.settings:
                self._postconf(plan.settings)
            for command in plan.commands:
                if command.reload and not running:
                    outcome.notes.append(f"not run, {self.mta} is not running: {command.shown()}")
                    continue
                ran = self.run(command.argv)
                failed = ran.returncode != 0 or (
                    command.validates and ("warning:" in ran.stderr or "fatal:" in ran.stderr)
                )
                if failed and command.optional:
                    outcome.notes.append(f"{command.shown()} failed: {_first_line(ran.stderr)}")
                elif failed:
                    raise SmarthostError(
                        f"{command.shown()} failed ({command.why}): "
                        f"{_first_line(ran.stderr) or f'exit {ran.returncode}'}; "
                        "the previous configuration is restored"
                    )
                outcome.reloaded |= command.reload
        except BaseException:
            self._rollback(plan, checkpoint, reload=running)
            raise
        return outcome

    def _rollback(self, plan: Plan, checkpoint: Mapping[str, str | None], *, reload: bool) -> None:
        """Every checkpointed file back as it was; what is built from them built again; the
        MTA reloaded (best effort: the first error is the one reported)."""
        for name, data in checkpoint.items():
            path = Path(name)
            if _digest(self._raw(path)) != _digest(_unb64(data)):
                _put(path, _unb64(data), path.stat().st_mode & 0o7777 if path.exists() else 0o600)
        for command in plan.commands:
            if command.rebuild or (reload and command.reload and not command.optional):
                self.run(command.argv)

    def _write(self, edit: FileEdit) -> None:
        if edit.after is None:
            edit.path.unlink(missing_ok=True)
            return
        data = edit.after
        if edit.secret:
            data = data.replace(PASSWORD.encode(), self._password.encode())
        elif PASSWORD.encode() in data:
            raise SmarthostError(
                f"{edit.path}: a plan put the password in a file not marked secret"
            )
        _write_atomic(edit.path, data, edit.mode)

    def _postconf(self, settings: Mapping[str, str | None]) -> None:
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
                    f"postconf failed: {_first_line(ran.stderr) or f'exit {ran.returncode}'}; "
                    "the previous configuration is restored"
                )

    def _running(self) -> bool:
        if self.mta is Mta.POSTFIX:
            return self.run(("postfix", "-c", str(self.config_dir), "status")).returncode == 0
        name = {Mta.EXIM: "exim4", Mta.SENDMAIL: "sendmail", Mta.OPENSMTPD: "smtpd"}[self.mta]
        return self.run(("pidof", name)).returncode == 0 if shutil.which("pidof") else False


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _rebuild_and_reload(plan: Plan, switch: Smarthost) -> tuple[Command, ...]:
    """After restoring files wholesale: what rebuilds from them, a check, and the reload."""
    if switch.mta is Mta.POSTFIX:
        directory = str(switch.config_dir)
        return (
            Command(("postfix", "-c", directory, "check"), "validate", validates=True),
            Command(("postfix", "-c", directory, "reload"), "re-read main.cf", reload=True),
        )
    return tuple(c for c in plan.commands if c.rebuild or c.validates or c.reload)
