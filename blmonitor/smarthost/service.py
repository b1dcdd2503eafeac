"""The smart-host use cases: plan, apply, revert, the daemon's routing after a run, and the
root unit's sync of the daemon's request.

Takes the config and the store; the pure policy (`policy.py`) decides, the MTA drivers
(`apply.py`) change the files, and every action is recorded with its notification. A relay
password rotated while applied is written anew by the routing step, by sync and by apply.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from blmonitor.config import Config, SmarthostMode
from blmonitor.errors import BlmonitorError, UsageError
from blmonitor.monitor.notify import Message, render_smarthost
from blmonitor.monitor.state import MonitorState, SmarthostMemory
from blmonitor.monitor.store import Store
from blmonitor.smarthost import policy
from blmonitor.smarthost.apply import Outcome, Smarthost, detect_mta
from blmonitor.smarthost.checkpoint import STATE_NAME
from blmonitor.smarthost.plan import Mta, Plan, Relay, Scope, render_plan
from blmonitor.smarthost.policy import Action, Blocking

log = logging.getLogger("blmonitor")

REQUEST_NAME = "request.json"  # what the unprivileged daemon asks of the root unit
ROTATED = "the relay password in password_file changed"


def relay_of(config: Config) -> Relay:
    sh = config.smarthost
    if not sh.host:
        raise UsageError(f"{config.source}: [smarthost] host is not set (the ISP's relay)")
    return Relay(sh.host, sh.port, sh.username, sh.password_file, sh.tls)


def mta_of(config: Config, mta: str = "") -> Mta:
    """The MTA named (an option), else the config's, else the one installed here."""
    if mta:
        return Mta(mta)
    return config.smarthost.mta or detect_mta()


def smarthost_of(
    config: Config,
    *,
    mta: str = "",
    config_dir: Path | None = None,
    destinations: tuple[str, ...] = (),
) -> Smarthost:
    """The smart-host switch the config describes (an MTA that blmonitor can change)."""
    return Smarthost(
        mta_of(config, mta), relay_of(config),
        config_dir=config_dir or config.smarthost.config_dir,
        state_dir=config.smarthost_state_dir, scope=config.smarthost.scope,
        destinations=destinations, soften=config.smarthost.soften,
    )  # fmt: skip


def smarthost_plan(
    config: Config,
    action: str,
    *,
    mta: str = "",
    config_dir: Path | None = None,
    destinations: tuple[str, ...] = (),
) -> Plan:
    """The exact change (`apply` or `revert`) for this machine's MTA, or Exchange's snippet; an
    MTA configured by files that is not installed here is previewed on Debian's defaults."""
    if mta_of(config, mta) is Mta.EXCHANGE:
        from blmonitor.smarthost import exchange

        relay = relay_of(config)
        scope = config.smarthost.scope
        if action == "apply":
            return exchange.plan_apply(relay, scope=scope, destinations=destinations)
        return exchange.plan_revert()
    switch = smarthost_of(config, mta=mta, config_dir=config_dir, destinations=destinations)
    return switch.plan_apply(preview=True) if action == "apply" else switch.plan_revert()


def wanted_destinations(
    config: Config, store: Store, current: tuple[Blocking, ...]
) -> tuple[str, ...]:
    """With scope = destinations: the receiving domains that block us now."""
    if config.smarthost.scope is not Scope.DESTINATIONS:
        return ()
    bounced = store.bounced_domains({b.list.removesuffix(" (bounce)") for b in current})
    return policy.destinations(current, receivers=policy.load_receivers(), bounced=bounced)


def destinations_for(config: Config, store: Store | None, given: Sequence[str]) -> tuple[str, ...]:
    """The --destination domains given, or with scope = destinations those that block us now."""
    if given and config.smarthost.scope is Scope.ALL:
        # routing everything and reporting one domain as routed would say what was not done
        raise UsageError(
            '--destination routes some domains only, but [smarthost] scope = "all" routes all '
            'mail: set scope = "destinations" in the config, or leave --destination out'
        )
    if given:
        return tuple(sorted({d.lower().strip(".") for d in given}))
    if store is None:
        return ()
    current = policy.blocking(store.load_state(), min_severity=config.smarthost.min_severity)
    return wanted_destinations(config, store, current)


@dataclass(frozen=True, slots=True)
class HandAction:
    """What `blmonitor smarthost apply|revert` did."""

    action: str
    changed: bool
    reloaded: bool
    mta: str
    destinations: tuple[str, ...]
    notes: tuple[str, ...]

    def json(self) -> dict[str, Any]:
        return {"action": self.action, "changed": self.changed, "reloaded": self.reloaded,
                "mta": self.mta, "destinations": list(self.destinations),
                "notes": list(self.notes)}  # fmt: skip

    def render(self) -> str:
        done = _DONE[self.action] if self.changed else "nothing to change"
        return "\n".join([done, *(f"note: {note}" for note in self.notes)])


_DONE = {"apply": "mail now goes through the smart host", "revert": "mail goes direct again"}


def act_by_hand(
    config: Config,
    store: Store,
    action: str,
    *,
    now: datetime,
    host: str,
    mta: str = "",
    config_dir: Path | None = None,
    destinations: Sequence[str] = (),
) -> HandAction:
    """`blmonitor smarthost apply|revert`: act now, recorded and notified as the daemon would."""
    wanted = destinations_for(config, store, destinations) if action == "apply" else ()
    outcome = smarthost_act(config, store, action, now=now, host=host,
                            reason=f"`blmonitor smarthost {action}` run by hand",
                            destinations=wanted, mta=mta, config_dir=config_dir)  # fmt: skip
    return HandAction(action, outcome.changed, outcome.reloaded, str(outcome.plan.mta), wanted,
                      (*outcome.plan.notes, *outcome.notes))  # fmt: skip


def render_status(state: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]) -> str:
    """Whether mail goes through the smart host, then the recent actions, one a line."""
    if state["applied"]:
        relay = state.get("relay", {})
        lines = [f"smart host: applied since {state.get('applied_at', '?')} "
                 f"({state['mta']} → {relay.get('host')}:{relay.get('port')}, "
                 f"scope {state.get('scope', 'all')})"]  # fmt: skip
        if state.get("destinations"):
            lines.append("routed: " + ", ".join(state["destinations"]))
    else:
        lines = [f"smart host: not applied ({state['mta']} delivers directly)"]
    lines += [f"{row['at']}  {row['action']:<7} {row['outcome']:<11} {row['detail']}"
              for row in actions]  # fmt: skip
    return "\n".join(lines)


def smarthost_act(
    config: Config,
    store: Store,
    action: str,
    *,
    now: datetime,
    host: str,
    reason: str,
    destinations: tuple[str, ...] = (),
    mta: str = "",
    config_dir: Path | None = None,
) -> Outcome:
    """Apply or revert, record it and queue its notification; a failure is recorded, notified
    once per distinct error, and raised."""
    switch = smarthost_of(config, mta=mta, config_dir=config_dir, destinations=destinations)
    relay = f"{switch.relay.host}:{switch.relay.port}"
    record = {"action": action, "mta": str(switch.mta), "scope": config.smarthost.scope,
              "relay": relay, "destinations": destinations}  # fmt: skip
    prefix = config.notify.title_prefix
    memory = store.load_smarthost()
    try:
        outcome = switch.apply(now=now.isoformat()) if action == "apply" else switch.revert()
    except BlmonitorError as exc:
        error = str(exc)
        message = render_smarthost(action, host=host, mta=str(switch.mta), relay=relay,
                                   reason=reason, error=error, title_prefix=prefix)  # fmt: skip
        store.record_smarthost(now, {**record, "outcome": "failed", "detail": error},
                               message.queued() if memory.error != error else None)  # fmt: skip
        memory = replace(memory, error=error)
        if action == "apply":  # not applied: the monitor asks again on its next run
            memory = replace(memory, action="", destinations=())
        store.save_smarthost(memory)
        raise
    store.save_smarthost(replace(memory, error=""))
    if not outcome.changed:
        store.record_smarthost(now, {**record, "outcome": "unchanged",
                                     "detail": "; ".join(outcome.notes)})  # fmt: skip
        return outcome
    message = render_smarthost(action, host=host, mta=str(switch.mta), relay=relay,
                               reason=reason, notes=outcome.notes, title_prefix=prefix)  # fmt: skip
    store.record_smarthost(now, {**record, "outcome": "done", "detail": reason}, message.queued())
    log.warning("smart host %s: %s (%s)", action, record["relay"], reason)
    return outcome


def route_mail(config: Config, store: Store, state: MonitorState, *, now: datetime,
               host: str) -> None:  # fmt: skip
    """After a run: recommend, apply (root) or request (unprivileged) the smart-host change the
    policy asks for; changes only, so a listing that stays listed is acted on once."""
    sh = config.smarthost
    current = policy.blocking(state, min_severity=sh.min_severity)
    memory = store.load_smarthost()
    if current:
        memory = replace(memory, last_listed=now)
        store.save_smarthost(memory)
    decision = policy.decide(
        current, now=now, applied=memory.applied, last_listed=memory.last_listed,
        after=timedelta(seconds=sh.after), revert_after=timedelta(seconds=sh.revert_after),
    )  # fmt: skip
    destinations = wanted_destinations(config, store, current)
    if memory.applied and current and destinations and memory.destinations != destinations:
        decision = policy.Decision(Action.APPLY, "the receivers that block us changed", current)
    if decision.action is Action.KEEP:
        if sh.mode is SmarthostMode.APPLY:
            _follow_rotation(config, store, memory, now=now, host=host)
        return
    action = decision.action
    if action is Action.APPLY and sh.scope is Scope.DESTINATIONS and not destinations:
        log.info("smart host: listed, but no receiving domain is known to block us yet")
        return
    relay = f"{sh.host}:{sh.port}"
    record = {"action": action, "relay": relay, "scope": sh.scope,
              "destinations": destinations, "detail": decision.reason}  # fmt: skip
    if sh.mode is SmarthostMode.RECOMMEND:
        store.record_smarthost(now, {**record, "outcome": "recommended"},
                               _recommendation(config, action, destinations, decision.reason,
                                               host=host).queued())  # fmt: skip
    elif os.geteuid() == 0:
        smarthost_act(config, store, action, now=now, host=host, reason=decision.reason,
                      destinations=destinations)  # fmt: skip
    else:
        write_request(config, action, destinations=destinations, reason=decision.reason, now=now,
                      stamp=password_stamp(config))  # fmt: skip
        store.record_smarthost(now, {**record, "outcome": "requested"})
    memory = store.load_smarthost()
    store.save_smarthost(replace(memory, action=action, destinations=destinations))


def _follow_rotation(config: Config, store: Store, memory: SmarthostMemory, *, now: datetime,
                     host: str) -> None:  # fmt: skip
    """While applied: a rotated relay password is written now (root, which can read the
    password file and the checkpoint), else asked of the root unit when the file changed."""
    if os.geteuid() == 0:
        rotate(config, store, now=now, host=host)
        return
    stamp = password_stamp(config) if memory.applied else None
    if stamp is None:
        return
    last = read_request(config)
    if last is None or last.get("stamp") == stamp:
        return
    sh = config.smarthost
    write_request(config, Action.APPLY, destinations=memory.destinations, reason=ROTATED, now=now,
                  stamp=stamp)  # fmt: skip
    store.record_smarthost(now, {"action": Action.APPLY, "relay": f"{sh.host}:{sh.port}",
                                 "scope": sh.scope, "destinations": memory.destinations,
                                 "detail": ROTATED, "outcome": "requested"})  # fmt: skip


def rotate(config: Config, store: Store, *, now: datetime, host: str) -> Outcome | None:
    """Write a relay password that changed since the last apply (the same routing again);
    None when nothing is applied or the password file is as apply used it."""
    if not (config.smarthost_state_dir / STATE_NAME).exists():
        return None
    switch = smarthost_of(config)
    if not switch.password_changed():
        return None
    routed = tuple(switch.status().get("destinations", ()))
    return smarthost_act(config, store, "apply", now=now, host=host, reason=ROTATED,
                         destinations=routed)  # fmt: skip


def password_stamp(config: Config) -> str | None:
    """When, not what: a digest of the password file's inode and times, which the unprivileged
    daemon can see (it cannot read the root-only file); None when there is none to see."""
    path = config.smarthost.password_file
    if path is None or not config.smarthost.username:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return hashlib.sha256(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}".encode()).hexdigest()


def _recommendation(config: Config, action: str, destinations: tuple[str, ...], reason: str,
                    *, host: str) -> Message:  # fmt: skip
    """The notification that recommends the change, with the exact plan when it can be made."""
    sh = config.smarthost
    try:
        text = render_plan(smarthost_plan(config, action, destinations=destinations),
                           relay_of(config))  # fmt: skip
    except BlmonitorError as exc:
        text = f"(the exact change could not be planned here: {exc})"
    try:
        mta = str(mta_of(config))
    except BlmonitorError:
        mta = "your MTA"
    return render_smarthost(action, host=host, mta=mta, relay=f"{sh.host}:{sh.port}",
                            reason=reason, recommend=True, plan_text=text,
                            title_prefix=config.notify.title_prefix)  # fmt: skip


def write_request(config: Config, action: str, *, destinations: tuple[str, ...], reason: str,
                  now: datetime, stamp: str | None = None) -> Path:  # fmt: skip
    """Ask the root unit (blmonitor-smarthost.path) to apply or revert; `stamp` is the password
    file's `password_stamp` when asked, to tell a later rotation."""
    directory = config.smarthost_state_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / REQUEST_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"action": action, "destinations": list(destinations),
                                   "reason": reason, "at": now.isoformat(),
                                   "stamp": stamp}))  # fmt: skip
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(
            f"cannot write the smart-host request in {directory}: {exc.strerror}"
        ) from exc
    return path


def read_request(config: Config) -> dict[str, Any] | None:
    """The daemon's latest request; None when it made none."""
    path = config.smarthost_state_dir / REQUEST_NAME
    try:
        request = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the smart-host request {path}: {exc}") from exc
    if not isinstance(request, dict):
        raise UsageError(f"cannot read the smart-host request {path}: not a JSON object")
    return request


def sync_smarthost(config: Config, store: Store, *, now: datetime, host: str) -> Outcome | None:
    """`blmonitor smarthost sync` (the root unit): carry out the daemon's latest request, or
    write a relay password rotated since apply; None when there is nothing to do."""
    request = read_request(config)
    if request is None:
        return rotate(config, store, now=now, host=host)
    path = config.smarthost_state_dir / REQUEST_NAME
    action = request.get("action")
    if action not in ("apply", "revert"):
        raise UsageError(f"{path}: action {action!r} is neither apply nor revert")
    return smarthost_act(config, store, action, now=now, host=host,
                         reason=str(request.get("reason", "requested by the monitor")),
                         destinations=tuple(request.get("destinations", ())))  # fmt: skip
