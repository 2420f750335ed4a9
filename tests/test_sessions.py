"""Server-side sessions: one row per signed-in browser, ended at once, listed and ended by hand."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.users import constants as USER
from portal.users import services
from portal.users import sessions
from portal.users.devices import MAX_USER_AGENT_LENGTH
from portal.users.devices import describe
from portal.users.models import User
from portal.users.models import UserSession
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import csrf_token

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SESSION_COOKIE = "portal_session"
REMEMBER_COOKIE = "portal_remember"


class Clock:
    """The time the sessions module sees, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(sessions, "utcnow", moved)
    return moved


@pytest.fixture
def cached(app: Flask, redis_url: str) -> Any:
    """Session copies in the test Redis, under a prefix of this test's own."""
    prefix = f"test:sessions:{uuid.uuid4().hex}:"
    app.config.update(REDIS_URL=redis_url, SESSION_CACHE_PREFIX=prefix, SESSION_CACHE_SECONDS=30)
    connection = redis.Redis.from_url(redis_url)
    yield connection, prefix
    for key in connection.scan_iter(prefix + "*"):
        connection.delete(key)


def browser(app: Flask, user_agent: str = FIREFOX) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def signed_in(app: Flask, email: str, user_agent: str = FIREFOX, **extra: Any) -> FlaskClient:
    client = browser(app, user_agent)
    response = AuthActions(client).login(email, **extra)
    assert response.status_code == 302, "sign-in failed"
    return client


def rows(user: User) -> list[UserSession]:
    return list(
        db.session.execute(
            select(UserSession)
            .where(UserSession.user_id == user.id)
            .order_by(UserSession.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def session_count() -> int:
    return db.session.execute(select(func.count(UserSession.id))).scalar_one()


def token_of(client: FlaskClient) -> str:
    with client.session_transaction() as state:
        return str(state["_user_id"])


def is_signed_in(client: FlaskClient) -> bool:
    response = client.get("/users/me/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")
    return False


def post(client: FlaskClient, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, "/users/me/"), **data})


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ).scalars()
    )


# -- devices --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (FIREFOX, "Firefox 121 on Windows 10"),
        (CHROME, "Chrome 120 on Linux"),
        ("curl/8.4.0", "curl 8"),
        (None, "Unknown device"),
        ("", "Unknown device"),
        ("   ", "Unknown device"),
        ("no browser at all", "Unknown device"),
    ],
)
def test_a_user_agent_becomes_a_readable_device(user_agent, expected):
    assert describe(user_agent) == expected


def test_only_the_start_of_a_huge_user_agent_is_read():
    padded = FIREFOX + " " + "x" * 100_000
    assert describe(padded) == "Firefox 121 on Windows 10"
    assert describe("x" * (MAX_USER_AGENT_LENGTH + 1) + FIREFOX) == "Unknown device"


# -- signing in ----------------------------------------------------------------


def test_signing_in_records_the_session_and_the_cookie_holds_only_its_token(app):
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    [row] = rows(user)
    token = token_of(client)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_hash
    assert len(token) >= 43
    assert str(user.id) != token and not token.startswith(f"{user.id}:")
    assert row.device == "Firefox 121 on Windows 10"
    assert row.address == "127.0.0.1"
    assert row.second_factor is False
    assert row.created_at == row.last_seen_at
    assert is_signed_in(client)


def test_each_sign_in_is_its_own_session(app):
    user = factories.UserFactory(email="ann@example.com")
    first = signed_in(app, "ann@example.com")
    second = signed_in(app, "ann@example.com", CHROME)
    assert [row.device for row in rows(user)] == [
        "Firefox 121 on Windows 10",
        "Chrome 120 on Linux",
    ]
    assert token_of(first) != token_of(second)


def test_start_session_records_a_second_factor(app):
    from portal.users.views import start_session

    user = factories.UserFactory()
    with app.test_request_context("/users/login/", headers={"User-Agent": CHROME}):
        start_session(user, second_factor=True)
    [row] = rows(user)
    assert (row.second_factor, row.device) == (True, "Chrome 120 on Linux")


def test_failed_sign_ins_and_visitors_create_no_session(app, client, auth):
    factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com", "not-the-password")
    client.get("/")
    client.get("/users/login/")
    assert session_count() == 0


def test_a_forged_or_oversized_token_is_a_visitor(app, client):
    factories.UserFactory(email="ann@example.com")
    for token in ("1:1", "x" * 43, "y" * 5000):
        with client.session_transaction() as state:
            state["_user_id"] = token
        assert not is_signed_in(client)


# -- ending sessions: the replayed cookie is dead at once ---------------------------


def test_a_cookie_saved_before_logout_is_dead_after_it(app):
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    saved = client.get_cookie(SESSION_COOKIE).value
    assert AuthActions(client).logout().status_code == 302
    assert rows(user) == []
    replay = browser(app)
    replay.set_cookie(SESSION_COOKIE, saved)
    response = replay.get("/users/me/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")


def test_a_remember_cookie_saved_before_logout_is_dead_after_it(app):
    factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com", remember="y")
    remembered = client.get_cookie(REMEMBER_COOKIE).value
    # The browser restarted: only the remember-me cookie is left, and it still works.
    restarted = browser(app)
    restarted.set_cookie(REMEMBER_COOKIE, remembered)
    assert is_signed_in(restarted)
    AuthActions(client).logout()
    replay = browser(app)
    replay.set_cookie(REMEMBER_COOKIE, remembered)
    response = replay.get("/users/me/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")
    # The dead remember-me cookie is deleted, not tried on every request.
    assert replay.get_cookie(REMEMBER_COOKIE) is None


def test_changing_the_password_keeps_this_session_and_ends_the_others(app):
    user = factories.UserFactory(email="ann@example.com", name="Ann Lee")
    here = signed_in(app, "ann@example.com")
    elsewhere = signed_in(app, "ann@example.com", CHROME)
    response = post(
        here,
        "/users/me/password/",
        current_password=factories.PASSWORD,
        password="another-strong-password-77",
        confirm="another-strong-password-77",
    )
    assert response.status_code == 302
    assert is_signed_in(here)
    assert not is_signed_in(elsewhere)
    assert [row.device for row in rows(user)] == ["Firefox 121 on Windows 10"]


def test_logout_everywhere_keeps_this_session_and_ends_the_others(app):
    user = factories.UserFactory(email="ann@example.com")
    here = signed_in(app, "ann@example.com")
    elsewhere = signed_in(app, "ann@example.com", CHROME)
    assert post(here, "/users/me/logout-everywhere/").status_code == 302
    assert is_signed_in(here)
    assert not is_signed_in(elsewhere)
    assert len(rows(user)) == 1
    [event] = events(AUDIT.ACTION_SESSION_ENDED)
    assert (event.object_id, event.changes) == (str(user.id), {"sessions": [1, 0]})


def test_a_password_reset_ends_every_session(app):
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    services.set_password(user, "another-strong-password-77")
    db.session.commit()
    assert rows(user) == []
    assert not is_signed_in(client)


def test_disabling_an_account_ends_its_sessions(app):
    factories.AdminFactory(email="boss@example.com")
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    admin = signed_in(app, "boss@example.com")
    response = post(
        admin, "/admin/user/action/deactivate/", ids=str(user.id), reason="spam", confirm="1"
    )
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.status == USER.INACTIVE
    assert rows(user) == []
    assert not is_signed_in(client)


def test_a_role_change_ends_the_accounts_sessions(app):
    boss = factories.AdminFactory()
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    services.change_account(user, actor=boss, role=USER.STAFF)
    assert rows(user) == []
    assert not is_signed_in(client)


def test_a_disabled_account_whose_session_survived_is_refused(app):
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    # Not through the rules (which end its sessions): the row is still there.
    user.status = USER.INACTIVE
    db.session.commit()
    assert not is_signed_in(client)
    assert rows(user) == []


def test_a_session_older_than_its_account_is_refused(app):
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    # What a deleted account's row looks like once SQLite hands its id to a new account.
    user.created_at = datetime.now(UTC) + timedelta(minutes=5)
    db.session.commit()
    assert not is_signed_in(client)
    assert rows(user) == []


# -- lifetimes and last seen ----------------------------------------------------


def test_an_idle_session_is_refused_and_deleted(app, clock):
    app.config["SESSION_IDLE_MINUTES"] = 30
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    clock.advance(minutes=29)
    assert is_signed_in(client)
    clock.advance(minutes=29)  # active 29 minutes ago: still within the idle time
    assert is_signed_in(client)
    clock.advance(minutes=30)
    assert not is_signed_in(client)
    assert rows(user) == []


def test_a_session_ends_at_its_absolute_lifetime_however_active(app, clock):
    app.config.update(SESSION_IDLE_MINUTES=60, SESSION_MAX_HOURS=2)
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    for _ in range(3):
        clock.advance(minutes=39)
        assert is_signed_in(client)
    clock.advance(minutes=3)  # two hours and a minute after sign-in
    assert not is_signed_in(client)
    assert rows(user) == []


@pytest.mark.parametrize("factory", [factories.StaffFactory, factories.AdminFactory])
def test_back_office_accounts_have_the_shorter_lifetimes(app, clock, factory):
    app.config.update(
        SESSION_IDLE_MINUTES=600,
        SESSION_MAX_HOURS=48,
        STAFF_SESSION_IDLE_MINUTES=20,
        STAFF_SESSION_MAX_HOURS=1,
    )
    factory(email="staff@example.com")
    factories.UserFactory(email="ann@example.com")
    staff = signed_in(app, "staff@example.com")
    reader = signed_in(app, "ann@example.com")
    clock.advance(minutes=21)
    assert not is_signed_in(staff)
    assert is_signed_in(reader)
    staff = signed_in(app, "staff@example.com")
    for _ in range(4):
        clock.advance(minutes=15)
        assert is_signed_in(staff) is (_ < 3)


def test_last_seen_is_written_at_most_once_a_minute(app, clock):
    from tests.helpers import statements

    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    started = rows(user)[0].last_seen_at
    writes = []
    for seconds in (10, 20, 29):  # 59 seconds after sign-in in all
        clock.advance(seconds=seconds)
        with statements() as seen:
            assert client.get("/users/me/").status_code == 200
        writes += [s for s in seen if s.lstrip().upper().startswith("UPDATE USERS_SESSION")]
    assert writes == []
    assert rows(user)[0].last_seen_at == started
    clock.advance(seconds=1)
    with statements() as seen:
        client.get("/users/me/")
    assert len([s for s in seen if s.lstrip().upper().startswith("UPDATE USERS_SESSION")]) == 1
    assert rows(user)[0].last_seen_at == clock.now
    clock.advance(seconds=30)
    client.get("/users/me/")
    assert rows(user)[0].last_seen_at == clock.now - timedelta(seconds=30)


def test_purge_deletes_expired_sessions_and_keeps_live_ones(app, clock):
    app.config.update(
        SESSION_IDLE_MINUTES=60,
        SESSION_MAX_HOURS=24,
        STAFF_SESSION_IDLE_MINUTES=10,
        STAFF_SESSION_MAX_HOURS=2,
    )
    reader = factories.UserFactory(email="ann@example.com")
    staff = factories.StaffFactory(email="staff@example.com")
    signed_in(app, "ann@example.com")
    signed_in(app, "staff@example.com")
    clock.advance(minutes=11)
    assert sessions.purge_expired(clock.now) == 1
    assert (len(rows(reader)), len(rows(staff))) == (1, 0)
    assert sessions.purge_expired(clock.now) == 0
    clock.advance(minutes=50)
    assert sessions.purge_expired(clock.now) == 1
    assert session_count() == 0


def test_manage_py_purges_expired_sessions_and_a_dry_run_only_counts(app, runner, clock):
    app.config.update(SESSION_IDLE_MINUTES=60)
    reader = factories.UserFactory(email="ann@example.com")
    factories.UserFactory(email="bob@example.com")
    signed_in(app, "ann@example.com")
    clock.advance(minutes=61)
    signed_in(app, "bob@example.com")

    dry = runner.invoke(args=["users", "purge-sessions", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would delete 1 expired session(s)." in dry.output
    assert session_count() == 2

    real = runner.invoke(args=["users", "purge-sessions"])
    assert real.exit_code == 0, real.output
    assert "Deleted 1 expired session(s)." in real.output
    assert rows(reader) == [] and session_count() == 1


# -- cost per request -----------------------------------------------------------


def test_a_signed_in_page_reads_its_session_and_account_in_one_statement(app):
    from tests.helpers import statements

    factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    with statements() as seen:
        assert client.get("/users/me/").status_code == 200
    session_reads = [s for s in seen if "users_session" in s]
    assert len(session_reads) == 1
    assert "users_user" in session_reads[0]


def test_visitors_pages_run_no_session_statement(app, client):
    from tests.helpers import statements

    with statements() as seen:
        client.get("/users/login/")
        client.get("/")
    assert [s for s in seen if "users_session" in s] == []


# -- Redis ----------------------------------------------------------------------


def test_with_redis_a_warm_session_costs_no_session_statement(app, cached):
    from tests.helpers import statements

    connection, prefix = cached
    factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    key = prefix + hashlib.sha256(token_of(client).encode()).hexdigest()
    client.get("/users/me/")
    assert connection.exists(key)
    assert 0 < connection.ttl(key) <= 30
    assert token_of(client).encode() not in connection.get(key)
    with statements() as seen:
        assert client.get("/users/me/").status_code == 200
    assert [s for s in seen if "users_session" in s] == []


def test_with_redis_logout_deletes_the_copy_and_the_cookie_is_dead(app, cached):
    connection, prefix = cached
    factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    client.get("/users/me/")
    key = prefix + hashlib.sha256(token_of(client).encode()).hexdigest()
    saved = client.get_cookie(SESSION_COOKIE).value
    assert connection.exists(key)
    AuthActions(client).logout()
    assert not connection.exists(key)
    replay = browser(app)
    replay.set_cookie(SESSION_COOKIE, saved)
    assert not is_signed_in(replay)


def test_with_redis_ending_other_sessions_kills_their_copies_at_once(app, cached):
    connection, prefix = cached
    factories.UserFactory(email="ann@example.com")
    here = signed_in(app, "ann@example.com")
    elsewhere = signed_in(app, "ann@example.com", CHROME)
    elsewhere.get("/users/me/")
    key = prefix + hashlib.sha256(token_of(elsewhere).encode()).hexdigest()
    copy = connection.get(key)
    saved = elsewhere.get_cookie(SESSION_COOKIE).value
    assert copy
    post(here, "/users/me/logout-everywhere/")
    assert not connection.exists(key)
    assert not is_signed_in(elsewhere)
    # A copy put back by a request that read the row before it went is not trusted either.
    connection.set(key, copy, ex=30)
    replay = browser(app, CHROME)
    replay.set_cookie(SESSION_COOKIE, saved)
    assert not is_signed_in(replay)
    assert is_signed_in(here)


def test_with_redis_a_copy_of_an_ended_session_is_caught_when_last_seen_is_written(
    app, cached, clock
):
    connection, prefix = cached
    user = factories.UserFactory(email="ann@example.com")
    client = signed_in(app, "ann@example.com")
    client.get("/users/me/")
    # The row goes without the copy being told (another process, Redis briefly away).
    db.session.execute(UserSession.__table__.delete().where(UserSession.user_id == user.id))
    db.session.commit()
    clock.advance(seconds=61)
    assert not is_signed_in(client)


# -- "Where you're signed in" -----------------------------------------------------


def test_the_sessions_page_lists_every_session_and_marks_this_one(app):
    user = factories.UserFactory(email="ann@example.com")
    factories.UserFactory(email="bob@example.com")
    here = signed_in(app, "ann@example.com")
    signed_in(app, "ann@example.com", CHROME)
    signed_in(app, "bob@example.com", "curl/8.4.0")
    page = here.get("/users/me/sessions/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Firefox 121 on Windows 10" in body and "Chrome 120 on Linux" in body
    assert "curl 8" not in body
    assert body.count("This device") == 1
    assert "127.0.0.1" in body
    this, other = rows(user)
    assert f"/users/me/sessions/{other.id}/end/" in body
    assert f"/users/me/sessions/{this.id}/end/" not in body
    assert 'href="/users/me/sessions/"' in here.get("/users/me/").get_data(as_text=True)


def test_ending_one_session_from_the_page(app):
    user = factories.UserFactory(email="ann@example.com")
    here = signed_in(app, "ann@example.com")
    elsewhere = signed_in(app, "ann@example.com", CHROME)
    other = rows(user)[1]
    response = post(here, f"/users/me/sessions/{other.id}/end/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/me/sessions/"
    assert not is_signed_in(elsewhere)
    assert is_signed_in(here)
    [event] = events(AUDIT.ACTION_SESSION_ENDED)
    assert event.actor_id == user.id
    assert event.changes == {"session": ["Chrome 120 on Linux (127.0.0.1)", None]}
    assert "token" not in str(event.changes) and other.token_hash not in event.summary


def test_ending_this_browsers_session_from_the_page_signs_it_out(app):
    user = factories.UserFactory(email="ann@example.com")
    here = signed_in(app, "ann@example.com")
    [this] = rows(user)
    response = post(here, f"/users/me/sessions/{this.id}/end/")
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert rows(user) == []
    assert not is_signed_in(here)


def test_ending_all_other_sessions_from_the_page(app):
    user = factories.UserFactory(email="ann@example.com")
    here = signed_in(app, "ann@example.com")
    others = [signed_in(app, "ann@example.com", CHROME) for _ in range(2)]
    response = post(here, "/users/me/sessions/end-others/")
    assert response.headers["Location"] == "/users/me/sessions/"
    assert [is_signed_in(other) for other in others] == [False, False]
    assert is_signed_in(here)
    assert len(rows(user)) == 1


def test_ending_someone_elses_session_is_a_404_and_ends_nothing(app):
    factories.UserFactory(email="ann@example.com")
    bob = factories.UserFactory(email="bob@example.com")
    here = signed_in(app, "ann@example.com")
    theirs = signed_in(app, "bob@example.com")
    [row] = rows(bob)
    assert post(here, f"/users/me/sessions/{row.id}/end/").status_code == 404
    assert post(here, "/users/me/sessions/999999/end/").status_code == 404
    assert is_signed_in(theirs)
    assert events(AUDIT.ACTION_SESSION_ENDED) == []


def test_ending_sessions_takes_a_post_with_a_csrf_token(app):
    user = factories.UserFactory(email="ann@example.com")
    here = signed_in(app, "ann@example.com")
    elsewhere = signed_in(app, "ann@example.com", CHROME)
    other = rows(user)[1]
    assert here.get(f"/users/me/sessions/{other.id}/end/").status_code == 405
    assert here.post(f"/users/me/sessions/{other.id}/end/").status_code == 400
    assert here.post("/users/me/sessions/end-others/").status_code == 400
    assert is_signed_in(elsewhere)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/users/me/sessions/"),
        ("post", "/users/me/sessions/1/end/"),
        ("post", "/users/me/sessions/end-others/"),
    ],
)
def test_visitors_are_sent_to_sign_in(app, client, method, path):
    data = {"csrf_token": csrf_token(client, "/users/login/")} if method == "post" else None
    response = getattr(client, method)(path, data=data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")


# -- staff, on an account's admin page --------------------------------------------

# Who may end whose sessions: the target's role -> expected answer, per signed-in role.
STAFF_RULES = [
    ("admin", {"user": True, "staff": True, "admin": True}),
    ("staff", {"user": True, "staff": False, "admin": False}),
    ("user", {"user": False, "staff": False, "admin": False}),
]
FACTORY = {
    "user": factories.UserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}


def admin_post(client: FlaskClient, **data: Any) -> Any:
    return post(client, "/admin/user/sessions/end/", **data)


@pytest.mark.parametrize(("role", "answers"), STAFF_RULES)
@pytest.mark.parametrize("target_role", ["user", "staff", "admin"])
@pytest.mark.parametrize("which", ["one", "all"])
def test_ending_an_accounts_sessions_in_the_back_office(app, role, answers, target_role, which):
    factories.AdminFactory()  # so neither is the last admin
    FACTORY[role](email="asker@example.com")
    target = FACTORY[target_role](email="target@example.com")
    asker = signed_in(app, "asker@example.com")
    victim = signed_in(app, "target@example.com", CHROME)
    [row] = rows(target)
    response = admin_post(
        asker, id=str(target.id), session=str(row.id) if which == "one" else "all"
    )
    allowed = answers[target_role]
    if allowed:
        assert response.status_code == 302
        assert response.headers["Location"] == f"/admin/user/details/?id={target.id}"
        assert not is_signed_in(victim)
        [event] = events(AUDIT.ACTION_SESSION_ENDED)
        assert (event.object_id, event.source) == (str(target.id), AUDIT.SOURCE_ADMIN)
    else:
        assert response.status_code == 403
        assert is_signed_in(victim)
        assert events(AUDIT.ACTION_SESSION_ENDED) == []


def test_anonymous_visitors_are_sent_to_sign_in_from_the_back_office(app, client):
    target = factories.UserFactory(email="target@example.com")
    victim = signed_in(app, "target@example.com")
    response = client.post(
        "/admin/user/sessions/end/",
        data={
            "csrf_token": csrf_token(client, "/users/login/"),
            "id": str(target.id),
            "session": "all",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")
    assert is_signed_in(victim)


@pytest.mark.parametrize(
    ("role", "target_role", "buttons"),
    [
        ("admin", "staff", True),
        ("staff", "user", True),
        ("staff", "admin", False),
    ],
)
def test_the_details_page_lists_sessions_with_buttons_only_where_allowed(
    app, role, target_role, buttons
):
    factories.AdminFactory()
    FACTORY[role](email="asker@example.com")
    target = FACTORY[target_role](email="target@example.com")
    asker = signed_in(app, "asker@example.com")
    signed_in(app, "target@example.com", CHROME)
    page = asker.get(f"/admin/user/details/?id={target.id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Chrome 120 on Linux" in body
    assert ('name="session" value="all"' in body) is buttons
    assert ("/admin/user/sessions/end/" in body) is buttons


def test_an_ended_or_foreign_session_id_in_the_back_office_ends_nothing(app):
    factories.AdminFactory(email="boss@example.com")
    target = factories.UserFactory(email="target@example.com")
    other = factories.UserFactory(email="other@example.com")
    admin = signed_in(app, "boss@example.com")
    victim = signed_in(app, "other@example.com")
    [row] = rows(other)
    for session in (str(row.id), "not-a-number", ""):
        response = admin_post(admin, id=str(target.id), session=session)
        assert response.status_code == 302
    assert is_signed_in(victim)
    assert admin_post(admin, id="999999", session="all").headers["Location"] == "/admin/user/"
    assert events(AUDIT.ACTION_SESSION_ENDED) == []
