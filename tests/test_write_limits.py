"""Saving posts and comments is limited per account: each save renders Markdown.

New posts and post edits share one limit (``POST_WRITE_LIMIT``), new comments
and comment edits another (``COMMENT_WRITE_LIMIT``); both are counted per
account, whatever address it writes from, and answer the 429 page. Accounts
younger than ``NEW_ACCOUNT_DAYS`` also count towards tighter limits, and may
put at most ``NEW_ACCOUNT_MAX_LINKS`` links in what they write.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.database import utcnow
from portal.extensions import db
from portal.posts.models import Post
from tests import factories
from tests.conftest import AuthActions

SLUG = "under-discussion"


@pytest.fixture
def writer(app):
    return factories.UserFactory(name="Wren Writer", email="wren@example.com")


@pytest.fixture
def post(app):
    return factories.PostFactory(title="Under discussion", slug=SLUG)


def count(model):
    db.session.expire_all()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def write_post(browser, number):
    data = {"title": f"Post {number}", "body": "Some *words*.", "action": "publish"}
    return browser.submit("/posts/new/", data)


def assert_limited(response):
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_new_posts_are_limited_per_account(app, client, auth, browser, writer):
    app.config["POST_WRITE_LIMIT"] = "2 per minute"
    auth.login(writer.email)

    assert [write_post(browser, n).status_code for n in range(2)] == [302, 302]
    blocked = write_post(browser, 3)

    assert_limited(blocked)
    assert count(Post) == 2
    # The form still opens; only saving waits.
    assert client.get("/posts/new/").status_code == 200


def test_post_edits_share_the_limit_with_new_posts(app, auth, browser, writer):
    app.config["POST_WRITE_LIMIT"] = "3 per minute"
    auth.login(writer.email)
    assert write_post(browser, 1).status_code == 302
    (mine,) = db.session.execute(select(Post)).scalars()
    edit = f"/posts/{mine.slug}/edit/"

    def save(title):
        return browser.submit(edit, {"title": title, "body": "Changed.", "action": "save"})

    assert [save("Second").status_code, save("Third").status_code] == [302, 302]
    blocked = save("Fourth")

    assert_limited(blocked)
    db.session.expire_all()
    assert db.session.get(Post, mine.id).title == "Third"


def test_the_post_limit_is_per_account_not_per_address(app, client, auth, browser, writer):
    app.config["POST_WRITE_LIMIT"] = "1 per minute"
    other = factories.UserFactory(email="otto@example.com")
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    auth.login(writer.email)
    assert write_post(browser, 1).status_code == 302

    # The same account from another address is still limited...
    client.environ_base["REMOTE_ADDR"] = "198.51.100.8"
    assert_limited(write_post(browser, 2))
    # ...and another account from the first address is not.
    auth.logout()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    auth.login(other.email)
    assert write_post(browser, 3).status_code == 302
    assert count(Post) == 2


def test_comments_and_their_edits_are_limited_per_account(app, client, auth, browser, writer, post):
    app.config["COMMENT_WRITE_LIMIT"] = "3 per minute"
    auth.login(writer.email)
    path = f"/posts/{SLUG}/comments/"
    first = browser.submit(path, {"body": "First."}, token_from=f"/posts/{SLUG}/")
    second = browser.submit(path, {"body": "Second."}, token_from=f"/posts/{SLUG}/")
    assert [first.status_code, second.status_code] == [302, 302]
    mine = db.session.execute(select(Comment).order_by(Comment.id)).scalars().first()
    assert mine is not None and mine.status == COMMENT.PENDING
    edit = f"/comments/{mine.id}/edit/"
    assert browser.submit(edit, {"body": "First, edited."}).status_code == 302

    assert_limited(browser.submit(path, {"body": "Third."}, token_from=f"/posts/{SLUG}/"))
    assert_limited(browser.submit(edit, {"body": "First, again."}))
    assert count(Comment) == 2
    db.session.expire_all()
    assert db.session.get(Comment, mine.id).body == "First, edited."

    # Another account comments as before; the post limit is a different one.
    AuthActions(client).logout()
    auth.login(factories.UserFactory(email="otto@example.com").email)
    again = browser.submit(path, {"body": "Otto here."}, token_from=f"/posts/{SLUG}/")
    assert again.status_code == 302


# -- newcomers: tighter limits, and few links ------------------------------------

LINKS = (
    "See [one](https://example.org/1), [two](https://example.org/2) and <https://example.org/3>."
)


def old_account(**extra):
    return factories.UserFactory(created_at=utcnow() - timedelta(days=30), **extra)


def test_newcomers_write_under_a_tighter_limit(app, client, auth, browser, writer):
    app.config.update(NEW_ACCOUNT_DAYS=7, NEW_ACCOUNT_POST_WRITE_LIMIT="1 per minute")
    auth.login(writer.email)
    assert write_post(browser, 1).status_code == 302
    assert_limited(write_post(browser, 2))
    assert count(Post) == 1

    # An account of a month's standing keeps the ordinary limit.
    auth.logout()
    auth.login(old_account(email="olga@example.com").email)
    assert [write_post(browser, n).status_code for n in (3, 4)] == [302, 302]


def test_newcomers_comment_under_a_tighter_limit(app, client, auth, browser, writer, post):
    app.config.update(NEW_ACCOUNT_DAYS=7, NEW_ACCOUNT_COMMENT_WRITE_LIMIT="1 per minute")
    auth.login(writer.email)
    path = f"/posts/{SLUG}/comments/"
    assert browser.submit(path, {"body": "One."}, token_from=f"/posts/{SLUG}/").status_code == 302
    assert_limited(browser.submit(path, {"body": "Two."}, token_from=f"/posts/{SLUG}/"))
    assert count(Comment) == 1


def test_staff_are_never_newcomers(app, auth, browser):
    app.config.update(NEW_ACCOUNT_DAYS=7, NEW_ACCOUNT_POST_WRITE_LIMIT="1 per minute")
    auth.login(factories.StaffFactory(email="sid@example.com").email)
    assert [write_post(browser, n).status_code for n in (1, 2)] == [302, 302]


def test_a_newcomers_post_with_too_many_links_is_refused(app, auth, browser, writer):
    app.config.update(NEW_ACCOUNT_DAYS=7, NEW_ACCOUNT_MAX_LINKS=2)
    auth.login(writer.email)
    data = {"title": "Links", "body": LINKS, "action": "publish"}
    refused = browser.submit("/posts/new/", data)
    assert refused.status_code == 200
    assert "New accounts can put at most 2 link(s) in a post" in refused.get_data(as_text=True)
    assert count(Post) == 0
    # Two links (the autolink counts like the others) are fine.
    fewer = LINKS.replace(" and <https://example.org/3>", "")
    assert browser.submit("/posts/new/", {**data, "body": fewer}).status_code == 302
    assert count(Post) == 1


def test_a_newcomers_comment_with_too_many_links_is_refused(app, auth, browser, writer, post):
    app.config.update(NEW_ACCOUNT_DAYS=7, NEW_ACCOUNT_MAX_LINKS=2)
    auth.login(writer.email)
    path = f"/posts/{SLUG}/comments/"
    refused = browser.submit(path, {"body": LINKS}, token_from=f"/posts/{SLUG}/")
    assert refused.status_code == 200
    assert "New accounts can put at most 2 link(s) in a comment" in refused.get_data(as_text=True)
    assert count(Comment) == 0


def test_older_accounts_may_link_freely(app, auth, browser):
    app.config.update(NEW_ACCOUNT_DAYS=7, NEW_ACCOUNT_MAX_LINKS=2)
    auth.login(old_account(email="olga@example.com").email)
    data = {"title": "Links", "body": LINKS, "action": "publish"}
    assert browser.submit("/posts/new/", data).status_code == 302
    assert count(Post) == 1
