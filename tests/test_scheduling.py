"""Scheduled posts, the editor's preview, and slugs: through HTTP, as an author and a reader."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from tests import factories
from tests.helpers import sign_in
from tests.helpers import text


@pytest.fixture
def people(app):
    return {
        "author": factories.UserFactory(name="Ada Author"),
        "reader": factories.UserFactory(name="Rex Reader"),
        "staff": factories.StaffFactory(),
    }


def later(hours: int) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def write(browser, path="/posts/new/", **fields):
    data = {"title": "News from tomorrow", "body": "Some **words**.", "action": "publish"}
    data.update(fields)
    return browser.submit(path, data)


def the_post() -> Post:
    return db.session.execute(db.select(Post)).scalar_one()


def test_a_later_time_schedules_the_post_and_readers_see_it_only_then(
    client, auth, browser, people
):
    sign_in(auth, people, "author")
    when = later(3).replace(second=0, microsecond=0)
    response = write(browser, publish_at=when.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 302
    post = the_post()
    assert post.status == POST.PUBLISHED
    assert post.published_at == when
    assert post.is_scheduled and not post.is_published
    assert "scheduled" in text(client.get(response.headers["Location"]))

    auth.logout()
    assert client.get(f"/posts/{post.slug}/").status_code == 404
    assert post.title not in text(client.get("/posts/"))
    assert post.title not in text(client.get(f"/users/{people['author'].handle}/"))

    post.published_at = datetime.now(UTC) - timedelta(minutes=1)
    db.session.commit()
    assert client.get(f"/posts/{post.slug}/").status_code == 200
    assert post.title in text(client.get("/posts/"))


def test_an_empty_or_past_time_publishes_now(client, auth, browser, people):
    sign_in(auth, people, "author")
    write(browser, publish_at=(datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    post = the_post()
    assert post.is_published
    assert post.published_at > datetime.now(UTC) - timedelta(minutes=1)


def test_publishing_a_scheduled_post_without_a_time_publishes_it_now(client, auth, browser, people):
    post = factories.PostFactory(author=people["author"], published_at=later(5))
    sign_in(auth, people, "author")
    edit_page = text(client.get(f"/posts/{post.slug}/edit/"))
    assert "Scheduled for" in edit_page
    write(browser, f"/posts/{post.slug}/edit/", title=post.title, publish_at="")
    db.session.refresh(post)
    assert post.is_published


def test_a_bad_time_is_refused_and_nothing_is_saved(client, auth, browser, people):
    sign_in(auth, people, "author")
    response = browser.submit(
        "/posts/new/",
        {"title": "T", "body": "B", "action": "publish", "publish_at": "tomorrow-ish"},
    )
    assert response.status_code == 200
    assert db.session.execute(db.select(Post)).first() is None


def test_the_author_and_staff_see_a_scheduled_post(client, auth, people):
    post = factories.PostFactory(author=people["author"], published_at=later(5))
    for who, expected in (("author", 200), ("staff", 200), ("reader", 404)):
        sign_in(auth, people, who)
        assert client.get(f"/posts/{post.slug}/").status_code == expected, who
        auth.logout()


def test_preview_renders_the_body_as_published_and_saves_nothing(client, auth, browser, people):
    sign_in(auth, people, "author")
    body = "Hello **bold** <script>alert(1)</script>"
    response = browser.submit("/posts/new/", {"title": "Draft", "body": body, "action": "preview"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<strong>bold</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert 'value="Draft"' in page  # the form keeps what was typed
    assert db.session.execute(db.select(Post)).first() is None


def test_preview_of_an_existing_post_changes_nothing(client, auth, browser, people):
    post = factories.PostFactory(author=people["author"], body="Old body")
    sign_in(auth, people, "author")
    response = browser.submit(
        f"/posts/{post.slug}/edit/",
        {"title": post.title, "body": "New *body*", "action": "preview"},
    )
    assert "<em>body</em>" in response.get_data(as_text=True)
    db.session.refresh(post)
    assert post.body == "Old body"


def test_an_edit_never_changes_the_slug(client, auth, browser, people):
    sign_in(auth, people, "author")
    write(browser, title="Привет мир")
    post = the_post()
    assert post.slug == "privet-mir"
    write(browser, f"/posts/{post.slug}/edit/", title="Совсем другое", action="save")
    db.session.refresh(post)
    assert post.slug == "privet-mir"
