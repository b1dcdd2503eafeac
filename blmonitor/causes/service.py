"""The cause-finding use cases: the mail queue (detect the MTA, read, analyse, select, remove
and record), `diagnose` (history, queue and its growth, logs, the sender's posture, an
open-relay probe, put together by the pure `diagnosis`), the relay test, which reads the trust
settings of this host's MTA (postconf, exim -bP) when it probes it, and `posture`, whose pure
checks the DnsClient answers. Each returns a typed result; faces render it.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blmonitor.causes import diagnosis
from blmonitor.causes import logs as logstats
from blmonitor.causes import queue as mailqueue
from blmonitor.causes import relaytest as probe
from blmonitor.errors import BlmonitorError, UsageError
from blmonitor.models import Answer, Target, TargetKind, Verdict

if TYPE_CHECKING:
    import asyncio

    from blmonitor.causes import posture as posture_core
    from blmonitor.config import Config
    from blmonitor.dnsbl.resolver import DnsClient
    from blmonitor.monitor.store import Store

Which = Callable[[str], str | None]

# Where the MTA logs usually are, when neither --log nor [diagnose] logs says.
USUAL_LOGS = (Path("/var/log/mail.log"), Path("/var/log/exim4/mainlog"))


# --- the queue ---------------------------------------------------------------------------------


def detect_queue_mta(*, postfix_dir: Path | None = None, which: Which = shutil.which) -> (
    mailqueue.Mta | None
):  # fmt: skip
    """The MTA whose queue this host has: Postfix (postqueue on PATH), else Exim, else None.

    With `postfix_dir`, Postfix counts only when its main.cf is there too (the daemon asks on
    every run and must stay quiet on a host where Postfix is installed but not configured).
    """
    if which("postqueue") and (postfix_dir is None or (postfix_dir / "main.cf").exists()):
        return mailqueue.Mta.POSTFIX
    if which("exim4") or which("exim"):
        return mailqueue.Mta.EXIM
    return None


def queue_mta(given: str | None, *, which: Which = shutil.which) -> mailqueue.Mta:
    """The --mta given, else the one installed; a UsageError when there is none."""
    if given:
        return mailqueue.Mta(given)
    found = detect_queue_mta(which=which)
    if found is None:
        raise UsageError("found neither postqueue (Postfix) nor exim: pass --mta")
    return found


def read_queue(
    mta: mailqueue.Mta, *, config_dir: Path | None, now: datetime, which: Which = shutil.which
) -> tuple[mailqueue.QueuedMessage, ...]:
    """The queued messages, from `postqueue -j` or `exim -bp` (Debian names it exim4)."""
    if mta is mailqueue.Mta.EXIM:
        return mailqueue.read_exim_queue(now=now, exim="exim4" if which("exim4") else "exim")
    return mailqueue.read_postfix_queue(config_dir=config_dir)


def local_domains_of(config: Config, given: Sequence[str]) -> tuple[str, ...]:
    """The --local-domain options, else [diagnose] local_domains."""
    return tuple(d.lower() for d in given) or config.diagnose.local_domains


@dataclass(frozen=True, slots=True)
class QueueInspection:
    mta: mailqueue.Mta
    report: mailqueue.QueueReport
    selected: tuple[str, ...]  # the queue ids to remove: --sender's, else the findings'
    selection: str  # what was selected, in words, for the history
    commands: tuple[mailqueue.Command, ...]  # what removes exactly the selected messages

    @property
    def verdict(self) -> Verdict:
        return Verdict.LISTED if self.report.findings else Verdict.CLEAN


def inspect_queue(
    config: Config,
    *,
    now: datetime,
    mta: str | None = None,
    config_dir: Path | None = None,
    local_domains: Sequence[str] = (),
    sender: str | None = None,
) -> QueueInspection:
    """Read and analyse the queue, select messages, and build the commands removing them."""
    chosen = queue_mta(mta)
    messages = read_queue(chosen, config_dir=config_dir, now=now)
    domains = local_domains_of(config, local_domains)
    report = mailqueue.analyse_queue(messages, now=now, local_domains=domains)
    if sender is not None:
        ids = mailqueue.select_queue_ids(messages, sender="" if sender == "<>" else sender)
        selection = f"sender {sender}"
    else:
        ids = tuple(dict.fromkeys(i for f in report.findings for i in f.queue_ids))
        selection = "the findings' messages"
    commands = mailqueue.removal_commands(chosen, ids, config_dir=config_dir)
    return QueueInspection(chosen, report, ids, selection, tuple(commands))


def remove_queued(config: Config, inspection: QueueInspection, *, now: datetime) -> (
    mailqueue.Removal
):  # fmt: skip
    """Run the removal commands and record what was removed in the history database."""
    from blmonitor.monitor.store import Store

    removal = mailqueue.run_removal(inspection.commands)
    store = Store(config.monitor.database)
    try:
        store.record_cleanup(now, mta=str(inspection.mta), selection=inspection.selection,
                             removed=removal.removed, error=removal.error)  # fmt: skip
    finally:
        store.close()
    return removal


def queue_json(inspection: QueueInspection) -> dict[str, Any]:
    return {**mailqueue.queue_report_json(inspection.report),
            "selected": list(inspection.selected),
            "commands": [c.shell() for c in inspection.commands]}  # fmt: skip


def render_queue(inspection: QueueInspection) -> str:
    text = mailqueue.render_queue_report(inspection.report)
    if inspection.commands:
        text += f"clean-up ({len(inspection.selected)} message(s)):\n"
        text += "".join(f"  {command.summary()}\n" for command in inspection.commands)
    return text


# --- the relay test ----------------------------------------------------------------------------

# Runs a command and returns its standard output; raises OSError or SubprocessError on failure.
Runner = Callable[[Sequence[str]], str]
POSTFIX_DIR = Path("/etc/postfix")


def run_command(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=15, check=True)
    return done.stdout


def resolve_host(host: str) -> str:
    """The host's address (for the [ip] forms of the relay attempts); "" when it has none."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, 25, proto=socket.IPPROTO_TCP)[0][4][0])
    except OSError:
        return ""


def is_own_address(address: str) -> bool:
    """Whether `address` is this machine's: loopback, or bound to one of its interfaces.

    The kernel answers, not a resolver: the source it picks for a route to one of our own
    addresses is that address itself (connecting a UDP socket sends nothing)."""
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((str(ip), 9))
            return ipaddress.ip_address(str(sock.getsockname()[0]).partition("%")[0]) == ip
    except OSError:
        return False


def read_postfix_trust(config_dir: Path, *, run: Runner = run_command) -> probe.TrustedNetworks:
    """Postfix's mynetworks as `postconf -c DIR` computes it: from mynetworks_style (host,
    subnet, class) and the interfaces when mynetworks is unset, exactly as smtpd does."""
    base = ["postconf", "-c", str(config_dir)]
    explicit = run([*base, "-n", "mynetworks"]).strip()
    values = {}
    for line in run([*base, "-x", "mynetworks", "mynetworks_style"]).splitlines():
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    origin = "" if explicit else f"mynetworks_style = {values.get('mynetworks_style', '?')}"
    return probe.TrustedNetworks(probe.POSTFIX, "mynetworks", values.get("mynetworks", ""),
                                 origin)  # fmt: skip


def read_exim_trust(exim: str, *, run: Runner = run_command) -> probe.TrustedNetworks:
    """Exim's relay_from_hosts: a named host list, which `exim -bP +NAME` prints."""
    out = run([exim, "-bP", "+relay_from_hosts"]).strip()
    label, sep, value = out.partition("=")
    if not sep or label.split() != ["hostlist", "relay_from_hosts"]:
        raise ValueError(out or f"{exim} -bP +relay_from_hosts printed nothing")
    return probe.TrustedNetworks(probe.EXIM, "relay_from_hosts", value.strip())


def _failure(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        lines = str(exc.stderr or exc.stdout or "").strip().splitlines()
        return lines[-1].strip() if lines else f"exit status {exc.returncode}"
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"no answer within {exc.timeout:g} s"
    return str(exc)


def read_trusted(*, config_dir: Path | None = None, run: Runner = run_command,
                 which: Which = shutil.which) -> (
    tuple[tuple[probe.TrustedNetworks, ...], tuple[str, ...]]
):  # fmt: skip
    """The networks this host's MTAs relay for by design, and what could not be read."""
    found: list[probe.TrustedNetworks] = []
    problems: list[str] = []
    readers: list[tuple[str, Callable[[], probe.TrustedNetworks]]] = []
    if which("postconf"):
        chosen = config_dir or POSTFIX_DIR
        readers.append(("Postfix's mynetworks", lambda: read_postfix_trust(chosen, run=run)))
    exim = "exim4" if which("exim4") else "exim" if which("exim") else ""
    if exim:
        readers.append(("Exim's relay_from_hosts", lambda: read_exim_trust(exim, run=run)))
    for what, read in readers:
        try:
            found.append(read())
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            problems.append(f"{what}: {_failure(exc)}")
    if not readers:
        problems.append("neither postconf (Postfix) nor exim is installed")
    return tuple(found), tuple(problems)


def relaytest(
    host: str,
    *,
    port: int = 25,
    local_domain: str = "",
    timeout: float = 30.0,
    source: str = "",
    config_dir: Path | None = None,
    run: Runner = run_command,
    which: Which = shutil.which,
) -> probe.RelayReport:
    """Probe `host` for an open relay (EHLO, MAIL, RCPT, RSET: never DATA), from `source`.

    When the server turns out to be this host's own MTA, its trust settings are read too: a
    probe from an address it trusts is inconclusive, never OPEN."""
    if not 0 < timeout <= 600:  # (nan fails it too; inf would leak the socket in smtplib)
        raise UsageError(f"--timeout {timeout:g}: give seconds above 0, at most 600")
    if source:
        try:
            source = str(ipaddress.ip_address(source))
        except ValueError as exc:
            raise UsageError(f"--source: {source!r} is not an IP address of this machine") from exc
    attempts = probe.build_attempts(host, local_domain=local_domain, target_ip=resolve_host(host))
    report = probe.probe(host, port, attempts, timeout=timeout, source=source)
    if not report.peer or not is_own_address(report.peer):
        return report
    trusted, problems = read_trusted(config_dir=config_dir, run=run, which=which)
    note = "" if trusted else (
        f"{report.peer} is this host, but its MTA's trust settings could not be read "
        f"({'; '.join(problems)}): an accepted attempt may be relaying by design"
    )  # fmt: skip
    return replace(report, this_host=True, trusted=trusted, note=note)


def relay_verdict(report: probe.RelayReport) -> Verdict:
    """An open relay counts as listed, all refused as clean; an unfinished probe, or one from an
    address the MTA trusts (inconclusive), as unknown."""
    verdicts = {probe.RelayVerdict.OPEN: Verdict.LISTED, probe.RelayVerdict.CLOSED: Verdict.CLEAN}
    return verdicts.get(report.verdict, Verdict.UNKNOWN)


# --- diagnose ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiagnoseResult:
    diagnosis: diagnosis.Diagnosis
    queue: mailqueue.QueueReport | None
    log: logstats.LogReport | None
    relay: probe.RelayReport | None
    posture: posture_core.PostureReport | None = None

    @property
    def verdict(self) -> Verdict:
        """Listed when a listing or a cause was found; unknown when nothing could be checked."""
        if not self.diagnosis.healthy:
            return Verdict.LISTED
        return Verdict.CLEAN if self.diagnosis.checked else Verdict.UNKNOWN


@dataclass
class _Steps:
    """What was looked at and what could not be, as the steps go."""

    checked: list[str]
    skipped: list[str]


def _open_listings(store: Store) -> list[diagnosis.Listing]:
    return [
        diagnosis.Listing(
            row["target"],
            row["zone"],
            datetime.fromisoformat(row["first_seen"]) if row["first_seen"] else None,
            row["delist_url"] or "",
            row["meaning"] or "",
        )
        for row in store.episodes()
        if row["ended"] is None
    ]


def _queue_step(steps: _Steps, mta: str | None, config_dir: Path | None, *, now: datetime,
                domains: Sequence[str]) -> mailqueue.QueueReport | None:  # fmt: skip
    try:
        chosen = queue_mta(mta)
        report = mailqueue.analyse_queue(read_queue(chosen, config_dir=config_dir, now=now),
                                         now=now, local_domains=domains)  # fmt: skip
    except BlmonitorError as exc:
        steps.skipped.append(f"queue: {exc}")
        return None
    steps.checked.append(f"the {chosen} queue")
    return report


def _growth(store: Store | None, queue: mailqueue.QueueReport | None, *, now: datetime) -> (
    mailqueue.QueueFinding | None
):  # fmt: skip
    """How fast the queue grows since the daemon's snapshot of its last run."""
    last = store.load_causes() if store is not None else None
    if queue is None or last is None or last.queue_at is None:
        return None
    earlier = mailqueue.QueueSnapshot(last.queue_at, last.queue_messages)
    later = mailqueue.QueueSnapshot(now, queue.messages)
    return mailqueue.growth_finding(mailqueue.queue_growth(earlier, later))


def _log_step(steps: _Steps, paths: Sequence[Path], since: str, *, now: datetime,
              domains: Sequence[str]) -> logstats.LogReport | None:  # fmt: skip
    from blmonitor.config.table import parse_duration

    if not paths:
        steps.skipped.append("logs: none found (pass --log /var/log/mail.log)")
        return None
    try:
        window = now - timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from exc
    try:
        files = [f for p in paths for f in logstats.log_files(p)]
        report = logstats.analyse_log_files(files, since=window, local_domains=domains)
    except BlmonitorError as exc:
        steps.skipped.append(f"logs: {exc}")
        return None
    steps.checked.append("logs: " + ", ".join(str(p) for p in paths))
    return report


def run_diagnose(
    config: Config,
    *,
    now: datetime,
    logs: Sequence[Path] = (),
    since: str = "7d",
    mta: str | None = None,
    config_dir: Path | None = None,
    local_domains: Sequence[str] = (),
    relay_host: str = "",
) -> DiagnoseResult:
    """Why are we listed: the history's open listings, the queue and its growth, the logs and,
    with `relay_host`, an open-relay probe, put together with the steps to take."""
    from blmonitor.monitor.status import open_history

    domains = local_domains_of(config, local_domains)
    steps = _Steps([], [])
    store = open_history(config)
    try:
        listings, smarthost_applied = [], False
        discovered: tuple[str, ...] = ()
        if store is not None:
            listings = _open_listings(store)
            smarthost_applied = store.load_smarthost().applied
            discovered = store.load_state().addresses if config.monitor.discover else ()
            steps.checked.append("listings in the history")
        else:
            steps.skipped.append(f"no history database yet ({config.monitor.database}): "
                                 "run blmonitor run")  # fmt: skip
        queue = _queue_step(steps, mta, config_dir, now=now, domains=domains)
        growth = _growth(store, queue, now=now)
    finally:
        if store is not None:
            store.close()
    paths = list(logs) or list(config.diagnose.logs) or [p for p in USUAL_LOGS if p.exists()]
    log = _log_step(steps, paths, since, now=now, domains=domains)
    relay = None
    if relay_host:
        relay = relaytest(relay_host, local_domain=domains[0] if domains else "",
                          config_dir=config_dir)  # fmt: skip
    sender = _posture_step(steps, config, [*discovered, *(i.target for i in listings)],
                           config_dir)  # fmt: skip
    found = diagnosis.diagnose(
        listings=listings, queue=queue, growth=growth, log=log, relay=relay, posture=sender,
        smarthost_applied=smarthost_applied, checked=steps.checked, skipped=steps.skipped,
    )  # fmt: skip
    return DiagnoseResult(found, queue, log, relay, sender)


def _posture_step(steps: _Steps, config: Config, known: Sequence[str],
                  config_dir: Path | None) -> posture_core.PostureReport | None:  # fmt: skip
    """The posture of the config's addresses and domains and of the `known` ones: those the
    monitor discovered and the listed ones; nothing is discovered here."""
    from blmonitor.dnsbl.answers import parse_target

    ips = [t for t in known if parse_target(t).kind is not TargetKind.DOMAIN]
    targets = list(dict.fromkeys([*config.monitor.fixed_targets, *ips]))
    if not targets and not config.sending_domains:
        steps.skipped.append("posture: no address or domain in the config ([monitor] targets, "
                             "[posture] domains)")  # fmt: skip
        return None
    try:
        return posture(config, targets, config_dir=config_dir, discover=lambda _: [])
    except BlmonitorError as exc:
        steps.skipped.append(f"posture: {exc}")
        return None


def diagnose_json(result: DiagnoseResult) -> dict[str, Any]:
    """The diagnosis, with the queue, log and relay-test reports it was made from."""
    data = diagnosis.diagnosis_json(result.diagnosis)
    if result.queue is not None:
        data["queue"] = mailqueue.queue_report_json(result.queue)
    if result.log is not None:
        data["logs"] = logstats.log_report_json(result.log)
    if result.relay is not None:
        data["relaytest"] = probe.report_json(result.relay)
    if result.posture is not None:
        from blmonitor.causes.posture import posture_json

        data["posture"] = posture_json(result.posture)
    return data


# --- posture -----------------------------------------------------------------------------------


def read_helo(config_dir: Path | None = None, *, run: Runner = run_command,
              which: Which = shutil.which) -> tuple[str, str]:  # fmt: skip
    """(the HELO name this host's MTA sends, "") or ("", why it is not known): Postfix's
    smtp_helo_name (whose default is $myhostname) as `postconf -x` expands it, else Exim's
    primary_hostname (what its smtp transport's helo_data defaults to)."""
    exim = "exim4" if which("exim4") else "exim" if which("exim") else ""
    if which("postconf"):
        chosen = config_dir or POSTFIX_DIR
        argv, what = (
            ["postconf", "-c", str(chosen), "-x", "-h", "smtp_helo_name"],
            f"postconf -c {chosen}",
        )
    elif exim:
        argv, what = [exim, "-bP", "primary_hostname"], f"{exim} -bP"
    else:
        return "", "HELO: neither postconf (Postfix) nor exim here; give --helo NAME"
    try:
        out = run(argv).strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return "", f"HELO: {what}: {_failure(exc)}; give --helo NAME"
    name = out.partition("=")[2].strip() if argv[0] == exim else out
    return (name, "") if name else ("", f"HELO: {what} printed no HELO name; give --helo NAME")


def sending_targets(config: Config, targets: Sequence[str], *,
                    discover: Callable[[float], list[Target]] | None = None) -> (
    tuple[tuple[str, ...], tuple[str, ...]]
):  # fmt: skip
    """(the sending IPs, the sending domains): the targets given, else the config's (its
    public addresses discovered when it says "auto"), and the config's sending domains
    ([posture] domains, else [diagnose] local_domains, else [gmail_postmaster] domains)."""
    from blmonitor.dnsbl.answers import expand_targets
    from blmonitor.dnsbl.service import discover_public

    texts = list(targets) or list(config.monitor.fixed_targets)
    found = expand_targets(texts)
    if not targets and config.monitor.discover:
        found += (discover or discover_public)(config.dns.timeout or 5.0)
    ips = [t.text for t in found if t.kind is not TargetKind.DOMAIN]
    domains = [t.text for t in found if t.kind is TargetKind.DOMAIN]
    return tuple(dict.fromkeys(ips)), tuple(dict.fromkeys([*domains, *config.sending_domains]))


async def _drive(checks: Sequence[posture_core.Checking], client: DnsClient) -> (
    list[posture_core.Part]
):  # fmt: skip
    """Run the pure checks concurrently, each question asked once however many checks ask."""
    import asyncio

    asked: dict[posture_core.Question, asyncio.Task[Answer]] = {}

    async def answer(question: posture_core.Question) -> Answer:
        if question not in asked:
            asked[question] = asyncio.ensure_future(client.query(*question))
        return await asyncio.shield(asked[question])

    async def one(check: posture_core.Checking) -> posture_core.Part:
        try:
            question = next(check)
            while True:
                question = check.send(await answer(question))
        except StopIteration as stop:
            part: posture_core.Part = stop.value
            return part

    return list(await asyncio.gather(*(one(c) for c in checks)))


def posture(
    config: Config,
    targets: Sequence[str] = (),
    *,
    resolvers: Sequence[str] = (),
    helo: str = "",
    config_dir: Path | None = None,
    run: Runner = run_command,
    which: Which = shutil.which,
    discover: Callable[[float], list[Target]] | None = None,
) -> posture_core.PostureReport:
    """The sender's posture of the targets (else the config's): PTR, FCrDNS, generic names and
    HELO of each IP; SPF, DMARC and MX of each domain, asked of the configured resolvers.

    The HELO name is `helo`, else [posture] helo, else the MTA's (Postfix in `config_dir`, else
    [diagnose] config_dir, else /etc/postfix; or Exim)."""
    import asyncio

    from blmonitor.causes import posture as posture_core
    from blmonitor.dnsbl.resolver import DnsClient, parse_nameserver, system_nameservers

    ips, domains = sending_targets(config, targets, discover=discover)
    if not ips and not domains:
        raise UsageError("no address or domain to look at: give TARGET, or [monitor] targets "
                         "or [posture] domains in the config")  # fmt: skip
    servers = [parse_nameserver(r) for r in resolvers] or list(config.dns.resolver)
    servers = servers or system_nameservers()
    skipped = list(posture_core.not_checked(ips, domains))
    helo = helo or config.posture.helo
    if not helo and ips:
        helo, why = read_helo(config_dir or config.diagnose.config_dir, run=run, which=which)
        skipped += [why] if why else []
    checks = posture_core.posture_checks(ips, domains, helo)

    async def go() -> list[posture_core.Part]:
        async with DnsClient(servers, timeout=config.dns.timeout or 5.0) as client:
            return await _drive(checks, client)

    parts = asyncio.run(go())
    return posture_core.PostureReport(ips, domains, helo, tuple(parts), tuple(skipped))
