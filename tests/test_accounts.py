"""Sign-up, confirmation, sign-in and sign-out through the pages, CSRF on."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.extensions import db
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.helpers import deliver
from tests.helpers import link_in
from tests.helpers import path_of
from tests.helpers import text_of

STRONG = "mossy-violin-harbour-92"
REGISTERED = (
    "Thank you. We sent a message to grace@example.com: follow the link in it to confirm "
    "your address, then sign in."
)


def register_data(**overrides):
    data = {
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "password": STRONG,
        "confirm": STRONG,
        "accept_tos": "y",
    }
    data.update(overrides)
    return data


def accounts():
    db.session.expire_all()
    return db.session.execute(select(User)).scalars().all()


# -- register ------------------------------------------------------------------


def test_register_creates_new_account_and_queues_confirmation(app, client, browser, auth):
    response = browser.submit("/users/register/", register_data())
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/login/"
    assert REGISTERED in client.get("/users/login/").get_data(as_text=True)

    [user] = accounts()
    assert (user.name, user.email) == ("Grace Hopper", "grace@example.com")
    assert user.role == USER.USER
    assert user.status == USER.NEW
    assert user.password_hash != STRONG and user.check_password(STRONG)

    [queued] = db.session.execute(select(Email)).scalars().all()
    assert queued.to_address == "grace@example.com"
    assert queued.state == EMAIL.QUEUED
    assert queued.sensitive is True

    # Not signed in by registering (a taken address must get the same answer).
    assert client.get("/users/me/").status_code == 302
    assert auth.login("grace@example.com", STRONG).status_code == 302
    profile = client.get("/users/me/")
    assert profile.status_code == 200
    assert "Please confirm your email address" in profile.get_data(as_text=True)


def test_register_page_has_no_captcha_unless_configured(make_app):
    plain = make_app().test_client().get("/users/register/").get_data(as_text=True)
    assert "g-recaptcha" not in plain
    app = make_app(RECAPTCHA_PUBLIC_KEY="site-key", RECAPTCHA_PRIVATE_KEY="secret")
    response = app.test_client().get("/users/register/")
    assert "g-recaptcha" in response.get_data(as_text=True)
    assert "https://www.google.com/recaptcha/" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"confirm": STRONG + "x"}, "The passwords do not match."),
        ({"accept_tos": ""}, "Please accept the terms of service to register."),
        ({"password": "password1", "confirm": "password1"}, "This is a very common password."),
        ({"password": "short", "confirm": "short"}, "Use at least 8 characters."),
        ({"password": "x" * 129, "confirm": "x" * 129}, "Field cannot be longer than 128"),
        ({"email": "not-an-address"}, "The email address is not valid"),
        ({"email": "a@example.com\r\nBcc: b@example.com"}, "must be a single line"),
        ({"name": "   "}, "This field is required."),
    ],
    ids=[
        "mismatched-confirm",
        "unchecked-tos",
        "weak-password",
        "short-password",
        "overlong-password",
        "bad-email",
        "header-injection",
        "blank-name",
    ],
)
def test_register_refuses_bad_input_and_changes_nothing(browser, overrides, message):
    factories.UserFactory(email="grace@example.com")
    before = len(accounts())
    response = browser.submit("/users/register/", register_data(**overrides))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert len(accounts()) == before
    assert db.session.execute(select(Email)).first() is None


def registration_answer(client, browser, email):
    """Register with ``email``; return the redirect and the page it leads to."""
    response = browser.submit("/users/register/", register_data(email=email))
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return response.headers["Location"], page


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("grace@example.com", "grace@example.com"),
        ("GRACE@Example.COM", "GRACE@example.com"),
        ("  grace@example.com ", "grace@example.com"),
    ],
)
def test_a_taken_address_gets_the_same_answer_as_a_free_one(app, typed, shown):
    factories.UserFactory(name="Grace Owner", email="grace@example.com")
    free, taken = app.test_client(), app.test_client()

    free_location, free_page = registration_answer(free, Browser(free), "ada@example.com")
    taken_location, taken_page = registration_answer(taken, Browser(taken), typed)

    assert taken_location == free_location == "/users/login/"
    # The address is shown as typed (normalised), whoever has it.
    assert REGISTERED.replace("grace@example.com", shown) in taken_page
    assert REGISTERED.replace("grace@", "ada@") in free_page
    assert "already exists" not in taken_page
    # Neither visitor is signed in: the free address's account signs in as anyone would.
    assert taken.get("/users/me/").status_code == free.get("/users/me/").status_code == 302


def test_the_owner_of_a_taken_address_hears_that_someone_tried(app, browser):
    owner = factories.UserFactory(name="Grace Owner", email="grace@example.com")
    browser.submit("/users/register/", register_data(email="GRACE@example.com"))

    assert [user.id for user in accounts()] == [owner.id]
    [message] = deliver(app)
    assert message["To"] == "grace@example.com"
    assert message["Subject"] == "Someone tried to register at Portal with your address"
    body = text_of(message)
    assert "Hello Grace Owner," in body
    assert "No account was created" in body
    assert link_in(message) == "http://127.0.0.1:5000/users/forgot/"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "choose a new one" in html.get_content()
    assert accounts()[0].check_password(factories.PASSWORD)  # nothing about it changed


def test_a_disabled_owner_is_not_mailed_and_the_answer_is_the_same(app, client, browser):
    factories.InactiveUserFactory(email="grace@example.com")
    response = browser.submit("/users/register/", register_data())
    assert response.headers["Location"] == "/users/login/"
    assert REGISTERED in client.get("/users/login/").get_data(as_text=True)
    assert deliver(app) == []


def test_weak_password_refusal_explains_how_to_do_better(browser):
    response = browser.submit(
        "/users/register/", register_data(password="grace hopper", confirm="grace hopper")
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Add another word or two" in page or "uncommon words" in page


def test_long_password_is_never_truncated(app, client, browser, auth):
    long_password = "vivid-pebble-" * 9  # 117 characters, past bcrypt's 72-byte limit
    browser.submit("/users/register/", register_data(password=long_password, confirm=long_password))
    assert auth.login("grace@example.com", long_password[:72]).status_code == 200
    assert auth.login("grace@example.com", long_password).status_code == 302


def test_password_fields_follow_the_configured_limits(app, client):
    app.config.update(PASSWORD_MIN_LENGTH=12, PASSWORD_MAX_LENGTH=64)

    page = client.get("/users/register/").get_data(as_text=True)

    assert "At least 12 characters." in page
    assert page.count('maxlength="64"') == 1  # the password; its repeat takes any length


def test_register_without_csrf_token_is_refused(client):
    response = client.post("/users/register/", data=register_data())
    assert response.status_code == 400
    assert accounts() == []


def test_signed_in_visitor_is_sent_from_register_to_profile(client, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    response = client.get("/users/register/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/me/"


# -- confirm -------------------------------------------------------------------


def registered_and_link(app, browser):
    """Register, sign in as the new account, and return its confirmation link's path."""
    browser.submit("/users/register/", register_data())
    assert AuthActions(browser.client).login("grace@example.com", STRONG).status_code == 302
    [message] = deliver(app)
    return path_of(link_in(message))


def test_confirmation_email_goes_to_stored_address_with_link_from_base_url(app, browser):
    browser.submit(
        "/users/register/",
        register_data(email="Grace@Example.com"),
        headers={"Host": "evil.example"},
    )
    [message] = deliver(app)
    assert message["To"] == "Grace@example.com"
    link = link_in(message)
    assert link.startswith("http://127.0.0.1:5000/users/confirm/")
    assert "evil.example" not in text_of(message)


def test_confirm_link_shows_a_button_and_post_activates(app, client, browser):
    path = registered_and_link(app, browser)
    page = client.get(path)
    assert page.status_code == 200
    assert "Confirm my address" in page.get_data(as_text=True)
    [user] = accounts()
    assert user.status == USER.NEW  # a GET changes nothing

    response = browser.submit(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/me/"
    [user] = accounts()
    assert user.status == USER.ACTIVE
    assert user.confirmed_at is not None


def test_confirm_link_works_once(app, client, browser):
    path = registered_and_link(app, browser)
    browser.submit(path)
    again = client.get(path)
    assert again.status_code == 400
    assert "already been used" in again.get_data(as_text=True)


def test_confirm_link_works_without_being_signed_in(app, client, browser, auth):
    path = registered_and_link(app, browser)
    auth.logout()
    response = browser.submit(path)
    assert response.headers["Location"] == "/users/login/"
    assert accounts()[0].status == USER.ACTIVE


def test_forged_confirm_link_is_refused(app, client, browser):
    path = registered_and_link(app, browser)
    forged = path.rstrip("/")[:-3] + "abc/"
    response = client.get(forged)
    assert response.status_code == 400
    assert "not valid" in response.get_data(as_text=True)
    assert client.post(forged, data={}).status_code == 400
    assert accounts()[0].status == USER.NEW


def test_expired_confirm_link_is_refused(make_app):
    app = make_app(CONFIRM_TOKEN_MAX_AGE=-1)
    with app.app_context():
        client = app.test_client()
        path = registered_and_link(app, Browser(client))
        response = client.get(path)
        assert response.status_code == 400
        assert "expired" in response.get_data(as_text=True)
        assert accounts()[0].status == USER.NEW


def test_confirm_token_of_one_purpose_does_not_reset_a_password(app, client, browser):
    path = registered_and_link(app, browser)
    token = path.split("/")[3]
    response = client.get(f"/users/reset/{token}/")
    assert response.status_code == 400


def test_resend_confirmation_queues_a_new_link(app, client, browser):
    registered_and_link(app, browser)
    response = browser.submit("/users/confirm/resend/", token_from="/users/me/")
    assert response.status_code == 302
    messages = deliver(app)
    assert len(messages) == 2
    assert messages[1]["To"] == "grace@example.com"


def test_resend_confirmation_is_post_only_and_needs_sign_in(client):
    assert client.get("/users/confirm/resend/").status_code == 405
    response = client.post("/users/confirm/resend/")
    assert response.status_code in (302, 400)
    assert db.session.execute(select(Email)).first() is None


def test_resend_for_active_account_sends_nothing(app, client, browser, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    browser.submit("/users/confirm/resend/", token_from="/users/me/")
    assert deliver(app) == []


# -- login ---------------------------------------------------------------------


def test_login_with_right_password_signs_in_and_records_it(client, auth):
    user = factories.UserFactory(email="ann@example.com")
    response = auth.login("ANN@example.com")
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/me/"
    assert client.get("/users/me/").status_code == 200
    db.session.refresh(user)
    assert user.login_count == 1
    assert user.last_login_at is not None


@pytest.mark.parametrize("email", ["ann@example.com", "nobody@example.com"])
def test_login_failure_says_the_same_for_known_and_unknown_accounts(client, auth, email):
    factories.UserFactory(email="ann@example.com")
    response = auth.login(email, "wrong-password-here")
    assert response.status_code == 200
    assert "The email address or password is not correct." in response.get_data(as_text=True)
    assert client.get("/users/me/").status_code == 302


def test_inactive_account_cannot_sign_in_with_the_right_password(client, auth):
    factories.InactiveUserFactory(email="gone@example.com")
    response = auth.login("gone@example.com", factories.PASSWORD)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "This account is disabled" in page
    assert "not correct" not in page
    assert client.get("/users/me/").status_code == 302


def test_a_wrong_password_does_not_say_an_account_is_disabled(client, auth):
    # Only someone who knows the password learns that the account is disabled.
    factories.InactiveUserFactory(email="gone@example.com")
    response = auth.login("gone@example.com", "wrong-password-here")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The email address or password is not correct." in page
    assert "disabled" not in page
    assert client.get("/users/me/").status_code == 302


def test_new_account_can_sign_in(client, auth):
    factories.NewUserFactory(email="new@example.com")
    assert auth.login("new@example.com").status_code == 302


def test_login_renews_the_session(client, auth):
    factories.UserFactory(email="ann@example.com")
    client.get("/users/login/")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
        before = session.get("csrf_token")
    auth.login("ann@example.com")
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf_token") != before


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/users/me/edit/", "/users/me/edit/"),
        ("/admin/?page=2", "/admin/?page=2"),
        ("https://evil.example/", "/users/me/"),
        ("//evil.example/", "/users/me/"),
        ("/\\evil.example/", "/users/me/"),
        ("\\\\evil.example", "/users/me/"),
        ("http:evil.example", "/users/me/"),
        ("/\tevil", "/users/me/"),
        ("javascript:alert(1)", "/users/me/"),
        ("", "/users/me/"),
    ],
)
def test_login_follows_next_only_to_a_path_on_this_site(client, browser, next_url, expected):
    factories.UserFactory(email="ann@example.com")
    response = browser.submit(
        "/users/login/",
        {"email": "ann@example.com", "password": factories.PASSWORD},
        query_string={"next": next_url},
        token_from="/users/login/",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_remember_me_sets_a_remember_cookie(client, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com", remember="y")
    assert client.get_cookie("portal_remember") is not None


def test_without_remember_me_there_is_no_remember_cookie(client, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    assert client.get_cookie("portal_remember") is None


# -- logout --------------------------------------------------------------------


def test_logout_is_post_only(client, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    assert client.get("/users/logout/").status_code == 405
    assert client.get("/users/me/").status_code == 200


def test_logout_without_csrf_token_keeps_the_session(client, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    assert client.post("/users/logout/").status_code == 400
    assert client.get("/users/me/").status_code == 200


def test_logout_ends_the_session(client, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    response = auth.logout()
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/users/me/").status_code == 302
