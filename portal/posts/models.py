"""The post model: Markdown source with its sanitised HTML stored beside it."""

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

from portal.database import UTCDateTime
from portal.database import utcnow
from portal.extensions import db
from portal.posts import constants as POST

if TYPE_CHECKING:
    from portal.users.models import User


class Post(db.Model):  # type: ignore[name-defined]
    """An article an account wrote; public once PUBLISHED."""

    __tablename__ = "posts_post"
    __table_args__ = (
        # Newest published first, with the status filter: one index serves both.
        Index("ix_posts_post_status_published", "status", "published_at", "id"),
        # One person's posts (public profile, the admin's author filter).
        Index("ix_posts_post_author_status_published", "author_id", "status", "published_at", "id"),
        Index("ix_posts_post_created_at", "created_at"),
        CheckConstraint(
            f"status IN ({POST.DRAFT}, {POST.PUBLISHED}, {POST.HIDDEN})", name="status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users_user.id"))
    title: Mapped[str] = mapped_column(String(POST.TITLE_MAX_LENGTH))
    # Made from the title when the post is created and never changed, so links last.
    slug: Mapped[str] = mapped_column(String(POST.SLUG_MAX_LENGTH), unique=True)
    body: Mapped[str] = mapped_column(Text)
    # Rendered and sanitised on save, so a page view never parses Markdown.
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(SmallInteger, default=POST.DRAFT)
    # APPROVED comments only; kept by the comment services so no page counts rows.
    comment_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    author: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Post {self.id} {self.slug!r} {POST.STATUS.get(self.status)}>"

    def __str__(self) -> str:
        return self.title

    @property
    def status_name(self) -> str:
        return POST.STATUS[self.status]

    @property
    def is_published(self) -> bool:
        return self.status == POST.PUBLISHED
