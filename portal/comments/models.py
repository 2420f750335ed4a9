"""The comment model, with its moderation decision."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from portal.comments import constants as COMMENT
from portal.database import UTCDateTime
from portal.database import utcnow
from portal.extensions import db

if TYPE_CHECKING:
    from portal.posts.models import Post
    from portal.users.models import User


class Comment(db.Model):  # type: ignore[name-defined]
    """What an account said under a post; public once APPROVED."""

    __tablename__ = "comments_comment"
    __table_args__ = (
        # A post's approved comments in order, without touching other posts' rows.
        Index("ix_comments_comment_post_status_created", "post_id", "status", "created_at", "id"),
        # The moderation queue: PENDING first, oldest first.
        Index("ix_comments_comment_status_created", "status", "created_at", "id"),
        Index("ix_comments_comment_author_created", "author_id", "created_at"),
        CheckConstraint(
            f"status IN ({COMMENT.PENDING}, {COMMENT.APPROVED}, {COMMENT.REJECTED}, "
            f"{COMMENT.SPAM})",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts_post.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users_user.id"))
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(SmallInteger, default=COMMENT.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    moderated_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users_user.id", ondelete="SET NULL")
    )
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    moderation_reason: Mapped[str | None] = mapped_column(String(COMMENT.REASON_MAX_LENGTH))

    post: Mapped[Post] = relationship()
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    moderated_by: Mapped[User | None] = relationship(foreign_keys=[moderated_by_id])

    def __repr__(self) -> str:
        return f"<Comment {self.id} on post {self.post_id} {COMMENT.STATUS.get(self.status)}>"

    def __str__(self) -> str:
        text = " ".join(self.body.split())
        return f"#{self.id}: {text[:80]}{'…' if len(text) > 80 else ''}"

    @property
    def status_name(self) -> str:
        return COMMENT.STATUS[self.status]

    @property
    def is_pending(self) -> bool:
        return self.status == COMMENT.PENDING
