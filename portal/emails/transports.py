"""Ways to hand a built message to the world: SMTP, the console, or memory."""

from __future__ import annotations

import smtplib
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any
from typing import Protocol
from typing import TextIO

from flask import Flask


class DeliveryError(Exception):
    """A message was not delivered; ``permanent`` says whether to try again."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class Connection(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class Transport(Protocol):
    def connect(self) -> Any:
        """Return a context manager yielding a ``Connection`` for one batch."""


class ConsoleTransport:
    """Print each message, for development: links are there to click."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    @contextmanager
    def connect(self) -> Iterator[ConsoleTransport]:
        yield self

    def send(self, message: EmailMessage) -> None:
        stream = self.stream or sys.stdout
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        rule = "-" * 72
        lines = [rule]
        lines += [f"{name}: {message[name]}" for name in ("Message-ID", "From", "To", "Subject")]
        if message["Reply-To"]:
            lines.append(f"Reply-To: {message['Reply-To']}")
        lines += ["", text.rstrip(), rule, ""]
        stream.write("\n".join(lines))
        stream.flush()


class MemoryTransport:
    """Keep messages in a list, for tests."""

    def __init__(self, outbox: list[EmailMessage]) -> None:
        self.outbox = outbox

    @contextmanager
    def connect(self) -> Iterator[MemoryTransport]:
        yield self

    def send(self, message: EmailMessage) -> None:
        self.outbox.append(message)


class SMTPConnection:
    """One SMTP session shared by a batch, opened at the first message."""

    def __init__(self, transport: SMTPTransport) -> None:
        self.transport = transport
        self.client: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        settings = self.transport
        client: smtplib.SMTP
        if settings.use_ssl:
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=settings.tls()
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            if settings.use_tls and not settings.use_ssl:
                client.starttls(context=settings.tls())
            if settings.username and settings.password:
                client.login(settings.username, settings.password)
        except BaseException:
            client.close()
            raise
        return client

    def close(self) -> None:
        if self.client is None:
            return
        try:
            self.client.quit()
        except (smtplib.SMTPException, OSError):
            self.client.close()
        self.client = None

    def send(self, message: EmailMessage) -> None:
        if self.client is None:
            try:
                self.client = self._open()
            except (smtplib.SMTPException, OSError) as error:
                # Refused greeting, failed STARTTLS or login: the server or our
                # settings are at fault, not this message, whatever the code. A
                # 5xx here must not fail every row of the batch for good.
                raise DeliveryError(f"connection error: {error}", permanent=False) from None
        try:
            refused = self.client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            if self.client is not None and self.client.sock is None:
                # A 421 makes smtplib close the session: forget it, so the next
                # message opens a fresh one instead of failing on a dead client.
                self._drop()
            raise self._reply_error(code, reply) from None
        except smtplib.SMTPResponseException as error:
            self._reset()
            raise self._reply_error(error.smtp_code, error.smtp_error) from None
        except (smtplib.SMTPException, OSError) as error:
            # Disconnected, refused, timed out: the connection is gone, the next
            # message opens a fresh one.
            self._drop()
            raise DeliveryError(f"connection error: {error}", permanent=False) from None
        if refused:
            code, reply = next(iter(refused.values()))
            raise self._reply_error(code, reply)

    def _reply_error(self, code: int, reply: bytes | str) -> DeliveryError:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        # 5xx is the server's final word; 4xx and anything odd may pass later.
        return DeliveryError(f"{code} {text}", permanent=500 <= code < 600, code=code)

    def _reset(self) -> None:
        """Clear the failed transaction so the next message starts clean."""
        if self.client is None:
            return
        try:
            self.client.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            finally:
                self.client = None


class SMTPTransport:
    """Deliver through an SMTP server, with optional STARTTLS/SSL and login."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        use_tls: bool = False,
        use_ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30,
    ) -> None:
        self.host = host
        self.port = port
        self.use_tls = use_tls
        self.use_ssl = use_ssl
        self.username = username
        self.password = password
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = None

    def tls(self) -> ssl.SSLContext:
        """The TLS context, built once and only when used: loading the CA store is slow."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    @contextmanager
    def connect(self) -> Iterator[SMTPConnection]:
        connection = SMTPConnection(self)
        try:
            yield connection
        finally:
            connection.close()


OUTBOX_KEY = "portal.outbox"
TRANSPORTS = ("smtp", "console", "memory")


def outbox(app: Flask) -> list[EmailMessage]:
    """Return the list the memory transport appends to."""
    return app.extensions.setdefault(OUTBOX_KEY, [])


def transport_for(app: Flask) -> Transport:
    """Build the transport that ``MAIL_TRANSPORT`` names."""
    config = app.config
    name = config["MAIL_TRANSPORT"]
    if name == "smtp":
        return SMTPTransport(
            config["MAIL_SERVER"],
            int(config["MAIL_PORT"]),
            use_tls=config["MAIL_USE_TLS"],
            use_ssl=config["MAIL_USE_SSL"],
            username=config["MAIL_USERNAME"],
            password=config["MAIL_PASSWORD"],
            timeout=config["MAIL_TIMEOUT"],
        )
    if name == "console":
        return ConsoleTransport()
    if name == "memory":
        return MemoryTransport(outbox(app))
    raise ValueError(f"MAIL_TRANSPORT={name!r} is unknown; use smtp, console or memory.")
