"""List pages that stay fast at any size, and the dashboard.

Speed is checked by counting SQL statements, never by timing: a list page runs
the same statements whatever its page size (related columns come in the same
query), counts no further than a cap, and a search is counted with the same cap.
"""

from __future__ import annotations

import html
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from admin_views.audit import AuditView
from admin_views.comments import CommentView
from admin_views.emails import EmailView
from admin_views.lists import CappedCount
from admin_views.posts import PostView
from admin_views.users import UserView
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.emails import constants as EMAIL
from portal.extensions import db
from portal.posts.models import Post
from portal.users import constants as USER
from tests import factories
from tests.helpers import statements

ROWS = 110  # more than the largest page size asked for


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def admin(auth):
    person = factories.AdminFactory(name="Ada Admin", email="ada@example.com")
    assert auth.login(person.email).status_code == 302
    return person


def add_all(objects):
    """Save built objects (and what they refer to) in one transaction."""
    db.session.add_all(objects)
    db.session.commit()
    return objects


def audit_events(count):
    # Newer than the admin's own sign-in event, so the first pages list only these.
    now = datetime.now(UTC) + timedelta(hours=1)
    return add_all(
        [
            AuditEvent(
                created_at=now - timedelta(seconds=index),
                actor_label=f"Actor {index} <actor{index}@example.com>",
                source="admin",
                address="192.0.2.1",
                action="set_role",
                object_type="user",
                object_id=str(index),
                summary=f"Bulk event {index}.",
                changes={"role": ["user", "staff"]},
            )
            for index in range(count)
        ]
    )


# endpoint, view class, how to make rows, a pattern that marks one listed row
LISTS = [
    ("user", UserView, lambda n: add_all(factories.UserFactory.build_batch(n)), r'name="rowid"'),
    ("post", PostView, lambda n: add_all(factories.PostFactory.build_batch(n)), r'name="rowid"'),
    (
        "comment",
        CommentView,
        lambda n: add_all(factories.CommentFactory.build_batch(n)),
        r'name="rowid"',
    ),
    ("email", EmailView, lambda n: add_all(factories.EmailFactory.build_batch(n)), r'name="rowid"'),
    ("audit", AuditView, audit_events, r"Bulk event \d+\."),
]


def page(client, path, **query):
    response = client.get(path, query_string=query) if query else client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def listed_ids(text):
    return [int(value) for value in re.findall(r'name="rowid"[^>]*\svalue="(\d+)"', text)]


def list_tab(text):
    """The row count the list shows: "35 found", "5+ found"."""
    match = re.search(r'<p class="admin-count">([^<]*)<', text)
    assert match, "no row count"
    return html.unescape(match.group(1))


# -- statement counts -------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "view", "make", "row"), LISTS, ids=[e[0] for e in LISTS])
def test_list_page_runs_the_same_statements_at_any_page_size(
    client, admin, endpoint, view, make, row
):
    make(ROWS)
    small = min(view.page_size_options)
    path = f"/admin/{endpoint}/"

    with statements() as few:
        short = page(client, path, page_size=small)
    with statements() as many:
        long = page(client, path, page_size=100)

    assert len(re.findall(row, short)) == small
    assert len(re.findall(row, long)) == 100
    assert len(many) == len(few), "\n".join(many)
    # The session with its account, the capped count, the page itself, and the
    # menu's three counts in one statement.
    assert len(many) <= 4, "\n".join(many)


def test_post_list_shows_each_author_without_a_query_per_row(client, admin):
    add_all(factories.PostFactory.build_batch(ROWS))  # each by a different author

    with statements() as seen:
        text = page(client, "/admin/post/", page_size=100)

    shown = db.session.execute(select(Post).order_by(Post.id.desc()).limit(100)).scalars()
    for post in shown:
        assert html.escape(str(post.author), quote=False) in text
    assert sum("FROM users_user" in s for s in seen) <= 2, "\n".join(seen)


def test_comment_list_shows_post_title_and_author_without_a_query_per_row(client, admin):
    add_all(factories.CommentFactory.build_batch(ROWS))  # each on its own post, by its own author

    with statements() as seen:
        text = page(client, "/admin/comment/", page_size=100)

    ids = listed_ids(text)
    assert len(ids) == 100
    for comment in db.session.execute(select(Comment).where(Comment.id.in_(ids))).scalars():
        assert html.escape(comment.post.title, quote=False) in text
        assert html.escape(str(comment.author), quote=False) in text
    assert not any(s.lstrip().startswith("SELECT posts_post.") for s in seen), "\n".join(seen)


# -- capped counts --------------------------------------------------------------------


def test_count_is_exact_below_the_cap(client, admin, monkeypatch):
    monkeypatch.setattr(UserView, "count_cap", 5)
    factories.UserFactory.create_batch(3)

    assert list_tab(page(client, "/admin/user/")) == "4 found"


def test_count_stops_at_the_cap_and_every_page_is_still_reachable(client, admin, monkeypatch):
    monkeypatch.setattr(UserView, "count_cap", 5)
    add_all(factories.UserFactory.build_batch(44))  # 45 accounts with the admin: three pages

    seen_ids: list[int] = []
    path, query = "/admin/user/", {}
    for expected in (20, 20, 5):
        text = page(client, path, **query)
        assert list_tab(text) == "5+ found"
        ids = listed_ids(text)
        assert len(ids) == expected
        seen_ids += ids
        next_page = re.search(r'<a class="page-link" href="(/admin/[^"]+)">&gt;</a>', text)
        if expected == 5:
            assert next_page is None  # the last page offers no next one
            break
        assert next_page, "the pager offers no next page though more rows exist"
        path, query = html.unescape(next_page.group(1)), {}

    assert len(set(seen_ids)) == 45


def test_cap_applies_to_searches_too(client, admin, monkeypatch):
    monkeypatch.setattr(PostView, "count_cap", 5)
    for index in range(8):
        factories.PostFactory(title=f"Match {index}")
    factories.PostFactory.create_batch(2, title="Other")

    assert list_tab(page(client, "/admin/post/", search="match")) == "5+ found"
    assert list_tab(page(client, "/admin/post/", search="other")) == "2 found"


def test_the_count_reads_no_further_than_the_cap(client, admin):
    factories.UserFactory.create_batch(3)

    with statements() as seen:
        page(client, "/admin/user/")

    counts = [s for s in seen if "count(" in s.lower() and "users_user" in s]
    assert counts, "\n".join(seen)
    assert all("LIMIT" in s.upper() for s in counts), counts


def test_capped_count_reads_like_a_number():
    assert str(CappedCount.of(10_001, 10_000)) == "10,000+"
    assert str(CappedCount.of(50_000, 10_000)) == "10,000+"
    assert str(CappedCount.of(1_234, 10_000)) == "1,234"
    assert str(CappedCount.of(0, 10_000)) == "0"


# Search itself (words inside any searchable column) is in test_admin_search.py.


# -- the dashboard -------------------------------------------------------------------------


def cell(text, role, status):
    row = re.search(rf'<tr data-role="{role}">(.*?)</tr>', text, re.S)
    assert row, role
    value = re.search(rf'data-status="{status}">([\d,]+)<', row.group(1))
    assert value, (role, status)
    return int(value.group(1).replace(",", ""))


def figure(text, attribute, name):
    match = re.search(rf'data-{attribute}="{name}">\s*<div class="h4 mb-0">([\d,]+)</div>', text)
    assert match, (attribute, name)
    return int(match.group(1).replace(",", ""))


@pytest.fixture
def site(admin):
    """Accounts, posts, comments and messages in known numbers, some older than 30 days."""
    now = datetime.now(UTC)
    old = now - timedelta(days=45)
    factories.AdminFactory(status=USER.INACTIVE, created_at=old)
    factories.StaffFactory.create_batch(2)
    factories.StaffFactory(status=USER.NEW, confirmed_at=None)
    factories.NewUserFactory.create_batch(3, created_at=now - timedelta(days=3))
    factories.InactiveUserFactory.create_batch(2, created_at=old)
    author = factories.UserFactory(created_at=now - timedelta(days=29))
    reader = factories.UserFactory()
    published = factories.PostFactory.create_batch(3, author=author)
    factories.PostFactory(author=author, created_at=old)
    factories.DraftFactory.create_batch(2, author=author, created_at=now - timedelta(days=10))
    factories.HiddenPostFactory(author=author)
    factories.CommentFactory.create_batch(4, post=published[0], author=reader)
    factories.ApprovedCommentFactory.create_batch(2, post=published[0], author=reader)
    factories.CommentFactory(post=published[1], author=reader, status=COMMENT.SPAM)
    factories.EmailFactory.create_batch(2)
    factories.EmailFactory(state=EMAIL.FAILED)
    # Sign-ups in the last 30 days: the admin, 3 staff, 3 new users, the author, the reader.
    return {"signups": 9, "posts": 6}


def test_dashboard_counts_accounts_by_role_and_status(client, site):
    text = page(client, "/admin/")

    expected = {
        "admin": {"active": 1, "inactive": 1, "new": 0},
        "staff": {"active": 2, "inactive": 0, "new": 1},
        "user": {"active": 2, "inactive": 2, "new": 3},
    }
    for role, by_status in expected.items():
        for status, count in by_status.items():
            assert cell(text, role, status) == count, (role, status)


def test_dashboard_counts_posts_comments_and_the_email_queue(client, site):
    text = page(client, "/admin/")

    assert figure(text, "status", "published") == 4
    assert figure(text, "status", "draft") == 2
    assert figure(text, "status", "hidden") == 1
    assert re.search(r'id="pending-comments">4<', text)
    assert figure(text, "state", "queued") == 2
    assert figure(text, "state", "failed") == 1
    assert figure(text, "state", "sent") == 0


# The chart itself is in test_admin_chart.py.


def test_chart_puts_each_row_on_its_day(app):
    from admin_views.dashboard import per_day

    now = datetime.now(UTC)
    author = factories.UserFactory()
    for days_ago, count in ((0, 2), (10, 3), (29, 1), (30, 4)):
        factories.PostFactory.create_batch(
            count, author=author, created_at=now - timedelta(days=days_ago)
        )

    counts = per_day(Post.created_at, 30)

    assert len(counts) == 30
    assert counts[29] == 2 and counts[19] == 3 and counts[0] == 1
    assert sum(counts) == 6  # 30 days ago is outside the window


def test_dashboard_has_no_inline_script(client, site):
    response = client.get("/admin/")
    text = response.get_data(as_text=True)

    scripts = re.findall(r"<script\b[^>]*>", text)
    assert scripts, "the admin's own scripts should load from files"
    for tag in scripts:
        assert re.search(r'\ssrc="[^"]+"', tag), tag
    body = text[text.index('id="accounts-panel"') :]
    assert not re.search(r"\son[a-z]+\s*=", body)
    assert "javascript:" not in body
    policy = response.headers["Content-Security-Policy"]
    script_src = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src


def test_dashboard_statements_do_not_grow_with_the_data(client, admin):
    with statements() as few:
        page(client, "/admin/")
    add_all(factories.CommentFactory.build_batch(60))
    add_all(factories.EmailFactory.build_batch(30))
    with statements() as many:
        page(client, "/admin/")

    assert len(many) == len(few), "\n".join(many)


@pytest.mark.parametrize(
    ("role", "expected"), [(None, "login"), ("user", 403), ("staff", 200), ("admin", 200)]
)
def test_dashboard_is_for_staff(client, auth, role, expected):
    if role is not None:
        factory = {
            "user": factories.UserFactory,
            "staff": factories.StaffFactory,
            "admin": factories.AdminFactory,
        }
        auth.login(factory[role](email=f"{role}@example.com").email)

    response = client.get("/admin/")

    if expected == "login":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/users/login/")
    else:
        assert response.status_code == expected
        if expected == 200:
            assert 'id="accounts-panel"' in response.get_data(as_text=True)
