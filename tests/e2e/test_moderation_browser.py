"""Staff clear the comment moderation queue in a real browser, under the strict CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect
from sqlalchemy import select

from portal.comments.models import Comment
from portal.extensions import db
from portal.posts.models import Post
from tests import factories
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

SLUG = "difference-engine-no-2"
FIRST = "The carry mechanism is elegant."
SECOND = "Babbage would have liked the printer."
THIRD = "Buy cheap watches at example.net!"
REASON = "Both on topic."


def decisions(live_server: LiveServer) -> dict[str, tuple[str, str | None, str | None]]:
    """Each comment's status, who decided it and why, by its text."""
    with live_server.app.app_context():
        comments = db.session.execute(select(Comment)).scalars()
        return {
            comment.body: (
                comment.status_name,
                comment.moderated_by.email if comment.moderated_by else None,
                comment.moderation_reason,
            )
            for comment in comments
        }


def comment_count(live_server: LiveServer) -> int:
    with live_server.app.app_context():
        return db.session.execute(select(Post.comment_count).where(Post.slug == SLUG)).scalar_one()


def test_staff_approve_two_comments_in_one_bulk_action(
    page: Page,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    with live_server.app.app_context():
        factories.StaffFactory(name="Sam Staff", email="sam@example.com")
        post = factories.PostFactory(title="Difference Engine No. 2", slug=SLUG)
        first = factories.CommentFactory(post=post, body=FIRST).id
        second = factories.CommentFactory(post=post, body=SECOND).id
        third = factories.CommentFactory(post=post, body=THIRD).id
    url = live_server.url

    # Nothing waiting is public yet.
    page.goto(f"/posts/{SLUG}/")
    expect(page.locator("#comments h2")).to_have_text("0 comments")
    expect(page.locator("article.comment")).to_have_count(0)

    # The queue lists the three waiting comments.
    sign_in(page, "sam@example.com", "Sam Staff", "/admin/comment/")
    expect(page).to_have_url(f"{url}/admin/comment/")
    expect(page.get_by_role("link", name="Comments (3 waiting)")).to_be_visible()
    rows = {
        comment_id: page.locator(
            "tr", has=page.locator(f'input[name="rowid"][value="{comment_id}"]')
        )
        for comment_id in (first, second, third)
    }
    for comment_id, text in ((first, FIRST), (second, SECOND), (third, THIRD)):
        expect(rows[comment_id]).to_contain_text(text)
        expect(rows[comment_id].locator(".badge")).to_have_text("pending")

    # Select two, approve both at once; the action's page asks for a reason.
    rows[first].locator('input[name="rowid"]').check()
    rows[second].locator('input[name="rowid"]').check()
    page.get_by_role("button", name="With selected").click()
    page.get_by_role("link", name="Approve", exact=True).click()
    expect(page).to_have_url(f"{url}/admin/comment/action/approve/?ids={first},{second}")
    expect(page.get_by_role("heading", name="Approve: 2 selected")).to_be_visible()
    selected = page.locator("ul.mb-3 > li")
    expect(selected).to_have_text([f"#{first}: {FIRST}", f"#{second}: {SECOND}"])
    page.get_by_label("Reason (optional)").fill(REASON)
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page).to_have_url(f"{url}/admin/comment/")
    expect(page.get_by_text("2 comment(s) marked approved.")).to_be_visible()
    expect(rows[first].locator(".badge")).to_have_text("approved")
    expect(rows[second].locator(".badge")).to_have_text("approved")
    expect(rows[third].locator(".badge")).to_have_text("pending")
    expect(page.get_by_role("link", name="Comments (1 waiting)")).to_be_visible()
    assert decisions(live_server) == {
        FIRST: ("approved", "sam@example.com", REASON),
        SECOND: ("approved", "sam@example.com", REASON),
        THIRD: ("pending", None, None),
    }
    assert comment_count(live_server) == 2

    # Signed out, the public post shows both approved comments and not the third.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{url}/")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto(f"/posts/{SLUG}/")
    comments = page.locator("#comments")
    expect(comments.get_by_role("heading", level=2)).to_have_text("2 comments")
    expect(comments.locator("article.comment .prose")).to_have_text([FIRST, SECOND])
    expect(comments.get_by_text(THIRD)).to_have_count(0)
    expect(comments.get_by_text("waiting for moderation")).to_have_count(0)

    assert console_errors.messages == []
    assert csp_violations == []


def test_a_member_gets_the_403_page_from_the_queue(
    page: Page,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    with live_server.app.app_context():
        factories.UserFactory(name="Uma User", email="uma@example.com")
        comment = factories.CommentFactory(body=THIRD).id

    sign_in(page, "uma@example.com", "Uma User", "/posts/")
    paths = ("/admin/comment/", f"/admin/comment/action/approve/?ids={comment}")
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.locator(".error-code")).to_have_text("403")
        expect(page.get_by_role("heading", level=1)).to_have_text("You cannot open this page")
        expect(page.get_by_text("Your account does not have access to it.")).to_be_visible()
        expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    assert decisions(live_server)[THIRD] == ("pending", None, None)

    # Chromium logs each refused document as a failed load; nothing else may show.
    assert console_errors.messages == [
        "Failed to load resource: the server responded with a status of 403 (FORBIDDEN) "
        f"(at {live_server.url}{path})"
        for path in paths
    ]
    assert csp_violations == []


def test_staff_clear_the_queue_from_the_keyboard(
    page: Page,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    with live_server.app.app_context():
        factories.StaffFactory(name="Sam Staff", email="sam@example.com")
        post = factories.PostFactory(title="Difference Engine No. 2", slug=SLUG)
        first = factories.CommentFactory(post=post, body=FIRST).id
        second = factories.CommentFactory(post=post, body=f"**{SECOND}**").id
        third = factories.CommentFactory(post=post, body=THIRD).id
    url = live_server.url

    sign_in(page, "sam@example.com", "Sam Staff", "/admin/comment/")
    # The script shows the keys' hint; the comment shows rendered.
    expect(page.get_by_text("Keys: j and k move between rows;")).to_be_visible()
    expect(page.locator(f"#decide-{second}").locator("xpath=ancestor::tr")).to_contain_text(SECOND)
    expect(page.locator("td.col-body strong")).to_have_text(SECOND)

    # j and k move between the rows' decision groups.
    page.keyboard.press("j")
    expect(page.locator(f"#decide-{first}")).to_be_focused()
    page.keyboard.press("j")
    expect(page.locator(f"#decide-{second}")).to_be_focused()
    page.keyboard.press("k")
    expect(page.locator(f"#decide-{first}")).to_be_focused()
    page.keyboard.press("j")
    expect(page.locator(f"#decide-{second}")).to_be_focused()
    expect(page.locator("tr.is-current")).to_contain_text(SECOND)

    # a approves the focused row; the page comes back with the next row focused.
    page.keyboard.press("a")
    expect(page).to_have_url(f"{url}/admin/comment/?page_size=20#decide-{third}")
    expect(page.get_by_text(f"Comment #{second} marked approved.")).to_be_visible()
    expect(page.locator(f"#decide-{third}")).to_be_focused()
    expect(page.get_by_role("link", name="Comments (2 waiting)")).to_be_visible()

    # Keys typed into a field are text, never decisions.
    search = page.get_by_role("searchbox")
    search.focus()
    page.keyboard.type("jars")
    expect(search).to_have_value("jars")
    expect(search).to_be_focused()

    # Back in the list, s marks the focused row as spam.
    page.locator(f"#decide-{third}").focus()
    page.keyboard.press("s")
    expect(page.get_by_text(f"Comment #{third} marked spam.")).to_be_visible()

    assert decisions(live_server) == {
        FIRST: ("pending", None, None),
        f"**{SECOND}**": ("approved", "sam@example.com", None),
        THIRD: ("spam", "sam@example.com", None),
    }
    assert comment_count(live_server) == 1
    assert console_errors.messages == []
    assert csp_violations == []
