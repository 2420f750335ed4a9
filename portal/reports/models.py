"""The report model: one account's word that a post or a comment breaks the rules."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from portal.database import UTCDateTime
from portal.database import utcnow
from portal.extensions import db
from portal.reports import constants as REPORT

if TYPE_CHECKING:
    from portal.comments.models import Comment
    from portal.posts.models import Post
    from portal.users.models import User


class Report(db.Model):  # type: ignore[name-defined]
    """A reader's report about one post or one comment; OPEN until staff resolve it.

    The reporter is never shown to the author: only staff screens name them.
    """

    __tablename__ = "reports_report"
    __table_args__ = (
        # Once per reader and item (NULLs differ, so each index covers one kind of item).
        Index("ix_reports_report_reporter_post", "reporter_id", "post_id", unique=True),
        Index("ix_reports_report_reporter_comment", "reporter_id", "comment_id", unique=True),
        # An item's open reports: counted for the threshold, closed together.
        Index("ix_reports_report_post_status", "post_id", "status"),
        Index("ix_reports_report_comment_status", "comment_id", "status"),
        # The queue: open reports, oldest first.
        Index("ix_reports_report_status_created", "status", "created_at"),
        CheckConstraint("(post_id IS NULL) <> (comment_id IS NULL)", name="one_target"),
        CheckConstraint(
            f"reason IN ({', '.join(str(value) for value in REPORT.REASON)})", name="reason"
        ),
        CheckConstraint(
            f"status IN ({', '.join(str(value) for value in REPORT.STATUS)})", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users_user.id", ondelete="CASCADE"))
    # Deleting the item deletes its reports (the audit trail keeps the decision).
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts_post.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments_comment.id", ondelete="CASCADE")
    )
    reason: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str | None] = mapped_column(String(REPORT.NOTE_MAX_LENGTH))
    status: Mapped[int] = mapped_column(SmallInteger, default=REPORT.OPEN)
    # This report was the one that took the item past REPORTS_HIDE_THRESHOLD and
    # hid it; dismissing the reports shows the item again.
    hid_target: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users_user.id", ondelete="SET NULL")
    )

    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])
    post: Mapped[Post | None] = relationship()
    comment: Mapped[Comment | None] = relationship()

    def __repr__(self) -> str:
        target = f"post {self.post_id}" if self.post_id else f"comment {self.comment_id}"
        return f"<Report {self.id} on {target} {REPORT.STATUS.get(self.status)}>"

    @property
    def reason_name(self) -> str:
        return REPORT.REASON[self.reason]

    @property
    def status_name(self) -> str:
        return REPORT.STATUS[self.status]

    @property
    def is_open(self) -> bool:
        return self.status == REPORT.OPEN
