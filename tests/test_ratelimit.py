"""Sign-in attempts are limited per client address and per account."""

from __future__ import annotations

import uuid

import pytest
import redis

from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser


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
