"""A reader reports a comment, and staff hide it from the reports queue, under the strict CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect
from sqlalchemy import select

from portal.comments.models import Comment
from portal.extensions import db
from portal.reports.models import Report
from portal.users.models import User
from tests import factories
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

SLUG = "analytical-engine"
SPAM = "Cheap watches at example.net, today only!"
NOTE = "Advertising, nothing to do with the post."


def test_a_reader_reports_a_comment_and_staff_hide_it(
    page: Page,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    with live_server.app.app_context():
        factories.StaffFactory(name="Sam Staff", email="sam@example.com")
        factories.UserFactory(name="Rita Reader", email="rita@example.com")
        post = factories.PostFactory(title="The Analytical Engine", slug=SLUG, comment_count=1)
        spammer = factories.UserFactory(name="Spam Sender", email="spam@example.com")
        comment_id = factories.ApprovedCommentFactory(post=post, author=spammer, body=SPAM).id
        spammer_id = spammer.id
    url = live_server.url

    # The reader reports the comment from its own link, with a reason and a note.
    sign_in(page, "rita@example.com", "Rita Reader", f"/posts/{SLUG}/")
    page.locator(f"#comment-{comment_id}").get_by_role("link", name="Report this comment").click()
    expect(page).to_have_url(f"{url}/comments/{comment_id}/report/")
    expect(page.get_by_role("heading", name="Report to staff")).to_be_visible()
    page.get_by_label("Spam or advertising").check()
    page.get_by_label("Anything staff should know? (optional)").fill(NOTE)
    page.get_by_role("button", name="Send the report").click()
    expect(page).to_have_url(f"{url}/posts/{SLUG}/#comment-{comment_id}")
    expect(page.get_by_text("Thank you. Staff will look at your report.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    # Staff see it in the queue with its reason and note, and hide it in one step.
    sign_in(page, "sam@example.com", "Sam Staff", "/admin/report/")
    expect(page).to_have_url(f"{url}/admin/report/")
    expect(page.get_by_role("link", name="Reports (1 open)")).to_be_visible()
    row = page.locator(f"#report-comment-{comment_id}")
    expect(row).to_contain_text(SPAM)
    expect(row).to_contain_text("spam: 1")
    expect(row).to_contain_text(NOTE)
    row.get_by_label("Also deactivate Spam Sender").check()
    row.get_by_role("button", name="Hide").click()
    expect(page).to_have_url(f"{url}/admin/report/")
    expect(
        page.get_by_text(f"comment #{comment_id} is hidden; its reports are resolved.")
    ).to_be_visible()
    expect(page.get_by_text("Nothing is waiting: no open reports.")).to_be_visible()

    with live_server.app.app_context():
        assert db.session.get(Comment, comment_id).status_name == "rejected"
        assert db.session.get(User, spammer_id).status_name == "inactive"
        (report,) = db.session.execute(select(Report)).scalars()
        assert report.status_name == "hidden"

    # Readers no longer see it.
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"/posts/{SLUG}/")
    expect(page.get_by_text(SPAM)).to_have_count(0)

    assert console_errors.messages == []
    assert csp_violations == []
