"""The bounce use cases: explain one pasted SMTP rejection, and scan mail files, mailboxes and
MTA logs into attributed records grouped by blocklist. Typed results, with their text and JSON
renderers beside them, for the command line and any other face.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blmonitor.bounces.models import Attribution, BounceRecord, BounceVerdict
from blmonitor.dnsbl.report import table
from blmonitor.errors import UsageError
from blmonitor.models import Verdict

if TYPE_CHECKING:
    from blmonitor.bounces.rules import Rules
    from blmonitor.dnsbl.catalog import Catalog

# The verdicts a scan groups by list: the ones that say a receiver blocks us.
_GROUPED = (BounceVerdict.LISTED, BounceVerdict.REPUTATION)


def verdict_of(attributions: Sequence[Attribution]) -> Verdict:
    """Listed when some attribution names a listing of ours, else clean."""
    listed = any(a.verdict is BounceVerdict.LISTED for a in attributions)
    return Verdict.LISTED if listed else Verdict.CLEAN


def explain(
    text: str, *, remote_mta: str = "", rules: Rules | None = None, catalog: Catalog | None = None
) -> Attribution:
    """Which blocklist a pasted rejection names (its reply code and status read from its start).
    `rules`/`catalog` default to the embedded ones (a caller of many texts loads them once)."""
    from blmonitor.bounces.attribution import attribute
    from blmonitor.bounces.rules import embedded_rules
    from blmonitor.bounces.smtp import reply_head
    from blmonitor.dnsbl.catalog import embedded_catalog

    text = " ".join(text.split())
    if not text:
        raise UsageError("nothing to explain: paste the rejection text, or '-' for stdin")
    reply_code, status = reply_head(text) or ("", "")
    return attribute(
        text,
        remote_mta=remote_mta,
        status=status,
        reply_code=reply_code,
        rules=rules or embedded_rules(),
        catalog=catalog or embedded_catalog(),
    )


def attribution_json(attribution: Attribution) -> dict[str, Any]:
    return {
        "verdict": str(attribution.verdict),
        "list": attribution.list or None,
        "zone": attribution.zone or None,
        "provider": attribution.provider or None,
        "kind": str(attribution.kind) if attribution.kind else None,
        "listed_ip": attribution.listed_ip or None,
        "listed_domain": attribution.listed_domain or None,
        "temporary": attribution.temporary,
        "delist_url": attribution.delist_url or None,
        "reason": attribution.reason or None,
        "layer": str(attribution.layer) if attribution.layer else None,
        "confidence": str(attribution.confidence) if attribution.confidence else None,
    }


def render_explanation(attribution: Attribution) -> str:
    rows = [
        ("verdict", str(attribution.verdict)),
        ("list", attribution.list),
        ("zone", attribution.zone),
        ("provider", attribution.provider),
        ("kind", str(attribution.kind or "")),
        ("listed IP", attribution.listed_ip),
        ("listed domain", attribution.listed_domain),
        ("temporary", "yes (4xx: the sender retries)" if attribution.temporary else ""),
        ("delist", attribution.delist_url),
        ("found by", _found_by(attribution)),
    ]
    lines = [f"{label + ':':15}{value}" for label, value in rows if value]
    if attribution.reason:
        lines.append(attribution.reason)
    return "\n".join(lines)


def _found_by(attribution: Attribution) -> str:
    """'rule (high confidence)', 'lexicon (medium confidence)'…; '' when nothing decided."""
    if attribution.layer is None:
        return ""
    confidence = f" ({attribution.confidence} confidence)" if attribution.confidence else ""
    return f"{attribution.layer}{confidence}"


# --- scanning ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BounceScan:
    found: tuple[tuple[BounceRecord, Attribution], ...]  # every recipient record, in order

    @property
    def listed(self) -> tuple[tuple[BounceRecord, Attribution], ...]:
        return tuple((r, a) for r, a in self.found if a.verdict is BounceVerdict.LISTED)

    @property
    def verdict(self) -> Verdict:
        return verdict_of([a for _, a in self.found])


def _records(path: Path) -> Iterator[BounceRecord]:
    from blmonitor.bounces.mailbox import read_path
    from blmonitor.bounces.watch import looks_like_log, read_log

    if str(path) != "-" and path.is_file() and looks_like_log(path):
        yield from read_log(path)
    else:
        yield from read_path(path)


def scan_bounces(paths: Sequence[Path]) -> BounceScan:
    """Every bounce record of `paths` (mail files, mbox, Maildirs, directories, MTA logs, '-'
    for stdin), attributed."""
    from blmonitor.bounces.attribution import attribute_record
    from blmonitor.bounces.rules import embedded_rules
    from blmonitor.dnsbl.catalog import embedded_catalog

    rules, catalog = embedded_rules(), embedded_catalog()
    return BounceScan(tuple((r, attribute_record(r, rules=rules, catalog=catalog))
                            for p in paths for r in _records(p)))  # fmt: skip


def scan_json(scan: BounceScan) -> list[dict[str, Any]]:
    """One object per recipient record, with its attribution."""
    return [
        {
            "recipient": r.recipient, "action": r.action or None,
            "status": r.status or None, "reply_code": r.reply_code or None,
            "remote_mta": r.remote_mta or None, "diagnostic": r.diagnostic or None,
            "command": r.command or None,
            "date": r.date.isoformat() if r.date else None,
            "message_id": r.message_id or None, "source": r.source,
            "format": r.format or None, "attribution": attribution_json(a),
        }
        for r, a in scan.found
    ]  # fmt: skip


def group_by_list(
    scan: BounceScan,
) -> dict[tuple[str, str], list[tuple[BounceRecord, Attribution]]]:
    """The listing and reputation bounces by (verdict, list or provider), largest group first."""
    groups: dict[tuple[str, str], list[tuple[BounceRecord, Attribution]]] = {}
    for r, a in scan.found:
        if a.verdict in _GROUPED:
            groups.setdefault((str(a.verdict), a.list or a.provider or "?"), []).append((r, a))
    return dict(sorted(groups.items(), key=lambda g: -len(g[1])))


def render_scan(scan: BounceScan) -> str:
    """A table per blocklist (bounces, first and last seen, IPs, delist link), then a count."""
    lines: list[str] = []
    groups = group_by_list(scan)
    if groups:
        rows = [["verdict", "list", "bounces", "first seen", "last seen", "IPs", "delist",
                 "found by"]]  # fmt: skip
        for (verdict, name), items in groups.items():
            dates = sorted(r.date.isoformat(timespec="minutes") for r, _ in items if r.date)
            ips = sorted({a.listed_ip for _, a in items if a.listed_ip})
            link = next((a.delist_url for _, a in items if a.delist_url), "")
            first, last = (dates[0], dates[-1]) if dates else ("?", "?")
            found_by = ",".join(sorted({_found_by(a) for _, a in items if a.layer}))
            rows.append([verdict, name, str(len(items)), first, last, ",".join(ips) or "-",
                         link or "-", found_by or "-"])  # fmt: skip
        lines.append("\n".join(line[2:] for line in table(rows)))
    others = Counter(str(a.verdict) for _, a in scan.found if a.verdict not in _GROUPED)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(others.items()))
    lines.append(f"{len(scan.found)} bounce record(s): {len(scan.listed)} blocklist listing(s)"
                 + (f", {summary}" if summary else ""))  # fmt: skip
    return "\n".join(lines)
