"""Small helpers shared by the HTTP tests."""

from __future__ import annotations

import re
from email.message import EmailMessage

from flask import Flask

from portal.emails.queue import deliver_batch
from portal.emails.transports import outbox

LINK_RE = re.compile(r"https?://\S+")


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
