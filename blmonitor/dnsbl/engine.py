"""The check engine: N targets × M zones, concurrently, politely, with every zone health-checked.

Lookups go through a `Lookup` port (the DnsClient, or anything with the same `submit`), driven
by callbacks rather than a task per lookup. A global window bounds the lookups in flight and
each zone has its own smaller window, so a slow or dead zone never holds the others' results
past the timeout. A zone sends its test-point probes and a single target first; only once it
has passed its health check do its other targets go out, and once it fails, they never do.
A `ScanWatch` given to it is kept up to date for a progress display.
"""

from __future__ import annotations

import asyncio
import functools
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import dns.name
import dns.rdatatype

from blmonitor.dnsbl import answers as dnsbl
from blmonitor.dnsbl import blame
from blmonitor.dnsbl.resolver import DnsClient, Nameserver
from blmonitor.models import (
    Answer,
    Health,
    Outcome,
    Report,
    ResolverHealth,
    Result,
    Severity,
    Status,
    Target,
    Zone,
    ZoneHealth,
)

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class ZoneWatch:
    """One zone's part of a scan, as a progress display sees it."""

    label: str
    left: int  # lookups not answered yet (probes and targets, those never sent included)
    last: float  # when it last answered (the start of the scan before its first answer)
    finished: float | None = None  # when its last lookup was answered or given up
    timeouts: int = 0


class ScanWatch:
    """A live view of a scan, for a progress display: the engine fills it as answers come, a
    display reads it (from another thread: it only reads numbers), and once the scan is over
    it tells when each zone finished. Times are `clock`'s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = math.inf  # until the scan begins (a discovery may come first)
        self.done = self.total = 0  # lookups
        self.targets = self.targets_done = 0
        self.zones: list[ZoneWatch] = []
        self._target_left: list[int] = []

    def begin(self, zones: Sequence[tuple[str, int]], target_left: list[int], total: int) -> None:
        self.started = self.clock()
        self.zones = [ZoneWatch(label, left, self.started) for label, left in zones]
        for zone in self.zones:
            if not zone.left:
                zone.finished = self.started
        self._target_left = target_left
        self.targets, self.total = len(target_left), total
        self.targets_done = sum(1 for left in target_left if not left)

    def answered(self, zi: int, ti: int | None, answer: Answer) -> None:
        zone = self.zones[zi]
        zone.last = self.clock()
        zone.timeouts += answer.outcome is Outcome.TIMEOUT
        self.done += 1
        self._left(zone, 1, () if ti is None else (ti,))

    def skipped(self, zi: int, tis: Sequence[int]) -> None:
        """Targets a zone will never be asked: it failed its health check."""
        self.done += len(tis)
        self._left(self.zones[zi], len(tis), tis)

    def _left(self, zone: ZoneWatch, n: int, tis: Sequence[int]) -> None:
        zone.left -= n
        if zone.left <= 0 and zone.finished is None:
            zone.finished = zone.last
        for ti in tis:
            self._target_left[ti] -= 1
            if not self._target_left[ti]:
                self.targets_done += 1

    def slowest(self) -> ZoneWatch | None:
        """The zone still waited on that has been silent longest."""
        pending = [z for z in self.zones if z.finished is None]
        return min(pending, key=lambda z: z.last) if pending else None


class Lookup(Protocol):
    """Starts one DNS lookup and calls back with its Answer (the DnsClient does this)."""

    def submit(
        self,
        name: dns.name.Name | bytes,
        rdtype: dns.rdatatype.RdataType,
        callback: Callable[[Answer], None],
    ) -> None: ...


A = dns.rdatatype.A
TXT = dns.rdatatype.TXT
SOA = dns.rdatatype.SOA


def scan(
    targets: Sequence[Target],
    zones: Sequence[Zone],
    servers: Sequence[Nameserver],
    *,
    timeout: float,
    concurrency: int | None = None,
    fail_on: Severity = Severity.WARNING,
    progress: Progress | None = None,
    watch: ScanWatch | None = None,
) -> Report:
    """`check` through a DnsClient on `servers`, with its query counts in the Report.

    `concurrency` sets the total window and each zone's (a local mirror); None keeps the
    polite defaults: 256 in total and the catalog's limit per zone.
    """
    dnsbl.check_plan(targets, zones)

    async def go() -> Report:
        async with DnsClient(list(servers), timeout=timeout) as client:
            report = await check(
                targets,
                zones,
                client,
                concurrency=concurrency or 256,
                zone_concurrency=concurrency,
                fail_on=fail_on,
                progress=progress,
                servers=[str(s) for s in servers],
                watch=watch,
            )
            return replace(report, queries=client.queries, retries=client.retries)

    return asyncio.run(go())


@dataclass(slots=True)
class _ZoneRun:
    index: int
    zone: Zone
    limit: int
    origin: bytes  # the zone's name in wire form, appended to each target's labels
    todo: list[int] = field(default_factory=list)  # indexes of the targets it takes
    cursor: int = 0
    probe_queue: deque[int] = field(default_factory=deque)
    probes: list[dnsbl.ProbeQuery] = field(default_factory=list)
    probe_answers: list[tuple[dnsbl.ProbeQuery, Answer]] = field(default_factory=list)
    inflight: int = 0
    ready: bool = False
    health: ZoneHealth | None = None

    @property
    def waiting(self) -> bool:
        return bool(self.probe_queue) or self.cursor < len(self.todo)


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
    servers: Sequence[str] = (),
    watch: ScanWatch | None = None,
) -> Report:
    """Check every target against every zone that takes it; see the module docstring.

    `servers` names the resolvers behind `lookup`, for the report when they are at fault."""
    nonce = nonce or secrets.token_hex(6)
    kinds = {t.kind for t in targets}
    # Query names are built lazily from two wire-form halves: one per target, one per zone.
    prefixes = [dnsbl.wire_labels(dnsbl.relative_name(t.kind, t.text)) for t in targets]
    runs: list[_ZoneRun] = []
    for zi, zone in enumerate(zones):
        limit = max(1, min(zone_concurrency or zone.max_inflight, concurrency))
        run = _ZoneRun(zi, zone, limit, dnsbl.wire_labels(dnsbl.zone_origin(zone)))
        if kinds & zone.takes:
            run.probes = dnsbl.health_probes(zone, kinds, nonce)
        run.probe_queue.extend(range(len(run.probes)))
        for ti, target in enumerate(targets):
            if target.kind in zone.takes:
                run.todo.append(ti)
        runs.append(run)

    answers: dict[tuple[int, int], tuple[Answer, Answer | None]] = {}
    total = sum(len(r.probes) + len(r.todo) for r in runs)
    done = inflight = 0
    if watch is not None:
        target_left = [0] * len(targets)
        for run in runs:
            for ti in run.todo:
                target_left[ti] += 1
        watch.begin(
            [(run.zone.label, len(run.probes) + len(run.todo)) for run in runs], target_left, total
        )
    ready: deque[_ZoneRun] = deque()
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def mark_ready(run: _ZoneRun) -> None:
        # Until its health check is done a zone sends its probes and one target, no more, so
        # a dead or silent zone cannot hold the shared window for a whole timeout.
        if run.health is None and not run.probe_queue and run.cursor >= 1:
            return
        if not run.ready and run.inflight < run.limit and run.waiting:
            run.ready = True
            ready.append(run)

    def guarded(step: Callable[..., None]) -> Callable[..., None]:
        """Callbacks run inside the resolver's reader: a bug must end the run, not hang it."""

        def call(*args: Any) -> None:
            try:
                step(*args)
            except BaseException as exc:
                if not finished.done():
                    finished.set_exception(exc)

        return call

    def launch() -> None:
        nonlocal inflight
        while inflight < concurrency and ready:
            run = ready.popleft()
            run.ready = False
            if not run.waiting:  # its health check failed after it was queued: nothing to send
                continue
            if run.probe_queue:
                pi = run.probe_queue.popleft()
                lookup.submit(run.probes[pi].name, A, functools.partial(on_probe, run, pi))
            else:
                ti = run.todo[run.cursor]
                run.cursor += 1
                name = prefixes[ti] + run.origin
                lookup.submit(name, A, functools.partial(on_answer, run, ti, name))
            run.inflight += 1
            inflight += 1
            mark_ready(run)

    @guarded
    def on_probe(run: _ZoneRun, pi: int, answer: Answer) -> None:
        nonlocal done
        run.probe_answers.append((run.probes[pi], answer))
        if len(run.probe_answers) == len(run.probes):
            run.health = dnsbl.judge_health(run.zone, run.probe_answers)
            if not run.health.health.trusted:
                done += len(run.todo) - run.cursor  # never sent: reported as "not asked"
                if watch is not None:
                    watch.skipped(run.index, run.todo[run.cursor :])
                run.cursor = len(run.todo)
        if watch is not None:
            watch.answered(run.index, None, answer)
        complete(run)

    @guarded
    def on_answer(run: _ZoneRun, ti: int, name: bytes, answer: Answer) -> None:
        if (
            answer.outcome is Outcome.RECORDS
            and dnsbl.decode(run.zone, answer.outcome, answer.records).status is Status.LISTED
        ):
            # The TXT record at the same name says why; the zone's slot stays taken meanwhile.
            lookup.submit(name, TXT, functools.partial(on_txt, run, ti, answer))
            return
        answers[(ti, run.index)] = (answer, None)
        if watch is not None:
            watch.answered(run.index, ti, answer)
        complete(run)

    @guarded
    def on_txt(run: _ZoneRun, ti: int, answer: Answer, txt: Answer) -> None:
        answers[(ti, run.index)] = (answer, txt)
        if watch is not None:
            watch.answered(run.index, ti, answer)
        complete(run)

    def complete(run: _ZoneRun) -> None:
        nonlocal inflight, done
        run.inflight -= 1
        inflight -= 1
        done += 1
        if progress is not None:
            progress(done, total)
        mark_ready(run)
        launch()
        if done >= total and not finished.done():
            finished.set_result(None)

    for run in runs:
        mark_ready(run)
    if total:
        launch()
        await finished
    resolver = await _judge_resolver(runs, lookup, servers)
    return _report(targets, runs, answers, fail_on, resolver)


async def _judge_resolver(
    runs: Sequence[_ZoneRun], lookup: Lookup, servers: Sequence[str]
) -> ResolverHealth | None:
    """When every zone asked failed its health check: ask the root's and each zone's apex
    SOA, and let `blame` decide whether the resolver is at fault."""
    healths = [run.health for run in runs if run.probes and run.health is not None]
    if not blame.needs_apex(healths):
        return None
    loop = asyncio.get_running_loop()
    names = [blame.ROOT, *(blame.apex(h.zone) for h in healths)]
    futures: list[asyncio.Future[Answer]] = [loop.create_future() for _ in names]
    for name, future in zip(names, futures, strict=True):
        lookup.submit(name, SOA, functools.partial(_settle, future))
    root, *apexes = [await future for future in futures]
    by_zone = {h.zone.name: a for h, a in zip(healths, apexes, strict=True)}
    return blame.judge_resolver(healths, root, by_zone, servers=servers)


def _settle(future: asyncio.Future[Answer], answer: Answer) -> None:
    if not future.done():
        future.set_result(answer)


def _report(
    targets: Sequence[Target],
    runs: list[_ZoneRun],
    answers: dict[tuple[int, int], tuple[Answer, Answer | None]],
    fail_on: Severity,
    resolver: ResolverHealth | None = None,
) -> Report:
    healths = [
        run.health or ZoneHealth(run.zone, Health.UNTESTED, "no target of a kind it takes")
        for run in runs
    ]
    if resolver is not None:  # the zones said nothing about themselves
        asked = [h for h, run in zip(healths, runs, strict=True) if run.probes]
        judged = {h.zone.name: h for h in blame.not_judged(asked, resolver)}
        healths = [judged.get(h.zone.name, h) for h in healths]
    results: list[Result] = []
    for ti, target in enumerate(targets):  # target-major, zones in the order asked
        for run, health in zip(runs, healths, strict=True):
            if target.kind not in run.zone.takes:
                results.append(dnsbl.judge(target, run.zone, None))
                continue
            got = answers.get((ti, run.index))
            if got is None:
                why = (
                    f"not asked: zone {health.health}: {health.detail}"
                    if resolver is None
                    else f"not asked: the resolver {resolver.fault}"
                )
                results.append(Result(target, run.zone, Status.ERROR, error=why))
            elif health.health.trusted:
                results.append(dnsbl.judge(target, run.zone, *got))
            else:
                results.append(dnsbl.distrust(dnsbl.judge(target, run.zone, *got), health))
    # A zone that takes none of the targets was not asked anything: it is no part of the run.
    used = tuple(h for h, run in zip(healths, runs, strict=True) if run.probes)
    verdict = dnsbl.decide(results, used, fail_on=fail_on)
    return Report(results=tuple(results), zones=used, verdict=verdict, resolver=resolver)
