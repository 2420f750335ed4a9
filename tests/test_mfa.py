"""Two-step sign-in: set-up, sign-in with a TOTP or recovery code, turning off, admin reset.

Codes are made with pyotp from the secret the set-up page shows; the clock
the second-factor module checks codes against is replaced by ``Clock``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy import update

from config.settings import ROLE_NAMES
from config.settings import ConfigurationError
from config.settings import config_for
from portal import metrics
from portal import operations
from portal import security
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.users import constants as USER
from portal.users import mfa
from portal.users.models import RecoveryCode
from portal.users.models import SecondFactor
from portal.users.models import User
from portal.users.models import UserSession
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.conftest import csrf_token

# A moment in the middle of a 30-second step, so the steps either side are whole.
START = 1_800_000_015.0
SECRET_RE = re.compile(r'<code class="secret" id="mfa-secret">([A-Z2-7 ]+)</code>')
RECOVERY_RE = re.compile(r"<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>")
SETTINGS = "/users/me/mfa/"
CODE_PAGE = "/users/login/code/"


class Clock:
    """The time codes are checked against, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(mfa, "now", moved)
    return moved


def code_at(secret: str, moment: float) -> str:
    return pyotp.TOTP(secret).at(moment)


def enrol(client: FlaskClient, clock: Clock) -> tuple[str, list[str]]:
    """Set up an authenticator for the signed-in account; return its secret and recovery codes."""
    browser = Browser(client)
    started = browser.submit(
        f"{SETTINGS}start/", {"password": factories.PASSWORD}, token_from=SETTINGS
    )
    assert started.status_code == 302
    page = client.get(SETTINGS).get_data(as_text=True)
    secret = SECRET_RE.search(page).group(1).replace(" ", "")
    response = browser.submit(
        f"{SETTINGS}enrol/", {"code": code_at(secret, clock.now)}, token_from=SETTINGS
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    codes = RECOVERY_RE.findall(response.get_data(as_text=True))
    assert len(codes) == mfa.RECOVERY_CODE_COUNT
    return secret, codes


def enrolled(app: Flask, clock: Clock, email: str, role: int = USER.USER) -> tuple[User, str, list]:
    """An account with a second factor, set up through the pages on a client then thrown away."""
    user = factories.UserFactory(email=email, role=role)
    client = app.test_client()
    AuthActions(client).login(email)
    secret, codes = enrol(client, clock)
    # Codes of the step the set-up used are spent; tests start at the next one.
    clock.advance(mfa.TIME_STEP_SECONDS)
    return user, secret, codes


def sign_in(client: FlaskClient, email: str, code: str | None, **extra: Any) -> Any:
    """Password first, then (when given) the code; return the last response."""
    response = AuthActions(client).login(email, **extra)
    if code is None:
        return response
    assert response.status_code == 302
    assert response.headers["Location"] == CODE_PAGE
    return Browser(client).submit(CODE_PAGE, {"code": code})


def second_factor_of(user: User) -> SecondFactor | None:
    db.session.expire_all()
    return db.session.get(SecondFactor, user.id)


def events(action: str) -> list[AuditEvent]:
    return list(db.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


# -- set-up ---------------------------------------------------------------------


def test_the_set_up_page_shows_an_inline_svg_qr_code_and_the_grouped_secret(
    app, client, auth, browser, clock
):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    start = client.get(SETTINGS)
    assert start.status_code == 200
    assert "Two-step sign-in is <strong>off</strong>" in start.get_data(as_text=True)
    # GET changes nothing: the secret is made by the button.
    assert db.session.execute(select(SecondFactor)).first() is None

    started = browser.submit(
        f"{SETTINGS}start/", {"password": factories.PASSWORD}, token_from=SETTINGS
    )
    assert started.status_code == 302
    page = client.get(SETTINGS)
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    grouped = SECRET_RE.search(html).group(1)
    assert re.fullmatch(r"([A-Z2-7]{4} )+[A-Z2-7]{4}", grouped)
    qr = html[html.index('<div class="qr-code"') :]
    assert qr.index("<svg") < qr.index("</svg>")
    # Nothing the strict CSP would block: no image request, no data: URI, no style attribute.
    assert "<img" not in html and "data:" not in html and "style=" not in qr[: qr.index("</svg>")]
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "'unsafe-inline'" not in policy


def test_one_good_code_turns_it_on_and_shows_ten_recovery_codes_once(
    app, client, auth, clock, caplog
):
    caplog.set_level(logging.DEBUG)
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    secret, codes = enrol(client, clock)

    row = second_factor_of(user)
    assert row is not None and row.enrolled_at is not None
    # Encrypted at rest, readable with the app's key.
    assert secret not in row.secret and mfa.decrypt_secret(row.secret) == secret
    assert len(set(codes)) == mfa.RECOVERY_CODE_COUNT
    stored = db.session.execute(select(RecoveryCode.code_hash)).scalars().all()
    assert sorted(stored) == sorted(
        mfa.hash_recovery_code(user.id, code.replace("-", "")) for code in codes
    )
    # The set-up's session is replaced by one that passed the second factor.
    rows = db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).scalars()
    assert [item.second_factor for item in rows] == [True]
    # The codes are never shown again.
    assert codes[0] not in client.get(SETTINGS).get_data(as_text=True)
    (event,) = events(AUDIT.ACTION_MFA_ENROLLED)
    assert event.object_id == str(user.id) and event.actor_id == user.id
    trail = f"{event.summary} {event.changes}"
    logged = caplog.text
    for secret_text in (secret, *codes, *(code.replace("-", "") for code in codes)):
        assert secret_text not in trail
        assert secret_text not in logged


def test_a_wrong_set_up_code_changes_nothing(app, client, auth, browser, clock):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    browser.submit(f"{SETTINGS}start/", {"password": factories.PASSWORD}, token_from=SETTINGS)
    secret = SECRET_RE.search(client.get(SETTINGS).get_data(as_text=True)).group(1)
    wrong = code_at(secret.replace(" ", ""), clock.now - 5 * mfa.TIME_STEP_SECONDS)
    for code in (wrong, "12345", "abcdef", "1" * 200):
        response = browser.submit(f"{SETTINGS}enrol/", {"code": code}, token_from=SETTINGS)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert 'class="error"' in html and "recovery codes" not in html.lower()
    assert second_factor_of(user).enrolled_at is None
    assert db.session.execute(select(RecoveryCode)).first() is None
    assert events(AUDIT.ACTION_MFA_ENROLLED) == []


def test_a_set_up_can_be_dropped_and_started_again_with_a_new_secret(
    app, client, auth, browser, clock
):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    browser.submit(f"{SETTINGS}start/", {"password": factories.PASSWORD}, token_from=SETTINGS)
    first = SECRET_RE.search(client.get(SETTINGS).get_data(as_text=True)).group(1)
    browser.submit(f"{SETTINGS}cancel/", token_from=SETTINGS)
    assert second_factor_of(user) is None
    browser.submit(f"{SETTINGS}start/", {"password": factories.PASSWORD}, token_from=SETTINGS)
    second = SECRET_RE.search(client.get(SETTINGS).get_data(as_text=True)).group(1)
    assert first != second


def test_the_set_up_pages_are_for_signed_in_accounts(app, client):
    assert client.get(SETTINGS).headers["Location"].startswith("/users/login/")
    token = csrf_token(client, "/users/login/")
    response = client.post(f"{SETTINGS}start/", data={"csrf_token": token})
    assert response.headers["Location"].startswith("/users/login/")
    assert db.session.execute(select(SecondFactor)).first() is None


def test_starting_again_is_refused_once_it_is_on(app, clock):
    user, _secret, _codes = enrolled(app, clock, "ann@example.com")
    with pytest.raises(mfa.SecondFactorError, match="already has"):
        mfa.begin_enrolment(user, factories.PASSWORD)


def test_setting_it_up_takes_the_password(app, client, auth, browser):
    """A stolen session cookie alone cannot set up a factor of its own."""
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    for typed in ("not-the-password-1", ""):
        response = browser.submit(f"{SETTINGS}start/", {"password": typed}, token_from=SETTINGS)
        assert response.status_code == 200
        assert 'aria-invalid="true"' in response.get_data(as_text=True) or (
            mfa.WRONG_PASSWORD in response.get_data(as_text=True)
        )
        assert second_factor_of(user) is None
    wrong = browser.submit(
        f"{SETTINGS}start/", {"password": "not-the-password-1"}, token_from=SETTINGS
    )
    assert mfa.WRONG_PASSWORD in wrong.get_data(as_text=True)


# -- signing in -------------------------------------------------------------------


def test_an_enrolled_account_signs_in_with_a_code_from_its_app(app, client, clock):
    user, secret, _codes = enrolled(app, clock, "ann@example.com")
    response = sign_in(client, "ann@example.com", None)
    assert response.status_code == 302 and response.headers["Location"] == CODE_PAGE
    page = client.get(CODE_PAGE)
    assert page.status_code == 200 and "six-digit code" in page.get_data(as_text=True)

    done = Browser(client).submit(CODE_PAGE, {"code": code_at(secret, clock.now)})
    assert done.status_code == 302 and done.headers["Location"] == "/users/me/"
    assert client.get("/users/me/").status_code == 200
    rows = db.session.execute(select(UserSession).where(UserSession.user_id == user.id)).scalars()
    # The set-up's browser, and this one.
    assert [item.second_factor for item in rows] == [True, True]


def test_the_code_page_keeps_the_safe_next_address(app, client, clock):
    _user, secret, _codes = enrolled(app, clock, "ann@example.com")
    token = csrf_token(client, "/users/login/?next=/posts/")
    client.post(
        "/users/login/?next=/posts/",
        data={"csrf_token": token, "email": "ann@example.com", "password": factories.PASSWORD},
    )
    done = Browser(client).submit(CODE_PAGE, {"code": code_at(secret, clock.now)})
    assert done.headers["Location"] == "/posts/"


def test_a_sign_in_waiting_for_its_code_reaches_no_page(app, client, clock):
    enrolled(app, clock, "boss@example.com", role=USER.ADMIN)
    sign_in(client, "boss@example.com", None)
    for path in ("/users/me/", SETTINGS, "/users/me/sessions/", "/admin/", "/admin/user/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/users/login/"), path
    assert client.get("/users/login/").status_code == 200


def test_a_code_is_good_once_and_a_replay_is_refused(app, clock):
    _user, secret, _codes = enrolled(app, clock, "ann@example.com")
    code = code_at(secret, clock.now)
    first = app.test_client()
    assert sign_in(first, "ann@example.com", code).status_code == 302

    second = app.test_client()
    replay = sign_in(second, "ann@example.com", code)
    assert replay.status_code == 200
    assert mfa.WRONG_CODE in replay.get_data(as_text=True)
    assert second.get("/users/me/").status_code == 302
    # Nor is a code of an earlier step, though still inside the window.
    earlier = Browser(second).submit(
        CODE_PAGE, {"code": code_at(secret, clock.now - mfa.TIME_STEP_SECONDS)}
    )
    assert earlier.status_code == 200
    clock.advance(mfa.TIME_STEP_SECONDS)
    later = Browser(second).submit(CODE_PAGE, {"code": code_at(secret, clock.now)})
    assert later.status_code == 302


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False)],
)
def test_codes_of_the_step_either_side_are_accepted_and_no_further(
    app, client, clock, offset, accepted
):
    _user, secret, _codes = enrolled(app, clock, "ann@example.com")
    clock.advance(5 * mfa.TIME_STEP_SECONDS)
    code = code_at(secret, clock.now + offset * mfa.TIME_STEP_SECONDS)
    response = sign_in(client, "ann@example.com", code)
    assert (response.status_code == 302) is accepted


def test_a_wrong_code_is_refused_and_recorded_without_the_code(app, client, clock):
    user, secret, _codes = enrolled(app, clock, "ann@example.com")
    wrong = code_at(secret, clock.now + 10 * mfa.TIME_STEP_SECONDS)
    failures = metrics.REGISTRY.get_sample_value("portal_sign_in_failures_total") or 0
    response = sign_in(client, "ann@example.com", wrong)
    assert response.status_code == 200
    assert metrics.REGISTRY.get_sample_value("portal_sign_in_failures_total") == failures + 1
    assert mfa.WRONG_CODE in response.get_data(as_text=True)
    assert client.get("/users/me/").status_code == 302
    (event,) = events(AUDIT.ACTION_SIGN_IN_FAILED)
    assert event.object_id == str(user.id) and mfa.WRONG_CODE_REASON in event.summary
    assert wrong not in f"{event.summary} {event.changes}"


def test_a_recovery_code_signs_in_once(app, clock):
    user, _secret, codes = enrolled(app, clock, "ann@example.com")
    # Typed in capitals, without dashes, with a look-alike letter: the same code.
    typed = codes[0].replace("-", "").upper().replace("0", "O")
    first = app.test_client()
    assert sign_in(first, "ann@example.com", typed).status_code == 302
    assert mfa.recovery_codes_left(user) == mfa.RECOVERY_CODE_COUNT - 1

    again = app.test_client()
    assert sign_in(again, "ann@example.com", codes[0]).status_code == 200
    assert sign_in(again, "ann@example.com", codes[1]).status_code == 302


def test_the_last_recovery_codes_bring_a_warning(app, clock):
    user, _secret, codes = enrolled(app, clock, "ann@example.com")
    for code in codes[:8]:
        assert sign_in(app.test_client(), "ann@example.com", code).status_code == 302
    client = app.test_client()
    sign_in(client, "ann@example.com", codes[8])
    assert "You have 1 recovery code left" in client.get("/users/me/").get_data(as_text=True)


def test_the_waiting_sign_in_expires_after_five_minutes(app, client, clock):
    _user, secret, _codes = enrolled(app, clock, "ann@example.com")
    sign_in(client, "ann@example.com", None)
    clock.advance(5 * 60 + 1)
    response = Browser(client).submit(
        CODE_PAGE, {"code": code_at(secret, clock.now)}, token_from="/users/login/"
    )
    assert response.status_code == 302 and response.headers["Location"] == "/users/login/"
    assert "sign-in has expired" in client.get("/users/login/").get_data(as_text=True)
    assert client.get("/users/me/").status_code == 302


def test_a_waiting_sign_in_ends_when_the_account_is_disabled(app, client, clock):
    user, secret, _codes = enrolled(app, clock, "ann@example.com")
    sign_in(client, "ann@example.com", None)
    token = csrf_token(client, CODE_PAGE)
    user.status = USER.INACTIVE
    db.session.commit()
    response = client.post(CODE_PAGE, data={"csrf_token": token, "code": code_at(secret, START)})
    assert response.headers["Location"] == "/users/login/"
    assert client.get("/users/me/").status_code == 302


def test_cancelling_drops_the_waiting_sign_in(app, client, clock):
    enrolled(app, clock, "ann@example.com")
    sign_in(client, "ann@example.com", None)
    Browser(client).submit(f"{CODE_PAGE}cancel/", token_from=CODE_PAGE)
    assert client.get(CODE_PAGE).headers["Location"] == "/users/login/"


def test_code_attempts_are_limited_per_account_with_a_clear_page(make_app, clock):
    app = make_app(LOGIN_LIMIT_PER_ACCOUNT="3 per minute", LOGIN_LIMIT_PER_ADDRESS="100 per minute")
    with app.app_context():
        _user, secret, _codes = enrolled(app, clock, "ann@example.com")
        client = app.test_client()
        sign_in(client, "ann@example.com", None)
        for number in range(3):
            response = Browser(client).submit(CODE_PAGE, {"code": f"00000{number}"})
            assert response.status_code == 200
        blocked = Browser(client).submit(CODE_PAGE, {"code": code_at(secret, clock.now)})
        assert blocked.status_code == 429
        assert "Too many attempts" in blocked.get_data(as_text=True)
        assert client.get("/users/me/").status_code == 302
        # Another browser, from another address, is held back for this account too.
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "10.9.9.9"
        sign_in(other, "ann@example.com", None)
        assert Browser(other).submit(CODE_PAGE, {"code": "123456"}).status_code == 429


def test_code_attempts_are_limited_per_address(make_app, clock):
    app = make_app(LOGIN_LIMIT_PER_ACCOUNT="100 per minute", LOGIN_LIMIT_PER_ADDRESS="2 per minute")
    with app.app_context():
        enrolled(app, clock, "ann@example.com")
        _bob, bob_secret, _codes = enrolled(app, clock, "bob@example.com")
        client = app.test_client()
        sign_in(client, "ann@example.com", None)
        for _ in range(2):
            assert Browser(client).submit(CODE_PAGE, {"code": "000000"}).status_code == 200
        sign_in(client, "bob@example.com", None)
        blocked = Browser(client).submit(CODE_PAGE, {"code": code_at(bob_secret, clock.now)})
        assert blocked.status_code == 429


def test_a_secret_no_key_reads_is_said_plainly_and_a_recovery_code_still_works(app, clock):
    _user, secret, codes = enrolled(app, clock, "ann@example.com")
    old_key = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-secret-key-0123456789abcdef0123456789"
    client = app.test_client()
    refused = sign_in(client, "ann@example.com", code_at(secret, clock.now))
    assert refused.status_code == 200
    assert "cannot be read" in refused.get_data(as_text=True)
    assert Browser(client).submit(CODE_PAGE, {"code": codes[0]}).status_code == 302
    # With the old key among the fallbacks, the secret reads again.
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    assert sign_in(
        app.test_client(), "ann@example.com", code_at(secret, clock.now)
    ).status_code == (302)


def test_an_account_without_a_second_factor_signs_in_with_its_password(app, client):
    factories.UserFactory(email="ann@example.com")
    response = sign_in(client, "ann@example.com", None)
    assert response.headers["Location"] == "/users/me/"
    assert "Welcome back" in client.get("/users/me/").get_data(as_text=True)
    assert client.get(CODE_PAGE).headers["Location"] == "/users/login/"


# -- managing it --------------------------------------------------------------------


def signed_in_with_code(app: Flask, clock: Clock, email: str, role: int = USER.USER) -> Any:
    user, secret, codes = enrolled(app, clock, email, role)
    client = app.test_client()
    assert sign_in(client, email, code_at(secret, clock.now)).status_code == 302
    clock.advance(mfa.TIME_STEP_SECONDS)
    return user, secret, codes, client


def test_turning_it_off_takes_the_password_and_a_code(app, clock):
    user, secret, _codes, client = signed_in_with_code(app, clock, "ann@example.com")
    browser = Browser(client)
    disable = f"{SETTINGS}disable/"
    good = code_at(secret, clock.now)
    for data in (
        {"password": "not-the-password-1", "code": good},
        {"password": factories.PASSWORD, "code": "000000"},
        {"password": factories.PASSWORD, "code": ""},
        {"password": "", "code": good},
    ):
        assert browser.submit(disable, data, token_from=SETTINGS).status_code == 302
        assert second_factor_of(user).enrolled_at is not None, data
    assert events(AUDIT.ACTION_MFA_DISABLED) == []

    clock.advance(mfa.TIME_STEP_SECONDS)
    done = browser.submit(
        disable,
        {"password": factories.PASSWORD, "code": code_at(secret, clock.now)},
        token_from=SETTINGS,
    )
    assert done.headers["Location"] == "/users/me/"
    assert second_factor_of(user) is None
    assert db.session.execute(select(RecoveryCode)).first() is None
    (event,) = events(AUDIT.ACTION_MFA_DISABLED)
    assert event.actor_id == user.id
    # The password alone signs in now.
    assert sign_in(app.test_client(), "ann@example.com", None).headers["Location"] == "/users/me/"


def test_new_recovery_codes_take_a_code_and_replace_the_old_ones(app, clock):
    user, secret, old_codes, client = signed_in_with_code(app, clock, "ann@example.com")
    browser = Browser(client)
    path = f"{SETTINGS}recovery-codes/"
    refused = browser.submit(path, {"code": "000000"}, token_from=SETTINGS)
    assert refused.status_code == 302
    assert mfa.recovery_codes_left(user) == mfa.RECOVERY_CODE_COUNT

    response = browser.submit(path, {"code": code_at(secret, clock.now)}, token_from=SETTINGS)
    assert response.status_code == 200
    new_codes = RECOVERY_RE.findall(response.get_data(as_text=True))
    assert len(new_codes) == mfa.RECOVERY_CODE_COUNT and not set(new_codes) & set(old_codes)
    assert sign_in(app.test_client(), "ann@example.com", old_codes[0]).status_code == 200
    assert sign_in(app.test_client(), "ann@example.com", new_codes[0]).status_code == 302


def test_the_settings_page_says_how_many_recovery_codes_are_left(app, clock):
    _user, _secret, codes, client = signed_in_with_code(app, clock, "ann@example.com")
    sign_in(app.test_client(), "ann@example.com", codes[0])
    page = client.get(SETTINGS).get_data(as_text=True)
    assert "Two-step sign-in is <strong>on</strong>" in page
    assert "9 of 10 recovery codes left" in page
    assert 'id="session-not-verified"' not in page


# -- roles that must have it ------------------------------------------------------------


@pytest.fixture
def required(app: Flask) -> Flask:
    app.config["MFA_REQUIRED_ROLES"] = ("staff", "admin")
    return app


@pytest.mark.parametrize(
    ("role", "expected"),
    [("admin", "enrol"), ("staff", "enrol"), ("user", 403), ("anonymous", "login")],
)
def test_roles_that_need_it_are_sent_to_set_it_up_before_the_back_office(
    required, client, auth, role, expected
):
    if role != "anonymous":
        factory = {
            "admin": factories.AdminFactory,
            "staff": factories.StaffFactory,
            "user": factories.UserFactory,
        }[role]
        factory(email="who@example.com")
        auth.login("who@example.com")
    for path in ("/admin/", "/admin/user/", "/admin/post/"):
        response = client.get(path)
        if expected == "enrol":
            assert response.status_code == 302, path
            assert response.headers["Location"] == SETTINGS
        elif expected == "login":
            assert response.headers["Location"].startswith("/users/login/")
        else:
            assert response.status_code == expected
    if expected == "enrol":
        page = client.get(SETTINGS).get_data(as_text=True)
        assert "Your role needs a second factor" in page
        assert "Your role needs two-step sign-in" in page


@pytest.mark.parametrize("role", [USER.ADMIN, USER.STAFF])
def test_once_set_up_the_back_office_opens(required, clock, role):
    factories.UserFactory(email="who@example.com", role=role)
    client = required.test_client()
    AuthActions(client).login("who@example.com")
    assert client.get("/admin/").status_code == 302
    enrol(client, clock)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/post/").status_code == 200


def test_a_crafted_staff_action_is_refused_until_set_up(required, clock):
    post = factories.PostFactory()
    factories.StaffFactory(email="mod@example.com")
    client = required.test_client()
    AuthActions(client).login("mod@example.com")
    edit = f"/posts/{post.slug}/edit/"
    assert client.get(edit).status_code == 403
    token = csrf_token(client, SETTINGS)
    hidden = client.post(
        f"/posts/{post.slug}/status/", data={"csrf_token": token, "status": "hidden"}
    )
    assert hidden.status_code == 403
    enrol(client, clock)
    assert client.get(edit).status_code == 200


def test_a_session_from_before_the_set_up_ends_with_it(required, clock):
    factories.StaffFactory(email="mod@example.com")
    old = required.test_client()
    AuthActions(old).login("mod@example.com")
    new = required.test_client()
    AuthActions(new).login("mod@example.com")
    enrol(new, clock)
    assert new.get("/admin/").status_code == 200
    assert old.get("/admin/").headers["Location"].startswith("/users/login/")


def test_a_session_that_did_not_pass_the_code_gets_no_staff_powers(required, clock):
    """Should a session outlive the set-up (a row from before it), the gate still holds."""
    user, _secret, _codes, client = signed_in_with_code(
        required, clock, "mod@example.com", USER.STAFF
    )
    assert client.get("/admin/").status_code == 200
    db.session.execute(
        update(UserSession).where(UserSession.user_id == user.id).values(second_factor=False)
    )
    db.session.commit()

    assert client.get("/admin/").headers["Location"] == SETTINGS
    assert 'id="session-not-verified"' in client.get(SETTINGS).get_data(as_text=True)


def test_turning_it_off_closes_the_back_office_again(required, clock):
    _user, secret, _codes, client = signed_in_with_code(
        required, clock, "boss@example.com", USER.ADMIN
    )
    assert client.get("/admin/").status_code == 200
    Browser(client).submit(
        f"{SETTINGS}disable/",
        {"password": factories.PASSWORD, "code": code_at(secret, clock.now)},
        token_from=SETTINGS,
    )
    assert client.get("/admin/").headers["Location"] == SETTINGS


def test_outside_the_accounts_own_request_the_gate_asks_nothing_of_its_sessions(required):
    # Session lifetimes, say, are decided for an account while nobody is signed in yet.
    staff = factories.StaffFactory(email="mod@example.com")
    with required.test_request_context():
        assert security.can(staff, security.VIEW, security.ADMIN_SITE)
    assert security.refusal(None, security.VIEW, security.ADMIN_SITE) is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [("production", ("staff", "admin")), ("development", ()), ("testing", ())],
)
def test_production_requires_it_of_staff_and_admins_by_default(
    monkeypatch, tmp_path, env, expected
):
    monkeypatch.delenv("MFA_REQUIRED_ROLES", raising=False)
    assert config_for(env, tmp_path).MFA_REQUIRED_ROLES == expected


def test_the_required_roles_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MFA_REQUIRED_ROLES", " Admin , staff,user")
    assert config_for("development", tmp_path).MFA_REQUIRED_ROLES == ("admin", "staff", "user")
    monkeypatch.setenv("MFA_REQUIRED_ROLES", "")
    assert config_for("production", tmp_path).MFA_REQUIRED_ROLES == ()
    monkeypatch.setenv("MFA_REQUIRED_ROLES", "staff,boss")
    with pytest.raises(ConfigurationError, match="unknown role.*boss"):
        config_for("production", tmp_path)
    assert set(ROLE_NAMES) == set(USER.ROLE.values())


# -- an admin resets another account's -----------------------------------------------


def reset_form(client: FlaskClient, target: User) -> Any:
    token = csrf_token(client, f"/admin/user/details/?id={target.id}")
    return client.post("/admin/user/mfa/reset/", data={"csrf_token": token, "id": target.id})


def test_an_admin_resets_a_lost_authenticator_and_its_sessions_end(app, client, auth, clock):
    target, secret, _codes, their_client = signed_in_with_code(app, clock, "ann@example.com")
    admin = factories.AdminFactory(email="boss@example.com")
    auth.login("boss@example.com")
    details = client.get(f"/admin/user/details/?id={target.id}").get_data(as_text=True)
    assert "Reset two-step sign-in" in details

    response = reset_form(client, target)
    assert response.status_code == 302
    assert second_factor_of(target) is None
    assert db.session.execute(select(RecoveryCode)).first() is None
    assert their_client.get("/users/me/").status_code == 302
    (event,) = events(AUDIT.ACTION_MFA_RESET)
    assert event.actor_id == admin.id and event.object_id == str(target.id)
    assert secret not in f"{event.summary} {event.changes}"
    assert sign_in(app.test_client(), "ann@example.com", None).headers["Location"] == "/users/me/"


@pytest.mark.parametrize(
    ("role", "expected"), [("staff", 403), ("user", 403), ("anonymous", "login")]
)
def test_only_admins_reset_another_accounts_second_factor(app, client, auth, clock, role, expected):
    target, _secret, _codes = enrolled(app, clock, "ann@example.com")
    if role == "anonymous":
        token = csrf_token(client, "/users/login/")
        response = client.post(
            "/admin/user/mfa/reset/", data={"csrf_token": token, "id": target.id}
        )
        assert response.headers["Location"].startswith("/users/login/")
    else:
        factory = factories.StaffFactory if role == "staff" else factories.UserFactory
        factory(email="who@example.com")
        auth.login("who@example.com")
        token = csrf_token(client, "/users/me/")
        response = client.post(
            "/admin/user/mfa/reset/", data={"csrf_token": token, "id": target.id}
        )
        assert response.status_code == expected
    assert second_factor_of(target).enrolled_at is not None
    assert events(AUDIT.ACTION_MFA_RESET) == []


def test_staff_see_no_reset_button(app, client, auth, clock):
    target, _secret, _codes = enrolled(app, clock, "ann@example.com")
    factories.StaffFactory(email="mod@example.com")
    auth.login("mod@example.com")
    details = client.get(f"/admin/user/details/?id={target.id}").get_data(as_text=True)
    assert 'id="second-factor">On<' in details
    assert "Reset two-step sign-in" not in details


def test_nobody_resets_their_own_this_way(app, clock):
    factories.AdminFactory()
    boss, _secret, _codes, client = signed_in_with_code(app, clock, "boss@example.com", USER.ADMIN)
    details = client.get(f"/admin/user/details/?id={boss.id}").get_data(as_text=True)
    assert "Reset two-step sign-in" not in details
    assert reset_form(client, boss).status_code == 403
    assert second_factor_of(boss).enrolled_at is not None
    assert security.refusal(boss, security.RESET_SECOND_FACTOR, boss).startswith(
        "You cannot reset your own"
    )


def test_a_reset_without_a_csrf_token_is_refused(app, client, auth, clock):
    target, _secret, _codes = enrolled(app, clock, "ann@example.com")
    factories.AdminFactory(email="boss@example.com")
    auth.login("boss@example.com")
    response = client.post("/admin/user/mfa/reset/", data={"id": target.id})
    assert response.status_code == 400
    assert second_factor_of(target).enrolled_at is not None


def test_resetting_an_account_without_one_says_so(app, client, auth):
    target = factories.UserFactory(email="ann@example.com")
    factories.AdminFactory(email="boss@example.com")
    auth.login("boss@example.com")
    response = reset_form(client, target)
    assert response.status_code == 302
    assert mfa.NOT_ENROLLED in client.get(response.headers["Location"]).get_data(as_text=True)
    assert events(AUDIT.ACTION_MFA_RESET) == []


# -- manage.py users reset-mfa ---------------------------------------------------------


def test_the_command_resets_it_and_audits(app, runner, clock):
    target, _secret, _codes, their_client = signed_in_with_code(app, clock, "ann@example.com")
    result = runner.invoke(args=["users", "reset-mfa", "ANN@example.com"])
    assert result.exit_code == 0, result.output
    assert "ann@example.com is reset" in result.output
    assert second_factor_of(target) is None
    assert their_client.get("/users/me/").status_code == 302
    (event,) = events(AUDIT.ACTION_MFA_RESET)
    assert event.source == AUDIT.SOURCE_CLI and event.actor_id is None


def test_the_command_dry_run_says_what_it_would_do_and_changes_nothing(app, runner, clock):
    target, _secret, _codes, their_client = signed_in_with_code(app, clock, "ann@example.com")
    result = runner.invoke(args=["users", "reset-mfa", "ann@example.com", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Would reset the two-step sign-in of ann@example.com" in result.output
    assert second_factor_of(target) is not None
    assert their_client.get("/users/me/").status_code == 200
    assert events(AUDIT.ACTION_MFA_RESET) == []


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("nobody@example.com", "No account uses the address 'nobody@example.com'."),
        ("ann@example.com", mfa.NOT_ENROLLED),
    ],
)
def test_the_command_says_clearly_what_is_wrong(app, runner, email, message):
    factories.UserFactory(email="ann@example.com")
    result = runner.invoke(args=["users", "reset-mfa", email])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert events(AUDIT.ACTION_MFA_RESET) == []


def test_deleting_an_account_takes_its_second_factor_codes_and_sessions(app, clock):
    """SQLite may not cascade, and may give the next account the same id."""
    admin = factories.AdminFactory()
    user, _secret, _codes = enrolled(app, clock, "gone@example.com")
    kept, _secret, _codes = enrolled(app, clock, "kept@example.com")

    operations.delete_account(user, actor=admin, keep_content=False)

    def owners(model: Any) -> set[int]:
        return set(db.session.scalars(select(model.user_id)))

    assert owners(SecondFactor) == {kept.id}
    assert owners(RecoveryCode) == {kept.id}
    assert kept.id in owners(UserSession)
    assert user.id not in owners(UserSession)


def test_setting_it_up_ends_the_other_sessions_and_keeps_this_one(app, client, auth, clock):
    factories.UserFactory(email="ann@example.com")
    elsewhere = app.test_client()
    AuthActions(elsewhere).login("ann@example.com")
    auth.login("ann@example.com")

    enrol(client, clock)

    assert client.get("/users/me/").status_code == 200
    assert elsewhere.get("/users/me/").status_code == 302


def test_turning_it_off_ends_the_other_sessions_and_keeps_this_one(app, client, clock):
    _user, secret, _codes = enrolled(app, clock, "ann@example.com")
    elsewhere = app.test_client()
    sign_in(elsewhere, "ann@example.com", code_at(secret, clock.now))
    clock.advance(mfa.TIME_STEP_SECONDS)
    sign_in(client, "ann@example.com", code_at(secret, clock.now))
    assert elsewhere.get("/users/me/").status_code == 200
    clock.advance(mfa.TIME_STEP_SECONDS)

    response = Browser(client).submit(
        f"{SETTINGS}disable/",
        {"password": factories.PASSWORD, "code": code_at(secret, clock.now)},
        token_from=SETTINGS,
    )

    assert response.status_code == 302, response.get_data(as_text=True)
    assert client.get("/users/me/").status_code == 200
    assert elsewhere.get("/users/me/").status_code == 302
