"""Microsoft SNDS as a source: read the key file, GET ipStatus.aspx and data.aspx, and judge
them (`sndsformat`, pure) into one `SourceResult`.

The key is a secret: it is read from `[snds] key_file` (refused when group or others may read
it), sent only in the query string SNDS requires, and never put in a message — httpx's errors
and its request log line carry the URL, so both are scrubbed. Anything short of two CSV
answers (HTTP error, redirect to a sign-in page, timeout, a body that is not CSV) is an
`error`: the monitor keeps what it knew.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx

from blmonitor.config import Config
from blmonitor.errors import BlmonitorError
from blmonitor.sources.models import SourceResult
from blmonitor.sources.sndsformat import (
    SOURCE,
    SndsFormatError,
    judge_snds,
    parse_data,
    parse_ip_status,
)
from blmonitor.userfiles import UnreadableFile, read_text

LABEL = "SNDS"
_KEY = re.compile(r"[A-Za-z0-9-]{8,128}")  # SNDS keys are GUIDs
_KEY_PARAM = re.compile(r"(?i)([?&]key=)[^&\s\"']*")


class SndsError(BlmonitorError):
    """SNDS could not be read: one line, naming SNDS, never holding the key."""


class _RedactKey(logging.Filter):
    """httpx logs each request's URL at INFO: the key is taken out of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "key=" in text.lower():
            record.msg, record.args = _KEY_PARAM.sub(r"\1<key>", text), ()
        return True


_REDACT = _RedactKey()
logging.getLogger("httpx").addFilter(_REDACT)


def read_key(path: Path) -> str:
    """The key from `path` (its first line), refused when the file is open to group or others."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SndsError(f"SNDS: [snds] key_file {path} does not exist") from None
    except OSError as exc:
        raise SndsError(f"SNDS: cannot read [snds] key_file {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise SndsError(
            f"SNDS: [snds] key_file {path} is open to group or others "
            f"(mode {stat.S_IMODE(mode):04o}): run chmod 600 {path}"
        )
    try:
        text = read_text(path, limit=4096)
    except (FileNotFoundError, UnreadableFile) as exc:
        raise SndsError(f"SNDS: cannot read [snds] key_file {path}: {exc}") from None
    key = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not _KEY.fullmatch(key):
        raise SndsError(
            f"SNDS: [snds] key_file {path} does not hold a key on its first line (copy it from "
            "SNDS, Automated Data Access)"
        )
    return key


def _scrub(text: str, key: str) -> str:
    return _KEY_PARAM.sub(r"\1<key>", text.replace(key, "<key>").replace(quote(key), "<key>"))


def _get(client: httpx.Client, url: str, key: str, name: str) -> str:
    """The body of one SNDS file, or SndsError saying why not (without the key)."""
    try:
        response = client.get(url, params={"key": key}, headers={"User-Agent": "blmonitor"})
    except httpx.TimeoutException:
        raise SndsError(f"SNDS: {name} did not answer within the timeout") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        detail = _scrub(str(exc), key) or type(exc).__name__
        raise SndsError(f"SNDS: {name} could not be fetched: {detail}") from None
    if response.is_redirect:
        raise SndsError(
            f"SNDS: {name} redirected (HTTP {response.status_code}, a sign-in page?): check the "
            "key and that Automated Data Access is enabled"
        )
    if not response.is_success:
        return_code = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        raise SndsError(f"SNDS: {name} answered {return_code}")
    try:
        return response.content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SndsError(f"SNDS: {name} answered with a body that is not UTF-8 text") from None


def poll_snds(config: Config, targets: Sequence[str], *, now: datetime) -> SourceResult:
    """One poll of SNDS for `targets`: its listings and reputation, or the error."""
    settings = config.snds
    try:
        if settings.key_file is None:
            raise SndsError("SNDS: [snds] key_file is not set")
        key = read_key(settings.key_file)
        with httpx.Client(timeout=settings.timeout, follow_redirects=False) as client:
            status_text = _get(client, settings.base_url + "ipStatus.aspx", key, "ipStatus.aspx")
            data_text = _get(client, settings.base_url + "data.aspx", key, "data.aspx")
        try:
            statuses, rows = parse_ip_status(status_text), parse_data(data_text)
        except SndsFormatError as exc:
            raise SndsError(f"SNDS: {_scrub(str(exc), key)}") from None
    except SndsError as exc:
        return SourceResult(SOURCE, now, error=str(exc))
    return judge_snds(statuses, rows, targets, fetched=now)
