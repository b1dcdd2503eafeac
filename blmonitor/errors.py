"""The one exception tree of blmonitor.

Expected DNS outcomes (NXDOMAIN, timeouts, operator error codes) are data, not exceptions:
these classes are for what stops a command: bad input, a broken catalog or config.

    BlmonitorError
    ├── UsageError          a bad command-line value or target          (exit 2)
    ├── ConfigError         a config file that cannot be used            (exit 2)
    │   └── PlanError       a smart-host change that cannot be planned   (exit 2)
    ├── CatalogError        a zone catalog (lists/*.toml) that is broken (exit 2)
    ├── StoreError          the history database cannot be used          (exit 2)
    ├── SmarthostError      a smart-host change that cannot be made      (exit 2)
    ├── LoginError          an OAuth login (Gmail Postmaster) that failed (exit 2)
    └── DiscoveryError      the public IP could not be found             (exit 3)
"""


class BlmonitorError(Exception):
    """Root of every error blmonitor raises on purpose; its message is one line for a person."""

    exit_code = 2


class UsageError(BlmonitorError):
    """A command-line value or target that cannot be used."""


class ConfigError(BlmonitorError):
    """A configuration file or value that cannot be used; the message names the key."""


class PlanError(ConfigError):
    """A smart-host planner cannot plan for this relay or this MTA configuration; the message
    names the file or the setting, and nothing was changed."""


class CatalogError(BlmonitorError):
    """A zone catalog that cannot be loaded; the message names the file and the zone."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class StoreError(BlmonitorError):
    """The history database cannot be opened, migrated or written."""


class SmarthostError(BlmonitorError):
    """A smart-host plan that cannot be made or applied; the MTA is left as it was."""


class LoginError(BlmonitorError):
    """An OAuth consent (`gmail-postmaster login`) refused, timed out or not saved; nothing
    was written. The message never holds a secret."""


class DiscoveryError(BlmonitorError):
    """No public address could be determined, so nothing can be checked."""

    exit_code = 3
