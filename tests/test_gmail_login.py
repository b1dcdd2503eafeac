"""`blmonitor gmail-postmaster login` and `show`, end to end on loopback: the test is the
browser (it follows the consent URL's redirect_uri with a code and the state) and the fake
token endpoint checks the PKCE verifier; the file is 0600 and holds what google-auth reads;
a wrong state, a refusal, a timeout write nothing; no output ever holds a secret."""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from blmonitor import cli
from blmonitor.errors import LoginError
from blmonitor.sources import gmail_login
from tests import googlefake
from tests.googlefake import FakeGoogle
from tests.test_gmail import BEFORE, YESTERDAY, stats, write_credentials

ROOT = Path(__file__).parent.parent


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with googlefake.serve() as fake:
        yield fake


@pytest.fixture
def client_secrets(tmp_path) -> Path:
    path: Path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": {
        "client_id": googlefake.CLIENT_ID, "client_secret": googlefake.CLIENT_SECRET,
        "project_id": "blmonitor-test", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token", "redirect_uris": ["http://localhost"],
    }}))  # fmt: skip
    return path


def no_secret(*texts: str) -> None:
    for text in texts:
        for secret in googlefake.SECRETS:
            assert secret not in text


def consent(url: str, google: FakeGoogle) -> dict[str, str]:
    """The consent URL's query; the fake token endpoint learns the PKCE challenge from it."""
    query = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items()}
    google.challenge = query["code_challenge"]
    return query


def browse(query: dict[str, str], **answer: str) -> httpx.Response:
    """What the browser does after consent: follow Google's redirect to the listener."""
    return httpx.get(query["redirect_uri"] + "?" + urllib.parse.urlencode(answer), timeout=10)


def start_login(google: FakeGoogle, client_secrets: Path, out: Path, **options):
    """`login` in a thread: (the consent URL queue, the outcome queue, the thread)."""
    urls: queue.Queue[str] = queue.Queue()
    outcome: queue.Queue[object] = queue.Queue()

    def run() -> None:
        try:
            outcome.put(gmail_login.login(client_secrets, out, token_url=google.token_url,
                                          show=urls.put, **{"wait": 30.0, **options}))  # fmt: skip
        except LoginError as exc:
            outcome.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return urls, outcome, thread


def test_the_consent_flow_writes_a_0600_file_google_auth_reads(google, client_secrets,
                                                                tmp_path) -> None:  # fmt: skip
    out = tmp_path / "etc" / "gmail.json"
    urls, outcome, thread = start_login(google, client_secrets, out)
    url = urls.get(timeout=10)
    query = consent(url, google)
    assert url.startswith("https://accounts.google.com/o/oauth2/auth?")
    assert query["client_id"] == googlefake.CLIENT_ID
    assert query["scope"] == "https://www.googleapis.com/auth/postmaster.readonly"
    assert (query["access_type"], query["prompt"], query["response_type"]) == (
        "offline",
        "consent",
        "code",
    )
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 32
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    page = browse(query, state=query["state"], code=googlefake.AUTH_CODE,
                  scope=query["scope"])  # fmt: skip
    assert page.status_code == 200 and "go back to the terminal" in page.text
    thread.join(10)
    assert outcome.get_nowait() == out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text()) == {
        "type": "authorized_user", "client_id": googlefake.CLIENT_ID,
        "client_secret": googlefake.CLIENT_SECRET, "refresh_token": googlefake.REFRESH_TOKEN,
        "token_uri": google.token_url,
    }  # fmt: skip
    assert [p.name for p in out.parent.iterdir()] == ["gmail.json"]  # no temporary file left
    exchange = next(body for m, _, _, body in google.requests if m == "POST")
    form = {k: v[0] for k, v in urllib.parse.parse_qs(exchange).items()}
    assert form["grant_type"] == "authorization_code"
    assert form["redirect_uri"] == query["redirect_uri"]
    no_secret(url)
    # and the file is what the poll uses
    from google.oauth2.credentials import Credentials

    creds = Credentials.from_authorized_user_file(str(out))
    assert creds.refresh_token == googlefake.REFRESH_TOKEN


def test_a_wrong_state_is_refused_and_nothing_written(google, client_secrets, tmp_path) -> None:
    out = tmp_path / "gmail.json"
    urls, outcome, thread = start_login(google, client_secrets, out)
    query = consent(urls.get(timeout=10), google)
    page = browse(query, state="forged-state", code=googlefake.AUTH_CODE)
    assert page.status_code == 400 and "refused" in page.text
    thread.join(10)
    error = outcome.get_nowait()
    assert isinstance(error, LoginError) and str(error) == gmail_login.STALE
    assert not out.exists() and google.paths("POST") == []  # the code was never exchanged


def test_a_refused_consent_writes_nothing(google, client_secrets, tmp_path) -> None:
    out = tmp_path / "gmail.json"
    urls, outcome, thread = start_login(google, client_secrets, out)
    query = consent(urls.get(timeout=10), google)
    assert browse(query, error="access_denied", state=query["state"]).status_code == 200
    thread.join(10)
    assert str(outcome.get_nowait()) == ("Google did not grant access (access_denied): nothing "
                                         "was written")  # fmt: skip
    assert not out.exists()


def test_other_requests_to_the_listener_are_ignored(google, client_secrets, tmp_path) -> None:
    out = tmp_path / "gmail.json"
    urls, outcome, thread = start_login(google, client_secrets, out)
    query = consent(urls.get(timeout=10), google)
    base = query["redirect_uri"]
    assert httpx.get(base + "favicon.ico", timeout=10).status_code == 404
    assert httpx.get(base, timeout=10).status_code == 404
    assert thread.is_alive()
    browse(query, state=query["state"], code=googlefake.AUTH_CODE)
    thread.join(10)
    assert outcome.get_nowait() == out


def test_a_code_the_token_endpoint_refuses(google, client_secrets, tmp_path) -> None:
    out = tmp_path / "gmail.json"
    urls, outcome, thread = start_login(google, client_secrets, out)
    query = consent(urls.get(timeout=10), google)
    google.challenge = "not-the-challenge"  # as if the verifier did not match
    browse(query, state=query["state"], code=googlefake.AUTH_CODE)
    thread.join(10)
    error = str(outcome.get_nowait())
    assert error == ("the token endpoint refused the code (HTTP 400, invalid_grant): nothing "
                     "was written")  # fmt: skip
    assert not out.exists()


def test_no_browser_in_time(google, client_secrets, tmp_path) -> None:
    _, outcome, thread = start_login(google, client_secrets, tmp_path / "g.json", wait=0.3)
    thread.join(10)
    assert "no answer from the browser in 0.3s" in str(outcome.get_nowait())


def test_an_existing_file_needs_force(google, client_secrets, tmp_path) -> None:
    out = tmp_path / "gmail.json"
    out.write_text("old")
    with pytest.raises(LoginError, match=r"gmail\.json exists: give --force to replace it"):
        gmail_login.login(client_secrets, out, token_url=google.token_url, show=print)
    assert out.read_text() == "old"
    urls, outcome, thread = start_login(google, client_secrets, out, force=True)
    query = consent(urls.get(timeout=10), google)
    browse(query, state=query["state"], code=googlefake.AUTH_CODE)
    thread.join(10)
    assert outcome.get_nowait() == out and "refresh_token" in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_the_file_is_never_clobbered_without_force(tmp_path) -> None:
    out = tmp_path / "gmail.json"
    out.write_text("appeared meanwhile")
    client = gmail_login.OAuthClient("id", "secret")
    with pytest.raises(LoginError, match="exists: give --force"):
        gmail_login.write_credentials(out, client, "rt", token_url="http://t/", force=False)
    assert out.read_text() == "appeared meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["gmail.json"]


@pytest.mark.parametrize(("content", "message"), [
    ('{"web": {"client_id": "x", "client_secret": "y"}}', "is a Web application client"),
    ('{"installed": {"client_id": "x"}}', 'holds no "installed" client'),
    ("[]", 'holds no "installed" client'),
    ("{nope", "is not JSON"),
])  # fmt: skip
def test_client_secrets_of_the_wrong_kind(tmp_path, content, message) -> None:
    path = tmp_path / "cs.json"
    path.write_text(content)
    with pytest.raises(LoginError, match=message):
        gmail_login.read_client_secrets(path)
    with pytest.raises(LoginError, match="no such client secrets file"):
        gmail_login.read_client_secrets(tmp_path / "missing.json")


def test_pkce_is_s256_of_the_verifier() -> None:
    # RFC 7636 appendix B
    assert gmail_login.pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    verifier, challenge = gmail_login.pkce_pair()
    assert 43 <= len(verifier) <= 128 and challenge == gmail_login.pkce_challenge(verifier)


# --- the commands ----------------------------------------------------------------------------


def test_the_login_command_end_to_end(google, client_secrets, tmp_path) -> None:
    out = tmp_path / "gmail.json"
    config = tmp_path / "config.toml"
    config.write_text(f'[gmail_postmaster]\ntoken_url = "{google.token_url}"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "blmonitor", "gmail-postmaster", "login", "-c", str(config),
         "--client-secrets", str(client_secrets), "--out", str(out), "--wait", "30s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("https://"):
            break
    query = consent(lines[-1].strip(), google)
    browse(query, state=query["state"], code=googlefake.AUTH_CODE)
    rest, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert rest.endswith(f"Wrote {out} (mode 0600). Set [gmail_postmaster] credentials_file "
                         "to it.\n")  # fmt: skip
    assert lines[0] == "Open this URL in a browser on this machine and allow access:\n"
    assert errors == "" and stat.S_IMODE(out.stat().st_mode) == 0o600
    no_secret("".join(lines), rest, errors)


def test_the_login_command_needs_a_file_to_write(tmp_path, client_secrets) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    result = CliRunner().invoke(cli.main, ["gmail-postmaster", "login", "-c", str(config),
                                           "--client-secrets", str(client_secrets)])  # fmt: skip
    assert result.exit_code == 2
    assert result.output == ("blmonitor: error: give --out FILE, or set [gmail_postmaster] "
                             "credentials_file\n")  # fmt: skip
    result = CliRunner().invoke(cli.main, ["gmail-postmaster", "login", "-c", str(config),
                                           "--client-secrets", str(client_secrets), "--out",
                                           str(tmp_path / "o.json"), "--wait", "soon"])  # fmt: skip
    assert result.exit_code == 2 and "--wait: 'soon' is not a duration" in result.output


def show(google: FakeGoogle, tmp_path: Path, *args: str) -> tuple[int, str]:
    creds = write_credentials(tmp_path / "gmail.json")
    config = tmp_path / "config.toml"
    config.write_text(f'[monitor]\ntargets = ["203.0.113.5"]\n[gmail_postmaster]\n'
                      f'domains = ["example.com"]\ncredentials_file = "{creds}"\n'
                      f'base_url = "{google.base_url}"\ntoken_url = "{google.token_url}"\n')  # fmt: skip
    result = CliRunner().invoke(cli.main, ["gmail-postmaster", "show", "-c", str(config), *args])
    no_secret(result.output)
    return result.exit_code, result.output


def test_show_a_listing_exits_1(google, tmp_path) -> None:
    for day in (YESTERDAY, BEFORE):
        google.api[f"v1/domains/example.com/trafficStats/{day}"] = stats("listed")
    code, output = show(google, tmp_path)
    assert code == 1
    assert output.startswith("example.com  2026-") and "poor (LOW)" in output
    assert "203.0.113.5  " in output and "LISTED gmail-ip-in-rbl" in output
    code, output = show(google, tmp_path, "--json")
    data = json.loads(output)
    assert code == 1 and data["listings"][0]["list"] == "gmail-ip-in-rbl"
    assert data["error"] == "" and data["checked"] == ["example.com", "203.0.113.5"]


def test_show_clean_exits_0_and_an_error_3(google, tmp_path) -> None:
    for day in (YESTERDAY, BEFORE):
        google.api[f"v1/domains/example.com/trafficStats/{day}"] = stats("good")
    assert show(google, tmp_path)[0] == 0
    google.refresh = (400, {"error": "invalid_grant"})
    code, output = show(google, tmp_path)
    assert code == 3
    assert output == ("Gmail Postmaster: the refresh token was refused (invalid_grant): run "
                      "`blmonitor gmail-postmaster login` again\n")  # fmt: skip
