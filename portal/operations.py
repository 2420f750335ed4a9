"""Changes that cross features: a post with its comments, an account with its content, mail to many.

Each feature's services change only that feature's rows; what must reach into
several lives here, one layer above them all, so imports still point one way.
The public pages, the admin screens and ``manage.py`` call these functions;
the rules they apply (who may delete what, what a message may hold) stay in
the features' own services, which these call first.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from portal import security
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.audit.models import AuditEvent
from portal.comments import services as comments
from portal.comments.models import Comment
from portal.emails import constants as EMAIL
from portal.emails import services as emails
from portal.emails import suppressions
from portal.emails.addresses import InvalidHeader
from portal.emails.models import Email
from portal.emails.queue import enqueue
from portal.extensions import db
from portal.i18n import Reader
from portal.posts import services as posts
from portal.posts.models import Post
from portal.posts.models import post_tags
from portal.privacy.models import DataExport
from portal.reports import constants as REPORT
from portal.reports import services as reports
from portal.users import constants as USER
from portal.users import mfa
from portal.users import oidc as providers
from portal.users import services as users
from portal.users import sessions
from portal.users.models import User

# -- posts with their comments ---------------------------------------------------


def _delete_post(post: Post) -> None:
    """Delete ``post`` and every comment under it, in the current transaction."""
    reports.forget_reports_on_posts([post.id])
    db.session.execute(delete(Comment).where(Comment.post_id == post.id))
    db.session.delete(post)


def delete_post(post: Post, *, actor: Any) -> None:
    """Delete ``post`` and every comment under it (its author, or a moderator)."""
    posts.check_delete(post, actor=actor)
    posts.record_delete(post, actor=actor)
    _delete_post(post)
    db.session.commit()


def delete_posts(selected: Iterable[Post], *, actor: Any) -> int:
    """Delete several posts and their comments; moderators only. Return how many."""
    posts.check_delete_many(actor)
    count = 0
    for post in selected:
        posts.record_delete(post, actor=actor)
        _delete_post(post)
        count += 1
    db.session.commit()
    return count


# -- reports: staff decide about a reported post or comment ---------------------

RESOLVED_AS = {REPORT.DISMISS: REPORT.DISMISSED, REPORT.HIDE: REPORT.HIDDEN}


def resolve_reports(
    target: Post | Comment, decision: str, *, actor: Any, deactivate_author: bool = False
) -> int:
    """Resolve every open report on ``target`` in one step; return how many were open.

    ``decision`` is ``dismiss`` (the item is fine: shown again if its reports
    hid it), ``hide`` or ``delete`` (a post with its comments). With
    ``deactivate_author`` the author's account is disabled too, as the gate
    allows (staff: USER accounts only). Everything is checked before anything
    changes, and the decision is audited on the item.
    """
    reports.check_resolve(actor)
    if decision not in REPORT.DECISIONS:
        raise reports.ReportError(_("Choose dismiss, hide or delete."))
    count = reports.open_reports(target)
    if not count:
        raise reports.ReportError(_("These reports were already resolved; nothing changed."))
    author = target.author
    deactivate = deactivate_author and author.status != USER.INACTIVE
    if deactivate_author and author.handle == USER.DELETED_HANDLE:
        raise reports.ReportError(_("The author's account is deleted already."))
    if deactivate:
        problem = security.refusal(actor, security.CHANGE_STATUS, author, status=USER.INACTIVE)
        if problem:
            raise reports.ReportError(_(problem))
    kind = reports.kind_of(target)
    label = f"post “{target.title}”" if isinstance(target, Post) else f"comment {target.id}"
    audit.record(
        AUDIT.ACTION_RESOLVE_REPORTS,
        AUDIT.OBJECT_POST if isinstance(target, Post) else AUDIT.OBJECT_COMMENT,
        target.id,
        summary=f"{decision.title()}: {count} report(s) on {label} by {author.email}"
        + (", author deactivated" if deactivate else ""),
        changes={"open reports": [count, 0], "decision": [None, decision]},
    )
    if decision == REPORT.DELETE:
        if isinstance(target, Post):
            delete_post(target, actor=actor)
        else:
            comments.delete_comment(target, actor=actor)
    else:
        if decision == REPORT.DISMISS and reports.is_auto_hidden(target):
            reports.restore(target, actor=actor)
        elif decision == REPORT.HIDE:
            reports.hide(target, actor=actor)
        reports.close_reports(target, RESOLVED_AS[decision], actor=actor)
    if deactivate:
        users.change_account(
            author,
            actor=actor,
            status=USER.INACTIVE,
            reason=f"reported {kind} #{target.id}",
        )
    db.session.commit()
    return count


# -- accounts with their content -------------------------------------------------


def account_content(user: User) -> tuple[int, int]:
    """Return how many posts and comments ``user`` wrote (for the delete page)."""
    post_count = db.session.execute(
        select(func.count(Post.id)).where(Post.author_id == user.id)
    ).scalar_one()
    comment_count = db.session.execute(
        select(func.count(Comment.id)).where(Comment.author_id == user.id)
    ).scalar_one()
    return post_count, comment_count


def _forget_posts_by(author: User) -> None:
    """Delete every post ``author`` wrote and all comments under them."""
    ids = select(Post.id).where(Post.author_id == author.id)
    reports.forget_reports_on_posts(ids)
    db.session.execute(
        delete(Comment).where(Comment.post_id.in_(ids)).execution_options(synchronize_session=False)
    )
    # Their tags too: SQLite (without foreign keys on) would leave the links behind.
    db.session.execute(
        delete(post_tags)
        .where(post_tags.c.post_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(Post).where(Post.author_id == author.id).execution_options(synchronize_session=False)
    )


def delete_account(
    user: User, *, actor: User | None, keep_content: bool, by_owner: bool = False
) -> None:
    """Delete an account; its posts and comments go with it or move to "Deleted user".

    ``users.check_delete`` decides whether it may go (only an ADMIN may, never
    on themselves, never the last active ADMIN). ``by_owner`` is the account
    deleting itself ("Delete my account"): the gate's ``close`` decides then
    (anyone, of their own account, never the last active ADMIN).
    """
    if by_owner:
        problem = security.refusal(actor, security.CLOSE, user)
        if problem:
            raise users.AccountError(problem)
    else:
        users.check_delete(user, actor=actor)
    post_count, comment_count = account_content(user)
    if keep_content:
        placeholder = users.deleted_user_placeholder()
        db.session.execute(
            update(Post).where(Post.author_id == user.id).values(author_id=placeholder.id)
        )
        db.session.execute(
            update(Comment).where(Comment.author_id == user.id).values(author_id=placeholder.id)
        )
    else:
        reports.forget_reports_on_comments_by(user)
        comments.forget_comments_by(user)
        _forget_posts_by(user)
    reports.forget_reports_by(user)
    # What this account did stays on record without it (SQLite may not enforce SET NULL).
    db.session.execute(
        update(Comment).where(Comment.moderated_by_id == user.id).values(moderated_by_id=None)
    )
    db.session.execute(
        update(Email).where(Email.created_by_id == user.id).values(created_by_id=None)
    )
    audit.record(
        AUDIT.ACTION_DELETE,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Deleted {user.email}; {post_count} post(s) and {comment_count} comment(s) "
        + ("kept under “Deleted user”" if keep_content else "deleted"),
        changes={
            "name": [user.name, None],
            "email": [user.email, None],
            "role": [USER.ROLE[user.role], None],
        },
    )
    # After the event above, which names this account as its actor when it deleted itself.
    db.session.execute(
        update(AuditEvent).where(AuditEvent.actor_id == user.id).values(actor_id=None)
    )
    # Its sessions, second factor and provider identities go too (SQLite may
    # not enforce ON DELETE CASCADE, and may give a later account the same id).
    sessions.end_all(user)
    mfa.forget(user)
    providers.forget_identities(user)
    # Its data exports too: a later account given the same id must never find them.
    db.session.execute(delete(DataExport).where(DataExport.user_id == user.id))
    db.session.execute(delete(User).where(User.id == user.id))
    db.session.commit()


# -- mail to accounts ------------------------------------------------------------


def account_address(email: str) -> str:
    """Return the stored address of the account ``email`` names, in any case.

    Mail to an account goes to what it stored, never to what was typed.
    """
    user = users.get_by_email(email)
    if user is None:
        raise emails.QueueError(_("No account uses that address."))
    return user.email


def account_address_by_id(user_id: int) -> str:
    """Return the stored address of the account with ``user_id`` (a picked account)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise emails.QueueError(_("No such account."))
    return user.email


def recipients(role: int | None = None, status: int | None = None) -> Select[tuple[User]]:
    """Select the accounts a broadcast with this role and status goes to, by id.

    Disabled (INACTIVE) accounts are left out unless that status is asked for.
    """
    if role is not None and role not in USER.ROLE:
        raise emails.QueueError(f"Unknown role {role!r}.")
    if status is not None and status not in USER.STATUS:
        raise emails.QueueError(f"Unknown status {status!r}.")
    query = select(User).order_by(User.id)
    if role is not None:
        query = query.where(User.role == role)
    if status is None:
        query = query.where(User.status != USER.INACTIVE)
    else:
        query = query.where(User.status == status)
    return query


def count_recipients(role: int | None = None, status: int | None = None) -> int:
    """Count the accounts ``broadcast`` would write to."""
    query = recipients(role, status).with_only_columns(func.count(User.id)).order_by(None)
    return int(db.session.execute(query).scalar_one())


def count_suppressed_recipients(role: int | None = None, status: int | None = None) -> int:
    """Count the accounts ``broadcast`` would skip: their address is on the suppression list."""
    query = (
        recipients(role, status)
        .with_only_columns(func.count(User.id))
        .where(suppressions.covering(User.email, EMAIL.BROADCAST))
        .order_by(None)
    )
    return int(db.session.execute(query).scalar_one())


def broadcast(
    subject: str,
    body: str,
    *,
    role: int | None = None,
    status: int | None = None,
    created_by_id: int | None = None,
    priority: int = EMAIL.NORMAL,
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Queue one message to every matching account's stored address; return how many.

    Everything that could refuse the whole broadcast (subject, body, sender,
    filters, priority, schedule) is checked before the first row is queued. Accounts are
    read by id in pages of ``emails.CHUNK_SIZE`` and each page is committed
    before the next is read, so memory stays flat however many accounts match;
    a server-side cursor would not survive those commits. ``progress`` receives
    the number of accounts handled in each page. A stored address the queue
    refuses (left over from before validation) is skipped and logged, not
    allowed to stop the rest. An address on the suppression list is skipped.
    """
    subject, body = emails.check_broadcast(
        subject, body, priority, scheduled_at=scheduled_at, expires_at=expires_at
    )
    scheduled_at, expires_at = emails.check_schedule(scheduled_at, expires_at, priority=priority)
    query = recipients(role, status).with_only_columns(
        User.id,
        User.email,
        User.locale,
        User.timezone,
        # Read with the page: an address on the suppression list is skipped.
        suppressions.covering(User.email, EMAIL.BROADCAST),
    )
    context = emails.message_context(body)
    queued = 0
    last_id = 0
    while True:
        page = db.session.execute(query.where(User.id > last_id).limit(emails.CHUNK_SIZE)).all()
        if not page:
            break
        for user_id, address, locale, zone, suppressed in page:
            if suppressed:
                continue
            try:
                enqueue(
                    address,
                    subject,
                    emails.BROADCAST_TEMPLATE,
                    context,
                    priority=priority,
                    created_by_id=created_by_id,
                    scheduled_at=scheduled_at,
                    expires_at=expires_at,
                    # The staff's text as written; the frame in each reader's language.
                    reader=Reader(user_id, locale, zone),
                    category=EMAIL.BROADCAST,
                )
            except InvalidHeader as error:
                current_app.logger.warning(
                    "broadcast: skipped account %s (%r): %s", user_id, address, error
                )
                continue
            queued += 1
        # The session holds committed rows only weakly, so pages do not pile up.
        db.session.commit()
        last_id = page[-1][0]
        if progress is not None:
            progress(len(page))
    if queued:
        audit.record(
            AUDIT.ACTION_BROADCAST,
            AUDIT.OBJECT_EMAIL,
            summary=f"Broadcast “{subject}” to {queued} account(s)",
            changes={
                "subject": [None, subject],
                # The audience, by name as every other event names roles and statuses.
                **({"role": [None, USER.ROLE[role]]} if role is not None else {}),
                **({"status": [None, USER.STATUS[status]]} if status is not None else {}),
                **emails.schedule_changes(scheduled_at, expires_at),
            },
        )
        db.session.commit()
    return queued


def preview_broadcast(
    subject: str,
    body: str,
    *,
    role: int | None = None,
    status: int | None = None,
    priority: int = EMAIL.NORMAL,
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> emails.Preview:
    """Show what ``broadcast`` would queue, and queue nothing.

    The same checks refuse the same broadcasts; the first accounts come in
    the order ``broadcast`` writes to them, and the message is rendered as
    it renders it (in the site's language, like every broadcast row).
    """
    emails.check_broadcast(
        subject, body, priority, scheduled_at=scheduled_at, expires_at=expires_at
    )
    first = recipients(role, status).with_only_columns(User.email)
    addresses = db.session.execute(first.limit(emails.PREVIEW_RECIPIENTS)).scalars()
    return emails.preview(
        list(addresses),
        count_recipients(role, status),
        subject,
        body,
        scheduled_at=scheduled_at,
        expires_at=expires_at,
        skipped=count_suppressed_recipients(role, status),
    )
