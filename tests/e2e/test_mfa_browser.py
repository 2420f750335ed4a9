"""Two-step sign-in in a real browser: staff set it up when the back office asks, then use it.

The QR code is inline SVG under the strict CSP; a violation of any document
fails the test.
"""

from __future__ import annotations

import time

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Page
from playwright.sync_api import expect

from portal.users import constants as USER
from portal.users import mfa
from tests import factories
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

EMAIL = "grace@example.com"
NAME = "Grace Hopper"


@pytest.fixture
def staff(app: Flask) -> None:
    """A staff account, on a site whose staff must use two-step sign-in."""
    app.config["MFA_REQUIRED_ROLES"] = ("staff", "admin")
    factories.UserFactory(email=EMAIL, name=NAME, role=USER.STAFF)


def password_step(page: Page) -> None:
    page.goto("/users/login/?next=/admin/")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def next_code(secret: str) -> str:
    """A code the site has not seen: the set-up spent the current step's, so the next step's."""
    return pyotp.TOTP(secret).at(time.time() + mfa.TIME_STEP_SECONDS)


def test_staff_set_up_two_step_sign_in_then_sign_in_with_a_code(
    page: Page,
    live_server: LiveServer,
    staff: None,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    url = live_server.url

    # Signed in with the password alone, the back office sends staff to set it up.
    password_step(page)
    expect(page).to_have_url(f"{url}/users/me/mfa/")
    expect(page.get_by_text("Your role needs a second factor")).to_be_visible()
    page.get_by_label("Your password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Set up an authenticator app").click()

    # The QR code is drawn, from inline SVG, and the secret is there to type.
    qr = page.locator("#mfa-qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    secret = page.locator("#mfa-secret").inner_text().replace(" ", "")
    assert len(secret) == 32

    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == mfa.RECOVERY_CODE_COUNT

    # The back office opens now.
    page.goto("/admin/")
    expect(page).to_have_url(f"{url}/admin/")
    page.wait_for_load_state("load")

    # Signed out and in again, the password is not enough: the code page asks.
    page.context.clear_cookies()
    password_step(page)
    expect(page).to_have_url(f"{url}/users/login/code/")
    page.goto("/admin/")
    expect(page).to_have_url(f"{url}/users/login/?next=/admin/")

    password_step(page)
    expect(page).to_have_url(f"{url}/users/login/code/")
    page.get_by_label("Code").fill(next_code(secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/admin/")
    expect(page.get_by_text(f"Welcome back, {NAME}.")).to_be_visible()
    page.wait_for_load_state("load")

    # A recovery code works once in place of the app's code.
    page.context.clear_cookies()
    password_step(page)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/admin/")
    page.wait_for_load_state("load")

    assert csp_violations == []
    assert console_errors.messages == []
