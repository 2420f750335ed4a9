"""Account events: signing in and out, recovering and securing an account.

Each is an audit event about the account itself (object ``user``, id the
account's), so staff find it on the audit screen and the owner sees the
recent ones on their account page. The actor is the person: the account for
what it did signed in (or proved with a link from its mailbox), nobody for a
refused sign-in. No event holds a password, a code or a link's token.

These functions add the event to the caller's transaction; the caller's
commit keeps it, together with the change it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask import has_request_context
from flask import request
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select
from sqlalchemy import exists
from sqlalchemy import select

from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.audit.models import AuditEvent
from portal.emails import constants as EMAIL
from portal.emails.queue import enqueue
from portal.extensions import db
from portal.urls import external_url
from portal.users.devices import UNKNOWN_DEVICE
from portal.users.devices import describe
from portal.users.models import User

# How the account page names each account event.
ACTION_LABELS = {
    AUDIT.ACTION_SIGN_IN: _l("Signed in"),
    AUDIT.ACTION_SIGN_IN_FAILED: _l("Sign-in refused"),
    AUDIT.ACTION_SIGN_OUT: _l("Signed out"),
    AUDIT.ACTION_RESET_REQUESTED: _l("Password reset requested"),
    AUDIT.ACTION_RESET_DONE: _l("Password reset"),
    AUDIT.ACTION_EMAIL_CHANGE_REQUESTED: _l("Email change requested"),
    AUDIT.ACTION_EMAIL_CHANGED: _l("Email address changed"),
    AUDIT.ACTION_PASSWORD_CHANGED: _l("Password changed"),
    AUDIT.ACTION_MFA_ENROLLED: _l("Two-step sign-in turned on"),
    AUDIT.ACTION_MFA_RESET: _l("Two-step sign-in reset"),
    AUDIT.ACTION_MFA_DISABLED: _l("Two-step sign-in turned off"),
    AUDIT.ACTION_SESSION_ENDED: _l("Session ended"),
    AUDIT.ACTION_PROVIDER_LINKED: _l("Sign-in provider linked"),
    AUDIT.ACTION_PROVIDER_UNLINKED: _l("Sign-in provider unlinked"),
}
# How many events the account page shows, newest first.
RECENT_LIMIT = 10
# Why a sign-in was refused, as the event says it (never shown to the visitor).
WRONG_PASSWORD = "wrong password"
ACCOUNT_DISABLED = "account disabled"
NEW_DEVICE_TEMPLATE = "new_device"
SUMMARY_MAX_LENGTH = 500


@dataclass(frozen=True)
class AccountEvent:
    """One line of the account page's security events."""

    created_at: datetime
    action: str
    label: str
    summary: str
    address: str | None


# -- recording -----------------------------------------------------------------


def current_device() -> str:
    """Name the browser this request came from, e.g. "Firefox 121 on Windows 10"."""
    if not has_request_context():
        return UNKNOWN_DEVICE
    return describe(request.user_agent.string)


def _label(user: User) -> str:
    return f"{user.name} <{user.email}>"


def _record(
    action: str,
    user: User,
    *,
    summary: str,
    changes: dict[str, list[Any]] | None = None,
    by_account: bool = False,
) -> AuditEvent:
    """Add an account event; ``by_account`` names the account as the actor.

    A sign-in is recorded while the session is being set up, and a link is
    followed by whoever holds it, signed in or not: the account is who acted.
    """
    event = audit.record(
        action, AUDIT.OBJECT_USER, user.id, summary=summary[:SUMMARY_MAX_LENGTH], changes=changes
    )
    if by_account:
        event.actor_id = user.id
        event.actor_label = _label(user)[:300]
    return event


def sign_in_summary(device: str) -> str:
    """Return the summary of a sign-in from ``device`` (also how earlier devices are found)."""
    return f"Signed in on {device}"[:SUMMARY_MAX_LENGTH]


def is_new_device(user: User, device: str) -> bool:
    """Tell whether the account signed in before, but never from ``device``.

    A first sign-in ever is not "new": there is nothing to compare it with.
    One query on the account's events (the object index).
    """
    earlier = select(AuditEvent.id).where(
        AuditEvent.object_type == AUDIT.OBJECT_USER,
        AuditEvent.object_id == str(user.id),
        AuditEvent.action == AUDIT.ACTION_SIGN_IN,
    )
    signed_in_before, seen_here = db.session.execute(
        select(
            exists(earlier),
            exists(earlier.where(AuditEvent.summary == sign_in_summary(device))),
        )
    ).one()
    return bool(signed_in_before) and not seen_here


def signed_in(user: User, *, second_factor: bool = False) -> AuditEvent:
    """Record a successful sign-in; mail the account if it asked to hear of new devices.

    Called once the session is set up; the caller's commit (``record_login``)
    keeps the event and the message with the sign-in itself.
    """
    device = current_device()
    # Asked before the event is added, so this sign-in is not its own precedent.
    new_device = user.notify_new_device and is_new_device(user, device)
    event = _record(
        AUDIT.ACTION_SIGN_IN,
        user,
        summary=sign_in_summary(device),
        changes={"second_factor": [None, True]} if second_factor else None,
        by_account=True,
    )
    if new_device:
        _queue_new_device_mail(user, event, device)
    return event


def _queue_new_device_mail(user: User, event: AuditEvent, device: str) -> None:
    enqueue(
        user.email,
        _l("New sign-in to your %(site)s account", site=current_app.config["PORTAL_NAME"]),
        NEW_DEVICE_TEMPLATE,
        {
            "user": user,
            "when": event.created_at,
            "device": device,
            "address": event.address,
            "sessions_link": external_url("users.session_list"),
            "password_link": external_url("users.change_password"),
        },
        priority=EMAIL.HIGH,
        created_by_id=user.id,
        reader=user,
    )


def sign_in_failed(user: User, *, reason: str) -> AuditEvent:
    """Record a refused sign-in of an existing account (the typed password never)."""
    return _record(
        AUDIT.ACTION_SIGN_IN_FAILED,
        user,
        summary=f"Sign-in refused on {current_device()}: {reason}",
    )


def signed_out(user: User) -> AuditEvent:
    """Record that ``user`` signed out of this browser (before the session ends)."""
    return _record(AUDIT.ACTION_SIGN_OUT, user, summary=f"Signed out on {current_device()}")


def reset_requested(user: User, *, sent: bool) -> AuditEvent:
    """Record a password reset asked for the account; ``sent`` tells whether a link went."""
    summary = "Password reset link sent" if sent else "Password reset refused: account disabled"
    return _record(AUDIT.ACTION_RESET_REQUESTED, user, summary=summary)


def reset_done(user: User) -> AuditEvent:
    """Record a password chosen from a reset (or invitation) link."""
    return _record(
        AUDIT.ACTION_RESET_DONE,
        user,
        summary="Password set from an emailed link; every session ended",
        changes={"password": ["", ""]},
        by_account=True,
    )


def email_change_requested(user: User, new_address: str) -> AuditEvent:
    """Record a request to move the account to ``new_address``.

    The summary, which the owner's page shows, says the same whether or not
    another account has the address; the address itself is only in the
    changes, on the staff's audit screen.
    """
    return _record(
        AUDIT.ACTION_EMAIL_CHANGE_REQUESTED,
        user,
        summary="Asked to change the email address; a link went to the new one",
        changes={"email": [user.email, new_address]},
    )


def email_changed(user: User, old_address: str) -> AuditEvent:
    """Record the account's move to its new (current) address from the link."""
    return _record(
        AUDIT.ACTION_EMAIL_CHANGED,
        user,
        summary="Email address changed from the link sent to the new address",
        changes={"email": [old_address, user.email]},
        by_account=True,
    )


def password_changed(user: User) -> AuditEvent:
    """Record a password change made signed in; other sessions ended."""
    return _record(
        AUDIT.ACTION_PASSWORD_CHANGED,
        user,
        summary="Password changed; other sessions ended",
        changes={"password": ["", ""]},
    )


# -- reading -------------------------------------------------------------------


def recent_query(user: User, limit: int = RECENT_LIMIT) -> Select[datetime, str, str, str | None]:
    """Select the account's latest account events, newest first (on the object index)."""
    return (
        select(AuditEvent.created_at, AuditEvent.action, AuditEvent.summary, AuditEvent.address)
        .where(
            AuditEvent.object_type == AUDIT.OBJECT_USER,
            AuditEvent.object_id == str(user.id),
            AuditEvent.action.in_(AUDIT.ACCOUNT_ACTIONS),
        )
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )


def recent(user: User, limit: int = RECENT_LIMIT) -> list[AccountEvent]:
    """Return the account's latest account events, newest first, in one query."""
    rows = db.session.execute(recent_query(user, limit)).all()
    return [
        AccountEvent(
            created_at=row.created_at,
            action=row.action,
            label=str(ACTION_LABELS.get(row.action, row.action)),
            summary=row.summary,
            address=row.address,
        )
        for row in rows
    ]
