"""Each object's History page and its "View on site" link, for every role, through HTTP.

A history is a row's audit events, newest first, a page at a time: who,
when, what and which fields changed. Whoever may view the row in the back
office (staff, admins) may read its history; the audit trail itself stays
for admins. Secrets and client addresses are never shown.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from tests import factories
from tests.conftest import AuthActions
from tests.helpers import statements

ROLES = {
    "user": factories.UserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}


def sign_in(client: FlaskClient, role: str | None) -> Any:
    if role is None:
        return None
    person = ROLES[role](email=f"{role}@example.com", name=f"Signed-in {role}")
    assert AuthActions(client).login(person.email).status_code == 302
    return person


def event(object_type: str, object_id: Any, *, actor: Any = None, minutes: int = 0, **values: Any):
    """An audit event written straight to the table, as any past version of the code could."""
    row = AuditEvent(
        created_at=utcnow() - timedelta(minutes=minutes),
        actor_id=None if actor is None else actor.id,
        actor_label="manage.py (run by ops)" if actor is None else f"{actor.name} <{actor.email}>",
        source=AUDIT.SOURCE_CLI if actor is None else AUDIT.SOURCE_ADMIN,
        address=values.pop("address", None),
        action=values.pop("action", AUDIT.ACTION_UPDATE),
        object_type=object_type,
        object_id=str(object_id),
        summary=values.pop("summary", "An event"),
        changes=values.pop("changes", {}),
    )
    assert not values, values
    db.session.add(row)
    db.session.commit()
    return row


def objects() -> dict[str, tuple[str, int]]:
    """One row of each kind with a History page: (its screen, its id)."""
    post = factories.PostFactory()
    return {
        "post": ("post", post.id),
        "comment": ("comment", factories.CommentFactory(post=post).id),
        "email": ("email", factories.EmailFactory().id),
        "user": ("user", factories.UserFactory().id),
    }


def history(client: FlaskClient, screen: str, row: Any, **query: Any) -> str:
    response = client.get(f"/admin/{screen}/history/", query_string={"id": row, **query})
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def rows_of(text: str) -> list[str]:
    body = re.search(r'<table class="table history">.*?<tbody>(.*?)</tbody>', text, re.DOTALL)
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.DOTALL) if body else []


def summaries(text: str) -> list[str]:
    return [html.unescape(re.search(r"<br>([^<]*)</td>", row).group(1)) for row in rows_of(text)]


# -- who may read a history ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["post", "comment", "email", "user"])
def test_anonymous_visitors_go_to_sign_in_and_come_back(client, kind):
    screen, row = objects()[kind]
    path = f"/admin/{screen}/history/?id={row}"

    response = client.get(path)

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/users/login/"
    assert parse_qs(location.query) == {"next": [path]}


@pytest.mark.parametrize("kind", ["post", "comment", "email", "user"])
def test_members_get_403(client, kind):
    screen, row = objects()[kind]
    sign_in(client, "user")

    assert client.get(f"/admin/{screen}/history/?id={row}").status_code == 403


@pytest.mark.parametrize("role", ["staff", "admin"])
@pytest.mark.parametrize("kind", ["post", "comment", "email", "user"])
def test_staff_and_admins_read_the_history_of_what_they_may_view(client, role, kind):
    screen, row = objects()[kind]
    event(kind, row, summary=f"The {kind} changed")
    sign_in(client, role)

    text = history(client, screen, row)

    assert summaries(text) == [f"The {kind} changed"]
    assert re.search(r"<h1[^>]*>History of ", text)


def test_the_audit_trail_itself_stays_for_admins(client):
    sign_in(client, "staff")

    assert client.get("/admin/audit/").status_code == 403


def test_a_row_that_does_not_exist_is_answered_with_a_message(client):
    sign_in(client, "staff")

    for row in ("999999", "x", "0", ""):
        response = client.get("/admin/post/history/", query_string={"id": row})
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/post/"


def test_a_page_link_the_site_did_not_make_is_refused(client):
    sign_in(client, "staff")
    post = factories.PostFactory().id

    response = client.get("/admin/post/history/", query_string={"id": post, "after": "x"})

    assert response.status_code == 400


def test_the_audit_trail_screen_has_no_history_page(client):
    sign_in(client, "admin")

    assert client.get("/admin/audit/history/?id=1").status_code == 404


# -- what a history shows ---------------------------------------------------------------


def test_events_are_the_objects_own_newest_first_with_who_and_the_changes(client):
    staff = sign_in(client, "staff")
    post = factories.PostFactory()
    other = factories.PostFactory()
    comment = factories.CommentFactory(post=post)
    event("post", post.id, minutes=30, action=AUDIT.ACTION_CREATE, summary="Written")
    event(
        "post",
        post.id,
        actor=staff,
        minutes=10,
        summary="Hidden by staff",
        changes={"status": ["published", "hidden"]},
        address="203.0.113.9",
    )
    event("post", other.id, summary="Another post's")
    event("comment", post.id, summary="A comment with the same number")
    event("comment", comment.id, summary="The post's comment")

    text = history(client, "post", post.id)

    assert summaries(text) == ["Hidden by staff", "Written"]
    newest, oldest = rows_of(text)
    # Who: the account, linked while it exists; a command by its label.
    assert f'<a href="/admin/user/details/?id={staff.id}">Signed-in staff</a>' in newest
    assert "(through admin)" in newest
    assert "manage.py (run by ops)" in oldest and "(through manage.py)" in oldest
    assert "<strong>Changed</strong>" in newest and "<strong>Created</strong>" in oldest
    assert re.search(
        r'status</span>:\s*<span class="visually-hidden">from</span>\s*<del>published</del>'
        r'.*?<span class="visually-hidden">to</span>\s*<ins>hidden</ins>',
        newest,
        re.DOTALL,
    )
    assert "No field changes" in oldest
    # The client address is the audit trail's, for admins: never a history's.
    assert "203.0.113.9" not in text


def test_secrets_never_show_even_from_an_event_that_kept_them(client):
    sign_in(client, "admin")
    user = factories.UserFactory()
    event(
        "user",
        user.id,
        changes={
            "password_hash": ["scrypt:old-hash", "scrypt:new-hash"],
            "mfa_secret": ["JBSWY3DPEHPK3PXP", None],
            "reset_token": [None, "tok-123"],
            "name": ["Old Name", "New Name"],
        },
    )

    text = history(client, "user", user.id)

    for secret in ("scrypt:old-hash", "scrypt:new-hash", "JBSWY3DPEHPK3PXP", "tok-123"):
        assert secret not in text
    assert text.count("<del>••••••</del>") == 3
    assert "<del>Old Name</del>" in text and "<ins>New Name</ins>" in text


def test_a_moderation_decision_shows_in_the_comments_history(client, browser):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id
    browser.submit(
        "/admin/comment/decide/",
        {"id": comment, "decision": "reject", "url": "/admin/comment/"},
        token_from="/users/me/",
    )

    text = history(client, "comment", comment)

    (row,) = rows_of(text)
    assert "<strong>Rejected</strong>" in row
    assert "<del>pending</del>" in row and "<ins>rejected</ins>" in row


def test_long_histories_come_a_page_at_a_time_newest_first(client):
    sign_in(client, "staff")
    post = factories.PostFactory().id
    for minute in range(30):
        event("post", post, minutes=minute, summary=f"Event {minute}")

    first = history(client, "post", post)
    assert summaries(first) == [f"Event {minute}" for minute in range(25)]
    assert "Newer" not in first
    older = re.search(r'<a class="page-link" rel="next" href="([^"]+)">Older</a>', first)
    assert older

    second = client.get(html.unescape(older.group(1))).get_data(as_text=True)
    assert summaries(second) == [f"Event {minute}" for minute in range(25, 30)]
    assert "Older</a>" not in second
    newer = re.search(r'<a class="page-link" rel="prev" href="([^"]+)">Newer</a>', second)
    assert newer
    back = client.get(html.unescape(newer.group(1))).get_data(as_text=True)
    assert summaries(back) == summaries(first)


def test_a_history_runs_the_same_statements_for_2_or_20_events_by_20_people(client):
    sign_in(client, "staff")

    def page_statements(count: int) -> list[str]:
        post = factories.PostFactory().id
        for minute in range(count):
            event("post", post, actor=factories.StaffFactory(), minutes=minute)
        with statements() as seen:
            text = history(client, "post", post)
        assert len(rows_of(text)) == count
        return seen

    few = page_statements(2)
    many = page_statements(20)

    assert len(many) == len(few), "\n".join(many)


# -- links to it, and to the site --------------------------------------------------------


def test_details_and_edit_pages_link_to_the_history(client):
    sign_in(client, "admin")
    screens = objects()

    for screen, row in screens.values():
        details = client.get(f"/admin/{screen}/details/?id={row}").get_data(as_text=True)
        assert f'href="/admin/{screen}/history/?id={row}">History</a>' in details, screen
    for screen in ("post", "user"):
        row = screens[screen][1]
        edit = client.get(f"/admin/{screen}/edit/?id={row}").get_data(as_text=True)
        assert f'href="/admin/{screen}/history/?id={row}">History</a>' in edit, screen


def test_list_rows_link_to_each_rows_history(client):
    sign_in(client, "staff")
    screens = objects()

    for screen, row in screens.values():
        text = client.get(f"/admin/{screen}/").get_data(as_text=True)
        assert re.search(rf'href="/admin/{screen}/history/\?id={row}" title="History"', text)


def test_a_published_post_links_to_its_page_and_a_draft_says_it_is_not_public(client):
    sign_in(client, "staff")
    published = factories.PostFactory(slug="on-the-site", title="On the site")
    draft = factories.DraftFactory(slug="not-yet", title="Not yet")

    listing = client.get("/admin/post/").get_data(as_text=True)
    assert 'href="/posts/on-the-site/" title="View on site"' in listing
    assert "/posts/not-yet/" not in listing
    details = client.get(f"/admin/post/details/?id={published.id}").get_data(as_text=True)
    assert 'href="/posts/on-the-site/">View on site</a>' in details
    details = client.get(f"/admin/post/details/?id={draft.id}").get_data(as_text=True)
    assert "/posts/not-yet/" not in details
    assert "Not public: visitors cannot open it on the site." in details


def test_an_approved_comment_links_to_itself_on_its_posts_page(client, app):
    sign_in(client, "staff")
    app.config["COMMENTS_PER_PAGE"] = 2
    post = factories.PostFactory(slug="busy")
    approved = [factories.ApprovedCommentFactory(post=post) for _ in range(5)]
    waiting = factories.CommentFactory(post=post)
    target = approved[3]

    details = client.get(f"/admin/comment/details/?id={target.id}").get_data(as_text=True)
    link = re.search(r'href="([^"]+)">View on site</a>', details)
    assert link
    url = urlsplit(html.unescape(link.group(1)))
    assert url.path == "/posts/busy/" and url.fragment == f"comment-{target.id}"
    # The page it opens is the one the comment is on, though it is not the first.
    public = client.get(f"{url.path}?{url.query}").get_data(as_text=True)
    assert f'id="comment-{target.id}"' in public

    listing = client.get("/admin/comment/").get_data(as_text=True)
    assert 'title="View on site"' in listing
    details = client.get(f"/admin/comment/details/?id={waiting.id}").get_data(as_text=True)
    assert "View on site</a>" not in details and "Not public" in details


def test_a_comment_under_a_hidden_post_is_not_public(client):
    sign_in(client, "staff")
    comment = factories.ApprovedCommentFactory(post=factories.HiddenPostFactory())

    details = client.get(f"/admin/comment/details/?id={comment.id}").get_data(as_text=True)

    assert "View on site</a>" not in details and "Not public" in details


def test_an_account_links_to_its_public_profile_and_an_email_has_no_site_page(client):
    sign_in(client, "staff")
    person = factories.UserFactory(name="Uma User")
    email = factories.EmailFactory()

    details = client.get(f"/admin/user/details/?id={person.id}").get_data(as_text=True)
    assert f'href="/users/{person.handle}/">View on site</a>' in details
    assert client.get(f"/users/{person.handle}/").status_code == 200
    details = client.get(f"/admin/email/details/?id={email.id}").get_data(as_text=True)
    assert "View on site" not in details and "Not public" not in details
