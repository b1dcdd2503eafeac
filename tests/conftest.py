"""Fixtures: a DNS lab on 127.0.0.1 (rbldnsd + our misbehaving resolver). Nothing leaves loopback."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dns.rcode
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from blmonitor.dnsbl.catalog import Catalog, load_catalog
from tests import dnsservers

DATA = Path(__file__).parent / "data"
DQS_KEY = "k3yk3yk3yk3yk3yk3yk3yk3yk3"  # a made-up 26-character Spamhaus DQS key
LAB_CATALOG = load_catalog(DATA / "lab.toml")  # the lab's zones, for the pure tests too

# rbldnsd datasets per zone: (type, text). Listings are for 203.0.113.0/24 and example domains.
LAB_ZONES: dict[str, list[tuple[str, str]]] = {
    "bl.lab.test": [
        ("ip4set", ":127.0.0.2:Listed, see https://bl.lab.test/$\n127.0.0.2\n"
                   "203.0.113.5 :127.0.0.2:Spam sent from $ on 2026-11-01\n"
                   "203.0.113.6 :127.0.0.4:Infected\n"
                   "203.0.113.7 :127.0.0.10:Dynamic range\n"
                   "203.0.113.8 :127.0.0.77:New category\n"
                   "11.22.33.44 :127.0.0.4:Infected\n"),
        ("ip4set", "203.0.113.6 :127.0.0.2:Also spam\n"),
        ("ip6trie", "::ffff:7f00:2 :127.0.0.2:test point\n2001:db8::25 :127.0.0.3:IPv6 snowshoe\n"),
    ],
    "dead.lab.test": [("ip4set", "192.0.2.1 :127.0.0.2:\n")],
    "world.lab.test": [("ip4trie", "0.0.0.0/0 :127.0.0.2:everything\n")],
    "refusing.lab.test": [("ip4trie", "0.0.0.0/0 :127.255.255.254:Error: open resolver\n")],
    "strict.lab.test": [("ip4set", "127.0.0.2 :127.0.0.2:\n203.0.113.5 :127.0.0.9:\n")],
    "dom.lab.test": [("dnset", "test :127.0.1.2:test\nbad.example :127.0.1.2:Spam domain\n")],
    "bits.lab.test": [("dnset", "test :127.0.0.2:\nspam.example :127.0.0.10:\n"
                                "grey.example :127.0.0.4:\n")],
    f"{DQS_KEY}.refusing.dq.spamhaus.net": [
        ("ip4set", ":127.0.0.2:DQS listed $\n127.0.0.2\n203.0.113.5\n"),
    ],
    "odd.lab.test": [("ip4set", "127.0.0.99 :127.0.0.99:test\n203.0.113.5 :127.0.0.2:\n")],
}  # fmt: skip


@dataclass
class Lab:
    port: int  # our resolver: misbehaving zones, the rest forwarded to rbldnsd
    rbldnsd_port: int
    resolver: dnsservers.FakeResolver
    catalog_path: Path
    flip: dnsservers.Switchable

    @property
    def catalog(self) -> Catalog:
        return load_catalog(self.catalog_path)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("rbldnsd")
    with dnsservers.rbldnsd(workdir, LAB_ZONES) as port:
        resolver = dnsservers.FakeResolver(upstream=port)
        resolver.add("slow.lab.test", dnsservers.drop)
        resolver.add("servfail.lab.test", dnsservers.rcode(dns.rcode.SERVFAIL))
        resolver.add("refused-rcode.lab.test", dnsservers.rcode(dns.rcode.REFUSED))
        resolver.add("outside.lab.test", dnsservers.records("10.1.2.3"))
        resolver.add("blocked.example.bits.lab.test", dnsservers.records("127.0.0.1"))
        resolver.add("trunc.lab.test", dnsservers.truncating("127.0.0.2", txt="long " * 100))
        flip = dnsservers.Switchable()
        resolver.add("flip.lab.test", flip)
        try:
            yield Lab(resolver.port, port, resolver, DATA / "lab.toml", flip)
        finally:
            resolver.close()


@pytest.fixture(autouse=True, scope="session")
def _no_machine_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests never read this machine's /etc/blmonitor/config.toml (subprocesses inherit it)."""
    import os

    missing = tmp_path_factory.mktemp("etc") / "no-config.toml"
    old = os.environ.get("BLMONITOR_CONFIG")
    os.environ["BLMONITOR_CONFIG"] = str(missing)
    yield
    if old is None:
        del os.environ["BLMONITOR_CONFIG"]
    else:
        os.environ["BLMONITOR_CONFIG"] = old


@pytest.fixture(autouse=True)
def _no_machine_queue(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Nor this machine's Postfix queue: a test that wants one names its [diagnose] config_dir."""
    monkeypatch.setattr(
        "blmonitor.causes.findings.POSTFIX_DIR", tmp_path_factory.getbasetemp() / "no-postfix"
    )


# --- an SMTP sink (aiosmtpd) on 127.0.0.1 for notification tests -----------------------------


@dataclass
class SMTPSink:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def authenticate(
        self, server: object, session: object, envelope: object, mechanism: str, auth_data: object
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login = (auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == ("alerts", "s3cret pass"))


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    sink = SMTPSink(port=dnsservers.free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, authenticator=sink.authenticate,
                            auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
