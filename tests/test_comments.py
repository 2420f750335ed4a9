"""Comments: writing per role, moderation, editing while pending, deleting, notifications."""

from __future__ import annotations

import html
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask_login import AnonymousUserMixin
from sqlalchemy import func
from sqlalchemy import select

from portal.comments import constants as COMMENT
from portal.comments import services
from portal.comments.models import Comment
from portal.emails.models import Email
from portal.extensions import db
from portal.posts.models import Post
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.helpers import deliver
from tests.helpers import sign_in
from tests.helpers import text
from tests.helpers import text_of
from tests.helpers import token_page

LOGIN = "/users/login/?next="
SLUG = "the-post"
ROLES = [None, "new", "author", "other", "staff", "admin"]
WAITING = "waiting for moderation"
BASE_URL = "http://127.0.0.1:5000"


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def people(app):
    """One account per role; ``author`` wrote the post, ``other`` is a reader who comments."""
    return {
        "new": factories.NewUserFactory(name="Nina New", email="new@example.com"),
        "author": factories.UserFactory(
            name="Alice Author", email="author@example.com", handle="alice-author"
        ),
        "other": factories.UserFactory(
            name="Oscar Other", email="other@example.com", handle="oscar-other"
        ),
        "staff": factories.StaffFactory(name="Sam Staff", email="staff@example.com"),
        "admin": factories.AdminFactory(name="Ada Admin", email="admin@example.com"),
    }


@pytest.fixture
def post(people):
    return factories.PostFactory(author=people["author"], title="The post", slug=SLUG)


def flashes(page):
    found = re.findall(r'<p class="flash [^"]*">([^<]*)<', page)
    return [html.unescape(message) for message in found]


def comments():
    db.session.expire_all()
    return db.session.execute(select(Comment).order_by(Comment.id)).scalars().all()


def fresh(row):
    """The row as the database has it now, or None once deleted."""
    model, key = type(row), row.__dict__.get("id") or row.id
    db.session.expire_all()
    return db.session.get(model, key)


def count_of(post):
    """The post's stored count, and the approved comments actually there: they must agree."""
    db.session.expire_all()
    stored = db.session.get(Post, post.id).comment_count
    actual = db.session.execute(
        select(func.count(Comment.id)).where(
            Comment.post_id == post.id, Comment.status == COMMENT.APPROVED
        )
    ).scalar_one()
    assert stored == actual, f"comment_count {stored} but {actual} approved comments"
    return stored


def queued():
    db.session.expire_all()
    return db.session.execute(select(Email).order_by(Email.id)).scalars().all()


def links_in(message):
    """Every link in a message's text body, space-separated."""
    return " ".join(re.findall(r"https?://\S+", text_of(message)))


def user(person):
    db.session.expire_all()
    return db.session.get(User, person.id)


@pytest.fixture
def open_app(app):
    """The app with COMMENTS_REQUIRE_APPROVAL off, its context pushed."""
    app.config["COMMENTS_REQUIRE_APPROVAL"] = False
    return app


# -- posting -------------------------------------------------------------------

# What each role's new comment becomes with approval on (the default).
POSTED = {
    None: "login",
    "new": "refused",
    "author": COMMENT.PENDING,
    "other": COMMENT.PENDING,
    "staff": COMMENT.APPROVED,
    "admin": COMMENT.APPROVED,
}


@pytest.mark.parametrize("role", ROLES)
def test_posting_a_comment_by_role(client, auth, browser, people, post, role):
    sign_in(auth, people, role)
    response = browser.submit(
        f"/posts/{SLUG}/comments/", {"body": "Well *said*."}, token_from=token_page(role)
    )
    expected = POSTED[role]
    if expected == "login":
        assert response.status_code == 302
        assert response.headers["Location"] == "/users/login/"
        assert comments() == []
    elif expected == "refused":
        assert response.status_code == 403
        assert "Confirm your email address first" in text(response)
        assert comments() == []
    else:
        [comment] = comments()
        assert response.status_code == 302
        assert response.headers["Location"] == f"/posts/{SLUG}/#comment-{comment.id}"
        assert (comment.post_id, comment.author_id) == (post.id, people[role].id)
        assert comment.status == expected
        assert comment.body == "Well *said*."
        assert comment.body_html == "<p>Well <em>said</em>.</p>\n"
        page = text(client.get(f"/posts/{SLUG}/"))
        if expected == COMMENT.PENDING:
            assert "Thank you. Your comment will appear once a moderator approves it." in (
                flashes(page)
            )
            assert count_of(post) == 0
        else:
            assert "Your comment is published." in flashes(page)
            assert count_of(post) == 1
            assert "1 comment" in page


def test_comment_form_shown_only_to_those_who_may_comment(client, auth, people, post):
    page = text(client.get(f"/posts/{SLUG}/"))
    assert f'action="/posts/{SLUG}/comments/"' not in page
    assert f'href="/users/login/?next=/posts/{SLUG}/">Sign in</a> to comment.' in page
    sign_in(auth, people, "new")
    page = text(client.get(f"/posts/{SLUG}/"))
    assert f'action="/posts/{SLUG}/comments/"' not in page
    assert "Confirm your email address to comment." in page
    auth.logout()
    sign_in(auth, people, "other")
    assert f'action="/posts/{SLUG}/comments/"' in text(client.get(f"/posts/{SLUG}/"))


def test_comment_on_unknown_post_is_404(client, auth, browser, people):
    sign_in(auth, people, "other")
    response = browser.submit("/posts/nothing-here/comments/", {"body": "Hello"})
    assert response.status_code == 404
    assert comments() == []


def test_comments_page_is_post_only(client, auth, people, post):
    sign_in(auth, people, "other")
    assert client.get(f"/posts/{SLUG}/comments/").status_code == 405


@pytest.mark.parametrize("role", ["author", "staff"])
@pytest.mark.parametrize("factory", [factories.DraftFactory, factories.HiddenPostFactory])
def test_unpublished_posts_take_no_comments(client, auth, browser, people, role, factory):
    factory(author=people["author"], slug=SLUG)
    sign_in(auth, people, role)
    assert f'action="/posts/{SLUG}/comments/"' not in text(client.get(f"/posts/{SLUG}/"))
    response = browser.submit(f"/posts/{SLUG}/comments/", {"body": "Hello"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/posts/{SLUG}/"
    assert "This post does not take comments." in flashes(text(client.get(f"/posts/{SLUG}/")))
    assert comments() == []


def test_comment_without_csrf_token_is_refused(client, auth, people, post):
    sign_in(auth, people, "other")
    response = client.post(f"/posts/{SLUG}/comments/", data={"body": "Hello"})
    assert response.status_code == 400
    assert comments() == []


@pytest.mark.parametrize("role", ["author", "other", "staff"])
def test_without_approval_comments_are_published_at_once(open_app, role):
    client = open_app.test_client()
    auth = AuthActions(client)
    people = {
        "author": factories.UserFactory(email="author@example.com"),
        "other": factories.UserFactory(email="other@example.com"),
        "staff": factories.StaffFactory(email="staff@example.com"),
    }
    post = factories.PostFactory(author=people["author"], slug=SLUG)
    sign_in(auth, people, role)
    response = auth.browser.submit(f"/posts/{SLUG}/comments/", {"body": "Straight out."})
    [comment] = comments()
    assert response.headers["Location"] == f"/posts/{SLUG}/#comment-{comment.id}"
    assert comment.status == COMMENT.APPROVED
    assert count_of(post) == 1
    page = text(client.get(f"/posts/{SLUG}/"))
    assert "Your comment is published." in flashes(page)
    assert WAITING not in page
    auth.logout()
    page = text(client.get(f"/posts/{SLUG}/"))
    assert "Straight out." in page
    assert "1 comment" in page


def test_new_accounts_cannot_comment_even_without_approval(open_app):
    client = open_app.test_client()
    auth = AuthActions(client)
    factories.NewUserFactory(email="new@example.com")
    factories.PostFactory(slug=SLUG)
    auth.login("new@example.com")
    response = auth.browser.submit(f"/posts/{SLUG}/comments/", {"body": "Hello"})
    assert response.status_code == 403
    assert comments() == []


# -- the waiting mark ----------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sees_it"),
    [(None, False), ("new", False), ("author", False), ("other", True), ("staff", False)],
)
def test_pending_comment_is_shown_only_to_its_author_with_a_mark(
    client, auth, people, post, role, sees_it
):
    pending = factories.CommentFactory(post=post, author=people["other"], body="Hold on.")
    sign_in(auth, people, role)
    page = text(client.get(f"/posts/{SLUG}/"))
    assert ("Hold on." in page) is sees_it
    assert (WAITING in page) is sees_it
    assert (f'id="comment-{pending.id}"' in page) is sees_it
    if sees_it:
        assert f'href="/comments/{pending.id}/edit/"' in page
        assert f'href="/comments/{pending.id}/delete/"' in page
    assert "0 comments" in page


def test_waiting_mark_goes_once_approved(client, auth, people, post):
    pending = factories.CommentFactory(post=post, author=people["other"], body="Hold on.")
    sign_in(auth, people, "other")
    assert WAITING in text(client.get(f"/posts/{SLUG}/"))
    services.moderate([pending], COMMENT.APPROVED, actor=user(people["staff"]))
    page = text(client.get(f"/posts/{SLUG}/"))
    assert WAITING not in page
    assert "Hold on." in page
    assert f'href="/comments/{pending.id}/edit/"' not in page


@pytest.mark.parametrize("status", [COMMENT.REJECTED, COMMENT.SPAM])
def test_rejected_comments_are_shown_to_nobody(client, auth, people, post, status):
    factories.CommentFactory(post=post, author=people["other"], body="Gone.", status=status)
    for role in [None, "other", "author", "staff"]:
        if role:
            sign_in(auth, people, role)
        assert "Gone." not in text(client.get(f"/posts/{SLUG}/")), role
        if role:
            auth.logout()


def test_refused_comment_shows_the_error_and_a_working_pager(app):
    app.config["COMMENTS_PER_PAGE"] = 2
    with app.app_context():
        client = app.test_client()
        auth = AuthActions(client)
        factories.UserFactory(email="other@example.com")
        post = factories.PostFactory(slug=SLUG)
        for _ in range(3):
            factories.ApprovedCommentFactory(post=post)
        auth.login("other@example.com")
        response = auth.browser.submit(f"/posts/{SLUG}/comments/", {"body": "   "})
        assert response.status_code == 200
        page = text(response)
        assert "Write something in your comment." in page
        later = re.search(r'<a rel="next" href="([^"]+)"', page)
        assert later is not None
        path = html.unescape(later.group(1))
        assert path.startswith(f"/posts/{SLUG}/?after=")
        assert client.get(path).status_code == 200
        assert count_of(post) == 3
        assert len(comments()) == 3


# -- editing while pending -----------------------------------------------------

# (role, expected) for the edit page of ``other``'s comment, by its status.
EDIT_PENDING = {None: 302, "new": 404, "author": 404, "other": 200, "staff": 200, "admin": 200}
EDIT_APPROVED = {None: 302, "new": 403, "author": 403, "other": 403, "staff": 200, "admin": 200}


@pytest.mark.parametrize(
    ("status", "table"),
    [(COMMENT.PENDING, EDIT_PENDING), (COMMENT.APPROVED, EDIT_APPROVED)],
    ids=["pending", "approved"],
)
@pytest.mark.parametrize("role", ROLES)
def test_edit_comment_by_role(client, auth, browser, people, post, role, status, table):
    comment = factories.CommentFactory(
        post=post, author=people["other"], body="First words.", status=status
    )
    path = f"/comments/{comment.id}/edit/"
    sign_in(auth, people, role)

    response = client.get(path)
    assert response.status_code == table[role]
    if table[role] == 302:
        assert response.headers["Location"] == LOGIN + path
    if table[role] == 200:
        assert "First words." in text(response)

    response = browser.submit(path, {"body": "Second words."}, token_from=token_page(role))
    row = fresh(comment)
    if table[role] == 200:
        assert response.status_code == 302
        assert response.headers["Location"] == f"/posts/{SLUG}/#comment-{comment.id}"
        assert (row.body, row.body_html) == ("Second words.", "<p>Second words.</p>\n")
        assert row.status == status  # editing is not approving
    else:
        assert response.status_code == table[role]
        if role is None:
            assert response.headers["Location"] == "/users/login/"
        assert (row.body, row.status) == ("First words.", status)


def test_author_edits_pending_comment_then_cannot_once_approved(
    client, auth, browser, people, post
):
    sign_in(auth, people, "other")
    browser.submit(f"/posts/{SLUG}/comments/", {"body": "Draft thought."})
    [comment] = comments()
    response = browser.submit(f"/comments/{comment.id}/edit/", {"body": "Better thought."})
    assert response.headers["Location"] == f"/posts/{SLUG}/#comment-{comment.id}"
    page = text(client.get(f"/posts/{SLUG}/"))
    assert "Your comment is updated." in flashes(page)
    assert "Better thought." in page

    services.moderate([fresh(comment)], COMMENT.APPROVED, actor=user(people["staff"]))
    assert client.get(f"/comments/{comment.id}/edit/").status_code == 403
    response = browser.submit(
        f"/comments/{comment.id}/edit/", {"body": "Sneaky change."}, token_from="/users/me/"
    )
    assert response.status_code == 403
    assert fresh(comment).body == "Better thought."


def test_edit_refuses_a_blank_comment(client, auth, browser, people, post):
    comment = factories.CommentFactory(post=post, author=people["other"], body="Keep me.")
    sign_in(auth, people, "other")
    response = browser.submit(f"/comments/{comment.id}/edit/", {"body": " \n "})
    assert response.status_code == 200
    assert "Write something in your comment." in text(response)
    assert fresh(comment).body == "Keep me."


def test_unknown_comment_is_404(client, auth, people):
    sign_in(auth, people, "staff")
    assert client.get("/comments/999/edit/").status_code == 404
    assert client.get("/comments/999/delete/").status_code == 404


@pytest.mark.parametrize("factory", [factories.DraftFactory, factories.HiddenPostFactory])
def test_comments_under_a_hidden_post_are_404_to_their_author(
    client, auth, browser, people, factory
):
    hidden = factory(author=people["author"], slug=SLUG)
    comment = factories.ApprovedCommentFactory(post=hidden, author=people["other"])
    sign_in(auth, people, "other")
    assert client.get(f"/comments/{comment.id}/edit/").status_code == 404
    assert client.get(f"/comments/{comment.id}/delete/").status_code == 404
    assert (
        browser.submit(f"/comments/{comment.id}/delete/", token_from="/users/me/").status_code
        == 404
    )
    assert fresh(comment) is not None


# -- deleting ------------------------------------------------------------------

DELETE_PENDING = {None: 302, "new": 404, "author": 404, "other": 302, "staff": 302, "admin": 302}
DELETE_APPROVED = {None: 302, "new": 403, "author": 403, "other": 302, "staff": 302, "admin": 302}
DELETE_REJECTED = {None: 302, "new": 404, "author": 404, "other": 302, "staff": 302, "admin": 302}


@pytest.mark.parametrize(
    ("status", "table"),
    [
        (COMMENT.PENDING, DELETE_PENDING),
        (COMMENT.APPROVED, DELETE_APPROVED),
        (COMMENT.REJECTED, DELETE_REJECTED),
    ],
    ids=["pending", "approved", "rejected"],
)
@pytest.mark.parametrize("role", ROLES)
def test_delete_comment_by_role(client, auth, browser, people, post, role, status, table):
    factory = (
        factories.ApprovedCommentFactory if status == COMMENT.APPROVED else factories.CommentFactory
    )
    comment = factory(post=post, author=people["other"], body="Delete me?", status=status)
    keep = factories.ApprovedCommentFactory(post=post, author=people["author"])
    before = count_of(post)
    path = f"/comments/{comment.id}/delete/"
    sign_in(auth, people, role)

    response = client.get(path)
    expected_get = 200 if table[role] == 302 and role is not None else table[role]
    assert response.status_code == expected_get
    if role is None:
        assert response.headers["Location"] == LOGIN + path
    if expected_get == 200:
        page = text(response)
        assert "Delete this comment?" in page
        assert "Delete me?" in page
        assert f'action="{path}"' in page
    assert fresh(comment) is not None  # a GET deletes nothing

    response = browser.submit(path, token_from=token_page(role))
    assert response.status_code == table[role]
    if role is None:
        assert response.headers["Location"] == "/users/login/"
        assert fresh(comment) is not None
    elif table[role] == 302:
        assert response.headers["Location"] == f"/posts/{SLUG}/"
        assert fresh(comment) is None
        assert "The comment is deleted." in flashes(text(client.get(f"/posts/{SLUG}/")))
        assert count_of(post) == before - (1 if status == COMMENT.APPROVED else 0)
    else:
        assert fresh(comment) is not None
        assert count_of(post) == before
    assert fresh(keep) is not None


def test_delete_link_shown_on_own_approved_comment_and_to_staff(client, auth, people, post):
    comment = factories.ApprovedCommentFactory(post=post, author=people["other"])
    link = f'href="/comments/{comment.id}/delete/"'
    for role, shown in [(None, False), ("author", False), ("other", True), ("staff", True)]:
        sign_in(auth, people, role)
        assert (link in text(client.get(f"/posts/{SLUG}/"))) is shown, role
        if role:
            auth.logout()


# -- moderate() ----------------------------------------------------------------


def test_moderate_records_who_when_and_why(people, post):
    comment = factories.CommentFactory(post=post, author=people["other"])
    staff = user(people["staff"])
    started = datetime.now(UTC)
    changed = services.moderate([comment], COMMENT.REJECTED, actor=staff, reason="  Off topic  ")
    assert changed == 1
    row = fresh(comment)
    assert row.status == COMMENT.REJECTED
    assert row.moderated_by_id == staff.id
    assert started - timedelta(seconds=1) <= row.moderated_at <= datetime.now(UTC)
    assert row.moderation_reason == "Off topic"

    services.moderate([row], COMMENT.APPROVED, actor=user(people["admin"]))
    row = fresh(comment)
    assert row.moderated_by_id == people["admin"].id
    assert row.moderation_reason is None  # a new decision without a reason clears the old one


def test_counts_stay_exact_across_approve_reject_spam_and_delete(people, post):
    staff = user(people["staff"])
    first, second = (factories.CommentFactory(post=post, author=people["other"]) for _ in range(2))
    assert count_of(post) == 0

    assert services.moderate([first, second], COMMENT.APPROVED, actor=staff) == 2
    assert count_of(post) == 2
    assert services.moderate([fresh(first)], COMMENT.APPROVED, actor=staff) == 0  # no change
    assert count_of(post) == 2

    assert services.moderate([fresh(first)], COMMENT.REJECTED, actor=staff) == 1
    assert count_of(post) == 1
    assert services.moderate([fresh(first)], COMMENT.SPAM, actor=staff) == 1
    assert count_of(post) == 1

    services.delete_comment(fresh(first), actor=staff)  # not approved: the count stays
    assert count_of(post) == 1
    services.delete_comment(fresh(second), actor=user(people["other"]))  # approved: it drops
    assert count_of(post) == 0


def test_moderating_across_posts_keeps_each_count(people):
    staff = user(people["staff"])
    one, two = factories.PostFactory(), factories.PostFactory()
    batch = [factories.CommentFactory(post=one) for _ in range(3)]
    batch += [factories.CommentFactory(post=two) for _ in range(2)]
    factories.ApprovedCommentFactory(post=two)
    assert services.moderate(batch, COMMENT.APPROVED, actor=staff) == 5
    assert (count_of(one), count_of(two)) == (3, 3)
    db.session.expire_all()
    approved = db.session.execute(
        select(Comment).where(Comment.status == COMMENT.APPROVED)
    ).scalars()
    assert services.moderate(list(approved), COMMENT.SPAM, actor=staff) == 6
    assert (count_of(one), count_of(two)) == (0, 0)


def test_approved_comment_appears_and_counts_on_the_pages(client, people, post):
    comment = factories.CommentFactory(post=post, author=people["other"], body="Now public.")
    assert "Now public." not in text(client.get(f"/posts/{SLUG}/"))
    services.moderate([comment], COMMENT.APPROVED, actor=user(people["staff"]))
    page = text(client.get(f"/posts/{SLUG}/"))
    assert "Now public." in page
    assert "1 comment" in page
    assert "· 1 comment" in text(client.get("/posts/"))
    services.moderate([fresh(comment)], COMMENT.REJECTED, actor=user(people["staff"]))
    page = text(client.get(f"/posts/{SLUG}/"))
    assert "Now public." not in page
    assert "0 comments" in page


@pytest.mark.parametrize("role", ["new", "author", "other", None])
def test_moderate_is_refused_to_non_moderators(people, post, role):
    comment = factories.CommentFactory(post=post, author=people["other"])
    actor = AnonymousUserMixin() if role is None else user(people[role])
    with pytest.raises(services.CommentError, match="Only staff can moderate comments."):
        services.moderate([comment], COMMENT.APPROVED, actor=actor)
    row = fresh(comment)
    assert (row.status, row.moderated_by_id, row.moderated_at) == (COMMENT.PENDING, None, None)
    assert count_of(post) == 0
    assert queued() == []


@pytest.mark.parametrize("status", [COMMENT.PENDING, 99, -1])
def test_moderate_refuses_unknown_decisions(people, post, status):
    comment = factories.CommentFactory(post=post)
    with pytest.raises(services.CommentError, match="Choose approve, reject or spam."):
        services.moderate([comment], status, actor=user(people["staff"]))
    assert fresh(comment).status == COMMENT.PENDING


def test_moderate_refuses_an_overlong_reason(people, post):
    comment = factories.CommentFactory(post=post)
    with pytest.raises(services.CommentError, match="at most 500 characters"):
        services.moderate(
            [comment], COMMENT.REJECTED, actor=user(people["staff"]), reason="x" * 501
        )
    assert fresh(comment).status == COMMENT.PENDING
    services.moderate(
        [fresh(comment)], COMMENT.REJECTED, actor=user(people["staff"]), reason="x" * 500
    )
    assert fresh(comment).moderation_reason == "x" * 500


# -- notification on approval --------------------------------------------------


def test_post_author_is_emailed_when_a_comment_is_approved(app, people, post):
    comment = factories.CommentFactory(post=post, author=people["other"], body="Nice *post*.")
    assert queued() == []  # a pending comment tells nobody
    services.moderate([comment], COMMENT.APPROVED, actor=user(people["staff"]))
    [message] = deliver(app)
    assert message["To"] == "author@example.com"
    assert message["Subject"] == "New comment on “The post”"
    body = text_of(message)
    assert "Oscar Other commented on your post “The post”" in body
    assert "Nice *post*." in body
    links = re.findall(r"https?://\S+", body)
    assert links[:2] == [
        f"{BASE_URL}/posts/{SLUG}/#comment-{comment.id}",
        f"{BASE_URL}/users/me/edit/",
    ]
    # Then the footer: unsubscribe from notifications, and the preferences page.
    assert links[2].startswith(f"{BASE_URL}/unsubscribe/")
    assert links[3].startswith(f"{BASE_URL}/email-preferences/")
    assert len(links) == 4


def test_notification_links_come_from_the_configured_site_url(app):
    app.config["PORTAL_BASE_URL"] = "https://portal.example.org"
    with app.app_context():
        client = app.test_client()
        auth = AuthActions(client)
        author = factories.UserFactory(email="author@example.com")
        factories.StaffFactory(email="staff@example.com")
        factories.PostFactory(author=author, slug=SLUG)
        auth.login("staff@example.com")
        # The request comes to http://localhost/; the link must not follow it.
        auth.browser.submit(
            f"/posts/{SLUG}/comments/", {"body": "Approved at once."}, token_from=f"/posts/{SLUG}/"
        )
        [comment] = comments()
        assert comment.status == COMMENT.APPROVED
        [message] = deliver(app)
        assert message["To"] == "author@example.com"
        body = text_of(message)
        assert f"https://portal.example.org/posts/{SLUG}/#comment-{comment.id}" in body
        assert "localhost" not in body
        html_body = message.get_body(preferencelist=("html",)).get_content()
        assert f'href="https://portal.example.org/posts/{SLUG}/#comment-{comment.id}"' in html_body
        assert "localhost" not in html_body


def test_rejecting_tells_nobody(app, people, post):
    comment = factories.CommentFactory(post=post, author=people["other"])
    services.moderate([comment], COMMENT.REJECTED, actor=user(people["staff"]))
    services.moderate([fresh(comment)], COMMENT.SPAM, actor=user(people["staff"]))
    assert queued() == []
    assert deliver(app) == []


def test_without_approval_the_author_is_emailed_at_once(open_app):
    client = open_app.test_client()
    auth = AuthActions(client)
    author = factories.UserFactory(email="author@example.com")
    factories.UserFactory(email="other@example.com")
    factories.PostFactory(author=author, title="Open post", slug=SLUG)
    auth.login("other@example.com")
    auth.browser.submit(f"/posts/{SLUG}/comments/", {"body": "First!"})
    [message] = deliver(open_app)
    assert message["To"] == "author@example.com"
    assert message["Subject"] == "New comment on “Open post”"
    [comment] = comments()
    assert f"/posts/{SLUG}/#comment-{comment.id}" in links_in(message)


def test_author_who_turned_notifications_off_gets_no_email(
    app, client, auth, browser, people, post
):
    sign_in(auth, people, "author")
    page = text(client.get("/users/me/edit/"))
    assert 'name="notify_comments"' in page
    assert "checked" in re.search(r'<input[^>]*name="notify_comments"[^>]*>', page).group(0)
    response = browser.submit(
        "/users/me/edit/", {"name": "Alice Author", "email": "author@example.com"}
    )
    assert response.status_code == 302
    assert user(people["author"]).notify_comments is False

    comment = factories.CommentFactory(post=post, author=people["other"])
    services.moderate([comment], COMMENT.APPROVED, actor=user(people["staff"]))
    assert count_of(post) == 1
    assert queued() == []
    assert deliver(app) == []

    # Turning them back on works for the next approval.
    browser.submit(
        "/users/me/edit/",
        {"name": "Alice Author", "email": "author@example.com", "notify_comments": "y"},
    )
    assert user(people["author"]).notify_comments is True
    services.moderate(
        [factories.CommentFactory(post=post, author=people["other"])],
        COMMENT.APPROVED,
        actor=user(people["staff"]),
    )
    [message] = deliver(app)
    assert message["To"] == "author@example.com"


def test_no_email_for_a_comment_on_ones_own_post(app, people, post):
    own = factories.CommentFactory(post=post, author=people["author"])
    services.moderate([own], COMMENT.APPROVED, actor=user(people["staff"]))
    assert count_of(post) == 1
    assert queued() == []


def test_no_email_when_staff_comment_on_their_own_post(client, auth, browser, people):
    factories.PostFactory(author=people["staff"], slug=SLUG)
    sign_in(auth, people, "staff")
    browser.submit(f"/posts/{SLUG}/comments/", {"body": "Adding a note."})
    [comment] = comments()
    assert comment.status == COMMENT.APPROVED
    assert queued() == []


def test_staff_comment_on_someone_elses_post_tells_its_author(
    app, client, auth, browser, people, post
):
    sign_in(auth, people, "staff")
    browser.submit(f"/posts/{SLUG}/comments/", {"body": "Staff note."})
    [message] = deliver(app)
    assert message["To"] == "author@example.com"
    assert "Sam Staff commented on your post" in text_of(message)


def test_one_email_per_approved_comment(app, people, post):
    batch = [factories.CommentFactory(post=post, author=people["other"]) for _ in range(3)]
    services.moderate(batch, COMMENT.APPROVED, actor=user(people["staff"]))
    messages = deliver(app)
    assert [m["To"] for m in messages] == ["author@example.com"] * 3
    anchors = sorted(re.search(r"#comment-(\d+)", links_in(m)).group(1) for m in messages)
    assert anchors == sorted(str(c.id) for c in batch)
