"""The main account flow in a real browser: register, confirm, sign out, sign in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

NAME = "Ada Lovelace"
EMAIL = "ada@example.com"
PASSWORD = "quiet-harbour-71-lanterns"


def detail(page: Page, term: str) -> str:
    """The value next to ``term`` in the profile's list of details."""
    return page.locator(f'dl.details dt:text-is("{term}") + dd').inner_text()


def test_register_confirm_sign_out_and_sign_in(
    page: Page, live_server: LiveServer, console_errors: ConsoleErrors, tmp_path: Path
) -> None:
    url = live_server.url

    # Register: the page says the same whether or not the address was taken,
    # and sends the visitor to sign in.
    page.goto("/users/register/")
    page.get_by_label("Name", exact=True).fill(NAME)
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password", exact=True).fill(PASSWORD)
    page.get_by_label("I accept the terms of service").check()
    page.get_by_role("button", name="Register").click()
    expect(page).to_have_url(f"{url}/users/login/")
    expect(page.get_by_role("status")).to_have_text(
        f"Thank you. We sent a message to {EMAIL}: follow the link in it to confirm "
        "your address, then sign in."
    )

    # Signed in, the new account waits for its confirmation.
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/users/me/")
    expect(page.get_by_role("heading", level=1)).to_have_text(NAME)
    assert detail(page, "Status") == "new"

    # The outbox holds one message for the address, with a link to this server.
    messages = live_server.deliver_mail()
    assert [message["To"] for message in messages] == [EMAIL]
    body = messages[0].get_body(preferencelist=("plain",))
    assert body is not None
    links = re.findall(rf"{re.escape(url)}/users/confirm/\S+/", body.get_content())
    assert len(links) == 1, body.get_content()

    # Opening the link only shows a button; pressing it confirms the address.
    page.goto(links[0])
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    page.get_by_role("button", name="Confirm my address").click()
    expect(page).to_have_url(f"{url}/users/me/")
    expect(page.get_by_role("status")).to_have_text("Thank you: your email address is confirmed.")
    assert detail(page, "Status") == "active"

    # Sign out with the header's POST form.
    header = page.get_by_role("banner")
    header.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(f"{url}/")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    expect(header.get_by_role("button", name="Sign out", exact=True)).to_have_count(0)
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()
    page.goto("/users/me/")
    expect(page).to_have_url(re.compile(re.escape(f"{url}/users/login/")))

    # Sign in again and land on the profile: confirmed, and a second sign-in.
    page.goto("/users/login/")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/users/me/")
    expect(page.get_by_role("status")).to_have_text(f"Welcome back, {NAME}.")
    expect(page.get_by_role("heading", level=1)).to_have_text(NAME)
    expect(header.get_by_role("link", name=NAME)).to_be_visible()
    assert detail(page, "Status") == "active"
    assert detail(page, "Sign-ins") == "2"

    page.screenshot(path=tmp_path / "profile.png", full_page=True)
    assert console_errors.messages == []
