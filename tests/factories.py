"""Factories for accounts, posts, comments and outgoing messages, one per role and state."""

from __future__ import annotations

from typing import Any

import factory
from werkzeug.security import generate_password_hash

from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.emails.models import Suppression
from portal.extensions import db
from portal.markup import render_comment
from portal.markup import render_post
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.users import constants as USER
from portal.users.models import User

# A password that passes the policy, hashed once with a low scrypt cost. A hash
# carries its own cost, so signing in as a factory account is quick while every
# password the app itself hashes keeps Werkzeug's full cost.
PASSWORD = "tidy-otter-47-lanterns"
TEST_HASH_METHOD = "scrypt:1024:8:1"
_HASH = generate_password_hash(PASSWORD, method=TEST_HASH_METHOD)


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
    handle = factory.Sequence(lambda n: f"person-{n}")
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
            kwargs["password_hash"] = generate_password_hash(password, method=TEST_HASH_METHOD)
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


class PostFactory(BaseFactory):
    """A published post; ``DraftFactory`` and ``HiddenPostFactory`` for the others."""

    class Meta:
        model = Post

    author = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Post number {n}")
    slug = factory.Sequence(lambda n: f"post-number-{n}")
    body = factory.Sequence(lambda n: f"The *body* of post {n}.")
    body_html = factory.LazyAttribute(lambda post: render_post(post.body))
    status = POST.PUBLISHED
    comment_count = 0
    created_at = factory.LazyFunction(utcnow)
    updated_at = factory.LazyFunction(utcnow)
    published_at = factory.LazyFunction(utcnow)


class DraftFactory(PostFactory):
    status = POST.DRAFT
    published_at = None


class HiddenPostFactory(PostFactory):
    status = POST.HIDDEN


class TagFactory(BaseFactory):
    """A tag; give it to posts with ``post.tags = [tag]``."""

    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"Tag {n}")
    slug = factory.Sequence(lambda n: f"tag-{n}")
    created_at = factory.LazyFunction(utcnow)


class CommentFactory(BaseFactory):
    """A comment waiting for moderation; ``ApprovedCommentFactory`` keeps the post's count."""

    class Meta:
        model = Comment

    post = factory.SubFactory(PostFactory)
    author = factory.SubFactory(UserFactory)
    body = factory.Sequence(lambda n: f"Comment number {n}.")
    body_html = factory.LazyAttribute(lambda comment: render_comment(comment.body))
    status = COMMENT.PENDING
    created_at = factory.LazyFunction(utcnow)
    updated_at = factory.LazyFunction(utcnow)


class ApprovedCommentFactory(CommentFactory):
    status = COMMENT.APPROVED

    @factory.post_generation
    def count(obj: Comment, create: bool, extracted: Any, **kwargs: Any) -> None:  # noqa: N805
        if create:
            obj.post.comment_count += 1
            db.session.commit()


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


class SuppressionFactory(BaseFactory):
    """An address staff put on the suppression list (every category)."""

    class Meta:
        model = Suppression

    address = factory.Sequence(lambda n: f"refused{n}@example.com")
    reason = EMAIL.REASON_MANUAL
    category = None
    source = EMAIL.SOURCE_ADMIN
    note = "Asked by phone."
    created_at = factory.LazyFunction(utcnow)
