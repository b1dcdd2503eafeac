"""blmonitor's marked blocks in a config file it shares with the admin: put, replace, take out.

Every line blmonitor adds to such a file sits between a BEGIN and an END line, so a second apply
replaces the block in place and a revert removes exactly what blmonitor added. Pure: text in, text
out; a file whose marks are broken is a PlanError that names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from blmonitor.errors import PlanError
from blmonitor.smarthost.plan import (
    PASSWORD,
    STALE,
    Credentials,
    FileEdit,
    Files,
    decode,
    encode,
    encode_or_none,
)


@dataclass(frozen=True, slots=True)
class Markers:
    """The first and last line of a block, as the file's comment syntax allows."""

    begin: str
    end: str

    def wrap(self, body: Sequence[str]) -> list[str]:
        """`body` as the lines of a block, marks included (each line ends with a newline)."""
        return [self.begin + "\n", *(line + "\n" for line in body), self.end + "\n"]


# Exim's, Sendmail's maps' and OpenSMTPD's files comment with "#".
HASH = Markers("# BEGIN blmonitor smarthost", "# END blmonitor smarthost")


def span(lines: Sequence[str], path: Path, markers: Markers = HASH) -> tuple[int, int] | None:
    """The first and last line index of the one block in `lines`, or None when there is none."""
    marks = [i for i, line in enumerate(lines) if line.strip() in (markers.begin, markers.end)]
    if not marks:
        return None
    first, last = (lines[marks[0]].strip(), lines[marks[-1]].strip())
    if len(marks) != 2 or (first, last) != (markers.begin, markers.end):
        raise PlanError(
            f"{path}: the lines {markers.begin!r} and {markers.end!r} must appear once each, "
            "in that order; fix the file by hand"
        )
    return marks[0], marks[1]


def put(
    text: str,
    body: Sequence[str],
    path: Path,
    *,
    markers: Markers = HASH,
    at: Callable[[list[str]], int] | None = None,
) -> str:
    """`text` with the block holding `body`; an empty `body` takes the block out.

    An existing block is replaced where it is. A new one goes at the end, or before the line
    index that `at` picks from the file's lines.
    """
    lines = text.splitlines(keepends=True)
    found = span(lines, path, markers)
    block = markers.wrap(body) if body else []
    if found is not None:
        return "".join(lines[: found[0]] + block + lines[found[1] + 1 :])
    if not block:
        return text
    where = len(lines) if at is None else at(lines)
    if where > 0 and not lines[where - 1].endswith("\n"):
        lines[where - 1] += "\n"
    return "".join(lines[:where] + block + lines[where:])


def edit(
    files: Files,
    path: Path,
    body: Sequence[str],
    *,
    at: Callable[[list[str]], int] | None = None,
    mode: int = 0o644,
    secret: bool = False,
) -> FileEdit:
    """The edit that puts `body` in the block of `path` (from the bytes in `files`); a file
    blmonitor created and that is empty again is removed rather than left empty."""
    before = files.get(path)
    after = put(decode(before), body, path, at=at)
    return FileEdit(path, before, encode_or_none(after, before), mode=mode, secret=secret)


def remove(text: str, path: Path, *, markers: Markers = HASH) -> str:
    """`text` without the block: what the admin wrote, and only that."""
    return put(text, [], path, markers=markers)


def after_comments(lines: Sequence[str]) -> int:
    """The index of the first line that is not a comment: a new block goes after a file's
    header, before its entries (for files searched top down, where the first match wins)."""
    at = 0
    while at < len(lines) and lines[at].lstrip().startswith("#"):
        at += 1
    return at


def unwrap(text: str, path: Path, *, was: str, markers: Markers = HASH) -> str:
    """`text` without any of several blocks; a block's lines that start with `was` are lines
    of the admin's that it stood in for, and they come back without that prefix."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        mark = line.strip()
        if mark == markers.begin:
            if inside:
                raise PlanError(
                    f"{path}:{number}: {markers.begin!r} inside a block; fix it by hand"
                )
            inside = True
        elif mark == markers.end:
            if not inside:
                raise PlanError(
                    f"{path}:{number}: {markers.end!r} without {markers.begin!r}; fix it by hand"
                )
            inside = False
        elif not inside:
            out.append(line)
        elif line.startswith(was):
            out.append(line[len(was) :])
    if inside:
        raise PlanError(f"{path}: {markers.begin!r} without {markers.end!r}; fix it by hand")
    return "".join(out)


def mask(data: bytes, credentials: Credentials, password: str) -> bytes:
    """`data` (the credentials file) with each line of blmonitor's masked by its position: the
    wanted line with `password` reads as the planned line (PASSWORD in place), any other line of
    blmonitor's (an older password or login) as STALE. The admin's lines are left as they are.

    Never a search for the password: a short one that also occurs in a host name stays put.
    """
    lines = decode(data).splitlines(keepends=True)
    if credentials.whole:
        first, last = 0, len(lines) - 1
    else:
        found = span(lines, credentials.path)
        if found is None:
            return data
        first, last = found[0] + 1, found[1] - 1
    real = credentials.line.replace(PASSWORD, password) if credentials.line else None
    for index in range(first, last + 1):
        body = lines[index].rstrip("\n")
        end = lines[index][len(body) :]
        lines[index] = (credentials.line if body == real else STALE) + end
    return encode("".join(lines))
