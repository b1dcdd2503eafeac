"""The timeline as inline SVG, built by hand: a few rectangles per lane need no plotting stack.

Pure: a `Timeline` in, markup out. Every kind of period has a pattern as well as a colour (and
the legend names them), so the picture survives a grey printer and colour blindness; each SVG
carries a <title> and a <desc>, and the page adds a text list of the same periods.
"""

from __future__ import annotations

from datetime import datetime

from markupsafe import Markup, escape

from blmonitor.monitor.page import Lane, Period, Span, Timeline

LISTING, UNUSABLE, BLIND, SMARTHOST = Period

WIDTH = 1000  # the drawing's own units; the SVG scales to the page
LABEL = 190  # left column: the lane's name
LANE = 22
GAP = 6
AXIS = 22
BAND = 14  # the smart-host band under the lanes

# Fill per kind (and severity): a colour and a pattern, so grey print still tells them apart.
FILLS = {
    "critical": "url(#p-critical)",
    "warning": "url(#p-warning)",
    "info": "url(#p-info)",
    UNUSABLE: "url(#p-unusable)",
    BLIND: "url(#p-blind)",
    SMARTHOST: "url(#p-smarthost)",
}
LEGEND = (
    ("critical", "listed, critical (solid)"),
    ("warning", "listed, warning (stripes)"),
    ("info", "listed, info (dots)"),
    (UNUSABLE, "zone unusable (cross-hatch)"),
    (BLIND, "blind: nothing checked (hatch)"),
    (SMARTHOST, "mail via smart host (band)"),
)

# Once per page, in a zero-size SVG of its own: ids must be unique in the document.
DEFS = Markup(
    '<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
    '<pattern id="p-critical" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#b3001b"/></pattern>'
    '<pattern id="p-warning" width="6" height="6" patternUnits="userSpaceOnUse"'
    ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#e07b00"/>'
    '<rect width="2" height="6" fill="#7a3e00"/></pattern>'
    '<pattern id="p-info" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#f3d36b"/><circle cx="3" cy="3" r="1.3" fill="#6b5200"/>'
    "</pattern>"
    '<pattern id="p-unusable" width="8" height="8" patternUnits="userSpaceOnUse">'
    '<rect width="8" height="8" fill="#eeeeee"/>'
    '<path d="M0 0L8 8M8 0L0 8" stroke="#555555" stroke-width="1.2"/></pattern>'
    '<pattern id="p-blind" width="8" height="8" patternUnits="userSpaceOnUse"'
    ' patternTransform="rotate(-45)"><rect width="8" height="8" fill="#dde3ee" fill-opacity="0.7"/>'
    '<rect width="2.5" height="8" fill="#44506a" fill-opacity="0.8"/></pattern>'
    '<pattern id="p-smarthost" width="10" height="10" patternUnits="userSpaceOnUse">'
    '<rect width="10" height="10" fill="#2f6db5"/><rect width="5" height="10" fill="#8fb4e3"/>'
    "</pattern>"
    "</defs></svg>"
)


def x_of(moment: datetime, start: datetime, end: datetime, width: float) -> float:
    """Where a moment falls on a lane `width` wide that shows [start, end]."""
    total = (end - start).total_seconds()
    if total <= 0:
        return 0.0
    share = (moment - start).total_seconds() / total
    return max(0.0, min(1.0, share)) * width


def box(span: Span, start: datetime, end: datetime, width: float) -> tuple[float, float]:
    """(x, width) of a period on the lane; at least one unit wide, so a short one shows."""
    left = x_of(span.start, start, end, width)
    right = x_of(span.end, start, end, width)
    return left, max(right - left, 1.0)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def describe(span: Span) -> str:
    """One period in words: the text alternative of its rectangle."""
    until = "still going" if span.open else f"until {span.end.isoformat(timespec='minutes')}"
    what = {
        LISTING: f"listed ({span.severity})",
        UNUSABLE: "zone unusable",
        BLIND: "blind: nothing checked",
        SMARTHOST: "mail through the smart host",
    }[span.kind]
    more = f" — {span.detail}" if span.detail else ""
    return f"{what} from {span.start.isoformat(timespec='minutes')} {until}{more}"


def _rect(span: Span, t: Timeline, y: float, height: float, plot: float) -> str:
    x, w = box(span, t.start, t.end, plot)
    fill = FILLS[span.severity if span.kind == LISTING else span.kind]
    edge = ' stroke="#222" stroke-width="0.8"' if span.kind in (LISTING, SMARTHOST) else ""
    return (
        f'<rect x="{_n(LABEL + x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(height)}"'
        f' fill="{fill}"{edge}><title>{escape(describe(span))}</title></rect>'
    )


def _lane(lane: Lane, t: Timeline, y: float, plot: float) -> list[str]:
    parts = [
        f'<text x="{LABEL - 8}" y="{_n(y + LANE * 0.68)}" text-anchor="end"'
        f' class="lane">{escape(_short(lane.name))}<title>{escape(lane.name)}</title></text>',
        f'<rect x="{LABEL}" y="{_n(y)}" width="{_n(plot)}" height="{LANE}" fill="#f7f7f7"'
        ' stroke="#c8c8c8" stroke-width="0.6"/>',
    ]
    for span in lane.spans:
        inset = 3 if span.kind == LISTING else 0
        parts.append(_rect(span, t, y + inset, LANE - 2 * inset, plot))
    return parts


def _marks(lane: Lane, t: Timeline, y: float, plot: float) -> list[str]:
    """The bounces on a lane: drawn last, over a blind period too."""
    parts = []
    for moment in lane.marks:
        x = LABEL + x_of(moment, t.start, t.end, plot)
        parts.append(
            f'<path d="M{_n(x)} {_n(y + LANE - 1)}l-5 -10h10z" fill="#000" stroke="#fff"'
            f' stroke-width="1"><title>bounce {moment.isoformat(timespec="minutes")}'
            "</title></path>"
        )
    return parts


def _edge(width: float) -> str:
    """An outline for a blind period wide enough to have one: a year of one-run outages
    must not draw a forest of dark lines."""
    return ' stroke="#44506a" stroke-width="0.8"' if width >= 4 else ""


def _short(name: str, limit: int = 26) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _axis(t: Timeline, y: float, plot: float) -> list[str]:
    parts = []
    for step in range(5):
        moment = t.start + (t.end - t.start) * step / 4
        x = LABEL + plot * step / 4
        anchor = "start" if step == 0 else "end" if step == 4 else "middle"
        parts.append(f'<line x1="{_n(x)}" y1="{AXIS - 4}" x2="{_n(x)}" y2="{_n(y)}"'
                     ' stroke="#bbb" stroke-width="0.6" stroke-dasharray="3 3"/>')  # fmt: skip
        parts.append(f'<text x="{_n(x)}" y="{AXIS - 8}" text-anchor="{anchor}"'
                     f' class="tick">{_day(moment)}</text>')  # fmt: skip
    return parts


def render_timeline(t: Timeline, *, ident: str) -> Markup:
    """The SVG of one target's timeline; `ident` makes its ids unique on the page."""
    plot = WIDTH - LABEL - 10
    lanes = t.lanes or (Lane("(no listing)", ()),)
    bottom = AXIS + len(lanes) * (LANE + GAP)
    height = bottom + BAND + 8
    body: list[str] = [*_axis(t, bottom, plot)]
    y: float = AXIS
    for lane in lanes:
        body += _lane(lane, t, y, plot)
        y += LANE + GAP
    for span in t.blind:  # over every lane: what was listed then is not known
        x, w = box(span, t.start, t.end, plot)
        body.append(f'<rect x="{_n(LABEL + x)}" y="{AXIS}" width="{_n(w)}"'
                    f' height="{_n(bottom - AXIS - GAP)}" fill="{FILLS[BLIND]}"{_edge(w)}>'
                    f'<title>{escape(describe(span))}</title></rect>')  # fmt: skip
    for i, lane in enumerate(lanes):
        body += _marks(lane, t, AXIS + i * (LANE + GAP), plot)
    body.append(f'<text x="{LABEL - 8}" y="{_n(y + BAND * 0.8)}" text-anchor="end"'
                ' class="lane">smart host</text>')  # fmt: skip
    body += [_rect(span, t, y, BAND, plot) for span in t.smarthost]
    listed = sum(1 for lane in lanes for s in lane.spans if s.kind == LISTING)
    desc = (
        f"{len(t.lanes)} lane(s), {listed} listing period(s), {len(t.blind)} blind period(s), "
        f"{len(t.smarthost)} smart-host period(s) between {_day(t.start)} and {_day(t.end)}; "
        "the list below gives each period in words."
    )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_n(height)}"'
        f' role="img" aria-labelledby="{ident}-title {ident}-desc" class="timeline">'
        f'<title id="{ident}-title">Timeline of {escape(t.target)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>{"".join(body)}</svg>'
    )


def render_legend() -> Markup:
    """The swatches and their names, once per page."""
    items = []
    for key, text in LEGEND:
        items.append(
            f'<li><svg width="28" height="14" aria-hidden="true">'
            f'<rect width="28" height="14" fill="{FILLS[key]}" stroke="#222" stroke-width="0.8"/>'
            f"</svg> {escape(text)}</li>"
        )
    items.append(
        '<li><svg width="28" height="14" aria-hidden="true"><path d="M14 13l-5 -10h10z"'
        ' fill="#000"/></svg> a bounce that named the list</li>'
    )
    return Markup('<ul class="legend">' + "".join(items) + "</ul>")
