"""The comment rules: writing, editing, and the moderation decisions staff make.

The admin's moderation queue calls ``moderate``; the public pages call the
rest. Each keeps ``Post.comment_count`` (approved comments) exact, with an
UPDATE that adds a delta, so two moderators at once never lose a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import joinedload

from portal import security
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails import suppressions
from portal.emails.addresses import header_text
from portal.emails.queue import enqueue
from portal.extensions import db
from portal.formatting import show_number
from portal.markup import MarkupTooCostly
from portal.markup import link_count
from portal.markup import render_comment
from portal.pagination import Page
from portal.pagination import keyset_page
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.urls import external_url
from portal.users import constants as USER
from portal.users import services as users
from portal.users.models import User

MODERATION_ACTIONS = {
    COMMENT.APPROVED: AUDIT.ACTION_APPROVE,
    COMMENT.REJECTED: AUDIT.ACTION_REJECT,
    COMMENT.SPAM: AUDIT.ACTION_SPAM,
}


class CommentError(Exception):
    """A request the comment rules refuse; the message is safe to show."""


def clean_body(body: str) -> str:
    """Return ``body`` with uniform line endings; raise ``CommentError`` if it cannot be saved.

    Blank, too long, or too costly to render (``render_comment`` says so; it
    keeps the result, so the save that follows does not render it again).
    """
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body:
        raise CommentError(_("Write something in your comment."))
    if len(body) > COMMENT.BODY_MAX_LENGTH:
        raise CommentError(
            _(
                "A comment has at most %(count)s characters.",
                count=show_number(COMMENT.BODY_MAX_LENGTH),
            )
        )
    if "\x00" in body:
        raise CommentError(_("The comment contains a character that is not allowed."))
    try:
        render_comment(body)
    except MarkupTooCostly as error:
        raise CommentError(_(str(error))) from None
    return body


def check_links(author: Any, body: str) -> None:
    """Refuse (``CommentError``) a newcomer's comment with over ``NEW_ACCOUNT_MAX_LINKS`` links.

    Links are counted in the rendered Markdown, autolinks included.
    """
    most = int(current_app.config["NEW_ACCOUNT_MAX_LINKS"])
    if not users.is_newcomer(author) or link_count(render_comment(body)) <= most:
        return
    raise CommentError(
        _(
            "New accounts can put at most %(count)d link(s) in a comment; "
            "remove some and send it again.",
            count=most,
        )
    )


def _change_counts(deltas: Counter[int]) -> None:
    for post_id, delta in deltas.items():
        if delta:
            db.session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(comment_count=Post.comment_count + delta)
                .execution_options(synchronize_session=False)
            )


def add_comment(post: Post, author: User, body: str) -> Comment:
    """Add ``author``'s comment under a published post.

    With ``COMMENTS_REQUIRE_APPROVAL`` on, the comment waits as PENDING unless
    a moderator wrote it; off, it is APPROVED at once.
    """
    if not security.can(author, security.ADD, security.COMMENT):
        raise CommentError(_("Confirm your email address before you comment."))
    if not post.is_published:
        raise CommentError(_("This post does not take comments."))
    body = clean_body(body)
    check_links(author, body)
    approved = (
        security.can(author, security.MODERATE, security.COMMENT)
        or not current_app.config["COMMENTS_REQUIRE_APPROVAL"]
    )
    now = utcnow()
    comment = Comment(
        post=post,
        author=author,
        body=body,
        body_html=render_comment(body),
        status=COMMENT.APPROVED if approved else COMMENT.PENDING,
        created_at=now,
        updated_at=now,
    )
    db.session.add(comment)
    db.session.flush()
    if approved:
        _change_counts(Counter({post.id: 1}))
        _notify_post_author(comment)
    db.session.commit()
    return comment


def _by_moderator(actor: Any, comment: Comment) -> bool:
    # Authors changing their own comments are not audited; moderators are, even on their own.
    return (
        security.can(actor, security.MODERATE, security.COMMENT)
        or getattr(actor, "id", None) != comment.author_id
    )


def update_comment(comment: Comment, body: str, *, actor: Any) -> Comment:
    """Change a comment's text (its author while PENDING, or a moderator)."""
    if not security.can(actor, security.CHANGE, comment):
        raise CommentError(_("A comment can be edited only while it waits for moderation."))
    new_body = clean_body(body)
    check_links(actor, new_body)
    if _by_moderator(actor, comment) and new_body != comment.body:
        audit.record(
            AUDIT.ACTION_UPDATE,
            AUDIT.OBJECT_COMMENT,
            comment.id,
            summary=f"Edited comment {comment.id} by {comment.author.email}",
            changes={"body": [comment.body, new_body]},
        )
    comment.body = new_body
    comment.body_html = render_comment(comment.body)
    comment.updated_at = utcnow()
    db.session.commit()
    return comment


def delete_comment(comment: Comment, *, actor: Any) -> None:
    """Delete a comment (its author, or a moderator)."""
    if not security.can(actor, security.DELETE, comment):
        raise CommentError(_("You cannot delete this comment."))
    if comment.status == COMMENT.APPROVED:
        _change_counts(Counter({comment.post_id: -1}))
    if _by_moderator(actor, comment):
        audit.record(
            AUDIT.ACTION_DELETE,
            AUDIT.OBJECT_COMMENT,
            comment.id,
            summary=f"Deleted comment {comment.id} by {comment.author.email}",
            changes={"body": [comment.body, None], "status": [comment.status_name, None]},
        )
    db.session.delete(comment)
    db.session.commit()


def delete_many(comments: Iterable[Comment], *, actor: Any) -> int:
    """Delete several comments at once (moderators); return how many."""
    if not security.can(actor, security.MODERATE, security.COMMENT):
        raise CommentError(_("Only staff can delete other people's comments."))
    deltas: Counter[int] = Counter()
    count = 0
    for comment in comments:
        if comment.status == COMMENT.APPROVED:
            deltas[comment.post_id] -= 1
        audit.record(
            AUDIT.ACTION_DELETE,
            AUDIT.OBJECT_COMMENT,
            comment.id,
            summary=f"Deleted comment {comment.id} by {comment.author.email}",
            changes={"body": [comment.body, None], "status": [comment.status_name, None]},
        )
        db.session.delete(comment)
        count += 1
    _change_counts(deltas)
    db.session.commit()
    return count


def forget_comments_by(author: User) -> int:
    """Delete every comment ``author`` wrote, keeping the posts' counts exact."""
    approved = db.session.execute(
        select(Comment.post_id, func.count())
        .where(Comment.author_id == author.id, Comment.status == COMMENT.APPROVED)
        .group_by(Comment.post_id)
    )
    _change_counts(Counter({post_id: -count for post_id, count in approved}))
    result = db.session.execute(
        delete(Comment)
        .where(Comment.author_id == author.id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def moderate(
    comments: Iterable[Comment],
    status: int,
    *,
    actor: Any,
    reason: str | None = None,
    notify: bool = True,
) -> int:
    """Approve, reject or mark as spam; return how many comments changed.

    Each one records who decided, when and why. A comment newly approved
    tells the post's author by email, unless they turned that off (or
    ``notify`` is False: a comment shown again after its reports were
    dismissed is no news).
    """
    if status not in COMMENT.STATUS or status == COMMENT.PENDING:
        raise CommentError(_("Choose approve, reject or spam."))
    if not security.can(actor, security.MODERATE, security.COMMENT):
        raise CommentError(_("Only staff can moderate comments."))
    reason = (reason or "").strip() or None
    if reason and len(reason) > COMMENT.REASON_MAX_LENGTH:
        raise CommentError(
            _("A reason has at most %(count)d characters.", count=COMMENT.REASON_MAX_LENGTH)
        )
    now = utcnow()
    deltas: Counter[int] = Counter()
    approved: list[Comment] = []
    changed = 0
    for comment in comments:
        if comment.status == status:
            continue
        if comment.status == COMMENT.APPROVED:
            deltas[comment.post_id] -= 1
        if status == COMMENT.APPROVED:
            deltas[comment.post_id] += 1
            approved.append(comment)
        audit.record(
            MODERATION_ACTIONS[status],
            AUDIT.OBJECT_COMMENT,
            comment.id,
            summary=f"Comment {comment.id} by {comment.author.email}: "
            f"{comment.status_name} → {COMMENT.STATUS[status]}"
            + (f" ({reason})" if reason else ""),
            changes={
                "status": [comment.status_name, COMMENT.STATUS[status]],
                **({"reason": [comment.moderation_reason, reason]} if reason else {}),
            },
        )
        comment.status = status
        comment.moderated_by_id = getattr(actor, "id", None)
        comment.moderated_at = now
        comment.moderation_reason = reason
        changed += 1
    _change_counts(deltas)
    for comment in approved if notify else ():
        _notify_post_author(comment)
    db.session.commit()
    return changed


def _notify_post_author(comment: Comment) -> None:
    post = comment.post
    author = post.author
    if not author.notify_comments or author.status != USER.ACTIVE or author.id == comment.author_id:
        return
    if suppressions.is_suppressed(author.email, EMAIL.NOTIFICATION):
        return
    enqueue(
        author.email,
        # The title is the author's own text: quoted safely, never refused.
        _l("New comment on “%(title)s”", title=header_text(post.title, POST.TITLE_MAX_LENGTH)),
        "comment_approved",
        {
            "user": author,
            "post": post,
            "comment": comment,
            "link": external_url("posts.detail", slug=post.slug, _anchor=f"comment-{comment.id}"),
            "settings": external_url("users.edit_profile"),
        },
        reader=author,
        category=EMAIL.NOTIFICATION,
    )


# -- reading -------------------------------------------------------------------


def approved_page(
    post: Post, *, after: str | None = None, before: str | None = None
) -> Page[Row[Any]]:
    """Return a page of a post's approved comments, oldest first, with their authors.

    Rows of the shown columns, not objects: the page only reads them, and rows
    cost about half as much to build.
    """
    statement = (
        select(
            Comment.id,
            Comment.author_id,
            Comment.body_html,
            Comment.created_at,
            User.name.label("author_name"),
            User.handle.label("author_handle"),
        )
        .join(User, User.id == Comment.author_id)
        .where(Comment.post_id == post.id, Comment.status == COMMENT.APPROVED)
    )
    return keyset_page(
        statement,
        Comment.created_at,
        Comment.id,
        lambda comment: (comment.created_at, comment.id),
        per_page=current_app.config["COMMENTS_PER_PAGE"],
        after=after,
        before=before,
        newest_first=False,
    )


def waiting_for(post: Post, user: Any) -> list[Comment]:
    """Return ``user``'s own comments on ``post`` that wait for moderation."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        db.session.execute(
            select(Comment)
            .where(
                Comment.post_id == post.id,
                Comment.author_id == user.id,
                Comment.status == COMMENT.PENDING,
            )
            .order_by(Comment.created_at, Comment.id)
            .limit(current_app.config["COMMENTS_PER_PAGE"])
        ).scalars()
    )


def get(comment_id: int) -> Comment | None:
    """Return a comment with its post, whatever its status."""
    return db.session.execute(
        select(Comment).options(joinedload(Comment.post)).where(Comment.id == comment_id)
    ).scalar_one_or_none()


def pending_count(*, up_to: int | None = None) -> int:
    """Return how many comments wait for moderation.

    With ``up_to``, counting stops past that many (the answer is then
    ``up_to + 1``), so a menu label costs the same with a million waiting.
    """
    return int(db.session.execute(pending_count_query(up_to=up_to)).scalar_one())


def pending_count_query(*, up_to: int | None = None) -> Select[Any]:
    """The statement ``pending_count`` runs, to count beside others in one statement."""
    waiting = select(Comment.id).where(Comment.status == COMMENT.PENDING)
    if up_to is not None:
        waiting = waiting.limit(up_to + 1)
    return select(func.count()).select_from(waiting.subquery())
