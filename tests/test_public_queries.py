"""Public pages run a fixed number of SQL statements, whatever their page size."""

from __future__ import annotations

import html
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from portal.comments import constants as COMMENT
from portal.extensions import db
from tests import factories
from tests.helpers import statements

ROWS = 120  # enough for two full pages at the largest size tried
SIZES = (10, 50)
BUSY = "busy-post"

# How many of its rows a page shows, found by the markup of one row.
POST_ROW = 'class="card post-summary"'
COMMENT_ROW = '<article class="comment" id='
WAITING_ROW = '<article class="comment waiting" id='

PAGES = {
    "/": POST_ROW,
    "/posts/": POST_ROW,
    f"/posts/{BUSY}/": COMMENT_ROW,
    "/users/prolific/": POST_ROW,
}
# The most statements each page may run: the rows (with their authors) and, on
# the post page and profile, the post or person first. Signing in adds the
# account's own row and, on the post page, that reader's comments waiting for
# moderation.
MOST = {"/": 1, "/posts/": 1, f"/posts/{BUSY}/": 2, "/users/prolific/": 2}
SIGNED_IN_EXTRA = {"/": 1, "/posts/": 1, f"/posts/{BUSY}/": 2, "/users/prolific/": 1}


@pytest.fixture
def world(app):
    """More rows than any page shows, each by a different person where that matters."""
    now = datetime.now(UTC)
    reader = factories.UserFactory.build(email="reader@example.com", handle="reader")
    prolific = factories.UserFactory.build(handle="prolific")
    rows: list[object] = [reader, prolific]
    busy = factories.PostFactory.build(
        author=prolific, slug=BUSY, published_at=now, comment_count=ROWS
    )
    rows.append(busy)
    for number in range(ROWS):
        moment = now - timedelta(minutes=number + 1)
        # Someone else's post each (the lists load every author) and the author's own.
        rows.append(factories.PostFactory.build(published_at=moment))
        rows.append(factories.PostFactory.build(author=prolific, published_at=moment))
        rows.append(
            factories.CommentFactory.build(
                post=busy, status=COMMENT.APPROVED, created_at=now + timedelta(seconds=number)
            )
        )
        rows.append(factories.CommentFactory.build(post=busy, author=reader))  # waiting
    rows += factories.DraftFactory.build_batch(5, author=prolific)
    rows += factories.HiddenPostFactory.build_batch(5, author=prolific)
    db.session.add_all(rows)
    db.session.commit()
    return reader


def rows_shown(page, marker):
    return page.count(marker)


def next_link(page):
    match = re.search(r'<a rel="next" href="([^"]+)"', page) or re.search(
        r'<a href="([^"]+)">Older posts →</a>', page
    )
    assert match, "no link to the next page"
    return html.unescape(match.group(1))


def measure(app, client, path, size):
    """Set the page sizes, then return the page and the statements its GET ran."""
    app.config["POSTS_PER_PAGE"] = size
    app.config["COMMENTS_PER_PAGE"] = size
    client.get(path)  # connections opened, caches warm: count only what the page itself needs
    with statements() as seen:
        response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True), seen


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("path", PAGES)
def test_page_runs_the_same_statements_at_any_page_size(app, client, auth, world, path, signed_in):
    if signed_in:
        assert auth.login(world.email).status_code == 302
    counts = {}
    for size in SIZES:
        page, seen = measure(app, client, path, size)
        assert rows_shown(page, PAGES[path]) == size  # the page really holds ``size`` rows
        if signed_in and path == f"/posts/{BUSY}/":
            assert rows_shown(page, WAITING_ROW) == size
        counts[size] = seen
    small, large = (counts[size] for size in SIZES)
    assert len(small) == len(large), "\n\n".join(large)
    most = MOST[path] + (SIGNED_IN_EXTRA[path] if signed_in else 0)
    assert len(large) <= most, "\n\n".join(large)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize("path", ["/", "/posts/", f"/posts/{BUSY}/", "/users/prolific/"])
def test_later_pages_run_the_same_statements_too(app, client, auth, world, path, signed_in):
    if signed_in:
        assert auth.login(world.email).status_code == 302
    counts = {}
    for size in SIZES:
        first, _ = measure(app, client, path, size)
        later = next_link(first)
        page, seen = measure(app, client, later, size)
        assert rows_shown(page, PAGES[path]) == size, later
        counts[size] = seen
    small, large = (counts[size] for size in SIZES)
    assert len(small) == len(large), "\n\n".join(large)


def test_search_runs_the_same_statements_at_any_page_size(app, client, world):
    # One statement, whatever the words: on PostgreSQL several words read the
    # newest posts first and the index only if those hold too few, within it.
    for query in ("post", "post number"):
        counts = []
        for size in SIZES:
            page, seen = measure(app, client, f"/posts/?q={query.replace(' ', '+')}", size)
            assert rows_shown(page, POST_ROW) == size
            counts.append(len(seen))
        assert counts == [MOST["/posts/"]] * 2, query
