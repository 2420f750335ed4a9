"""Your data: a JSON file of everything the site keeps about an account, and deleting it.

The export holds the account (never its password hash, second-factor secret,
recovery codes or session tokens), its posts, comments and reports, the
messages sent to its address, and its audit events. A small one is streamed
to the browser at once; one with more than ``DATA_EXPORT_INLINE_MAX_ROWS``
rows is queued, built by ``manage.py privacy build-exports`` (run it from
cron, or beside the email worker), and announced by email with a signed link
that works, once signed in, until ``DATA_EXPORT_TOKEN_MAX_AGE`` passes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from portal import operations
from portal import security
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails import suppressions
from portal.emails.models import Email
from portal.emails.queue import enqueue
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.privacy import constants as PRIVACY
from portal.privacy.models import DataExport
from portal.reports.models import Report
from portal.urls import external_url
from portal.users import constants as USER
from portal.users import mfa
from portal.users import services as users
from portal.users.models import ProviderIdentity
from portal.users.models import User
from portal.users.models import UserSession

EXPORT_SALT = "portal.privacy.export"
# Rows read per query while writing a section: memory stays flat however long it is.
PAGE_SIZE = 500


class PrivacyError(Exception):
    """A request the rules refuse; the message is safe to show."""


# -- what an export holds -----------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _account(user: User) -> dict[str, Any]:
    """The account's own fields; nothing that could sign in as it."""
    identities = db.session.execute(
        select(ProviderIdentity).where(ProviderIdentity.user_id == user.id)
    ).scalars()
    browsers = db.session.execute(
        select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)
    ).scalars()
    standing = suppressions.standing(user.email)
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "handle": user.handle,
        "role": USER.ROLE[user.role],
        "status": USER.STATUS[user.status],
        "created_at": _iso(user.created_at),
        "confirmed_at": _iso(user.confirmed_at),
        "last_login_at": _iso(user.last_login_at),
        "login_count": user.login_count,
        "notify_comments": user.notify_comments,
        "notify_new_device": user.notify_new_device,
        "locale": user.locale,
        "timezone": user.timezone,
        "second_factor": mfa.is_enrolled(user),
        "email_categories_refused": sorted(EMAIL.CATEGORY[c] for c in standing.refused),
        "sign_in_providers": [
            {
                "provider": identity.provider,
                "email": identity.email,
                "linked_at": _iso(identity.created_at),
                "last_used_at": _iso(identity.last_used_at),
            }
            for identity in identities
        ],
        "sessions": [
            {
                "device": browser.device,
                "address": browser.address,
                "started_at": _iso(browser.created_at),
                "last_seen_at": _iso(browser.last_seen_at),
                "second_factor": browser.second_factor,
            }
            for browser in browsers
        ],
    }


def _post(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "title": post.title,
        "slug": post.slug,
        "status": POST.STATUS.get(post.status, str(post.status)),
        "body": post.body,
        "created_at": _iso(post.created_at),
        "updated_at": _iso(post.updated_at),
        "published_at": _iso(post.published_at),
    }


def _comment(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "post_id": comment.post_id,
        "status": COMMENT.STATUS.get(comment.status, str(comment.status)),
        "body": comment.body,
        "created_at": _iso(comment.created_at),
        "updated_at": _iso(comment.updated_at),
    }


def _email(email: Email) -> dict[str, Any]:
    return {
        "id": email.id,
        "category": EMAIL.CATEGORY.get(email.category, str(email.category)),
        "from": email.from_address,
        "to": email.to_address,
        "subject": email.subject,
        "state": EMAIL.STATE.get(email.state, str(email.state)),
        "created_at": _iso(email.created_at),
        "sent_at": _iso(email.sent_at),
        # A body holding a sign-in, reset or confirmation link stays out of the file.
        "text_body": None if email.sensitive else email.text_body,
    }


def _event(event: AuditEvent, user: User) -> dict[str, Any]:
    mine = event.actor_id == user.id
    return {
        "id": event.id,
        "created_at": _iso(event.created_at),
        # Staff who acted on the account are named by their role in it, not by name.
        "by": "you" if mine else ("staff" if event.source == AUDIT.SOURCE_ADMIN else "the site"),
        "source": AUDIT.SOURCES.get(event.source, event.source),
        "address": event.address if mine else None,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "summary": event.summary,
        "changes": event.changes,
    }


def _reports(user: User) -> Select[Any] | None:
    """The reports ``user`` filed, oldest first: what was reported and why.

    Never who else reported the same thing, nor which staff member resolved it.
    """
    return select(Report).where(Report.reporter_id == user.id).order_by(Report.id)


def _report(report: Any) -> dict[str, Any]:
    """One report as the file holds it: its own columns, times in ISO-8601."""
    return {
        column.key: _iso(value) if isinstance(value, datetime) else value
        for column in report.__table__.columns
        if column.key != "resolved_by_id"
        for value in (getattr(report, column.key),)
    }


def _sections(user: User) -> list[tuple[str, Select[Any] | None, Any]]:
    """Each list in the file: its key, its query by id (None: empty), how a row is written."""
    sections: list[tuple[str, Select[Any] | None, Any]] = [
        ("posts", select(Post).where(Post.author_id == user.id).order_by(Post.id), _post),
        (
            "comments",
            select(Comment).where(Comment.author_id == user.id).order_by(Comment.id),
            _comment,
        ),
    ]
    sections.append(("reports", _reports(user), _report))
    sections.append(
        (
            "emails",
            select(Email)
            .where(func.lower(Email.to_address) == user.email.lower())
            .order_by(Email.id),
            _email,
        )
    )
    sections.append(
        (
            "audit_events",
            select(AuditEvent)
            .where(
                or_(
                    AuditEvent.actor_id == user.id,
                    (AuditEvent.object_type == AUDIT.OBJECT_USER)
                    & (AuditEvent.object_id == str(user.id)),
                )
            )
            .order_by(AuditEvent.id),
            lambda event: _event(event, user),
        )
    )
    return sections


def row_count(user: User) -> int:
    """Count the rows an export of ``user`` holds, to choose how to build it."""
    total = 0
    for _name, query, _write in _sections(user):
        if query is None:
            continue
        counted = query.with_only_columns(func.count()).order_by(None)
        total += int(db.session.execute(counted).scalar_one())
    return total


def _paged(query: Select[Any]) -> Iterator[Any]:
    """Yield the rows of ``query`` a page at a time, by id (keyset, not OFFSET)."""
    entity = query.column_descriptions[0]["entity"]
    last = 0
    while True:
        page = list(db.session.execute(query.where(entity.id > last).limit(PAGE_SIZE)).scalars())
        if not page:
            return
        yield from page
        last = page[-1].id
        # Rows written are not needed again: keep the session small.
        for row in page:
            db.session.expunge(row)


def iter_export(user: User) -> Iterator[str]:
    """Yield the export of ``user`` as JSON text, a piece at a time."""
    head = {
        "format": PRIVACY.FORMAT_NAME,
        "version": PRIVACY.FORMAT_VERSION,
        "site": current_app.config["PORTAL_BASE_URL"],
        "exported_at": utcnow().isoformat(),
        "account": _account(user),
    }
    yield json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    for name, query, write in _sections(user):
        yield f',\n "{name}": ['
        rows = _paged(query) if query is not None else iter(())
        for index, row in enumerate(rows):
            yield ("," if index else "") + "\n  " + json.dumps(write(row), ensure_ascii=False)
        yield "\n ]"
    yield "\n}\n"


def export_filename(user: User) -> str:
    return f"{user.handle}-data-{utcnow():%Y%m%d}.json"


def is_large(user: User) -> bool:
    """Tell whether ``user``'s export is built in the background rather than streamed."""
    return row_count(user) > current_app.config["DATA_EXPORT_INLINE_MAX_ROWS"]


# -- exports built in the background --------------------------------------------------


def pending_export(user: User) -> DataExport | None:
    """Return the export of ``user`` still waiting or being built, if any."""
    return db.session.execute(
        select(DataExport)
        .where(
            DataExport.user_id == user.id,
            DataExport.state.in_((PRIVACY.QUEUED, PRIVACY.BUILDING)),
        )
        .order_by(DataExport.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def request_export(user: User) -> tuple[DataExport, bool]:
    """Queue a background export of ``user``; return it and whether it is new.

    One at a time: asking again while one waits returns that one.
    """
    waiting = pending_export(user)
    if waiting is not None:
        return waiting, False
    export = DataExport(user_id=user.id, state=PRIVACY.QUEUED, created_at=utcnow())
    db.session.add(export)
    db.session.commit()
    return export, True


def _claim(export_id: int) -> bool:
    now = utcnow()
    claimed = db.session.execute(
        update(DataExport)
        .where(
            DataExport.id == export_id,
            or_(
                DataExport.state == PRIVACY.QUEUED,
                (DataExport.state == PRIVACY.BUILDING) & (DataExport.locked_until < now),
            ),
        )
        .values(
            state=PRIVACY.BUILDING,
            locked_until=now + timedelta(seconds=PRIVACY.BUILD_LEASE_SECONDS),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return bool(getattr(claimed, "rowcount", 0))


def _due() -> list[int]:
    now = utcnow()
    return list(
        db.session.execute(
            select(DataExport.id)
            .where(
                or_(
                    DataExport.state == PRIVACY.QUEUED,
                    (DataExport.state == PRIVACY.BUILDING) & (DataExport.locked_until < now),
                )
            )
            .order_by(DataExport.id)
        ).scalars()
    )


def build_pending(limit: int | None = None) -> tuple[int, int]:
    """Build every waiting export (up to ``limit``) and mail each link; return (built, failed).

    Any number of builders may run: each export is claimed by one conditional
    UPDATE, and a claim a dead builder left is taken again after its lease.
    """
    built = failed = 0
    for export_id in _due()[:limit]:
        if not _claim(export_id):
            continue
        export = db.session.get(DataExport, export_id)
        user = db.session.get(User, export.user_id) if export is not None else None
        if export is None or user is None:
            continue
        try:
            content = gzip.compress("".join(iter_export(user)).encode())
        except Exception as error:  # noqa: BLE001 - one broken export must not stop the rest
            db.session.rollback()
            current_app.logger.exception("could not build data export %s", export_id)
            export = db.session.get(DataExport, export_id)
            assert export is not None
            export.state, export.error = PRIVACY.FAILED, f"{type(error).__name__}: {error}"
            export.locked_until = None
            db.session.commit()
            failed += 1
            continue
        now = utcnow()
        export.state = PRIVACY.READY
        export.content = content
        export.size = len(content)
        export.finished_at = now
        export.locked_until = None
        export.expires_at = now + timedelta(seconds=current_app.config["DATA_EXPORT_TOKEN_MAX_AGE"])
        enqueue(
            user.email,
            _l("Your %(site)s data is ready", site=current_app.config["PORTAL_NAME"]),
            "data_export_ready",
            {"user": user, "link": download_url(export), "expires_at": export.expires_at},
            priority=EMAIL.HIGH,
            sensitive=True,
            reader=user,
            category=EMAIL.ACCOUNT,
        )
        db.session.commit()
        built += 1
    return built, failed


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=EXPORT_SALT)


def download_url(export: DataExport) -> str:
    token = _serializer().dumps({"export": export.id, "uid": export.user_id})
    return external_url("privacy.download_export", token=token)


def export_for_download(token: str, user: User) -> DataExport:
    """Return the ready export a link names, if it is ``user``'s; raise ``PrivacyError``."""
    try:
        payload = _serializer().loads(
            token, max_age=current_app.config["DATA_EXPORT_TOKEN_MAX_AGE"]
        )
    except SignatureExpired:
        raise PrivacyError(_("This link has expired: ask for your data again.")) from None
    except BadSignature:
        raise PrivacyError(_("This link is not valid.")) from None
    if not isinstance(payload, dict) or payload.get("uid") != user.id:
        # Another account's link: say no more than for a forged one.
        raise PrivacyError(_("This link is not valid."))
    export = db.session.get(DataExport, payload.get("export"))
    now = utcnow()
    if (
        export is None
        or export.user_id != user.id
        or export.state != PRIVACY.READY
        or (export.expires_at is not None and export.expires_at <= now)
    ):
        raise PrivacyError(_("This file is no longer available: ask for your data again."))
    return export


def export_chunks(export: DataExport) -> Iterable[bytes]:
    """The JSON of a built export."""
    assert export.content is not None
    yield gzip.decompress(export.content)


# -- deleting the account -------------------------------------------------------------


def account_content(user: User) -> tuple[int, int]:
    """Return how many posts and comments ``user`` wrote (the delete page says)."""
    return operations.account_content(user)


def check_close(user: User, password: str, code: str | None) -> None:
    """Refuse (``PrivacyError``) unless ``user`` may delete itself with this password and code.

    The password first: a wrong one spends no second-factor code.
    """
    problem = security.refusal(user, security.CLOSE, user)
    if problem:
        raise PrivacyError(problem)
    if not user.check_password(password):
        raise PrivacyError(_("The password is not correct."))
    if mfa.is_enrolled(user):
        if not code:
            raise PrivacyError(_("Type a code from your authenticator app too."))
        try:
            mfa.require_code(user, code)
        except mfa.SecondFactorError as error:
            raise PrivacyError(str(error)) from None


def close_account(user: User, password: str, code: str | None, *, keep_content: bool) -> str:
    """Delete ``user`` after its password (and code); return the address it had.

    Its posts and comments go with it, or stay under "Deleted user" with
    ``keep_content``. A confirmation goes to the address it had, in the same
    transaction as the deletion: account mail, which nothing suppresses.
    """
    check_close(user, password, code)
    address = user.email
    enqueue(
        address,
        _l("Your %(site)s account is deleted", site=current_app.config["PORTAL_NAME"]),
        "account_deleted",
        {"user": user, "keep_content": keep_content},
        priority=EMAIL.HIGH,
        reader=user,
        category=EMAIL.ACCOUNT,
    )
    try:
        operations.delete_account(user, actor=user, keep_content=keep_content, by_owner=True)
    except users.AccountError as error:
        db.session.rollback()
        raise PrivacyError(str(error)) from None
    return address
