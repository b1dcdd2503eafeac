"""The detector registry (blmonitor.bounces.detectors): one consistent table, needles sound."""

from __future__ import annotations

from pathlib import Path

import pytest

from blmonitor.bounces import mime
from blmonitor.bounces.detectors import (
    DETECTORS,
    NOTICES,
    REGISTRY,
    Detector,
    gateways,
    microsoft,
    mtas,
    providers,
)
from blmonitor.bounces.mailbox import is_mbox, parse_mbox

BOUNCES = Path(__file__).parent / "data" / "bounces"
CORPUS = Path(__file__).parents[2] / "shared" / "corpus" / "sisimai-set-of-emails"
FAMILIES = (mtas, microsoft, providers, gateways)


def test_registry_is_consistent() -> None:
    regular = [d for family in FAMILIES for d in family.DETECTORS]
    notices = [d for family in FAMILIES for d in family.NOTICES]
    assert list(DETECTORS) == sorted(regular, key=lambda d: d.order)
    assert list(NOTICES) == sorted(notices, key=lambda d: d.order)
    assert (*DETECTORS, *NOTICES) == REGISTRY
    assert all(isinstance(d, Detector) for d in REGISTRY)
    names = [d.name for d in REGISTRY]
    assert all(names) and len(set(names)) == len(names)
    orders = [d.order for d in REGISTRY]
    assert len(set(orders)) == len(orders)  # a total order: no two detectors tie
    # The notices come after every other detector: they are tried last, and only when nothing
    # else found a recipient.
    assert orders == sorted(orders)
    assert all(callable(d.find) for d in REGISTRY)
    assert all(d.needles for d in REGISTRY)
    assert all(n and n == n.lower() and n.isascii() for d in REGISTRY for n in d.needles)
    assert all(s == s.lower() for d in REGISTRY for s in d.starts)
    assert len(REGISTRY) == 34


def _texts() -> list[str]:
    roots = [BOUNCES, *([CORPUS] if CORPUS.is_dir() else [])]
    texts = []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            for chunk in [c for _, c in parse_mbox(data)] if is_mbox(data) else [data]:
                texts.append(mime.normalise(chunk).decode("utf-8", errors="replace"))
    return texts


@pytest.mark.parametrize("detector", REGISTRY, ids=[d.name for d in REGISTRY])
def test_needles_never_hide_a_find(detector: Detector) -> None:
    """Whenever a detector finds a recipient in an ASCII text, its pre-check lets it try."""
    for text in _TEXTS:
        if text.isascii() and not detector.may_find(text.lower()):
            assert [h for h in detector.find(text) if h.recipient] == [], text[:200]


_TEXTS = _texts()
