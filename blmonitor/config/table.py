"""Reading one [table] of the config file: typed getters whose errors name the file, the
table and the key, and the durations ("15m", "1h30m") the keys are written in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from blmonitor.errors import ConfigError
from blmonitor.models import Severity

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DURATION_HINT = "(e.g. 15m, 1h, 900s)"

MAX_DURATION = 3650 * 86400.0  # ten years


def parse_duration(text: str | int) -> float:
    """Seconds from "90s", "15m", "1h", "1d" (or a sum such as "1h30m") or integer seconds.

    A string needs a unit: "400" could mean seconds or days. ValueError names the value.
    """
    seconds: float | None = None
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        seconds = float(text)
    elif isinstance(text, str) and _DURATION.fullmatch(raw := text.strip()):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(raw))
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration {_DURATION_HINT}")
    if seconds > MAX_DURATION:  # a schedule or a date that far away overflows
        raise ValueError(f"{text!r} is longer than the maximum of {MAX_DURATION // 86400:g}d")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest text `parse_duration` reads back: 900 → "15m", 90 → "90s", 34560000 → "400d"."""
    if seconds == int(seconds):
        whole = int(seconds)
        for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
            if whole and whole % size == 0:
                return f"{whole // size}{unit}"
        return "0s"
    return f"{seconds:g}s"


class Table:
    """One [table] of the file: typed getters whose errors name the key."""

    def __init__(
        self, source: str, name: str, raw: Mapping[str, Any], *, unknown: Callable[[str], str]
    ) -> None:
        """`unknown(key)` says why a key is not one of the table's ("" when it is)."""
        self.source = source
        self.name = name
        self.raw = raw
        for key in raw:
            if name == "smarthost" and key == "password":
                raise self.fail(key, "is not read here: put it in a file and set password_file")
            if name == "snds" and key == "key":
                raise self.fail(
                    key, "is not read here: put it in a file (chmod 600) and set key_file"
                )
            if why := unknown(key):
                raise self.fail(key, why)

    def fail(self, key: str, message: str) -> ConfigError:
        return key_error(self.source, self.name, key, message)

    def shown(self, key: str) -> str:
        return repr(self.raw[key])

    def string(self, key: str, default: str) -> str:
        value = self.raw.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {describe(value)}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw.get(key, default)
        if not isinstance(value, list | tuple):
            raise self.fail(key, f"expected a list of strings, got {describe(value)}")
        for number, item in enumerate(value, 1):
            if not isinstance(item, str):
                raise self.fail(
                    key, f"expected a list of strings, item {number} is {describe(item)}"
                )
        return tuple(item.strip() for item in value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {describe(value)}")
        return value

    def integer(self, key: str, default: int, *, low: int, high: int | None) -> int:
        value = self.raw.get(key, default)
        wanted = f"an integer from {low} to {high}" if high is not None else f"an integer ≥ {low}"
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < low
            or (high is not None and value > high)
        ):
            raise self.fail(key, f"expected {wanted}, got {describe(value)}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.raw.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.fail(key, f"expected a number of seconds, got {describe(value)}")
        return float(value)

    def duration(self, key: str, default: float) -> float:
        if key not in self.raw:
            return default
        try:
            return parse_duration(self.raw[key])
        except ValueError as exc:
            raise self.fail(key, str(exc)) from exc

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def severity(self, key: str, default: Severity) -> Severity:
        value = self.raw.get(key, default.label)
        if not isinstance(value, str):
            raise self.fail(key, f"expected info, warning or critical, got {describe(value)}")
        try:
            return Severity.parse(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from exc

    def optional_path(self, key: str) -> Path | None:
        """A path, or None when the key is missing or "" ."""
        text = self.string(key, "")
        return self._absolute(key, text) if text else None

    def path(self, key: str, default: Path) -> Path:
        if key not in self.raw:
            return default
        text = self.string(key, "")
        if not text:
            raise self.fail(key, f"is empty: leave the key out for the default ({default})")
        return self._absolute(key, text)

    def paths(self, key: str) -> list[Path]:
        """A list of absolute paths (none by default)."""
        out = []
        for text in self.strings(key, ()):
            if not text:
                raise self.fail(key, "holds an empty string")
            out.append(self._absolute(key, text))
        return out

    def _absolute(self, key: str, text: str) -> Path:
        # A daemon's working directory is /, and "~" is not expanded: relative paths mislead.
        if not Path(text).is_absolute():
            raise self.fail(key, f"{text!r} is not an absolute path (e.g. /etc/blmonitor/…)")
        return Path(text)


def key_error(source: str, table: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: [{table}] {key}: {message}")


def describe(value: object) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value:g}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"  # TOML dates and times
