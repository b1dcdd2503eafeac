"""Gmail Postmaster Tools polled for real over loopback: a fake token endpoint and API of ours
(tests/googlefake.py) answer; the refresh, the day fallback, unknown domains and every way the
poll can fail come back as a SourceResult — never a crash, never clean, never a secret."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blmonitor.config import Config, Defaults, parse_config
from blmonitor.errors import ConfigError
from blmonitor.sources import gmail, postmaster
from blmonitor.sources.models import Rating
from tests import googlefake
from tests.googlefake import FakeGoogle

DATA = Path(__file__).parent / "data" / "gmail"
NOW = datetime(2026, 12, 6, 11, 0, tzinfo=UTC)
YESTERDAY, BEFORE = "20261205", "20261204"
OURS = ["203.0.113.5", "203.0.113.8/29"]
DEFAULTS = Defaults(database=Path("/var/lib/blmonitor/blmonitor.db"))


def stats(name: str) -> tuple[int, object]:
    return 200, json.loads((DATA / f"{name}.json").read_text())


def write_credentials(path: Path, mode: int = 0o600, **changes: object) -> Path:
    info = {"type": "authorized_user", "client_id": googlefake.CLIENT_ID,
            "client_secret": googlefake.CLIENT_SECRET,
            "refresh_token": googlefake.REFRESH_TOKEN, **changes}  # fmt: skip
    path.write_text(json.dumps({k: v for k, v in info.items() if v is not None}))
    path.chmod(mode)
    return path


def make_config(fake_url: str, credentials: Path, domains=("example.com",), *,
                token_url: str = "", timeout: float = 5.0) -> Config:  # fmt: skip
    text = f"""[gmail_postmaster]
domains = {json.dumps(list(domains))}
credentials_file = "{credentials}"
base_url = "{fake_url}/api/"
token_url = "{token_url or fake_url + "/token"}"
timeout = {timeout}
"""
    return parse_config(text, source="test.toml", defaults=DEFAULTS)


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with googlefake.serve() as fake:
        yield fake


@pytest.fixture
def creds(tmp_path) -> Path:
    return write_credentials(tmp_path / "gmail.json")


def poll(config: Config, caplog: pytest.LogCaptureFixture | None = None):
    result = gmail.poll_gmail(config, OURS, now=NOW)
    shown = json.dumps(postmaster.result_json(result)) + postmaster.render_result(result)
    shown += repr(result) + (caplog.text if caplog is not None else "")
    for secret in googlefake.SECRETS:
        assert secret not in shown
    return result


# --- a good poll -----------------------------------------------------------------------------


def test_the_token_is_refreshed_then_each_domain_read(google, creds, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    google.api[f"v1/domains/example.com/trafficStats/{YESTERDAY}"] = stats("listed")
    google.api[f"v1/domains/example.org/trafficStats/{YESTERDAY}"] = stats("domain_in_rbl")
    result = poll(make_config(google.url, creds, ("example.com", "example.org")), caplog)
    assert result.ok and result.source == "gmail" and result.fetched == NOW
    ratings = {r.subject: (r.rating, r.raw) for r in result.reputation}
    assert ratings == {"example.com": (Rating.POOR, "LOW"), "example.org": (Rating.BAD, "BAD"),
                       "203.0.113.5": (Rating.POOR, "LOW"), "203.0.113.9": (Rating.BAD, "BAD")}  # fmt: skip
    assert {(x.target, x.list) for x in result.listings} == {
        ("example.com", "gmail-ip-in-rbl"),
        ("example.org", "gmail-domain-in-rbl"),
    }
    assert result.checked == ("example.com", "example.org", *OURS) and result.unknown == ()
    # the refresh at our token endpoint, then the API with the bearer token
    method, path, _, body = google.requests[0]
    assert (method, path) == ("POST", "/token")
    assert "grant_type=refresh_token" in body
    for method, _, headers, _ in google.requests[1:]:
        assert method == "GET" and headers["Authorization"] == f"Bearer {googlefake.ACCESS_TOKEN}"
        assert headers["User-Agent"].startswith("blmonitor/")


def test_a_day_not_published_yet_falls_back_to_the_day_before(google, creds) -> None:
    google.api[f"v1/domains/example.com/trafficStats/{BEFORE}"] = stats("good")
    result = poll(make_config(google.url, creds))
    assert google.paths() == [f"/api/v1/domains/example.com/trafficStats/{YESTERDAY}",
                              f"/api/v1/domains/example.com/trafficStats/{BEFORE}"]  # fmt: skip
    record = next(r for r in result.reputation if r.subject == "example.com")
    assert (record.rating, str(record.day)) == (Rating.GOOD, "2026-12-04")
    assert result.checked == ("example.com", *OURS)


def test_a_known_domain_without_data_is_unknown_for_the_day(google, creds) -> None:
    google.api["v1/domains/example.com"] = (200, {"name": "domains/example.com",
                                                  "permission": "OWNER"})  # fmt: skip
    result = poll(make_config(google.url, creds))
    assert result.ok and result.checked == () and result.unknown == () and not result.listings
    (record,) = result.reputation
    assert (record.subject, record.rating, str(record.day)) == ("example.com", Rating.UNKNOWN,
                                                                "2026-12-05")  # fmt: skip
    assert "no data" in record.note


# --- domains the account cannot read ---------------------------------------------------------


def test_a_domain_not_verified_is_unknown_and_the_others_are_read(google, creds) -> None:
    google.api[f"v1/domains/example.net/trafficStats/{YESTERDAY}"] = (403, googlefake.DENIED)
    google.api[f"v1/domains/example.com/trafficStats/{YESTERDAY}"] = stats("good")
    result = poll(make_config(google.url, creds, ("example.net", "example.com")))
    assert result.ok and result.unknown == ("example.net",)
    assert result.checked == ("example.com", *OURS)
    assert f"/api/v1/domains/example.net/trafficStats/{BEFORE}" not in google.paths()
    assert postmaster.verdict(result).value == "unknown"


def test_a_domain_never_added_is_unknown(google, creds) -> None:
    result = poll(make_config(google.url, creds, ("example.net",)))  # 404 everywhere
    assert result.ok and result.unknown == ("example.net",) and result.reputation == ()
    assert google.paths()[-1] == "/api/v1/domains/example.net"


def test_an_api_not_enabled_stops_the_poll(google, creds) -> None:
    body = {
        "error": {
            "code": 403,
            "status": "PERMISSION_DENIED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED"}
            ],
        }
    }
    google.api[f"v1/domains/example.com/trafficStats/{YESTERDAY}"] = (403, body)
    result = poll(make_config(google.url, creds))
    assert result.error.startswith("Gmail Postmaster: the Gmail Postmaster Tools API is not "
                                   "enabled")  # fmt: skip
    assert result.unknown == () and result.reputation == ()


# --- a poll that cannot read the source ------------------------------------------------------


def test_an_api_500_is_an_error_not_clean(google, creds) -> None:
    google.api[f"v1/domains/example.com/trafficStats/{YESTERDAY}"] = stats("good")
    google.api[f"v1/domains/example.org/trafficStats/{YESTERDAY}"] = (500, {"error": {}})
    result = poll(make_config(google.url, creds, ("example.com", "example.org")))
    assert result.error == ("Gmail Postmaster: the API failed (HTTP 500) for example.org: "
                            "Google's side, try later")  # fmt: skip
    assert (result.listings, result.reputation, result.checked) == ((), (), ())


@pytest.mark.parametrize(("answer", "message"), [
    ((200, "<html>oops</html>"), "example.com: the API's answer is not JSON"),
    ((200, {"domainReputation": 7}), "example.com: the answer for 2026-12-05 is not "
                                     "TrafficStats: domainReputation is not a reputation category"),
    ((429, {"error": {}}), "rate limiting us (HTTP 429) for example.com"),
])  # fmt: skip
def test_a_bad_api_answer_is_an_error(google, creds, answer, message) -> None:
    google.api[f"v1/domains/example.com/trafficStats/{YESTERDAY}"] = answer
    assert message in poll(make_config(google.url, creds)).error


def test_invalid_grant_says_to_log_in_again(google, tmp_path) -> None:
    creds = write_credentials(tmp_path / "old.json", refresh_token="1//revoked-SECRET")
    result = poll(make_config(google.url, creds))
    assert result.error == ("Gmail Postmaster: the refresh token was refused (invalid_grant): "
                            "run `blmonitor gmail-postmaster login` again")  # fmt: skip
    assert google.paths() == []  # the API is not asked without a token
    assert "1//revoked-SECRET" not in result.error


def test_a_deleted_client_says_so(google, tmp_path) -> None:
    creds = write_credentials(tmp_path / "c.json", client_secret="GOCSPX-old-SECRET")
    result = poll(make_config(google.url, creds))
    assert "refused the OAuth client (invalid_client)" in result.error
    assert "GOCSPX-old-SECRET" not in result.error


def test_a_refresh_answered_with_401_and_no_json(google, creds) -> None:
    google.refresh = (401, "<html>Unauthorized</html>")
    result = poll(make_config(google.url, creds))
    assert result.error == ("Gmail Postmaster: the token endpoint refused to refresh the "
                            "access token (HTTP 401): run `blmonitor gmail-postmaster login` "
                            "again")  # fmt: skip


@pytest.mark.slow  # google-auth retries a 5xx twice, a second and two apart
def test_a_failing_token_endpoint_is_google_s_side(google, creds) -> None:
    google.refresh = (503, {"error": "server_error"})
    result = poll(make_config(google.url, creds))
    assert result.error == ("Gmail Postmaster: the token endpoint failed (HTTP 503): Google's "
                            "side, try later")  # fmt: skip
    assert google.paths("POST") == ["/token"] * 3 and google.paths() == []


def test_a_token_endpoint_down_is_an_error(google, creds) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/token"
    result = poll(make_config(google.url, creds, token_url=closed))
    assert result.error == (f"Gmail Postmaster: the token endpoint {closed} could not be reached "
                            "(ConnectError): check the network, or [gmail_postmaster] token_url")  # fmt: skip
    assert google.requests == []


def test_an_api_down_is_an_error(google, creds) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = make_config(closed, creds, token_url=google.token_url)
    assert "example.com: the API at" in poll(config).error


def test_a_refresh_answer_without_a_token(google, creds) -> None:
    google.refresh = (200, {"token_type": "Bearer", "expires_in": 3599})
    result = poll(make_config(google.url, creds))
    assert result.error == ("Gmail Postmaster: the token endpoint's answer holds no access "
                            "token: run `blmonitor gmail-postmaster login` again")  # fmt: skip


def test_a_refresh_answer_that_cannot_be_read(google, creds) -> None:
    google.refresh = (200, {"access_token": googlefake.ACCESS_TOKEN, "expires_in": "soon"})
    result = poll(make_config(google.url, creds))
    assert result.error == ("Gmail Postmaster: the token endpoint's answer could not be read "
                            "(ValueError): try later")  # fmt: skip


def test_a_domain_lookup_that_fails_is_an_error(google, creds) -> None:
    google.api["v1/domains/example.com"] = (502, "<html>Bad Gateway</html>")
    result = poll(make_config(google.url, creds))  # both days 404, then the domain: 502
    assert result.error == ("Gmail Postmaster: the API failed (HTTP 502) for example.com: "
                            "Google's side, try later")  # fmt: skip


# --- the credentials file --------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "ok"), [(0o600, True), (0o400, True), (0o640, False),
                                          (0o604, False), (0o620, False)])  # fmt: skip
def test_a_credentials_file_others_may_read_is_refused(google, tmp_path, mode, ok) -> None:
    creds = write_credentials(tmp_path / "c.json", mode)
    google.api[f"v1/domains/example.com/trafficStats/{YESTERDAY}"] = stats("good")
    result = poll(make_config(google.url, creds))
    assert result.ok is ok
    if not ok:
        assert result.error == (f"Gmail Postmaster: {creds} holds a refresh token and group or "
                                f"others may read it (mode {mode:04o}): chmod 600 {creds}")  # fmt: skip
        assert google.requests == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"refresh_token": None}, "is not an authorized-user credentials file (no refresh_token)"),
    ({"type": "service_account"}, "(type 'service_account')"),
    ({"client_secret": ""}, "(no client_secret)"),
])  # fmt: skip
def test_a_credentials_file_of_the_wrong_kind(google, tmp_path, changes, message) -> None:
    creds = write_credentials(tmp_path / "c.json", **changes)
    result = poll(make_config(google.url, creds))
    assert message in result.error and "gmail-postmaster login" in result.error


def test_a_missing_or_broken_credentials_file(google, tmp_path) -> None:
    missing = tmp_path / "none.json"
    assert poll(make_config(google.url, missing)).error == (
        f"Gmail Postmaster: {missing}: no such credentials file: run `blmonitor "
        f"gmail-postmaster login --client-secrets FILE --out {missing}`"
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    broken.chmod(0o600)
    assert f"{broken} is not JSON" in poll(make_config(google.url, broken)).error


def test_a_credentials_path_that_is_a_directory(google, tmp_path) -> None:
    folder = tmp_path / "creds"
    folder.mkdir(mode=0o700)
    assert poll(make_config(google.url, folder)).error == (
        f"Gmail Postmaster: cannot read the credentials file {folder}: Is a directory"
    )


def test_show_looks_for_this_machine_s_addresses_with_auto(monkeypatch, tmp_path) -> None:
    from blmonitor.dnsbl import publicip

    monkeypatch.setattr(publicip, "postfix_addresses", lambda: [])
    monkeypatch.setattr(publicip, "route_addresses",
                        lambda: [ipaddress.ip_address("198.51.100.7")])  # fmt: skip
    creds = write_credentials(tmp_path / "c.json")
    text = (f'[monitor]\ntargets = ["auto", "203.0.113.0/24"]\n[gmail_postmaster]\n'
            f'domains = ["example.com"]\ncredentials_file = "{creds}"\n')  # fmt: skip
    config = parse_config(text, source="t.toml", defaults=DEFAULTS)
    assert gmail.our_addresses(config) == ["203.0.113.0/24", "198.51.100.7"]
    off = parse_config('[monitor]\ntargets = ["auto"]\n', source="t.toml", defaults=DEFAULTS)
    assert gmail.our_addresses(off) == []  # the source is off: nothing discovered for it


def test_no_domain_is_said(tmp_path) -> None:
    config = parse_config("", source="t.toml", defaults=DEFAULTS)
    result = gmail.poll_gmail(config, OURS, now=NOW)
    assert result.error == "Gmail Postmaster: no domain to read: set [gmail_postmaster] domains"


# --- the config ------------------------------------------------------------------------------


def test_the_defaults() -> None:
    settings = parse_config("", source="t.toml", defaults=DEFAULTS).gmail_postmaster
    assert settings.domains == () and not settings.enabled
    assert settings.base_url == "https://gmailpostmastertools.googleapis.com/"
    assert settings.token_url == "https://oauth2.googleapis.com/token"
    assert (settings.interval, settings.timeout) == (12 * 3600.0, 30.0)


def test_a_full_table() -> None:
    settings = parse_config('[gmail_postmaster]\ndomains = ["Example.COM.", "example.org"]\n'
                            'credentials_file = "/etc/blmonitor/gmail.json"\n'
                            'base_url = "http://127.0.0.1:8080/api"\ninterval = "6h"\n'
                            "timeout = 10\n", source="t.toml", defaults=DEFAULTS).gmail_postmaster  # fmt: skip
    assert settings.domains == ("example.com", "example.org") and settings.enabled
    assert settings.base_url == "http://127.0.0.1:8080/api/"  # the trailing slash added
    assert (settings.interval, settings.timeout) == (6 * 3600.0, 10.0)


@pytest.mark.parametrize(("body", "message"), [
    ('domains = ["example.com"]', "[gmail_postmaster] credentials_file: is needed with domains"),
    ('domains = ["not a domain"]', "domains: 'not a domain' is not a domain name"),
    ('domains = ["a.com", "A.com"]', "domains: names a domain twice"),
    ('credentials_file = "gmail.json"', "credentials_file: 'gmail.json' is not an absolute path"),
    ('token_url = "oauth2.googleapis.com/token"', "token_url: 'oauth2.googleapis.com/token' is "
                                                  "not an http(s) URL"),
    ('interval = "10m"', "interval: '10m' is less than the minimum of 1h"),
    ('interval = "soon"', "interval: 'soon' is not a duration"),
    ("timeout = 0", "timeout: expected seconds above 0"),
    ('refresh_token = "x"', "[gmail_postmaster] refresh_token: unknown key"),
])  # fmt: skip
def test_config_mistakes_are_one_line(body, message) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[gmail_postmaster]\n{body}\n", source="t.toml", defaults=DEFAULTS)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("t.toml: [gmail_postmaster] ")


def test_a_monitor_run_without_gmail_does_not_import_google_auth() -> None:
    """google-auth is imported by the Gmail poll itself, not by the run or the page."""
    import subprocess
    import sys

    code = ("import sys, blmonitor.monitor.run, blmonitor.monitor.page; "
            "print(sorted(m for m in sys.modules if m.startswith('google')))")  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]", done.stdout
