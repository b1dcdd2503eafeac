"""The detectors of non-standard bounce formats, one registry: every `Detector` is declared once,
in the module of its family (`mtas`, `microsoft`, `providers`, `gateways`), and `REGISTRY`
holds them all in the order they are tried. To add a format: write its finder beside its
family's, declare it in that module's `DETECTORS` (or `NOTICES`) with its needles and its
order, and add a sample to tests/data/bounce_records.toml (the table of test_extract.py).
Pure.
"""

from __future__ import annotations

from blmonitor.bounces.detectors import gateways, microsoft, mtas, providers
from blmonitor.bounces.detectors.detector import Detector
from blmonitor.bounces.hit import Hit

__all__ = ["DETECTORS", "NOTICES", "REGISTRY", "Detector", "find_hits"]

_FAMILIES = (mtas, microsoft, providers, gateways)

# The formats a returned message's human-readable part may be in, beside a DSN or without one.
DETECTORS: tuple[Detector, ...] = tuple(
    sorted((d for family in _FAMILIES for d in family.DETECTORS), key=lambda d: d.order)
)
# Notices of their own, never the human-readable part of a DSN: tried (after DETECTORS) only
# when neither a delivery-status part nor a detector found a recipient (a DSN pays nothing
# for them).
NOTICES: tuple[Detector, ...] = tuple(
    sorted((d for family in _FAMILIES for d in family.NOTICES), key=lambda d: d.order)
)
REGISTRY: tuple[Detector, ...] = (*DETECTORS, *NOTICES)


def find_hits(text: str, low: str | None, *, notices: bool) -> tuple[str, list[Hit]]:
    """The name of the first detector (in order) that finds a recipient in `text`, and its
    hits; ("", []) when none does. `low` is the lower-cased text (None: not ASCII).
    `notices`: try the NOTICES too (nothing else found a recipient)."""
    for detector in REGISTRY if notices else DETECTORS:
        if detector.may_find(low):
            hits = [h for h in detector.find(text) if h.recipient]
            if hits:
                return detector.name, hits
    return "", []
