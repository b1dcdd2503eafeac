"""The report page as one self-contained HTML file: Jinja2 templates (autoescaped, the report
inheriting its frame from `base.html.j2`), the SVG timelines from `page_svg`, the CSS inline.
No script, no external asset: it reads the same from disk, in a mail and behind the daemon.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

import jinja2

from blmonitor.monitor.page import Page
from blmonitor.monitor.page_svg import DEFS, describe, render_legend, render_timeline

TEMPLATE = "report.html.j2"


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("blmonitor.monitor", "templates"),
        autoescape=True,  # every list's TXT and every bounce text is someone else's words
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["minutes"] = _minutes
    env.filters["describe"] = describe
    env.globals.update(timeline=render_timeline, legend=render_legend, defs=DEFS)
    return env


def _minutes(moment: datetime | str | None) -> str:
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def render_page(page: Page, *, refresh: int | None = None) -> str:
    """The HTML document; `refresh` (seconds) adds a meta refresh, for the live page."""
    return _environment().get_template(TEMPLATE).render(page=page, refresh=refresh)
