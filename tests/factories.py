"""Factories for accounts and outgoing messages, one per role and state."""

from __future__ import annotations

from typing import Any

import factory
from werkzeug.security import generate_password_hash

from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.extensions import db
from portal.users import constants as USER
from portal.users.models import User

# A password that passes the policy; hashed once, because scrypt is slow on purpose.
PASSWORD = "tidy-otter-47-lanterns"
_HASH = generate_password_hash(PASSWORD)


class BaseFactory(factory.alchemy.SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    name = factory.Sequence(lambda n: f"Person {n}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    password_hash = _HASH
    role = USER.USER
    status = USER.ACTIVE
    session_version = 1
    login_count = 0
    created_at = factory.LazyFunction(utcnow)
    confirmed_at = factory.LazyFunction(utcnow)

    @classmethod
    def _create(
        cls,
        model_class: type[User],
        *args: Any,
        password: str | None = None,
        **kwargs: Any,
    ) -> User:
        if password is not None:
            kwargs["password_hash"] = generate_password_hash(password)
        return super()._create(model_class, *args, **kwargs)


class NewUserFactory(UserFactory):
    status = USER.NEW
    confirmed_at = None


class InactiveUserFactory(UserFactory):
    status = USER.INACTIVE


class StaffFactory(UserFactory):
    role = USER.STAFF


class AdminFactory(UserFactory):
    role = USER.ADMIN


class EmailFactory(BaseFactory):
    class Meta:
        model = Email

    to_address = factory.Sequence(lambda n: f"reader{n}@example.com")
    from_address = "Portal <no-reply@example.com>"
    subject = factory.Sequence(lambda n: f"Message {n}")
    text_body = "Hello."
    html_body = None
    message_id = factory.Sequence(lambda n: f"<message-{n}@example.com>")
    state = EMAIL.QUEUED
    priority = EMAIL.NORMAL
    scheduled_at = factory.LazyFunction(utcnow)
    next_attempt_at = factory.LazyFunction(utcnow)
    created_at = factory.LazyFunction(utcnow)
    attempts = 0
    max_attempts = 5
    sensitive = False
