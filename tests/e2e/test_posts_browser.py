"""A post and its moderated comment in real browsers, one per person, under the strict CSP.

The author, a reader who comments, an anonymous visitor and a staff member
each get their own browser context (their own cookies), as four people would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Locator
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer
from tests.e2e.conftest import sign_in
from tests.e2e.conftest import watch_csp

pytestmark = pytest.mark.e2e

TITLE = "Notes on the Analytical Engine"
SLUG = "notes-on-the-analytical-engine"
BODY = "The engine weaves **algebraic patterns**, as the loom weaves flowers."
COMMENT = "It might act upon other things besides number."
REASON = "Polite and on topic."
WAITING = "waiting for moderation"


OpenPage = Callable[[], Page]


@pytest.fixture
def csp_violations() -> list[str]:
    return []


@pytest.fixture
def open_page(
    chromium: Browser,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> Iterator[OpenPage]:
    """Open a page in a new browser context: another person, with no cookies."""
    contexts: list[BrowserContext] = []

    def open_() -> Page:
        context = chromium.new_context(base_url=live_server.url)
        contexts.append(context)
        watch_csp(context, csp_violations)
        tab = context.new_page()
        tab.on("console", console_errors.on_console)
        tab.on("pageerror", console_errors.on_page_error)
        return tab

    yield open_
    for context in contexts:
        context.close()


def comments_of(page: Page) -> Locator:
    return page.locator("section#comments")


def expect_no_comment_shown(page: Page) -> None:
    """The post page shows none of the comment: no count, no text, no badge."""
    comments = comments_of(page)
    expect(comments.get_by_role("heading", level=2)).to_have_text("0 comments")
    expect(comments.get_by_text("No comments yet.")).to_be_visible()
    expect(comments.get_by_text(COMMENT)).to_have_count(0)
    expect(comments.get_by_text(WAITING)).to_have_count(0)


def test_a_comment_waits_for_staff_then_the_author_reads_it(
    open_page: OpenPage,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    assert live_server.app.config["COMMENTS_REQUIRE_APPROVAL"], "the flow needs moderation on"
    with live_server.app.app_context():
        factories.UserFactory(name="Ada Author", email="ada@example.com")
        factories.UserFactory(name="Charles Reader", email="charles@example.com")
        factories.StaffFactory(name="Sam Staff", email="sam@example.com")
    url = live_server.url
    post_url = f"{url}/posts/{SLUG}/"

    # The author writes the post and publishes it.
    author = open_page()
    sign_in(author, "ada@example.com", "Ada Author", "/posts/new/")
    expect(author).to_have_url(f"{url}/posts/new/")
    expect(author.get_by_role("heading", level=1)).to_have_text("Write a post")
    author.get_by_label("Title", exact=True).fill(TITLE)
    author.get_by_label("Body", exact=True).fill(BODY)
    author.get_by_role("button", name="Publish", exact=True).click()
    expect(author).to_have_url(post_url)
    expect(author.get_by_role("status")).to_have_text("Your post is published.")
    expect(author.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(author.locator(".prose strong")).to_have_text("algebraic patterns")
    expect_no_comment_shown(author)

    # The strict policy is what the browser got: scripts by nonce, nothing inline.
    response = author.goto(post_url)
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert re.search(r"script-src 'self' 'nonce-[^' ]+'(;|$)", policy), policy
    assert "unsafe-inline" not in policy

    # Another member opens the post from the list, signs in from it and comments.
    reader = open_page()
    reader.goto("/posts/")
    reader.get_by_role("link", name=TITLE).click()
    expect(reader).to_have_url(post_url)
    comments_of(reader).get_by_role("link", name="Sign in").click()
    sign_in_button = reader.get_by_role("button", name="Sign in")
    expect(sign_in_button).to_be_visible()
    reader.get_by_label("Email", exact=True).fill("charles@example.com")
    reader.get_by_label("Password", exact=True).fill(factories.PASSWORD)
    sign_in_button.click()
    expect(reader).to_have_url(post_url)
    reader.get_by_label("Your comment", exact=True).fill(COMMENT)
    reader.get_by_role("button", name="Post comment").click()
    expect(reader).to_have_url(re.compile(rf"^{re.escape(post_url)}#comment-\d+$"))
    expect(reader.get_by_role("status")).to_have_text(
        "Thank you. Your comment will appear once a moderator approves it."
    )
    waiting = comments_of(reader).locator("article.comment.waiting")
    expect(waiting).to_have_count(1)
    expect(waiting.locator(".prose")).to_have_text(COMMENT)
    expect(waiting.locator(".badge")).to_have_text(WAITING)
    expect(comments_of(reader).get_by_role("heading", level=2)).to_have_text("0 comments")
    comment_id = int((waiting.get_attribute("id") or "").removeprefix("comment-"))

    # Neither the post's author nor an anonymous visitor sees it yet.
    author.reload()
    expect_no_comment_shown(author)
    visitor = open_page()
    visitor.goto(f"/posts/{SLUG}/")
    expect_no_comment_shown(visitor)

    # Staff approve it from the moderation queue, giving a reason.
    staff = open_page()
    sign_in(staff, "sam@example.com", "Sam Staff", "/admin/comment/")
    expect(staff).to_have_url(f"{url}/admin/comment/")
    expect(staff.get_by_role("heading", name="Comments")).to_be_visible()
    expect(staff.get_by_role("link", name="Comments (1 waiting)")).to_be_visible()
    row = staff.locator("tr", has=staff.locator(f'input[name="rowid"][value="{comment_id}"]'))
    expect(row).to_contain_text(COMMENT)
    expect(row).to_contain_text(TITLE)
    expect(row.locator(".badge")).to_have_text("pending")
    row.locator('input[name="rowid"]').check()
    staff.get_by_role("button", name="With selected").click()
    staff.get_by_role("link", name="Approve", exact=True).click()
    expect(staff).to_have_url(f"{url}/admin/comment/action/approve/?ids={comment_id}")
    expect(staff.get_by_role("heading", name="Approve: 1 selected")).to_be_visible()
    expect(staff.get_by_role("listitem").filter(has_text=COMMENT)).to_have_count(1)
    staff.get_by_label("Reason (optional)").fill(REASON)
    staff.get_by_role("button", name="Approve", exact=True).click()
    expect(staff).to_have_url(f"{url}/admin/comment/")
    expect(staff.get_by_text("1 comment(s) marked approved.")).to_be_visible()
    expect(row.locator(".badge")).to_have_text("approved")
    expect(staff.get_by_role("link", name="Comments", exact=True)).to_be_visible()

    # The author now reads the comment, by its writer, and the count.
    author.reload()
    comments = comments_of(author)
    expect(comments.get_by_role("heading", level=2)).to_have_text("1 comment")
    approved = comments.locator(f"article#comment-{comment_id}")
    expect(approved).not_to_have_class(re.compile(r"\bwaiting\b"))
    expect(approved.locator(".prose")).to_have_text(COMMENT)
    expect(approved.get_by_role("link", name="Charles Reader")).to_be_visible()
    expect(comments.get_by_text(WAITING)).to_have_count(0)
    expect(comments.get_by_text("No comments yet.")).to_have_count(0)
    author.goto("/posts/")
    summary = author.locator("article.post-summary", has_text=TITLE)
    expect(summary).to_contain_text("1 comment")

    # The reader's comment is no longer marked as waiting, and the author was told.
    reader.reload()
    expect(comments_of(reader).locator("article.comment.waiting")).to_have_count(0)
    expect(comments_of(reader).locator(f"article#comment-{comment_id}")).to_contain_text(COMMENT)
    subjects = [(m["To"], m["Subject"]) for m in live_server.deliver_mail()]
    assert subjects == [("ada@example.com", f"New comment on “{TITLE}”")]

    assert console_errors.messages == []
    assert csp_violations == []
