"""The audit trail: one event per change, from /admin, manage.py and moderators on the site.

Each event names who acted (id and label), where from (admin, site, cli),
the client address for web requests, the object, the action and the fields
that changed from what to what; secrets never reach it. Refused changes leave
no event. The audit screen is for admins only, and nobody edits history.
"""

from __future__ import annotations

import getpass
import html
import json
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.extensions import db
from portal.posts import constants as POST
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.conftest import csrf_token
from tests.helpers import assert_no_traceback

ADDRESS = "203.0.113.9"
# Passes the password policy, and differs from the factories' PASSWORD.
NEW_PASSWORD = "quiet-harbor-93-kettles"


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def people():
    """One account per role, with names the labels can be checked against."""
    return {
        "user": factories.UserFactory(name="Uma User", email="uma@example.com"),
        "other": factories.UserFactory(name="Oscar Other", email="oscar@example.com"),
        "staff": factories.StaffFactory(name="Sam Staff", email="sam@example.com"),
        "admin": factories.AdminFactory(name="Ada Admin", email="ada@example.com"),
    }


@pytest.fixture
def web(client):
    """The test client, calling from a fixed address the events must record."""
    client.environ_base["REMOTE_ADDR"] = ADDRESS
    return client


def sign_in(auth, person):
    response = auth.login(person.email)
    assert response.status_code == 302, "sign-in failed"
    return person


def token(client):
    return csrf_token(client, "/users/me/")


def events(**where):
    """Every committed audit event matching ``where``, oldest first.

    Signing in and out are account events (tests/test_account_events.py); the
    changes these tests check are the rest.
    """
    db.session.rollback()
    db.session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action.not_in(AUDIT.ACCOUNT_ACTIONS))
    query = query.order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(db.session.execute(query).scalars())


def one_event(**where):
    found = events(**where)
    assert len(found) == 1, [(e.action, e.object_type, e.object_id, e.summary) for e in found]
    return found[0]


def event_count():
    db.session.rollback()
    return db.session.execute(
        select(func.count(AuditEvent.id)).where(AuditEvent.action.not_in(AUDIT.ACCOUNT_ACTIONS))
    ).scalar_one()


def serialised(event):
    """The whole row as text: every column, as stored."""
    row = db.session.execute(
        select(AuditEvent.__table__).where(AuditEvent.__table__.c.id == event.id)
    ).one()
    return json.dumps(dict(row._mapping), default=str, ensure_ascii=False)


def label_of(person):
    return f"{person.name} <{person.email}>"


def assert_by(event, person, source):
    """The event names ``person`` as the actor, acting through ``source`` from ADDRESS."""
    assert event.actor_id == person.id
    assert event.actor_label == label_of(person)
    assert event.source == source
    assert event.address == ADDRESS
    assert event.created_at is not None
    assert abs(datetime.now(UTC) - event.created_at) < timedelta(minutes=5)


def assert_by_command(event, command):
    """The event names the command and the operator who ran it, and no web address."""
    assert event.actor_id is None
    assert event.source == "cli"
    assert event.address is None
    assert command in event.actor_label
    try:
        operator = getpass.getuser()
    except (KeyError, OSError):
        operator = "unknown"
    assert f"(run by {operator})" in event.actor_label


def user_row(user_id):
    db.session.expire_all()
    return db.session.get(User, user_id)


def admin_action(client, endpoint, action, ids):
    """Post a list action the way the list page's button does."""
    return client.post(
        f"/admin/{endpoint}/action/",
        data={"csrf_token": token(client), "action": action, "rowid": [str(i) for i in ids]},
    )


def input_action(client, browser, endpoint, action, ids, data):
    """Run an action that asks for input first: the list's button, then its page."""
    response = admin_action(client, endpoint, action, ids)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    page = response.headers["Location"]
    assert page.startswith(f"/admin/{endpoint}/action/{action}/")
    return browser.submit(page, data)


# -- accounts through /admin -----------------------------------------------------


def test_admin_changing_a_role_records_who_what_and_from_where(web, auth, browser, people):
    admin, target = sign_in(auth, people["admin"]), people["user"]
    web.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.66"  # no proxy is trusted

    response = input_action(web, browser, "user", "set_role", [target.id], {"role": "1"})

    assert response.status_code == 302
    assert user_row(target.id).role == USER.STAFF
    event = one_event(action="set_role")
    assert_by(event, admin, "admin")
    assert (event.object_type, event.object_id) == ("user", str(target.id))
    assert event.changes == {"role": ["user", "staff"]}
    assert target.email in event.summary


def test_staff_deactivating_with_a_reason_records_the_reason(web, auth, browser, people):
    staff, target = sign_in(auth, people["staff"]), people["user"]

    response = input_action(
        web, browser, "user", "deactivate", [target.id], {"reason": "Posted spam links"}
    )

    assert response.status_code == 302
    assert user_row(target.id).status == USER.INACTIVE
    event = one_event(action="set_status")
    assert_by(event, staff, "admin")
    assert (event.object_type, event.object_id) == ("user", str(target.id))
    assert event.changes == {
        "status": ["active", "inactive"],
        "reason": [None, "Posted spam links"],
    }


def test_bulk_activation_writes_one_event_per_account_changed(web, auth, browser, people):
    staff = sign_in(auth, people["staff"])
    waiting = factories.NewUserFactory.create_batch(2)
    already = people["other"]

    ids = [waiting[0].id, waiting[1].id, already.id]
    response = input_action(web, browser, "user", "activate", ids, {"reason": ""})

    assert response.status_code == 302
    found = events(action="set_status")
    assert sorted(e.object_id for e in found) == sorted(str(u.id) for u in waiting)
    for event in found:
        assert_by(event, staff, "admin")
        assert event.changes == {"status": ["new", "active"]}  # no empty reason recorded


def test_admin_edit_form_records_each_field_changed(web, auth, browser, people):
    admin, target = sign_in(auth, people["admin"]), people["user"]

    response = browser.submit(
        f"/admin/user/edit/?id={target.id}",
        {"name": "Uma Renamed", "role": str(USER.STAFF), "status": str(USER.INACTIVE)},
    )

    assert response.status_code == 302
    row = user_row(target.id)
    assert (row.name, row.role, row.status) == ("Uma Renamed", USER.STAFF, USER.INACTIVE)
    found = {event.action: event for event in events(object_id=str(target.id))}
    assert set(found) == {"update", "set_role", "set_status"}
    for event in found.values():
        assert_by(event, admin, "admin")
        assert event.object_type == "user"
    assert found["update"].changes == {"name": ["Uma User", "Uma Renamed"]}
    assert found["set_role"].changes == {"role": ["user", "staff"]}
    assert found["set_status"].changes == {"status": ["active", "inactive"]}


def test_saving_the_edit_form_unchanged_writes_nothing(web, auth, browser, people):
    sign_in(auth, people["admin"])
    target = people["user"]

    response = browser.submit(
        f"/admin/user/edit/?id={target.id}",
        {"name": target.name, "role": str(target.role), "status": str(target.status)},
    )

    assert response.status_code == 302
    assert event_count() == 0


def test_inviting_an_account_records_it_without_the_link_or_password(web, auth, browser, people):
    admin = sign_in(auth, people["admin"])

    response = browser.submit(
        "/admin/user/new/", {"name": "Ivy Invited", "email": "ivy@example.com", "role": "2"}
    )

    assert response.status_code == 302
    invited = db.session.execute(select(User).where(User.email == "ivy@example.com")).scalar_one()
    event = one_event(action="create")
    assert_by(event, admin, "admin")
    assert (event.object_type, event.object_id) == ("user", str(invited.id))
    assert event.changes == {
        "name": [None, "Ivy Invited"],
        "email": [None, "ivy@example.com"],
        "role": [None, "user"],
        "status": [None, "new"],
    }
    # The invitation carries a token; the audit trail never does.
    message = db.session.execute(
        select(Email).where(Email.to_address == "ivy@example.com")
    ).scalar_one()
    link = re.search(r"https?://\S+", message.text_body).group(0)
    secret = link.rstrip("/").rsplit("/", 1)[-1]
    text = serialised(event)
    assert len(secret) > 20 and secret not in text
    assert invited.password_hash not in text


@pytest.mark.parametrize("content", ["keep", "delete"])
def test_deleting_an_account_records_what_it_was(web, auth, browser, people, content):
    admin, target = sign_in(auth, people["admin"]), people["user"]
    factories.PostFactory.create_batch(2, author=target)
    target_id = target.id

    response = browser.submit(
        "/admin/user/delete/",
        {"id": str(target_id), "confirm": "1", "content": content},
        token_from="/users/me/",
    )

    assert response.status_code == 302
    assert user_row(target_id) is None
    event = one_event(action="delete")
    assert_by(event, admin, "admin")
    assert (event.object_type, event.object_id) == ("user", str(target_id))
    assert event.changes == {
        "name": ["Uma User", None],
        "email": ["uma@example.com", None],
        "role": ["user", None],
    }
    assert "2 post(s)" in event.summary


def test_events_keep_their_actor_label_after_the_actor_is_deleted(web, auth, browser, people):
    staff = people["staff"]
    sign_in(auth, staff)
    input_action(web, browser, "user", "deactivate", [people["user"].id], {"reason": "x"})
    auth.logout()
    sign_in(auth, people["admin"])

    response = browser.submit(
        "/admin/user/delete/",
        {"id": str(staff.id), "confirm": "1", "content": "keep"},
        token_from="/users/me/",
    )

    assert response.status_code == 302
    kept = one_event(action="set_status")
    assert kept.actor_id is None
    assert kept.actor_label == "Sam Staff <sam@example.com>"


# -- posts and comments through /admin -------------------------------------------


def test_admin_post_edit_records_the_diff_and_the_status_change(web, auth, browser, people):
    staff = sign_in(auth, people["staff"])
    post = factories.PostFactory(author=people["user"], title="Old title", body="Old body.")

    response = browser.submit(
        f"/admin/post/edit/?id={post.id}",
        {"title": "New title", "body": "Old body.", "status": "hidden"},
    )

    assert response.status_code == 302
    found = {event.action: event for event in events(object_type="post")}
    assert set(found) == {"update", "set_status"}
    for event in found.values():
        assert_by(event, staff, "admin")
        assert event.object_id == str(post.id)
    assert found["update"].changes == {"title": ["Old title", "New title"]}
    assert found["set_status"].changes == {"status": ["published", "hidden"]}


@pytest.mark.parametrize(
    ("action", "start", "after"),
    [("publish", POST.DRAFT, "published"), ("hide", POST.PUBLISHED, "hidden")],
)
def test_post_status_actions_write_an_event_per_post_changed(
    web, auth, people, action, start, after
):
    staff = sign_in(auth, people["staff"])
    changing = factories.PostFactory.create_batch(2, status=start, author=people["user"])
    already = factories.PostFactory(status=POST.status_by_name(after), author=people["user"])

    response = admin_action(web, "post", action, [p.id for p in [*changing, already]])

    assert response.status_code == 302
    found = events(object_type="post")
    assert sorted(e.object_id for e in found) == sorted(str(p.id) for p in changing)
    for event in found:
        assert_by(event, staff, "admin")
        assert event.action == "set_status"
        assert event.changes == {"status": [POST.STATUS[start], after]}


def test_deleting_posts_records_each_one(web, auth, people):
    admin = sign_in(auth, people["admin"])
    pair = [p.id for p in factories.PostFactory.create_batch(2, author=people["user"])]
    single = factories.PostFactory(title="Single", author=people["user"]).id

    assert admin_action(web, "post", "delete", pair).status_code == 302
    response = web.post("/admin/post/delete/", data={"csrf_token": token(web), "id": single})

    assert response.status_code == 302
    found = events(action="delete")
    assert sorted(e.object_id for e in found) == sorted(str(i) for i in [*pair, single])
    for event in found:
        assert_by(event, admin, "admin")
        assert event.object_type == "post"
    assert events(object_id=str(single))[0].changes == {
        "title": ["Single", None],
        "status": ["published", None],
    }


@pytest.mark.parametrize(
    ("action", "status"),
    [("approve", COMMENT.APPROVED), ("reject", COMMENT.REJECTED), ("spam", COMMENT.SPAM)],
)
def test_each_moderation_decision_is_an_event_per_comment(
    web, auth, browser, people, action, status
):
    staff = sign_in(auth, people["staff"])
    post = factories.PostFactory(author=people["other"])
    comments = factories.CommentFactory.create_batch(2, post=post, author=people["user"])

    response = input_action(
        web, browser, "comment", action, [c.id for c in comments], {"reason": "Off topic"}
    )

    assert response.status_code == 302
    found = events(object_type="comment")
    assert sorted(e.object_id for e in found) == sorted(str(c.id) for c in comments)
    for event in found:
        assert_by(event, staff, "admin")
        assert event.action == action
        assert event.changes == {
            "status": ["pending", COMMENT.STATUS[status]],
            "reason": [None, "Off topic"],
        }


def test_deleting_comments_through_admin_records_each_one(web, auth, people):
    staff = sign_in(auth, people["staff"])
    post = factories.PostFactory(author=people["other"])
    pair = [
        c.id for c in factories.CommentFactory.create_batch(2, post=post, author=people["user"])
    ]
    single = factories.ApprovedCommentFactory(post=post, author=people["user"], body="Bye.").id

    assert admin_action(web, "comment", "delete", pair).status_code == 302
    response = web.post("/admin/comment/delete/", data={"csrf_token": token(web), "id": single})

    assert response.status_code == 302
    found = events(action="delete", object_type="comment")
    assert sorted(e.object_id for e in found) == sorted(str(i) for i in [*pair, single])
    for event in found:
        assert_by(event, staff, "admin")
    assert events(object_id=str(single))[0].changes == {
        "body": ["Bye.", None],
        "status": ["approved", None],
    }


def test_moderators_own_content_changed_through_admin_is_audited(web, auth, people):
    # "Every change made through /admin" includes a moderator's own comment and post.
    staff = sign_in(auth, people["staff"])
    post = factories.PostFactory(author=staff).id
    comment = factories.CommentFactory(author=staff).id

    web.post("/admin/comment/delete/", data={"csrf_token": token(web), "id": comment})
    web.post("/admin/post/delete/", data={"csrf_token": token(web), "id": post})

    db.session.expire_all()
    assert db.session.get(Comment, comment) is None
    found = events(action="delete")
    assert sorted((e.object_type, e.object_id) for e in found) == sorted(
        [("comment", str(comment)), ("post", str(post))]
    )
    for event in found:
        assert_by(event, staff, "admin")


# -- the email queue through /admin ----------------------------------------------


@pytest.mark.parametrize(
    ("action", "role", "state"),
    [
        ("retry", "staff", EMAIL.FAILED),
        ("cancel", "staff", EMAIL.QUEUED),
        ("delete", "admin", EMAIL.SENT),
    ],
)
def test_queue_actions_are_recorded(web, auth, people, action, role, state):
    person = sign_in(auth, people[role])
    email_id = factories.EmailFactory(state=state).id

    response = admin_action(web, "email", action, [email_id])

    assert response.status_code == 302
    event = one_event(action=action)
    assert_by(event, person, "admin")
    assert (event.object_type, event.object_id) == ("email", str(email_id))
    assert "1 of 1" in event.summary


def test_composing_and_purging_are_recorded(web, auth, browser, people):
    admin = sign_in(auth, people["admin"])
    old = factories.EmailFactory(
        state=EMAIL.SENT, created_at=datetime.now(UTC) - timedelta(days=90)
    ).id

    sent = browser.submit(
        "/admin/email_compose/",
        {
            "audience": "address",
            "address": "reader@example.com",
            "subject": "Hello there",
            "body": "A few words.",
            "confirm": "1",
        },
    )
    purged = browser.submit("/admin/email_purge/", {"days": "30", "confirm": "1"})

    assert (sent.status_code, purged.status_code) == (302, 302)
    assert db.session.get(Email, old) is None
    compose = one_event(action="compose")
    message = db.session.execute(
        select(Email).where(Email.to_address == "reader@example.com")
    ).scalar_one()
    assert (compose.object_type, compose.object_id) == ("email", str(message.id))
    assert "Hello there" in compose.summary
    purge = one_event(action="purge")
    assert purge.object_type == "email"
    assert "Purged 1 " in purge.summary
    for event in (compose, purge):
        assert_by(event, admin, "admin")


def test_broadcast_from_the_compose_screen_is_recorded(web, auth, browser, people):
    staff = sign_in(auth, people["staff"])

    response = browser.submit(
        "/admin/email_compose/",
        {
            "audience": "group",
            "role": str(USER.USER),
            "status": "",
            "subject": "News",
            "body": "Something happened.",
            "confirm": "1",
        },
    )

    assert response.status_code == 302
    event = one_event(action="broadcast")
    assert_by(event, staff, "admin")
    assert event.changes["role"] == [None, "user"]
    assert "status" not in event.changes  # no filter on status, nothing recorded for it
    assert event.changes["subject"] == [None, "News"]
    assert "“News” to 2 account(s)" in event.summary


# -- moderation on the public site -------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_staff_moderating_on_the_post_page_is_recorded_as_site(web, auth, browser, people, role):
    moderator = sign_in(auth, people[role])
    post = factories.PostFactory(author=people["user"], slug="on-the-site")

    response = browser.submit(
        "/posts/on-the-site/status/", {"status": "hidden"}, token_from="/posts/on-the-site/"
    )

    assert response.status_code == 302
    event = one_event(action="set_status")
    assert_by(event, moderator, "site")
    assert (event.object_type, event.object_id) == ("post", str(post.id))
    assert event.changes == {"status": ["published", "hidden"]}


def test_a_user_cannot_moderate_from_the_post_page_and_no_event_is_written(
    web, auth, browser, people
):
    sign_in(auth, people["user"])
    factories.PostFactory(author=people["user"], slug="mine")

    response = browser.submit(
        "/posts/mine/status/", {"status": "hidden"}, token_from="/posts/mine/"
    )

    assert response.status_code == 403
    assert event_count() == 0


def test_staff_deleting_a_comment_on_the_site_is_recorded(web, auth, browser, people):
    staff = sign_in(auth, people["staff"])
    post = factories.PostFactory(author=people["other"], slug="with-comments")
    comment = factories.ApprovedCommentFactory(post=post, author=people["user"], body="Rude.").id

    response = browser.submit(f"/comments/{comment}/delete/", token_from="/users/me/")

    assert response.status_code == 302
    event = one_event(action="delete")
    assert_by(event, staff, "site")
    assert (event.object_type, event.object_id) == ("comment", str(comment))
    assert event.changes == {"body": ["Rude.", None], "status": ["approved", None]}


def test_authors_changing_their_own_posts_are_not_audited(web, auth, browser, people):
    sign_in(auth, people["user"])
    factories.PostFactory(author=people["user"], slug="mine", title="Mine")

    response = browser.submit(
        "/posts/mine/edit/", {"title": "Still mine", "body": "Edited.", "action": "save"}
    )

    assert response.status_code == 302
    assert event_count() == 0


# -- manage.py -----------------------------------------------------------------------


def test_cli_set_role_names_the_command(runner, people):
    target = people["user"]

    result = runner.invoke(args=["users", "set-role", target.email, "staff"], prog_name="manage.py")

    assert_no_traceback(result)
    assert result.exit_code == 0
    event = one_event(action="set_role")
    assert_by_command(event, "manage.py users set-role")
    assert (event.object_type, event.object_id) == ("user", str(target.id))
    assert event.changes == {"role": ["user", "staff"]}


def test_cli_set_status_names_the_command(runner, people):
    target = people["staff"]

    result = runner.invoke(args=["users", "set-status", target.email, "inactive"])

    assert result.exit_code == 0
    event = one_event(action="set_status")
    assert_by_command(event, "users set-status")
    assert (event.object_type, event.object_id) == ("user", str(target.id))
    assert event.changes == {"status": ["active", "inactive"]}


def test_cli_set_password_leaves_no_secret_in_the_trail(runner, people):
    target = people["user"]
    old_hash = target.password_hash

    result = runner.invoke(
        args=["users", "set-password", target.email, "--password-stdin"],
        input=f"{NEW_PASSWORD}\n",
    )

    assert_no_traceback(result)
    assert result.exit_code == 0
    new_hash = user_row(target.id).password_hash
    assert new_hash != old_hash
    event = one_event(action="set_password")
    assert_by_command(event, "users set-password")
    assert (event.object_type, event.object_id) == ("user", str(target.id))
    assert list(event.changes) == ["password"]
    text = serialised(event)
    for secret in (NEW_PASSWORD, new_hash, old_hash, "scrypt:", factories.PASSWORD):
        assert secret not in text, secret


def test_cli_create_admin_records_the_account_without_its_password(runner):
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "boss@example.com",
            "--name",
            "Bo Boss",
            "--password-stdin",
        ],
        input=f"{NEW_PASSWORD}\n",
    )

    assert result.exit_code == 0
    boss = db.session.execute(select(User).where(User.email == "boss@example.com")).scalar_one()
    event = one_event(action="create")
    assert_by_command(event, "create-admin")
    assert (event.object_type, event.object_id) == ("user", str(boss.id))
    assert event.changes == {
        "name": [None, "Bo Boss"],
        "email": [None, "boss@example.com"],
        "role": [None, "admin"],
    }
    text = serialised(event)
    assert NEW_PASSWORD not in text and boss.password_hash not in text


def test_cli_email_commands_are_recorded(runner, tmp_path):
    failed = factories.EmailFactory(state=EMAIL.FAILED)
    queued = factories.EmailFactory(state=EMAIL.QUEUED)
    factories.EmailFactory(state=EMAIL.SENT, created_at=datetime.now(UTC) - timedelta(days=90))
    factories.UserFactory(email="reader@example.com")
    body = tmp_path / "body.txt"
    body.write_text("Hello all.", encoding="utf-8")

    for args in (
        ["emails", "retry", "--id", str(failed.id)],
        ["emails", "cancel", "--id", str(queued.id)],
        ["emails", "purge", "--older-than", "30"],
        ["emails", "broadcast", "--subject", "News", "--body-file", str(body)],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)

    found = {event.action: event for event in events(object_type="email")}
    assert set(found) == {"retry", "cancel", "purge", "broadcast"}
    assert found["retry"].object_id == str(failed.id)
    assert found["cancel"].object_id == str(queued.id)
    assert_by_command(found["retry"], "emails retry")
    assert_by_command(found["cancel"], "emails cancel")
    assert_by_command(found["purge"], "emails purge")
    assert_by_command(found["broadcast"], "emails broadcast")
    assert found["broadcast"].changes["subject"] == [None, "News"]
    assert "to 1 account(s)" in found["broadcast"].summary


def test_cli_retry_of_every_failed_message_is_recorded(runner):
    factories.EmailFactory.create_batch(3, state=EMAIL.FAILED)

    result = runner.invoke(args=["emails", "retry", "--failed"])

    assert result.exit_code == 0
    event = one_event(action="retry")
    assert_by_command(event, "emails retry")
    assert "(3)" in event.summary


def test_a_dry_run_changes_nothing_and_records_nothing(runner):
    factories.EmailFactory(state=EMAIL.SENT, created_at=datetime.now(UTC) - timedelta(days=90))

    result = runner.invoke(args=["emails", "purge", "--older-than", "30", "--dry-run"])

    assert result.exit_code == 0
    assert event_count() == 0


# -- refused changes write nothing ---------------------------------------------------


def test_refused_admin_changes_write_no_event(web, auth, browser, people):
    admin = sign_in(auth, people["admin"])

    # Their own role, through the action and the edit form.
    input_action(web, browser, "user", "set_role", [admin.id], {"role": str(USER.USER)})
    browser.submit(
        f"/admin/user/edit/?id={admin.id}",
        {"name": admin.name, "role": str(USER.STAFF), "status": str(USER.ACTIVE)},
    )
    # Their own account.
    browser.submit(
        "/admin/user/delete/",
        {"id": str(admin.id), "confirm": "1", "content": "keep"},
        token_from="/users/me/",
    )
    # A form that does not validate.
    browser.submit("/admin/user/new/", {"name": "", "email": "not-an-address", "role": "2"})

    assert user_row(admin.id).role == USER.ADMIN
    assert event_count() == 0


def test_a_bulk_change_records_only_the_accounts_it_changed(web, auth, browser, people):
    admin = sign_in(auth, people["admin"])
    already = factories.StaffFactory()
    changing = people["user"]

    # The admin themself is refused, the staff member is unchanged, one account changes.
    ids = [admin.id, already.id, changing.id]
    response = input_action(web, browser, "user", "set_role", ids, {"role": str(USER.STAFF)})

    assert response.status_code == 302
    event = one_event()
    assert (event.action, event.object_id) == ("set_role", str(changing.id))
    assert user_row(admin.id).role == USER.ADMIN


def test_staff_refused_on_a_staff_account_write_no_event(web, auth, browser, people):
    sign_in(auth, people["staff"])
    other_staff = factories.StaffFactory()

    response = input_action(web, browser, "user", "deactivate", [other_staff.id], {"reason": "No"})

    assert response.status_code == 302
    assert user_row(other_staff.id).status == USER.ACTIVE
    assert event_count() == 0


@pytest.mark.parametrize(
    ("role", "endpoint", "action"),
    [
        ("staff", "user", "set_role"),
        ("staff", "email", "delete"),
        ("user", "post", "hide"),
        ("user", "comment", "delete"),
    ],
)
def test_crafted_posts_without_the_permission_write_no_event(
    web, auth, people, role, endpoint, action
):
    sign_in(auth, people[role])
    target = {
        "user": lambda: people["other"],
        "email": factories.EmailFactory,
        "post": lambda: factories.PostFactory(author=people["other"]),
        "comment": lambda: factories.CommentFactory(author=people["other"]),
    }[endpoint]()

    response = admin_action(web, endpoint, action, [target.id])

    assert response.status_code == 403
    assert event_count() == 0


def test_a_post_without_the_csrf_token_writes_no_event(web, auth, people):
    sign_in(auth, people["admin"])
    post = factories.PostFactory(author=people["user"])

    response = web.post("/admin/post/action/", data={"action": "hide", "rowid": [post.id]})

    assert response.status_code == 400
    assert event_count() == 0


@pytest.mark.parametrize(
    ("action", "role", "state"),
    [
        ("retry", "staff", EMAIL.SENT),
        ("cancel", "staff", EMAIL.SENT),
        ("delete", "admin", EMAIL.SENDING),
    ],
)
def test_queue_actions_that_change_nothing_write_no_event(web, auth, people, action, role, state):
    sign_in(auth, people[role])
    email_id = factories.EmailFactory(state=state).id

    response = admin_action(web, "email", action, [email_id])

    assert response.status_code == 302
    assert db.session.get(Email, email_id).state == state
    assert event_count() == 0


def test_a_broadcast_to_nobody_writes_no_event(web, auth, browser, people):
    sign_in(auth, people["admin"])

    response = browser.submit(
        "/admin/email_compose/",
        {
            "audience": "group",
            "role": str(USER.STAFF),
            "status": str(USER.NEW),
            "subject": "News",
            "body": "Nobody gets this.",
            "confirm": "1",
        },
    )

    assert response.status_code == 302
    assert db.session.execute(select(func.count(Email.id))).scalar_one() == 0
    assert event_count() == 0


def test_queue_commands_that_change_nothing_write_no_event(runner):
    sent = factories.EmailFactory(state=EMAIL.SENT).id

    for args in (
        ["emails", "retry", "--id", str(sent)],
        ["emails", "retry", "--failed"],
        ["emails", "cancel", "--id", str(sent)],
        ["emails", "purge", "--older-than", "30"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)

    assert event_count() == 0


@pytest.mark.parametrize(
    "args",
    [
        ["users", "set-role", "ada@example.com", "user"],  # the last active admin
        ["users", "set-status", "ada@example.com", "inactive"],
        ["users", "set-role", "uma@example.com", "owner"],
        ["users", "set-role", "nobody@example.com", "staff"],
        ["users", "set-role", "uma@example.com", "user"],  # nothing to change
    ],
)
def test_refused_or_empty_cli_changes_write_no_event(runner, people, args):
    runner.invoke(args=args)

    assert event_count() == 0


def test_a_refused_password_writes_no_event(runner, people):
    result = runner.invoke(
        args=["users", "set-password", "uma@example.com", "--password-stdin"], input="password\n"
    )

    assert result.exit_code == 1
    assert event_count() == 0


# -- secrets are masked before they are stored ------------------------------------


def test_secret_fields_are_masked_by_record_and_diff(app):
    event = audit.record(
        "update",
        "user",
        1,
        summary="Changed things",
        changes={
            "password_hash": ["scrypt:old", "scrypt:new"],
            "api_token": ["t0k3n-a", "t0k3n-b"],
            "name": ["A", "B"],
        },
    )
    db.session.commit()

    assert event.changes["name"] == ["A", "B"]
    text = serialised(event)
    for secret in ("scrypt:old", "scrypt:new", "t0k3n-a", "t0k3n-b"):
        assert secret not in text
    changed = audit.diff({"secret_key": "a", "name": "x"}, {"secret_key": "b", "name": "x"})
    assert list(changed) == ["secret_key"]
    assert "a" not in changed["secret_key"] and "b" not in changed["secret_key"]


# -- the audit screen ------------------------------------------------------------------


def add_event(**values):
    defaults = {
        "created_at": datetime.now(UTC),
        "actor_label": "Ada Admin <ada@example.com>",
        "source": "admin",
        "address": "192.0.2.1",
        "action": "set_role",
        "object_type": "user",
        "object_id": "1",
        "summary": "An event",
        "changes": {},
    }
    event = AuditEvent(**{**defaults, **values})
    db.session.add(event)
    db.session.commit()
    return event


@pytest.mark.parametrize(
    ("role", "expected"), [(None, "login"), ("user", 403), ("staff", 403), ("admin", 200)]
)
def test_audit_screen_is_for_admins_only(client, auth, people, role, expected):
    event = add_event(summary="Visible to admins only")
    if role is not None:
        sign_in(auth, people[role])

    for path in ("/admin/audit/", f"/admin/audit/details/?id={event.id}"):
        response = client.get(path)
        if expected == "login":
            assert response.status_code == 302
            assert response.headers["Location"].startswith("/users/login/")
        else:
            assert response.status_code == expected, path
            assert ("Visible to admins only" in response.get_data(as_text=True)) is (
                expected == 200
            )
    page = client.get("/admin/").get_data(as_text=True) if role in ("staff", "admin") else ""
    assert ("/admin/audit/" in page) is (role == "admin")


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_audit_screen_is_read_only(client, auth, people, role):
    event = add_event(summary="History")
    sign_in(auth, people[role])
    csrf = token(client)

    for path, data in [
        ("/admin/audit/new/", {"summary": "Forged", "action": "delete", "object_type": "user"}),
        (f"/admin/audit/edit/?id={event.id}", {"summary": "Forged"}),
        ("/admin/audit/delete/", {"id": str(event.id)}),
        ("/admin/audit/ajax/update/", {"list_form_pk": str(event.id), "summary": "Forged"}),
        ("/admin/audit/action/", {"action": "delete", "rowid": [str(event.id)]}),
    ]:
        response = client.post(path, data={"csrf_token": csrf, **data})
        assert response.status_code == 403, path
    for path in (
        "/admin/audit/new/",
        f"/admin/audit/edit/?id={event.id}",
        "/admin/audit/export/csv/",
    ):
        assert client.get(path).status_code == 403, path
    assert [e.summary for e in events()] == ["History"]
    page = client.get("/admin/audit/").get_data(as_text=True) if role == "admin" else ""
    assert "/admin/audit/edit/" not in page and "/admin/audit/delete/" not in page
    assert "/admin/audit/new/" not in page


def filter_arg(client, label, operation):
    """The URL argument of the audit list's filter on ``label`` with ``operation``."""
    view = next(
        v for v in client.application.extensions["admin"][0]._views if v.endpoint == "audit"
    )
    for index, flt in enumerate(view._filters):
        if flt.name == label and flt.operation() == operation:
            return f"flt0_{view.get_filter_arg(index, flt)}"
    raise AssertionError(f"no filter {label} {operation}")


def summaries(response):
    assert response.status_code == 200
    return set(re.findall(r"\b(Event [A-Z])\b", response.get_data(as_text=True)))


def test_audit_filters_by_actor_object_action_and_date(client, auth, people):
    now = datetime.now(UTC).replace(microsecond=0)
    add_event(summary="Event A", actor_label="Sam Staff <sam@example.com>", action="set_status")
    add_event(
        summary="Event B", object_type="post", action="delete", created_at=now - timedelta(days=10)
    )
    add_event(summary="Event C", object_type="comment", action="approve", source="site")
    add_event(
        summary="Event D",
        actor_label="manage.py users set-role (run by ops)",
        source="cli",
        address=None,
        created_at=now - timedelta(days=40),
    )
    sign_in(auth, people["admin"])

    def listed(label, operation, value):
        return summaries(
            client.get("/admin/audit/", query_string={filter_arg(client, label, operation): value})
        )

    assert summaries(client.get("/admin/audit/")) == {"Event A", "Event B", "Event C", "Event D"}
    assert listed("Who", "contains", "sam@example.com") == {"Event A"}
    assert listed("Who", "contains", "set-role") == {"Event D"}
    assert listed("Object", "equals", "post") == {"Event B"}
    assert listed("Action", "equals", "approve") == {"Event C"}
    assert listed("Source", "equals", "cli") == {"Event D"}
    since = (now - timedelta(days=20)).strftime("%Y-%m-%d %H:%M:%S")
    assert listed("When", "greater than", since) == {"Event A", "Event B", "Event C"}
    start, end = now - timedelta(days=15), now - timedelta(days=5)
    window = f"{start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S}"
    assert listed("When", "between", window) == {"Event B"}


def test_audit_list_is_newest_first(client, auth, people):
    now = datetime.now(UTC)
    add_event(summary="Event B", created_at=now - timedelta(hours=1))
    add_event(summary="Event A", created_at=now)
    add_event(summary="Event C", created_at=now - timedelta(days=1))
    sign_in(auth, people["admin"])

    page = client.get("/admin/audit/").get_data(as_text=True)

    assert [m for m in re.findall(r"\bEvent [A-C]\b", page)] == ["Event A", "Event B", "Event C"]


def test_audit_details_show_each_field_from_old_to_new(client, auth, people):
    event = add_event(
        summary="Renamed",
        changes={
            "name": ["<b>Old</b> name", "New name"],
            "role": ["user", "staff"],
            "reason": [None, "Asked"],
        },
    )
    sign_in(auth, people["admin"])

    page = client.get(f"/admin/audit/details/?id={event.id}").get_data(as_text=True)

    rows = [
        tuple(html.unescape(cell) for cell in row)
        for row in re.findall(
            r"<tr><th>([^<]*)</th><td>(.*?)</td><td>→</td><td>(.*?)</td></tr>", page
        )
    ]
    assert ("role", "user", "staff") in rows
    assert ("name", "<b>Old</b> name", "New name") in rows
    assert any(row[0] == "reason" and row[2] == "Asked" and "—" in row[1] for row in rows)
    assert "<b>Old</b>" not in page  # values are shown as text, never as markup
    for text in ("Ada Admin &lt;ada@example.com&gt;", "192.0.2.1", "set_role"):
        assert text in page


def test_a_real_change_shows_up_on_the_audit_screen(web, auth, browser, people):
    sign_in(auth, people["admin"])
    target = people["user"]
    input_action(web, browser, "user", "set_role", [target.id], {"role": str(USER.STAFF)})
    event = one_event(action="set_role")

    listing = web.get("/admin/audit/").get_data(as_text=True)
    details = web.get(f"/admin/audit/details/?id={event.id}").get_data(as_text=True)

    assert html.escape(event.summary, quote=False) in listing
    assert ADDRESS in listing
    assert "<tr><th>role</th><td>user</td><td>→</td><td>staff</td></tr>" in details


# -- the names events use ------------------------------------------------------


def test_the_audit_screen_filters_on_every_action_object_type_and_source():
    from admin_views.audit import AuditView

    choices = AuditView.column_choices
    assert [value for value, _label in choices["action"]] == list(AUDIT.ACTIONS)
    assert [value for value, _label in choices["object_type"]] == list(AUDIT.OBJECT_TYPES)
    assert dict(choices["source"]) == AUDIT.SOURCES


def test_the_services_name_actions_and_objects_by_their_constants():
    # A misspelt literal would record an action the screen cannot filter on.
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "portal"
    literals = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                named = node.args[:2]
                if any(isinstance(arg, ast.Constant) for arg in named):
                    literals.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert literals == []
