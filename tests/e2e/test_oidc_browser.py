"""Sign in with a provider, link and unlink one, in a real browser against a real provider."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect
from sqlalchemy import select

from portal.extensions import db
from portal.users.models import ProviderIdentity
from portal.users.models import User
from tests import factories
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer
from tests.oidc_server import Provider
from tests.oidc_server import running_provider

pytestmark = pytest.mark.e2e


@pytest.fixture
def provider(live_server: LiveServer) -> Iterator[Provider]:
    """The loopback provider, with a client whose redirect URI is this live server's."""
    callback = f"{live_server.url}/users/providers/test/callback/"
    with running_provider([callback]) as running:
        live_server.app.config["OIDC_PROVIDERS"] = [running.settings()]
        yield running


def app_errors(console_errors: ConsoleErrors, live_server: LiveServer) -> list[str]:
    """Console errors of the app's own pages (the provider's pages load web fonts it cannot)."""
    return [message for message in console_errors.messages if live_server.url in message]


def at_provider(page: Page, provider: Provider, login: str) -> None:
    """Sign in on the provider's development login page and consent."""
    expect(page).to_have_url(re.compile(re.escape(provider.issuer + "/interaction/")))
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def test_sign_up_with_a_provider_then_sign_in_again(
    page: Page,
    live_server: LiveServer,
    provider: Provider,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    url = live_server.url
    login = provider.add_account(email="grace@example.com", name="Grace Hopper")

    page.goto("/users/login/?next=/users/me/providers/")
    page.get_by_role("link", name="Sign in with Test ID").click()
    at_provider(page, provider, login)

    expect(page).to_have_url(f"{url}/users/me/providers/")
    # One status region holds both messages, each its own paragraph.
    expect(page.get_by_role("status").locator("p")).to_have_text(
        ["Welcome back, Grace Hopper.", "Your account is ready: you signed up with Test ID."]
    )
    expect(page.locator('li[data-provider="test"]')).to_contain_text("linked as grace@example.com")
    # Its only way in cannot be unlinked.
    page.get_by_role("button", name="Unlink Test ID").click()
    expect(page.get_by_role("status")).to_contain_text("Test ID is the only way to sign in")

    page.get_by_role("banner").get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")

    # The provider remembers the person, so signing in again is one click here.
    page.goto("/users/login/")
    page.get_by_role("link", name="Sign in with Test ID").click()
    expect(page).to_have_url(f"{url}/users/me/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grace Hopper")
    with live_server.app.app_context():
        assert db.session.execute(select(User.email)).scalars().all() == ["grace@example.com"]
    assert app_errors(console_errors, live_server) == []
    assert csp_violations == []


def test_link_from_the_account_page_then_unlink(
    page: Page,
    live_server: LiveServer,
    provider: Provider,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    url = live_server.url
    with live_server.app.app_context():
        factories.UserFactory(name="Linus Link", email="linus@example.com")
    # The provider's address is not verified: linking from the account page
    # rests on the password, not on the email.
    login = provider.add_account(email="linus@elsewhere.example", email_verified=False)

    page.goto("/users/login/")
    page.get_by_label("Email", exact=True).fill("linus@example.com")
    page.get_by_label("Password", exact=True).fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{url}/users/me/")

    page.get_by_role("link", name="Sign-in providers").click()
    page.get_by_role("link", name="Link Test ID").click()
    page.get_by_label("Your password").fill("a wrong password")
    page.get_by_role("button", name="Confirm password").click()
    # Beside the field, and in the error summary that links to it.
    expect(page.locator("#password-error-1")).to_have_text("The password is not correct.")
    expect(
        page.get_by_role("link", name="Your password: The password is not correct.")
    ).to_be_visible()
    page.get_by_label("Your password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Confirm password").click()
    page.get_by_role("link", name="Continue to Test ID").click()
    at_provider(page, provider, login)

    expect(page).to_have_url(f"{url}/users/me/providers/")
    expect(page.get_by_role("status")).to_have_text("Test ID is now linked to your account.")
    with live_server.app.app_context():
        [identity] = db.session.execute(select(ProviderIdentity)).scalars().all()
        assert identity.subject == login
        assert identity.user.email == "linus@example.com"

    page.get_by_role("button", name="Unlink Test ID").click()
    expect(page.get_by_role("status")).to_have_text("Test ID is no longer linked to your account.")
    expect(page.get_by_role("link", name="Link Test ID")).to_be_visible()
    with live_server.app.app_context():
        assert db.session.execute(select(ProviderIdentity)).scalars().all() == []
    assert app_errors(console_errors, live_server) == []
    assert csp_violations == []
