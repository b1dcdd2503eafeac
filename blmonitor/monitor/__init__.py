"""The monitor: what changed since the last run, and who is told.

Run-to-run state and events (pure), the history store, notifications, metrics, one run as
a service and the daemon loop.
"""
