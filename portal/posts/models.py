"""The post model: Markdown source with its sanitised HTML stored beside it; its tags."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import column_property
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from portal.database import UTCDateTime
from portal.database import add_backend_ddl
from portal.database import utcnow
from portal.extensions import db
from portal.posts import constants as POST
from portal.search import trigram_indexes

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
            f"status IN ({POST.DRAFT}, {POST.PUBLISHED}, {POST.HIDDEN}, {POST.PENDING})",
            name="status",
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
    # Loaded only where shown (the post page, the editor, the admin's edit form).
    tags: Mapped[list[Tag]] = relationship(
        secondary="posts_post_tag", order_by=lambda: Tag.name, lazy="select"
    )

    def __repr__(self) -> str:
        return f"<Post {self.id} {self.slug!r} {POST.STATUS.get(self.status)}>"

    def __str__(self) -> str:
        return self.title

    @property
    def status_name(self) -> str:
        return POST.STATUS[self.status]

    @property
    def is_published(self) -> bool:
        """Public now: published, and its time has come (a later time schedules it)."""
        return self.status == POST.PUBLISHED and not self.is_scheduled

    @property
    def is_scheduled(self) -> bool:
        """Published for a time still to come: readers see it from ``published_at`` on."""
        return (
            self.status == POST.PUBLISHED
            and self.published_at is not None
            and self.published_at > utcnow()
        )

    @property
    def is_pending(self) -> bool:
        return self.status == POST.PENDING


# Staff find posts in the back office by any part of the title (portal.search, revision 0009).
trigram_indexes(Post.__table__, "title")


class Tag(db.Model):  # type: ignore[name-defined]
    """A word readers follow posts by; /tags/<slug>/ lists the public posts that carry it."""

    __tablename__ = "posts_tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    # As first written ("PostgreSQL"); another case of it is the same tag (index below).
    name: Mapped[str] = mapped_column(String(POST.TAG_NAME_MAX_LENGTH))
    # Made from the name when the tag is created; a rename keeps it, so links last.
    slug: Mapped[str] = mapped_column(String(POST.TAG_SLUG_MAX_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Tag {self.id} {self.slug!r}>"

    def __str__(self) -> str:
        return self.name

    if TYPE_CHECKING:
        # How many posts carry it, whatever their status (defined below the link table).
        post_count: Mapped[int]


# "Python" and "python" are one tag; the services look names up by lower(name) too.
Index("uq_posts_tag_name_lower", func.lower(Tag.name), unique=True)

# Which post carries which tag. The primary key serves "the tags of a post";
# the index "the posts of a tag", whose newest published ones the tag page and
# feed then read from the posts' own (status, published_at, id) index. Rows go
# with their post or their tag, whoever deletes it (a bulk delete included).
post_tags = Table(
    "posts_post_tag",
    db.Model.metadata,
    Column("post_id", ForeignKey("posts_post.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("posts_tag.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_posts_post_tag_tag_post", "tag_id", "post_id"),
)

# Counted in the statement that reads the tags (the admin's list asks for it
# with ``undefer``), over the index above: one query for a page of tags.
Tag.post_count = column_property(
    select(func.count())
    .where(post_tags.c.tag_id == Tag.id)
    .correlate_except(post_tags)
    .scalar_subquery(),
    deferred=True,
)


# -- full-text search ------------------------------------------------------------
#
# Titles and bodies are indexed by each backend's own engine, kept in step by
# the database itself on every write, whoever writes (a page, the admin, a
# command, the seed's bulk inserts). portal.posts.search queries them; revision
# 0013 creates the same objects. The text search configuration is "simple":
# words are lower-cased and nothing more. Posts are written in any language,
# and a language's stemmer or stop words would mangle the others (and make
# "The Who" unfindable); a reader's words then match exactly the words written.

SEARCH_CONFIG = "simple"

add_backend_ddl(
    Post.__table__,
    "postgresql",
    create=[
        # Weight A for the title, B for the body: ts_rank_cd ranks titles higher.
        # PostgreSQL's parser drops anything shaped like an HTML tag, so angle
        # brackets become spaces first: a post about <script> is found by "script".
        "ALTER TABLE posts_post ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('simple'::regconfig, translate(title, '<>', '  ')), 'A') || "
        "setweight(to_tsvector('simple'::regconfig, translate(body, '<>', '  ')), 'B')) STORED",
        "CREATE INDEX ix_posts_post_search ON posts_post USING gin (search_vector)",
        # Search reads each candidate's vector: rows up to 4 kB stay whole in the
        # table rather than sending the vector to TOAST, a second lookup per post
        # (revision 0015).
        "ALTER TABLE posts_post SET (toast_tuple_target = 4080)",
    ],
    objects=["posts_post.search_vector", "posts_post.ix_posts_post_search"],
)

add_backend_ddl(
    Post.__table__,
    "sqlite",
    create=[
        # External content: the index keeps no second copy of the text. The
        # tokenizer lower-cases and keeps accents, as PostgreSQL's "simple" does.
        "CREATE VIRTUAL TABLE posts_post_fts USING fts5(title, body, content='posts_post', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
        "CREATE TRIGGER posts_post_fts_insert AFTER INSERT ON posts_post BEGIN "
        "INSERT INTO posts_post_fts (rowid, title, body) VALUES (new.id, new.title, new.body); "
        "END",
        "CREATE TRIGGER posts_post_fts_delete AFTER DELETE ON posts_post BEGIN "
        "INSERT INTO posts_post_fts (posts_post_fts, rowid, title, body) "
        "VALUES ('delete', old.id, old.title, old.body); "
        "END",
        # Only a new title or body is indexed again, not a comment count going up.
        "CREATE TRIGGER posts_post_fts_update AFTER UPDATE OF title, body ON posts_post BEGIN "
        "INSERT INTO posts_post_fts (posts_post_fts, rowid, title, body) "
        "VALUES ('delete', old.id, old.title, old.body); "
        "INSERT INTO posts_post_fts (rowid, title, body) VALUES (new.id, new.title, new.body); "
        "END",
    ],
    drop=["DROP TABLE IF EXISTS posts_post_fts"],
    # The virtual table and the shadow tables FTS5 keeps its index in.
    objects=[
        "posts_post_fts",
        *(f"posts_post_fts_{shadow}" for shadow in ("config", "data", "docsize", "idx")),
    ],
)
