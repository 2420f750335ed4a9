"""Post pages rendered for visitors are reused, and never serve anyone else's page."""

from __future__ import annotations

import pytest
import redis

from portal.comments import services as comment_services
from portal.extensions import db
from tests import factories
from tests.conftest import AuthActions


@pytest.fixture(params=["local", "redis"])
def cached_app(request, make_app):
    overrides = {"PAGE_CACHE_SECONDS": 60}
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        overrides["REDIS_URL"] = redis_url
        # The test Redis database is for tests alone: start it empty.
        redis.Redis.from_url(redis_url).flushdb()
    app = make_app(**overrides)
    with app.app_context():
        yield app


def _body(client, path):
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_visitor_gets_the_same_page_until_the_post_changes(cached_app):
    post = factories.PostFactory(title="Kept page")
    client = cached_app.test_client()
    first = _body(client, f"/posts/{post.slug}/")

    # A change the key does not see (a direct write) is served from the cache...
    post.body_html = "<p>changed behind the cache</p>"
    db.session.commit()
    assert _body(client, f"/posts/{post.slug}/") == first

    # ...and a change that moves the key (an approved comment) shows at once.
    comment = factories.CommentFactory(post=post, body="Fresh comment")
    staff = factories.StaffFactory()
    comment_services.moderate([comment], 1, actor=staff)
    page = _body(client, f"/posts/{post.slug}/")
    assert "Fresh comment" in page
    assert "changed behind the cache" in page


def test_signed_in_readers_never_get_or_fill_the_cache(cached_app):
    post = factories.PostFactory()
    factories.UserFactory(email="reader@example.com")
    visitor = cached_app.test_client()
    reader = cached_app.test_client()
    assert AuthActions(reader).login("reader@example.com").status_code == 302
    visitor_page = _body(visitor, f"/posts/{post.slug}/")
    reader_page = _body(reader, f"/posts/{post.slug}/")
    assert "Post comment" in reader_page  # the reader's own form, with its CSRF token
    assert "Post comment" not in visitor_page
    assert "Post comment" not in _body(visitor, f"/posts/{post.slug}/")


def test_drafts_are_never_cached(cached_app):
    draft = factories.DraftFactory()
    client = cached_app.test_client()
    assert client.get(f"/posts/{draft.slug}/").status_code == 404
    draft.status = 1
    draft.published_at = draft.created_at
    db.session.commit()
    assert client.get(f"/posts/{draft.slug}/").status_code == 200
