"""The account rules. Views, admin screens and commands all call these."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cache
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash
from zxcvbn import zxcvbn

from portal import i18n
from portal import security
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.addresses import InvalidHeader
from portal.emails.addresses import normalize_address
from portal.emails.queue import enqueue
from portal.extensions import db
from portal.i18n import N_
from portal.search import matches_every_word
from portal.search import search_words
from portal.slugs import slugify
from portal.slugs import unique_slug
from portal.urls import external_url
from portal.users import constants as USER
from portal.users import events
from portal.users import sessions
from portal.users import tokens
from portal.users.models import User
from portal.users.models import hash_password


class AccountError(Exception):
    """A request the account rules refuse; the message is safe to show."""


class AccountDisabled(AccountError):
    """The account exists but may not sign in."""


class AddressTaken(AccountError):
    """Another account already uses the address (said only to staff and operators)."""


ZXCVBN_MAX_LENGTH = 72

DISABLED_MESSAGE = N_(
    "This account is disabled. Contact the site's staff if you think this is a mistake."
)
TAKEN_MESSAGE = N_("An account with this email address already exists.")


# -- lookups and checks --------------------------------------------------------


def get_by_email(email: str) -> User | None:
    """Return the account with ``email``, compared without regard to case."""
    wanted = email.strip().lower()
    if not wanted or "\0" in wanted:
        # No stored address holds a NUL, and PostgreSQL refuses one in a query.
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
        return _("Use at least %(count)d characters.", count=low)
    if len(password) > high:
        return _("Use at most %(count)d characters.", count=high)
    inputs = [value for value in user_inputs if value]
    inputs += [part for value in inputs for part in value.replace("@", " ").split()]
    # zxcvbn refuses input past 72 characters; the estimate of a prefix is a
    # lower bound for the whole, which is still hashed and checked in full.
    result = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=inputs)
    if result["score"] >= config["PASSWORD_MIN_SCORE"]:
        return None
    feedback = result.get("feedback") or {}
    hints = [_(feedback.get("warning") or N_("This password is easy to guess."))]
    hints += [_(hint) for hint in feedback.get("suggestions") or []]
    if not feedback.get("suggestions"):
        hints.append(_("Add another word or two; uncommon words are better."))
    return " ".join(hint.rstrip(".") + "." for hint in hints if hint)


def _check_password(password: str, user_inputs: tuple[str, ...]) -> None:
    problem = password_problem(password, user_inputs)
    if problem:
        raise AccountError(problem)


@cache
def _dummy_hash(method: str | None) -> str:
    # Checked against when no account matches, so a miss costs as long as a hit.
    return hash_password("portal-timing-equaliser")


# -- sign up, confirm, sign in -------------------------------------------------


def clean_name(name: str) -> str:
    """Return ``name`` trimmed; raise ``AccountError`` if empty or too long."""
    name = name.strip()
    if not name:
        raise AccountError(_("A name is required."))
    if len(name) > USER.NAME_MAX_LENGTH:
        raise AccountError(
            _("A name has at most %(count)d characters.", count=USER.NAME_MAX_LENGTH)
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise AccountError(_("A name cannot contain control characters."))
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
        raise AddressTaken(_(TAKEN_MESSAGE))
    _check_password(password, (name, address))
    return _add_account(name, address, password, role=role, status=status)


def _add_account(name: str, address: str, password: str, *, role: int, status: int) -> User:
    # The checks are the caller's; a sign-up that took the address a moment
    # ago still ends in ``AddressTaken``, from the unique index.
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
        raise AddressTaken(_(TAKEN_MESSAGE)) from None
    return user


def register(name: str, email: str, password: str) -> str:
    """Sign up: a NEW account and its confirmation link, or a word to the address's owner.

    Return the address the message went to. The caller answers the same
    whether or not the address had an account, and both ways hash the
    password and queue one message, so neither the page nor its timing tells.
    """
    name = clean_name(name)
    address = clean_email(email)
    _check_password(password, (name, address))
    owner = get_by_email(address)
    if owner is None:
        try:
            user = _add_account(name, address, password, role=USER.USER, status=USER.NEW)
        except AddressTaken:
            owner = get_by_email(address)
        else:
            queue_confirmation(user)
            db.session.commit()
            return address
    else:
        hash_password(password)
    if owner is not None and owner.status != USER.INACTIVE:
        enqueue(
            owner.email,
            _l(
                "Someone tried to register at %(site)s with your address",
                site=current_app.config["PORTAL_NAME"],
            ),
            "registration_attempt",
            {"user": owner, "link": external_url("users.forgot_password")},
            priority=EMAIL.HIGH,
            reader=owner,
        )
    db.session.commit()
    return address


def queue_confirmation(user: User) -> None:
    """Queue a confirmation link to the account's stored address."""
    token = tokens.make(tokens.CONFIRM, {"uid": user.id, "email": tokens.fingerprint(user.email)})
    enqueue(
        user.email,
        _l("Confirm your email address for %(site)s", site=current_app.config["PORTAL_NAME"]),
        "confirm",
        {"user": user, "link": external_url("users.confirm", token=token)},
        priority=EMAIL.HIGH,
        sensitive=True,
        created_by_id=user.id,
        reader=user,
    )


def resend_confirmation(user: User) -> None:
    """Queue a fresh confirmation link for a NEW account."""
    if user.status != USER.NEW:
        raise AccountError(_("This email address is already confirmed."))
    queue_confirmation(user)
    db.session.commit()


def _account_for(purpose: str, token: str) -> tuple[User, dict[str, Any]]:
    payload = tokens.read(purpose, token)
    user = db.session.get(User, payload.get("uid")) if isinstance(payload.get("uid"), int) else None
    if user is None:
        raise tokens.TokenError(_("This link is not valid."))
    return user, payload


def check_confirmation(token: str) -> User:
    """Return the account a confirmation link is for, if the link still works."""
    user, payload = _account_for(tokens.CONFIRM, token)
    if user.status != USER.NEW or payload.get("email") != tokens.fingerprint(user.email):
        raise tokens.TokenError(_("This link has already been used."))
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
    the answer's timing does not tell either. Only the right password learns
    that an account is disabled; a wrong one gets None like any other.
    """
    user = get_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(current_app.config.get("PASSWORD_HASH_METHOD")), password)
        return None
    if not user.check_password(password):
        _refuse_sign_in(user, events.WRONG_PASSWORD)
        return None
    if user.status == USER.INACTIVE:
        _refuse_sign_in(user, events.ACCOUNT_DISABLED)
        raise AccountDisabled(_(DISABLED_MESSAGE))
    return user


def _refuse_sign_in(user: User, reason: str) -> None:
    """Keep the event of a refused sign-in: nothing else commits it, as nothing else changes."""
    events.sign_in_failed(user, reason=reason)
    db.session.commit()


def record_login(user: User) -> None:
    """Note a successful sign-in."""
    user.last_login_at = utcnow()
    user.login_count = (user.login_count or 0) + 1
    db.session.commit()


def end_other_sessions(user: User, *, keep: int | None = None) -> None:
    """Delete every session of the account but ``keep`` (a session id), in this transaction."""
    sessions.end_all(user, keep=keep)


def logout_everywhere(user: User, *, keep: int | None = None) -> int:
    """End every session of the account but ``keep``, at once; return how many ended."""
    return sessions.end_sessions(user, actor=user, keep=keep)


# -- passwords -----------------------------------------------------------------


def _reset_fingerprint(user: User) -> str:
    return tokens.fingerprint(f"{user.id}:{user.password_hash}")


def request_password_reset(email: str) -> None:
    """Queue a reset link to the stored address if an active account matches.

    Says nothing either way: the caller shows the same page for every address.
    """
    user = get_by_email(email)
    if user is None:
        return
    if user.status == USER.INACTIVE:
        events.reset_requested(user, sent=False)
        db.session.commit()
        return
    token = tokens.make(tokens.RESET, {"uid": user.id, "pw": _reset_fingerprint(user)})
    enqueue(
        user.email,
        _l("Reset your %(site)s password", site=current_app.config["PORTAL_NAME"]),
        "reset_password",
        {"user": user, "link": external_url("users.reset_password", token=token)},
        priority=EMAIL.HIGH,
        sensitive=True,
        reader=user,
    )
    events.reset_requested(user, sent=True)
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
        raise tokens.TokenError(_("This link has already been used."))
    if user.status == USER.INACTIVE:
        raise AccountDisabled(_(DISABLED_MESSAGE))
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
    events.reset_done(user)
    db.session.commit()
    return user


def set_password(
    user: User, password: str, *, audited: bool = False, keep: int | None = None
) -> None:
    """Check and store a new password and end the account's sessions but ``keep``.

    ``audited`` records that someone else (an operator) set it; the password
    itself never reaches the audit trail.
    """
    _check_password(password, (user.name, user.email))
    user.set_password(password)
    end_other_sessions(user, keep=keep)
    if audited:
        audit.record(
            AUDIT.ACTION_SET_PASSWORD,
            AUDIT.OBJECT_USER,
            user.id,
            summary=f"Password of {user.email} set",
            changes={"password": ["", ""]},
        )


def change_password(user: User, current: str, new: str, *, keep: int | None = None) -> None:
    """Replace the password after checking the current one; sessions but ``keep`` end."""
    if not user.check_password(current):
        raise AccountError(_("The current password is not correct."))
    set_password(user, new, keep=keep)
    events.password_changed(user)
    db.session.commit()


# -- profile and email change --------------------------------------------------


def update_profile(
    user: User,
    name: str,
    *,
    notify_comments: bool | None = None,
    notify_new_device: bool | None = None,
    locale: str | None = None,
    timezone: str | None = None,
) -> None:
    """Change the account's display name and, if given, its other settings.

    The profile handle stays as it was, so links to the profile keep working.
    An empty ``locale`` or ``timezone`` clears the setting: the account then
    follows its browser's language and the site's time zone. A language or
    zone that does not exist raises ``AccountError`` and nothing changes.
    """
    if locale and not i18n.is_language(locale):
        raise AccountError(_("Choose one of the languages in the list."))
    if timezone and not i18n.is_timezone(timezone):
        raise AccountError(_("Choose a time zone from the list, such as Europe/Berlin."))
    user.name = clean_name(name)
    if notify_comments is not None:
        user.notify_comments = notify_comments
    if notify_new_device is not None:
        user.notify_new_device = notify_new_device
    if locale is not None:
        user.locale = locale or None
    if timezone is not None:
        user.timezone = timezone or None
    db.session.commit()


def set_language(user: User, locale: str) -> None:
    """Make ``locale`` the language of the account's pages and emails."""
    if not i18n.is_language(locale):
        raise AccountError(_("Choose one of the languages in the list."))
    user.locale = locale
    db.session.commit()


def request_email_change(user: User, new_email: str) -> str:
    """Queue a link to the new address; nothing changes until it is followed.

    When another account has the address, its owner is told someone tried
    instead, and the caller answers as if the link had gone: the page never
    says whether an address has an account. The current address hears of
    the request either way. Return the new address.
    """
    address = clean_email(new_email)
    if address.lower() == user.email.lower():
        raise AccountError(_("This is already your email address."))
    site = current_app.config["PORTAL_NAME"]
    owner = get_by_email(address)
    if owner is None:
        token = tokens.make(
            tokens.EMAIL_CHANGE, {"uid": user.id, "old": user.email, "new": address}
        )
        enqueue(
            address,
            _l("Confirm your new email address for %(site)s", site=site),
            "change_email",
            {
                "user": user,
                "new_email": address,
                "link": external_url("users.change_email", token=token),
            },
            priority=EMAIL.HIGH,
            sensitive=True,
            created_by_id=user.id,
            reader=user,
        )
    elif owner.status != USER.INACTIVE:
        enqueue(
            owner.email,
            _l("Someone tried to move another %(site)s account to your address", site=site),
            "email_change_attempt",
            {"user": owner, "link": external_url("users.login")},
            priority=EMAIL.HIGH,
            created_by_id=user.id,
            reader=owner,
        )
    enqueue(
        user.email,
        _l("Your %(site)s email address is being changed", site=site),
        "change_email_notice",
        {"user": user, "new_email": address},
        priority=EMAIL.HIGH,
        created_by_id=user.id,
        reader=user,
    )
    events.email_change_requested(user, address)
    db.session.commit()
    return address


def check_email_change(token: str) -> tuple[User, str]:
    """Return the account and new address an email-change link is for."""
    user, payload = _account_for(tokens.EMAIL_CHANGE, token)
    if payload.get("old") != user.email or not isinstance(payload.get("new"), str):
        raise tokens.TokenError(_("This link has already been used."))
    return user, payload["new"]


def confirm_email_change(token: str) -> User:
    """Switch the account to its new address; the link then dies."""
    user, address = check_email_change(token)
    if email_taken(address, exclude=user):
        raise AddressTaken(_(TAKEN_MESSAGE))
    old_address, user.email = user.email, address
    events.email_changed(user, old_address)
    if user.status == USER.NEW:
        user.status = USER.ACTIVE
        user.confirmed_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AddressTaken(_(TAKEN_MESSAGE)) from None
    return user


# -- role, status and name ----------------------------------------------------


def _require(actor: User | None, action: str, obj: Any, **change: Any) -> None:
    """Raise the gate's refusal as an ``AccountError``, whose message is safe to show."""
    problem = security.refusal(actor, action, obj, **change)
    if problem:
        raise AccountError(problem)


def change_account(
    user: User,
    *,
    actor: User | None,
    name: str | None = None,
    role: int | None = None,
    status: int | None = None,
    reason: str | None = None,
    notify: bool = False,
) -> bool:
    """Rename ``user``, give it a role, a status: checked as one, saved in one transaction.

    The admin's edit form passes all three; set-role and set-status (bulk
    actions and commands) pass one. ``actor`` is the person asking (None for
    an operator at ``manage.py``); the gate decides, and nothing is saved
    unless every part is allowed. ``reason`` goes into the audit event and,
    with ``notify``, into an email to the person. Return whether anything
    changed.
    """
    if role is not None and role not in USER.ROLE:
        raise AccountError(f"Unknown role {role!r}.")
    if status is not None and status not in USER.STATUS:
        raise AccountError(f"Unknown status {status!r}.")
    new_name = clean_name(name) if name is not None else user.name
    editing = name is not None
    questions = []
    if editing:
        questions.append((security.CHANGE, {"role": role, "status": status}))
    # The edit form sends the role and status it shows; only a changed one is a
    # role or status change. Set-role and set-status always ask.
    if role is not None and (not editing or role != user.role):
        questions.append((security.CHANGE_ROLE, {"role": role}))
    if status is not None and (not editing or status != user.status):
        questions.append((security.CHANGE_STATUS, {"status": status}))
    for action, change in questions:
        _require(actor, action, user, **change)
    changed = False
    if new_name != user.name:
        _rename(user, new_name)
        changed = True
    if role is not None and role != user.role:
        _apply_role(user, role)
        changed = True
    if status is not None and status != user.status:
        _apply_status(user, status, reason=reason, notify=notify)
        changed = True
    if changed:
        db.session.commit()
    return changed


def _rename(user: User, name: str) -> None:
    audit.record(
        AUDIT.ACTION_UPDATE,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Renamed {user.email}",
        changes={"name": [user.name, name]},
    )
    user.name = name


def _apply_role(user: User, role: int) -> None:
    audit.record(
        AUDIT.ACTION_SET_ROLE,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Role of {user.email}: {USER.ROLE[user.role]} → {USER.ROLE[role]}",
        changes={"role": [USER.ROLE[user.role], USER.ROLE[role]]},
    )
    user.role = role
    end_other_sessions(user)


def _apply_status(user: User, status: int, *, reason: str | None, notify: bool) -> None:
    reason = (reason or "").strip()[: USER.REASON_MAX_LENGTH] or None
    changes: dict[str, list[Any]] = {"status": [USER.STATUS[user.status], USER.STATUS[status]]}
    if reason:
        changes["reason"] = [None, reason]
    audit.record(
        AUDIT.ACTION_SET_STATUS,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Status of {user.email}: {USER.STATUS[user.status]} → {USER.STATUS[status]}"
        + (f" ({reason})" if reason else ""),
        changes=changes,
    )
    if notify and status in (USER.ACTIVE, USER.INACTIVE):
        enqueue(
            user.email,
            _l("Your %(site)s account is active", site=current_app.config["PORTAL_NAME"])
            if status == USER.ACTIVE
            else _l("Your %(site)s account is disabled", site=current_app.config["PORTAL_NAME"]),
            "account_status",
            {"user": user, "active": status == USER.ACTIVE, "reason": reason},
            reader=user,
        )
    user.status = status
    if status == USER.ACTIVE and user.confirmed_at is None:
        user.confirmed_at = utcnow()
    if status == USER.INACTIVE:
        end_other_sessions(user)


# -- accounts created and removed by an admin ----------------------------------


def create_admin(name: str, email: str, password: str) -> User:
    """Create an ACTIVE admin with a password typed by the operator (``manage.py``)."""
    user = create_account(name, email, password, role=USER.ADMIN, status=USER.ACTIVE)
    audit.record(
        AUDIT.ACTION_CREATE,
        AUDIT.OBJECT_USER,
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
    _require(actor, security.ADD, security.ACCOUNT)
    if role not in USER.ROLE:
        raise AccountError(f"Unknown role {role!r}.")
    user = create_account(name, email, secrets.token_urlsafe(32) + "-Aa1!", role=role)
    token = tokens.make(tokens.INVITE, {"uid": user.id, "pw": _reset_fingerprint(user)})
    enqueue(
        user.email,
        _l("You are invited to %(site)s", site=current_app.config["PORTAL_NAME"]),
        "invite",
        {
            "user": user,
            "inviter": actor,
            "link": external_url("users.reset_password", token=token),
        },
        priority=EMAIL.HIGH,
        sensitive=True,
        reader=user,
    )
    audit.record(
        AUDIT.ACTION_CREATE,
        AUDIT.OBJECT_USER,
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


def check_delete(user: User, *, actor: User | None) -> None:
    """Refuse (``AccountError``) to delete ``user`` unless the rules allow it.

    Only an ADMIN may, never on themselves, never the placeholder that keeps
    deleted accounts' content, and never the last active ADMIN.
    ``portal.operations.delete_account`` deletes it, with or without its content.
    """
    _require(actor, security.DELETE, user)


# A picker lists at most this many accounts; typing more narrows them.
FIND_LIMIT = 20


def find_accounts(phrase: str, *, limit: int = FIND_LIMIT) -> list[User]:
    """Return up to ``limit`` accounts with every word of ``phrase`` in the name, handle or email.

    Oldest first, so the same words list the same accounts; no words, no accounts.
    """
    if not search_words(phrase):
        return []
    query = (
        select(User)
        .where(matches_every_word([User.name, User.handle, User.email], phrase))
        .order_by(User.id)
        .limit(min(limit, FIND_LIMIT))
    )
    return list(db.session.execute(query).scalars())


# -- newcomers -------------------------------------------------------------------


def is_newcomer(user: Any) -> bool:
    """Tell whether ``user`` signed up less than ``NEW_ACCOUNT_DAYS`` days ago (staff never are).

    Newcomers write under tighter limits and with few links: what a spammer's
    fresh account would do first.
    """
    if not getattr(user, "is_authenticated", False):
        return False
    if security.can(user, security.MODERATE, security.POST):
        return False
    days = int(current_app.config.get("NEW_ACCOUNT_DAYS") or 0)
    return days > 0 and user.created_at > utcnow() - timedelta(days=days)
