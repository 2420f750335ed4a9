"""The email queue rules staff and operators apply: stats, retry, cancel, purge, compose.

The admin screens and ``manage.py emails ...`` both call these functions, so a
rule (which states may be retried, what a message may hold) lives only here.
Writing to many accounts at once needs the accounts too: that is
``portal.operations.broadcast``, which checks its message here first.
Every change is a set-based ``UPDATE`` or ``DELETE`` checked against the row's
current state in the same statement, so a worker claiming rows at the same
moment never sees a half-applied change, and no function runs a query per row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import cast

from flask import current_app
from sqlalchemy import CursorResult
from sqlalchemy import delete as sql_delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.addresses import InvalidHeader
from portal.emails.addresses import check_header
from portal.emails.addresses import normalize_mailbox
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.queue import enqueue
from portal.extensions import db

# Rows changed or deleted per statement: keeps ``IN (...)`` lists well under
# every driver's parameter limit and each transaction short.
CHUNK_SIZE = 500
BROADCAST_TEMPLATE = "broadcast"
RETRYABLE = (EMAIL.FAILED, EMAIL.CANCELLED)
CANCELLABLE = (EMAIL.QUEUED, EMAIL.FAILED)
PURGEABLE = (EMAIL.SENT, EMAIL.CANCELLED)
STATS_WINDOW = timedelta(hours=24)

_BLANK_LINES = re.compile(r"\n[ \t]*\n+")


class QueueError(Exception):
    """A request the queue rules refuse; the message is safe to show."""


# -- stats -----------------------------------------------------------------------


@dataclass
class QueueStats:
    """How the queue stands: counts by state, the oldest wait, the last day's outcomes.

    ``failed_24h`` counts the messages with a failed attempt in the last 24
    hours, from the attempt log: a row has no "failed at" time of its own, and
    every move to FAILED (refused, out of attempts, expired, unbuildable)
    writes such an attempt. A message that failed and was retried since still
    counts, because it did fail in that window. ``sent_24h`` counts rows whose
    ``sent_at`` falls in the window.
    """

    counts: dict[str, int]
    oldest_queued_age: float | None
    sent_24h: int
    failed_24h: int

    def as_dict(self) -> dict[str, Any]:
        """Return one flat object: a key per state name, then the other figures."""
        return {
            **self.counts,
            "oldest_queued_age": self.oldest_queued_age,
            "sent_24h": self.sent_24h,
            "failed_24h": self.failed_24h,
        }


def queue_stats() -> QueueStats:
    """Count messages by state and summarise the last 24 hours."""
    now = utcnow()
    since = now - STATS_WINDOW
    counts = {name: 0 for name in EMAIL.STATE.values()}
    by_state = db.session.execute(select(Email.state, func.count()).group_by(Email.state))
    for state, count in by_state:
        counts[EMAIL.STATE.get(state, str(state))] = count
    oldest = db.session.execute(
        select(func.min(Email.created_at)).where(Email.state == EMAIL.QUEUED)
    ).scalar_one()
    sent = db.session.execute(
        select(func.count()).where(Email.state == EMAIL.SENT, Email.sent_at >= since)
    ).scalar_one()
    failed = db.session.execute(
        select(func.count(func.distinct(Attempt.email_id))).where(
            Attempt.outcome == EMAIL.OUTCOME_FAILED, Attempt.started_at >= since
        )
    ).scalar_one()
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else None
    return QueueStats(counts=counts, oldest_queued_age=age, sent_24h=sent, failed_24h=failed)


# -- state changes ---------------------------------------------------------------


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    """Yield the distinct ids in lists of at most ``CHUNK_SIZE``."""
    unique = sorted({int(value) for value in ids})
    for start in range(0, len(unique), CHUNK_SIZE):
        yield unique[start : start + CHUNK_SIZE]


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _restart(now: datetime) -> dict[str, Any]:
    """Column values of a message queued again from the start."""
    return {
        "state": EMAIL.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "expires_at": None,
        "locked_by": None,
        "locked_until": None,
    }


def _audit(action: str, ids: Iterable[int], count: int) -> None:
    # A request that changed no row (a sent message retried, say) is no change to record.
    if not count:
        return
    wanted = sorted(set(ids))
    shown = ", ".join(str(i) for i in wanted[:20]) + (" …" if len(wanted) > 20 else "")
    audit.record(
        action,
        AUDIT.OBJECT_EMAIL,
        wanted[0] if len(wanted) == 1 else None,
        summary=f"{action.title()}: {count} of {len(wanted)} selected message(s) (#{shown})",
    )


def retry(ids: Iterable[int]) -> int:
    """Queue the given messages again, due now; return how many changed.

    FAILED and CANCELLED rows start over (no attempts used, lease cleared,
    no expiry: whoever retries a message wants it sent). QUEUED rows still
    waiting for their backoff or schedule become due now and keep their
    attempt count. SENDING and SENT rows, and QUEUED rows already
    due, are left as they are. ``last_error`` is kept: it still says what went
    wrong last, and the attempt log keeps the rest.
    """
    ids = list(ids)
    changed = 0
    now = utcnow()
    for chunk in _chunks(ids):
        restarted = db.session.execute(
            update(Email)
            .where(Email.id.in_(chunk), Email.state.in_(RETRYABLE))
            .values(**_restart(now))
            .execution_options(synchronize_session=False)
        )
        hurried = db.session.execute(
            update(Email)
            .where(
                Email.id.in_(chunk),
                Email.state == EMAIL.QUEUED,
                Email.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        changed += _rowcount(restarted) + _rowcount(hurried)
    _audit(AUDIT.ACTION_RETRY, ids, changed)
    db.session.commit()
    return changed


def retry_failed() -> int:
    """Queue every FAILED message again, due now; return how many."""
    done = db.session.execute(
        update(Email)
        .where(Email.state == EMAIL.FAILED)
        .values(**_restart(utcnow()))
        .execution_options(synchronize_session=False)
    )
    if _rowcount(done):
        audit.record(
            AUDIT.ACTION_RETRY,
            AUDIT.OBJECT_EMAIL,
            summary=f"Retried every failed message ({_rowcount(done)})",
        )
    db.session.commit()
    return _rowcount(done)


def cancel(ids: Iterable[int]) -> int:
    """Cancel the given QUEUED or FAILED messages; return how many changed.

    A row a worker holds (SENDING) is not cancelled: it may be on the wire.
    """
    ids = list(ids)
    changed = 0
    for chunk in _chunks(ids):
        done = db.session.execute(
            update(Email)
            .where(Email.id.in_(chunk), Email.state.in_(CANCELLABLE))
            .values(state=EMAIL.CANCELLED, locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )
        changed += _rowcount(done)
    _audit(AUDIT.ACTION_CANCEL, ids, changed)
    db.session.commit()
    return changed


def _delete_rows(ids: list[int], *criteria: Any) -> int:
    """Delete the rows among ``ids`` still matching ``criteria``, with their attempts.

    The rows go first, so a row that changed state meanwhile keeps its log;
    the attempts follow by hand because SQLite does not enforce the cascade.
    """
    deleted = db.session.execute(
        sql_delete(Email)
        .where(Email.id.in_(ids), *criteria)
        .returning(Email.id)
        # Loaded copies of the deleted rows leave the session, as after session.delete().
        .execution_options(synchronize_session="fetch")
    )
    gone = list(deleted.scalars())
    if gone:
        db.session.execute(
            sql_delete(Attempt)
            .where(Attempt.email_id.in_(gone))
            .execution_options(synchronize_session=False)
        )
    return len(gone)


def delete(ids: Iterable[int]) -> int:
    """Delete the given messages and their attempt logs, unless being sent; return how many."""
    ids = list(ids)
    removed = 0
    for chunk in _chunks(ids):
        removed += _delete_rows(chunk, Email.state != EMAIL.SENDING)
    _audit(AUDIT.ACTION_DELETE, ids, removed)
    db.session.commit()
    return removed


def purge(older_than: timedelta, *, dry_run: bool = False) -> int:
    """Delete SENT and CANCELLED messages created before ``now - older_than``.

    Works through the table a batch of ids at a time, each batch in its own
    transaction, so neither memory nor lock time grows with the table. With
    ``dry_run`` only counts. Returns how many were (or would be) deleted.
    """
    if older_than < timedelta(0):
        raise QueueError("The age to purge must not be negative.")
    cutoff = utcnow() - older_than
    criteria = (Email.state.in_(PURGEABLE), Email.created_at < cutoff)
    if dry_run:
        return int(db.session.execute(select(func.count()).where(*criteria)).scalar_one())
    removed = 0
    last_id = 0
    while True:
        # Walk forward by id: rescanning from the start would step over every
        # row already deleted (dead index entries until VACUUM) on each batch.
        batch = list(
            db.session.execute(
                select(Email.id)
                .where(*criteria, Email.id > last_id)
                .order_by(Email.id)
                .limit(CHUNK_SIZE)
            ).scalars()
        )
        if not batch:
            break
        removed += _delete_rows(batch, *criteria)
        db.session.commit()
        last_id = batch[-1]
    if removed:
        audit.record(
            AUDIT.ACTION_PURGE,
            AUDIT.OBJECT_EMAIL,
            summary=f"Purged {removed} sent or cancelled message(s) "
            f"older than {older_than.days} days",
        )
        db.session.commit()
    return removed


# -- composing and broadcasting --------------------------------------------------


def check_message(subject: str, body: str) -> tuple[str, str]:
    """Return the subject and body as they will be sent; raise ``QueueError`` if unusable."""
    subject = subject.strip()
    if not subject:
        raise QueueError("The subject is empty.")
    try:
        check_header("subject", subject)
    except InvalidHeader as error:
        raise QueueError(str(error)) from None
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        raise QueueError("The message body is empty.")
    return subject, body


def message_context(body: str) -> dict[str, Any]:
    """Template values: the text, and its paragraphs (lists of lines) for the HTML part."""
    paragraphs = [part.split("\n") for part in _BLANK_LINES.split(body)]
    return {"body": body, "paragraphs": paragraphs}


def check_priority(priority: int) -> None:
    """Refuse (``QueueError``) a priority the queue does not know."""
    if priority not in EMAIL.PRIORITY:
        raise QueueError(f"Unknown priority {priority!r}.")


def check_broadcast(subject: str, body: str, priority: int) -> tuple[str, str]:
    """Check all that could refuse a whole broadcast; return the subject and body to send.

    ``portal.operations.broadcast`` calls this before it queues the first
    message, then writes to each account.
    """
    subject, body = check_message(subject, body)
    check_priority(priority)
    if priority == EMAIL.NOW:
        raise QueueError("A broadcast cannot use priority 'now'; use high instead.")
    try:
        normalize_mailbox(current_app.config["MAIL_DEFAULT_SENDER"], field="sender")
    except InvalidHeader as error:
        raise QueueError(f"MAIL_DEFAULT_SENDER is unusable: {error}") from None
    return subject, body


def compose(
    to: str,
    subject: str,
    body: str,
    *,
    created_by_id: int | None = None,
    priority: int = EMAIL.NORMAL,
) -> Email:
    """Queue one message to one address and commit; raise ``QueueError`` on bad input."""
    subject, body = check_message(subject, body)
    check_priority(priority)
    try:
        email = enqueue(
            to,
            subject,
            BROADCAST_TEMPLATE,
            message_context(body),
            priority=priority,
            created_by_id=created_by_id,
        )
    except InvalidHeader as error:
        raise QueueError(str(error)) from None
    db.session.flush()
    audit.record(
        AUDIT.ACTION_COMPOSE,
        AUDIT.OBJECT_EMAIL,
        email.id,
        summary=f"Wrote “{subject}” to {email.to_address}",
    )
    db.session.commit()
    return email
