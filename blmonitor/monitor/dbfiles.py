"""The history database's files on disk: who owns them and who may read them.

The database holds notification text, so it is for its user only (or its directory's group);
and root, running a command by hand or the smart-host unit, leaves the files it creates beside
it to the database's owner, so the unprivileged service can still open them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger("blmonitor")


def make_private(database: Path) -> None:
    """The history holds notification text: only its user may read it (and the directory's
    group when the directory lets its group in, e.g. root:blmonitor 0750). A new database is
    created so, and SQLite gives its -wal and -shm files the same mode; older, wider files
    are narrowed when opened for writing, which the log says once."""
    directory = database.parent.stat()
    shared = directory.st_gid != 0 and directory.st_mode & 0o050 == 0o050
    mode = 0o640 if shared else 0o600
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        with contextlib.suppress(PermissionError):
            if os.geteuid() == 0 and directory.st_uid != 0:  # root creates it for the service
                os.chown(database, directory.st_uid, directory.st_gid)
            elif shared:
                os.chown(database, -1, directory.st_gid)
    narrowed = []
    for path in (
        database,
        *(database.with_name(database.name + s) for s in ("-wal", "-shm")),
    ):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            now = path.stat().st_mode & 0o777
            if now & ~mode:
                os.chmod(path, now & mode)
                narrowed.append(f"{path.name} {now:o} -> {now & mode:o}")
    if narrowed:
        log.warning("history database %s was readable by others: narrowed (%s)",
                    database, ", ".join(narrowed))  # fmt: skip


def keep_owner(database: Path, *paths: Path) -> None:
    """Root (the smart-host unit, a command run by hand) leaves the files it creates beside
    the database to the database's owner, so the unprivileged service can still open them."""
    if os.geteuid() != 0:
        return
    owner = database.stat()
    if owner.st_uid == 0:
        return
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_uid != owner.st_uid:
                os.chown(path, owner.st_uid, owner.st_gid)
