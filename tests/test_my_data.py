"""Your data: download it (at once, or built in the background) and delete the account."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.comments.models import Comment
from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.emails.queue import deliver_batch
from portal.emails.transports import outbox
from portal.extensions import db
from portal.posts.models import Post
from portal.privacy import constants as PRIVACY
from portal.privacy.models import DataExport
from portal.users import constants as USER
from portal.users import mfa
from portal.users.models import User
from portal.users.models import UserSession
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.test_mfa import Clock
from tests.test_mfa import code_at
from tests.test_mfa import enrolled
from tests.test_mfa import sign_in

PROFILE = "/users/me/"
EXPORT = "/users/me/data/"
DELETE = "/users/me/delete/"
# Only a secret's own value in the file would match these.
FORBIDDEN = ("password_hash", "scrypt:", "token_hash", "code_hash", "secret")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(mfa, "now", moved)
    return moved


@pytest.fixture
def member(app):
    user = factories.UserFactory(email="member@example.com", name="Mia Member")
    post = factories.PostFactory(author=user, title="Mia's post", body="My own words.")
    factories.CommentFactory(author=user, post=post, body="A comment of mine.")
    factories.EmailFactory(to_address="Member@example.com", subject="Hello Mia")
    factories.EmailFactory(
        to_address="member@example.com",
        subject="Reset",
        text_body="https://portal/reset/SECRET-TOKEN",
        sensitive=True,
    )
    factories.EmailFactory(to_address="someone@example.com", subject="Not Mia's")
    return user


def download(client) -> dict:
    response = Browser(client).submit(EXPORT, token_from=PROFILE)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    for word in FORBIDDEN:
        assert word not in text.lower(), word
    return json.loads(text)


def test_a_small_export_downloads_at_once_with_everything_and_no_secrets(app, client, member):
    AuthActions(client).login("member@example.com")
    data = download(client)
    assert data["format"] == PRIVACY.FORMAT_NAME
    account = data["account"]
    assert (account["email"], account["name"], account["role"]) == (
        "member@example.com",
        "Mia Member",
        "user",
    )
    assert account["sessions"] and "token" not in json.dumps(account["sessions"])
    assert [post["title"] for post in data["posts"]] == ["Mia's post"]
    assert [comment["body"] for comment in data["comments"]] == ["A comment of mine."]
    assert data["reports"] == []
    subjects = {email["subject"]: email["text_body"] for email in data["emails"]}
    assert set(subjects) == {"Hello Mia", "Reset"}
    assert subjects["Reset"] is None  # a body with an account link stays out
    assert "SECRET-TOKEN" not in json.dumps(data)
    # Signing in is an audit event of the account's own.
    assert any(
        event["action"] == "sign_in" and event["by"] == "you" for event in data["audit_events"]
    )
    assert db.session.execute(select(func.count(DataExport.id))).scalar_one() == 0


def test_the_export_needs_a_signed_in_post(app, client, member):
    assert client.post(EXPORT).status_code in (302, 400)
    AuthActions(client).login("member@example.com")
    assert client.get(EXPORT).status_code == 405


def test_a_large_export_is_built_in_the_background_and_mailed_as_a_link(
    app, client, runner, member
):
    app.config["DATA_EXPORT_INLINE_MAX_ROWS"] = 1
    auth = AuthActions(client)
    auth.login("member@example.com")
    queued = Browser(client).submit(EXPORT, token_from=PROFILE)
    assert queued.status_code == 302
    again = Browser(client).submit(EXPORT, token_from=PROFILE)
    assert again.status_code == 302
    [export] = db.session.execute(select(DataExport)).scalars().all()
    assert export.state == PRIVACY.QUEUED
    built = runner.invoke(args=["privacy", "build-exports"])
    assert built.exit_code == 0, built.output
    assert "Built 1 export(s), 0 failed." in built.output
    db.session.expire_all()
    assert db.session.get(DataExport, export.id).state == PRIVACY.READY
    outbox(app).clear()
    deliver_batch()
    [message] = [m for m in outbox(app) if "data is ready" in m["Subject"]]
    assert message["To"] == "member@example.com"
    assert "List-Unsubscribe" not in message
    link = re.search(r"https?://\S+/users/me/data/\S+/", message.get_body(("plain",)).get_content())
    assert link
    path = "/" + link.group(0).split("/", 3)[3]

    # Another account's session cannot use the link; a visitor is asked to sign in.
    factories.UserFactory(email="other@example.com")
    other = app.test_client()
    AuthActions(other).login("other@example.com")
    assert other.get(path).status_code == 400
    assert app.test_client().get(path).status_code == 302

    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = json.loads(response.get_data(as_text=True))
    assert data["account"]["email"] == "member@example.com"
    assert [post["title"] for post in data["posts"]] == ["Mia's post"]
    assert client.get(path[:-5] + "xxxx/").status_code == 400


# -- deleting the account -------------------------------------------------------------


def delete(client, **fields):
    data = {"password": factories.PASSWORD, "content": PRIVACY.DELETE_CONTENT, **fields}
    return Browser(client).submit(DELETE, data)


def still_there(email: str) -> bool:
    db.session.expire_all()
    return (
        db.session.execute(select(User).where(User.email == email)).scalar_one_or_none() is not None
    )


def test_a_wrong_password_changes_nothing(app, client, member):
    AuthActions(client).login("member@example.com")
    response = delete(client, password="not-the-password-at-all")
    assert response.status_code == 200
    assert "password is not correct" in response.get_data(as_text=True)
    assert still_there("member@example.com")
    assert client.get(PROFILE).status_code == 200


def test_deleting_with_its_content_signs_out_and_sends_a_confirmation(app, client, member):
    AuthActions(client).login("member@example.com")
    assert "Delete my account" in client.get(PROFILE).get_data(as_text=True)
    response = delete(client)
    assert response.status_code == 302
    assert not still_there("member@example.com")
    assert db.session.execute(select(func.count(Post.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(Comment.id))).scalar_one() == 0
    assert db.session.execute(select(func.count(UserSession.id))).scalar_one() == 0
    [notice] = (
        db.session.execute(select(Email).where(Email.subject.like("%account is deleted%")))
        .scalars()
        .all()
    )
    assert (notice.to_address, notice.category) == ("member@example.com", EMAIL.ACCOUNT)
    assert "deleted with it" in notice.text_body
    assert client.get(PROFILE).status_code == 302


def test_deleting_but_keeping_the_content_moves_it_to_deleted_user(app, client, member):
    AuthActions(client).login("member@example.com")
    assert delete(client, content=PRIVACY.KEEP_CONTENT).status_code == 302
    assert not still_there("member@example.com")
    post = db.session.execute(select(Post)).scalar_one()
    assert post.author.handle == USER.DELETED_HANDLE
    assert db.session.execute(select(Comment)).scalar_one().author.handle == USER.DELETED_HANDLE


def test_a_missing_content_choice_is_refused(app, client, member):
    AuthActions(client).login("member@example.com")
    response = Browser(client).submit(DELETE, {"password": factories.PASSWORD})
    assert response.status_code == 200
    assert still_there("member@example.com")


def test_with_a_second_factor_a_wrong_code_changes_nothing_and_a_good_one_deletes(app, clock):
    _user, secret, _codes = enrolled(app, clock, "safe@example.com")
    client = app.test_client()
    sign_in(client, "safe@example.com", code_at(secret, clock.now))
    clock.advance(mfa.TIME_STEP_SECONDS)
    assert delete(client).status_code == 200  # no code
    assert delete(client, code="000000").status_code == 200
    assert still_there("safe@example.com")
    assert delete(client, code=code_at(secret, clock.now)).status_code == 302
    assert not still_there("safe@example.com")


def test_the_last_active_admin_cannot_delete_themselves(app, client):
    factories.AdminFactory(email="only@example.com")
    AuthActions(client).login("only@example.com")
    response = delete(client)
    assert response.status_code == 200
    assert "last active admin" in response.get_data(as_text=True)
    assert still_there("only@example.com")
    factories.AdminFactory(email="second@example.com")
    assert delete(client).status_code == 302
    assert not still_there("only@example.com")
