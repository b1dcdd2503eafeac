"""The configuration the run tests of the receivers' sources share: one target, the lab's
"flip" zone on its DNS server, the database in `tmp_path`, notifications to a webhook."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def monitored(lab: Any, tmp_path: Path, webhook_base: str) -> str:
    """[monitor], [dns] and [notify] for a run against the lab; a source's table goes after."""
    return f"""
[monitor]
targets = ["203.0.113.5"]
zones = ["flip"]
lists = "{lab.catalog_path}"
interval = "15m"
confirm = 1
database = "{tmp_path / "blmonitor.db"}"
[dns]
resolver = ["{lab.address}"]
timeout = 0.6
[notify]
urls = ["{webhook_base.replace("http://", "json://")}/hook"]
retry = 1
server_name = "mx.example"
"""
