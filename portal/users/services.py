"""The account rules. Views, admin screens and commands all call these."""

from __future__ import annotations

import secrets
from functools import cache
from typing import Any

from flask import current_app
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash
from zxcvbn import zxcvbn

from portal.audit import services as audit
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.addresses import InvalidHeader
from portal.emails.addresses import normalize_address
from portal.emails.queue import enqueue
from portal.extensions import db
from portal.slugs import slugify
from portal.slugs import unique_slug
from portal.urls import external_url
from portal.users import constants as USER
from portal.users import tokens
from portal.users.models import User


class AccountError(Exception):
    """A request the account rules refuse; the message is safe to show."""


class AccountDisabled(AccountError):
    """The account exists but may not sign in."""


ZXCVBN_MAX_LENGTH = 72

DISABLED_MESSAGE = (
    "This account is disabled. Contact the site's staff if you think this is a mistake."
)


# -- lookups and checks --------------------------------------------------------


def get_by_email(email: str) -> User | None:
    """Return the account with ``email``, compared without regard to case."""
    wanted = email.strip().lower()
    if not wanted:
        return None
    return db.session.execute(
        select(User).where(func.lower(User.email) == wanted)
    ).scalar_one_or_none()


def email_taken(email: str, *, exclude: User | None = None) -> bool:
    """Tell whether another account already uses ``email`` in any case."""
    found = get_by_email(email)
    return found is not None and (exclude is None or found.id != exclude.id)


def clean_email(email: str) -> str:
    """Return ``email`` normalised for storage; raise ``AccountError`` if invalid."""
    try:
        return normalize_address(email, field="email address")
    except InvalidHeader as error:
        raise AccountError(str(error)) from None


def password_problem(password: str, user_inputs: tuple[str, ...] = ()) -> str | None:
    """Explain why ``password`` is refused, or return None when it is acceptable."""
    config = current_app.config
    low, high = config["PASSWORD_MIN_LENGTH"], config["PASSWORD_MAX_LENGTH"]
    if len(password) < low:
        return f"Use at least {low} characters."
    if len(password) > high:
        return f"Use at most {high} characters."
    inputs = [value for value in user_inputs if value]
    inputs += [part for value in inputs for part in value.replace("@", " ").split()]
    # zxcvbn refuses input past 72 characters; the estimate of a prefix is a
    # lower bound for the whole, which is still hashed and checked in full.
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=inputs)
    if result["score"] >= config["PASSWORD_MIN_SCORE"]:
        return None
    feedback = result.get("feedback") or {}
    hints = [feedback.get("warning") or "This password is easy to guess."]
    hints += feedback.get("suggestions") or []
    if not feedback.get("suggestions"):
        hints.append("Add another word or two; uncommon words are better.")
    return " ".join(hint.rstrip(".") + "." for hint in hints if hint)


def _check_password(password: str, user_inputs: tuple[str, ...]) -> None:
    problem = password_problem(password, user_inputs)
    if problem:
        raise AccountError(problem)


@cache
def _dummy_hash() -> str:
    # Checked against when no account matches, so a miss costs as long as a hit.
    return generate_password_hash("portal-timing-equaliser")


# -- sign up, confirm, sign in -------------------------------------------------


def clean_name(name: str) -> str:
    """Return ``name`` trimmed; raise ``AccountError`` if empty or too long."""
    name = name.strip()
    if not name:
        raise AccountError("A name is required.")
    if len(name) > USER.NAME_MAX_LENGTH:
        raise AccountError(f"A name has at most {USER.NAME_MAX_LENGTH} characters.")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise AccountError("A name cannot contain control characters.")
    return name


def new_handle(name: str) -> str:
    """Return a free profile handle made from ``name`` ("Ada Lovelace" -> "ada-lovelace")."""
    base = slugify(name, max_length=USER.HANDLE_MAX_LENGTH, fallback="member")
    return unique_slug(
        User.handle,
        base,
        max_length=USER.HANDLE_MAX_LENGTH,
        reserved=USER.RESERVED_HANDLES | {USER.DELETED_HANDLE},
    )


def get_by_handle(handle: str) -> User | None:
    """Return the account whose public profile is /users/<handle>/, if any."""
    return db.session.execute(select(User).where(User.handle == handle)).scalar_one_or_none()


def create_account(
    name: str,
    email: str,
    password: str,
    *,
    role: int = USER.USER,
    status: int = USER.NEW,
) -> User:
    """Add an account after checking the address, its uniqueness and the password."""
    name = clean_name(name)
    address = clean_email(email)
    if email_taken(address):
        raise AccountError("An account with this email address already exists.")
    _check_password(password, (name, address))
    user = User(
        name=name,
        email=address,
        handle=new_handle(name),
        role=role,
        status=status,
        created_at=utcnow(),
    )
    if status == USER.ACTIVE:
        user.confirmed_at = user.created_at
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise AccountError("An account with this email address already exists.") from None
    return user


def register(name: str, email: str, password: str) -> User:
    """Create a NEW account and queue the email that confirms its address."""
    user = create_account(name, email, password)
    queue_confirmation(user)
    db.session.commit()
    return user


def queue_confirmation(user: User) -> None:
    """Queue a confirmation link to the account's stored address."""
    token = tokens.make(tokens.CONFIRM, {"uid": user.id, "email": tokens.fingerprint(user.email)})
    enqueue(
        user.email,
        f"Confirm your email address for {current_app.config['PORTAL_NAME']}",
        "confirm",
        {"user": user, "link": external_url("users.confirm", token=token)},
        priority=EMAIL.HIGH,
        sensitive=True,
        created_by_id=user.id,
    )


def resend_confirmation(user: User) -> None:
    """Queue a fresh confirmation link for a NEW account."""
    if user.status != USER.NEW:
        raise AccountError("This email address is already confirmed.")
    queue_confirmation(user)
    db.session.commit()


def _account_for(purpose: str, token: str) -> tuple[User, dict[str, Any]]:
    payload = tokens.read(purpose, token)
    user = db.session.get(User, payload.get("uid")) if isinstance(payload.get("uid"), int) else None
    if user is None:
        raise tokens.TokenError("This link is not valid.")
    return user, payload


def check_confirmation(token: str) -> User:
    """Return the account a confirmation link is for, if the link still works."""
    user, payload = _account_for(tokens.CONFIRM, token)
    if user.status != USER.NEW or payload.get("email") != tokens.fingerprint(user.email):
        raise tokens.TokenError("This link has already been used.")
    return user


def confirm_account(token: str) -> User:
    """Turn a NEW account ACTIVE from its confirmation link; the link then dies."""
    user = check_confirmation(token)
    user.status = USER.ACTIVE
    user.confirmed_at = utcnow()
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the account for these credentials, or None; raise ``AccountDisabled``.

    The work done is the same whether or not the address has an account, so
    the answer's timing does not tell either.
    """
    user = get_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    matches = user.check_password(password)
    if user.status == USER.INACTIVE:
        raise AccountDisabled(DISABLED_MESSAGE)
    return user if matches else None


def record_login(user: User) -> None:
    """Note a successful sign-in."""
    user.last_login_at = utcnow()
    user.login_count = (user.login_count or 0) + 1
    db.session.commit()


def end_other_sessions(user: User) -> None:
    """Invalidate every session signed with the account's current session id."""
    user.session_version = (user.session_version or 0) + 1


def logout_everywhere(user: User) -> None:
    """End every session of the account at its next request."""
    end_other_sessions(user)
    db.session.commit()


# -- passwords -----------------------------------------------------------------


def _reset_fingerprint(user: User) -> str:
    return tokens.fingerprint(f"{user.id}:{user.password_hash}")


def request_password_reset(email: str) -> None:
    """Queue a reset link to the stored address if an active account matches.

    Says nothing either way: the caller shows the same page for every address.
    """
    user = get_by_email(email)
    if user is None or user.status == USER.INACTIVE:
        return
    token = tokens.make(tokens.RESET, {"uid": user.id, "pw": _reset_fingerprint(user)})
    enqueue(
        user.email,
        f"Reset your {current_app.config['PORTAL_NAME']} password",
        "reset_password",
        {"user": user, "link": external_url("users.reset_password", token=token)},
        priority=EMAIL.HIGH,
        sensitive=True,
    )
    db.session.commit()


def check_reset(token: str) -> User:
    """Return the account a reset (or invitation) link is for, if the link still works."""
    try:
        user, payload = _account_for(tokens.RESET, token)
    except tokens.TokenError as error:
        if error.expired:
            raise
        user, payload = _account_for(tokens.INVITE, token)
    if payload.get("pw") != _reset_fingerprint(user):
        raise tokens.TokenError("This link has already been used.")
    if user.status == USER.INACTIVE:
        raise AccountDisabled(DISABLED_MESSAGE)
    return user


def reset_password(token: str, password: str) -> User:
    """Set a new password from a reset link; the link and all sessions then end.

    Following the link proves the address, so a NEW account becomes ACTIVE.
    """
    user = check_reset(token)
    set_password(user, password)
    if user.status == USER.NEW:
        user.status = USER.ACTIVE
        user.confirmed_at = utcnow()
    db.session.commit()
    return user


def set_password(user: User, password: str, *, audited: bool = False) -> None:
    """Check and store a new password and end the account's sessions.

    ``audited`` records that someone else (an operator) set it; the password
    itself never reaches the audit trail.
    """
    _check_password(password, (user.name, user.email))
    user.set_password(password)
    end_other_sessions(user)
    if audited:
        audit.record(
            "set_password",
            "user",
            user.id,
            summary=f"Password of {user.email} set",
            changes={"password": ["", ""]},
        )


def change_password(user: User, current: str, new: str) -> None:
    """Replace the password after checking the current one; other sessions end."""
    if not user.check_password(current):
        raise AccountError("The current password is not correct.")
    set_password(user, new)
    db.session.commit()


# -- profile and email change --------------------------------------------------


def update_profile(user: User, name: str, *, notify_comments: bool | None = None) -> None:
    """Change the account's display name and, if given, its comment notifications.

    The profile handle stays as it was, so links to the profile keep working.
    """
    user.name = clean_name(name)
    if notify_comments is not None:
        user.notify_comments = notify_comments
    db.session.commit()


def request_email_change(user: User, new_email: str) -> str:
    """Queue a link to the new address; nothing changes until it is followed."""
    address = clean_email(new_email)
    if address.lower() == user.email.lower():
        raise AccountError("This is already your email address.")
    if email_taken(address, exclude=user):
        raise AccountError("An account with this email address already exists.")
    token = tokens.make(tokens.EMAIL_CHANGE, {"uid": user.id, "old": user.email, "new": address})
    site = current_app.config["PORTAL_NAME"]
    enqueue(
        address,
        f"Confirm your new email address for {site}",
        "change_email",
        {
            "user": user,
            "new_email": address,
            "link": external_url("users.change_email", token=token),
        },
        priority=EMAIL.HIGH,
        sensitive=True,
        created_by_id=user.id,
    )
    enqueue(
        user.email,
        f"Your {site} email address is being changed",
        "change_email_notice",
        {"user": user, "new_email": address},
        priority=EMAIL.HIGH,
        created_by_id=user.id,
    )
    db.session.commit()
    return address


def check_email_change(token: str) -> tuple[User, str]:
    """Return the account and new address an email-change link is for."""
    user, payload = _account_for(tokens.EMAIL_CHANGE, token)
    if payload.get("old") != user.email or not isinstance(payload.get("new"), str):
        raise tokens.TokenError("This link has already been used.")
    return user, payload["new"]


def confirm_email_change(token: str) -> User:
    """Switch the account to its new address; the link then dies."""
    user, address = check_email_change(token)
    if email_taken(address, exclude=user):
        raise AccountError("An account with this email address already exists.")
    user.email = address
    if user.status == USER.NEW:
        user.status = USER.ACTIVE
        user.confirmed_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AccountError("An account with this email address already exists.") from None
    return user


# -- role and status -----------------------------------------------------------


def _is_last_active_admin(user: User) -> bool:
    if user.role != USER.ADMIN or user.status != USER.ACTIVE:
        return False
    others = db.session.execute(
        select(func.count(User.id)).where(
            User.role == USER.ADMIN, User.status == USER.ACTIVE, User.id != user.id
        )
    ).scalar_one()
    return others == 0


def set_role(user: User, role: int, *, actor: User | None = None) -> bool:
    """Give ``user`` a new role; return False if it already had it.

    ``actor`` is the person asking (None for a maintenance command run by an
    operator). Only an ADMIN may change roles, never their own, and the last
    active ADMIN keeps theirs.
    """
    if role not in USER.ROLE:
        raise AccountError(f"Unknown role {role!r}.")
    if actor is not None:
        if actor.id == user.id:
            raise AccountError("You cannot change your own role.")
        if not actor.is_admin:
            raise AccountError("Only an admin can change roles.")
    if user.role == role:
        return False
    if role != USER.ADMIN and _is_last_active_admin(user):
        raise AccountError("This is the last active admin; make another admin first.")
    audit.record(
        "set_role",
        "user",
        user.id,
        summary=f"Role of {user.email}: {USER.ROLE[user.role]} → {USER.ROLE[role]}",
        changes={"role": [USER.ROLE[user.role], USER.ROLE[role]]},
    )
    user.role = role
    end_other_sessions(user)
    db.session.commit()
    return True


def set_status(
    user: User,
    status: int,
    *,
    actor: User | None = None,
    reason: str | None = None,
    notify: bool = False,
) -> bool:
    """Give ``user`` a new status; return False if it already had it.

    Staff may activate or deactivate USER accounts; only an ADMIN may change a
    STAFF or ADMIN account. Nobody changes their own status, and the last
    active ADMIN stays active. ``reason`` goes into the audit event and, with
    ``notify``, into an email to the person.
    """
    if status not in USER.STATUS:
        raise AccountError(f"Unknown status {status!r}.")
    if actor is not None:
        if actor.id == user.id:
            raise AccountError("You cannot change your own status.")
        if not actor.is_staff:
            raise AccountError("Only staff can change an account's status.")
        if user.role != USER.USER and not actor.is_admin:
            raise AccountError("Only an admin can change the status of a staff or admin account.")
    if user.status == status:
        return False
    if status != USER.ACTIVE and _is_last_active_admin(user):
        raise AccountError("This is the last active admin; it must stay active.")
    reason = (reason or "").strip()[: USER.REASON_MAX_LENGTH] or None
    changes: dict[str, list[Any]] = {"status": [USER.STATUS[user.status], USER.STATUS[status]]}
    if reason:
        changes["reason"] = [None, reason]
    audit.record(
        "set_status",
        "user",
        user.id,
        summary=f"Status of {user.email}: {USER.STATUS[user.status]} → {USER.STATUS[status]}"
        + (f" ({reason})" if reason else ""),
        changes=changes,
    )
    if notify and status in (USER.ACTIVE, USER.INACTIVE):
        enqueue(
            user.email,
            f"Your {current_app.config['PORTAL_NAME']} account is "
            + ("active" if status == USER.ACTIVE else "disabled"),
            "account_status",
            {"user": user, "active": status == USER.ACTIVE, "reason": reason},
        )
    user.status = status
    if status == USER.ACTIVE and user.confirmed_at is None:
        user.confirmed_at = utcnow()
    if status == USER.INACTIVE:
        end_other_sessions(user)
    db.session.commit()
    return True


# -- accounts created and removed by an admin ----------------------------------


def create_admin(name: str, email: str, password: str) -> User:
    """Create an ACTIVE admin with a password typed by the operator (``manage.py``)."""
    user = create_account(name, email, password, role=USER.ADMIN, status=USER.ACTIVE)
    audit.record(
        "create",
        "user",
        user.id,
        summary=f"Created admin {user.email}",
        changes={"name": [None, user.name], "email": [None, user.email], "role": [None, "admin"]},
    )
    db.session.commit()
    return user


def invite_account(name: str, email: str, role: int, *, actor: User | None = None) -> User:
    """Create a NEW account and email it a link to choose its password.

    Nobody types a password for someone else: the account gets an unusable
    random one, and following the link (valid for a week) sets the real one
    and confirms the address.
    """
    if actor is not None and not actor.is_admin:
        raise AccountError("Only an admin can create accounts.")
    if role not in USER.ROLE:
        raise AccountError(f"Unknown role {role!r}.")
    user = create_account(name, email, secrets.token_urlsafe(32) + "-Aa1!", role=role)
    token = tokens.make(tokens.INVITE, {"uid": user.id, "pw": _reset_fingerprint(user)})
    enqueue(
        user.email,
        f"You are invited to {current_app.config['PORTAL_NAME']}",
        "invite",
        {
            "user": user,
            "inviter": actor,
            "link": external_url("users.reset_password", token=token),
        },
        priority=EMAIL.HIGH,
        sensitive=True,
    )
    audit.record(
        "create",
        "user",
        user.id,
        summary=f"Invited {user.email} as {USER.ROLE[role]}",
        changes={
            "name": [None, user.name],
            "email": [None, user.email],
            "role": [None, USER.ROLE[role]],
            "status": [None, USER.STATUS[user.status]],
        },
    )
    db.session.commit()
    return user


def edit_account(user: User, *, actor: User, name: str, role: int, status: int) -> bool:
    """Change an account's name, role and status at once (the admin's edit form).

    Every rule of ``set_role`` and ``set_status`` holds; nothing is saved unless
    all of it is allowed. Return whether anything changed.
    """
    if not actor.is_admin:
        raise AccountError("Only an admin can edit accounts.")
    name = clean_name(name)
    if role not in USER.ROLE or status not in USER.STATUS:
        raise AccountError("Choose a known role and status.")
    if actor.id == user.id and (role != user.role or status != user.status):
        raise AccountError("You cannot change your own role or status.")
    demoted = role != USER.ADMIN or status != USER.ACTIVE
    if demoted and _is_last_active_admin(user):
        raise AccountError("This is the last active admin; it must stay an active admin.")
    changed = False
    if name != user.name:
        audit.record(
            "update", "user", user.id, summary=f"Renamed {user.email}",
            changes={"name": [user.name, name]},
        )  # fmt: skip
        user.name = name
        db.session.commit()
        changed = True
    if role != user.role:
        changed = set_role(user, role, actor=actor) or changed
    if status != user.status:
        changed = set_status(user, status, actor=actor) or changed
    return changed


def account_content(user: User) -> tuple[int, int]:
    """Return how many posts and comments ``user`` wrote (for the delete page)."""
    from portal.comments.models import Comment
    from portal.posts.models import Post

    posts = db.session.execute(
        select(func.count(Post.id)).where(Post.author_id == user.id)
    ).scalar_one()
    comments = db.session.execute(
        select(func.count(Comment.id)).where(Comment.author_id == user.id)
    ).scalar_one()
    return posts, comments


def deleted_user_placeholder() -> User:
    """Return the account that keeps the posts and comments of deleted accounts."""
    user = db.session.execute(
        select(User).where(User.handle == USER.DELETED_HANDLE)
    ).scalar_one_or_none()
    if user is None:
        user = User(
            name="Deleted user",
            email=USER.DELETED_EMAIL,
            handle=USER.DELETED_HANDLE,
            role=USER.USER,
            status=USER.INACTIVE,
            created_at=utcnow(),
            notify_comments=False,
        )
        # No password works: the hash is of a random value nobody knows.
        user.set_password(secrets.token_urlsafe(32))
        db.session.add(user)
        db.session.flush()
    return user


def delete_account(user: User, *, actor: User | None, keep_content: bool) -> None:
    """Delete an account; its posts and comments go with it or move to "Deleted user".

    Only an ADMIN may, never on themselves, and never the last active ADMIN.
    """
    from sqlalchemy import delete
    from sqlalchemy import update

    from portal.audit.models import AuditEvent
    from portal.comments.models import Comment
    from portal.emails.models import Email
    from portal.posts.models import Post

    if actor is not None:
        if not actor.is_admin:
            raise AccountError("Only an admin can delete accounts.")
        if actor.id == user.id:
            raise AccountError("You cannot delete your own account here.")
    if user.handle == USER.DELETED_HANDLE:
        raise AccountError("The placeholder for deleted accounts cannot be deleted.")
    if _is_last_active_admin(user):
        raise AccountError("This is the last active admin; it cannot be deleted.")
    posts, comments = account_content(user)
    if keep_content:
        placeholder = deleted_user_placeholder()
        db.session.execute(
            update(Post).where(Post.author_id == user.id).values(author_id=placeholder.id)
        )
        db.session.execute(
            update(Comment).where(Comment.author_id == user.id).values(author_id=placeholder.id)
        )
    else:
        from portal.comments.services import forget_comments_by
        from portal.posts.services import forget_posts_by

        forget_comments_by(user)
        forget_posts_by(user)
    # What this account did stays on record without it (SQLite may not enforce SET NULL).
    db.session.execute(
        update(Comment).where(Comment.moderated_by_id == user.id).values(moderated_by_id=None)
    )
    db.session.execute(
        update(AuditEvent).where(AuditEvent.actor_id == user.id).values(actor_id=None)
    )
    db.session.execute(
        update(Email).where(Email.created_by_id == user.id).values(created_by_id=None)
    )
    audit.record(
        "delete",
        "user",
        user.id,
        summary=f"Deleted {user.email}; {posts} post(s) and {comments} comment(s) "
        + ("kept under “Deleted user”" if keep_content else "deleted"),
        changes={
            "name": [user.name, None],
            "email": [user.email, None],
            "role": [USER.ROLE[user.role], None],
        },
    )
    db.session.execute(delete(User).where(User.id == user.id))
    db.session.commit()
