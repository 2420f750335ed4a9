"""`manage.py seed`: demo accounts and content, and bulk rows that keep every rule of the app."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.seed import DEMO_POSTS
from portal.users import constants as USER
from portal.users.models import User
from tests.factories import DraftFactory
from tests.factories import PostFactory
from tests.helpers import assert_no_traceback
from tests.helpers import fails_with

DEMO_OUTPUT = [
    "Demo accounts (development only):",
    "  admin  admin@example.com    password: admin-portal-demo-1",
    "  staff  staff@example.com    password: staff-portal-demo-1",
    "  user   user@example.com     password: user-portal-demo-1",
]
DEMO_EMAILS = {"admin@example.com", "staff@example.com", "user@example.com"}
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
HANDLE = re.compile(rf"[a-z0-9][a-z0-9-]{{0,{USER.HANDLE_MAX_LENGTH - 1}}}")


# -- helpers ---------------------------------------------------------------------


def seed(runner: FlaskCliRunner, *args: str) -> Any:
    """Run `seed` with ``args``; assert it succeeded and ended with the demo accounts."""
    result = runner.invoke(args=["seed", *args])
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-4:] == DEMO_OUTPUT
    return result


def counts() -> tuple[int, int, int]:
    """Accounts, posts and comments, as committed."""
    db.session.rollback()
    users, posts, comments = (
        db.session.execute(select(func.count()).select_from(model)).scalar_one()
        for model in (User, Post, Comment)
    )
    return users, posts, comments


def by_status(model: Any) -> dict[int, int]:
    db.session.rollback()
    rows = db.session.execute(select(model.status, func.count()).group_by(model.status))
    return {status: count for status, count in rows}


def miscounted_posts() -> list[tuple[int, int, int]]:
    """Posts whose comment_count differs from their APPROVED comments: (id, stored, real)."""
    db.session.rollback()
    approved = (
        select(func.count(Comment.id))
        .where(Comment.post_id == Post.id, Comment.status == COMMENT.APPROVED)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Post.id, Post.comment_count, approved).where(Post.comment_count != approved)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def assert_rows_keep_the_rules() -> None:
    """Every account, post and comment is one the app itself could have written."""
    db.session.rollback()
    users = db.session.execute(select(User)).scalars().all()
    handles = [user.handle for user in users]
    assert len(set(handles)) == len(handles)
    for handle in handles:
        assert HANDLE.fullmatch(handle) and handle not in USER.RESERVED_HANDLES, handle
    emails = [user.email.lower() for user in users]
    assert len(set(emails)) == len(emails)
    writers = {
        user.id
        for user in users
        if user.status == USER.ACTIVE or (user.is_staff and user.status != USER.INACTIVE)
    }
    moderators = {user.id for user in users if user.is_staff}

    posts = {post.id: post for post in db.session.execute(select(Post)).scalars()}
    slugs = [post.slug for post in posts.values()]
    assert len(set(slugs)) == len(slugs)
    for post in posts.values():
        assert SLUG.fullmatch(post.slug) and len(post.slug) <= POST.SLUG_MAX_LENGTH, post.slug
        assert 0 < len(post.title) <= POST.TITLE_MAX_LENGTH
        assert post.body.strip() and post.body_html.strip()
        assert post.author_id in writers
        assert post.updated_at >= post.created_at
        if post.status == POST.DRAFT:
            assert post.published_at is None
        else:
            assert post.published_at is not None
            assert post.created_at <= post.published_at

    for comment in db.session.execute(select(Comment)).scalars():
        post = posts[comment.post_id]
        assert post.status == POST.PUBLISHED
        assert post.published_at is not None and comment.created_at > post.published_at
        assert comment.author_id in writers
        assert comment.body.strip() and comment.body_html.strip()
        if comment.status == COMMENT.PENDING:
            assert (comment.moderated_by_id, comment.moderated_at) == (None, None)
        else:
            assert comment.moderated_by_id in moderators
            assert comment.moderated_at is not None
            assert comment.moderated_at >= comment.created_at
    assert miscounted_posts() == []


# -- bulk rows -------------------------------------------------------------------


def test_seed_loads_as_many_rows_as_asked_with_one_progress_bar_each(
    runner: FlaskCliRunner,
) -> None:
    result = seed(runner, "--users", "30", "--posts", "40", "--comments", "200")

    lines = result.output.splitlines()
    # Without a terminal a progress bar prints its label once.
    assert lines[:3] == ["Accounts", "Posts", "Comments"]
    assert re.fullmatch(
        r"Added 30 account\(s\), 40 post\(s\) and 200 comment\(s\) in \d+\.\d s\.", lines[3]
    )
    assert lines[4:] == DEMO_OUTPUT
    # Generated posts stand in for the demo content: 40 posts, not 45.
    assert counts() == (33, 40, 200)
    assert by_status(Post) == {POST.PUBLISHED: 34, POST.DRAFT: 4, POST.HIDDEN: 2}
    assert by_status(Comment) == {
        COMMENT.APPROVED: 160,
        COMMENT.PENDING: 20,
        COMMENT.REJECTED: 10,
        COMMENT.SPAM: 10,
    }
    generated = db.session.execute(select(User).where(User.email.notin_(DEMO_EMAILS))).scalars()
    assert {(user.role, user.status) for user in generated} == {(USER.USER, USER.ACTIVE)}
    assert_rows_keep_the_rules()


def test_seeding_twice_carries_on_numbering_and_keeps_counts_exact(
    runner: FlaskCliRunner,
) -> None:
    seed(runner, "--users", "20", "--posts", "30", "--comments", "150")
    first_posts = set(db.session.execute(select(Post.slug)).scalars())

    seed(runner, "--users", "20", "--posts", "30", "--comments", "150")

    assert counts() == (43, 60, 300)
    assert first_posts < set(db.session.execute(select(Post.slug)).scalars())
    handles = db.session.execute(select(User.handle).where(User.email.notin_(DEMO_EMAILS)))
    numbers = sorted(int(handle.rsplit("-", 1)[1]) for handle in handles.scalars())
    assert len(numbers) == 40 and len(set(numbers)) == 40
    # The second run's comments also go under the first run's posts: counts add up.
    assert_rows_keep_the_rules()


def test_seed_skips_numbers_that_other_accounts_already_use(
    runner: FlaskCliRunner,
) -> None:
    seed(runner)  # demo accounts 1-3 and the demo posts
    db.session.add_all(
        [
            User(
                name="Demo User 5",
                email="DEMO6@example.com",
                handle="demo-user-5",
                password_hash="x",
                role=USER.USER,
                status=USER.NEW,
            )
        ]
    )
    db.session.commit()

    seed(runner, "--users", "4")

    db.session.rollback()
    handles = set(db.session.execute(select(User.handle)).scalars())
    assert {"demo-user-7", "demo-user-8", "demo-user-9", "demo-user-10"} <= handles
    assert_rows_keep_the_rules()


def test_posts_without_other_accounts_are_written_by_the_demo_accounts(
    runner: FlaskCliRunner,
) -> None:
    seed(runner, "--posts", "20", "--comments", "40")

    assert counts() == (3, 20, 40)
    authors = db.session.execute(select(User.email).join(Post, Post.author_id == User.id))
    assert set(authors.scalars()) <= DEMO_EMAILS
    assert_rows_keep_the_rules()


def test_comments_alone_go_under_the_demo_posts(runner: FlaskCliRunner) -> None:
    seed(runner, "--comments", "60")

    published = sum(1 for post in DEMO_POSTS if post[3] == POST.PUBLISHED)
    assert counts()[1] == len(DEMO_POSTS)
    assert counts()[2] == 60 + 7
    on = db.session.execute(select(Comment.post_id).distinct()).scalars().all()
    assert len(on) <= published
    assert_rows_keep_the_rules()


# -- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "-1"], "--users must be zero or more."),
        (["--posts", "-5"], "--posts must be zero or more."),
        (["--comments", "-3"], "--comments must be zero or more."),
        (
            ["--users", "10", "--posts", "10", "--comments", "-1"],
            "--comments must be zero or more.",
        ),
    ],
)
def test_seed_refuses_negative_numbers_and_changes_nothing(
    runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(args=["seed", *args])

    fails_with(result, message)
    assert counts() == (0, 0, 0)


def test_seed_refuses_a_number_that_is_not_one(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["seed", "--posts", "many"])

    assert_no_traceback(result)
    assert result.exit_code == 2
    assert "Invalid value for '--posts': 'many' is not a valid integer." in result.output
    assert counts() == (0, 0, 0)


def test_comments_without_a_published_post_are_refused_and_change_nothing(
    runner: FlaskCliRunner,
) -> None:
    DraftFactory()
    before = counts()

    result = runner.invoke(args=["seed", "--users", "5", "--comments", "10"])

    fails_with(result, "No post is published, so comments have nowhere to go: add --posts N.")
    assert counts() == before


# -- demo content ----------------------------------------------------------------


def test_plain_seed_adds_demo_content_once(runner: FlaskCliRunner, client: FlaskClient) -> None:
    result = seed(runner)

    assert result.output.splitlines() == DEMO_OUTPUT
    assert counts() == (3, 5, 7)
    assert by_status(Post) == {POST.PUBLISHED: 4, POST.DRAFT: 1}
    assert by_status(Comment) == {COMMENT.APPROVED: 5, COMMENT.PENDING: 2}
    assert_rows_keep_the_rules()
    slugs = db.session.execute(select(Post.slug).order_by(Post.id)).scalars().all()

    again = seed(runner)

    assert again.output.splitlines() == DEMO_OUTPUT
    assert counts() == (3, 5, 7)
    assert db.session.execute(select(Post.slug).order_by(Post.id)).scalars().all() == slugs

    # A newcomer sees a working site.
    home = client.get("/")
    assert home.status_code == 200
    assert "Welcome to Portal" in home.get_data(as_text=True)
    page = client.get("/posts/welcome-to-portal/")
    assert page.status_code == 200
    assert "2 comments" in page.get_data(as_text=True)
    assert client.get("/posts/ideas-for-next-month/").status_code == 404  # a draft


def test_plain_seed_leaves_a_database_with_posts_alone(runner: FlaskCliRunner) -> None:
    PostFactory()
    before = counts()

    seed(runner)

    assert counts() == (before[0] + 3, before[1], before[2])


def test_a_bulk_seed_leaves_one_audit_event(runner: FlaskCliRunner) -> None:
    from portal.audit.models import AuditEvent

    result = runner.invoke(args=["seed", "--users", "3"])
    assert_no_traceback(result)
    events = db.session.execute(select(AuditEvent)).scalars().all()
    assert [(e.action, e.object_type, e.source) for e in events] == [("seed", "database", "cli")]
    assert events[0].summary.startswith("Added 3 account(s)")
    assert "seed" in events[0].actor_label  # the command that ran, and who ran it
