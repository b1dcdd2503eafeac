"""A fake of Google's side on 127.0.0.1: the OAuth token endpoint (refresh and code exchange,
checking PKCE) at /token and the Postmaster Tools API at /api/, answering from tables a test
sets, and checking the bearer token. Every request is recorded (method, path, headers, body).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Made-up secrets: a test greps every output and file but the credentials for them.
CLIENT_ID = "1234-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-SECRET-5f2a"
REFRESH_TOKEN = "1//0fake-refresh-SECRET-9c1e"
ACCESS_TOKEN = "ya29.fake-access-SECRET-77d0"
AUTH_CODE = "4/0fake-code-SECRET-31b4"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, AUTH_CODE)


@dataclass
class FakeGoogle:
    url: str = ""
    # the token endpoint's answer to a refresh: (status, JSON)
    refresh: tuple[int, Any] = (200, {"access_token": ACCESS_TOKEN, "expires_in": 3599,
                                      "token_type": "Bearer"})  # fmt: skip
    # API path under /api/ → (status, JSON); a path not here is a 404
    api: dict[str, tuple[int, Any]] = field(default_factory=dict)
    challenge: str = ""  # the PKCE challenge the code exchange must match
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def paths(self, method: str = "GET") -> list[str]:
        return [path for m, path, _, _ in self.requests if m == method]


NOT_FOUND = {"error": {"code": 404, "message": "Requested entity was not found.",
                       "status": "NOT_FOUND"}}  # fmt: skip
DENIED = {"error": {"code": 403, "message": "The caller does not have permission",
                    "status": "PERMISSION_DENIED"}}  # fmt: skip


def _token_answer(fake: FakeGoogle, form: dict[str, str]) -> tuple[int, Any]:
    if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
        return 401, {
            "error": "invalid_client",
            "error_description": "The OAuth client was not found.",
        }
    if form.get("grant_type") == "refresh_token":
        if form.get("refresh_token") != REFRESH_TOKEN:
            return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
        return fake.refresh
    if form.get("grant_type") == "authorization_code":
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if form.get("code") != AUTH_CODE or challenge != fake.challenge:
            return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
        return 200, {"access_token": ACCESS_TOKEN, "refresh_token": REFRESH_TOKEN,
                     "expires_in": 3599, "token_type": "Bearer",
                     "scope": "https://www.googleapis.com/auth/postmaster.readonly"}  # fmt: skip
    return 400, {"error": "unsupported_grant_type"}


@contextlib.contextmanager
def serve() -> Iterator[FakeGoogle]:
    fake = FakeGoogle()

    class Handler(BaseHTTPRequestHandler):
        def _record(self, body: str) -> None:
            fake.requests.append((self.command, self.path, dict(self.headers), body))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            self._record(body)
            if self.path != "/token":
                self._send(404, NOT_FOUND)
                return
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            self._send(*_token_answer(fake, form))

        def do_GET(self) -> None:
            self._record("")
            if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
                self._send(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
                return
            path = self.path.removeprefix("/api/")
            self._send(*fake.api.get(path, (404, NOT_FOUND)))

        def _send(self, status: int, body: Any) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
