"""Who is to blame when no zone can be trusted: the resolver, or the zones themselves.

When every zone asked fails its health check in one run, the likely cause is the one part
they share: the resolver. The root zone's SOA and each failing zone's apex SOA (names that
must exist) are asked through the same resolver, and the answers tell the resolver's fault
apart — no reply, REFUSED, SERVFAIL, NXDOMAIN for names that exist — from zones that really
are dead. A zone is called dead only when the resolver is shown to work. Pure: the engine
asks, this decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import dns.name

from blmonitor.models import (
    Answer,
    Health,
    Outcome,
    ResolverFault,
    ResolverHealth,
    Zone,
    ZoneHealth,
)

_LOCAL_FIX = (
    "run a local recursive resolver (apt install unbound) and pass --resolver 127.0.0.1, "
    "or set [dns] resolver"
)
_FIXES = {
    ResolverFault.UNREACHABLE: "check that it runs and that this host may reach it; or "
    + _LOCAL_FIX,
    ResolverFault.REFUSED: "allow this host in its access rules; or " + _LOCAL_FIX,
    ResolverFault.FAILING: "check its upstream connectivity and DNSSEC clock; or " + _LOCAL_FIX,
    ResolverFault.NXDOMAIN: "it is a captive, filtering or sandboxed resolver; " + _LOCAL_FIX,
    ResolverFault.REWRITES: "it rewrites NXDOMAIN (an ISP or filtering resolver); " + _LOCAL_FIX,
    ResolverFault.REFUSED_BY_LISTS: "public and shared resolvers are refused by Spamhaus and "
    "others; " + _LOCAL_FIX + ", or use a Spamhaus DQS key (--dqs-key-file)",
}
_BY_OUTCOME = {
    Outcome.TIMEOUT: ResolverFault.UNREACHABLE,
    Outcome.FAILED: ResolverFault.UNREACHABLE,
    Outcome.REFUSED: ResolverFault.REFUSED,
    Outcome.SERVFAIL: ResolverFault.FAILING,
    Outcome.NXDOMAIN: ResolverFault.NXDOMAIN,
}


def apex(zone: Zone) -> dns.name.Name:
    """The name whose SOA must exist if the zone exists: the zone as queried."""
    return dns.name.from_text(zone.queried)


ROOT = dns.name.root  # its SOA: a name every working recursive resolver answers for


def needs_apex(zones: Sequence[ZoneHealth]) -> bool:
    """Whether to ask the zones' apex SOA: every zone asked failed, none passed."""
    return bool(zones) and not any(z.health.trusted for z in zones)


def judge_resolver(
    zones: Sequence[ZoneHealth],
    root: Answer,
    apexes: Mapping[str, Answer],
    *,
    servers: Sequence[str] = (),
) -> ResolverHealth | None:
    """The resolver's fault, or None when the zones' own findings stand.

    Asked only when `needs_apex`: `root` is the answer for the root zone's SOA (a name every
    recursive resolver can answer), `apexes` maps each failing zone's name to the answer for
    its apex SOA. A resolver that cannot answer for the root is at fault, whatever the zones
    said. One that can is at fault only when several zones fail alike in a way only a
    resolver causes (all refused, all answering for names that cannot be listed, all apexes
    NXDOMAIN or SERVFAIL); a single failing zone is judged on its own.
    """
    if not needs_apex(zones):
        return None
    if root.outcome is not Outcome.RECORDS:
        fault = _BY_OUTCOME.get(root.outcome, ResolverFault.UNREACHABLE)
        return _fault(fault, servers, f"the root zone's SOA: {root.outcome}")
    if len(zones) < 2:
        return None
    healths = Counter(z.health for z in zones)
    if healths[Health.REFUSED] == len(zones):
        seen = f"all {len(zones)} zones refused it"
        return _fault(ResolverFault.REFUSED_BY_LISTS, servers, seen)
    if healths[Health.LISTS_EVERYTHING] == len(zones):
        seen = f"all {len(zones)} zones answered for names that cannot be listed"
        return _fault(ResolverFault.REWRITES, servers, seen)
    outcomes = Counter(a.outcome for a in apexes.values())
    outcome, count = outcomes.most_common(1)[0] if outcomes else (Outcome.RECORDS, 0)
    alike = _BY_OUTCOME.get(outcome)
    if alike is None or count < len(zones):
        return None
    return _fault(alike, servers, f"the SOA of all {count} zones' apexes: {outcome}")


def not_judged(zones: Sequence[ZoneHealth], resolver: ResolverHealth) -> tuple[ZoneHealth, ...]:
    """The zones of a run whose resolver failed: nothing is known of them (never "dead")."""
    return tuple(
        ZoneHealth(z.zone, Health.NOT_JUDGED, f"not judged: the resolver {resolver.fault}")
        for z in zones
    )


def _fault(fault: ResolverFault, servers: Sequence[str], detail: str) -> ResolverHealth:
    return ResolverHealth(fault, tuple(servers), detail, _FIXES[fault])
