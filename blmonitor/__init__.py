"""blmonitor: keep a mail server off DNS blocklists, and its mail flowing while it is on one."""

__version__ = "0.1.0"
