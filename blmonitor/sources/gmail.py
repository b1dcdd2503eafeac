"""Gmail Postmaster Tools, polled: the access token refreshed by google-auth from the
authorized-user file `gmail-postmaster login` wrote, each domain's TrafficStats fetched with
httpx, and `postmaster.py` (the core) saying what they mean.

`poll_gmail` never raises for what the network, Google or the credentials file do: a poll that
could not read the source comes back with `SourceResult.error`, one line without a secret
(no refresh token, client secret or access token is ever put in a message or a log).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import google.auth.exceptions
import google.auth.transport
import google.oauth2.credentials
import httpx

from blmonitor import __version__
from blmonitor.config import Config, GmailPostmasterConfig
from blmonitor.sources import postmaster
from blmonitor.sources.models import SourceResult
from blmonitor.userfiles import UnreadableFile, read_text


class _Stop(Exception):
    """Why the poll stops: one line, for SourceResult.error."""


# --- the credentials file --------------------------------------------------------------------


def load_credentials(path: Path, token_url: str) -> google.oauth2.credentials.Credentials:
    """The authorized-user credentials of `path` (what `Credentials.from_authorized_user_file`
    reads), refreshed at `token_url`. The file holds a refresh token: refused when group or
    others may read or change it."""
    try:
        mode = os.stat(path).st_mode
        text = read_text(path, limit=64 * 1024)
    except FileNotFoundError:
        raise _Stop(f"{path}: no such credentials file: run `blmonitor gmail-postmaster login "
                    f"--client-secrets FILE --out {path}`") from None  # fmt: skip
    except (OSError, UnreadableFile) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise _Stop(f"cannot read the credentials file {path}: {why}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise _Stop(f"{path} holds a refresh token and group or others may read it "
                    f"(mode {stat.S_IMODE(mode):04o}): chmod 600 {path}")  # fmt: skip
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise _Stop(f"{path} is not JSON: {postmaster.LOGIN_HINT}")
    kind = info.get("type", "authorized_user")
    missing = [k for k in ("client_id", "client_secret", "refresh_token")
               if not isinstance(info.get(k), str) or not info[k]]  # fmt: skip
    if kind != "authorized_user" or missing:
        what = f"type {kind!r}" if kind != "authorized_user" else "no " + ", ".join(missing)
        raise _Stop(f"{path} is not an authorized-user credentials file ({what}): "
                    + postmaster.LOGIN_HINT)  # fmt: skip
    # The fields from_authorized_user_info takes, built here because it always sets Google's
    # own token endpoint (and with_token_uri is not in every google-auth 2.x).
    return google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
        token=None, refresh_token=info["refresh_token"], token_uri=token_url,
        client_id=info["client_id"], client_secret=info["client_secret"],
    )  # fmt: skip


# --- google-auth over httpx ------------------------------------------------------------------


class _Response(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class HttpxRequest(google.auth.transport.Request):
    """google-auth's transport port over an httpx client (instead of pulling in `requests`).
    Keeps the last status, so that a refused refresh says which it was."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.last_status: int | None = None

    def __call__(
        self, url: str, method: str = "GET", body: bytes | None = None,
        headers: Mapping[str, str] | None = None, timeout: float | None = None, **kwargs: Any,
    ) -> _Response:  # fmt: skip
        try:
            response = self.client.request(method, url, content=body, headers=headers,
                                           timeout=timeout or self.client.timeout)  # fmt: skip
        except httpx.HTTPError as exc:  # its text names the host, never the body sent
            raise google.auth.exceptions.TransportError(type(exc).__name__) from None  # type: ignore[no-untyped-call]
        self.last_status = response.status_code
        return _Response(response)


def access_token(settings: GmailPostmasterConfig, client: httpx.Client) -> str:
    """A fresh access token; _Stop with one line when the refresh is refused or fails."""
    assert settings.credentials_file is not None
    credentials = load_credentials(settings.credentials_file, settings.token_url)
    request = HttpxRequest(client)
    try:
        credentials.refresh(request)  # type: ignore[no-untyped-call]
    except google.auth.exceptions.TransportError as exc:
        raise _Stop(f"the token endpoint {settings.token_url} could not be reached "
                    f"({exc.args[0] if exc.args else 'no answer'}): check the network, "
                    "or [gmail_postmaster] token_url") from None  # fmt: skip
    except google.auth.exceptions.RefreshError as exc:
        answer = exc.args[1] if len(exc.args) > 1 else None
        error = answer.get("error", "") if isinstance(answer, Mapping) else ""
        raise _Stop(postmaster.token_problem(error if isinstance(error, str) else "",
                                             request.last_status)) from None  # fmt: skip
    except (ValueError, TypeError, LookupError) as exc:  # e.g. an expires_in that is no number
        raise _Stop(f"the token endpoint's answer could not be read ({type(exc).__name__}): "
                    "try later") from None  # fmt: skip
    token = credentials.token
    if not isinstance(token, str) or not token:
        raise _Stop(f"the token endpoint gave no access token: {postmaster.LOGIN_HINT}")
    return token


# --- the poll --------------------------------------------------------------------------------


def poll_gmail(config: Config, targets: Sequence[str], *, now: datetime) -> SourceResult:
    """One poll of every [gmail_postmaster] domain; `targets` are our IPs (or CIDR blocks), to
    find in the sampled IPs Gmail rates."""
    settings = config.gmail_postmaster
    if not settings.enabled:
        return postmaster.failed(now, "no domain to read: set [gmail_postmaster] domains")
    headers = {"User-Agent": f"blmonitor/{__version__}"}
    try:
        with httpx.Client(timeout=settings.timeout, headers=headers) as client:
            token = access_token(settings, client)
            client.headers["Authorization"] = f"Bearer {token}"
            return _read_domains(settings, client, targets, now)
    except _Stop as stop:
        return postmaster.failed(now, str(stop))


def _read_domains(
    settings: GmailPostmasterConfig, client: httpx.Client, targets: Sequence[str], now: datetime
) -> SourceResult:
    days, unknown, no_data = [], [], []
    for domain in settings.domains:
        found: postmaster.DomainDay | None = None
        for day in postmaster.days_to_ask(now):
            status, body = _get(client, settings, postmaster.stats_path(domain, day), domain)
            if status == 200:
                try:
                    found = postmaster.parse_stats(body, domain=domain, day=day, targets=targets)
                except postmaster.MalformedStats as exc:
                    raise _Stop(
                        f"{domain}: the answer for {day} is not TrafficStats: {exc}"
                    ) from None
                break
            if status == 403:
                _forbidden(body)
                break  # this account may not read the domain: not verified, or not added
            if status != 404:
                raise _Stop(postmaster.api_problem(domain, status))
        if found is not None:
            days.append(found)
        elif status == 403 or not _known(client, settings, domain):
            unknown.append(domain)
        else:
            no_data.append((domain, postmaster.days_to_ask(now)[0]))
    return postmaster.merge(days, fetched=now, unknown=unknown, no_data=no_data,
                            targets=targets)  # fmt: skip


def _known(client: httpx.Client, settings: GmailPostmasterConfig, domain: str) -> bool:
    """Whether the account has the domain (no day published is then a quiet domain)."""
    status, body = _get(client, settings, postmaster.domain_path(domain), domain)
    if status == 200:
        return True
    if status in (403, 404):
        _forbidden(body)
        return False
    raise _Stop(postmaster.api_problem(domain, status))


def _forbidden(body: object) -> None:
    if problem := postmaster.project_problem(403, body):
        raise _Stop(problem)


def _get(
    client: httpx.Client, settings: GmailPostmasterConfig, path: str, domain: str
) -> tuple[int, object]:
    try:
        response = client.get(settings.base_url + path)
    except httpx.HTTPError as exc:
        raise _Stop(f"{domain}: the API at {settings.base_url} could not be reached "
                    f"({type(exc).__name__}): check the network") from None  # fmt: skip
    try:
        body: object = response.json()
    except ValueError:
        if response.status_code == 200:
            raise _Stop(f"{domain}: the API's answer is not JSON") from None
        body = None
    return response.status_code, body


def our_addresses(config: Config) -> list[str]:
    """The addresses `gmail-postmaster show` looks for: the config's IP and CIDR targets, and
    with "auto" this machine's own (Postfix's bind address, the kernel's route; no outside
    service is asked for a look at one source)."""
    from blmonitor.dnsbl import publicip

    if not config.gmail_postmaster.enabled or not config.monitor.discover:
        return list(config.monitor.fixed_targets)
    found = [str(a) for a in publicip.postfix_addresses() or publicip.route_addresses()]
    return [*config.monitor.fixed_targets, *found]
