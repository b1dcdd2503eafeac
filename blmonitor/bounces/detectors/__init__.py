"""The detectors of non-standard bounce formats, one registry: every `Detector` is declared once,
in the module of its family (`mtas`, `microsoft`, `providers`, `gateways`), and `DETECTORS`
holds them all in the order they are tried. To add a format: write its finder beside its
family's, declare it in that module's `DETECTORS` with its needles and its order, and add a
sample to the table of tests/test_extract.py. Pure.
"""

from __future__ import annotations

from blmonitor.bounces.detectors import gateways, microsoft, mtas, providers
from blmonitor.bounces.detectors.detector import Detector
from blmonitor.bounces.hit import Hit

__all__ = ["DETECTORS", "Detector", "find_hits"]

DETECTORS: tuple[Detector, ...] = tuple(
    sorted(
        (*mtas.DETECTORS, *microsoft.DETECTORS, *providers.DETECTORS, *gateways.DETECTORS),
        key=lambda detector: detector.order,
    )
)


def find_hits(text: str, low: str | None, *, notices: bool) -> tuple[str, list[Hit]]:
    """The name of the first detector (in order) that finds a recipient in `text`, and its
    hits; ("", []) when none does. `low` is the lower-cased text (None: not ASCII).
    `notices`: try the notice detectors too (nothing else found a recipient)."""
    for detector in DETECTORS:
        if (notices or not detector.notice) and detector.may_find(low):
            hits = [h for h in detector.find(text) if h.recipient]
            if hits:
                return detector.name, hits
    return "", []
