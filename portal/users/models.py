"""The account model."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from portal.database import UTCDateTime
from portal.database import utcnow
from portal.extensions import db
from portal.search import trigram_indexes
from portal.users import constants as USER


def hash_password(password: str) -> str:
    """Hash with the configured method (Werkzeug's default scrypt unless set)."""
    method = current_app.config.get("PASSWORD_HASH_METHOD")
    if method:
        return generate_password_hash(password, method=method)
    return generate_password_hash(password)


class User(UserMixin, db.Model):  # type: ignore[name-defined]
    """A person who can sign in: a reader, a writer, staff or an admin."""

    __tablename__ = "users_user"
    __table_args__ = (
        Index("ix_users_user_role_status", "role", "status"),
        Index("ix_users_user_created_at", "created_at"),
        Index("ix_users_user_last_login_at", "last_login_at"),
        CheckConstraint(f"role IN ({USER.ADMIN}, {USER.STAFF}, {USER.USER})", name="role"),
        CheckConstraint(f"status IN ({USER.INACTIVE}, {USER.NEW}, {USER.ACTIVE})", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(USER.NAME_MAX_LENGTH))
    email: Mapped[str] = mapped_column(String(USER.EMAIL_MAX_LENGTH))
    # The public profile's address, /users/<handle>/: made from the name once, then kept.
    handle: Mapped[str] = mapped_column(String(USER.HANDLE_MAX_LENGTH), index=True, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[int] = mapped_column(SmallInteger, default=USER.USER)
    status: Mapped[int] = mapped_column(SmallInteger, default=USER.NEW)
    # Raised whenever the account's sessions end; a cached session lookup carries
    # it, so a copy cached before the change is never trusted after it.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    login_count: Mapped[int] = mapped_column(default=0)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Email the author when a comment on one of their posts is approved.
    notify_comments: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Email the account when it signs in from a device it never signed in from before.
    notify_new_device: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The language and time zone pages and emails use; None follows the browser
    # (the language) or the site's default (both).
    locale: Mapped[str | None] = mapped_column(String(USER.LOCALE_MAX_LENGTH))
    timezone: Mapped[str | None] = mapped_column(String(USER.TIMEZONE_MAX_LENGTH))

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email!r} {USER.ROLE.get(self.role)}>"

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def set_password(self, password: str) -> None:
        """Store a salted scrypt hash of ``password``; the password itself is never kept."""
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        """Tell whether ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        """Return the id the cookie carries: the token of this browser's session record.

        ``portal.users.sessions`` attaches it when a session starts or is
        loaded; an account object that no session was started for has none.
        """
        token = getattr(self, "session_token", None)
        if not token:
            raise RuntimeError("No session is attached to this account: use start_session.")
        return str(token)

    @property
    def is_active(self) -> bool:
        return self.status != USER.INACTIVE

    @property
    def is_admin(self) -> bool:
        return self.role == USER.ADMIN

    @property
    def is_staff(self) -> bool:
        return self.role in (USER.ADMIN, USER.STAFF)

    def is_last_active_admin(self) -> bool:
        """Tell whether this is the only active ADMIN (whom nothing may demote or remove)."""
        if self.role != USER.ADMIN or self.status != USER.ACTIVE:
            return False
        others = db.session.execute(
            select(func.count(User.id)).where(
                User.role == USER.ADMIN, User.status == USER.ACTIVE, User.id != self.id
            )
        ).scalar_one()
        return others == 0

    @property
    def is_confirmed(self) -> bool:
        return self.status == USER.ACTIVE

    @property
    def role_name(self) -> str:
        return USER.ROLE[self.role]

    @property
    def status_name(self) -> str:
        return USER.STATUS[self.status]


# One account per address whatever its case: Bob@x.org is bob@x.org. Lookups
# compare lower(email), so this index also serves them.
Index("uq_users_user_email_lower", func.lower(User.email), unique=True)
# Staff find accounts by any part of these (portal.search, revision 0009).
trigram_indexes(User.__table__, "email", "name", "handle")


class ProviderIdentity(db.Model):  # type: ignore[name-defined]
    """An account at an OpenID Connect provider, linked to one account here.

    The identity is the provider's issuer and subject (``iss`` and ``sub``),
    which the provider never reassigns; the email it last asserted is kept
    only to show which of the person's accounts at that provider it is.
    """

    __tablename__ = "users_provider_identity"
    __table_args__ = (
        UniqueConstraint("issuer", "subject"),
        UniqueConstraint("user_id", "provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(User.id, ondelete="CASCADE"))
    # The name of the provider in OIDC_PROVIDERS.
    provider: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(USER.EMAIL_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<ProviderIdentity {self.provider} {self.subject!r} -> {self.user_id}>"


class UserSession(db.Model):  # type: ignore[name-defined]
    """One signed-in browser: the cookie holds a random token, this row only its SHA-256.

    Reading the table gives nobody a cookie. Deleting the row ends that
    browser's session at once.
    """

    __tablename__ = "users_session"
    __table_args__ = (
        Index("ix_users_session_token_hash", "token_hash", unique=True),
        Index("ix_users_session_user_last_seen", "user_id", "last_seen_at"),
        Index("ix_users_session_last_seen_at", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey(User.id, ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The client address at sign-in (an IPv6 address fits in 45 characters).
    address: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str] = mapped_column(String(200))
    # Whether the sign-in passed a second factor as well as the password.
    second_factor: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return f"<UserSession {self.id} of {self.user_id} {self.device!r}>"


class SecondFactor(db.Model):  # type: ignore[name-defined]
    """An account's TOTP authenticator: the shared secret, encrypted, and its last used step.

    A row without ``enrolled_at`` is an enrolment that has not been confirmed
    with a code yet; it does not count as a second factor.
    """

    __tablename__ = "users_second_factor"

    user_id: Mapped[int] = mapped_column(ForeignKey(User.id, ondelete="CASCADE"), primary_key=True)
    # The base32 secret, encrypted with a key derived from SECRET_KEY (see portal.users.mfa).
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The 30-second time step of the last code accepted: a code is good once.
    last_time_step: Mapped[int | None] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"<SecondFactor of {self.user_id} enrolled={self.enrolled_at is not None}>"


class RecoveryCode(db.Model):  # type: ignore[name-defined]
    """One single-use recovery code of an account; only its salted SHA-256 is kept."""

    __tablename__ = "users_recovery_code"
    __table_args__ = (Index("ix_users_recovery_code_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(User.id, ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<RecoveryCode {self.id} of {self.user_id} used={self.used_at is not None}>"
