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
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import cast

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import CursorResult
from sqlalchemy import delete as sql_delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import LIKE_ESCAPE
from portal.database import escape_like
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails import suppressions
from portal.emails import unsubscribe
from portal.emails.addresses import InvalidHeader
from portal.emails.addresses import check_header
from portal.emails.addresses import normalize_address
from portal.emails.addresses import normalize_mailbox
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.queue import enqueue
from portal.emails.queue import render_message
from portal.extensions import db
from portal.formatting import format_age

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


@dataclass(frozen=True)
class Selection:
    """Messages named by what they are rather than by id: states, age, recipient, text.

    ``states`` narrows the states a change applies to anyway (``older_than``
    is measured from when the message was queued); ``to`` is a recipient
    address in any case, ``search`` a piece of the recipient or the subject.
    A selection with none of them names every message, which ``retry_matching``
    and ``cancel_matching`` refuse.
    """

    states: tuple[int, ...] = ()
    older_than: timedelta | None = None
    to: str | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        # Blank text narrows nothing: keep None rather than a pattern matching every row.
        object.__setattr__(self, "to", (self.to or "").strip() or None)
        object.__setattr__(self, "search", (self.search or "").strip() or None)

    def is_empty(self) -> bool:
        """Tell whether nothing narrows the selection."""
        return not (self.states or self.older_than is not None or self.to or self.search)

    def criteria(self, allowed: tuple[int, ...]) -> list[Any]:
        """Return the WHERE clauses: these messages, in one of the ``allowed`` states."""
        unknown = [state for state in self.states if state not in EMAIL.STATE]
        if unknown:
            raise QueueError(f"Unknown state {unknown[0]!r}.")
        if self.older_than is not None and self.older_than <= timedelta(0):
            raise QueueError("The age must be more than zero.")
        states = [state for state in allowed if not self.states or state in self.states]
        clauses: list[Any] = [Email.state.in_(states)]
        if self.older_than is not None:
            clauses.append(Email.created_at < utcnow() - self.older_than)
        if self.to:
            clauses.append(func.lower(Email.to_address) == self.to.lower())
        if self.search:
            pattern = f"%{escape_like(self.search.lower())}%"
            clauses.append(
                func.lower(Email.to_address).like(pattern, escape=LIKE_ESCAPE)
                | func.lower(Email.subject).like(pattern, escape=LIKE_ESCAPE)
            )
        return clauses

    def describe(self) -> str:
        """Say in words which messages these are, for the audit trail."""
        parts = []
        if self.states:
            parts.append("state " + " or ".join(EMAIL.STATE[state] for state in self.states))
        if self.older_than is not None:
            parts.append(f"queued more than {format_age(self.older_than.total_seconds())} ago")
        if self.to:
            parts.append(f"to {self.to}")
        if self.search:
            parts.append(f"matching “{self.search}”")
        return ", ".join(parts) or "every message"


def _require_filter(selection: Selection) -> None:
    if selection.is_empty():
        raise QueueError("Name the messages: a state, an age, a recipient or a search.")


def retry_matching(selection: Selection) -> int:
    """Queue the selected messages again, due now, in two statements; return how many changed.

    The same rules as ``retry``: FAILED and CANCELLED rows start over, QUEUED
    rows still waiting become due now; each ``UPDATE`` checks the state
    itself, so a row a worker claims meanwhile is left alone. One audit event
    records the selection and the count.
    """
    _require_filter(selection)
    now = utcnow()
    restarted = db.session.execute(
        update(Email)
        .where(*selection.criteria(RETRYABLE))
        .values(**_restart(now))
        .execution_options(synchronize_session=False)
    )
    hurried = db.session.execute(
        update(Email)
        .where(*selection.criteria((EMAIL.QUEUED,)), Email.next_attempt_at > now)
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    changed = _rowcount(restarted) + _rowcount(hurried)
    if changed:
        audit.record(
            AUDIT.ACTION_RETRY,
            AUDIT.OBJECT_EMAIL,
            summary=f"Retry: {changed} message(s), {selection.describe()}",
        )
    db.session.commit()
    return changed


def cancel_matching(selection: Selection) -> int:
    """Cancel the selected QUEUED or FAILED messages in one statement; return how many."""
    _require_filter(selection)
    done = db.session.execute(
        update(Email)
        .where(*selection.criteria(CANCELLABLE))
        .values(state=EMAIL.CANCELLED, locked_by=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    changed = _rowcount(done)
    if changed:
        audit.record(
            AUDIT.ACTION_CANCEL,
            AUDIT.OBJECT_EMAIL,
            summary=f"Cancel: {changed} message(s), {selection.describe()}",
        )
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


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; a moment without a zone is read as UTC, the zone screens show."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def schedule_problems(
    scheduled_at: datetime | None, expires_at: datetime | None, *, now: datetime | None = None
) -> dict[str, str]:
    """Return what is wrong with a schedule, by field (``scheduled_at``, ``expires_at``).

    Both are optional. A schedule must be in the future; an expiry too, and
    after the schedule, or the message would expire before it may be sent.
    """
    now = now or utcnow()
    problems: dict[str, str] = {}
    if scheduled_at is not None and as_utc(scheduled_at) <= now:
        problems["scheduled_at"] = _("The time to send must be in the future.")
    if expires_at is not None:
        if as_utc(expires_at) <= now:
            problems["expires_at"] = _("The expiry must be in the future.")
        elif scheduled_at is not None and as_utc(expires_at) <= as_utc(scheduled_at):
            problems["expires_at"] = _("The expiry must come after the time to send.")
    return problems


def check_schedule(
    scheduled_at: datetime | None, expires_at: datetime | None, *, priority: int = EMAIL.NORMAL
) -> tuple[datetime | None, datetime | None]:
    """Return the schedule in UTC; raise ``QueueError`` if it is unusable."""
    problems = schedule_problems(scheduled_at, expires_at)
    if problems:
        raise QueueError(next(iter(problems.values())))
    if scheduled_at is not None and priority == EMAIL.NOW:
        raise QueueError(_("A scheduled message cannot use priority 'now'."))
    return (
        as_utc(scheduled_at) if scheduled_at is not None else None,
        as_utc(expires_at) if expires_at is not None else None,
    )


def schedule_changes(
    scheduled_at: datetime | None, expires_at: datetime | None
) -> dict[str, list[Any]]:
    """The audit event's view of a schedule: only the parts that were given."""
    changes: dict[str, list[Any]] = {}
    if scheduled_at is not None:
        changes["scheduled_at"] = [None, as_utc(scheduled_at).isoformat()]
    if expires_at is not None:
        changes["expires_at"] = [None, as_utc(expires_at).isoformat()]
    return changes


def schedule_words(scheduled_at: datetime | None, expires_at: datetime | None) -> str:
    """Say when messages go out and when they expire, as a clause (empty for neither)."""
    words = ""
    if scheduled_at is not None:
        words += f", to be sent from {as_utc(scheduled_at):%Y-%m-%d %H:%M} UTC"
    if expires_at is not None:
        words += f", expiring at {as_utc(expires_at):%Y-%m-%d %H:%M} UTC"
    return words


def check_message(subject: str, body: str) -> tuple[str, str]:
    """Return the subject and body as they will be sent; raise ``QueueError`` if unusable."""
    subject = subject.strip()
    if not subject:
        raise QueueError(_("The subject is empty."))
    try:
        check_header("subject", subject)
    except InvalidHeader as error:
        raise QueueError(str(error)) from None
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        raise QueueError(_("The message body is empty."))
    return subject, body


def message_context(body: str) -> dict[str, Any]:
    """Template values: the text, and its paragraphs (lists of lines) for the HTML part."""
    paragraphs = [part.split("\n") for part in _BLANK_LINES.split(body)]
    return {"body": body, "paragraphs": paragraphs}


def check_priority(priority: int) -> None:
    """Refuse (``QueueError``) a priority the queue does not know."""
    if priority not in EMAIL.PRIORITY:
        raise QueueError(f"Unknown priority {priority!r}.")


def check_broadcast(
    subject: str,
    body: str,
    priority: int,
    *,
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Check all that could refuse a whole broadcast; return the subject and body to send.

    ``portal.operations.broadcast`` calls this before it queues the first
    message, then writes to each account; a dry run calls it alone.
    """
    subject, body = check_message(subject, body)
    check_priority(priority)
    if priority == EMAIL.NOW:
        raise QueueError(_("A broadcast cannot use priority 'now'; use high instead."))
    check_schedule(scheduled_at, expires_at, priority=priority)
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
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> Email:
    """Queue one message to one address and commit; raise ``QueueError`` on bad input.

    ``scheduled_at`` holds it back until then; ``expires_at`` fails it if it
    could not be sent by then (see ``check_schedule``).
    """
    subject, body = check_message(subject, body)
    check_priority(priority)
    scheduled_at, expires_at = check_schedule(scheduled_at, expires_at, priority=priority)
    if suppressions.is_suppressed(to, EMAIL.BROADCAST):
        raise QueueError(
            _("%(address)s is on the suppression list: staff mail is not sent to it.", address=to)
        )
    try:
        email = enqueue(
            to,
            subject,
            BROADCAST_TEMPLATE,
            message_context(body),
            priority=priority,
            created_by_id=created_by_id,
            scheduled_at=scheduled_at,
            expires_at=expires_at,
            category=EMAIL.BROADCAST,
        )
    except InvalidHeader as error:
        raise QueueError(str(error)) from None
    db.session.flush()
    audit.record(
        AUDIT.ACTION_COMPOSE,
        AUDIT.OBJECT_EMAIL,
        email.id,
        summary=f"Wrote “{subject}” to {email.to_address}",
        changes=schedule_changes(scheduled_at, expires_at),
    )
    db.session.commit()
    return email


# How many recipients a preview names; the count covers them all.
PREVIEW_RECIPIENTS = 10


@dataclass(frozen=True)
class Preview:
    """What composing would queue, queuing nothing: the first message, who gets it, how many.

    ``subject``, ``text_body`` and ``html_body`` are what the row for the first
    recipient will hold, rendered by the queue's own code; ``recipients`` are
    the first few addresses in the order they are written to, of ``count``.
    """

    subject: str
    text_body: str
    html_body: str | None
    recipients: list[str]
    count: int
    schedule: str = ""
    # Of ``count``, how many are on the suppression list and will not be written to.
    skipped: int = 0


def preview(
    recipients: list[str],
    count: int,
    subject: str,
    body: str,
    *,
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
    reader: Any = None,
    skipped: int | None = None,
) -> Preview:
    """Render the message the first of ``recipients`` would get; raise ``QueueError`` if unusable.

    The checks are those ``compose`` and ``broadcast`` apply before queuing;
    ``reader`` is the first recipient's account, when there is one.
    ``skipped`` counts the suppressed among all ``count``; without it, the
    given ``recipients`` are asked (they are all of them when one is written to).
    """
    subject, body = check_message(subject, body)
    scheduled_at, expires_at = check_schedule(scheduled_at, expires_at)
    if not recipients:
        raise QueueError(_("Nobody matches: there is no one to write to."))
    try:
        first = normalize_address(recipients[0], field="recipient")
        # With the footer the first recipient's message will have.
        context = {**message_context(body), **unsubscribe.footer_links(first, EMAIL.BROADCAST)}
        rendered = render_message(subject, BROADCAST_TEMPLATE, context, reader=reader)
    except InvalidHeader as error:
        raise QueueError(str(error)) from None
    return Preview(
        subject=rendered[0],
        text_body=rendered[1],
        html_body=rendered[2],
        recipients=[first, *recipients[1:PREVIEW_RECIPIENTS]],
        count=count,
        schedule=schedule_words(scheduled_at, expires_at).removeprefix(", "),
        skipped=skipped
        if skipped is not None
        else sum(suppressions.is_suppressed(address, EMAIL.BROADCAST) for address in recipients),
    )
