"""The check engine: N targets × M zones, concurrently, politely, with every zone health-checked.

Lookups go through a `Lookup` port (the DnsClient, or anything with the same `query`). A global
window bounds the lookups in flight and each zone has its own smaller window, so a slow or dead
zone holds at most its own window and never the others' results past the timeout. Each zone's
test-point probes go first; once a zone fails them, its queued target lookups are not sent.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import dns.name
import dns.rdatatype

from . import dnsbl
from .models import Answer, Health, Report, Result, Severity, Status, Target, Zone, ZoneHealth


class Lookup(Protocol):
    async def query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer: ...


Progress = Callable[[int, int], None]


@dataclass(slots=True)
class _ZoneRun:
    index: int
    zone: Zone
    limit: int
    # (target index, probe index, name): exactly one of the two indexes is >= 0
    queue: deque[tuple[int, int, dns.name.Name]] = field(default_factory=deque)
    probes: list[dnsbl.ProbeQuery] = field(default_factory=list)
    probe_answers: list[tuple[dnsbl.ProbeQuery, Answer]] = field(default_factory=list)
    inflight: int = 0
    ready: bool = False
    health: ZoneHealth | None = None


async def check(
    targets: Sequence[Target],
    zones: Sequence[Zone],
    lookup: Lookup,
    *,
    concurrency: int = 256,
    zone_concurrency: int | None = None,
    fail_on: Severity = Severity.WARNING,
    progress: Progress | None = None,
    nonce: str | None = None,
) -> Report:
    """Check every target against every zone that takes it; see the module docstring."""
    nonce = nonce or secrets.token_hex(6)
    kinds = {t.kind for t in targets}
    runs: list[_ZoneRun] = []
    for zi, zone in enumerate(zones):
        run = _ZoneRun(zi, zone, max(1, min(zone_concurrency or zone.max_inflight, concurrency)))
        if kinds & zone.takes:
            run.probes = dnsbl.health_probes(zone, kinds, nonce)
        run.queue.extend((-1, pi, p.name) for pi, p in enumerate(run.probes))
        runs.append(run)
    skipped: list[Result] = []
    for ti, target in enumerate(targets):
        for run in runs:
            name = dnsbl.query_name(target, run.zone)
            if name is None:
                skipped.append(dnsbl.judge(target, run.zone, None))
            else:
                run.queue.append((ti, -1, name))

    answers: dict[tuple[int, int], tuple[Answer, Answer | None]] = {}
    total = sum(len(r.queue) for r in runs)
    done = inflight = 0
    ready: deque[_ZoneRun] = deque()
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    tasks: set[asyncio.Task[None]] = set()

    def mark_ready(run: _ZoneRun) -> None:
        if run.queue and not run.ready and run.inflight < run.limit:
            run.ready = True
            ready.append(run)

    async def job(run: _ZoneRun, ti: int, pi: int, name: dns.name.Name) -> None:
        nonlocal done
        answer = await lookup.query(name, dns.rdatatype.A)
        if pi >= 0:
            run.probe_answers.append((run.probes[pi], answer))
            if len(run.probe_answers) == len(run.probes):
                run.health = dnsbl.judge_health(run.zone, run.probe_answers)
                if not run.health.health.trusted:
                    done += len(run.queue)  # never sent: reported as "not asked"
                    run.queue.clear()
            return
        txt = None
        if dnsbl.decode(run.zone, answer.outcome, answer.records).status is Status.LISTED:
            txt = await lookup.query(name, dns.rdatatype.TXT)
        answers[(ti, run.index)] = (answer, txt)

    def launch() -> None:
        nonlocal inflight
        while inflight < concurrency and ready:
            run = ready.popleft()
            run.ready = False
            ti, pi, name = run.queue.popleft()
            run.inflight += 1
            inflight += 1
            task = asyncio.ensure_future(job(run, ti, pi, name))
            tasks.add(task)
            task.add_done_callback(functools.partial(complete, run))
            mark_ready(run)

    def complete(run: _ZoneRun, task: asyncio.Task[None]) -> None:
        nonlocal inflight, done
        tasks.discard(task)
        if finished.done():
            return
        if not task.cancelled() and (exc := task.exception()) is not None:
            for other in tasks:
                other.cancel()
            finished.set_exception(exc)
            return
        run.inflight -= 1
        inflight -= 1
        done += 1
        if progress is not None:
            progress(done, total)
        mark_ready(run)
        launch()
        if done >= total:
            finished.set_result(None)

    for run in runs:
        mark_ready(run)
    if total:
        launch()
        await finished
    return _report(targets, runs, answers, skipped, fail_on)


def _report(
    targets: Sequence[Target],
    runs: list[_ZoneRun],
    answers: dict[tuple[int, int], tuple[Answer, Answer | None]],
    skipped: list[Result],
    fail_on: Severity,
) -> Report:
    healths = [
        run.health or ZoneHealth(run.zone, Health.UNTESTED, "no target of a kind it takes")
        for run in runs
    ]
    results: list[Result] = list(skipped)
    for ti, target in enumerate(targets):
        for run, health in zip(runs, healths, strict=True):
            if target.kind not in run.zone.takes:
                continue
            got = answers.get((ti, run.index))
            if got is None:
                why = f"not asked: zone {health.health}: {health.detail}"
                results.append(Result(target, run.zone, Status.ERROR, error=why))
            else:
                results.append(dnsbl.distrust(dnsbl.judge(target, run.zone, *got), health))
    target_order = {t: i for i, t in enumerate(targets)}
    zone_order = {run.zone.name: run.index for run in runs}
    results.sort(key=lambda r: (target_order[r.target], zone_order[r.zone.name]))
    verdict = dnsbl.decide(results, healths, fail_on=fail_on)
    return Report(results=tuple(results), zones=tuple(healths), verdict=verdict)
