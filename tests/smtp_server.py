"""A real SMTP server on loopback for the tests: it keeps what arrives and refuses on demand."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from typing import cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import AuthResult
from aiosmtpd.smtp import Envelope
from aiosmtpd.smtp import LoginPassword
from aiosmtpd.smtp import Session


@dataclass
class Received:
    """One message as the server took it: the envelope and the raw bytes."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, email.message_from_bytes(self.data, policy=email.policy.default))


class Recorder:
    """An aiosmtpd handler that counts sessions, keeps messages and answers as told.

    ``refuse(address, reply, at="RCPT")`` makes the server answer ``reply`` to the
    RCPT or the DATA of any message for ``address``; everything else gets 250.
    ``on_message`` runs (in the server's thread) after each accepted message.
    AUTH accepts the pairs in ``credentials`` and records each successful login.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.connections = 0
        self.credentials: dict[str, str] = {}
        self.logins: list[str] = []
        self.replies: dict[tuple[str, str], str] = {}
        self.on_message: Callable[[Received], None] | None = None
        self._lock = threading.Lock()

    def refuse(self, address: str, reply: str, *, at: str = "RCPT") -> None:
        assert at in {"RCPT", "DATA"}
        self.replies[(at, address)] = reply

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # handled=False: aiosmtpd then answers a failure with 535 itself.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        if self.credentials.get(login) != auth_data.password.decode():
            return AuthResult(success=False, handled=False)
        with self._lock:
            self.logins.append(login)
        return AuthResult(success=True, auth_data=auth_data)

    @property
    def recipients(self) -> list[str]:
        return [rcpt for received in self.received for rcpt in received.rcpt_tos]

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # smtplib says EHLO once per connection, so greetings count connections.
        session.host_name = hostname
        with self._lock:
            self.connections += 1
        return responses

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.replies.get(("RCPT", address))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            reply = self.replies.get(("DATA", address))
            if reply is not None:
                return reply
        received = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(cast(bytes, envelope.original_content)),
        )
        with self._lock:
            self.received.append(received)
        if self.on_message is not None:
            self.on_message(received)
        return "250 OK"


def free_port() -> int:
    """Return a loopback port that nothing listens on (connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SMTPServer:
    host: str
    port: int
    handler: Recorder


@contextmanager
def smtp_server(**smtp_options: Any) -> Iterator[SMTPServer]:
    """Run an aiosmtpd server on 127.0.0.1 in a thread for the duration of the block.

    aiosmtpd 1.4.6's ``Controller`` connects to its own ``port`` to check that it
    started, so port 0 cannot be used: pick a free port first. AUTH is offered
    without TLS, as loopback needs no certificate.
    """
    handler = Recorder()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=handler.authenticate,
        auth_require_tls=False,
        **smtp_options,
    )
    controller.start()
    try:
        yield SMTPServer(host="127.0.0.1", port=controller.port, handler=handler)
    finally:
        controller.stop()
