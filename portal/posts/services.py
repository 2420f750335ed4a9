"""The post rules. Public pages, admin screens and commands all call these."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from flask import current_app
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import security
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import LIKE_ESCAPE
from portal.database import escape_like
from portal.database import utcnow
from portal.extensions import db
from portal.markup import MarkupTooCostly
from portal.markup import render_post
from portal.pagination import Page
from portal.pagination import keyset_page
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.slugs import slugify
from portal.slugs import unique_slug
from portal.users.models import User


class PostError(Exception):
    """A request the post rules refuse; the message is safe to show."""


# -- checking input ------------------------------------------------------------


def clean_title(title: str) -> str:
    """Return ``title`` trimmed; raise ``PostError`` if empty, overlong or holding control chars."""
    title = (title or "").strip()
    if not title:
        raise PostError("A title is required.")
    if len(title) > POST.TITLE_MAX_LENGTH:
        raise PostError(f"A title has at most {POST.TITLE_MAX_LENGTH} characters.")
    # Cc: the C0 controls, DEL and the C1 controls (U+0080-U+009F), which terminals obey too.
    if any(unicodedata.category(char) == "Cc" for char in title):
        raise PostError("A title cannot contain control characters or line breaks.")
    return title


def clean_body(body: str) -> str:
    """Return ``body`` with line endings made uniform; raise ``PostError`` if it cannot be saved.

    Blank, too long, or too costly to render (``render_post`` says so; it keeps
    the result, so the save that follows does not render it again).
    """
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise PostError("Write something in the body.")
    if len(body) > POST.BODY_MAX_LENGTH:
        raise PostError(f"A post has at most {POST.BODY_MAX_LENGTH:,} characters.")
    if "\x00" in body:
        raise PostError("The body contains a character that is not allowed.")
    try:
        render_post(body)
    except MarkupTooCostly as error:
        raise PostError(str(error)) from None
    return body


def _check_status(status: int) -> None:
    if status not in POST.STATUS:
        raise PostError(f"Unknown status {status!r}.")


# -- writing -------------------------------------------------------------------


def create_post(author: User, title: str, body: str, *, publish: bool = False) -> Post:
    """Write a new post as a draft, or published at once when ``publish``."""
    if not security.can(author, security.ADD, security.POST):
        raise PostError("Confirm your email address before you write.")
    title, body = clean_title(title), clean_body(body)
    now = utcnow()
    for _ in range(3):
        post = Post(
            author=author,
            title=title,
            slug=unique_slug(
                Post.slug,
                slugify(title, max_length=POST.SLUG_MAX_LENGTH, fallback="post"),
                max_length=POST.SLUG_MAX_LENGTH,
            ),
            body=body,
            body_html=render_post(body),
            status=POST.PUBLISHED if publish else POST.DRAFT,
            created_at=now,
            updated_at=now,
            published_at=now if publish else None,
        )
        db.session.add(post)
        try:
            db.session.commit()
        except IntegrityError:
            # Another request took the same slug between our read and our write.
            db.session.rollback()
            continue
        return post
    raise PostError("Could not save the post just now; please try again.")


def update_post(
    post: Post, title: str, body: str, *, actor: Any, publish: bool | None = None
) -> Post:
    """Change a post's title and body (its slug stays); ``publish`` also sets its status.

    Authors may move their own post between draft and published, but a post
    staff have hidden stays hidden until staff publish it again.
    """
    if not security.can(actor, security.CHANGE, post):
        raise PostError("You cannot edit this post.")
    before = _audited_fields(post)
    post.title, post.body = clean_title(title), clean_body(body)
    post.body_html = render_post(post.body)
    post.updated_at = utcnow()
    if publish is not None:
        wanted = POST.PUBLISHED if publish else POST.DRAFT
        if post.status == POST.HIDDEN and not security.can(actor, security.MODERATE, security.POST):
            if publish:
                raise PostError("Staff have hidden this post; it cannot be published again.")
        else:
            _apply_status(post, wanted)
    if _by_moderator(actor, post):
        changes = audit.diff(before, _audited_fields(post))
        if changes:
            audit.record(
                AUDIT.ACTION_UPDATE,
                AUDIT.OBJECT_POST,
                post.id,
                summary=f"Edited “{post.title}”",
                changes=changes,
            )
    db.session.commit()
    return post


def _audited_fields(post: Post) -> dict[str, Any]:
    return {"title": post.title, "body": post.body, "status": POST.STATUS[post.status]}


def _by_moderator(actor: Any, post: Post) -> bool:
    # Authors changing their own posts are not audited; staff acting on anyone's are.
    return (
        security.can(actor, security.MODERATE, security.POST)
        or getattr(actor, "id", None) != post.author_id
    )


def _record_status(post: Post, old: int) -> None:
    audit.record(
        AUDIT.ACTION_SET_STATUS,
        AUDIT.OBJECT_POST,
        post.id,
        summary=f"“{post.title}”: {POST.STATUS[old]} → {POST.STATUS[post.status]}",
        changes={"status": [POST.STATUS[old], POST.STATUS[post.status]]},
    )


def _apply_status(post: Post, status: int) -> bool:
    if post.status == status:
        return False
    post.status = status
    if status == POST.PUBLISHED and post.published_at is None:
        post.published_at = utcnow()
    return True


def set_status(post: Post, status: int, *, actor: Any) -> bool:
    """Publish, hide or unpublish ``post``; return False if it already had ``status``."""
    _check_status(status)
    if not security.can(actor, security.MODERATE, security.POST):
        if not security.can(actor, security.CHANGE, post):
            raise PostError("You cannot change this post.")
        if status == POST.HIDDEN or post.status == POST.HIDDEN:
            raise PostError("Only staff can hide a post or show a hidden one.")
    old = post.status
    changed = _apply_status(post, status)
    if changed:
        post.updated_at = utcnow()
        if security.can(actor, security.MODERATE, security.POST):
            _record_status(post, old)
        db.session.commit()
    return changed


def set_status_many(posts: Iterable[Post], status: int, *, actor: Any) -> int:
    """Moderate several posts at once; return how many changed."""
    _check_status(status)
    if not security.can(actor, security.MODERATE, security.POST):
        raise PostError("Only staff can moderate posts.")
    changed = 0
    now = utcnow()
    for post in posts:
        old = post.status
        if _apply_status(post, status):
            post.updated_at = now
            _record_status(post, old)
            changed += 1
    db.session.commit()
    return changed


def check_delete(post: Post, *, actor: Any) -> None:
    """Refuse (``PostError``) unless ``actor`` may delete ``post``: its author, or a moderator.

    ``portal.operations.delete_post`` deletes it, with the comments under it.
    """
    if not security.can(actor, security.CHANGE, post):
        raise PostError("You cannot delete this post.")


def check_delete_many(actor: Any) -> None:
    """Refuse (``PostError``) a bulk delete unless ``actor`` is a moderator."""
    if not security.can(actor, security.MODERATE, security.POST):
        raise PostError("Only staff can delete other people's posts.")


def record_delete(post: Post, *, actor: Any) -> None:
    """Note the deletion of ``post`` in the audit trail, unless a writer deletes their own."""
    if not _by_moderator(actor, post):
        return
    audit.record(
        AUDIT.ACTION_DELETE,
        AUDIT.OBJECT_POST,
        post.id,
        summary=f"Deleted “{post.title}” by {post.author.email} "
        f"and its {post.comment_count} approved comment(s)",
        changes={"title": [post.title, None], "status": [POST.STATUS[post.status], None]},
    )


# -- reading -------------------------------------------------------------------


def _published() -> Select[*tuple[Any, ...]]:
    # The columns a list shows, with the author's, in one statement whatever the
    # page size; rows rather than objects, since lists only read them.
    return (
        select(
            Post.id,
            Post.title,
            Post.slug,
            Post.published_at,
            Post.comment_count,
            User.name.label("author_name"),
            User.handle.label("author_handle"),
        )
        .join(User, User.id == Post.author_id)
        .where(Post.status == POST.PUBLISHED)
    )


def _page(
    statement: Select[*tuple[Any, ...]], after: str | None, before: str | None
) -> Page[Row[Any]]:
    return keyset_page(
        statement,
        Post.published_at,
        Post.id,
        lambda row: (row.published_at, row.id),
        per_page=current_app.config["POSTS_PER_PAGE"],
        after=after,
        before=before,
    )


def published_page(
    *, after: str | None = None, before: str | None = None, query: str = ""
) -> Page[Row[Any]]:
    """Return a page of published posts, newest first, optionally searched by title."""
    statement = _published()
    for word in query.split()[:5]:
        pattern = f"%{escape_like(word.lower())}%"
        statement = statement.where(func.lower(Post.title).like(pattern, escape=LIKE_ESCAPE))
    return _page(statement, after, before)


def posts_by(
    author: User, *, after: str | None = None, before: str | None = None
) -> Page[Row[Any]]:
    """Return a page of ``author``'s published posts, newest first."""
    return _page(_published().where(Post.author_id == author.id), after, before)


def get_by_slug(slug: str) -> Post | None:
    """Return the post at /posts/<slug>/ with its author, whatever its status."""
    return db.session.execute(
        select(Post).options(joinedload(Post.author)).where(Post.slug == slug)
    ).scalar_one_or_none()


def count_by_status() -> dict[int, int]:
    """Return how many posts have each status (for the dashboard)."""
    rows = db.session.execute(select(Post.status, func.count()).group_by(Post.status))
    counts = dict.fromkeys(POST.STATUS, 0)
    counts.update({status: count for status, count in rows})
    return counts
