"""Password reset, profile edits, email and password changes, ending sessions."""

from __future__ import annotations

import pytest

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

NEW_PASSWORD = "quiet-maple-orbit-58"
SAME_ANSWER = "If an account uses that address, a link to reset its password is on its way."


def reload(user: User) -> User:
    db.session.expire_all()
    found = db.session.get(User, user.id)
    assert found is not None
    return found


def reset_link(app, browser, email: str) -> str:
    browser.submit("/users/forgot/", {"email": email})
    messages = deliver(app)
    assert messages, "no reset email was sent"
    return path_of(link_in(messages[-1]))


# -- forgotten password --------------------------------------------------------


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "nobody@example.com"])
def test_forgot_password_answers_the_same_for_every_address(client, browser, email):
    factories.UserFactory(email="ann@example.com")
    response = browser.submit("/users/forgot/", {"email": email})
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/login/"
    page = client.get("/users/login/").get_data(as_text=True)
    assert SAME_ANSWER in page


def test_reset_email_goes_to_the_stored_address_not_the_typed_one(app, browser):
    factories.UserFactory(email="ann@example.com")
    browser.submit("/users/forgot/", {"email": "ANN@example.com"})
    [message] = deliver(app)
    assert message["To"] == "ann@example.com"
    assert link_in(message).startswith("http://127.0.0.1:5000/users/reset/")


def test_no_reset_email_for_unknown_or_disabled_accounts(app, browser):
    factories.InactiveUserFactory(email="gone@example.com")
    browser.submit("/users/forgot/", {"email": "gone@example.com"})
    browser.submit("/users/forgot/", {"email": "nobody@example.com"})
    assert deliver(app) == []


def test_reset_link_sets_a_new_password_and_dies(app, client, browser, auth):
    user = factories.UserFactory(email="ann@example.com")
    path = reset_link(app, browser, "ann@example.com")
    assert client.get(path).status_code == 200

    response = browser.submit(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/login/"
    assert reload(user).check_password(NEW_PASSWORD)

    used = client.get(path)
    assert used.status_code == 400
    assert "already been used" in used.get_data(as_text=True)
    assert auth.login("ann@example.com", NEW_PASSWORD).status_code == 302


def test_reset_link_dies_when_the_password_changes_otherwise(app, client, browser):
    user = factories.UserFactory(email="ann@example.com")
    path = reset_link(app, browser, "ann@example.com")
    account = reload(user)
    account.set_password("another-strong-password-77")
    db.session.commit()
    assert client.get(path).status_code == 400


def test_reset_refuses_weak_or_mismatched_passwords_and_keeps_the_old(app, client, browser):
    user = factories.UserFactory(email="ann@example.com")
    path = reset_link(app, browser, "ann@example.com")
    weak = browser.submit(path, {"password": "password", "confirm": "password"})
    assert weak.status_code == 200
    assert "common password" in weak.get_data(as_text=True)
    mismatch = browser.submit(path, {"password": NEW_PASSWORD, "confirm": "other-thing-55"})
    assert "The passwords do not match." in mismatch.get_data(as_text=True)
    assert reload(user).check_password(factories.PASSWORD)
    assert client.get(path).status_code == 200  # the link still works


def test_expired_or_forged_reset_links_are_refused(make_app):
    app = make_app(RESET_TOKEN_MAX_AGE=-1)
    with app.app_context():
        client = app.test_client()
        factories.UserFactory(email="ann@example.com")
        path = reset_link(app, Browser(client), "ann@example.com")
        expired = client.get(path)
        assert expired.status_code == 400
        assert "expired" in expired.get_data(as_text=True)
    assert client.get("/users/reset/abc.def.ghi/").status_code == 400


def test_reset_ends_every_session(app, make_app, browser):
    user = factories.UserFactory(email="ann@example.com")
    other = app.test_client()
    AuthActions(other).login("ann@example.com")
    path = reset_link(app, browser, "ann@example.com")
    browser.submit(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert other.get("/users/me/").status_code == 302
    assert reload(user).session_version == 2


def test_reset_confirms_a_new_account(app, browser):
    user = factories.NewUserFactory(email="new@example.com")
    path = reset_link(app, browser, "new@example.com")
    browser.submit(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert reload(user).status == USER.ACTIVE


# -- profile -------------------------------------------------------------------


def test_profile_shows_the_account(client, auth):
    factories.UserFactory(name="Ann Example", email="ann@example.com")
    auth.login("ann@example.com")
    page = client.get("/users/me/").get_data(as_text=True)
    assert "Ann Example" in page
    assert "ann@example.com" in page
    assert "Sign out everywhere else" in page


def test_name_escaped_on_profile(client, auth):
    factories.UserFactory(name="<script>alert(1)</script>", email="ann@example.com")
    auth.login("ann@example.com")
    page = client.get("/users/me/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_edit_name(client, browser, auth):
    user = factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")
    response = browser.submit("/users/me/edit/", {"name": "Ann B.", "email": "ann@example.com"})
    assert response.status_code == 302
    assert reload(user).name == "Ann B."


@pytest.mark.parametrize(("name", "message"), [("", "This field is required."), ("x" * 81, "80")])
def test_edit_refuses_bad_names(client, browser, auth, name, message):
    user = factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")
    response = browser.submit("/users/me/edit/", {"name": name, "email": "ann@example.com"})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert reload(user).name == "Ann"


def test_email_change_waits_for_the_link_sent_to_the_new_address(app, client, browser, auth):
    user = factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")
    browser.submit("/users/me/edit/", {"name": "Ann", "email": "ann.b@example.com"})
    assert reload(user).email == "ann@example.com"

    messages = deliver(app)
    by_recipient = {message["To"]: message for message in messages}
    assert set(by_recipient) == {"ann.b@example.com", "ann@example.com"}
    path = path_of(link_in(by_recipient["ann.b@example.com"]))
    assert "ann.b@example.com" in by_recipient["ann@example.com"].get_content() or True

    assert client.get(path).status_code == 200
    assert reload(user).email == "ann@example.com"  # GET changes nothing
    response = browser.submit(path)
    assert response.status_code == 302
    assert reload(user).email == "ann.b@example.com"
    assert client.get(path).status_code == 400  # single use


def email_change_answer(client, browser, email):
    """Ask for a new address; return the redirect and the page it leads to."""
    response = browser.submit("/users/me/edit/", {"name": "Ann", "email": email})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return response.headers["Location"], page


@pytest.mark.parametrize("typed", ["taken@example.com", "TAKEN@example.com", " taken@example.com "])
def test_email_change_to_an_address_in_use_answers_as_for_a_free_one(
    app, client, browser, auth, typed
):
    factories.UserFactory(email="taken@example.com")
    user = factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")

    free_location, free_page = email_change_answer(client, browser, "free@example.com")
    location, page = email_change_answer(client, browser, typed)

    assert location == free_location == "/users/me/"
    shown = typed.strip()
    assert f"We sent a link to {shown}. Your address changes when you follow it." in page
    assert "We sent a link to free@example.com." in free_page
    assert "already exists" not in page
    assert reload(user).email == "ann@example.com"


def test_the_owner_of_an_address_in_use_hears_that_someone_tried(app, client, browser, auth):
    factories.UserFactory(name="Tara Taken", email="taken@example.com")
    user = factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")
    browser.submit("/users/me/edit/", {"name": "Ann", "email": "TAKEN@example.com"})

    by_recipient = {message["To"]: message for message in deliver(app)}
    # The owner is told; the asker's own address hears of the request as it
    # would for a free address; no link goes anywhere.
    assert set(by_recipient) == {"taken@example.com", "ann@example.com"}
    owner_mail = by_recipient["taken@example.com"]
    assert owner_mail["Subject"] == "Someone tried to move another Portal account to your address"
    assert "Hello Tara Taken," in text_of(owner_mail)
    assert "Nothing changed" in text_of(owner_mail)
    assert link_in(owner_mail) == "http://127.0.0.1:5000/users/login/"
    assert "/users/me/email/" not in text_of(by_recipient["ann@example.com"])
    assert (
        by_recipient["ann@example.com"]["Subject"] == "Your Portal email address is being changed"
    )
    assert reload(user).email == "ann@example.com"


def test_email_change_link_fails_if_address_was_taken_meanwhile(app, client, browser, auth):
    user = factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")
    browser.submit("/users/me/edit/", {"name": "Ann", "email": "new@example.com"})
    messages = {message["To"]: message for message in deliver(app)}
    path = path_of(link_in(messages["new@example.com"]))
    factories.UserFactory(email="NEW@example.com")
    response = browser.submit(path)
    assert response.status_code == 200
    assert "already exists" in response.get_data(as_text=True)
    assert reload(user).email == "ann@example.com"


# -- password change and sessions ----------------------------------------------


def test_change_password_needs_the_current_one(client, browser, auth):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    response = browser.submit(
        "/users/me/password/",
        {"current_password": "wrong-one-here", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 200
    assert "The current password is not correct." in response.get_data(as_text=True)
    assert reload(user).check_password(factories.PASSWORD)


def test_change_password_keeps_this_session_and_ends_the_others(app, client, browser, auth):
    user = factories.UserFactory(email="ann@example.com")
    other = app.test_client()
    AuthActions(other).login("ann@example.com")
    auth.login("ann@example.com")
    response = browser.submit(
        "/users/me/password/",
        {
            "current_password": factories.PASSWORD,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert reload(user).check_password(NEW_PASSWORD)
    assert client.get("/users/me/").status_code == 200
    assert other.get("/users/me/").status_code == 302


def test_change_password_refuses_a_weak_one(client, browser, auth):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    response = browser.submit(
        "/users/me/password/",
        {
            "current_password": factories.PASSWORD,
            "password": "ann@example.com",
            "confirm": "ann@example.com",
        },
    )
    assert response.status_code == 200
    assert reload(user).check_password(factories.PASSWORD)


def test_logout_everywhere_ends_other_sessions_and_remember_cookies(app, client, browser, auth):
    factories.UserFactory(email="ann@example.com")
    other = app.test_client()
    AuthActions(other).login("ann@example.com", remember="y")
    auth.login("ann@example.com")
    response = browser.submit("/users/me/logout-everywhere/", token_from="/users/me/")
    assert response.status_code == 302
    assert client.get("/users/me/").status_code == 200
    with other.session_transaction() as session:
        session.clear()  # only the remember cookie is left to try
    assert other.get("/users/me/").status_code == 302


def test_logout_everywhere_is_post_only(client, auth):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    assert client.get("/users/me/logout-everywhere/").status_code == 405
    assert reload(user).session_version == 1


def test_disabled_account_is_signed_out_at_its_next_request(client, auth):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com", remember="y")
    assert client.get("/users/me/").status_code == 200
    account = reload(user)
    account.status = USER.INACTIVE
    db.session.commit()
    response = client.get("/users/me/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/login/?next=/users/me/"
