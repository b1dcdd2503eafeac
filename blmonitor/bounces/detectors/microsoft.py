"""Microsoft's bounces: Exchange 2007+ and Office 365 NDRs ('Diagnostic information for
administrators:'), and Exchange 2003's. Pure.
"""

from __future__ import annotations

import re

from blmonitor.bounces.detectors.detector import ADDR, Detector
from blmonitor.bounces.hit import Hit

_EXCHANGE = re.compile(r"Diagnostic information for administrators:", re.IGNORECASE)


def _exchange(text: str) -> list[Hit]:
    """Office 365 / Exchange 2007+ NDR text: the addresses under the administrators' section."""
    m = _EXCHANGE.search(text)
    if not m:
        return []
    body = text[m.end() :]
    end = re.search(r"^(?:Original message headers:|Received: )", body, re.MULTILINE)
    body = body[: end.start()] if end else body[:8000]
    hits: list[Hit] = []
    lines = body.split("\n")
    for i, line in enumerate(lines):
        am = re.match(rf"^\s*<?({ADDR})>?(?:<mailto:[^>]*>)?\s*$", line)
        if not am:
            continue
        detail = " ".join(x.strip() for x in lines[i + 1 : i + 6] if x.strip())
        hit = Hit(recipient=am.group(1))
        if rm := re.search(r"Remote Server (?:at (\S+) \([^)]*\) )?returned '(.*?)'", detail):
            hit.remote_mta = rm.group(1) or ""
            hit.diagnostic = rm.group(2)
        elif rm := re.search(r"#<?\s*#?(\d\.\d+\.\d+)?\s*(?:smtp;)?\s*(\d{3}[^>#]*)", detail):
            hit.diagnostic = rm.group(2).strip()
            hit.status = rm.group(1) or ""
        else:
            continue
        hit.diagnostic = re.sub(r"^<[^>]*>\s*#", "", hit.diagnostic).strip()
        hits.append(hit)
    return hits


_EXCHANGE2003 = re.compile(r"did not reach the following recipient\(s\):\s*\n", re.IGNORECASE)
# Another wording, tried when the first is not found (after a literal check).
_EXCHANGE2003_OTHER = re.compile(r"following recipient\(s\) could not be reached:\s*\n")


def _exchange2003(text: str) -> list[Hit]:
    m = _EXCHANGE2003.search(text)
    if not m and "could not be reached:" in text:
        m = _EXCHANGE2003_OTHER.search(text)
    if not m:
        return []
    hits: list[Hit] = []
    lines = text[m.end() :].split("\n")
    i = 0
    while i < len(lines):
        am = re.match(rf"^\s*({ADDR}) on .*$", lines[i])
        if not am:
            if hits and not lines[i].startswith(" "):
                break
            i += 1
            continue
        detail: list[str] = []
        i += 1
        while i < len(lines) and lines[i].startswith(" "):
            detail.append(lines[i].strip())
            i += 1
        hits.append(Hit(recipient=am.group(1), diagnostic=" ".join(detail)))
    return hits


# Detector(name, finder, order, needles): see `Detector`.
DETECTORS = (
    Detector("exchange", _exchange, 70, ("diagnostic information for administrators:",)),
    Detector(
        "exchange2003",
        _exchange2003,
        80,
        (
            "did not reach the following recipient(s):",
            "following recipient(s) could not be reached:",
        ),
    ),
)
NOTICES: tuple[Detector, ...] = ()
