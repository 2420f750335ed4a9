"""The outbox: one row per outgoing message, one row per delivery attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import func
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from portal.database import UTCDateTime
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.extensions import db
from portal.search import trigram_indexes


class Email(db.Model):  # type: ignore[name-defined]
    """An outgoing message, written before it is sent (the outbox pattern)."""

    __tablename__ = "emails_email"
    __table_args__ = (
        # The claim query: due QUEUED rows in priority order.
        Index("ix_emails_email_claim", "state", "priority", "next_attempt_at", "id"),
        Index("ix_emails_email_created_at", "created_at"),
        # Oldest queued message, and purge of old sent or cancelled rows.
        Index("ix_emails_email_state_created_at", "state", "created_at"),
        # Sent in the last 24 hours; the list sorted by sending time.
        Index("ix_emails_email_sent_at", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    from_address: Mapped[str] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(EMAIL.SUBJECT_MAX_LENGTH))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    # Rows whose bodies carry account tokens; staff screens must not show the links.
    sensitive: Mapped[bool] = mapped_column(default=False)
    # Account mail, a broadcast or a notification: only account mail ignores
    # the suppression list and goes without an unsubscribe link.
    category: Mapped[int] = mapped_column(
        SmallInteger, default=EMAIL.ACCOUNT, server_default=str(EMAIL.ACCOUNT)
    )

    state: Mapped[int] = mapped_column(SmallInteger, default=EMAIL.QUEUED)
    priority: Mapped[int] = mapped_column(SmallInteger, default=EMAIL.NORMAL)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the row may next be claimed: scheduled_at at first, then after backoff.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    locked_by: Mapped[str | None] = mapped_column(String(120))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users_user.id", ondelete="SET NULL"), index=True
    )

    attempt_log: Mapped[list[Attempt]] = relationship(
        back_populates="email",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Attempt.id",
    )

    def __repr__(self) -> str:
        return f"<Email {self.id} to={self.to_address!r} {EMAIL.STATE.get(self.state)}>"

    @property
    def state_name(self) -> str:
        return EMAIL.STATE[self.state]


# Staff find messages by any part of these (portal.search, revision 0009).
trigram_indexes(Email.__table__, "to_address", "subject")


class Attempt(db.Model):  # type: ignore[name-defined]
    """One try at delivering an email: who tried, when, and what happened."""

    __tablename__ = "emails_attempt"
    __table_args__ = (
        # Failures in the last 24 hours (the dashboard and `emails stats`).
        Index("ix_emails_attempt_outcome_started_at", "outcome", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(
        ForeignKey("emails_email.id", ondelete="CASCADE"), index=True
    )
    worker: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str] = mapped_column(String(16))
    smtp_code: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)

    email: Mapped[Email] = relationship(back_populates="attempt_log")


class Suppression(db.Model):  # type: ignore[name-defined]
    """An address that broadcasts and notifications no longer go to, and why.

    One row per address whatever its case; ``category`` is the one category
    refused, or None for all of them. Account mail ignores the list.
    """

    __tablename__ = "emails_suppression"
    __table_args__ = (Index("ix_emails_suppression_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(20))
    category: Mapped[int | None] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(String(20))
    # The SMTP reply of a bounce, or what staff wrote.
    note: Mapped[str | None] = mapped_column(String(EMAIL.SUPPRESSION_NOTE_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Suppression {self.address!r} {self.reason} {self.category_name}>"

    def __str__(self) -> str:
        return self.address

    @property
    def category_name(self) -> str:
        return "all" if self.category is None else EMAIL.CATEGORY[self.category]

    def covers(self, category: int) -> bool:
        """Tell whether mail of ``category`` must not go to this address."""
        return category != EMAIL.ACCOUNT and self.category in (None, category)


# One row per address whatever its case; lookups compare lower(address).
Index("uq_emails_suppression_address_lower", func.lower(Suppression.address), unique=True)
