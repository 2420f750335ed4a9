"""One row per change made in the back office, by a moderator, or by a command."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.database import UTCDateTime
from portal.database import utcnow
from portal.extensions import db


class AuditEvent(db.Model):  # type: ignore[name-defined]
    """A change: its actor, source, address, object and field-by-field diff.

    ``actor_label`` keeps who acted even after that account is deleted, and
    names the operator for commands run with manage.py.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_created_at", "created_at", "id"),
        Index("ix_audit_event_actor_created", "actor_id", "created_at"),
        Index("ix_audit_event_object", "object_type", "object_id", "created_at"),
        Index("ix_audit_event_action_created", "action", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users_user.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(300))
    # "admin", "site" or "cli": where the change came from.
    source: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(String(45))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(String(500))
    # {"field": [old, new]}; secrets are masked before they get here.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action} {self.object_type}:{self.object_id}>"
