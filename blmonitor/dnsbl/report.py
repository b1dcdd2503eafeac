"""Turn a Report into what people and programs read: a table, one verdict line, or JSON.

Pure: no I/O. Zone names come from `Zone.label`, never `Zone.queried`, so a Spamhaus DQS key
cannot reach the output.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import replace
from typing import Any

from blmonitor.models import Health, Report, Result, Status, Verdict


def result_json(result: Result, label: str | None = None) -> dict[str, Any]:
    severity = result.severity
    return {
        "target": result.target.text,
        "zone": label or result.zone.label,
        "status": result.status.value,
        "codes": list(result.codes),
        "txt": list(result.txt),
        "meaning": "; ".join(result.meanings) or None,
        "severity": severity.label if severity is not None else None,
        "error": result.error or None,
        "delist_url": result.delist_url or None,
    }


def report_json(report: Report) -> dict[str, Any]:
    labels = {r.zone.name: r.zone.label for r in report.results}
    return {
        "verdict": str(report.verdict),
        "results": [result_json(r, labels[r.zone.name]) for r in report.results],
        "zones": [
            {
                "zone": z.zone.label,
                "id": z.zone.id,
                "health": str(z.health),
                "detail": z.detail or None,
            }
            for z in report.zones
        ],
        "resolver": None
        if report.resolver is None
        else {
            "fault": str(report.resolver.fault),
            "servers": list(report.resolver.servers),
            "detail": report.resolver.detail,
            "fix": report.resolver.fix,
        },
        "warnings": list(report.warnings),
        "stats": {
            "lookups": sum(1 for r in report.results if r.status is not Status.SKIPPED),
            "queries": report.queries,
            "retries": report.retries,
            "seconds": round(report.seconds, 3),
        },
    }


def report_json_text(report: Report) -> str:
    """`report_json` as compact JSON text, the same document as json.dumps would write.

    A large scan is almost all clean answers; their objects differ only in target and zone,
    so they are written from a template instead of a dict each (a 50,000-result report is
    written several times faster).
    """
    head = report_json(replace(report, results=()))
    head["stats"]["lookups"] = sum(1 for r in report.results if r.status is not Status.SKIPPED)
    quoted: dict[str, str] = {}

    def quote(text: str) -> str:
        if text not in quoted:
            quoted[text] = json.dumps(text)
        return quoted[text]

    labels = {r.zone.name: r.zone.label for r in report.results}
    parts = []
    for result in report.results:
        if result.status is Status.CLEAN and not result.codes and not result.error:
            parts.append(
                f'{{"target":{quote(result.target.text)},"zone":{quote(labels[result.zone.name])},'
                '"status":"clean","codes":[],"txt":[],"meaning":null,"severity":null,'
                '"error":null,"delist_url":null}'
            )
        else:
            parts.append(
                json.dumps(result_json(result, labels[result.zone.name]), separators=(",", ":"))
            )
    text = json.dumps(head, separators=(",", ":"))
    marker = '"results":[]'
    at = text.index(marker) + len(marker) - 1
    return text[:at] + ",".join(parts) + text[at:]


def table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


def render_text(report: Report) -> str:
    """The human report: listings first, then zone-health problems, errors, one verdict line."""
    lines: list[str] = []
    listed = [r for r in report.results if r.status is Status.LISTED]
    if listed:
        lines.append(f"LISTED ({len(listed)})")
        rows = [["target", "zone", "codes", "severity", "meaning"]]
        for r in sorted(listed, key=lambda r: -(r.severity or 0)):
            severity = r.severity.label if r.severity is not None else ""
            rows.append([r.target.text, r.zone.label, ",".join(r.codes), severity,
                         "; ".join(r.meanings)])  # fmt: skip
        lines.extend(table(rows))
        links = {(r.target.text, r.zone.label): r.delist_url for r in listed if r.delist_url}
        txts = {(r.target.text, r.zone.label): r.txt for r in listed if r.txt}
        for key in dict.fromkeys([*links, *txts]):
            lines.append(f"  {key[0]} on {key[1]}:")
            for text in txts.get(key, ()):
                lines.append(f"      says: {text}")
            if key in links:
                lines.append(f"      delist: {links[key]}")
        lines.append("")
    if report.resolver is not None:  # one line for the part that failed, none per zone
        lines += ["RESOLVER PROBLEM: no zone could be checked", f"  {report.resolver.message}", ""]
    sick = [z for z in report.zones if z.health not in (Health.OK, Health.NOT_JUDGED)]
    if sick:
        lines.append(f"ZONE HEALTH ({len(sick)} not usable or not tested)")
        lines.extend(table([["zone", "health", "why"]]
                            + [[z.zone.label, str(z.health), z.detail] for z in sick]))  # fmt: skip
        lines.append("")
    errors = [r for r in report.results if r.status is Status.ERROR]
    unhealthy = {z.zone.label for z in report.zones if not z.health.trusted}
    own_errors = [r for r in errors if r.zone.label not in unhealthy]
    if own_errors:
        grouped: dict[str, Counter[str]] = defaultdict(Counter)
        for r in own_errors:
            grouped[r.zone.label][r.error] += 1
        lines.append(f"ERRORS ({len(own_errors)} lookups without an answer)")
        rows = [["zone", "count", "error"]]
        for zone, counter in grouped.items():
            rows.extend([zone, str(n), error] for error, n in counter.most_common())
        lines.extend(table(rows))
        lines.append("")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    lines.append(verdict_line(report))
    return "\n".join(lines)


def verdict_line(report: Report) -> str:
    results = [r for r in report.results if r.status is not Status.SKIPPED]
    targets = {r.target.text for r in results}
    zones = {r.zone.label for r in results}
    counts = Counter(r.status for r in results)
    scope = f"{len(targets)} target(s) × {len(zones)} zone(s)"
    if report.verdict is Verdict.LISTED:
        hit = sorted({f"{r.target.text} on {r.zone.label}" for r in results
                      if r.status is Status.LISTED})  # fmt: skip
        shown = ", ".join(hit[:3]) + (f" and {len(hit) - 3} more" if len(hit) > 3 else "")
        return f"LISTED: {shown} ({scope})"
    if report.verdict is Verdict.UNKNOWN and report.resolver is not None:
        return f"UNKNOWN: nothing checked: {report.resolver.message} ({scope})"
    if report.verdict is Verdict.UNKNOWN:
        bad = [z.zone.label for z in report.zones if not z.health.trusted]
        why = f"{counts[Status.ERROR]} lookup(s) without a trustworthy answer"
        if bad:
            why += f"; unusable zone(s): {', '.join(bad[:5])}" + (" …" if len(bad) > 5 else "")
        return f"UNKNOWN: {why} ({scope})"
    info = counts[Status.LISTED]
    extra = f", {info} informational listing(s) below the alert level" if info else ""
    return f"CLEAN: {counts[Status.CLEAN]} clean answer(s){extra} ({scope})"
