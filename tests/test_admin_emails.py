"""The email screens under /admin: the access table for every role, and what each does."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.extensions import db
from tests import factories
from tests.conftest import csrf_token

ROLES = {
    "user": factories.UserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}


def sign_in(role, auth):
    if role is not None:
        auth.login(ROLES[role](email=f"{role}@example.com").email)


def fresh(email_id: int) -> Email | None:
    db.session.expire_all()
    return db.session.execute(select(Email).where(Email.id == email_id)).scalar_one_or_none()


def token_for(client, role) -> str:
    return csrf_token(client, "/users/login/" if role is None else "/users/me/")


def expect(response, expected, path):
    if expected == "login":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/users/login/")
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:500]


GET_CASES = [
    # (path template, {role: expected})
    ("/admin/email/", {None: "login", "user": 403, "staff": 200, "admin": 200}),
    ("/admin/email/details/?id={id}", {None: "login", "user": 403, "staff": 200, "admin": 200}),
    ("/admin/email/new/", {None: "login", "user": 403, "staff": 403, "admin": 403}),
    ("/admin/email/edit/?id={id}", {None: "login", "user": 403, "staff": 403, "admin": 403}),
    ("/admin/email/export/csv/", {None: "login", "user": 403, "staff": 403, "admin": 403}),
    ("/admin/email_compose/", {None: "login", "user": 403, "staff": 200, "admin": 200}),
]


@pytest.mark.parametrize("role", [None, "user", "staff", "admin"])
@pytest.mark.parametrize(("path", "table"), GET_CASES, ids=[case[0] for case in GET_CASES])
def test_get_access(client, auth, role, path, table):
    email = factories.EmailFactory()
    sign_in(role, auth)
    target = path.format(id=email.id)
    expect(client.get(target), table[role], target)


# (action, {role: expected status}, state after an allowed run or None for deleted)
ACTION_CASES = [
    ("retry", {None: "login", "user": 403, "staff": 302, "admin": 302}, EMAIL.QUEUED),
    ("cancel", {None: "login", "user": 403, "staff": 302, "admin": 302}, EMAIL.CANCELLED),
    ("delete", {None: "login", "user": 403, "staff": 403, "admin": 302}, None),
]


@pytest.mark.parametrize("role", [None, "user", "staff", "admin"])
@pytest.mark.parametrize(
    ("action", "table", "after"), ACTION_CASES, ids=[c[0] for c in ACTION_CASES]
)
def test_actions_by_crafted_post(client, auth, role, action, table, after):
    email = factories.EmailFactory(state=EMAIL.FAILED, attempts=5, last_error="550 no")
    sign_in(role, auth)
    response = client.post(
        "/admin/email/action/",
        data={"csrf_token": token_for(client, role), "action": action, "rowid": [str(email.id)]},
    )
    expect(response, table[role], action)
    row = fresh(email.id)
    if table[role] == 302:
        if after is None:
            assert row is None
        else:
            assert row is not None and row.state == after
    else:
        assert row is not None and row.state == EMAIL.FAILED


@pytest.mark.parametrize(
    ("role", "expected"), [(None, "login"), ("user", 403), ("staff", 403), ("admin", 302)]
)
def test_delete_one_row(client, auth, role, expected):
    email = factories.EmailFactory(state=EMAIL.SENT)
    sign_in(role, auth)
    response = client.post(
        "/admin/email/delete/", data={"csrf_token": token_for(client, role), "id": str(email.id)}
    )
    expect(response, expected, "delete")
    assert (fresh(email.id) is None) is (expected == 302)


@pytest.mark.parametrize("role", [None, "user", "staff", "admin"])
def test_crafted_create_edit_and_inline_update_are_refused(client, auth, role):
    email = factories.EmailFactory(subject="Original")
    sign_in(role, auth)
    token = token_for(client, role)
    refused = "login" if role is None else 403
    for path, data in [
        ("/admin/email/new/", {"subject": "Forged", "to_address": "x@example.com"}),
        (f"/admin/email/edit/?id={email.id}", {"subject": "Forged"}),
        ("/admin/email/ajax/update/", {"list_form_pk": str(email.id), "subject": "Forged"}),
    ]:
        expect(client.post(path, data={"csrf_token": token, **data}), refused, path)
    assert fresh(email.id).subject == "Original"
    assert db.session.execute(select(func.count(Email.id))).scalar_one() == 1


def test_an_unknown_action_is_refused(client, auth):
    email = factories.EmailFactory()
    sign_in("admin", auth)
    response = client.post(
        "/admin/email/action/",
        data={"csrf_token": token_for(client, "admin"), "action": "explode", "rowid": [email.id]},
    )
    assert response.status_code == 403


def test_actions_need_the_csrf_token(client, auth):
    email = factories.EmailFactory(state=EMAIL.FAILED)
    sign_in("admin", auth)
    response = client.post("/admin/email/action/", data={"action": "delete", "rowid": [email.id]})
    assert response.status_code == 400
    assert fresh(email.id) is not None


def test_staff_see_no_delete_action_and_admins_do(client, auth):
    factories.EmailFactory()
    sign_in("staff", auth)
    staff_page = client.get("/admin/email/").get_data(as_text=True)
    assert 'value="retry"' in staff_page or "Retry now" in staff_page
    assert "Delete the selected messages" not in staff_page


def test_admin_sees_the_delete_action(client, auth):
    factories.EmailFactory()
    sign_in("admin", auth)
    assert "Delete the selected messages" in client.get("/admin/email/").get_data(as_text=True)


def test_menu_shows_email_screens_to_staff_only(client, auth):
    sign_in("staff", auth)
    page = client.get("/admin/").get_data(as_text=True)
    assert "/admin/email/" in page
    assert "/admin/email_compose/" in page


# -- what the screens show -----------------------------------------------------


def test_list_filters_and_searches(client, auth):
    factories.EmailFactory(to_address="alpha@example.com", subject="Welcome aboard")
    factories.EmailFactory(to_address="beta@example.com", subject="Invoice", state=EMAIL.SENT)
    sign_in("staff", auth)
    page = client.get("/admin/email/?search=alpha").get_data(as_text=True)
    assert "alpha@example.com" in page and "beta@example.com" not in page
    page = client.get("/admin/email/?search=invoice").get_data(as_text=True)
    assert "beta@example.com" in page and "alpha@example.com" not in page


def test_page_size_can_be_chosen(client, auth):
    factories.EmailFactory.create_batch(25)
    sign_in("staff", auth)
    assert (
        client.get("/admin/email/?page_size=50").get_data(as_text=True).count('name="rowid"') == 25
    )
    assert client.get("/admin/email/").get_data(as_text=True).count('name="rowid"') == 20


def test_details_show_sanitised_html_and_the_attempt_log(client, auth):
    email = factories.EmailFactory(
        text_body="Hello there",
        html_body=(
            '<p onclick="steal()">Hi<script>alert(1)</script><img src=x onerror=alert(2)></p>'
        ),
    )
    from portal.emails.models import Attempt

    db.session.add(
        Attempt(email_id=email.id, worker="w1", outcome="retry", smtp_code=451, error="451 later")
    )
    db.session.commit()
    sign_in("staff", auth)
    page = client.get(f"/admin/email/details/?id={email.id}").get_data(as_text=True)
    assert "Hello there" in page
    assert "<script>alert(1)</script>" not in page
    assert "onclick" not in page and "onerror" not in page
    assert "451 later" in page and "w1" in page


def test_staff_never_see_a_usable_token(app, client, auth, browser):
    # A real reset email, queued through the real page.
    factories.UserFactory(email="ann@example.com")
    browser.submit("/users/forgot/", {"email": "ann@example.com"})
    [email] = db.session.execute(select(Email)).scalars().all()
    assert "/users/reset/" in email.text_body
    token = email.text_body.split("/users/reset/")[1].split("/")[0]
    sign_in("staff", auth)
    page = client.get(f"/admin/email/details/?id={email.id}").get_data(as_text=True)
    assert token not in page
    assert "link hidden" in page


def test_retry_through_the_screen_makes_a_failed_row_due(client, auth):
    email = factories.EmailFactory(state=EMAIL.FAILED, attempts=5, last_error="550 mailbox full")
    sign_in("staff", auth)
    client.post(
        "/admin/email/action/",
        data={"csrf_token": token_for(client, "staff"), "action": "retry", "rowid": [email.id]},
    )
    row = fresh(email.id)
    assert row.state == EMAIL.QUEUED
    assert row.attempts == 0


def test_cancel_leaves_sent_rows_alone(client, auth):
    sent = factories.EmailFactory(state=EMAIL.SENT)
    queued = factories.EmailFactory()
    sign_in("staff", auth)
    client.post(
        "/admin/email/action/",
        data={
            "csrf_token": token_for(client, "staff"),
            "action": "cancel",
            "rowid": [sent.id, queued.id],
        },
    )
    assert fresh(sent.id).state == EMAIL.SENT
    assert fresh(queued.id).state == EMAIL.CANCELLED


# -- compose -------------------------------------------------------------------


def compose(client, **data):
    token = csrf_token(client, "/admin/email_compose/")
    return client.post("/admin/email_compose/", data={"csrf_token": token, **data})


def test_compose_previews_the_count_then_queues_to_a_group(client, auth):
    factories.UserFactory.create_batch(3)
    factories.InactiveUserFactory()
    sign_in("staff", auth)
    form = {"audience": "group", "role": "2", "status": "", "subject": "News", "body": "Hello all"}
    preview = compose(client, preview="1", **form)
    assert preview.status_code == 200
    assert "This will queue <strong>3</strong> messages" in preview.get_data(as_text=True)
    assert db.session.execute(select(func.count(Email.id))).scalar_one() == 0

    sent = compose(client, confirm="1", **form)
    assert sent.status_code == 302
    rows = db.session.execute(select(Email)).scalars().all()
    assert len(rows) == 3
    assert {row.subject for row in rows} == {"News"}


def test_compose_to_one_account_uses_its_stored_address(client, auth):
    factories.UserFactory(email="Ann.Smith@example.com")
    sign_in("staff", auth)
    compose(
        client,
        confirm="1",
        audience="account",
        account="ann.smith@EXAMPLE.com",
        subject="Hi",
        body="Hello",
    )
    [row] = db.session.execute(select(Email)).scalars().all()
    assert row.to_address == "Ann.Smith@example.com"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"audience": "address", "address": "", "subject": "Hi", "body": "x"}, "Enter the address"),
        (
            {"audience": "account", "account": "nobody@example.com", "subject": "Hi", "body": "x"},
            "No account",
        ),
        (
            {
                "audience": "address",
                "address": "a@example.com",
                "subject": "Hi\r\nBcc: b@example.com",
                "body": "x",
            },
            "single line",
        ),
        (
            {"audience": "address", "address": "a@example.com", "subject": "Hi", "body": ""},
            "This field is required",
        ),
    ],
)
def test_compose_refuses_bad_input_and_queues_nothing(client, auth, data, message):
    sign_in("staff", auth)
    response = compose(client, confirm="1", **data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert db.session.execute(select(func.count(Email.id))).scalar_one() == 0


def later(**offset):
    """A whole-minute UTC moment this far ahead, and how the datetime-local field writes it."""
    moment = (utcnow() + timedelta(**offset)).replace(second=0, microsecond=0)
    return moment, f"{moment:%Y-%m-%dT%H:%M}"


def test_compose_offers_the_two_optional_times(client, auth):
    sign_in("staff", auth)
    page = client.get("/admin/email_compose/").get_data(as_text=True)
    assert re.search(r'<input[^>]*id="scheduled_at"[^>]*type="datetime-local"', page)
    assert re.search(r'<input[^>]*id="expires_at"[^>]*type="datetime-local"', page)
    assert "Send at (UTC)" in page and "Give up at (UTC)" in page


def test_compose_schedules_a_group_and_says_so_in_the_preview(client, auth):
    factories.UserFactory.create_batch(2)
    sign_in("staff", auth)
    start, start_field = later(days=1)
    end, end_field = later(days=2)
    form = {
        "audience": "group",
        "role": "2",
        "status": "",
        "subject": "Maintenance",
        "body": "Tonight.",
        "scheduled_at": start_field,
        "expires_at": end_field,
    }

    preview = compose(client, preview="1", **form)

    page = preview.get_data(as_text=True)
    assert (
        f"Scheduled: to be sent from {start:%Y-%m-%d %H:%M} UTC, "
        f"expiring at {end:%Y-%m-%d %H:%M} UTC." in page
    )
    assert f'value="{start_field}"' in page  # kept for the confirming post
    assert db.session.execute(select(func.count(Email.id))).scalar_one() == 0

    sent = compose(client, confirm="1", **form)

    assert sent.status_code == 302
    rows = db.session.execute(select(Email)).scalars().all()
    assert {(r.scheduled_at, r.next_attempt_at, r.expires_at) for r in rows} == {
        (start, start, end)
    }
    assert len(rows) == 2  # the two USER accounts


def test_compose_to_one_address_can_be_held_until_later(client, auth):
    sign_in("staff", auth)
    start, start_field = later(hours=3)

    compose(
        client,
        confirm="1",
        audience="address",
        address="ann@example.com",
        subject="Hi",
        body="Later.",
        scheduled_at=start_field,
    )

    [row] = db.session.execute(select(Email)).scalars().all()
    assert (row.scheduled_at, row.expires_at) == (start, None)


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ({"scheduled_at": {"minutes": -5}}, "The time to send must be in the future."),
        ({"expires_at": {"hours": -1}}, "The expiry must be in the future."),
        (
            {"scheduled_at": {"days": 2}, "expires_at": {"days": 1}},
            "The expiry must come after the time to send.",
        ),
    ],
)
@pytest.mark.parametrize("button", ["preview", "confirm"])
def test_compose_refuses_a_schedule_in_the_past_or_out_of_order(
    client, auth, times, message, button
):
    sign_in("staff", auth)
    fields = {name: later(**offset)[1] for name, offset in times.items()}

    response = compose(
        client,
        audience="address",
        address="ann@example.com",
        subject="Hi",
        body="x",
        **{button: "1"},
        **fields,
    )

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<div class="invalid-feedback d-block">{html.escape(message)}</div>' in page
    assert "This will queue" not in page
    assert db.session.execute(select(func.count(Email.id))).scalar_one() == 0


@pytest.mark.parametrize("field", ["scheduled_at", "expires_at"])
def test_compose_refuses_a_time_it_cannot_read(client, auth, field):
    sign_in("staff", auth)

    response = compose(
        client,
        confirm="1",
        audience="address",
        address="ann@example.com",
        subject="Hi",
        body="x",
        **{field: "next tuesday"},
    )

    assert response.status_code == 200
    assert "Not a valid datetime value." in response.get_data(as_text=True)
    assert db.session.execute(select(func.count(Email.id))).scalar_one() == 0


def test_dashboard_shows_the_queue_panel(client, auth):
    factories.EmailFactory.create_batch(2)
    factories.EmailFactory(state=EMAIL.FAILED)
    sign_in("staff", auth)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="email-queue-panel"' in page
    assert 'data-state="queued"' in page


# -- purge (ADMIN only) --------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"), [(None, "login"), ("user", 403), ("staff", 403), ("admin", 200)]
)
def test_purge_screen_is_for_admins(client, auth, role, expected):
    sign_in(role, auth)
    expect(client.get("/admin/email_purge/"), expected, "purge")


@pytest.mark.parametrize(
    ("role", "expected"), [(None, "login"), ("user", 403), ("staff", 403), ("admin", 302)]
)
def test_purge_by_crafted_post(client, auth, role, expected):
    old = factories.EmailFactory(state=EMAIL.SENT, created_at=utcnow() - timedelta(days=40)).id
    sign_in(role, auth)
    response = client.post(
        "/admin/email_purge/",
        data={"csrf_token": token_for(client, role), "days": "30", "confirm": "1"},
    )
    expect(response, expected, "purge")
    assert (fresh(old) is None) is (expected == 302)


def test_purge_counts_first_and_keeps_recent_or_unsent_rows(client, auth):
    old_sent = factories.EmailFactory(state=EMAIL.SENT, created_at=utcnow() - timedelta(days=40))
    old_failed = factories.EmailFactory(
        state=EMAIL.FAILED, created_at=utcnow() - timedelta(days=40)
    )
    recent = factories.EmailFactory(state=EMAIL.SENT)
    sign_in("admin", auth)
    token = token_for(client, "admin")
    preview = client.post(
        "/admin/email_purge/", data={"csrf_token": token, "days": "30", "preview": "1"}
    )
    assert "This deletes <strong>1</strong> message" in preview.get_data(as_text=True)
    assert fresh(old_sent.id) is not None
    client.post("/admin/email_purge/", data={"csrf_token": token, "days": "30", "confirm": "1"})
    assert fresh(old_sent.id) is None
    assert fresh(old_failed.id) is not None
    assert fresh(recent.id) is not None


@pytest.mark.parametrize("days", ["0", "-3", "many"])
def test_purge_refuses_a_bad_age(client, auth, days):
    old = factories.EmailFactory(state=EMAIL.SENT, created_at=utcnow() - timedelta(days=40))
    sign_in("admin", auth)
    response = client.post(
        "/admin/email_purge/",
        data={"csrf_token": token_for(client, "admin"), "days": days, "confirm": "1"},
    )
    assert response.status_code == 200
    assert fresh(old.id) is not None


def test_every_inline_handler_on_the_list_is_allowed_by_hash_and_nothing_else(client, auth):
    factories.EmailFactory()
    sign_in("admin", auth)
    response = client.get("/admin/email/")
    policy = response.headers["Content-Security-Policy"]
    script_src = next(part for part in policy.split("; ") if part.startswith("script-src "))
    assert "'unsafe-inline'" not in script_src
    page = response.get_data(as_text=True)
    handlers = set(re.findall(r' on[a-z]+="([^"]*)"', page))
    handlers |= set(re.findall(r' href="(javascript:[^"]*)"', page))
    assert handlers, "the list renders Flask-Admin's inline handlers"
    for handler in handlers:
        digest = base64.b64encode(hashlib.sha256(html.unescape(handler).encode()).digest())
        assert f"'sha256-{digest.decode()}'" in script_src, handler


def test_public_pages_allow_no_inline_handler(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "unsafe-hashes" not in policy and "sha256-" not in policy
