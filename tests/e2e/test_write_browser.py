"""Write → preview → schedule in a real browser, under the strict CSP.

The author writes from the header's Write link, watches the live preview
follow the text, presses Preview (rendered on the server), schedules the post
for later and finds it under Scheduled on Your posts; a visitor cannot see it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

TITLE = "Notes for next year"
SLUG = "notes-for-next-year"
LATER = "2099-03-04T10:30"


def test_write_preview_and_schedule_a_post(
    page: Page,
    chromium: Browser,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    with live_server.app.app_context():
        factories.UserFactory(name="Ada Author", email="ada@example.com")
    page.goto("/users/login/")
    page.get_by_label("Email", exact=True).fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Welcome back, Ada Author.")).to_be_visible()

    # The header leads to the editor; the live preview follows the body as it is typed.
    page.get_by_role("link", name="Write", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Write a post")
    live = page.locator("section.live-preview")
    expect(live).to_be_visible()
    expect(live.get_by_role("heading", name="Live preview")).to_be_visible()
    page.get_by_label("Title", exact=True).fill(TITLE)
    body = page.get_by_label("Body", exact=True)
    body.fill("Plans for **next year**.")
    expect(live.locator(".prose strong")).to_have_text("next year")
    body.fill("Plans for *the year after*. <script>alert(1)</script>")
    expect(live.locator(".prose em")).to_have_text("the year after")
    expect(live.locator(".prose strong")).to_have_count(0)
    expect(live.locator(".prose")).to_contain_text("<script>alert(1)</script>")  # as text

    # Preview renders the same on the server, and keeps what was typed.
    page.get_by_role("button", name="Preview", exact=True).click()
    server_preview = page.locator("section.preview")
    expect(server_preview.get_by_role("heading", name="Preview", exact=True)).to_be_visible()
    expect(server_preview.locator(".prose em")).to_have_text("the year after")
    expect(page.get_by_label("Title", exact=True)).to_have_value(TITLE)
    expect(live.locator(".prose em")).to_have_text("the year after")

    # A later time schedules it.
    page.get_by_label("Publish at", exact=True).fill(LATER)
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/posts/{SLUG}/")
    expect(page.get_by_role("status")).to_contain_text("Your post is scheduled")

    # Your posts lists it under Scheduled, with when it publishes.
    page.get_by_role("link", name="Your posts", exact=True).click()
    filters = page.get_by_role("navigation", name="Your posts by state")
    expect(filters.get_by_role("link", name="Scheduled")).to_have_text("Scheduled 1")
    filters.get_by_role("link", name="Scheduled").click()
    row = page.locator("article.own-post", has_text=TITLE)
    expect(row.locator(".badge")).to_have_text("Scheduled")
    expect(row).to_contain_text("Publishes")
    expect(row.get_by_role("link", name=f"Edit “{TITLE}”")).to_be_visible()

    # A visitor does not see it yet.
    visitor = chromium.new_context(base_url=live_server.url)
    try:
        other = visitor.new_page()
        response = other.goto(f"/posts/{SLUG}/")
        assert response is not None and response.status == 404
        other.goto("/posts/")
        expect(other.get_by_text(TITLE)).to_have_count(0)
        expect(other.get_by_role("link", name="Your posts")).to_have_count(0)
    finally:
        visitor.close()

    assert csp_violations == []
    assert console_errors.messages == []
