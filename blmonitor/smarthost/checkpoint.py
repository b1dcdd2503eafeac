"""The way back from a smart-host change (certbot's Reverter): every file saved before it changes.

A Snapshot lives for one apply or revert and rolls a failed step back; a Checkpoint is the 0600
JSON state file that lets `revert` restore the exact bytes of the files nobody edited since apply,
and tells a rotated relay password by a salted digest of its file (never the password). Its layout
is the one blmonitor has always written, so an upgraded machine still reverts.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import hmac
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blmonitor.errors import SmarthostError
from blmonitor.smarthost.plan import Mta, Scope

STATE_NAME = "smarthost.json"

# A file's bytes, or None when it does not exist.
Snapshot = dict[Path, bytes | None]


class Status(enum.StrEnum):
    APPLYING = "applying"  # saved before the first change: a crash leaves the way back
    APPLIED = "applied"


@dataclass(frozen=True, slots=True)
class SavedRelay:
    """The relay an apply routed through (no password: it stays in its own file)."""

    host: str
    port: int
    username: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What an apply saved: each file's bytes from before the first apply, what it created,
    the MTA settings it found, and the digests of the files as it left them."""

    mta: Mta
    config_dir: Path
    applied_at: str
    files: Snapshot  # in the order they were saved
    created: tuple[Path, ...]  # files apply created (Postfix deletes them on revert)
    settings: dict[str, str | None]  # Postfix: explicit main.cf values before the first apply
    relay: SavedRelay
    scope: Scope
    destinations: tuple[str, ...]
    status: Status
    written: dict[Path, str | None] | None = None  # digests after apply; None while applying
    password: str | None = None  # salted digest of the password file as apply used it

    def verify(self) -> frozenset[Path]:
        """The saved files whose bytes are not those apply left (edited or removed since)."""
        written = self.written or {}
        return frozenset(p for p in self.files if not matches(read(p), written.get(p)))

    def untouched(self) -> Snapshot:
        """The saved bytes of every file that is still as apply left it."""
        changed = self.verify()
        return {p: data for p, data in self.files.items() if p not in changed}

    def restore(self) -> None:
        """Every saved file back byte for byte (after an apply that did not finish)."""
        put_all(self.files)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mta": str(self.mta),
            "config_dir": str(self.config_dir),
            "applied_at": self.applied_at,
            "files": {str(p): _b64(data) for p, data in self.files.items()},
            "created": [str(p) for p in self.created],
            "settings": dict(self.settings),
            "relay": {"host": self.relay.host, "port": self.relay.port,
                      "username": self.relay.username},
            "scope": str(self.scope),
            "destinations": list(self.destinations),
            "status": str(self.status),
        }  # fmt: skip
        if self.written is not None:
            out["written"] = {str(p): value for p, value in self.written.items()}
        if self.password is not None:
            out["password"] = self.password
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        written = data.get("written")
        relay = data["relay"]
        return cls(
            mta=Mta(data["mta"]),
            config_dir=Path(data["config_dir"]),
            applied_at=data["applied_at"],
            files={Path(p): _unb64(text) for p, text in data["files"].items()},
            created=tuple(Path(p) for p in data["created"]),
            settings=dict(data["settings"]),
            relay=SavedRelay(relay["host"], relay["port"], relay["username"]),
            scope=Scope(data["scope"]),
            destinations=tuple(data["destinations"]),
            # a checkpoint without a status was complete: the status came with interrupted ones
            status=Status(data.get("status", Status.APPLIED)),
            written=None if written is None else {Path(p): v for p, v in written.items()},
            password=data.get("password"),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(self.to_json(), indent=1).encode(), 0o600)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint saved at `path`; None when nothing is applied."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SmarthostError(
                f"{path} cannot be read ({exc}): restore the MTA by hand, then delete it"
            ) from exc


def snapshot(paths: Iterable[Path]) -> Snapshot:
    """The current bytes of `paths`, sorted by path."""
    return {p: read(p) for p in sorted(paths)}


def roll_back(saved: Snapshot) -> None:
    """Every file of `saved` that differs now is put back; a file that was new is removed."""
    for path, data in saved.items():
        if digest(read(path)) != digest(data):
            put(path, data, path.stat().st_mode & 0o7777 if path.exists() else 0o600)


def put_all(files: Snapshot) -> None:
    for path, data in files.items():
        put(path, data)


def read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


_SCRYPT = "scrypt"


def secret_digest(data: bytes | None, salt: bytes | None = None) -> str | None:
    """A salted, slow digest (scrypt) of a file that holds a password: it tells a change apart
    without leaving a plain hash that a short password could quickly be guessed back from."""
    if data is None:
        return None
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.scrypt(data, salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"{_SCRYPT}${salt.hex()}${key.hex()}"


def matches(data: bytes | None, value: str | None) -> bool:
    """Whether `data` is what `value` (a `digest` or a `secret_digest`) was made from."""
    if data is None or value is None:
        return data is None and value is None
    if not value.startswith(_SCRYPT + "$"):
        return digest(data) == value
    try:
        salt = bytes.fromhex(value.split("$")[1])
    except (IndexError, ValueError):
        return False
    return hmac.compare_digest(secret_digest(data, salt) or "", value)


def put(path: Path, data: bytes | None, mode: int = 0o644) -> None:
    """`data` at `path` (None removes it); 0o644 keeps the mode of a file that exists."""
    if data is None:
        path.unlink(missing_ok=True)
    else:
        write_atomic(path, data, mode)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
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


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)
