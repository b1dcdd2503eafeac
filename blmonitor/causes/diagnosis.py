"""`blmonitor diagnose`: where we are listed, the probable cause and its evidence, the steps.

Pure: it composes what the other parts found (open listings from the history, the queue report,
the log report, an open-relay probe, the sender's posture, the smart-host status) into one
report a person can act on.
Delisting comes last on purpose: asked for before the cause is fixed, the IP is listed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from blmonitor.causes import logs as logstats
from blmonitor.causes import queue as mailqueue
from blmonitor.causes import relaytest
from blmonitor.models import Severity

if TYPE_CHECKING:
    from blmonitor.causes import posture as sender


@dataclass(frozen=True, slots=True)
class Listing:
    target: str
    zone: str
    since: datetime | None
    delist_url: str = ""
    meaning: str = ""


@dataclass(frozen=True, slots=True)
class Cause:
    kind: str  # open-relay, ndr-attack, spam-run, compromised-account, growth, …
    title: str
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    listings: tuple[Listing, ...]
    causes: tuple[Cause, ...]
    steps: tuple[str, ...]
    checked: tuple[str, ...]  # what was looked at
    skipped: tuple[str, ...] = ()  # what could not be looked at, and why
    symptoms: tuple[str, ...] = ()  # what the logs show of the listing (blocklist rejections)

    @property
    def healthy(self) -> bool:
        return not self.listings and not self.causes and not self.symptoms


_CAUSE_TITLES = {
    "open-relay": "the server is an open relay",
    "ndr-attack": "NDR attack (backscatter): bounces to forged senders fill the queue",
    "spam-run": "one local sender is sending to many domains (spam run)",
    "compromised-account": "an authenticated account sends far more than usual",
    "busy-client": "one client sends far more than usual",
    "volume-spike": "outbound volume spiked",
    "growth": "the queue grows fast",
    "posture": "the sender's posture: receivers reject on it before any list",
}


def diagnose(
    *,
    listings: Sequence[Listing],
    queue: mailqueue.QueueReport | None = None,
    growth: mailqueue.QueueFinding | None = None,
    log: logstats.LogReport | None = None,
    relay: relaytest.RelayReport | None = None,
    posture: sender.PostureReport | None = None,
    smarthost_applied: bool = False,
    checked: Sequence[str] = (),
    skipped: Sequence[str] = (),
) -> Diagnosis:
    """One report from what was found; each cause carries the evidence that names it.

    A relay probe from an address the MTA trusts proves nothing: it is a check not made, with
    its reason, never an open relay."""
    causes: list[Cause] = []
    steps: list[str] = []
    checked, skipped = list(checked), list(skipped)
    if relay is not None:
        judgement = relay.judgement
        where = f"open relay at {relay.host}:{relay.port}"
        if judgement.verdict is relaytest.RelayVerdict.INCONCLUSIVE:
            skipped.append(f"{where}: {judgement.reason}")
        else:
            checked.append(where)
    if relay is not None and relay.verdict is relaytest.RelayVerdict.OPEN:
        accepted = [
            r.attempt.name for r in relay.results if r.outcome is relaytest.Outcome.ACCEPTED
        ]
        evidence = f"{relay.host}:{relay.port} accepted: {', '.join(accepted)}"
        causes.append(Cause("open-relay", _CAUSE_TITLES["open-relay"], (evidence,)))
        steps.append(
            "Close the relay: Postfix `smtpd_relay_restrictions = permit_mynetworks, "
            "permit_sasl_authenticated, defer_unauth_destination` and a `mynetworks` of your own "
            "networks only; Exim: `relay_from_hosts`; Exchange: remove 'Anonymous users' from "
            "the receive connector's relay permissions. Run `blmonitor relaytest` again."
        )
    by_kind: dict[str, list[str]] = {}
    queue_findings = [*(queue.findings if queue else ()), *([growth] if growth else [])]
    for finding in queue_findings:
        by_kind.setdefault(str(finding.kind), []).append(finding.message)
    if log is not None:
        for found in log.findings:
            kind = str(found.kind)
            if kind in _CAUSE_TITLES:
                by_kind.setdefault(kind, []).append(found.message)
    for kind, lines in by_kind.items():
        causes.append(Cause(kind, _CAUSE_TITLES.get(kind, kind), tuple(lines)))
    if posture is not None:
        checked.append("posture: " + ", ".join(p.checked for p in posture.parts))
        skipped.extend(f"posture: {line}" for line in (*posture.unknown, *posture.skipped))
        bad = [f for f in posture.findings if f.severity >= Severity.WARNING]
        if bad:
            said = tuple(f"{f.subject}: {f.message}" for f in bad)
            causes.append(Cause("posture", _CAUSE_TITLES["posture"], said))
            steps.append("Fix the posture (`blmonitor posture` tells each): "
                         + "; ".join(dict.fromkeys(f.fix for f in bad)) + ".")  # fmt: skip
    # rejections that name a list are the symptom, seen from the receivers' side
    symptoms = tuple(
        f.message for f in (log.findings if log else ()) if str(f.kind) not in _CAUSE_TITLES
    )
    kinds = set(by_kind)
    if kinds & {"compromised-account", "spam-run", "busy-client"}:
        users = sorted({f.subject for f in (log.findings if log else ()) if f.subject})
        who = f" ({', '.join(users)})" if users else ""
        steps.append(
            f"Change the password of the account(s) sending the burst{who}, check them for "
            "forwarding rules and app passwords, and limit their rate (Postfix: "
            "`smtpd_client_message_rate_limit`, policyd-rate-limit)."
        )
    if kinds & {"ndr-attack", "spam-run", "growth"}:
        steps.append(
            "Clean the queue: `blmonitor queue` shows the messages of each finding; "
            "`blmonitor queue --apply` removes them (after a confirmation)."
        )
        if "ndr-attack" in kinds:
            steps.append(
                "Stop the backscatter at its source: reject unknown recipients at SMTP time "
                "(Postfix `smtpd_reject_unlisted_recipient = yes`, recipient validation on the "
                "edge; Exchange: Recipient Filtering) instead of accepting and bouncing later."
            )
    if listings:
        if not smarthost_applied:
            steps.append(
                "Meanwhile, send through your ISP's smart host: `blmonitor smarthost plan` "
                "shows the change, `blmonitor smarthost apply` makes it."
            )
        links = sorted({f"{item.zone}: {item.delist_url}" for item in listings if item.delist_url})
        steps.append(
            "Only then request delisting"
            + (": " + "; ".join(links) if links else " at each list's site")
            + ". Delisting before the cause is fixed gets the address listed again within days."
        )
    elif causes:
        steps.append("Not listed yet: fix the cause before a list notices.")
    return Diagnosis(tuple(listings), tuple(causes), tuple(steps), tuple(checked),
                     tuple(skipped), symptoms)  # fmt: skip


def render_diagnosis(diagnosis: Diagnosis, *, now: datetime) -> str:
    """The report as text: listings, causes with evidence, numbered steps."""
    out: list[str] = []
    if diagnosis.listings:
        out.append("LISTED")
        for item in diagnosis.listings:
            since = f" since {item.since:%Y-%m-%d %H:%M} UTC" if item.since else ""
            days = f" ({(now - item.since).days} days)" if item.since else ""
            out.append(f"  {item.target} on {item.zone}{since}{days}")
    else:
        out.append("LISTED: nowhere, as far as the last check knows")
    out.extend(f"  seen in the logs: {line}" for line in diagnosis.symptoms)
    if diagnosis.causes:
        out.append("PROBABLE CAUSE" + ("S" if len(diagnosis.causes) > 1 else ""))
        for cause in diagnosis.causes:
            out.append(f"  {cause.title}")
            out.extend(f"    evidence: {line}" for line in cause.evidence)
    else:
        out.append("PROBABLE CAUSE: none found in what was checked")
    if diagnosis.steps:
        out.append("STEPS, IN ORDER")
        out.extend(f"  {n}. {step}" for n, step in enumerate(diagnosis.steps, 1))
    out.append("checked: " + (", ".join(diagnosis.checked) or "nothing"))
    out.extend(f"not checked: {why}" for why in diagnosis.skipped)
    return "\n".join(out) + "\n"


def diagnosis_json(diagnosis: Diagnosis) -> dict[str, Any]:
    return {
        "listings": [
            {"target": i.target, "zone": i.zone, "since": i.since.isoformat() if i.since else None,
             "delist_url": i.delist_url, "meaning": i.meaning}
            for i in diagnosis.listings
        ],
        "causes": [{"kind": c.kind, "title": c.title, "evidence": list(c.evidence)}
                   for c in diagnosis.causes],
        "steps": list(diagnosis.steps),
        "checked": list(diagnosis.checked),
        "skipped": list(diagnosis.skipped),
        "symptoms": list(diagnosis.symptoms),
    }  # fmt: skip
