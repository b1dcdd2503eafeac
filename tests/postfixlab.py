"""A throwaway Postfix on loopback for the smart-host and diagnose tests, and its SMTP sinks.

The instance has its own config and queue directory, listens on 127.0.0.1 only, delivers nothing
locally, and logs to a file of its own. "Direct" delivery goes to u@[127.0.0.2] on `direct_port`
(no DNS); a smart host is any sink on 127.0.0.1. Needs root (postfix(1) is superuser-only).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.dnsservers import free_port

DIRECT_HOST = "127.0.0.2"  # not 127.0.0.1: Postfix would take that address for itself


def postfix_missing() -> str:
    """Why a real Postfix cannot run here, or "" when it can."""
    if shutil.which("postfix") is None or shutil.which("postconf") is None:
        return "postfix is not installed (apt install postfix)"
    if os.geteuid() != 0:
        return "postfix(1) needs root"
    return ""


needs_postfix = pytest.mark.skipif(bool(postfix_missing()), reason=postfix_missing() or "ok")


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str  # the SASL user, "" without AUTH
    tls: bool


@dataclass
class Sink:
    """An aiosmtpd server that keeps what it receives; optionally STARTTLS + AUTH, or rejecting."""

    host: str
    port: int
    user: str = ""
    password: str = ""
    reject_rcpt: str = ""  # e.g. "554 5.7.1 ... blocked using zen.spamhaus.org"
    received: list[Delivered] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.commands.append(f"RCPT {address}")
        if self.reject_rcpt:
            return self.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append("DATA")
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        auth = getattr(session, "auth_data", None)
        login = auth.login.decode() if isinstance(auth, LoginPassword) else ""
        tls = session.ssl is not None
        self.received.append(
            Delivered(envelope.mail_from, list(envelope.rcpt_tos), parsed, login, tls)
        )
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        # handled=False: aiosmtpd answers 535 itself (True would leave the client waiting)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def wait(self, count: int, timeout: float = 15.0) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{self.host}:{self.port} got {len(self.received)}"
        return self.received


class _Server(SMTP):
    """Accept and ignore `MAIL FROM:<..> AUTH=<..>` (RFC 4954), which aiosmtpd 1.4 refuses."""

    def _getparams(self, params: Any) -> Any:
        result = super()._getparams(params)
        if result is not None:
            result.pop("AUTH", None)
        return result


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Server(self.handler, **self.SMTP_kwargs)


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class PostfixLab:
    base: Path
    smtpd_port: int
    direct_port: int

    @property
    def conf(self) -> Path:
        return self.base / "conf"

    @property
    def maillog(self) -> Path:
        return self.base / "maillog"

    def postconf(self, *args: str) -> str:
        done = subprocess.run(
            ["postconf", "-c", str(self.conf), *args], check=True, capture_output=True, text=True
        )
        return done.stdout

    def postfix(self, *args: str) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), *args], check=True, capture_output=True)

    def create(self) -> None:
        self.conf.mkdir(parents=True)
        (self.base / "queue").mkdir()
        # postinst writes /etc/postfix/master.cf from the package's master.cf.dist
        master = Path("/etc/postfix/master.cf")
        if not master.exists():
            master = Path("/usr/share/postfix/master.cf.dist")
        shutil.copy(master, self.conf / "master.cf")
        shutil.copy("/usr/share/postfix/main.cf.debian", self.conf / "main.cf")
        self.postconf(
            "-e", f"queue_directory={self.base / 'queue'}", f"data_directory={self.base / 'data'}",
            "myhostname=blmtest.example", "mydomain=blmtest.example", "mydestination=",
            "inet_interfaces=127.0.0.1", "inet_protocols=ipv4", "mynetworks=127.0.0.0/8",
            "alias_maps=", "alias_database=", "local_transport=error:local delivery disabled",
            f"maillog_file={self.maillog}", f"maillog_file_prefixes={self.base}",
            "smtp_tls_security_level=may", f"smtp_tcp_port={self.direct_port}",
            "smtpd_tls_security_level=none", "compatibility_level=3.6",
        )  # fmt: skip
        self.postconf("-F", "*/*/chroot = n")
        self.postconf("-M#", "smtp/inet")
        self.postconf(
            "-Me",
            f"127.0.0.1:{self.smtpd_port}/inet=127.0.0.1:{self.smtpd_port} inet n - n - - smtpd",
        )

    def start(self) -> None:
        self.postfix("check")
        self.postfix("start")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                smtplib.SMTP("127.0.0.1", self.smtpd_port, timeout=2).quit()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"postfix did not listen on {self.smtpd_port}")

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True)

    def running(self) -> bool:
        done = subprocess.run(["postfix", "-c", str(self.conf), "status"], capture_output=True)
        return done.returncode == 0

    def submit(self, subject: str, *, sender: str = "s@blmtest.example",
               rcpt: str = f"u@[{DIRECT_HOST}]") -> None:  # fmt: skip
        with smtplib.SMTP("127.0.0.1", self.smtpd_port, timeout=10) as smtp:
            smtp.sendmail(sender, [rcpt], f"Subject: {subject}\n\nx\n")

    def wait_log(self, pattern: str, timeout: float = 15.0) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.maillog.read_text() if self.maillog.exists() else ""
            if regex.search(text):
                return text
            time.sleep(0.05)
        tail = self.maillog.read_text()[-2000:] if self.maillog.exists() else "(no log)"
        raise AssertionError(f"{pattern!r} not in the mail log:\n{tail}")

    def queue_ids(self) -> list[str]:
        done = subprocess.run(
            ["postqueue", "-c", str(self.conf), "-j"], check=True, capture_output=True, text=True
        )
        return re.findall(r'"queue_id": ?"(\w+)"', done.stdout)


@contextlib.contextmanager
def running_sink(host: str, *, tls_dir: Path | None = None, **options: Any) -> Iterator[Sink]:
    """A Sink listening on `host` until the block ends; with `tls_dir`, STARTTLS and AUTH."""
    sink = Sink(host, free_port(), **options)
    kwargs: dict[str, Any] = {}
    if tls_dir is not None:
        cert, key = self_signed(tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs.update(tls_context=context, require_starttls=False)
    if sink.user:
        kwargs.update(authenticator=sink.authenticate, auth_required=True,
                      auth_require_tls=tls_dir is not None)  # fmt: skip
    controller = _Controller(sink, hostname=host, port=sink.port, **kwargs)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@contextlib.contextmanager
def postfix_instance(
    direct_port: int = 0,
    settings: Mapping[str, str] | None = None,
    unset: Sequence[str] = (),
) -> Iterator[PostfixLab]:
    """A started Postfix whose direct deliveries go to `direct_port`, with `settings` (main.cf)
    made and the `unset` parameters removed (back to Postfix's defaults) before it starts;
    removed when the block ends."""
    # not pytest's tmp_path: its parents are 0700 and the postfix user must reach the queue
    base = Path(tempfile.mkdtemp(prefix="blm-postfix-"))
    base.chmod(0o755)
    lab = PostfixLab(base, smtpd_port=free_port(), direct_port=direct_port or free_port())
    try:
        lab.create()
        if settings:
            lab.postconf("-e", *(f"{k}={v}" for k, v in settings.items()))
        if unset:
            lab.postconf("-X", *unset)
        lab.start()
        yield lab
    finally:
        lab.stop()
        shutil.rmtree(base, ignore_errors=True)
