"""Sign-in with an OpenID Connect provider, against a real provider on loopback.

The app side goes through the Flask test client; the person's side at the
provider (its login and consent forms) goes through ``requests``, so every
code, token and ID token is the real provider's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from config import ConfigurationError
from config import startup_problems
from config.settings import parse_oidc_providers
from portal import operations
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.users import constants as USER
from portal.users import mfa
from portal.users import oidc
from portal.users.models import ProviderIdentity
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.conftest import csrf_token
from tests.oidc_server import Provider
from tests.oidc_server import running_provider

BASE_URL = "http://127.0.0.1:5000"
CALLBACK = "/users/providers/test/callback/"
LOGIN = "/users/providers/test/login/"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider([BASE_URL + CALLBACK]) as running:
        yield running


@pytest.fixture
def oidc_app(app: Flask, provider: Provider) -> Flask:
    """The app with the loopback provider configured as "Test ID"."""
    app.config["PORTAL_BASE_URL"] = BASE_URL
    app.config["OIDC_PROVIDERS"] = [provider.settings()]
    return app


class Flows:
    """Drive a whole round trip: the app's redirect, the provider's forms, the callback."""

    def __init__(self, client: FlaskClient, provider: Provider) -> None:
        self.client = client
        self.provider = provider

    def to_provider(self, path: str = LOGIN) -> str:
        response = self.client.get(path)
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        assert location.startswith(self.provider.issuer + "/auth?"), location
        return location

    def at_provider(self, login: str, path: str = LOGIN, **kwargs: Any) -> str:
        """Return the callback URL (path and query) the provider sends the browser to."""
        url = self.provider.authorize(
            self.to_provider(path), login, back_to=BASE_URL + CALLBACK, **kwargs
        )
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}"

    def sign_in(self, login: str, path: str = LOGIN, **kwargs: Any) -> Any:
        return self.client.get(self.at_provider(login, path, **kwargs))


@pytest.fixture
def flows(oidc_app: Flask, client: FlaskClient, provider: Provider) -> Flows:
    return Flows(client, provider)


def signed_in_as(client: FlaskClient) -> str | None:
    """Return the name the account page greets, or None when nobody is signed in."""
    response = client.get("/users/me/")
    if response.status_code != 200:
        return None
    page = response.get_data(as_text=True)
    return page.split("<h1>", 1)[1].split("</h1>", 1)[0]


def flashed(response: Any, client: FlaskClient) -> str:
    """Follow a redirect and return the page it lands on."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


def count(model: Any) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ).scalars()
    )


def identities() -> list[ProviderIdentity]:
    return list(db.session.execute(select(ProviderIdentity)).scalars())


# -- sign-in: new accounts, linked accounts, refusals ----------------------------------


def test_login_page_offers_each_provider_and_keeps_a_safe_next(
    oidc_app: Flask, client: FlaskClient, provider: Provider
) -> None:
    oidc_app.config["OIDC_PROVIDERS"] = [
        provider.settings(),
        provider.settings(name="other", label="Other ID"),
    ]
    page = client.get("/users/login/?next=/posts/").get_data(as_text=True)
    assert 'href="/users/providers/test/login/?next=/posts/">Sign in with Test ID</a>' in page
    assert 'href="/users/providers/other/login/?next=/posts/">Sign in with Other ID</a>' in page


def test_login_page_without_providers_shows_no_buttons(app: Flask, client: FlaskClient) -> None:
    app.config["OIDC_PROVIDERS"] = []
    assert "Sign in with" not in client.get("/users/login/").get_data(as_text=True)


def test_a_new_person_with_a_verified_email_gets_a_new_active_account(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    login = provider.add_account(email="Newcomer@Example.com", name="Nia Newcomer")

    response = flows.sign_in(login, path=LOGIN + "?next=/posts/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/posts/"
    user = db.session.execute(select(User).where(User.email == "Newcomer@example.com")).scalar_one()
    assert (user.name, user.status, user.role) == ("Nia Newcomer", USER.ACTIVE, USER.USER)
    assert user.confirmed_at is not None
    assert not oidc.has_usable_password(user)
    assert not user.check_password("")
    [identity] = identities()
    assert (identity.user_id, identity.provider) == (user.id, "test")
    assert (identity.issuer, identity.subject) == (provider.issuer, login)
    assert "Your account is ready: you signed up with Test ID." in flashed(response, client)
    assert signed_in_as(client) == "Nia Newcomer"
    [event] = events(AUDIT.ACTION_PROVIDER_LINKED)
    assert event.object_id == str(user.id)
    assert event.changes["subject"] == [None, login]

    # The next sign-in opens the same account, and makes nothing new.
    client.post("/users/logout/", data={"csrf_token": csrf_token(client, "/users/me/")})
    assert signed_in_as(client) is None
    flows.sign_in(login)
    assert signed_in_as(client) == "Nia Newcomer"
    assert count(User) == 1
    assert len(identities()) == 1


def test_registration_can_be_turned_off(
    flows: Flows, provider: Provider, client: FlaskClient, oidc_app: Flask
) -> None:
    oidc_app.config["OIDC_REGISTRATION"] = False
    login = provider.add_account(email="stranger@example.com")

    page = flashed(flows.sign_in(login), client)

    assert "No account here uses the email address Test ID gave." in page
    assert count(User) == 0
    assert signed_in_as(client) is None


def test_a_verified_email_links_to_the_confirmed_account_with_that_address(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    owner = factories.UserFactory(name="Olga Owner", email="olga@example.com")
    login = provider.add_account(email="OLGA@example.com", email_verified=True)

    response = flows.sign_in(login)

    assert response.headers["Location"] == "/users/me/"
    assert "Test ID is now linked to your account." in flashed(response, client)
    [identity] = identities()
    assert identity.user_id == owner.id
    assert identity.email == "OLGA@example.com"
    assert signed_in_as(client) == "Olga Owner"
    assert count(User) == 1
    [event] = events(AUDIT.ACTION_PROVIDER_LINKED)
    assert "verified email" in event.summary


@pytest.mark.parametrize("verified", [False, "true", 1, None])
def test_an_unverified_email_never_signs_in_to_or_links_an_existing_account(
    flows: Flows, provider: Provider, client: FlaskClient, verified: Any
) -> None:
    factories.UserFactory(name="Victor Victim", email="victor@example.com")
    login = provider.add_account(email="victor@example.com", email_verified=verified)

    page = flashed(flows.sign_in(login), client)

    assert "Test ID has not verified the email address of that account" in page
    assert identities() == []
    assert events(AUDIT.ACTION_PROVIDER_LINKED) == []
    assert signed_in_as(client) is None


def test_an_unverified_email_matching_no_account_makes_none(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    login = provider.add_account(email="fresh@example.com", email_verified=False)

    page = flashed(flows.sign_in(login), client)

    assert "has not verified the email address" in page
    assert count(User) == 0
    assert identities() == []


def test_no_email_at_all_is_refused(flows: Flows, provider: Provider, client: FlaskClient) -> None:
    login = provider.add_account(email=None)

    page = flashed(flows.sign_in(login), client)

    assert "Test ID did not share an email address" in page
    assert count(User) == 0


def test_a_verified_email_of_an_unconfirmed_account_does_not_link(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    # Someone registered this address with their own password and never confirmed it.
    factories.NewUserFactory(email="squatted@example.com")
    login = provider.add_account(email="squatted@example.com")

    page = flashed(flows.sign_in(login), client)

    assert "has not confirmed it yet" in page
    assert identities() == []
    assert signed_in_as(client) is None


def test_a_disabled_account_is_refused_by_email_and_by_identity(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    factories.InactiveUserFactory(email="gone@example.com")
    login = provider.add_account(email="gone@example.com")
    page = flashed(flows.sign_in(login), client)
    assert "This account is disabled." in page
    assert identities() == []

    linked = factories.InactiveUserFactory(email="linked-gone@example.com")
    login = provider.add_account(email="somewhere@example.com")
    db.session.add(
        ProviderIdentity(user=linked, provider="test", issuer=provider.issuer, subject=login)
    )
    db.session.commit()
    page = flashed(flows.sign_in(login), client)
    assert "This account is disabled." in page
    assert signed_in_as(client) is None


def test_an_unsafe_next_is_ignored(flows: Flows, provider: Provider) -> None:
    login = provider.add_account(email="careful@example.com")

    response = flows.sign_in(login, path=LOGIN + "?next=//evil.example/")

    assert response.headers["Location"] == "/users/me/"


def test_an_unknown_provider_is_refused(oidc_app: Flask, client: FlaskClient) -> None:
    response = client.get("/users/providers/nobody/login/")

    assert response.headers["Location"] == "/users/login/"
    assert "There is no such sign-in provider." in flashed(response, client)


def test_an_unreachable_provider_gives_a_clear_message(
    oidc_app: Flask, client: FlaskClient, unused_port: int
) -> None:
    oidc_app.config["OIDC_PROVIDERS"] = [
        {
            "name": "test",
            "label": "Test ID",
            "issuer": f"http://127.0.0.1:{unused_port}",
            "client_id": "x",
            "client_secret": "y",
        }
    ]

    response = client.get(LOGIN)

    assert response.headers["Location"] == "/users/login/"
    assert "Test ID cannot be reached right now." in flashed(response, client)


def test_a_discovery_document_for_another_issuer_is_refused(
    oidc_app: Flask, client: FlaskClient, provider: Provider
) -> None:
    settings = provider.settings()
    settings["server_metadata_url"] = provider.issuer + "/.well-known/openid-configuration"
    settings["issuer"] = "https://impostor.example"
    oidc_app.config["OIDC_PROVIDERS"] = [settings]

    response = client.get(LOGIN)

    assert response.headers["Location"] == "/users/login/"
    assert "cannot be reached" in flashed(response, client)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- errors from the round trip change nothing ----------------------------------------


def _with_query(callback: str, **changes: str | None) -> str:
    path, _, query = callback.partition("?")
    params = {key: values[0] for key, values in parse_qs(query).items()}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return f"{path}?{urlencode(params)}"


def test_a_tampered_state_is_refused(flows: Flows, provider: Provider, client: FlaskClient) -> None:
    factories.UserFactory(email="target@example.com")
    login = provider.add_account(email="target@example.com")
    callback = flows.at_provider(login)

    response = client.get(_with_query(callback, state="forged-state"))

    assert response.headers["Location"] == "/users/login/"
    assert "was not started in this browser" in flashed(response, client)
    assert identities() == []
    assert signed_in_as(client) is None
    # The flow is spent: the genuine answer cannot be replayed after it either.
    assert "was not started" in flashed(client.get(callback), client)
    assert identities() == []


def test_a_callback_this_browser_did_not_start_is_refused(
    flows: Flows, provider: Provider, client: FlaskClient, app: Flask
) -> None:
    login = provider.add_account(email="csrf@example.com")
    callback = flows.at_provider(login)
    # Another browser (the victim's) is handed the attacker's callback URL.
    other = app.test_client()

    response = other.get(callback)

    assert response.headers["Location"] == "/users/login/"
    assert count(User) == 0
    assert signed_in_as(other) is None


def test_a_cancelled_sign_in_says_so(flows: Flows, provider: Provider, client: FlaskClient) -> None:
    login = provider.add_account(email="shy@example.com")

    callback = flows.at_provider(login, cancel=True)
    assert parse_qs(urlsplit(callback).query)["error"] == ["access_denied"]
    page = flashed(client.get(callback), client)

    assert "Test ID did not sign you in (it was cancelled or refused)." in page
    assert count(User) == 0


def test_a_provider_error_code_is_shown_cleaned(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    login = provider.add_account(email="odd@example.com")
    callback = flows.at_provider(login)

    response = client.get(_with_query(callback, code=None, error="server_error<script>"))

    assert "Test ID could not sign you in (server_errorscript)." in flashed(response, client)
    assert count(User) == 0


def test_a_wrong_nonce_is_refused(
    flows: Flows, provider: Provider, client: FlaskClient, oidc_app: Flask
) -> None:
    login = provider.add_account(email="nonce@example.com")
    callback = flows.at_provider(login)
    with client.session_transaction() as session:
        [key] = [key for key in session if key.startswith("_state_test_")]
        data = session[key]
        data["data"]["nonce"] = "not-the-nonce-that-was-sent"
        session[key] = data

    page = flashed(client.get(callback), client)

    assert "Test ID did not confirm who you are" in page
    assert count(User) == 0
    assert signed_in_as(client) is None


def test_a_failing_token_endpoint_is_refused(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    login = provider.add_account(email="code@example.com")
    callback = flows.at_provider(login)

    page = flashed(client.get(_with_query(callback, code="not-a-code-the-provider-issued")), client)

    assert "Test ID did not confirm who you are" in page
    assert count(User) == 0
    assert signed_in_as(client) is None


def test_an_issuer_mix_up_is_refused(flows: Flows, provider: Provider, client: FlaskClient) -> None:
    login = provider.add_account(email="mixup@example.com")
    callback = flows.at_provider(login)

    page = flashed(client.get(_with_query(callback, iss="https://other.example")), client)

    assert "did not confirm who you are" in page
    assert count(User) == 0


def test_an_expired_flow_is_refused(
    flows: Flows, provider: Provider, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = provider.add_account(email="slow@example.com")
    callback = flows.at_provider(login)
    monkeypatch.setattr(oidc, "FLOW_MAX_AGE", -1)

    page = flashed(client.get(callback), client)

    assert "it expired or was not started" in page
    assert count(User) == 0


def test_refused_callbacks_count_toward_the_address_limit_and_good_ones_do_not(
    flows: Flows, provider: Provider, client: FlaskClient, oidc_app: Flask
) -> None:
    oidc_app.config["LOGIN_LIMIT_PER_ADDRESS"] = "1 per minute"
    login = provider.add_account(email="often@example.com")
    for _ in range(2):
        assert flows.sign_in(login).headers["Location"] == "/users/me/"
        client.post("/users/logout/", data={"csrf_token": csrf_token(client, "/users/me/")})

    assert client.get(CALLBACK + "?state=guess&code=guess").status_code == 302
    assert client.get(CALLBACK + "?state=guess&code=guess").status_code == 429


def test_an_enrolled_second_factor_is_still_asked_for(
    flows: Flows, provider: Provider, client: FlaskClient, browser: Browser
) -> None:
    user = factories.UserFactory(name="Mia Factor", email="mia@example.com")
    secret = mfa.begin_enrolment(user, factories.PASSWORD).secret
    recovery = mfa.confirm_enrolment(user, pyotp.TOTP(secret).now())
    login = provider.add_account(email="mia@example.com")

    response = flows.sign_in(login, path=LOGIN + "?next=/posts/")

    # Linked by the verified address, but not signed in until the code.
    assert response.headers["Location"] == "/users/login/code/"
    assert signed_in_as(client) is None
    [identity] = identities()
    assert identity.user_id == user.id
    done = browser.submit("/users/login/code/", {"code": recovery[0]})
    assert done.headers["Location"] == "/posts/"
    assert signed_in_as(client) == "Mia Factor"


# -- linking from the account page ---------------------------------------------------


def test_linking_needs_the_password_then_the_provider(
    flows: Flows, provider: Provider, client: FlaskClient, auth: AuthActions, browser: Browser
) -> None:
    user = factories.UserFactory(name="Lena Linker", email="lena@example.com")
    auth.login(user.email)
    login = provider.add_account(email="lena.elsewhere@example.com", email_verified=False)
    page = client.get("/users/me/providers/").get_data(as_text=True)
    assert 'href="/users/me/providers/test/link/">Link Test ID</a>' in page

    # Without the password, the round trip does not start.
    response = client.get("/users/me/providers/test/start/")
    assert response.headers["Location"] == "/users/me/providers/"
    assert "Please confirm your password to link Test ID." in flashed(response, client)

    wrong = browser.submit("/users/me/providers/test/link/", {"password": "not-my-password"})
    assert wrong.status_code == 200
    assert "The password is not correct." in wrong.get_data(as_text=True)
    assert client.get("/users/me/providers/test/start/").headers["Location"] == (
        "/users/me/providers/"
    )

    right = browser.submit("/users/me/providers/test/link/", {"password": factories.PASSWORD})
    assert right.headers["Location"] == "/users/me/providers/test/link/"
    assert "Continue to Test ID" in client.get(right.headers["Location"]).get_data(as_text=True)
    response = flows.sign_in(login, path="/users/me/providers/test/start/")

    # Linked, though the provider never verified that other address: the
    # password and the provider sign-in both came from this person.
    assert response.headers["Location"] == "/users/me/providers/"
    assert "Test ID is now linked to your account." in flashed(response, client)
    [identity] = identities()
    assert (identity.user_id, identity.subject) == (user.id, login)
    [event] = events(AUDIT.ACTION_PROVIDER_LINKED)
    assert event.actor_id == user.id
    assert "password confirmed" in event.summary
    # The confirmation was used up.
    assert client.get("/users/me/providers/test/start/").headers["Location"] == (
        "/users/me/providers/"
    )

    # Now the provider signs in to this account.
    auth.logout()
    flows.sign_in(login)
    assert signed_in_as(client) == "Lena Linker"


def test_an_identity_linked_elsewhere_is_not_moved(
    flows: Flows, provider: Provider, client: FlaskClient, auth: AuthActions, browser: Browser
) -> None:
    holder = factories.UserFactory(email="holder@example.com")
    login = provider.add_account(email="holder@example.com")
    db.session.add(
        ProviderIdentity(user=holder, provider="test", issuer=provider.issuer, subject=login)
    )
    db.session.commit()
    user = factories.UserFactory(email="grabber@example.com")
    auth.login(user.email)
    browser.submit("/users/me/providers/test/link/", {"password": factories.PASSWORD})

    response = flows.sign_in(login, path="/users/me/providers/test/start/")

    assert "already linked to another account here" in flashed(response, client)
    [identity] = identities()
    assert identity.user_id == holder.id


def test_a_link_answer_for_another_account_is_refused(
    flows: Flows, provider: Provider, client: FlaskClient, auth: AuthActions, browser: Browser
) -> None:
    first = factories.UserFactory(email="first@example.com")
    second = factories.UserFactory(email="second@example.com")
    auth.login(first.email)
    browser.submit("/users/me/providers/test/link/", {"password": factories.PASSWORD})
    callback = flows.at_provider(
        provider.add_account(email="x@example.com"), path="/users/me/providers/test/start/"
    )
    # Another account signs in in this browser before the answer comes back.
    with client.session_transaction() as session:
        pending = {key: session[key] for key in session if key == oidc.FLOW_KEY or "_state_" in key}
    auth.logout()
    auth.login(second.email)
    with client.session_transaction() as session:
        session.update(pending)

    page = flashed(client.get(callback), client)

    assert "That link with Test ID was started by another account." in page
    assert identities() == []

    # Signed out meanwhile, the answer is refused too.
    auth.logout()
    with client.session_transaction() as session:
        session.update(pending)
    assert "Sign in again to link Test ID." in flashed(client.get(callback), client)
    assert identities() == []


def test_an_unconfirmed_account_cannot_link_a_provider(
    flows: Flows, provider: Provider, client: FlaskClient, auth: AuthActions, browser: Browser
) -> None:
    # Someone registered another person's address and never confirmed it. An
    # identity of theirs linked now would still open the account after the
    # address's owner takes it back with a reset link.
    squatter = factories.NewUserFactory(email="owner@example.com")
    auth.login(squatter.email)
    login = provider.add_account(email="squatter@example.com")

    response = browser.submit("/users/me/providers/test/link/", {"password": factories.PASSWORD})

    assert response.status_code == 200
    assert "Confirm your email address first" in response.get_data(as_text=True)
    assert "Please confirm your password" in flashed(
        client.get("/users/me/providers/test/start/"), client
    )
    # Even with a password confirmation in hand, the link itself is refused.
    with client.session_transaction() as session:
        session[oidc.GRANT_KEY] = {"provider": "test", "user_id": squatter.id, "at": time.time()}
    page = flashed(flows.sign_in(login, path="/users/me/providers/test/start/"), client)
    assert "Confirm your email address first" in page
    assert identities() == []


def test_an_account_without_a_password_cannot_link_by_password(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    flows.sign_in(provider.add_account(email="nopass@example.com"))
    page = client.get("/users/me/providers/test/link/").get_data(as_text=True)
    assert "Your account has no password yet." in page


# -- unlinking -------------------------------------------------------------------------


def test_unlink_removes_the_identity_and_records_it(
    flows: Flows, provider: Provider, client: FlaskClient, auth: AuthActions, browser: Browser
) -> None:
    user = factories.UserFactory(email="ursula@example.com")
    login = provider.add_account(email="ursula@example.com")
    flows.sign_in(login)
    assert [identity.user_id for identity in identities()] == [user.id]

    response = browser.submit("/users/me/providers/test/unlink/", token_from="/users/me/providers/")

    assert response.headers["Location"] == "/users/me/providers/"
    assert "Test ID is no longer linked to your account." in flashed(response, client)
    assert identities() == []
    [event] = events(AUDIT.ACTION_PROVIDER_UNLINKED)
    assert (event.object_id, event.actor_id) == (str(user.id), user.id)
    assert event.changes["subject"] == [login, None]


def test_unlink_without_a_csrf_token_changes_nothing(
    flows: Flows, provider: Provider, client: FlaskClient
) -> None:
    factories.UserFactory(email="forged@example.com")
    flows.sign_in(provider.add_account(email="forged@example.com"))

    response = client.post("/users/me/providers/test/unlink/")

    assert response.status_code == 400
    assert len(identities()) == 1


def test_the_last_way_to_sign_in_cannot_be_unlinked(
    flows: Flows, provider: Provider, client: FlaskClient, browser: Browser
) -> None:
    flows.sign_in(provider.add_account(email="only@example.com"))

    response = browser.submit("/users/me/providers/test/unlink/", token_from="/users/me/providers/")

    assert "Test ID is the only way to sign in to your account" in flashed(response, client)
    assert len(identities()) == 1
    assert events(AUDIT.ACTION_PROVIDER_UNLINKED) == []


def test_unlinking_a_provider_that_is_not_linked_is_refused(
    oidc_app: Flask, client: FlaskClient, auth: AuthActions, browser: Browser
) -> None:
    user = factories.UserFactory()
    auth.login(user.email)

    response = browser.submit("/users/me/providers/test/unlink/", token_from="/users/me/providers/")

    assert "Your account is not linked to Test ID." in flashed(response, client)


# -- who may see the provider pages ----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/users/me/providers/",
        "/users/me/providers/test/link/",
        "/users/me/providers/test/start/",
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(
    oidc_app: Flask, client: FlaskClient, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/?next=")


def test_anonymous_unlink_is_sent_to_sign_in(oidc_app: Flask, client: FlaskClient) -> None:
    response = client.post(
        "/users/me/providers/test/unlink/", data={"csrf_token": csrf_token(client, "/users/login/")}
    )

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")


@pytest.mark.parametrize(
    "make",
    [factories.UserFactory, factories.StaffFactory, factories.AdminFactory],
    ids=["user", "staff", "admin"],
)
def test_every_role_sees_only_its_own_providers(
    oidc_app: Flask, client: FlaskClient, auth: AuthActions, provider: Provider, make: Any
) -> None:
    other = factories.UserFactory()
    db.session.add(
        ProviderIdentity(
            user=other, provider="test", issuer=provider.issuer, subject="s", email="o@x.org"
        )
    )
    db.session.commit()
    auth.login(make().email)

    response = client.get("/users/me/providers/")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "Link Test ID" in page
    assert "o@x.org" not in page


def test_the_account_page_links_to_the_providers(
    oidc_app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    auth.login(factories.UserFactory().email)

    page = client.get("/users/me/").get_data(as_text=True)

    assert 'href="/users/me/providers/">Sign-in providers</a>' in page


# -- deleting an account takes its identities ----------------------------------------


def test_deleting_an_account_removes_its_identities(app: Flask) -> None:
    admin = factories.AdminFactory()
    user = factories.UserFactory()
    kept = factories.UserFactory()
    db.session.add(ProviderIdentity(user=user, provider="test", issuer="i", subject="gone"))
    db.session.add(ProviderIdentity(user=kept, provider="test", issuer="i", subject="kept"))
    db.session.commit()

    operations.delete_account(user, actor=admin, keep_content=True)

    assert [identity.subject for identity in identities()] == ["kept"]


# -- the setting ------------------------------------------------------------------------


def test_providers_are_read_from_json_with_defaults() -> None:
    [entry] = parse_oidc_providers(
        '[{"name": "acme-id", "issuer": "https://id.acme.example/", '
        '"client_id": "c", "client_secret": "s"}]'
    )
    assert entry == {
        "name": "acme-id",
        "label": "Acme Id",
        "issuer": "https://id.acme.example/",
        "server_metadata_url": "https://id.acme.example/.well-known/openid-configuration",
        "client_id": "c",
        "client_secret": "s",
        "scopes": ["openid", "email", "profile"],
    }
    by_name = parse_oidc_providers(
        {
            "corp": {
                "server_metadata_url": "https://c.example/d",
                "client_id": "c",
                "client_secret": "s",
                "scopes": "openid email",
            }
        }
    )
    assert by_name[0]["name"] == "corp"
    assert by_name[0]["issuer"] is None
    assert by_name[0]["scopes"] == ["openid", "email"]
    assert parse_oidc_providers(None) == parse_oidc_providers("") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "OIDC_PROVIDERS is not valid JSON"),
        ('"a string"', "must be a JSON list"),
        ("[1]", "provider 1 must be an object"),
        ('[{"name": "x", "client_id": "c", "client_secret": "s"}]', "set issuer or"),
        ('[{"name": "x", "issuer": "https://i", "client_secret": "s"}]', "client_id is required"),
        (
            '[{"name": "Bad Name", "issuer": "https://i", "client_id": "c", "client_secret": "s"}]',
            "lowercase letters",
        ),
        (
            '[{"name": "x", "issuer": "https://i", "client_id": "c", "client_secret": "s", '
            '"scopes": ["email"]}]',
            "must include 'openid'",
        ),
        (
            '[{"name": "x", "issuer": "https://i", "client_id": "c", "client_secret": "s", '
            '"clientsecret": "s"}]',
            "unknown keys clientsecret",
        ),
        (
            '[{"name": "x", "issuer": "https://i", "client_id": "c", "client_secret": "s"}, '
            '{"name": "x", "issuer": "https://j", "client_id": "c", "client_secret": "s"}]',
            "names x more than once",
        ),
    ],
)
def test_a_bad_provider_setting_is_refused_with_a_reason(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="OIDC_PROVIDERS") as error:
        parse_oidc_providers(value)
    assert message in str(error.value)


def test_the_setting_comes_from_the_environment(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OIDC_PROVIDERS",
        '[{"name": "env", "issuer": "https://e.example", "client_id": "c", "client_secret": "s"}]',
    )
    built = make_app()
    assert [entry["name"] for entry in built.config["OIDC_PROVIDERS"]] == ["env"]

    monkeypatch.setenv("OIDC_PROVIDERS", "[{")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        make_app()


def test_production_refuses_a_provider_over_plain_http() -> None:
    config = {
        "OIDC_PROVIDERS": [
            {"name": "plain", "issuer": "http://id.example", "client_id": "c", "client_secret": "s"}
        ]
    }
    problems = [problem for problem in startup_problems(config) if "OIDC" in problem]
    assert problems == [
        "OIDC_PROVIDERS: plain's issuer is 'http://id.example': a provider is reached over "
        "https:// only.",
        "OIDC_PROVIDERS: plain's server_metadata_url is "
        "'http://id.example/.well-known/openid-configuration': a provider is reached over "
        "https:// only.",
    ]
    secure = {
        "OIDC_PROVIDERS": [
            {"name": "tls", "issuer": "https://id.example", "client_id": "c", "client_secret": "s"}
        ]
    }
    assert [problem for problem in startup_problems(secure) if "OIDC" in problem] == []


def test_unusable_password_hashes_match_nothing_and_are_told_apart(app: Flask) -> None:
    user = factories.UserFactory()
    assert oidc.has_usable_password(user)
    user.password_hash = oidc.unusable_password_hash()
    assert not oidc.has_usable_password(user)
    assert not user.check_password(factories.PASSWORD)
    assert not user.check_password("")
