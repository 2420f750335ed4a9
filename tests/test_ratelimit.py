"""Sign-in attempts, and mail to typed addresses, are limited per client, account and address."""

from __future__ import annotations

import uuid

import pytest
import redis
from sqlalchemy import func
from sqlalchemy import select

from portal.emails.models import Email
from portal.extensions import db
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser

STRONG = "mossy-violin-harbour-92"


def login_from(client, address: str, email: str, password: str):
    """Try to sign in as if from ``address``."""
    client.environ_base["REMOTE_ADDR"] = address
    return AuthActions(client).login(email, password)


@pytest.fixture
def limited(make_app):
    def build(**limits):
        app = make_app(**limits)
        return app, app.test_client()

    return build


def test_failed_sign_ins_from_one_address_are_limited(limited):
    app, client = limited(
        LOGIN_LIMIT_PER_ADDRESS="3 per minute", LOGIN_LIMIT_PER_ACCOUNT="100 per minute"
    )
    with app.app_context():
        factories.UserFactory(email="ann@example.com")
    for number in range(3):
        response = login_from(client, "10.0.0.1", f"guess{number}@example.com", "wrong-pass-1")
        assert response.status_code == 200
    blocked = login_from(client, "10.0.0.1", "ann@example.com", factories.PASSWORD)
    assert blocked.status_code == 429
    page = blocked.get_data(as_text=True)
    assert "Too many attempts" in page
    assert "Please wait" in page
    assert 0 < int(blocked.headers["Retry-After"]) <= 60
    # Another address is not affected.
    assert login_from(client, "10.0.0.2", "ann@example.com", factories.PASSWORD).status_code == 302


def test_failed_sign_ins_against_one_account_are_limited_from_any_address(limited):
    app, client = limited(
        LOGIN_LIMIT_PER_ADDRESS="100 per minute", LOGIN_LIMIT_PER_ACCOUNT="2 per minute"
    )
    with app.app_context():
        factories.UserFactory(email="ann@example.com")
        factories.UserFactory(email="bob@example.com")
    assert login_from(client, "10.0.0.1", "ann@example.com", "wrong-pass-1").status_code == 200
    assert login_from(client, "10.0.0.2", "ANN@example.com", "wrong-pass-2").status_code == 200
    blocked = login_from(client, "10.0.0.3", "ann@example.com", factories.PASSWORD)
    assert blocked.status_code == 429
    assert login_from(client, "10.0.0.3", "bob@example.com", factories.PASSWORD).status_code == 302


def test_successful_sign_ins_do_not_count(limited):
    app, client = limited(
        LOGIN_LIMIT_PER_ADDRESS="2 per minute", LOGIN_LIMIT_PER_ACCOUNT="2 per minute"
    )
    with app.app_context():
        factories.UserFactory(email="ann@example.com")
    for _ in range(4):
        assert (
            login_from(client, "10.0.0.1", "ann@example.com", factories.PASSWORD).status_code == 302
        )
        AuthActions(client).logout()


def test_the_login_page_itself_is_not_limited(limited):
    app, client = limited(LOGIN_LIMIT_PER_ADDRESS="1 per minute")
    with app.app_context():
        login_from(client, "10.0.0.1", "x@example.com", "wrong-pass-1")
        for _ in range(3):
            assert client.get("/users/login/").status_code == 200


def test_password_reset_requests_are_limited(limited):
    app, client = limited(ACCOUNT_EMAIL_LIMIT="2 per hour")
    with app.app_context():
        browser = Browser(client)
        for _ in range(2):
            assert browser.submit("/users/forgot/", {"email": "a@example.com"}).status_code == 302
        assert browser.submit("/users/forgot/", {"email": "a@example.com"}).status_code == 429


def test_limits_are_shared_through_redis(limited, redis_url):
    # A client address of this test's own keeps its counters apart from other runs.
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    settings = {"RATELIMIT_STORAGE_URI": redis_url, "LOGIN_LIMIT_PER_ADDRESS": "2 per minute"}
    app, client = limited(**settings)
    other_app, other_client = limited(**settings)
    connection = redis.Redis.from_url(redis_url)
    pattern = f"*/{address}/*"
    try:
        with app.app_context():
            for number in range(2):
                login_from(client, address, f"x{number}@example.com", "wrong-pass-1")
        assert any(connection.scan_iter(pattern))
        # A second app (another process in production) sees the same count.
        with other_app.app_context():
            response = login_from(other_client, address, "y@example.com", "wrong-pass-1")
            assert response.status_code == 429
    finally:
        for key in connection.scan_iter(pattern):
            connection.delete(key)
        connection.close()


# -- pages that mail an address someone typed ------------------------------------------


def queued_to(address: str) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count(Email.id)).where(func.lower(Email.to_address) == address.lower())
    )


def registration(email: str) -> dict[str, str]:
    return {
        "name": "Vic Tim",
        "email": email,
        "password": STRONG,
        "confirm": STRONG,
        "accept_tos": "y",
    }


def test_email_changes_are_limited_per_account(app, client, browser, auth):
    app.config["ACCOUNT_EMAIL_LIMIT_PER_ACCOUNT"] = "2 per hour"
    factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")
    for number in range(2):
        response = browser.submit("/users/me/edit/", {"name": "Ann", "email": f"n{number}@x.org"})
        assert response.status_code == 302

    blocked = browser.submit("/users/me/edit/", {"name": "Ann", "email": "n2@x.org"})

    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert queued_to("n2@x.org") == 0
    assert queued_to("ann@example.com") == 2  # one notice per accepted change
    # A rename mails nobody, so it does not count and is not refused.
    renamed = browser.submit("/users/me/edit/", {"name": "Ann B.", "email": "ann@example.com"})
    assert renamed.status_code == 302


def test_mail_to_one_typed_address_is_limited_across_pages_clients_and_spellings(app):
    app.config["ACCOUNT_EMAIL_LIMIT_PER_RECIPIENT"] = "2 per hour"
    factories.UserFactory(name="Vic", email="victim@example.com")
    factories.UserFactory(name="Ann", email="ann@example.com")

    def visitor(address: str) -> Browser:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return Browser(client)

    register = visitor("10.0.0.1").submit("/users/register/", registration("victim@example.com"))
    assert register.status_code == 302
    forgot = visitor("10.0.0.2").submit("/users/forgot/", {"email": " VICTIM@example.com"})
    assert forgot.status_code == 302
    assert queued_to("victim@example.com") == 2

    # A third try, whichever page, client address or spelling, is refused.
    again = visitor("10.0.0.3").submit("/users/forgot/", {"email": "victim@EXAMPLE.com "})
    assert again.status_code == 429
    signed_in = AuthActions(visitor("10.0.0.4").client)
    signed_in.login("ann@example.com")
    moved = signed_in.browser.submit(
        "/users/me/edit/", {"name": "Ann", "email": "Victim@example.com"}
    )
    assert moved.status_code == 429
    assert queued_to("victim@example.com") == 2
    # Another address is not affected.
    other = visitor("10.0.0.3").submit("/users/forgot/", {"email": "ann@example.com"})
    assert other.status_code == 302


def test_a_refused_registration_does_not_count_toward_the_address(app, browser):
    app.config["ACCOUNT_EMAIL_LIMIT_PER_RECIPIENT"] = "1 per hour"
    weak = registration("grace@example.com") | {"password": "password", "confirm": "password"}
    assert browser.submit("/users/register/", weak).status_code == 200
    assert browser.submit("/users/register/", registration("grace@example.com")).status_code == 302


def test_new_confirmation_links_are_limited_per_account(app, client, browser, auth):
    app.config["ACCOUNT_EMAIL_LIMIT_PER_ACCOUNT"] = "1 per hour"
    factories.NewUserFactory(email="new@example.com")
    auth.login("new@example.com")
    first = browser.submit("/users/confirm/resend/", token_from="/users/me/")
    assert first.status_code == 302
    second = browser.submit("/users/confirm/resend/", token_from="/users/me/")
    assert second.status_code == 429
    assert queued_to("new@example.com") == 1
