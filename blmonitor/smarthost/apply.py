"""Apply and revert a smart-host plan through the MTA's driver: checkpoint, write, validate,
reload, roll back. `revert` restores the exact saved bytes when nobody edited the files since,
and undoes only blmonitor's own settings when somebody did; a lock keeps two runs apart. The
password is read only to write the MTA's credential table: in no plan, argument, message or state
file; a rotated one is told by the checkpoint's digest of the password file and written anew.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blmonitor.errors import SmarthostError
from blmonitor.smarthost import blocks, defaults
from blmonitor.smarthost.checkpoint import (
    STATE_NAME,
    Checkpoint,
    SavedRelay,
    Snapshot,
    Status,
    digest,
    matches,
    put_all,
    read,
    roll_back,
    secret_digest,
    snapshot,
    write_atomic,
)
from blmonitor.smarthost.drivers import (
    DEFAULT_CONFIG_DIRS,
    Routing,
    Runner,
    driver_for,
    first_line,
    run_command,
)
from blmonitor.smarthost.plan import (
    PASSWORD,
    PRESENT,
    STALE,
    Credentials,
    FileEdit,
    Files,
    Mta,
    Plan,
    Relay,
    Scope,
)

_INDEX_SUFFIXES = (".db", ".lmdb", ".cdb", ".dir", ".pag")


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
    content = _password_content(relay)
    if content is None:
        return ""
    lines = content.decode("utf-8", "surrogateescape").splitlines()
    if not lines or not lines[0]:
        raise SmarthostError(f"{relay.password_file} is empty: put the relay password on line 1")
    return lines[0]


def _password_content(relay: Relay) -> bytes | None:
    """The bytes of `password_file`; None when no login is configured."""
    if not relay.authenticated:
        return None
    if relay.password_file is None:
        raise SmarthostError("[smarthost] username is set without password_file: add password_file")
    try:
        return relay.password_file.read_bytes()
    except OSError as exc:
        raise SmarthostError(
            f"cannot read the smart-host password file {relay.password_file}: {exc.strerror}"
        ) from exc


@dataclass
class Outcome:
    """What apply or revert did, for the CLI, the history and the notification."""

    plan: Plan
    changed: bool
    reloaded: bool = False
    notes: list[str] = field(default_factory=list)


class Smarthost:
    """One MTA's smart-host switch: plan, apply, revert, status, with its saved checkpoint."""

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
        self.driver = driver_for(mta, self.config_dir, runner)
        self._password = ""
        self._credentials: Credentials | None = None

    # --- reading the MTA ---------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_NAME

    def _mask(self, path: Path, data: bytes | None) -> bytes | None:
        """The credentials file with blmonitor's lines masked by position (`blocks.mask`)."""
        where = self._credentials
        if data is None or where is None or path != where.path:
            return data
        return blocks.mask(data, where, self._password)

    def _read(self, path: Path) -> bytes | None:
        """A file's bytes with our credentials masked; indexes are only known to exist."""
        if path.suffix in _INDEX_SUFFIXES:
            return PRESENT if path.exists() else None
        return self._mask(path, read(path))

    def _load_password(self) -> None:
        self._password = read_password(self.relay)
        self._credentials = self.driver.credentials(self.relay)

    def _files(self) -> dict[Path, bytes | None]:
        return {p: self._read(p) for p in self.driver.paths()}

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

    def plan_apply(self, *, preview: bool = False) -> Plan:
        """The change that routes mail through the relay, from the MTA's current configuration;
        with `preview`, an MTA not installed here is planned against Debian's default files (a
        plan to read, never one that `apply` makes)."""
        self._load_password()
        self.driver.check_password(self._password, self.relay)
        routing = Routing(self.relay, self.scope, self.destinations, self.soften)
        files: Files = self._files()
        notes: tuple[str, ...] = ()
        if preview:
            files, notes = defaults.preview(self.mta, self.config_dir, files)
        plan = self.driver.plan_apply(files, routing)
        return dataclasses.replace(plan, notes=(*notes, *plan.notes)) if notes else plan

    def plan_revert(self) -> Plan:
        """The change back to the state saved before apply (empty when nothing is applied)."""
        saved = Checkpoint.load(self.state_path)
        if saved is None:
            return Plan(self.mta, "revert", notes=("the smart host is not applied",))
        if (saved.mta, saved.config_dir) != (self.mta, self.config_dir):
            raise SmarthostError(
                f"the smart host was applied to {saved.mta} in {saved.config_dir}: "
                f"revert with --mta {saved.mta} --config-dir {saved.config_dir}"
            )
        self._load_password()
        masked = {p: self._mask(p, data) for p, data in saved.files.items()}
        return self.driver.plan_revert(self._files(), saved, masked)

    def password_changed(self) -> bool:
        """Whether the password file changed since the last apply: a rotation to write."""
        saved = Checkpoint.load(self.state_path)
        if saved is None or saved.status is not Status.APPLIED or not self.relay.authenticated:
            return False
        if saved.password is None:  # applied by a blmonitor that kept no digest: check once
            return True
        return not matches(_password_content(self.relay), saved.password)

    # --- doing it --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Whether blmonitor's routing is in place, since when, to which relay."""
        saved = Checkpoint.load(self.state_path)
        if saved is None:
            return {"applied": False, "mta": str(self.mta), "config_dir": str(self.config_dir)}
        state = saved.to_json()
        keep = ("mta", "config_dir", "relay", "scope", "destinations", "applied_at")
        return {"applied": True, **{k: state[k] for k in keep}}

    def apply(self, *, now: str) -> Outcome:
        """Route mail through the relay; every touched file is restored if any step fails."""
        with self._lock():
            plan = self.plan_apply()
            if plan.manual:
                raise SmarthostError(
                    "; ".join(plan.notes) or "this configuration is changed by hand"
                )
            if plan.empty and not plan.commands:
                self._remember_password(Checkpoint.load(self.state_path))
                return Outcome(plan, changed=False, notes=["already routed through the relay"])
            before = Checkpoint.load(self.state_path)
            saved = self._snapshot(plan)
            created = [e.path for e in plan.edits if e.before is None]
            relay = SavedRelay(self.relay.host, self.relay.port, self.relay.username)
            if before is None:
                state = Checkpoint(
                    self.mta, self.config_dir, now, dict(saved), tuple(created),
                    self.driver.settings(), relay, self.scope, self.destinations,
                    Status.APPLYING,
                )  # fmt: skip
            else:  # applied before (other destinations): keep what was there first
                new = {p: data for p, data in saved.items() if p not in before.files}
                state = dataclasses.replace(
                    before, files={**before.files, **new},
                    created=_sorted({*before.created, *created}), relay=relay, scope=self.scope,
                    destinations=self.destinations, status=Status.APPLYING,
                )  # fmt: skip
            state.save(self.state_path)  # before the first change: a crash leaves the way back
            try:
                outcome = self._execute(plan, saved)
            except BaseException:
                if before is None:  # rolled back: nothing is applied
                    self.state_path.unlink(missing_ok=True)
                else:
                    before.save(self.state_path)
                raise
            if self.driver.deletes_created:
                made = {p for p, data in saved.items() if data is None and p.exists()}
                state = dataclasses.replace(state, created=_sorted({*state.created, *made}))
            # the credentials table and its index hold the password: a salted, slow digest
            secret = self._credentials.path.name if self._credentials else None
            written = {p: secret_digest(read(p)) if _holds(p, secret) else digest(read(p))
                       for p in state.files}  # fmt: skip
            state = dataclasses.replace(state, written=written, status=Status.APPLIED)
            self._remember_password(state, always=True)
            if any(e.secret and e.change == "changed" for e in plan.edits):
                outcome.notes.append("the relay password changed: its table is written anew")
            return outcome

    def revert(self) -> Outcome:
        """Back to direct delivery: the exact saved bytes when untouched since apply."""
        with self._lock():
            state = Checkpoint.load(self.state_path)
            plan = self.plan_revert()
            if state is None:
                return Outcome(plan, changed=False, notes=["the smart host is not applied"])
            saved = self._snapshot(plan)
            if state.status is Status.APPLYING:
                # an apply that was killed half-way: every saved file back, byte for byte
                plan = Plan(plan.mta, plan.action, (), self.driver.rebuild_and_reload(plan),
                            ("an interrupted apply is undone from its checkpoint",))  # fmt: skip
                outcome = self._execute(plan, saved, restore=state.restore)
            else:
                plan, exact = self.driver.exact_revert(plan, state.untouched())
                outcome = self._execute(plan, saved, restore=lambda: put_all(exact))
            self.state_path.unlink()
            return outcome

    def _remember_password(self, state: Checkpoint | None, *, always: bool = False) -> None:
        """The checkpoint with the digest of the password file this apply used (the password
        itself stays in its file); saved when it differs, or `always`."""
        if state is None:
            return
        content = _password_content(self.relay)
        if not always and matches(content, state.password):
            return
        state = dataclasses.replace(state, password=secret_digest(content))
        state.save(self.state_path)

    def _snapshot(self, plan: Plan) -> Snapshot:
        """The current bytes of every file the plan may change (settings files included)."""
        return snapshot({e.path for e in plan.edits} | set(self.driver.guarded()))

    def _execute(
        self, plan: Plan, saved: Snapshot, *, restore: Callable[[], None] | None = None
    ) -> Outcome:
        outcome = Outcome(plan, changed=True)
        running = self.driver.running()
        try:
            if restore is not None:
                restore()
            for edit in plan.edits:
                self._write(edit)
            if plan.settings:
                self.driver.write_settings(plan.settings)
            for command in plan.commands:
                if command.reload and not running:
                    outcome.notes.append(f"not run, {self.mta} is not running: {command.shown()}")
                    continue
                ran = self.run(command.argv)
                failed = ran.returncode != 0 or (
                    command.validates and ("warning:" in ran.stderr or "fatal:" in ran.stderr)
                )
                if failed and command.optional:
                    outcome.notes.append(f"{command.shown()} failed: {first_line(ran.stderr)}")
                elif failed:
                    raise SmarthostError(
                        f"{command.shown()} failed ({command.why}): "
                        f"{first_line(ran.stderr) or f'exit {ran.returncode}'}; "
                        "the previous configuration is restored"
                    )
                outcome.reloaded |= command.reload
        except BaseException:
            self._rollback(plan, saved, reload=running)
            raise
        return outcome

    def _rollback(self, plan: Plan, saved: Snapshot, *, reload: bool) -> None:
        """Every saved file back as it was; what is built from them built again; the MTA
        reloaded (best effort: the first error is the one reported)."""
        roll_back(saved)
        for command in plan.commands:
            if command.rebuild or (reload and command.reload and not command.optional):
                self.run(command.argv)

    def _write(self, edit: FileEdit) -> None:
        if edit.after is None:
            edit.path.unlink(missing_ok=True)
            return
        data = edit.after
        if STALE.encode() in data:
            raise SmarthostError(
                f"{edit.path}: a plan kept an old credentials line; fix it by hand"
            )
        if edit.secret:
            data = data.replace(PASSWORD.encode(), self._password.encode())
        elif PASSWORD.encode() in data:
            raise SmarthostError(
                f"{edit.path}: a plan put the password in a file not marked secret"
            )
        write_atomic(edit.path, data, edit.mode)


def _holds(path: Path, secret: str | None) -> bool:
    """Whether `path` is the credentials table named `secret` or its index (`secret`.db…)."""
    return secret is not None and (path.name == secret or path.name.startswith(secret + "."))


def _sorted(paths: Iterable[Path]) -> tuple[Path, ...]:
    """Sorted as their names are (the checkpoint has always listed them so)."""
    return tuple(sorted(paths, key=str))
