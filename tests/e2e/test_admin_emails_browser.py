"""Staff run the email queue in a real browser, under the site's strict CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect
from sqlalchemy import select

from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.extensions import db
from tests import factories
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e


def sign_in(page: Page, email: str) -> None:
    page.goto("/users/login/?next=/admin/email/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Flask-Admin's handlers call its scripts, which load at the end of the page.
    page.wait_for_load_state("load")


def states(live_server: LiveServer) -> dict[str, int]:
    with live_server.app.app_context():
        rows = db.session.execute(select(Email.subject, Email.state)).all()
        return {subject: state for subject, state in rows}


def test_staff_retry_a_failed_message_from_the_action_menu(
    page: Page, live_server: LiveServer, console_errors: ConsoleErrors
) -> None:
    with live_server.app.app_context():
        factories.StaffFactory(email="sam@example.com")
        failed = factories.EmailFactory(subject="Bounced", state=EMAIL.FAILED, attempts=5)
        factories.EmailFactory(subject="Waiting")
        failed_id = failed.id

    sign_in(page, "sam@example.com")
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    page.locator(f'input[name="rowid"][value="{failed_id}"]').check()
    page.get_by_role("button", name="With selected").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="Retry now").click()
    expect(page.get_by_text("1 message(s) queued for delivery now.")).to_be_visible()
    assert states(live_server)["Bounced"] == EMAIL.QUEUED
    assert states(live_server)["Waiting"] == EMAIL.QUEUED

    # The details page shows the message and its (empty) attempt log.
    page.goto(f"/admin/email/details/?id={failed_id}")
    expect(page.get_by_text("No delivery attempt yet.")).to_be_visible()
    assert console_errors.messages == []


def test_admin_deletes_one_row_after_confirming(
    page: Page, live_server: LiveServer, console_errors: ConsoleErrors
) -> None:
    with live_server.app.app_context():
        factories.AdminFactory(email="ada@example.com")
        factories.EmailFactory(subject="Old news", state=EMAIL.SENT)

    sign_in(page, "ada@example.com")
    # Dismissing the confirmation keeps the row.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_title("Delete Record").click()
    assert "Old news" in states(live_server)
    # Accepting it deletes the row.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_title("Delete Record").click()
    expect(page.get_by_text("Record was successfully deleted.")).to_be_visible()
    assert states(live_server) == {}
    assert console_errors.messages == []
