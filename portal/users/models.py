"""The account model."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Index
from sqlalchemy import SmallInteger
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from portal.database import UTCDateTime
from portal.database import utcnow
from portal.extensions import db
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
    # Part of the session id: raising it ends every session signed with the old one.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    login_count: Mapped[int] = mapped_column(default=0)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Email the author when a comment on one of their posts is approved.
    notify_comments: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

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
        """Return the session id: the account id and its session version."""
        return f"{self.id}:{self.session_version}"

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
