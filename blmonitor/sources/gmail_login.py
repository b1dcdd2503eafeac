"""`gmail-postmaster login`: Google's installed-app consent, once, for a refresh token.

The OAuth 2.0 flow for native apps (RFC 8252): a loopback listener on 127.0.0.1 takes the
redirect, PKCE S256 (RFC 7636) and a `state` bind the answer to this run, the code is
exchanged at the token endpoint with httpx, and the authorized-user JSON google-auth reads is
written 0600, atomically, never over a file unless asked. Nothing secret is printed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx

from blmonitor.errors import LoginError
from blmonitor.userfiles import UnreadableFile, read_text

AUTH_URL = "https://accounts.google.com/o/oauth2/auth"
SCOPE = "https://www.googleapis.com/auth/postmaster.readonly"
STALE = ("the redirect's state is not this login's (a stale browser tab, or a forged "
         "redirect): nothing was written; run the login again")  # fmt: skip


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The "installed" (Desktop app) client of the Google Cloud project."""

    client_id: str
    client_secret: str = field(repr=False)


def read_client_secrets(path: Path) -> OAuthClient:
    """The client of a client-secrets JSON as the Google Cloud console downloads it."""
    try:
        data = json.loads(read_text(path, limit=64 * 1024))
    except FileNotFoundError:
        raise LoginError(f"{path}: no such client secrets file") from None
    except (OSError, UnreadableFile) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise LoginError(f"cannot read {path}: {why}") from None
    except ValueError:
        raise LoginError(f"{path} is not JSON: download the client's JSON again") from None
    if isinstance(data, dict) and "web" in data:
        raise LoginError(f"{path} is a Web application client: create an OAuth client of "
                         "type Desktop app and download its JSON")  # fmt: skip
    client = data.get("installed") if isinstance(data, dict) else None
    ident = client.get("client_id") if isinstance(client, dict) else None
    secret = client.get("client_secret") if isinstance(client, dict) else None
    if not (isinstance(ident, str) and ident and isinstance(secret, str) and secret):
        raise LoginError(f"{path} holds no \"installed\" client with a client_id and "
                         "client_secret: download the Desktop app client's JSON")  # fmt: skip
    return OAuthClient(ident, secret)


def pkce_pair() -> tuple[str, str]:
    """A code verifier (RFC 7636 §4.1: 43 to 128 unreserved characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def consent_url(auth_url: str, client_id: str, redirect_uri: str, state: str,
                challenge: str) -> str:  # fmt: skip
    """The URL the person opens: offline access (a refresh token) and the consent screen even
    when granted before (else Google gives no new refresh token)."""
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": SCOPE, "access_type": "offline", "prompt": "consent", "state": state,
        "code_challenge": challenge, "code_challenge_method": "S256",
    })  # fmt: skip
    return f"{auth_url}{'&' if '?' in auth_url else '?'}{query}"


def redirect_code(query: Mapping[str, list[str]], state: str) -> str:
    """The authorization code of the redirect's query; LoginError for a refusal or a state
    that is not this run's (a stale tab, or a forged redirect)."""
    if query.get("state", [""])[0] != state:
        raise LoginError(STALE)
    if error := query.get("error", [""])[0]:
        shown = error if error.replace("_", "").isalnum() else "an error"
        raise LoginError(f"Google did not grant access ({shown[:40]}): nothing was written")
    code = query.get("code", [""])[0]
    if not code:
        raise LoginError("the redirect carried no authorization code: run the login again")
    return code


# --- the loopback listener -------------------------------------------------------------------


class _Listener(HTTPServer):
    state = ""
    query: Mapping[str, list[str]] | None = None


class _Redirect(BaseHTTPRequestHandler):
    server: _Listener

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path != "/" or not ({"code", "error", "state"} & set(query)):
            self._answer(404, "Not the redirect blmonitor waits for.")
            return
        self.server.query = query
        if query.get("state", [""])[0] != self.server.state:
            self._answer(400, "This answer is not for the login blmonitor runs: refused.")
        else:
            self._answer(200, "blmonitor got Google's answer: go back to the terminal.")

    def _answer(self, status: int, text: str) -> None:
        data = f"<!doctype html><title>blmonitor</title><p>{text}</p>\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request line holds the authorization code


def wait_for_redirect(listener: _Listener, wait: float) -> Mapping[str, list[str]]:
    deadline = time.monotonic() + wait
    while listener.query is None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LoginError(f"no answer from the browser in {wait:g}s: run the login again "
                             "(on a remote server, forward the port first: ssh -L)")  # fmt: skip
        listener.timeout = min(left, 1.0)
        listener.handle_request()
    return listener.query


# --- the exchange and the file ---------------------------------------------------------------


def exchange(client: OAuthClient, *, token_url: str, code: str, verifier: str,
             redirect_uri: str, timeout: float = 30.0) -> str:  # fmt: skip
    """The refresh token the code is worth at `token_url`."""
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect_uri, "client_id": client.client_id,
            "client_secret": client.client_secret}  # fmt: skip
    try:
        with httpx.Client(timeout=timeout) as http:
            response = http.post(token_url, data=form)
    except httpx.HTTPError as exc:
        raise LoginError(f"the token endpoint {token_url} could not be reached "
                         f"({type(exc).__name__}): nothing was written") from None  # fmt: skip
    try:
        answer: Any = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200:
        error = answer.get("error", "") if isinstance(answer, dict) else ""
        shown = error if isinstance(error, str) and error.replace("_", "").isalnum() else ""
        raise LoginError(f"the token endpoint refused the code (HTTP {response.status_code}"
                         f"{', ' + shown[:40] if shown else ''}): nothing was written")  # fmt: skip
    token = answer.get("refresh_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise LoginError("Google gave no refresh token: remove blmonitor's access at "
                         "https://myaccount.google.com/permissions and log in again")  # fmt: skip
    return token


def write_credentials(out: Path, client: OAuthClient, refresh_token: str, *,
                      token_url: str, force: bool) -> None:  # fmt: skip
    """The authorized-user JSON, mode 0600, in place at once (a temporary file renamed), and
    never over an existing file without `force`."""
    data = json.dumps({"type": "authorized_user", "client_id": client.client_id,
                       "client_secret": client.client_secret, "refresh_token": refresh_token,
                       "token_uri": token_url}, indent=1) + "\n"  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, out)
        else:
            os.link(tmp, out)  # fails if `out` appeared meanwhile: never clobbered
    except FileExistsError:
        raise LoginError(f"{out} exists: give --force to replace it") from None
    except OSError as exc:
        raise LoginError(f"cannot write {out}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def login(client_secrets: Path, out: Path, *, token_url: str, auth_url: str = AUTH_URL,
          port: int = 0, wait: float = 300.0, force: bool = False,
          show: Callable[[str], None]) -> Path:  # fmt: skip
    """The whole flow: `show(url)` tells the person where to go; returns the file written."""
    if out.exists() and not force:
        raise LoginError(f"{out} exists: give --force to replace it")
    client = read_client_secrets(client_secrets)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    try:
        listener = _Listener(("127.0.0.1", port), _Redirect)
    except OSError as exc:
        raise LoginError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    with listener:
        listener.state = state
        redirect_uri = f"http://127.0.0.1:{listener.server_address[1]}/"
        show(consent_url(auth_url, client.client_id, redirect_uri, state, challenge))
        code = redirect_code(wait_for_redirect(listener, wait), state)
    token = exchange(client, token_url=token_url, code=code, verifier=verifier,
                     redirect_uri=redirect_uri)  # fmt: skip
    write_credentials(out, client, token, token_url=token_url, force=force)
    return out
