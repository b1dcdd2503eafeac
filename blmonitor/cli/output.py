"""The one JSON writer of every `--json`: indented for a person at a terminal, compact for
programs (the C encoder is many times faster, which matters for a 50,000-result report)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from blmonitor.models import Report


def write_json(data: Any) -> None:
    if sys.stdout.isatty():
        click.echo(json.dumps(data, indent=1))
    else:
        click.echo(json.dumps(data, separators=(",", ":")))


def write_report_json(report: Report) -> None:
    """A check's report: piped, it goes through the report's own fast compact writer (the same
    document as `write_json(report_json(report))`, written several times faster)."""
    from blmonitor.dnsbl import report as render

    if sys.stdout.isatty():
        write_json(render.report_json(report))
    else:
        click.echo(render.report_json_text(report))
