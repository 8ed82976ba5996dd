"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, per session.

It takes logins (USER/PASSWORD) and STARTTLS with a self-signed certificate."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.servers.tls import Certificate, self_signed

USER = "mailer"
PASSWORD = "smtp-password-0123456789"


@dataclass
class Mailbox:
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address.endswith("@refused.example"):
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    mailbox: Mailbox
    certificate: Certificate

    def settings(self, security: str = "starttls") -> dict:
        return {
            "host": self.host,
            "port": self.port,
            "security": security,
            "username": USER,
            "from_address": "videos@phantomflow.test",
            "ca_certificate": self.certificate.pem,
        }


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    given = (auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) else ()
    ok = given == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    certificate = self_signed(Path(tmp_path_factory.mktemp("smtp-cert")))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert_file, certificate.key_file)
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        authenticator=_authenticate,
        auth_require_tls=False,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    controller.start()
    yield SmtpServer("127.0.0.1", port, mailbox, certificate)
    controller.stop()
