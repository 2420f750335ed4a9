"""Posts through the pages: who may read, write, edit, moderate and delete them, by GET and POST."""

from __future__ import annotations

import html
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.emails.models import Email
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from tests import factories
from tests.helpers import sign_in
from tests.helpers import text
from tests.helpers import token_page

LOGIN = "/users/login/?next="
SLUG = "the-post"
ROLES = [None, "new", "author", "other", "staff", "admin"]
WRITERS = ["author", "other", "staff", "admin"]


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def people(app):
    """One account per role; ``author`` wrote the posts the tests look at."""
    return {
        "new": factories.NewUserFactory(name="Nina New", email="new@example.com"),
        "author": factories.UserFactory(
            name="Alice Author", email="author@example.com", handle="alice-author"
        ),
        "other": factories.UserFactory(name="Oscar Other", email="other@example.com"),
        "staff": factories.StaffFactory(name="Sam Staff", email="staff@example.com"),
        "admin": factories.AdminFactory(name="Ada Admin", email="admin@example.com"),
    }


def all_posts():
    db.session.expire_all()
    return db.session.execute(select(Post).order_by(Post.id)).scalars().all()


def fresh(post):
    db.session.expire_all()
    return db.session.get(Post, post.id)


def snapshot(post):
    """The columns a refused request must leave alone."""
    row = fresh(post)
    if row is None:
        return None
    return (row.title, row.slug, row.body, row.body_html, row.status, row.published_at)


def titles_on(page):
    """Post titles in the order a list page shows them."""
    found = re.findall(r'<h2><a href="/posts/[^"]+/">(.*?)</a></h2>', page)
    # Search results mark the words that matched.
    return [html.unescape(re.sub(r"</?mark>", "", title)) for title in found]


def link(page, rel):
    """The href of the pager's rel=next / rel=prev link, or None."""
    match = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html.unescape(match.group(1)) if match else None


def flashes(page):
    return [html.unescape(m) for m in re.findall(r'<p class="flash [^"]*">([^<]*)<', page)]


def write_data(title="A fresh post", body="Some *words*.", action="publish"):
    return {"title": title, "body": body, "action": action}


@pytest.fixture
def post(people):
    return factories.PostFactory(
        author=people["author"], title="The post", slug=SLUG, body="The **body**."
    )


# -- reading: the public pages -------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_public_pages_open_to_everyone(client, auth, people, post, role):
    sign_in(auth, people, role)
    for path in ["/", "/posts/", f"/posts/{SLUG}/", "/users/alice-author/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "The post" in text(response), path


def test_post_page_shows_title_body_author_and_approved_comments_only(client, people, post):
    factories.ApprovedCommentFactory(post=post, author=people["other"], body="Approved words.")
    factories.CommentFactory(post=post, author=people["other"], body="Pending words.")
    factories.CommentFactory(
        post=post, author=people["other"], body="Rejected words.", status=COMMENT.REJECTED
    )
    factories.CommentFactory(
        post=post, author=people["other"], body="Spam words.", status=COMMENT.SPAM
    )
    page = text(client.get(f"/posts/{SLUG}/"))
    assert "<h1>The post</h1>" in page
    assert "<strong>body</strong>" in page
    assert '<a href="/users/alice-author/">Alice Author</a>' in page
    assert "Approved words." in page
    assert "1 comment" in page
    for hidden in ["Pending words.", "Rejected words.", "Spam words."]:
        assert hidden not in page


def test_home_page_lists_newest_published_posts_only(client, people):
    now = datetime.now(UTC)
    factories.PostFactory(
        author=people["author"], title="Older one", published_at=now - timedelta(days=2)
    )
    factories.PostFactory(author=people["author"], title="Newer one", published_at=now)
    factories.DraftFactory(author=people["author"], title="Draft one")
    factories.HiddenPostFactory(author=people["author"], title="Hidden one")
    page = text(client.get("/"))
    assert titles_on(page) == ["Newer one", "Older one"]
    assert titles_on(text(client.get("/posts/"))) == ["Newer one", "Older one"]


def test_empty_lists_say_so(client, people):
    assert "Nothing is published yet." in text(client.get("/"))
    assert "Nothing is published yet." in text(client.get("/posts/"))
    assert "Alice Author has not published anything yet." in text(
        client.get("/users/alice-author/")
    )


@pytest.mark.parametrize(
    ("role", "shown"),
    [(None, False), ("new", False), ("author", True), ("staff", True), ("admin", True)],
)
def test_write_link_only_for_accounts_that_may_write(client, auth, people, role, shown):
    sign_in(auth, people, role)
    for path in ["/", "/posts/"]:
        assert ('href="/posts/new/"' in text(client.get(path))) is shown, path


# -- drafts and hidden posts ---------------------------------------------------

VISIBILITY = {
    None: 404,
    "new": 404,
    "other": 404,
    "author": 200,
    "staff": 200,
    "admin": 200,
}


@pytest.mark.parametrize("factory", [factories.DraftFactory, factories.HiddenPostFactory])
@pytest.mark.parametrize("role", ROLES)
def test_drafts_and_hidden_posts_are_404_to_everyone_but_author_and_staff(
    client, auth, people, role, factory
):
    factory(author=people["author"], title="Not public", slug=SLUG)
    sign_in(auth, people, role)
    response = client.get(f"/posts/{SLUG}/")
    assert response.status_code == VISIBILITY[role]
    if VISIBILITY[role] == 200:
        assert "Not public" in text(response)
        assert "Only its author and staff can see it." in text(response)
    else:
        assert "Not public" not in text(response)
    for path in ["/", "/posts/", "/users/alice-author/", "/posts/?q=public"]:
        assert "Not public" not in text(client.get(path)), path


@pytest.mark.parametrize("factory", [factories.DraftFactory, factories.HiddenPostFactory])
@pytest.mark.parametrize("role", [None, "new", "other"])
def test_edit_delete_and_status_of_unpublished_posts_are_404_to_others(
    client, auth, browser, people, role, factory
):
    post = factory(author=people["author"], slug=SLUG)
    sign_in(auth, people, role)
    before = snapshot(post)
    for path in [f"/posts/{SLUG}/edit/", f"/posts/{SLUG}/delete/"]:
        assert client.get(path).status_code == 404, path
    token = token_page(role)
    posts = [
        (f"/posts/{SLUG}/edit/", write_data(title="Taken over")),
        (f"/posts/{SLUG}/delete/", {}),
        (f"/posts/{SLUG}/status/", {"status": "published"}),
        (f"/posts/{SLUG}/comments/", {"body": "Hello"}),
    ]
    for path, data in posts:
        response = browser.submit(path, data, token_from=token)
        if role is None and path.endswith("/comments/"):
            assert response.status_code == 302  # signing in comes first
        elif role == "new" and path.endswith("/comments/"):
            assert response.status_code == 403  # so does a confirmed address
        else:
            assert response.status_code == 404, path
    assert snapshot(post) == before
    assert db.session.execute(select(func.count(Comment.id))).scalar_one() == 0


# -- writing: GET access table -------------------------------------------------

EDIT_ACCESS = {None: 302, "new": 403, "other": 403, "author": 200, "staff": 200, "admin": 200}
GET_CASES = (
    [(role, "/posts/new/", {None: 302, "new": 403}.get(role, 200)) for role in ROLES]
    + [(role, f"/posts/{SLUG}/edit/", EDIT_ACCESS[role]) for role in ROLES]
    + [(role, f"/posts/{SLUG}/delete/", EDIT_ACCESS[role]) for role in ROLES]
)


@pytest.mark.parametrize(("role", "path", "expected"), GET_CASES)
def test_writing_pages_by_get(client, auth, people, post, role, path, expected):
    sign_in(auth, people, role)
    response = client.get(path)
    assert response.status_code == expected
    if expected == 302:
        assert response.headers["Location"] == LOGIN + path
    assert snapshot(post) is not None


def test_new_account_sees_why_it_cannot_write_and_can_ask_for_a_new_link(
    client, auth, browser, people
):
    sign_in(auth, people, "new")
    response = client.get("/posts/new/")
    assert response.status_code == 403
    page = text(response)
    assert "Confirm your email address first" in page
    assert "new@example.com" in page
    assert 'action="/users/confirm/resend/"' in page
    assert "Send a new link" in page

    resent = browser.submit("/users/confirm/resend/", token_from="/posts/new/")
    assert resent.status_code == 302
    [queued] = db.session.execute(select(Email)).scalars().all()
    assert queued.to_address == "new@example.com"


def test_edit_page_is_filled_with_the_post(client, auth, people, post):
    sign_in(auth, people, "author")
    page = text(client.get(f"/posts/{SLUG}/edit/"))
    assert 'value="The post"' in page
    assert "The **body**." in page


@pytest.mark.parametrize(
    ("role", "shown"), [(None, False), ("other", False), ("author", True), ("staff", True)]
)
def test_edit_and_delete_links_only_for_those_who_may(client, auth, people, post, role, shown):
    sign_in(auth, people, role)
    page = text(client.get(f"/posts/{SLUG}/"))
    assert (f'href="/posts/{SLUG}/edit/"' in page) is shown
    assert (f'href="/posts/{SLUG}/delete/"' in page) is shown


@pytest.mark.parametrize(
    ("role", "shown"),
    [(None, False), ("other", False), ("author", False), ("staff", True), ("admin", True)],
)
def test_moderation_buttons_only_for_staff(client, auth, people, post, role, shown):
    sign_in(auth, people, role)
    page = text(client.get(f"/posts/{SLUG}/"))
    assert (f'action="/posts/{SLUG}/status/"' in page) is shown


# -- writing: crafted POSTs ----------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_create_post_by_role(client, auth, browser, people, role):
    sign_in(auth, people, role)
    response = browser.submit(
        "/posts/new/", write_data(title="Hello, World!"), token_from=token_page(role)
    )
    if role is None:
        assert response.status_code == 302
        assert response.headers["Location"] == "/users/login/"
        assert all_posts() == []
    elif role == "new":
        assert response.status_code == 403
        assert "Confirm your email address first" in text(response)
        assert all_posts() == []
    else:
        assert response.status_code == 302
        assert response.headers["Location"] == "/posts/hello-world/"
        [created] = all_posts()
        assert created.author_id == people[role].id
        assert (created.title, created.slug, created.status) == (
            "Hello, World!",
            "hello-world",
            POST.PUBLISHED,
        )
        assert created.body_html == "<p>Some <em>words</em>.</p>\n"
        assert created.published_at is not None
        page = text(client.get(response.headers["Location"]))
        assert "Your post is published." in flashes(page)
        assert "Hello, World!" in titles_on(text(client.get("/posts/")))


def test_create_as_draft_then_publish(client, auth, browser, people):
    sign_in(auth, people, "author")
    response = browser.submit("/posts/new/", write_data(title="Draft first", action="draft"))
    assert response.headers["Location"] == "/posts/draft-first/"
    [draft] = all_posts()
    assert (draft.status, draft.published_at) == (POST.DRAFT, None)
    page = text(client.get("/posts/draft-first/"))
    assert "Draft saved." in flashes(page)
    assert "This is a draft." in page
    assert "Draft first" not in text(client.get("/posts/"))

    response = browser.submit(
        "/posts/draft-first/edit/", write_data(title="Draft first", action="publish")
    )
    assert response.headers["Location"] == "/posts/draft-first/"
    published = fresh(draft)
    assert published.status == POST.PUBLISHED
    assert published.published_at is not None
    assert titles_on(text(client.get("/posts/"))) == ["Draft first"]


def test_create_without_csrf_token_is_refused(client, auth, people):
    sign_in(auth, people, "author")
    response = client.post("/posts/new/", data=write_data())
    assert response.status_code == 400
    assert all_posts() == []


EDIT_POST = {None: 302, "new": 403, "other": 403, "author": 302, "staff": 302, "admin": 302}


@pytest.mark.parametrize("role", ROLES)
def test_edit_post_by_role(client, auth, browser, people, post, role):
    sign_in(auth, people, role)
    before = snapshot(post)
    response = browser.submit(
        f"/posts/{SLUG}/edit/",
        write_data(title="A new title", body="New *body*", action="save"),
        token_from=token_page(role),
    )
    assert response.status_code == EDIT_POST[role]
    if role is None:
        assert response.headers["Location"] == "/users/login/"
    if EDIT_POST[role] == 302 and role is not None:
        assert response.headers["Location"] == f"/posts/{SLUG}/"
        row = fresh(post)
        assert (row.title, row.slug, row.body) == ("A new title", SLUG, "New *body*")
        assert row.body_html == "<p>New <em>body</em></p>\n"
        assert row.status == POST.PUBLISHED
        assert row.author_id == people["author"].id
        page = text(client.get(f"/posts/{SLUG}/"))
        assert "<h1>A new title</h1>" in page
        assert "Your changes are saved." in flashes(page)
    else:
        assert snapshot(post) == before


def test_unpublishing_from_the_edit_form_keeps_it_out_of_the_lists(
    client, auth, browser, people, post
):
    sign_in(auth, people, "author")
    browser.submit(f"/posts/{SLUG}/edit/", write_data(title="The post", action="draft"))
    assert fresh(post).status == POST.DRAFT
    auth.logout()
    assert client.get(f"/posts/{SLUG}/").status_code == 404
    assert "The post" not in text(client.get("/posts/"))


DELETE_POST = {None: 302, "new": 403, "other": 403, "author": 302, "staff": 302, "admin": 302}


@pytest.mark.parametrize("role", ROLES)
def test_delete_post_by_role(client, auth, browser, people, post, role):
    factories.ApprovedCommentFactory(post=post, author=people["other"])
    factories.CommentFactory(post=post, author=people["other"])
    sign_in(auth, people, role)
    before = snapshot(post)
    response = browser.submit(f"/posts/{SLUG}/delete/", token_from=token_page(role))
    assert response.status_code == DELETE_POST[role]
    comments = db.session.execute(select(func.count(Comment.id))).scalar_one()
    if role is None:
        assert response.headers["Location"] == "/users/login/"
    if DELETE_POST[role] == 302 and role is not None:
        assert response.headers["Location"] == "/posts/"
        assert all_posts() == []
        assert comments == 0
        assert "“The post” is deleted." in flashes(text(client.get("/posts/")))
        assert client.get(f"/posts/{SLUG}/").status_code == 404
    else:
        assert snapshot(post) == before
        assert comments == 2


def test_delete_page_asks_first_and_changes_nothing(client, auth, people, post):
    factories.ApprovedCommentFactory(post=post, author=people["other"])
    sign_in(auth, people, "author")
    page = text(client.get(f"/posts/{SLUG}/delete/"))
    assert "Delete this post?" in page
    assert "“The post” and its 1 published comment" in page
    assert f'action="/posts/{SLUG}/delete/"' in page
    assert snapshot(post) is not None


# -- moderation: publish, hide, unpublish --------------------------------------

STATUS_POST = {None: 302, "new": 403, "other": 403, "author": 403, "staff": 302, "admin": 302}


@pytest.mark.parametrize("role", ROLES)
def test_hide_by_role(client, auth, browser, people, post, role):
    sign_in(auth, people, role)
    before = snapshot(post)
    response = browser.submit(
        f"/posts/{SLUG}/status/", {"status": "hidden"}, token_from=token_page(role)
    )
    assert response.status_code == STATUS_POST[role]
    if role is None:
        assert response.headers["Location"] == "/users/login/"
    if STATUS_POST[role] == 302 and role is not None:
        assert response.headers["Location"] == f"/posts/{SLUG}/"
        assert fresh(post).status == POST.HIDDEN
        page = text(client.get(f"/posts/{SLUG}/"))
        assert "The post is now hidden." in flashes(page)
        assert "Staff have hidden this post." in page
    else:
        assert snapshot(post) == before


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_moderators_publish_and_unpublish_drafts(client, auth, browser, people, role):
    draft = factories.DraftFactory(author=people["author"], title="Waiting", slug=SLUG)
    sign_in(auth, people, role)
    browser.submit(f"/posts/{SLUG}/status/", {"status": "published"})
    row = fresh(draft)
    assert row.status == POST.PUBLISHED
    first_published = row.published_at
    assert first_published is not None
    assert "Waiting" in titles_on(text(client.get("/posts/")))

    browser.submit(f"/posts/{SLUG}/status/", {"status": "draft"})
    assert fresh(draft).status == POST.DRAFT
    assert "Waiting" not in titles_on(text(client.get("/posts/")))

    browser.submit(f"/posts/{SLUG}/status/", {"status": "published"})
    assert fresh(draft).published_at == first_published  # its place in the list is kept


@pytest.mark.parametrize("status", ["bogus", "", "HIDDEN; DROP TABLE posts_post"])
def test_unknown_status_is_a_bad_request(client, auth, browser, people, post, status):
    sign_in(auth, people, "staff")
    response = browser.submit(f"/posts/{SLUG}/status/", {"status": status})
    assert response.status_code == 400
    assert fresh(post).status == POST.PUBLISHED


def test_status_change_is_post_only(client, auth, people, post):
    sign_in(auth, people, "staff")
    assert client.get(f"/posts/{SLUG}/status/").status_code == 405
    assert fresh(post).status == POST.PUBLISHED


def test_author_cannot_unhide_a_post_staff_hid(client, auth, browser, people):
    hidden = factories.HiddenPostFactory(author=people["author"], title="Taken down", slug=SLUG)
    sign_in(auth, people, "author")
    page = text(client.get(f"/posts/{SLUG}/"))
    assert "Staff have hidden this post." in page
    before = snapshot(hidden)

    response = browser.submit(f"/posts/{SLUG}/status/", {"status": "published"})
    assert response.status_code == 403
    assert snapshot(hidden) == before

    response = browser.submit(
        f"/posts/{SLUG}/edit/", write_data(title="Sneaked back", action="publish")
    )
    assert response.status_code == 200
    assert "Staff have hidden this post; it cannot be published again." in text(response)
    assert snapshot(hidden) == before

    response = browser.submit(
        f"/posts/{SLUG}/edit/", write_data(title="Taken down", action="draft")
    )
    assert fresh(hidden).status == POST.HIDDEN
    auth.logout()
    assert client.get(f"/posts/{SLUG}/").status_code == 404


def test_author_may_still_fix_and_delete_a_hidden_post(client, auth, browser, people):
    hidden = factories.HiddenPostFactory(author=people["author"], title="Taken down", slug=SLUG)
    sign_in(auth, people, "author")
    response = browser.submit(f"/posts/{SLUG}/edit/", write_data(title="Fixed", action="save"))
    assert response.headers["Location"] == f"/posts/{SLUG}/"
    row = fresh(hidden)
    assert (row.title, row.status) == ("Fixed", POST.HIDDEN)
    response = browser.submit(f"/posts/{SLUG}/delete/")
    assert response.headers["Location"] == "/posts/"
    assert all_posts() == []


# -- slugs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Hello, World!", "hello-world"),
        ("  Crème brûlée à la carte  ", "creme-brulee-a-la-carte"),
        ("C++ & Rust: 2024's guide", "c-rust-2024-s-guide"),
        ("日本語のタイトル", "ri-ben-yu-notaitoru"),
        ("Привет, мир", "privet-mir"),
        ("Καλημέρα κόσμε", "kalemera-kosme"),
        ("!!!", "post"),
        ("x" * 200, "x" * 72),
    ],
)
def test_slug_is_made_from_the_title(client, auth, browser, people, title, slug):
    sign_in(auth, people, "author")
    response = browser.submit("/posts/new/", write_data(title=title))
    assert response.headers["Location"] == f"/posts/{slug}/"
    [created] = all_posts()
    assert created.slug == slug
    assert created.title == title.strip()
    assert client.get(f"/posts/{slug}/").status_code == 200


def test_equal_titles_get_unique_slugs(client, auth, browser, people):
    sign_in(auth, people, "author")
    locations = [
        browser.submit("/posts/new/", write_data(title="Same title")).headers["Location"]
        for _ in range(3)
    ]
    assert locations == ["/posts/same-title/", "/posts/same-title-2/", "/posts/same-title-3/"]
    # A title that slugs to an existing one with a suffix does not collide either.
    location = browser.submit("/posts/new/", write_data(title="Same title 2")).headers["Location"]
    assert location == "/posts/same-title-2-2/"
    assert len({p.slug for p in all_posts()}) == 4
    for path in locations:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("title", ["New", "Preview"])
def test_a_title_never_takes_the_address_of_a_page(client, auth, browser, people, title):
    sign_in(auth, people, "author")
    response = browser.submit("/posts/new/", write_data(title=title))
    slug = f"{title.lower()}-2"
    assert response.headers["Location"] == f"/posts/{slug}/"
    assert client.get(f"/posts/{slug}/").status_code == 200
    assert "<h1>Write a post</h1>" in client.get("/posts/new/").get_data(as_text=True)


def test_drafts_and_hidden_posts_hold_their_slugs_too(client, auth, browser, people):
    factories.DraftFactory(author=people["other"], title="Taken", slug="taken")
    factories.HiddenPostFactory(author=people["other"], title="Taken", slug="taken-2")
    sign_in(auth, people, "author")
    response = browser.submit("/posts/new/", write_data(title="Taken"))
    assert response.headers["Location"] == "/posts/taken-3/"


def test_slug_is_kept_when_the_title_changes(client, auth, browser, people):
    sign_in(auth, people, "author")
    browser.submit("/posts/new/", write_data(title="First title"))
    response = browser.submit(
        "/posts/first-title/edit/", write_data(title="Second title", action="save")
    )
    assert response.headers["Location"] == "/posts/first-title/"
    [row] = all_posts()
    assert (row.title, row.slug) == ("Second title", "first-title")
    assert client.get("/posts/second-title/").status_code == 404
    # The old slug is still taken, the new title's slug is free.
    assert browser.submit("/posts/new/", write_data(title="First title")).headers["Location"] == (
        "/posts/first-title-2/"
    )


# -- search --------------------------------------------------------------------


@pytest.fixture
def searchable(people):
    titles = [
        "Apple pie",
        "Green APPLE tart",
        "Banana bread",
        "100% rye",
        "1000 loaves",
        "snake_case names",
        "snakeXcase names",
        "Back\\slash",
    ]
    now = datetime.now(UTC)
    for number, title in enumerate(titles):
        factories.PostFactory(
            author=people["author"], title=title, published_at=now - timedelta(minutes=number)
        )
    factories.DraftFactory(author=people["author"], title="Apple draft")
    factories.HiddenPostFactory(author=people["author"], title="Apple hidden")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("apple", ["Apple pie", "Green APPLE tart"]),
        ("APPLE", ["Apple pie", "Green APPLE tart"]),
        ("  apple   tart ", ["Green APPLE tart"]),
        ("tart apple", ["Green APPLE tart"]),
        # Whole words, and punctuation is no wildcard (tests/test_search.py has the rest).
        ("%", []),
        ("100%", ["100% rye"]),
        ("_", []),
        ("snake_case", ["snake_case names"]),
        ("\\", []),
        ("back\\slash", ["Back\\slash"]),
        ("cherry", []),
    ],
)
def test_search_matches_titles_and_escapes_wildcards(client, searchable, query, expected):
    response = client.get("/posts/", query_string={"q": query})
    assert response.status_code == 200
    assert sorted(titles_on(text(response))) == expected


def test_search_without_results_says_so_and_escapes_the_query(client, searchable):
    page = text(client.get("/posts/", query_string={"q": "<b>cherry</b>"}))
    assert "No published post matches “&lt;b&gt;cherry&lt;/b&gt;”." in page
    assert "<b>cherry</b>" not in page


def test_search_keeps_the_query_in_the_box(client, searchable):
    page = text(client.get("/posts/", query_string={"q": "apple"}))
    assert 'value="apple"' in page


def test_overlong_search_is_refused_with_a_message(client, searchable):
    response = client.get("/posts/", query_string={"q": "a" * 201})
    assert response.status_code == 200
    page = text(response)
    assert "Field cannot be longer than 200 characters." in page


def test_search_pages_keep_the_query(app):
    app.config["POSTS_PER_PAGE"] = 2
    with app.app_context():
        author = factories.UserFactory()
        now = datetime.now(UTC)
        for number in range(5):
            factories.PostFactory(
                author=author, title=f"Match {number}", published_at=now - timedelta(minutes=number)
            )
            factories.PostFactory(
                author=author, title=f"Other {number}", published_at=now - timedelta(minutes=number)
            )
        client = app.test_client()
        seen, path = [], "/posts/?q=match"
        while path:
            page = text(client.get(path))
            seen += titles_on(page)
            path = link(page, "next")
            assert path is None or "q=match" in path
        assert seen == [f"Match {n}" for n in range(5)]


# -- pagination ----------------------------------------------------------------


def walk(client, start, rel):
    """Follow the rel links from ``start``; return the pages' titles, one list per page."""
    pages, path = [], start
    while path:
        response = client.get(path)
        assert response.status_code == 200, path
        page = text(response)
        pages.append(titles_on(page))
        path = link(page, rel)
        assert len(pages) < 50, "the pager loops"
    return pages, page


def make_published(author, count, *, now=None):
    """Publish ``count`` posts; several share a timestamp, so ties must be broken by id."""
    now = now or datetime.now(UTC)
    made = []
    for number in range(count):
        made.append(
            factories.PostFactory(
                author=author,
                title=f"Numbered {number:02d}",
                published_at=now - timedelta(seconds=number // 3),
            )
        )
    return made


def newest_first(posts):
    return [p.title for p in sorted(posts, key=lambda p: (p.published_at, p.id), reverse=True)]


@pytest.fixture
def paged_app(app):
    app.config.update(POSTS_PER_PAGE=4, COMMENTS_PER_PAGE=4)
    return app


def test_older_and_newer_links_walk_the_whole_list_without_repeats_or_gaps(paged_app):
    author = factories.UserFactory(handle="writer")
    made = make_published(author, 11)
    factories.DraftFactory(author=author, title="Numbered draft")
    factories.HiddenPostFactory(author=author, title="Numbered hidden")
    expected = newest_first(made)
    client = paged_app.test_client()

    forward, last_page = walk(client, "/posts/", "next")
    assert [len(titles) for titles in forward] == [4, 4, 3]
    assert [title for titles in forward for title in titles] == expected

    back_start = link(last_page, "prev")
    backward, first_page = walk(client, back_start, "prev")
    assert backward == list(reversed(forward[:-1]))
    assert link(first_page, "prev") is None  # the first page, reached backwards, ends the walk
    assert 'rel="next"' in first_page


def test_first_page_has_no_newer_link_and_last_has_no_older_link(paged_app):
    author = factories.UserFactory()
    make_published(author, 4)
    page = text(paged_app.test_client().get("/posts/"))
    assert link(page, "prev") is None
    assert link(page, "next") is None  # exactly one page: no pager


def test_home_page_links_to_the_rest_of_the_list(paged_app):
    author = factories.UserFactory()
    made = make_published(author, 6)
    client = paged_app.test_client()
    home = text(client.get("/"))
    assert titles_on(home) == newest_first(made)[:4]
    older = re.search(r'<a href="([^"]+)">Older posts →</a>', home)
    assert older is not None
    rest = text(client.get(html.unescape(older.group(1))))
    assert titles_on(rest) == newest_first(made)[4:]


def test_profile_pages_walk_that_persons_posts(paged_app):
    author = factories.UserFactory(handle="writer")
    someone = factories.UserFactory()
    made = make_published(author, 9)
    make_published(someone, 5)
    forward, _ = walk(paged_app.test_client(), "/users/writer/", "next")
    assert [title for titles in forward for title in titles] == newest_first(made)


def test_comment_pages_walk_every_approved_comment(paged_app):
    post = factories.PostFactory(slug=SLUG)
    start = datetime.now(UTC) - timedelta(hours=1)
    bodies = []
    for number in range(10):
        body = f"Remark {number:02d}"
        factories.ApprovedCommentFactory(
            post=post, body=body, created_at=start + timedelta(seconds=number // 2)
        )
        bodies.append(body)
    factories.CommentFactory(post=post, body="Remark pending")
    client = paged_app.test_client()
    seen, path = [], f"/posts/{SLUG}/"
    while path:
        page = text(client.get(path))
        seen += re.findall(r"<p>(Remark [^<]*)</p>", page)
        path = link(page, "next")
        assert path is None or path.startswith(f"/posts/{SLUG}/?after=")
    assert seen == bodies  # oldest first, each once


@pytest.mark.parametrize(
    "query",
    [
        "after=garbage",
        "before=garbage",
        "after=12-",
        "after=-5",
        "after=1.5-2",
        "before=999999999999999999-1",
        "after=" + "9" * 40 + "-1",
        "after=%00",
    ],
)
@pytest.mark.parametrize("path", ["/posts/", f"/posts/{SLUG}/", "/users/alice-author/"])
def test_garbage_cursor_is_a_bad_request(client, people, post, path, query):
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert "Traceback" not in text(response)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("after=0-0", False),  # nothing is older than 1970
        ("before=0-0", True),  # everything is newer
        ("after=99999999999999999-1", True),  # far in the future, still a valid moment
        ("before=99999999999999999-1", False),
        ("after=1-999999999999999999", False),
    ],
)
def test_cursors_at_the_edges_give_pages_not_errors(client, people, post, query, shown):
    response = client.get(f"/posts/?{query}")
    assert response.status_code == 200
    assert titles_on(text(response)) == (["The post"] if shown else [])


# -- public profiles -----------------------------------------------------------


def test_profile_lists_only_that_persons_published_posts(client, people):
    author = people["author"]
    factories.PostFactory(author=author, title="Mine, published")
    factories.DraftFactory(author=author, title="Mine, draft")
    factories.HiddenPostFactory(author=author, title="Mine, hidden")
    factories.PostFactory(author=people["other"], title="Someone else's")
    response = client.get("/users/alice-author/")
    assert response.status_code == 200
    page = text(response)
    assert "<h1>Alice Author</h1>" in page
    assert titles_on(page) == ["Mine, published"]
    assert "author@example.com" not in page  # the address is not public


@pytest.mark.parametrize("role", [None, "author", "staff"])
def test_profile_hides_drafts_even_from_their_author_and_staff(client, auth, people, role):
    factories.DraftFactory(author=people["author"], title="Mine, draft")
    sign_in(auth, people, role)
    assert titles_on(text(client.get("/users/alice-author/"))) == []


@pytest.mark.parametrize(
    "path", ["/users/nobody/", "/users/Alice-Author/", "/users/-alice/", "/users/a_b/"]
)
def test_unknown_profile_is_404(client, people, path):
    assert client.get(path).status_code == 404


def test_reserved_account_paths_are_not_profiles(client, auth, people):
    assert client.get("/users/logout/").status_code == 405
    assert client.get("/users/login/").status_code == 200
    assert "Sign in" in text(client.get("/users/login/"))
    response = client.get("/users/me/")
    assert response.status_code == 302
    assert response.headers["Location"] == LOGIN + "/users/me/"
    sign_in(auth, people, "author")
    assert client.get("/users/logout/").status_code == 405
    assert "Alice Author" in text(client.get("/users/me/"))


@pytest.mark.parametrize("handle", ["me-too", "logout-fan", "login2", "confirmed"])
def test_handles_that_start_like_account_paths_are_profiles(client, handle):
    factories.UserFactory(name="Lookalike", handle=handle)
    response = client.get(f"/users/{handle}/")
    assert response.status_code == 200
    assert "<h1>Lookalike</h1>" in text(response)


def test_profile_links_from_posts_and_comments(client, people, post):
    factories.ApprovedCommentFactory(post=post, author=people["other"])
    page = text(client.get(f"/posts/{SLUG}/"))
    other = people["other"]
    assert f'<a href="/users/{other.handle}/">Oscar Other</a>' in page
    assert client.get(f"/users/{other.handle}/").status_code == 200
    listing = text(client.get("/posts/"))
    assert '<a href="/users/alice-author/">Alice Author</a>' in listing


def test_profile_shows_comment_counts_of_approved_comments(client, people, post):
    factories.ApprovedCommentFactory(post=post)
    factories.ApprovedCommentFactory(post=post)
    factories.CommentFactory(post=post)
    page = text(client.get("/users/alice-author/"))
    assert "· 2 comments" in page
