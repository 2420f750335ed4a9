"""The report rules: filing one, hiding what many report, and the queue staff resolve.

Readers report a published post or an approved comment once each. When
``REPORTS_HIDE_THRESHOLD`` different accounts have open reports on an item,
it is hidden (a post HIDDEN, a comment REJECTED) until staff look; the report
that tipped it says so, and dismissing the reports shows the item again.

Resolving reports can delete a post with its comments, which crosses
features: ``portal.operations.resolve_reports`` does it, with
``check_resolve``, ``restore`` and ``close_reports`` from here.

Who reported is for staff only: nothing here hands it to the author's pages.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import security
from portal.comments import constants as COMMENT
from portal.comments import services as comments
from portal.comments.models import Comment
from portal.database import utcnow
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts import services as posts
from portal.posts.models import Post
from portal.reports import constants as REPORT
from portal.reports.models import Report
from portal.users.models import User

# The notes the queue shows for one item: the newest.
NOTES_SHOWN = 5

Target = Post | Comment


class ReportError(Exception):
    """A report or a decision the rules refuse; the message is safe to show."""


class AlreadyReported(ReportError):
    """This account has reported this item before; nothing changed."""


def kind_of(target: Target) -> str:
    """Name what ``target`` is: ``REPORT.TARGET_POST`` or ``REPORT.TARGET_COMMENT``."""
    return REPORT.TARGET_POST if isinstance(target, Post) else REPORT.TARGET_COMMENT


def _on(target: Target) -> Any:
    """The condition on ``Report`` for the reports about ``target``."""
    if isinstance(target, Post):
        return Report.post_id == target.id
    return Report.comment_id == target.id


def is_public(target: Target) -> bool:
    """Tell whether readers see ``target``: a published post, an approved comment under one."""
    if isinstance(target, Post):
        return target.is_published
    return target.status == COMMENT.APPROVED and target.post.is_published


# -- filing a report ------------------------------------------------------------


def clean_note(note: str | None) -> str | None:
    """Return ``note`` trimmed (None when empty); raise ``ReportError`` if it cannot be kept."""
    note = " ".join((note or "").split())
    if not note:
        return None
    if len(note) > REPORT.NOTE_MAX_LENGTH:
        raise ReportError(
            _("A note has at most %(count)d characters.", count=REPORT.NOTE_MAX_LENGTH)
        )
    return note


def has_reported(reporter: Any, target: Target) -> bool:
    """Tell whether ``reporter`` has reported ``target`` before (open or resolved)."""
    if not getattr(reporter, "is_authenticated", False):
        return False
    found = db.session.execute(
        select(Report.id).where(Report.reporter_id == reporter.id, _on(target)).limit(1)
    ).first()
    return found is not None


def check_report(reporter: Any, target: Target) -> None:
    """Refuse (``ReportError``) unless ``reporter`` may report ``target`` now."""
    problem = security.refusal(reporter, security.REPORT, target)
    if problem:
        raise ReportError(_(problem))
    if not is_public(target):
        raise ReportError(_("Only what readers can see can be reported."))
    if has_reported(reporter, target):
        raise AlreadyReported(_("You have already reported this. Staff will look at it."))


def file_report(reporter: User, target: Target, reason: int, note: str | None = None) -> Report:
    """Report ``target`` to staff for ``reason``; hide it once enough accounts have.

    A second report by the same account raises ``AlreadyReported`` and changes nothing.
    """
    check_report(reporter, target)
    if reason not in REPORT.REASON:
        raise ReportError(_("Choose why you report this."))
    report = Report(
        reporter_id=reporter.id,
        reason=reason,
        note=clean_note(note),
        status=REPORT.OPEN,
        created_at=utcnow(),
        **{"post_id" if isinstance(target, Post) else "comment_id": target.id},
    )
    db.session.add(report)
    try:
        db.session.flush()
    except IntegrityError:
        # The same account, twice at once: the unique index keeps one.
        db.session.rollback()
        raise AlreadyReported(_("You have already reported this. Staff will look at it.")) from None
    threshold = int(current_app.config["REPORTS_HIDE_THRESHOLD"])
    if reporters_of(target) >= threshold and is_public(target):
        report.hid_target = True
        _hide_for_review(target, threshold)
    db.session.commit()
    return report


def reporters_of(target: Target) -> int:
    """Count the different accounts with an open report on ``target``."""
    return int(
        db.session.execute(
            select(func.count(func.distinct(Report.reporter_id))).where(
                _on(target), Report.status == REPORT.OPEN
            )
        ).scalar_one()
    )


def _hide_for_review(target: Target, threshold: int) -> None:
    # No staff member decided this: the audit event says who tipped it, and why.
    reason = f"hidden until reviewed: reported by {threshold} accounts"
    if isinstance(target, Post):
        posts.set_status(target, POST.HIDDEN, actor=None, reason=reason)
    else:
        comments.moderate([target], COMMENT.REJECTED, actor=None, reason=reason)


# -- resolving ------------------------------------------------------------------


def check_resolve(actor: Any) -> None:
    """Refuse (``ReportError``) unless ``actor`` may resolve reports."""
    problem = security.refusal(actor, security.RESOLVE, security.REPORTS)
    if problem:
        raise ReportError(_(problem))


def open_reports(target: Target) -> int:
    """Count the open reports on ``target``."""
    return int(
        db.session.execute(
            select(func.count()).where(_on(target), Report.status == REPORT.OPEN)
        ).scalar_one()
    )


def is_auto_hidden(target: Target) -> bool:
    """Tell whether the open reports on ``target`` hid it (and it is hidden still)."""
    tipped = db.session.execute(
        select(Report.id)
        .where(_on(target), Report.status == REPORT.OPEN, Report.hid_target.is_(True))
        .limit(1)
    ).first()
    if tipped is None:
        return False
    if isinstance(target, Post):
        return target.status == POST.HIDDEN
    return target.status == COMMENT.REJECTED


def hide(target: Target, *, actor: Any) -> None:
    """Take ``target`` down as staff decided: a post HIDDEN, a comment REJECTED."""
    reason = "reports upheld"
    if isinstance(target, Post):
        posts.set_status(target, POST.HIDDEN, actor=actor, reason=reason)
    else:
        comments.moderate([target], COMMENT.REJECTED, actor=actor, reason=reason)


def restore(target: Target, *, actor: Any) -> None:
    """Show ``target`` again after its reports hid it and staff dismissed them."""
    reason = "reports dismissed"
    if isinstance(target, Post):
        posts.set_status(target, POST.PUBLISHED, actor=actor, reason=reason)
    else:
        comments.moderate([target], COMMENT.APPROVED, actor=actor, reason=reason, notify=False)


def close_reports(target: Target, status: int, *, actor: Any) -> int:
    """Mark every open report on ``target`` resolved with ``status``; return how many."""
    result = db.session.execute(
        update(Report)
        .where(_on(target), Report.status == REPORT.OPEN)
        .values(status=status, resolved_at=utcnow(), resolved_by_id=getattr(actor, "id", None))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- keeping reports in step with what they are about ---------------------------


def forget_reports_on_posts(post_ids: Any) -> None:
    """Delete the reports on these posts and on their comments (before they are deleted).

    PostgreSQL cascades; SQLite may not enforce foreign keys, and may give a
    later row the same id, which must never inherit these reports.
    """
    comment_ids = select(Comment.id).where(Comment.post_id.in_(post_ids))
    db.session.execute(
        delete(Report)
        .where(or_(Report.post_id.in_(post_ids), Report.comment_id.in_(comment_ids)))
        .execution_options(synchronize_session=False)
    )


def forget_reports_on_comments_by(author: User) -> None:
    """Delete the reports on ``author``'s comments (before they are deleted)."""
    db.session.execute(
        delete(Report)
        .where(Report.comment_id.in_(select(Comment.id).where(Comment.author_id == author.id)))
        .execution_options(synchronize_session=False)
    )


def forget_reports_by(reporter: User) -> None:
    """Delete the reports ``reporter`` filed, and forget who resolved others (account deleted)."""
    db.session.execute(
        delete(Report)
        .where(Report.reporter_id == reporter.id)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Report)
        .where(Report.resolved_by_id == reporter.id)
        .values(resolved_by_id=None)
        .execution_options(synchronize_session=False)
    )


@event.listens_for(Comment, "after_delete")
def _forget_reports_on_comment(mapper: Any, connection: Any, comment: Comment) -> None:
    # A comment deleted on its own (by its author, or staff): its reports go too.
    table = Report.__table__
    connection.execute(delete(table).where(table.c.comment_id == comment.id))


# -- the queue ------------------------------------------------------------------


@dataclass
class Note:
    """What one reader wrote with their report (staff only)."""

    reporter_name: str
    reporter_email: str
    reason: str
    text: str
    created_at: datetime


@dataclass
class ReportedItem:
    """One post or comment in the queue, with its open reports summed up."""

    kind: str
    target: Target
    count: int
    first_reported_at: datetime
    last_reported_at: datetime
    auto_hidden: bool
    reasons: list[tuple[str, int]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.target.id}"


def _open() -> Any:
    return Report.status == REPORT.OPEN


def open_item_count_query(*, up_to: int | None = None) -> Select[Any]:
    """Count items with open reports, stopping past ``up_to``, in a statement run with others."""
    items = select(Report.post_id, Report.comment_id).where(_open()).distinct()
    if up_to is not None:
        items = items.limit(up_to + 1)
    return select(func.count()).select_from(items.subquery())


def queue_page(*, page: int = 1, per_page: int = 20) -> list[ReportedItem]:
    """Return one page of the reported items, the longest waiting first.

    Six queries whatever the page size: the items, their reasons, their
    newest notes, and the posts and the comments with their authors.
    """
    tipped = func.max(case((Report.hid_target.is_(True), 1), else_=0), type_=Integer)
    groups = db.session.execute(
        select(
            Report.post_id,
            Report.comment_id,
            func.count().label("reports"),
            func.min(Report.created_at).label("first"),
            func.max(Report.created_at).label("last"),
            tipped.label("tipped"),
        )
        .where(_open())
        .group_by(Report.post_id, Report.comment_id)
        .order_by(func.min(Report.created_at), Report.post_id, Report.comment_id)
        .limit(per_page)
        .offset(max(page - 1, 0) * per_page)
    ).all()
    if not groups:
        return []
    post_ids = [row.post_id for row in groups if row.post_id is not None]
    comment_ids = [row.comment_id for row in groups if row.comment_id is not None]
    mine = and_(
        _open(),
        or_(Report.post_id.in_(post_ids or [-1]), Report.comment_id.in_(comment_ids or [-1])),
    )

    reasons: dict[tuple[Any, Any], list[tuple[str, int]]] = defaultdict(list)
    for row in db.session.execute(
        select(Report.post_id, Report.comment_id, Report.reason, func.count())
        .where(mine)
        .group_by(Report.post_id, Report.comment_id, Report.reason)
        .order_by(func.count().desc(), Report.reason)
    ):
        reasons[(row[0], row[1])].append((REPORT.REASON[row[2]], int(row[3])))

    rank = (
        func.row_number()
        .over(
            partition_by=(Report.post_id, Report.comment_id),
            order_by=(Report.created_at.desc(), Report.id.desc()),
        )
        .label("rank")
    )
    newest = (
        select(
            Report.post_id,
            Report.comment_id,
            Report.reason,
            Report.note,
            Report.created_at,
            User.name,
            User.email,
            rank,
        )
        .join(User, User.id == Report.reporter_id)
        .where(mine, Report.note.is_not(None))
        .subquery()
    )
    notes: dict[tuple[Any, Any], list[Note]] = defaultdict(list)
    for row in db.session.execute(
        select(newest).where(newest.c.rank <= NOTES_SHOWN).order_by(newest.c.rank)
    ):
        notes[(row.post_id, row.comment_id)].append(
            Note(row.name, row.email, REPORT.REASON[row.reason], row.note, row.created_at)
        )

    found_posts = {
        post.id: post
        for post in db.session.execute(
            select(Post).options(joinedload(Post.author)).where(Post.id.in_(post_ids or [-1]))
        ).scalars()
    }
    found_comments = {
        comment.id: comment
        for comment in db.session.execute(
            select(Comment)
            .options(joinedload(Comment.author), joinedload(Comment.post))
            .where(Comment.id.in_(comment_ids or [-1]))
        ).scalars()
    }

    items = []
    for row in groups:
        target: Target | None = (
            found_posts.get(row.post_id)
            if row.post_id is not None
            else found_comments.get(row.comment_id)
        )
        if target is None:
            continue
        key = (row.post_id, row.comment_id)
        items.append(
            ReportedItem(
                kind=kind_of(target),
                target=target,
                count=int(row.reports),
                first_reported_at=row.first,
                last_reported_at=row.last,
                auto_hidden=bool(row.tipped) and not is_public(target),
                reasons=reasons.get(key, []),
                notes=notes.get(key, []),
            )
        )
    return items


def get_target(kind: str, target_id: int) -> Target | None:
    """Return the post or the comment a queue row names, with its author; None if it is gone."""
    if kind == REPORT.TARGET_POST:
        return db.session.execute(
            select(Post).options(joinedload(Post.author)).where(Post.id == target_id)
        ).scalar_one_or_none()
    if kind == REPORT.TARGET_COMMENT:
        return db.session.execute(
            select(Comment)
            .options(joinedload(Comment.author), joinedload(Comment.post))
            .where(Comment.id == target_id)
        ).scalar_one_or_none()
    return None
