"""Account events: every sign-in, failure, sign-out, reset, email and password change.

Each is an audit event about the account (object ``user:<id>``) naming the
person who acted, from where and on what device; none holds a password or a
link's token, and recording them changes nothing a visitor sees. The account
page lists its own recent ones, and an account can ask to be emailed when it
signs in from a device it never signed in from before.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.users import events as account_events
from portal.users.models import User
from tests import factories
from tests.conftest import csrf_token
from tests.helpers import deliver
from tests.helpers import link_in
from tests.helpers import path_of
from tests.helpers import statements
from tests.helpers import text_of

ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_DEVICE = "Firefox 121 on Windows 10"
CHROME_DEVICE = "Chrome 120 on Linux"
NEW_PASSWORD = "quiet-harbor-93-kettles"
WRONG_PASSWORD = "wrong-guess-71-lanterns"
LOGIN_FAILED = "The email address or password is not correct."
SAME_RESET_ANSWER = "If an account uses that address, a link to reset its password is on its way."


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def web(client):
    """The test client, from a fixed address and a known browser."""
    client.environ_base["REMOTE_ADDR"] = ADDRESS
    client.environ_base["HTTP_USER_AGENT"] = FIREFOX
    return client


@pytest.fixture
def ann():
    return factories.UserFactory(name="Ann Example", email="ann@example.com")


def committed(**where):
    """Every committed account event matching ``where``, oldest first."""
    db.session.rollback()
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(db.session.execute(query).scalars())


def events_of(user, action):
    return committed(object_type=AUDIT.OBJECT_USER, object_id=str(user.id), action=action)


def one(user, action):
    found = events_of(user, action)
    assert len(found) == 1, [(e.action, e.summary) for e in found]
    return found[0]


def event_count():
    db.session.rollback()
    return db.session.execute(select(func.count(AuditEvent.id))).scalar_one()


def serialised(event):
    """The whole row as stored, every column, as text."""
    row = db.session.execute(
        select(AuditEvent.__table__).where(AuditEvent.__table__.c.id == event.id)
    ).one()
    return json.dumps(dict(row._mapping), default=str, ensure_ascii=False)


def assert_no_secret(secrets, *, action=None):
    """No event (of ``action``, or any) holds any of ``secrets`` anywhere in its row."""
    found = committed(action=action) if action else committed()
    assert found, "no event to check"
    for event in found:
        row = serialised(event)
        for secret in secrets:
            assert secret not in row, (event.action, secret)


def assert_by_account(event, user):
    assert event.actor_id == user.id
    assert event.actor_label == f"{user.name} <{user.email}>"
    assert event.source == AUDIT.SOURCE_SITE
    assert event.address == ADDRESS


def assert_anonymous(event):
    assert event.actor_id is None
    assert event.actor_label == "anonymous"
    assert event.source == AUDIT.SOURCE_SITE
    assert event.address == ADDRESS


def login(auth, email, password=factories.PASSWORD):
    return auth.login(email, password)


def reload(user):
    db.session.expire_all()
    found = db.session.get(User, user.id)
    assert found is not None
    return found


def visitor_page(response, typed):
    """A page as the visitor sees it, without its per-request CSRF token or typed address."""
    page = response.get_data(as_text=True)
    page = re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", page)
    return page.replace(typed, "TYPED")


def reset_path(app, web, email):
    web.post(
        "/users/forgot/", data={"csrf_token": csrf_token(web, "/users/forgot/"), "email": email}
    )
    [message] = deliver(app)
    return path_of(link_in(message))


# -- sign-in, failure, sign-out ------------------------------------------------


def test_a_sign_in_is_recorded_as_the_account_on_its_device(web, auth, ann):
    response = login(auth, "ann@example.com")
    assert response.status_code == 302

    event = one(ann, AUDIT.ACTION_SIGN_IN)
    assert_by_account(event, ann)
    assert event.summary == f"Signed in on {FIREFOX_DEVICE}"
    assert event.object_type == AUDIT.OBJECT_USER
    assert event.object_id == str(ann.id)
    assert reload(ann).login_count == 1
    assert_no_secret([factories.PASSWORD, ann.password_hash])


def test_a_wrong_password_is_recorded_for_the_account_with_no_hint(web, auth, ann):
    response = login(auth, "ann@example.com", WRONG_PASSWORD)

    assert response.status_code == 200
    assert LOGIN_FAILED in response.get_data(as_text=True)
    event = one(ann, AUDIT.ACTION_SIGN_IN_FAILED)
    assert_anonymous(event)
    assert event.summary == f"Sign-in refused on {FIREFOX_DEVICE}: wrong password"
    assert events_of(ann, AUDIT.ACTION_SIGN_IN) == []
    assert_no_secret([WRONG_PASSWORD, factories.PASSWORD])


def test_a_wrong_password_answers_as_an_unknown_address_does(web, auth, ann):
    known = login(auth, "ann@example.com", WRONG_PASSWORD)
    unknown = login(auth, "nobody@example.com", WRONG_PASSWORD)

    assert known.status_code == unknown.status_code == 200
    assert visitor_page(known, "ann@example.com") == visitor_page(unknown, "nobody@example.com")


def test_an_unknown_address_is_not_recorded(web, auth, ann):
    before = event_count()
    login(auth, "nobody@example.com", WRONG_PASSWORD)
    assert event_count() == before
    # Nothing about the typed address or password reached the trail either.
    assert not any("nobody@example.com" in serialised(e) for e in committed())


def test_a_disabled_account_is_recorded_as_refused(web, auth):
    gone = factories.InactiveUserFactory(email="gone@example.com")
    response = login(auth, "gone@example.com")

    assert response.status_code == 200
    event = one(gone, AUDIT.ACTION_SIGN_IN_FAILED)
    assert_anonymous(event)
    assert event.summary.endswith(": account disabled")
    assert_no_secret([factories.PASSWORD])


def test_signing_out_is_recorded_as_the_account(web, auth, ann):
    login(auth, "ann@example.com")
    response = auth.logout()

    assert response.status_code == 302
    event = one(ann, AUDIT.ACTION_SIGN_OUT)
    assert_by_account(event, ann)
    assert event.summary == f"Signed out on {FIREFOX_DEVICE}"


def test_a_sign_out_without_a_session_records_nothing(web, auth, ann):
    before = event_count()
    web.post("/users/logout/", data={"csrf_token": csrf_token(web, "/users/login/")})
    assert event_count() == before


def test_visitors_pages_write_and_read_no_events(web, ann):
    with statements() as seen:
        assert web.get("/users/login/").status_code == 200
        assert web.get("/").status_code == 200
    assert not [s for s in seen if "audit_event" in s]
    assert not [s for s in seen if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


# -- password reset ------------------------------------------------------------


def test_a_reset_request_is_recorded_for_an_existing_account_only(app, web, browser, ann):
    known = browser.submit("/users/forgot/", {"email": "ANN@example.com"})
    after_known = event_count()
    unknown = browser.submit("/users/forgot/", {"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"] == "/users/login/"
    assert SAME_RESET_ANSWER in web.get("/users/login/").get_data(as_text=True)
    event = one(ann, AUDIT.ACTION_RESET_REQUESTED)
    assert_anonymous(event)
    assert event.summary == "Password reset link sent"
    assert event_count() == after_known

    [message] = deliver(app)
    token = path_of(link_in(message)).rstrip("/").rsplit("/", 1)[-1]
    assert_no_secret([token])


def test_a_reset_request_for_a_disabled_account_is_recorded_and_sends_nothing(app, browser):
    gone = factories.InactiveUserFactory(email="gone@example.com")
    response = browser.submit("/users/forgot/", {"email": "gone@example.com"})

    assert response.headers["Location"] == "/users/login/"
    assert one(gone, AUDIT.ACTION_RESET_REQUESTED).summary.endswith("account disabled")
    assert deliver(app) == []


def test_a_password_reset_is_recorded_as_the_account(app, web, browser, ann):
    path = reset_path(app, web, "ann@example.com")
    token = path.rstrip("/").rsplit("/", 1)[-1]
    response = browser.submit(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    event = one(ann, AUDIT.ACTION_RESET_DONE)
    assert_by_account(event, ann)
    assert event.changes == {"password": ["••••••", "••••••"]}
    assert_no_secret([NEW_PASSWORD, token, reload(ann).password_hash])


def test_a_refused_new_password_records_no_reset(app, web, browser, ann):
    path = reset_path(app, web, "ann@example.com")
    browser.submit(path, {"password": "short", "confirm": "short"})
    assert events_of(ann, AUDIT.ACTION_RESET_DONE) == []


# -- email and password changes ------------------------------------------------


def test_an_email_change_request_keeps_the_new_address_out_of_the_summary(web, auth, browser, ann):
    login(auth, "ann@example.com")
    browser.submit("/users/me/edit/", {"name": "Ann Example", "email": "ann.b@example.com"})

    event = one(ann, AUDIT.ACTION_EMAIL_CHANGE_REQUESTED)
    assert_by_account(event, ann)
    assert "ann.b@example.com" not in event.summary
    assert event.changes == {"email": ["ann@example.com", "ann.b@example.com"]}


def test_an_email_change_to_a_taken_address_reads_the_same_on_the_account_page(
    web, auth, browser, ann
):
    factories.UserFactory(email="taken@example.com")
    login(auth, "ann@example.com")
    browser.submit("/users/me/edit/", {"name": "Ann Example", "email": "free@example.com"})
    browser.submit("/users/me/edit/", {"name": "Ann Example", "email": "taken@example.com"})

    free, taken = events_of(ann, AUDIT.ACTION_EMAIL_CHANGE_REQUESTED)
    assert free.summary == taken.summary
    section = web.get("/users/me/").get_data(as_text=True).split('id="security-events"', 1)[1]
    assert "taken@example.com" not in section
    assert "free@example.com" not in section


def test_a_confirmed_email_change_is_recorded_as_the_account(app, web, auth, browser, ann):
    login(auth, "ann@example.com")
    browser.submit("/users/me/edit/", {"name": "Ann Example", "email": "ann.b@example.com"})
    messages = {message["To"]: message for message in deliver(app)}
    path = path_of(link_in(messages["ann.b@example.com"]))
    token = path.rstrip("/").rsplit("/", 1)[-1]
    auth.logout()

    response = browser.submit(path)

    assert response.status_code == 302
    event = one(ann, AUDIT.ACTION_EMAIL_CHANGED)
    assert event.actor_id == ann.id
    assert event.actor_label.startswith("Ann Example <")
    assert event.address == ADDRESS
    assert event.changes == {"email": ["ann@example.com", "ann.b@example.com"]}
    assert_no_secret([token])


def test_a_password_change_is_recorded_without_either_password(web, auth, browser, ann):
    login(auth, "ann@example.com")
    response = browser.submit(
        "/users/me/password/",
        {
            "current_password": factories.PASSWORD,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    event = one(ann, AUDIT.ACTION_PASSWORD_CHANGED)
    assert_by_account(event, ann)
    assert_no_secret([NEW_PASSWORD, factories.PASSWORD, reload(ann).password_hash])


def test_a_refused_password_change_records_nothing(web, auth, browser, ann):
    login(auth, "ann@example.com")
    browser.submit(
        "/users/me/password/",
        {"current_password": WRONG_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert events_of(ann, AUDIT.ACTION_PASSWORD_CHANGED) == []


# -- the account page ----------------------------------------------------------


def security_rows(page):
    """The account page's security events, as (what, details, from) per row."""
    section = page.split('id="security-events"', 1)[1]
    rows = re.findall(r"<tr class=\"event-[a-z_]+\">(.*?)</tr>", section, re.S)
    return [tuple(re.findall(r"<td>(.*?)</td>", row, re.S))[1:] for row in rows]


def test_the_account_page_lists_its_own_recent_security_events(web, auth, browser, ann):
    other = factories.UserFactory(email="other@example.com")
    login(auth, "ann@example.com", WRONG_PASSWORD)
    login(auth, "ann@example.com")
    auth.logout()
    login(auth, "other@example.com")
    auth.logout()
    login(auth, "ann@example.com")

    page = web.get("/users/me/").get_data(as_text=True)

    assert security_rows(page) == [
        ("Signed in", f"Signed in on {FIREFOX_DEVICE}", ADDRESS),
        ("Signed out", f"Signed out on {FIREFOX_DEVICE}", ADDRESS),
        ("Signed in", f"Signed in on {FIREFOX_DEVICE}", ADDRESS),
        ("Sign-in refused", f"Sign-in refused on {FIREFOX_DEVICE}: wrong password", ADDRESS),
    ]
    assert "other@example.com" not in page.split('id="security-events"', 1)[1]
    assert other.id != ann.id


def test_the_account_page_shows_the_last_ten_and_no_other_actions(web, auth, ann):
    for number in range(12):
        account_events.sign_in_failed(ann, reason=f"attempt {number}")
    # Not an account event: staff renaming the account stays off this list.
    from portal.audit import services as audit

    audit.record(AUDIT.ACTION_UPDATE, AUDIT.OBJECT_USER, ann.id, summary="Renamed by staff")
    db.session.commit()
    login(auth, "ann@example.com")

    rows = security_rows(web.get("/users/me/").get_data(as_text=True))

    assert len(rows) == 10
    assert rows[0][0] == "Signed in"
    assert [details.rsplit(": ", 1)[1] for _what, details, _from in rows[1:]] == [
        f"attempt {number}" for number in range(11, 2, -1)
    ]
    assert not [row for row in rows if "Renamed" in row[1]]


def test_the_account_page_reads_its_events_in_one_query(web, auth, ann):
    login(auth, "ann@example.com")
    web.get("/users/me/")
    with statements() as seen:
        assert web.get("/users/me/").status_code == 200
    assert len([s for s in seen if "audit_event" in s]) == 1


def test_the_events_query_uses_the_object_index(app, backend, ann):
    query = account_events.recent_query(ann)
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    if backend == "sqlite":
        plan = db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        assert any("ix_audit_event_object" in str(row) for row in plan), plan
    else:
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = db.session.execute(text(f"EXPLAIN {compiled}")).all()
        assert any("ix_audit_event_object" in str(row) for row in plan), plan


def test_the_admin_audit_screen_lists_account_events(web, auth, ann):
    admin = factories.AdminFactory(email="ada@example.com")
    login(auth, "ann@example.com", WRONG_PASSWORD)
    login(auth, "ann@example.com")
    auth.logout()
    login(auth, admin.email)

    page = web.get("/admin/audit/").get_data(as_text=True)

    assert f"Signed in on {FIREFOX_DEVICE}" in page
    assert f"Sign-in refused on {FIREFOX_DEVICE}: wrong password" in page
    assert AUDIT.ACTION_SIGN_IN_FAILED in page


def test_every_account_action_has_a_label_and_a_filter():
    assert set(account_events.ACTION_LABELS) == set(AUDIT.ACCOUNT_ACTIONS)
    assert set(AUDIT.ACCOUNT_ACTIONS) <= set(AUDIT.ACTIONS)


# -- the new-device setting and its email --------------------------------------


def test_the_setting_is_off_by_default_and_saved_from_the_edit_page(web, auth, browser, ann):
    assert ann.notify_new_device is False
    login(auth, "ann@example.com")
    page = web.get("/users/me/edit/").get_data(as_text=True)
    assert "Email me when my account signs in from a new device" in page

    response = browser.submit(
        "/users/me/edit/",
        {"name": "Ann Example", "email": "ann@example.com", "notify_new_device": "y"},
    )
    assert response.status_code == 302
    assert reload(ann).notify_new_device is True

    browser.submit("/users/me/edit/", {"name": "Ann Example", "email": "ann@example.com"})
    assert reload(ann).notify_new_device is False


def sign_in_from(web, auth, user_agent, address, email="ann@example.com"):
    web.environ_base["HTTP_USER_AGENT"] = user_agent
    web.environ_base["REMOTE_ADDR"] = address
    response = login(auth, email)
    assert response.status_code == 302
    auth.logout()


def test_a_new_device_is_emailed_when_the_account_asked(app, web, auth, mail):
    factories.UserFactory(name="Ann Example", email="ann@example.com", notify_new_device=True)

    sign_in_from(web, auth, FIREFOX, ADDRESS)  # the first sign-in ever: nothing to compare
    sign_in_from(web, auth, FIREFOX, OTHER_ADDRESS)  # a known device, elsewhere
    assert deliver(app) == []

    sign_in_from(web, auth, CHROME, OTHER_ADDRESS)
    deliver(app)

    [message] = mail
    assert message["To"] == "ann@example.com"
    assert "New sign-in" in message["Subject"]
    body = text_of(message)
    assert CHROME_DEVICE in body
    assert OTHER_ADDRESS in body
    # In the recipient's language and zone (English and UTC here), to the second.
    assert re.search(r"When: \w+ \d{1,2}, \d{4}, \d{1,2}:\d{2}:\d{2}\s[AP]M UTC", body)
    assert "http://127.0.0.1:5000/users/me/sessions/" in body
    assert "http://127.0.0.1:5000/users/me/password/" in body
    html = message.get_body(preferencelist=("html",)).get_content()
    assert 'href="http://127.0.0.1:5000/users/me/sessions/"' in html

    sign_in_from(web, auth, CHROME, ADDRESS)  # seen now
    deliver(app)
    assert len(mail) == 1


def test_no_new_device_email_when_the_setting_is_off(app, web, auth, ann):
    sign_in_from(web, auth, FIREFOX, ADDRESS)
    sign_in_from(web, auth, CHROME, OTHER_ADDRESS)
    assert deliver(app) == []


def test_failed_sign_ins_do_not_make_a_device_known(app, web, auth):
    factories.UserFactory(email="ann@example.com", notify_new_device=True)
    sign_in_from(web, auth, FIREFOX, ADDRESS)
    web.environ_base["HTTP_USER_AGENT"] = CHROME
    login(auth, "ann@example.com", WRONG_PASSWORD)
    sign_in_from(web, auth, CHROME, ADDRESS)

    [message] = deliver(app)
    assert CHROME_DEVICE in text_of(message)


def test_the_new_device_email_holds_no_secret(app, web, auth):
    factories.UserFactory(email="ann@example.com", notify_new_device=True)
    sign_in_from(web, auth, FIREFOX, ADDRESS)
    sign_in_from(web, auth, CHROME, ADDRESS)

    [message] = deliver(app)
    assert factories.PASSWORD not in message.as_string()
    assert_no_secret([factories.PASSWORD])
