"""A data export built in the background, kept until its link expires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import LargeBinary
from sqlalchemy import SmallInteger
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from portal.database import UTCDateTime
from portal.database import utcnow
from portal.extensions import db
from portal.privacy import constants as PRIVACY


class DataExport(db.Model):  # type: ignore[name-defined]
    """One account's data as a gzipped JSON file, built once and downloaded until it expires.

    The file lives in the database, so any web process can serve what any
    builder made.
    """

    __tablename__ = "privacy_data_export"
    __table_args__ = (
        Index("ix_privacy_data_export_user_id", "user_id"),
        Index("ix_privacy_data_export_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users_user.id", ondelete="CASCADE"))
    state: Mapped[int] = mapped_column(SmallInteger, default=PRIVACY.QUEUED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A builder's claim: taken again by another after it passes.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    size: Mapped[int | None] = mapped_column()
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    error: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<DataExport {self.id} of {self.user_id} {PRIVACY.STATE.get(self.state)}>"

    @property
    def state_name(self) -> str:
        return PRIVACY.STATE[self.state]
