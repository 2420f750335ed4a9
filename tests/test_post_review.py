"""Posts can wait for review (``POSTS_REQUIRE_APPROVAL``), and staff approve or reject them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.conftest import csrf_token

DECIDE = "/admin/post/decide/"


def write(client: FlaskClient, title: str = "Fresh words", action: str = "publish"):
    return Browser(client).submit(
        "/posts/new/", {"title": title, "body": "Some *words*.", "action": action}
    )


def the_post(title: str = "Fresh words") -> Post:
    db.session.expire_all()
    return db.session.execute(select(Post).where(Post.title == title)).scalar_one()


def veteran(**extra):
    """An account of a month's standing with one published post."""
    person = factories.UserFactory(created_at=utcnow() - timedelta(days=30), **extra)
    factories.PostFactory(author=person)
    return person


@pytest.mark.parametrize(
    ("mode", "who", "expected"),
    [
        ("off", "newcomer", POST.PUBLISHED),
        ("all", "veteran", POST.PENDING),
        ("all", "staff", POST.PUBLISHED),
        ("all", "admin", POST.PUBLISHED),
        ("new", "newcomer", POST.PENDING),
        ("new", "veteran", POST.PUBLISHED),
        ("new", "old without posts", POST.PENDING),
        ("new", "staff", POST.PUBLISHED),
    ],
)
def test_who_waits_for_review(app, client, mode, who, expected):
    app.config["POSTS_REQUIRE_APPROVAL"] = mode
    person = {
        "newcomer": lambda: factories.UserFactory(),
        "veteran": veteran,
        "old without posts": lambda: factories.UserFactory(
            created_at=utcnow() - timedelta(days=30)
        ),
        "staff": factories.StaffFactory,
        "admin": factories.AdminFactory,
    }[who]()
    AuthActions(client).login(person.email)
    assert write(client).status_code == 302
    post = the_post()
    assert post.status == expected
    assert (post.published_at is None) is (expected == POST.PENDING)


def test_the_author_is_told_and_readers_see_nothing(app, client):
    app.config["POSTS_REQUIRE_APPROVAL"] = "all"
    author = factories.UserFactory()
    AuthActions(client).login(author.email)
    saved = client.post(
        "/posts/new/",
        data={
            "csrf_token": csrf_token(client, "/posts/new/"),
            "title": "Fresh words",
            "body": "Hi.",
            "action": "publish",
        },
        follow_redirects=True,
    )
    text = saved.get_data(as_text=True)
    assert "Your post is waiting for review" in text
    assert "This post is waiting for review." in text
    slug = the_post().slug
    # Publishing again keeps it waiting; only staff decide.
    again = Browser(client).submit(
        f"/posts/{slug}/edit/", {"title": "Fresh words", "body": "Hi!", "action": "publish"}
    )
    assert again.status_code == 302 and the_post().status == POST.PENDING
    AuthActions(client).logout()
    assert client.get(f"/posts/{slug}/").status_code == 404
    assert "Fresh words" not in client.get("/posts/").get_data(as_text=True)


def test_a_published_post_stays_published_when_edited(app, client):
    author = factories.UserFactory()
    mine = factories.PostFactory(author=author, title="Old words", slug="old-words")
    app.config["POSTS_REQUIRE_APPROVAL"] = "all"
    AuthActions(client).login(author.email)
    edited = Browser(client).submit(
        "/posts/old-words/edit/", {"title": "Old words", "body": "New.", "action": "publish"}
    )
    assert edited.status_code == 302
    db.session.expire_all()
    assert db.session.get(Post, mine.id).status == POST.PUBLISHED


def decide(client: FlaskClient, post: Post, decision: str):
    return client.post(
        DECIDE,
        data={
            "csrf_token": csrf_token(client, "/admin/post/"),
            "id": post.id,
            "decision": decision,
        },
    )


@pytest.mark.parametrize(
    ("decision", "status", "action"),
    [
        ("approve", POST.PUBLISHED, AUDIT.ACTION_APPROVE),
        ("reject", POST.HIDDEN, AUDIT.ACTION_REJECT),
    ],
)
def test_staff_decide_in_one_step_and_it_is_audited(client, decision, status, action):
    waiting = factories.PostFactory(status=POST.PENDING, published_at=None)
    staff = factories.StaffFactory()
    AuthActions(client).login(staff.email)
    listing = client.get("/admin/post/").get_data(as_text=True)
    assert "Posts (1 waiting)" in listing
    assert f'action="{DECIDE}"' in listing
    assert decide(client, waiting, decision).status_code == 302
    db.session.expire_all()
    decided = db.session.get(Post, waiting.id)
    assert decided.status == status
    assert (decided.published_at is not None) is (status == POST.PUBLISHED)
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.object_type == AUDIT.OBJECT_POST)
    ).scalar_one()
    assert (event.action, event.actor_id) == (action, staff.id)
    # Decided once: a second click says so and changes nothing.
    assert decide(client, waiting, "approve").status_code == 302
    db.session.expire_all()
    assert db.session.get(Post, waiting.id).status == status


def test_bulk_approve_asks_for_a_reason(client):
    first, second = (factories.PostFactory(status=POST.PENDING, published_at=None) for _ in "ab")
    AuthActions(client).login(factories.AdminFactory().email)
    page = f"/admin/post/action/approve/?ids={first.id},{second.id}"
    response = client.post(
        page,
        data={"csrf_token": csrf_token(client, page), "reason": "Both fine."},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert {db.session.get(Post, p.id).status for p in (first, second)} == {POST.PUBLISHED}
    reasons = db.session.execute(
        select(AuditEvent.changes).where(AuditEvent.action == AUDIT.ACTION_APPROVE)
    ).scalars()
    assert [changes["reason"] for changes in reasons] == [[None, "Both fine."]] * 2


@pytest.mark.parametrize("role", [None, "user"])
def test_only_staff_approve(client, role):
    waiting = factories.PostFactory(status=POST.PENDING, published_at=None)
    if role is not None:
        AuthActions(client).login(factories.UserFactory().email)
    token = csrf_token(client, "/users/login/" if role is None else "/users/me/")
    response = client.post(
        DECIDE, data={"csrf_token": token, "id": waiting.id, "decision": "approve"}
    )
    assert response.status_code == (302 if role is None else 403)
    db.session.expire_all()
    assert db.session.get(Post, waiting.id).status == POST.PENDING
