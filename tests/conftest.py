"""Fixtures: a DNS lab on 127.0.0.1 (rbldnsd + our misbehaving resolver). Nothing leaves loopback."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, NoReturn

import dns.rcode
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from blmonitor.dnsbl.catalog import Catalog, load_catalog
from blmonitor.models import Zone
from tests import dnsservers

DATA = Path(__file__).parent / "data"
DQS_KEY = "k3yk3yk3yk3yk3yk3yk3yk3yk3"  # a made-up 26-character Spamhaus DQS key
LAB_CATALOG = load_catalog(DATA / "lab.toml")  # the lab's zones, for the pure tests too


def lab_zone(key: str) -> Zone:
    """A zone of the lab catalog, by id or name (a typo fails the test at once)."""
    found = LAB_CATALOG.find(key)
    assert found is not None, key
    return found


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
    """Nor this machine's MTA (its queue, its HELO name): Postfix's, as a test that wants one
    names its [diagnose] config_dir; Exim's, as the daemon looks for it by no name."""
    monkeypatch.setattr(
        "blmonitor.causes.findings.POSTFIX_DIR", tmp_path_factory.getbasetemp() / "no-postfix"
    )
    monkeypatch.setattr("blmonitor.causes.findings.EXIM_NAMES", ())


# --- no test reaches the machine's resolver ------------------------------------------------

FQDN = "mail.blmonitor.test"  # this machine's name, as every test sees it
_LOCAL_NAMES = {"localhost", "localhost.", "localhost.localdomain", "ip6-localhost"}
_LOOPBACK = _LOCAL_NAMES | {"127.0.0.1", "::1"}


@dataclass
class ResolverGuard:
    """What the tests asked of name resolution: getfqdn() calls, and lookups that were refused."""

    fqdn_calls: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def refuse(self, call: str) -> NoReturn:
        self.refused.append(call)
        # pytest.fail raises a BaseException: code that catches OSError or Exception (as a
        # lookup fallback would) cannot swallow it, and the teardown check catches the rest.
        pytest.fail(f"{call} would ask this machine's resolver: tests stay on loopback")


def _local(host: object) -> bool:
    """localhost or an address literal: answered without asking any resolver."""
    if host is None or host == "" or (isinstance(host, str) and host.lower() in _LOCAL_NAMES):
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def resolver_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[ResolverGuard]:
    """socket.getfqdn() answers FQDN; a lookup of any other name or address fails the test, and
    so does our DNS client sent to the machine's resolvers (system_nameservers()).

    Without it, run_once without host=, `notify --test`, the smart-host commands, smtplib and
    email.utils.make_msgid ask the machine's resolver for its own name.
    """
    guard = ResolverGuard()
    real_getaddrinfo, real_gethostbyname = socket.getaddrinfo, socket.gethostbyname
    real_gethostbyname_ex, real_gethostbyaddr = socket.gethostbyname_ex, socket.gethostbyaddr

    def getfqdn(name: str = "") -> str:
        guard.fqdn_calls.append(name)
        if name.strip() in ("", "0.0.0.0", "::"):  # this machine, as socket.getfqdn reads them
            return FQDN
        if name in _LOOPBACK:
            return "localhost"
        guard.refuse(f"socket.getfqdn({name!r})")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _local(host):
            guard.refuse(f"socket.getaddrinfo({host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    def by_name(real: Callable[[str], Any], call: str) -> Callable[[str], Any]:
        def lookup(host: str) -> Any:
            if not _local(host):
                guard.refuse(f"socket.{call}({host!r})")
            return real(host)

        return lookup

    def gethostbyaddr(address: str) -> Any:
        if address not in _LOOPBACK:  # /etc/hosts answers these; any other asks DNS (PTR)
            guard.refuse(f"socket.gethostbyaddr({address!r})")
        return real_gethostbyaddr(address)

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", by_name(real_gethostbyname, "gethostbyname"))
    monkeypatch.setattr(
        socket, "gethostbyname_ex", by_name(real_gethostbyname_ex, "gethostbyname_ex")
    )
    monkeypatch.setattr(socket, "gethostbyaddr", gethostbyaddr)

    def system_nameservers() -> NoReturn:  # our own DNS client, aimed at /etc/resolv.conf's
        guard.refuse("system_nameservers()")

    monkeypatch.setattr("blmonitor.dnsbl.resolver.system_nameservers", system_nameservers)
    monkeypatch.setattr("blmonitor.dnsbl.service.system_nameservers", system_nameservers)
    yield guard
    if guard.refused:  # asked from a thread, where pytest.fail did not reach the test
        pytest.fail(f"the test asked this machine's resolver: {'; '.join(guard.refused)}")


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


@pytest.fixture(autouse=True)
def _blmonitor_logger_restored() -> Iterator[None]:
    """`blmonitor run` in-process (CliRunner) sets up the daemon's logging — its own handler,
    no propagation — which would hide every later test's log records from caplog."""
    import logging

    logger = logging.getLogger("blmonitor")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
