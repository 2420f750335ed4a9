"""The outbox: queue a message as a row, claim rows atomically, record outcomes."""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Any

from flask import Response
from flask import current_app
from flask import g
from flask import has_request_context
from flask import render_template
from flask_babel.speaklater import LazyString
from jinja2 import TemplateNotFound
from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import inspect
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails import suppressions
from portal.emails import unsubscribe
from portal.emails.addresses import MAX_ADDRESS_LENGTH
from portal.emails.addresses import MAX_DISPLAY_NAME_LENGTH
from portal.emails.addresses import InvalidHeader
from portal.emails.addresses import as_header_address
from portal.emails.addresses import check_header
from portal.emails.addresses import normalize_address
from portal.emails.addresses import normalize_mailbox
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.transports import Connection
from portal.emails.transports import DeliveryError
from portal.emails.transports import transport_for
from portal.extensions import db
from portal.i18n import written_for
from portal.metrics import count_deliveries

BACKOFF_BASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 6 * 3600
MAILBOX_MAX_LENGTH = MAX_ADDRESS_LENGTH + MAX_DISPLAY_NAME_LENGTH


def enqueue(
    to: str,
    subject: str | LazyString,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    priority: int = EMAIL.NORMAL,
    sender: str | None = None,
    reply_to: str | None = None,
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
    created_by_id: int | None = None,
    sensitive: bool = False,
    reader: Any = None,
    category: int = EMAIL.ACCOUNT,
) -> Email:
    """Queue one message rendered from ``templates/emails/<template>.txt`` (and ``.html``).

    The row joins the caller's transaction, so the message exists exactly when
    the change that caused it is committed. Bad addresses or headers raise
    ``InvalidHeader`` and nothing is added. ``reader`` is the account the
    message is for: the subject (pass ``lazy_gettext`` text) and the bodies
    are written in its language and time zone; without one, the site's.
    ``category`` says what the message is for: a broadcast or a notification
    gets an unsubscribe link in its footer and headers, account mail none.
    Whether the address is suppressed is the caller's question (a broadcast
    asks for all its recipients in one query); the worker asks again at sending.
    """
    config = current_app.config
    to_address = normalize_address(to, field="recipient")
    from_address = normalize_mailbox(sender or config["MAIL_DEFAULT_SENDER"], field="sender")
    reply = normalize_mailbox(reply_to, field="reply-to address") if reply_to else None
    if priority not in EMAIL.PRIORITY:
        raise ValueError(f"unknown priority {priority!r}")
    if category not in EMAIL.CATEGORY:
        raise ValueError(f"unknown category {category!r}")

    values = {**unsubscribe.footer_links(to_address, category), **(context or {})}
    subject, text_body, html_body = render_message(subject, template, values, reader=reader)

    now = utcnow()
    due = scheduled_at or now
    email = Email(
        to_address=to_address,
        from_address=from_address,
        reply_to=reply,
        subject=subject,
        text_body=text_body,
        html_body=html_body,
        message_id=make_message_id(from_address),
        sensitive=sensitive,
        category=category,
        state=EMAIL.QUEUED,
        priority=priority,
        scheduled_at=due,
        next_attempt_at=due,
        expires_at=expires_at,
        max_attempts=config["EMAIL_MAX_ATTEMPTS"],
        created_at=now,
        created_by_id=created_by_id,
    )
    db.session.add(email)
    if priority == EMAIL.NOW:
        _send_with_request(email)
    return email


def render_message(
    subject: str | LazyString,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    reader: Any = None,
) -> tuple[str, str, str | None]:
    """Return the subject, text and HTML (or None) ``enqueue`` stores for ``reader``.

    A preview calls this too, so it shows what the queued row will hold.
    Raise ``InvalidHeader`` for a subject no header may carry.
    """
    config = current_app.config
    values: dict[str, Any] = {
        "site_name": config["PORTAL_NAME"],
        "base_url": config["PORTAL_BASE_URL"],
        # Account mail has no unsubscribe footer; ``enqueue`` sets both for the rest.
        "unsubscribe_url": None,
        "preferences_url": None,
    }
    values.update(context or {})
    with written_for(reader):
        checked = check_header("subject", str(subject).strip())
        text_body = render_template(f"emails/{template}.txt", **values)
        try:
            html_body: str | None = render_template(f"emails/{template}.html", **values)
        except TemplateNotFound:
            html_body = None
    return checked, text_body, html_body


def make_message_id(sender: str) -> str:
    """Return a globally unique Message-ID in the sender's domain."""
    domain = sender.rpartition("@")[2].rstrip(">") or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


class MessagePolicy(EmailPolicy):
    """The default policy, except that ``List-Unsubscribe`` is never folded.

    Its URL is longer than a line; folded, the default policy would turn it
    into encoded words no mail client reads as a link. RFC 5322 allows lines
    of up to 998 characters.
    """

    UNFOLDED = frozenset({"list-unsubscribe", "list-unsubscribe-post"})

    def _wide(self) -> Any:
        return default_policy.clone(linesep=self.linesep, utf8=self.utf8, max_line_length=998)

    def fold(self, name: str, value: Any) -> str:
        if name.lower() in self.UNFOLDED:
            return self._wide().fold(name, value)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in self.UNFOLDED:
            return self._wide().fold_binary(name, value)
        return super().fold_binary(name, value)


MESSAGE_POLICY = MessagePolicy()


def build_message(email: Email) -> EmailMessage:
    """Turn a row into a MIME message; raise ``ValueError`` if it cannot be built safely.

    The row was checked when queued, but it may predate a rule or have been
    written by other means: every header value is checked again, and the
    headers are serialized as the SMTP transport will write them, so a message
    that would carry a header line of its own making is never produced.
    """
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["Message-ID"] = check_header("Message-ID", email.message_id, MAILBOX_MAX_LENGTH)
    message["Date"] = format_datetime(email.created_at)
    message["From"] = as_header_address(
        check_header("sender", email.from_address, MAILBOX_MAX_LENGTH)
    )
    message["To"] = as_header_address(
        check_header("recipient", email.to_address, MAX_ADDRESS_LENGTH)
    )
    if email.reply_to:
        message["Reply-To"] = as_header_address(
            check_header("reply-to address", email.reply_to, MAILBOX_MAX_LENGTH)
        )
    message["Subject"] = check_header("subject", email.subject)
    for name, value in unsubscribe.list_headers(email.to_address, email.category).items():
        message[name] = check_header(name, value, 998 - len(name) - 2)
    message.set_content(email.text_body)
    if email.html_body:
        message.add_alternative(email.html_body, subtype="html")
    check_serialized_headers(message)
    return message


def check_serialized_headers(message: EmailMessage) -> None:
    """Raise ``InvalidHeader`` unless each header serializes to one logical line.

    This is the last word, whatever the interpreter's email package decodes or
    lets through: inside a folded header, a line break must be CR LF followed
    by white space (a continuation). Any other line would be a header, or the
    start of the body, that the value smuggled in.
    """
    policy = message.policy.clone(linesep="\r\n")
    # The stored values, as the generator folds them: ``items()`` would parse
    # each one again first and hide what the wire would carry.
    for name, value in message.raw_items():
        folded = policy.fold_binary(name, value)
        lines = folded.removesuffix(b"\r\n").split(b"\r\n")
        whole = (
            folded.endswith(b"\r\n")
            and lines[0].lower().startswith(name.lower().encode() + b":")
            and all(line[:1] in (b" ", b"\t") for line in lines[1:])
            and not any(char in line for line in lines for char in (b"\r", b"\n", b"\0"))
        )
        if not whole:
            raise InvalidHeader(f"The {name} header would add a line of its own to the message.")


def default_worker_id() -> str:
    """Name this process for leases and attempt logs: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimable(now: datetime) -> Any:
    """Rows that are due, or whose claim expired because a worker died."""
    return or_(
        and_(Email.state == EMAIL.QUEUED, Email.next_attempt_at <= now),
        and_(Email.state == EMAIL.SENDING, Email.locked_until < now),
    )


def claim(worker_id: str, limit: int, *, ids: list[int] | None = None) -> list[Email]:
    """Atomically take up to ``limit`` due rows for ``worker_id`` and commit.

    PostgreSQL skips rows another worker holds (``FOR UPDATE SKIP LOCKED``);
    SQLite runs the whole conditional update under its single write lock. Either
    way a row is leased to one worker until ``locked_until``. ``ids`` narrows
    the claim to those rows (a NOW message sent by the request that queued it).
    """
    now = utcnow()
    lease = timedelta(seconds=current_app.config["EMAIL_LEASE_SECONDS"])
    candidates = (
        select(Email.id)
        .where(_claimable(now))
        .order_by(Email.priority, Email.next_attempt_at, Email.id)
        .limit(limit)
    )
    if ids is not None:
        candidates = candidates.where(Email.id.in_(ids))
    if db.session.get_bind().dialect.name == "postgresql":
        # Lock the candidates in their own statement. Inside the UPDATE, the
        # planner may rescan a ``LIMIT ... FOR UPDATE SKIP LOCKED`` subquery once
        # per outer row (a nested-loop semi join) and claim more than ``limit``
        # rows. The row locks hold until the commit below.
        locked = db.session.execute(candidates.with_for_update(skip_locked=True))
        chosen: ColumnElement[bool] = Email.id.in_(list(locked.scalars()))
    else:
        chosen = Email.id.in_(candidates.scalar_subquery())
    claimed = db.session.execute(
        update(Email)
        .where(chosen, _claimable(now))
        .values(
            state=EMAIL.SENDING,
            locked_by=worker_id,
            locked_until=now + lease,
            attempts=Email.attempts + 1,
        )
        .returning(Email.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(claimed.scalars())
    db.session.commit()
    if not ids:
        return []
    rows = db.session.execute(
        select(Email)
        .where(Email.id.in_(ids))
        .order_by(Email.priority, Email.next_attempt_at, Email.id)
    )
    return list(rows.scalars())


def backoff(attempts: int) -> timedelta:
    """Wait longer after each failed attempt, with jitter so retries spread out."""
    delay = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


@dataclass
class BatchResult:
    """What one batch did, for summaries and exit codes."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    # Not sent because the address was suppressed after the message was queued.
    skipped: int = 0
    released: int = 0
    # Rows whose lease ran out before their turn: another worker may own them now.
    lost: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed + self.skipped

    def add(self, other: BatchResult) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.skipped += other.skipped
        self.released += other.released
        self.lost += other.lost
        self.errors.extend(other.errors)


def _note(email: Email, **values: Any) -> None:
    """Set what a Core statement writes (or will) without making the row dirty."""
    for name, value in values.items():
        set_committed_value(email, name, value)


class Recorder:
    """Write delivery outcomes in groups: one UPDATE, one INSERT, one commit.

    Successes wait for ``every`` of them (or a second); any other outcome is
    written at once with whatever is pending. A worker killed between a send
    and its record leaves the row leased, so it is sent again after the lease:
    at least once, at most ``every`` repeats.
    """

    MAX_WAIT = 1.0

    def __init__(self, worker_id: str, every: int = 1) -> None:
        self.worker_id = worker_id
        self.every = max(1, every)
        self.rows: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.oldest = 0.0

    def record(
        self,
        email: Email,
        outcome: str,
        started: float,
        *,
        code: int | None = None,
        error: str | None = None,
    ) -> None:
        elapsed = time.monotonic() - started
        if not self.rows:
            self.oldest = time.monotonic()
        self.rows.append(
            {
                "row_id": email.id,
                "new_state": email.state,
                "new_sent_at": email.sent_at,
                "new_next_attempt_at": email.next_attempt_at,
                "new_last_error": email.last_error,
            }
        )
        self.attempts.append(
            {
                "email_id": email.id,
                "worker": self.worker_id,
                "started_at": utcnow() - timedelta(seconds=elapsed),
                "duration_ms": int(elapsed * 1000),
                "outcome": outcome,
                "smtp_code": code,
                "error": error,
            }
        )
        _note(email, locked_by=None, locked_until=None)
        if (
            outcome != EMAIL.OUTCOME_SENT
            or len(self.rows) >= self.every
            or time.monotonic() - self.oldest >= self.MAX_WAIT
        ):
            self.flush()

    def flush(self) -> None:
        """Write every pending outcome in one transaction."""
        if not self.rows:
            return
        table = Email.__table__
        db.session.execute(
            update(table)
            .where(
                table.c.id == bindparam("row_id"),
                table.c.state == EMAIL.SENDING,
                table.c.locked_by == self.worker_id,
            )
            .values(
                state=bindparam("new_state"),
                sent_at=bindparam("new_sent_at"),
                next_attempt_at=bindparam("new_next_attempt_at"),
                last_error=bindparam("new_last_error"),
                locked_by=None,
                locked_until=None,
            ),
            self.rows,
        )
        db.session.execute(insert(Attempt.__table__), self.attempts)
        db.session.commit()
        count_deliveries(attempt["outcome"] for attempt in self.attempts)
        self.rows, self.attempts = [], []


def deliver_one(
    connection: Connection,
    email: Email,
    worker_id: str,
    result: BatchResult,
    recorder: Recorder | None = None,
    *,
    suppressed: str | None = None,
) -> None:
    """Send one claimed row and record the outcome (at once, or with ``recorder``).

    ``suppressed`` says why the row's address no longer takes its category:
    the row is cancelled with that as its last error, and not sent. A
    permanent refusal puts the address on the suppression list.
    """
    record = recorder or Recorder(worker_id)
    started = time.monotonic()
    now = utcnow()
    if email.locked_by != worker_id or email.locked_until is None or email.locked_until <= now:
        # The batch outlived its lease; sending now could duplicate another
        # worker's delivery. Leave the row to whoever holds it.
        result.lost += 1
        return
    if email.expires_at is not None and email.expires_at <= now:
        _note(email, state=EMAIL.FAILED, last_error="expired before it could be sent")
        result.failed += 1
        record.record(email, EMAIL.OUTCOME_FAILED, started, error=email.last_error)
        return
    if suppressed is not None:
        _note(email, state=EMAIL.CANCELLED, last_error=suppressed)
        result.skipped += 1
        record.record(email, EMAIL.OUTCOME_SKIPPED, started, error=suppressed)
        return
    try:
        message = build_message(email)
        connection.send(message)
    except DeliveryError as error:
        _note(email, last_error=str(error))
        if error.permanent and error.code is not None and 500 <= error.code < 600:
            # The server's final word on this address: no more broadcasts or notifications.
            suppressions.suppress(
                email.to_address,
                reason=EMAIL.REASON_BOUNCE,
                source=EMAIL.SOURCE_SMTP,
                note=str(error),
            )
        if error.permanent or email.attempts >= email.max_attempts:
            _note(email, state=EMAIL.FAILED)
            result.failed += 1
            result.errors.append(f"#{email.id} to {email.to_address}: {error}")
            outcome = EMAIL.OUTCOME_FAILED
        else:
            _note(email, state=EMAIL.QUEUED, next_attempt_at=now + backoff(email.attempts))
            result.retried += 1
            outcome = EMAIL.OUTCOME_RETRY
        record.record(email, outcome, started, code=error.code, error=str(error))
        return
    except (ValueError, TypeError, LookupError) as error:
        # The row itself is broken (a header that cannot be encoded, say):
        # retrying cannot help, and it must not stall the rest of the batch.
        _note(email, state=EMAIL.FAILED, last_error=f"message could not be built: {error}")
        result.failed += 1
        result.errors.append(f"#{email.id} to {email.to_address}: {email.last_error}")
        record.record(email, EMAIL.OUTCOME_FAILED, started, error=email.last_error)
        return
    _note(email, state=EMAIL.SENT, sent_at=utcnow(), last_error=None)
    result.sent += 1
    record.record(email, EMAIL.OUTCOME_SENT, started)
    if recorder is None:
        record.flush()


def release(emails: list[Email], worker_id: str) -> int:
    """Hand claimed but unsent rows back to the queue at once (a clean stop)."""
    ids = [email.id for email in emails]
    if not ids:
        return 0
    done = db.session.execute(
        update(Email)
        .where(
            Email.id.in_(ids),
            Email.state == EMAIL.SENDING,
            Email.locked_by == worker_id,
        )
        .values(
            state=EMAIL.QUEUED,
            locked_by=None,
            locked_until=None,
            attempts=Email.attempts - 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return int(getattr(done, "rowcount", 0) or 0)


class Pacer:
    """Space sends to at most ``per_minute`` a minute (``EMAIL_RATE_LIMIT``)."""

    def __init__(
        self,
        per_minute: int | None,
        wait: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.wait = wait
        self.clock = clock
        self.next_at = 0.0

    def __call__(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if now < self.next_at:
            self.wait(self.next_at - now)
            now = self.clock()
        self.next_at = max(now, self.next_at) + self.interval


def deliver_batch(
    *,
    batch_size: int | None = None,
    worker_id: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    pacer: Pacer | None = None,
    ids: list[int] | None = None,
) -> BatchResult:
    """Claim one batch and deliver it over one connection of the configured transport."""
    worker_id = worker_id or default_worker_id()
    size = batch_size or current_app.config["EMAIL_BATCH_SIZE"]
    result = BatchResult()
    # Built first: a bad setting must fail before any row is leased.
    transport = transport_for(current_app._get_current_object())  # type: ignore[attr-defined]
    pace = pacer or Pacer(current_app.config.get("EMAIL_RATE_LIMIT"))
    emails = claim(worker_id, size, ids=ids)
    if not emails:
        return result
    # Asked once for the batch: rows queued before their address was suppressed stay unsent.
    blocked = suppressions.blocked(emails)
    recorder = Recorder(worker_id, current_app.config.get("EMAIL_RECORD_EVERY", 10))
    # Outcomes are written with Core statements and noted on the rows as
    # committed, so the group commits need not expire and re-read every row.
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    with transport.connect() as connection:
        try:
            for index, email in enumerate(emails):
                if not should_stop():
                    pace()
                if should_stop():
                    recorder.flush()
                    result.released += release(emails[index:], worker_id)
                    break
                deliver_one(
                    connection, email, worker_id, result, recorder, suppressed=blocked.get(email.id)
                )
        finally:
            recorder.flush()
            session.expire_on_commit = expire_on_commit
            # A row whose lease was lost was not updated: read back the truth.
            session.expire_all()
    return result


NOW_KEY = "portal_emails_now"


def _send_with_request(email: Email) -> None:
    """Remember a NOW message so the request that queued it also delivers it."""
    if has_request_context():
        g.setdefault(NOW_KEY, []).append(email)


def deliver_now(response: Response) -> Response:
    """Deliver the request's NOW messages once they are committed.

    Runs after the view. A failure leaves the row queued with its backoff, so
    a worker retries it like any other; the response is never affected.
    """
    emails = g.pop(NOW_KEY, None)
    if not emails:
        return response
    try:
        db.session.rollback()  # only committed rows are delivered
        identities = [inspect(email).identity for email in emails]
        ids = [identity[0] for identity in identities if identity]
        if ids:
            deliver_batch(batch_size=len(ids), ids=ids, worker_id=f"request:{default_worker_id()}")
    except Exception:  # noqa: BLE001 - the queue keeps the message; log and go on
        db.session.rollback()
        current_app.logger.exception("could not deliver NOW messages in the request")
    return response
