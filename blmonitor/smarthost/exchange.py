"""Microsoft Exchange: printed Exchange Management Shell snippets, never applied by blmonitor.

Apply saves the Internet send connectors' routing to an XML file, then points them at the smart
host (or, for some destinations, adds a connector of its own); revert restores from that file.
The password is asked for by Get-Credential when the snippet runs: it never appears in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from blmonitor.errors import PlanError
from blmonitor.smarthost.plan import (
    HOST_OR_IPV6,
    Mta,
    Plan,
    Relay,
    Scope,
    destination_domains,
    refuse_smtps,
)

CONNECTOR = "blmonitor smart host"
SAVED = r"$env:ProgramData\blmonitor\sendconnectors-before.xml"


def plan_apply(
    relay: Relay,
    *,
    connector: str = CONNECTOR,
    scope: Scope = Scope.ALL,
    destinations: Sequence[str] = (),
) -> Plan:
    """A manual plan: PowerShell that routes outbound mail (all, or `destinations`) via `relay`."""
    _check(relay, connector)
    notes = [
        "run it in the Exchange Management Shell; try it first with -WhatIf on the Set-/New- line",
    ]
    auth = _auth(relay)
    lines = [
        f"# --- blmonitor: route outbound mail via {relay.host} (Exchange Management Shell) ---",
        *auth.credential,
    ]
    if scope is Scope.DESTINATIONS:
        domains = destination_domains(destinations, wildcards=True)
        spaces = ", ".join(f'"SMTP:{d};1"' for d in domains)
        # A more specific address space wins over "*" whatever the costs: only these domains
        # leave through the new connector, the rest as before.
        lines += [
            f'New-SendConnector -Name "{connector}" -Internet -AddressSpaces {spaces} `',
            f'    -DNSRoutingEnabled $false -SmartHosts "{relay.host}" -Port {relay.port} `',
            f"    {auth.parameters} -RequireTLS ${str(relay.tls).lower()}",
            f'Get-SendConnector "{connector}" | Format-List Name,AddressSpaces,SmartHosts,Port,'
            "SmartHostAuthMechanism,RequireTLS",
        ]
        notes.append(
            f"mail for {', '.join(domains)} goes through {relay.host}; everything else "
            "is delivered as before"
        )
    else:
        lines += [
            "# the Internet send connectors (address space *); narrow the filter to pick one",
            "$connectors = Get-SendConnector | Where-Object { $_.AddressSpaces.Address -contains "
            '"*" }',
            f'New-Item -ItemType Directory -Force "{_folder()}" | Out-Null',
            f'if (-not (Test-Path "{SAVED}")) {{    # keep the state from before the first apply',
            "    $connectors | Select-Object Name,DNSRoutingEnabled,SmartHosts,Port,"
            "SmartHostAuthMechanism,RequireTLS |",
            f'        Export-Clixml "{SAVED}"',
            "}",
            "$connectors | ForEach-Object {",
            "    Set-SendConnector -Identity $_.Identity -DNSRoutingEnabled $false "
            f'-SmartHosts "{relay.host}" -Port {relay.port} `',
            f"        {auth.parameters} -RequireTLS ${str(relay.tls).lower()}",
            "}",
            "$connectors | ForEach-Object { Get-SendConnector $_.Identity } |",
            "    Format-List Name,DNSRoutingEnabled,SmartHosts,Port,SmartHostAuthMechanism,"
            "RequireTLS",
        ]
        notes.append(f"the previous send connector settings are saved to {SAVED} for revert")
    lines += [
        "# optional: retry the queued mail now, through the smart host",
        'Get-Queue | Where-Object { $_.Status -eq "Retry" } | Retry-Queue -Resubmit $true',
    ]
    if not relay.tls:
        notes.append(
            "TLS is not required (tls = false)"
            + (": the password may be sent in clear" if relay.authenticated else "")
        )
    return Plan(
        Mta.EXCHANGE, "apply", notes=tuple(notes), manual=True, snippet="\n".join(lines) + "\n"
    )


def plan_revert(*, connector: str = CONNECTOR) -> Plan:
    """A manual plan: PowerShell that undoes either form of apply (it checks which was done)."""
    _check_name(connector)
    lines = [
        "# --- blmonitor: back to direct MX delivery (Exchange Management Shell) ---",
        f'if (Test-Path "{SAVED}") {{',
        f'    foreach ($c in (Import-Clixml "{SAVED}")) {{',
        "        if ($c.DNSRoutingEnabled) {",
        "            Set-SendConnector $c.Name -DNSRoutingEnabled $true -SmartHosts $null `",
        "                -SmartHostAuthMechanism None -Port $c.Port -RequireTLS $c.RequireTLS",
        "        } else {    # it used a smart host before: the same hosts, port and TLS again",
        "            Set-SendConnector $c.Name -DNSRoutingEnabled $false -Port $c.Port `",
        '                -SmartHosts @($c.SmartHosts | ForEach-Object { "$_" }) `',
        "                -SmartHostAuthMechanism $c.SmartHostAuthMechanism `",
        "                -RequireTLS $c.RequireTLS",
        "        }",
        "    }",
        f'    Remove-Item "{SAVED}"',
        "}",
        f'if (Get-SendConnector -Identity "{connector}" -ErrorAction SilentlyContinue) {{',
        f'    Remove-SendConnector -Identity "{connector}" -Confirm:$false',
        "}",
        "Get-SendConnector | Format-List Name,AddressSpaces,DNSRoutingEnabled,SmartHosts,Port,"
        "SmartHostAuthMechanism,RequireTLS",
    ]
    notes = (
        "run it in the Exchange Management Shell",
        "a connector that used basic authentication before apply keeps the smart host's "
        "credentials: set -AuthenticationCredential again with Get-Credential",
    )
    return Plan(Mta.EXCHANGE, "revert", notes=notes, manual=True, snippet="\n".join(lines) + "\n")


class _Auth(NamedTuple):
    credential: list[str]  # the Get-Credential line, if the relay wants a login
    parameters: str  # for Set-/New-SendConnector


def _auth(relay: Relay) -> _Auth:
    if not relay.authenticated:
        return _Auth([], "-SmartHostAuthMechanism None")
    mechanism = "BasicAuthRequireTLS" if relay.tls else "BasicAuth"
    prompt = f"Password for {relay.username} at {relay.host} ({relay.password_file or 'the ISP'})"
    return _Auth(
        [f"$cred = Get-Credential -UserName {_quote(relay.username)} -Message {_quote(prompt)}"],
        f"-SmartHostAuthMechanism {mechanism} -AuthenticationCredential $cred",
    )


def _check(relay: Relay, connector: str) -> None:
    _check_name(connector)
    if not HOST_OR_IPV6.match(relay.host):
        raise PlanError(f"smart host {relay.host!r} is not a host name or address")
    refuse_smtps(relay, "Exchange send connectors speak STARTTLS only")


def _check_name(connector: str) -> None:
    if not connector or any(c in connector for c in '"`$\n'):
        raise PlanError(f"send connector name {connector!r}: no quotes, backticks or $")


def _folder() -> str:
    return SAVED.rsplit("\\", 1)[0]


def _quote(text: str) -> str:
    """A PowerShell single-quoted string: nothing in it is expanded."""
    return "'" + text.replace("'", "''") + "'"
