"""Small helpers shared by the HTTP tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

from click.testing import Result
from flask import Flask
from sqlalchemy import event

from portal.emails.queue import deliver_batch
from portal.emails.transports import outbox
from portal.extensions import db

LINK_RE = re.compile(r"https?://\S+")
# The test harness wraps each test's commits in savepoints; a page runs none of its own.
HARNESS_RE = re.compile(r"(RELEASE |ROLLBACK TO )?SAVEPOINT ", re.IGNORECASE)


@contextmanager
def statements() -> Iterator[list[str]]:
    """Collect the SQL statements the block sends to the database (not the harness's)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not HARNESS_RE.match(statement):
            seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def deliver(app: Flask) -> list[EmailMessage]:
    """Deliver everything due and return the whole memory outbox."""
    deliver_batch(batch_size=100)
    return outbox(app)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def link_in(message: EmailMessage) -> str:
    """Return the one link in a message's text body."""
    links = LINK_RE.findall(text_of(message))
    assert len(links) == 1, links
    return links[0]


def path_of(link: str, base: str = "http://127.0.0.1:5000") -> str:
    assert link.startswith(base + "/"), link
    return link[len(base) :]


def assert_no_traceback(result: Result) -> None:
    """A user's mistake ends in a message and an exit code, never a crash."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output


def fails_with(result: Result, message: str) -> None:
    """Assert the command printed exactly this one-line error, nothing else, and exited 1."""
    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"


def sign_in(auth, people, role):
    """Sign in as ``role`` (None stays anonymous) and return that account."""
    if role is None:
        return None
    response = auth.login(people[role].email)
    assert response.status_code == 302, "sign-in failed"
    return people[role]


def token_page(role):
    """A page that carries a CSRF token for this visitor."""
    return "/users/login/" if role is None else "/users/me/"


def text(response):
    return response.get_data(as_text=True)
