"""Accounts through the admin screens: the invariants, invitations, deletion, deactivation, search.

Whatever route a request takes (the list's action, the action's page, the
edit form, the delete confirmation, a crafted POST), the account rules of
DESIGN §2 hold: nobody changes their own role or status, only an ADMIN
changes roles or touches STAFF and ADMIN accounts, and the last active ADMIN
stays an active ADMIN.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import security
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.database import utcnow
from portal.emails.models import Email
from portal.extensions import db
from portal.posts.models import Post
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import csrf_token
from tests.helpers import deliver
from tests.helpers import link_in
from tests.helpers import path_of
from tests.helpers import text_of

ALERT_RE = re.compile(r'<p class="alert alert-(\w+)">\s*(.*?)\s*</p>', re.S)
ROWID_RE = re.compile(r'name="rowid" class="action-checkbox" value="(\d+)"')


# -- helpers --------------------------------------------------------------------


def sign_in(client: FlaskClient, factory: Any, email: str, **fields: Any) -> User:
    user = factory(email=email, **fields)
    response = AuthActions(client).login(email)
    assert response.status_code == 302, "sign-in failed"
    return user


def token(client: FlaskClient) -> str:
    return csrf_token(client, "/users/me/")


def post(client: FlaskClient, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": token(client), **data})


def run_action(client: FlaskClient, name: str, users: list[User], **data: Any) -> Any:
    """Apply an account action the way its page does: POST ids and the page's fields."""
    ids = ",".join(str(user.id) for user in users)
    return post(client, f"/admin/user/action/{name}/", ids=ids, **data)


def messages(page: str) -> list[tuple[str, str]]:
    """The flashed messages on a page, as (category, text)."""
    return [(category, html.unescape(text)) for category, text in ALERT_RE.findall(page)]


def followed(client: FlaskClient, response: Any) -> str:
    """The page a redirect leads to (where its flashed messages show)."""
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client.get(response.headers["Location"]).get_data(as_text=True)


def errors(page: str) -> list[str]:
    return [text for category, text in messages(page) if category == "danger"]


def state(user_id: int) -> tuple[Any, ...] | None:
    """An account's role, status, name and session version, read fresh."""
    db.session.rollback()
    user = db.session.get(User, user_id)
    if user is None:
        return None
    return (user.role, user.status, user.name, user.session_version)


def count(model: Any) -> int:
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def listed(page: str) -> list[int]:
    """Ids of the rows a list page shows, in order."""
    return [int(value) for value in ROWID_RE.findall(page)]


# -- STAFF cannot raise a role or touch STAFF and ADMIN accounts ------------------


@pytest.mark.parametrize("whose", ["own", "another"])
@pytest.mark.parametrize("route", ["list action", "action page", "edit form"])
def test_staff_cannot_raise_a_role(client, whose, route):
    staff = sign_in(client, factories.StaffFactory, "staff@example.com")
    target = staff if whose == "own" else factories.UserFactory(email="user@example.com")
    before = state(target.id)
    audit_rows = count(AuditEvent)
    if route == "list action":
        response = post(client, "/admin/user/action/", action="set_role", rowid=str(target.id))
    elif route == "action page":
        response = run_action(client, "set_role", [target], role=str(USER.ADMIN))
    else:
        response = post(
            client,
            f"/admin/user/edit/?id={target.id}",
            name=target.name,
            role=str(USER.ADMIN),
            status=str(USER.ACTIVE),
        )
    assert response.status_code == 403
    assert state(target.id) == before
    assert count(AuditEvent) == audit_rows


def test_staff_cannot_edit_an_admin(client):
    sign_in(client, factories.StaffFactory, "staff@example.com")
    admin = factories.AdminFactory(email="admin@example.com")
    before = state(admin.id)
    assert client.get(f"/admin/user/edit/?id={admin.id}").status_code == 403
    assert client.get(f"/admin/user/action/set_role/?ids={admin.id}").status_code == 403
    response = post(
        client,
        f"/admin/user/edit/?id={admin.id}",
        name="Demoted",
        role=str(USER.USER),
        status=str(USER.INACTIVE),
    )
    assert response.status_code == 403
    assert state(admin.id) == before


@pytest.mark.parametrize("factory", [factories.StaffFactory, factories.AdminFactory])
@pytest.mark.parametrize(
    ("action", "start"), [("deactivate", USER.ACTIVE), ("activate", USER.INACTIVE)]
)
def test_staff_cannot_change_the_status_of_staff_or_admins(client, factory, action, start):
    sign_in(client, factories.StaffFactory, "staff@example.com")
    factories.AdminFactory(email="boss@example.com")
    target = factory(email="target@example.com", status=start)
    before = state(target.id)
    audit_rows, emails = count(AuditEvent), count(Email)

    response = run_action(client, action, [target], reason="Because", notify="y")

    assert errors(followed(client, response)) == [
        "target@example.com: Only an admin can change the status of a staff or admin account."
    ]
    assert state(target.id) == before
    assert (count(AuditEvent), count(Email)) == (audit_rows, emails)


def test_staff_cannot_deactivate_themselves(client):
    staff = sign_in(client, factories.StaffFactory, "staff@example.com")
    before = state(staff.id)
    response = run_action(client, "deactivate", [staff], reason="Leaving")
    assert errors(followed(client, response)) == [
        "staff@example.com: You cannot change your own status."
    ]
    assert state(staff.id) == before


def test_a_mixed_selection_changes_the_user_accounts_and_refuses_the_admin(client):
    sign_in(client, factories.StaffFactory, "staff@example.com")
    user = factories.UserFactory(email="user@example.com")
    admin = factories.AdminFactory(email="admin@example.com")
    response = run_action(client, "deactivate", [user, admin], reason="Spam wave")
    page = followed(client, response)
    assert ("success", "1 account(s) changed.") in messages(page)
    assert errors(page) == [
        "admin@example.com: Only an admin can change the status of a staff or admin account."
    ]
    assert state(user.id)[1] == USER.INACTIVE
    assert state(admin.id)[1] == USER.ACTIVE


def test_admins_change_the_status_and_role_of_staff(client):
    sign_in(client, factories.AdminFactory, "admin@example.com")
    staff = factories.StaffFactory(email="staff@example.com")
    followed(client, run_action(client, "deactivate", [staff], reason="Left the team"))
    assert state(staff.id)[1] == USER.INACTIVE
    followed(client, run_action(client, "set_role", [staff], role=str(USER.USER)))
    assert state(staff.id)[0] == USER.USER


# -- the last active ADMIN stays an active ADMIN ----------------------------------------


@pytest.fixture
def last_admin(client):
    """The only ACTIVE admin, and a signed-in admin who has not confirmed their address.

    The newcomer holds the admin permission but does not count as an active
    admin, so the boss is the last one.
    """
    boss = factories.AdminFactory(email="boss@example.com", name="The Boss")
    sign_in(
        client, factories.AdminFactory, "newcomer@example.com", status=USER.NEW, confirmed_at=None
    )
    return boss


def test_the_last_active_admin_cannot_be_demoted_by_the_action(client, last_admin):
    before = state(last_admin.id)
    response = run_action(client, "set_role", [last_admin], role=str(USER.STAFF))
    assert errors(followed(client, response)) == [f"boss@example.com: {security.LAST_ADMIN}"]
    assert state(last_admin.id) == before


def test_the_last_active_admin_cannot_be_disabled_by_the_action(client, last_admin):
    before = state(last_admin.id)
    response = run_action(client, "deactivate", [last_admin], reason="Oops", notify="y")
    assert errors(followed(client, response)) == [f"boss@example.com: {security.LAST_ADMIN}"]
    assert state(last_admin.id) == before
    assert count(Email) == 0


@pytest.mark.parametrize(
    ("role", "status"), [(USER.STAFF, USER.ACTIVE), (USER.ADMIN, USER.INACTIVE)]
)
def test_the_last_active_admin_cannot_be_demoted_or_disabled_by_the_edit_form(
    client, last_admin, role, status
):
    before = state(last_admin.id)
    response = post(
        client,
        f"/admin/user/edit/?id={last_admin.id}",
        name="Renamed Boss",
        role=str(role),
        status=str(status),
    )
    assert response.status_code == 200
    assert errors(response.get_data(as_text=True)) == [security.LAST_ADMIN]
    # Nothing at all is saved, not even the name typed with the refused change.
    assert state(last_admin.id) == before


def test_the_last_active_admin_cannot_be_deleted(client, last_admin):
    response = post(
        client, "/admin/user/delete/", id=str(last_admin.id), confirm="1", content="keep"
    )
    assert errors(followed(client, response)) == [security.LAST_ADMIN]
    assert state(last_admin.id) is not None


def test_with_a_second_active_admin_the_boss_can_be_demoted(client, last_admin):
    factories.AdminFactory(email="deputy@example.com")
    page = followed(client, run_action(client, "set_role", [last_admin], role=str(USER.STAFF)))
    assert errors(page) == []
    assert state(last_admin.id)[0] == USER.STAFF


# -- an ADMIN cannot demote, disable or delete themselves -------------------------------


@pytest.fixture
def admin(client):
    factories.AdminFactory(email="deputy@example.com")  # not the last admin either way
    return sign_in(client, factories.AdminFactory, "admin@example.com", name="Ada Admin")


def test_an_admin_cannot_change_their_own_role(client, admin):
    before = state(admin.id)
    response = run_action(client, "set_role", [admin], role=str(USER.STAFF))
    assert errors(followed(client, response)) == [
        "admin@example.com: You cannot change your own role."
    ]
    assert state(admin.id) == before


def test_an_admin_cannot_disable_themselves(client, admin):
    before = state(admin.id)
    response = run_action(client, "deactivate", [admin], reason="Tired")
    assert errors(followed(client, response)) == [
        "admin@example.com: You cannot change your own status."
    ]
    assert state(admin.id) == before


@pytest.mark.parametrize(
    ("role", "status"), [(USER.STAFF, USER.ACTIVE), (USER.ADMIN, USER.INACTIVE)]
)
def test_an_admin_cannot_demote_or_disable_themselves_in_the_edit_form(client, admin, role, status):
    before = state(admin.id)
    response = post(
        client, f"/admin/user/edit/?id={admin.id}", name="Ada", role=str(role), status=str(status)
    )
    assert response.status_code == 200
    assert errors(response.get_data(as_text=True)) == ["You cannot change your own role or status."]
    assert state(admin.id) == before


def test_an_admin_can_rename_themselves_in_the_edit_form(client, admin):
    response = post(
        client,
        f"/admin/user/edit/?id={admin.id}",
        name="Ada Lovelace",
        role=str(USER.ADMIN),
        status=str(USER.ACTIVE),
    )
    assert response.status_code == 302
    assert state(admin.id)[:3] == (USER.ADMIN, USER.ACTIVE, "Ada Lovelace")


def test_an_admin_cannot_delete_themselves(client, admin):
    response = post(client, "/admin/user/delete/", id=str(admin.id), confirm="1", content="keep")
    assert errors(followed(client, response)) == ["You cannot delete your own account here."]
    assert state(admin.id) is not None


def test_the_edit_form_shows_the_current_role_and_status(client, admin):
    staff = factories.StaffFactory(email="staff@example.com", status=USER.INACTIVE)
    page = client.get(f"/admin/user/edit/?id={staff.id}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{USER.STAFF}">staff</option>', page)
    assert re.search(rf'<option selected value="{USER.INACTIVE}">inactive</option>', page)


# -- invitations ------------------------------------------------------------------


def invite(client: FlaskClient, **fields: str) -> Any:
    data = {"name": "Iris Invited", "email": "iris@example.com", "role": str(USER.STAFF)}
    data.update(fields)
    return post(client, "/admin/user/new/", **data)


def test_an_invitation_creates_a_new_account_and_queues_a_set_password_link(app, client, admin):
    response = invite(client)
    assert response.status_code == 302
    assert ("success", "Invitation sent to iris@example.com.") in messages(
        client.get(response.headers["Location"]).get_data(as_text=True)
    )

    user = db.session.execute(select(User).where(User.email == "iris@example.com")).scalar_one()
    assert (user.name, user.role, user.status) == ("Iris Invited", USER.STAFF, USER.NEW)
    assert user.confirmed_at is None
    [email] = db.session.execute(select(Email)).scalars().all()
    assert email.to_address == "iris@example.com"
    # The link sets a password: staff browsing the queue must not be able to use it.
    assert email.sensitive is True
    [event] = db.session.execute(select(AuditEvent).where(AuditEvent.action == "create")).scalars()
    assert (event.object_type, event.object_id, event.actor_id) == ("user", str(user.id), admin.id)
    assert event.changes["role"] == [None, "staff"]

    [message] = [m for m in deliver(app) if m["To"] == "iris@example.com"]
    assert "Ada Admin" in text_of(message)
    link = path_of(link_in(message), app.config["PORTAL_BASE_URL"])
    assert link.startswith("/users/reset/")

    invited = app.test_client()
    assert invited.get(link).status_code == 200
    chosen = "velvet-harbour-93-kites"
    response = invited.post(
        link,
        data={"csrf_token": csrf_token(invited, link), "password": chosen, "confirm": chosen},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/login/"
    db.session.rollback()
    user = db.session.get(User, user.id)
    assert user.status == USER.ACTIVE and user.confirmed_at is not None
    assert user.check_password(chosen)
    assert AuthActions(invited).login("iris@example.com", chosen).status_code == 302
    assert invited.get("/admin/").status_code == 200
    # The link works once.
    assert app.test_client().get(link).status_code == 400


def test_an_invitation_to_a_taken_address_is_refused(client, admin):
    factories.UserFactory(email="Taken@Example.com")
    users = count(User)
    response = invite(client, email="taken@example.COM")
    assert response.status_code == 200
    assert errors(response.get_data(as_text=True)) == [
        "An account with this email address already exists."
    ]
    assert count(User) == users
    assert count(Email) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"role": "7"},
        {"email": ""},
        {"name": ""},
        {"email": "not an address"},
    ],
    ids=["unknown role", "no email", "no name", "bad email"],
)
def test_an_invitation_with_bad_fields_creates_nothing(client, admin, fields):
    users = count(User)
    response = invite(client, **fields)
    assert response.status_code == 200
    assert count(User) == users
    assert count(Email) == 0


def test_the_invitation_form_asks_for_no_password(client, admin):
    page = client.get("/admin/user/new/").get_data(as_text=True)
    assert 'name="email"' in page and 'name="role"' in page
    assert 'type="password"' not in page


# -- deleting an account -------------------------------------------------------------


@pytest.fixture
def author():
    """An author with a post (others commented on it) and comments under another post."""
    writer = factories.UserFactory(email="writer@example.com", name="Wendy Writer")
    reader = factories.UserFactory(email="reader@example.com")
    own = factories.PostFactory(author=writer, title="Wendy's post")
    factories.ApprovedCommentFactory.create_batch(2, post=own, author=reader)
    factories.CommentFactory(post=own, author=reader)
    other = factories.PostFactory(author=reader, title="Reader's post")
    factories.ApprovedCommentFactory(post=other, author=reader)
    factories.ApprovedCommentFactory(post=other, author=writer, body="Wendy was here")
    factories.CommentFactory(post=other, author=writer, body="Wendy waits")
    return {"writer": writer.id, "reader": reader.id, "own": own.id, "other": other.id}


def approved_on(post_id: int) -> int:
    return db.session.execute(
        select(func.count(Comment.id)).where(
            Comment.post_id == post_id, Comment.status == COMMENT.APPROVED
        )
    ).scalar_one()


def test_the_delete_page_says_what_goes_with_the_account(client, admin, author):
    response = post(client, "/admin/user/delete/", id=str(author["writer"]))
    assert response.status_code == 200
    page = " ".join(response.get_data(as_text=True).split())
    assert "Delete the account writer@example.com?" in page
    assert "wrote <strong>1</strong> post and <strong>2</strong> comments" in page
    assert state(author["writer"]) is not None


def test_delete_and_keep_moves_the_content_to_the_deleted_user(client, admin, author):
    posts, comments = count(Post), count(Comment)
    response = post(
        client, "/admin/user/delete/", id=str(author["writer"]), confirm="1", content="keep"
    )
    assert ("success", "The account writer@example.com is deleted.") in messages(
        followed(client, response)
    )
    assert state(author["writer"]) is None
    assert (count(Post), count(Comment)) == (posts, comments)
    placeholder = db.session.execute(
        select(User).where(User.handle == USER.DELETED_HANDLE)
    ).scalar_one()
    assert placeholder.name == "Deleted user"
    assert placeholder.status == USER.INACTIVE
    assert db.session.get(Post, author["own"]).author_id == placeholder.id
    moved = db.session.execute(
        select(Comment.body).where(Comment.author_id == placeholder.id)
    ).scalars()
    assert sorted(moved) == ["Wendy waits", "Wendy was here"]
    for post_id in (author["own"], author["other"]):
        assert db.session.get(Post, post_id).comment_count == approved_on(post_id) == 2
    [event] = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "delete", AuditEvent.object_type == "user")
    ).scalars()
    assert event.object_id == str(author["writer"])
    assert event.changes["email"] == ["writer@example.com", None]
    # The public page names the placeholder, not the deleted person.
    page = client.get(f"/posts/{db.session.get(Post, author['own']).slug}/")
    assert "Deleted user" in page.get_data(as_text=True)
    assert "Wendy Writer" not in page.get_data(as_text=True)


def test_every_kept_account_shares_one_placeholder(client, admin, author):
    reader = author["reader"]
    for user_id in (author["writer"], reader):
        post(client, "/admin/user/delete/", id=str(user_id), confirm="1", content="keep")
    db.session.rollback()
    placeholders = db.session.execute(
        select(User).where(User.handle == USER.DELETED_HANDLE)
    ).scalars()
    [placeholder] = list(placeholders)
    authors = set(db.session.execute(select(Post.author_id)).scalars())
    assert authors == {placeholder.id}


def test_delete_with_content_removes_their_posts_and_comments_and_keeps_counts_exact(
    client, admin, author
):
    response = post(
        client, "/admin/user/delete/", id=str(author["writer"]), confirm="1", content="delete"
    )
    assert response.status_code == 302
    db.session.rollback()
    assert state(author["writer"]) is None
    # Their post and every comment under it, whoever wrote them.
    assert db.session.get(Post, author["own"]) is None
    assert (
        db.session.execute(
            select(func.count(Comment.id)).where(Comment.post_id == author["own"])
        ).scalar_one()
        == 0
    )
    # Their comments elsewhere; the other comments stay, and the count is exact.
    remaining = db.session.execute(
        select(Comment.author_id).where(Comment.post_id == author["other"])
    ).scalars()
    assert list(remaining) == [author["reader"]]
    assert db.session.get(Post, author["other"]).comment_count == approved_on(author["other"]) == 1
    assert (
        db.session.execute(
            select(func.count(User.id)).where(User.handle == USER.DELETED_HANDLE)
        ).scalar_one()
        == 0
    )


def test_a_deleted_account_id_is_answered_with_a_message(client, admin):
    response = post(client, "/admin/user/delete/", id="9999", confirm="1", content="keep")
    assert errors(followed(client, response)) == ["That account no longer exists."]


# -- deactivating with a reason ----------------------------------------------------------


def test_deactivate_with_a_reason_and_notify(app, client):
    member = factories.UserFactory(email="member@example.com", name="Mo Member")
    session = app.test_client()
    AuthActions(session).login("member@example.com")
    assert session.get("/users/me/").status_code == 200
    staff = sign_in(client, factories.StaffFactory, "staff@example.com")

    page = client.get(f"/admin/user/action/deactivate/?ids={member.id}").get_data(as_text=True)
    assert "Mo Member &lt;member@example.com&gt;" in page
    response = run_action(client, "deactivate", [member], reason="Posting spam links", notify="y")
    assert ("success", "1 account(s) changed.") in messages(followed(client, response))

    assert state(member.id)[1] == USER.INACTIVE
    # Their open session ends at its next request.
    response = session.get("/users/me/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")
    [email] = db.session.execute(select(Email)).scalars().all()
    assert email.to_address == "member@example.com"
    assert "disabled" in email.subject
    assert "Reason given: Posting spam links" in email.text_body
    [event] = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "set_status")
    ).scalars()
    assert event.actor_id == staff.id
    assert event.source == "admin"
    assert event.object_id == str(member.id)
    assert event.changes == {
        "status": ["active", "inactive"],
        "reason": [None, "Posting spam links"],
    }


def test_deactivate_without_notify_sends_nothing(client):
    member = factories.UserFactory(email="member@example.com")
    sign_in(client, factories.StaffFactory, "staff@example.com")
    run_action(client, "deactivate", [member], reason="Quiet")
    assert state(member.id)[1] == USER.INACTIVE
    assert count(Email) == 0


def test_deactivate_needs_a_reason(client):
    member = factories.UserFactory(email="member@example.com")
    sign_in(client, factories.StaffFactory, "staff@example.com")
    before, audit_rows = state(member.id), count(AuditEvent)
    response = run_action(client, "deactivate", [member], reason="")
    assert response.status_code == 200
    assert "This field is required." in response.get_data(as_text=True)
    assert state(member.id) == before
    assert count(AuditEvent) == audit_rows


def test_activate_confirms_a_new_account_and_emails_it(client):
    member = factories.NewUserFactory(email="member@example.com")
    sign_in(client, factories.StaffFactory, "staff@example.com")
    run_action(client, "activate", [member], reason="", notify="y")
    db.session.rollback()
    user = db.session.get(User, member.id)
    assert user.status == USER.ACTIVE and user.confirmed_at is not None
    [email] = db.session.execute(select(Email)).scalars().all()
    assert "active" in email.subject


def test_an_empty_selection_is_answered_with_a_message(client):
    sign_in(client, factories.StaffFactory, "staff@example.com")
    response = run_action(client, "deactivate", [], reason="x")
    assert errors(followed(client, response)) == ["Select at least one row first."]


# -- search, filters, sort -------------------------------------------------------------


@pytest.fixture
def people():
    return {
        "ann": factories.UserFactory(name="Ann Lee", email="ann_lee@example.com").id,
        "annex": factories.UserFactory(name="Annex Team", email="annxlee@example.com").id,
        "bob": factories.StaffFactory(name="Bob Stone", email="bob@example.com").id,
        "cy": factories.InactiveUserFactory(name="Cy Dorm", email="cy@example.com").id,
    }


def search(client: FlaskClient, term: str) -> set[int]:
    response = client.get("/admin/user/", query_string={"search": term})
    assert response.status_code == 200
    return set(listed(response.get_data(as_text=True)))


def test_search_matches_every_word_anywhere_in_any_column_ignoring_case(client, people):
    sign_in(client, factories.StaffFactory, "staff@example.com")
    assert search(client, "ANN") == {people["ann"], people["annex"]}
    assert search(client, "bob") == {people["bob"]}
    assert search(client, "BOB@Example.com") == {people["bob"]}
    # The middle of a name or an address finds it too.
    assert search(client, "stone") == {people["bob"]}
    assert search(client, "dorm") == {people["cy"]}
    # Every word must match, each in any column: "lee" is in Annex's address.
    assert search(client, " Ann   Lee ") == {people["ann"], people["annex"]}
    assert search(client, "Bob Stone") == {people["bob"]}
    assert search(client, "Ann Stone") == set()
    assert len(search(client, "example.com")) == 5


def test_search_treats_percent_and_underscore_as_plain_characters(client, people):
    sign_in(client, factories.StaffFactory, "staff@example.com")
    assert search(client, "ann_") == {people["ann"]}
    assert search(client, "%lee") == set()
    assert search(client, "_nn") == set()
    assert search(client, "ann\\") == set()


def filter_arg(page: str, label: str, operation: str) -> str:
    data = re.search(r'<div id="filter-groups-data" class="d-none">(.*?)</div>', page, re.S)
    assert data
    groups = json.loads(html.unescape(data.group(1)))
    [arg] = [item["arg"] for item in groups[label] if item["operation"] == operation]
    return f"flt0_{arg}"


def test_filters_by_role_and_status(client, people):
    staff = sign_in(client, factories.StaffFactory, "staff@example.com")
    page = client.get("/admin/user/").get_data(as_text=True)
    by_role = filter_arg(page, "Role", "equals")
    by_status = filter_arg(page, "Status", "equals")
    shown = client.get("/admin/user/", query_string={by_role: USER.STAFF}).get_data(as_text=True)
    assert set(listed(shown)) == {people["bob"], staff.id}
    shown = client.get("/admin/user/", query_string={by_status: USER.INACTIVE}).get_data(
        as_text=True
    )
    assert set(listed(shown)) == {people["cy"]}


def test_sort_by_last_sign_in(client, people):
    now = utcnow()
    for offset, key in enumerate(["bob", "ann", "cy"]):
        user = db.session.get(User, people[key])
        user.last_login_at = now - timedelta(days=10 - offset)
    db.session.commit()
    staff = sign_in(client, factories.StaffFactory, "staff@example.com")
    page = client.get("/admin/user/").get_data(as_text=True)
    link = re.search(r'href="([^"]+)" title="Sort by Last sign-in"', page)
    assert link
    ascending = client.get(html.unescape(link.group(1))).get_data(as_text=True)
    signed_in = [people["bob"], people["ann"], people["cy"], staff.id]
    assert [row for row in listed(ascending) if row in signed_in] == signed_in
    descending = client.get(html.unescape(link.group(1)) + "&desc=1").get_data(as_text=True)
    assert [row for row in listed(descending) if row in signed_in] == signed_in[::-1]


def test_the_default_order_is_newest_first_and_email_does_not_sort(client, people):
    staff = sign_in(client, factories.StaffFactory, "staff@example.com")
    page = client.get("/admin/user/").get_data(as_text=True)
    assert listed(page) == sorted([*people.values(), staff.id], reverse=True)
    assert 'title="Sort by Email"' not in page
    assert 'title="Sort by Name"' not in page


# -- the password hash never leaves the database -----------------------------------------


def hashes() -> list[str]:
    db.session.rollback()
    return list(db.session.execute(select(User.password_hash)).scalars())


def assert_no_hash(text: str) -> None:
    for value in hashes():
        salt_and_digest = value.split("$", 1)[1]
        assert salt_and_digest not in text
        for part in value.split("$")[1:]:
            assert part not in text
    assert "password_hash" not in text.lower()


def test_the_password_hash_is_on_no_admin_page(client, people):
    # A real, unique hash (the factory's default is shared by every account).
    target = factories.UserFactory(
        email="hashed@example.com", name="Hashed Person", password="sturdy-maple-61-drums"
    )
    sign_in(client, factories.AdminFactory, "admin@example.com")
    page = client.get("/admin/user/").get_data(as_text=True)
    pages = {
        "list": page,
        "details": client.get(f"/admin/user/details/?id={target.id}").get_data(as_text=True),
        "edit": client.get(f"/admin/user/edit/?id={target.id}").get_data(as_text=True),
        "export": client.get("/admin/user/export/csv/").get_data(as_text=True),
        "search": client.get("/admin/user/?search=hashed").get_data(as_text=True),
        "filter": client.get(
            "/admin/user/", query_string={filter_arg(page, "Role", "equals"): USER.USER}
        ).get_data(as_text=True),
        "delete page": post(client, "/admin/user/delete/", id=str(target.id)).get_data(
            as_text=True
        ),
        "action page": client.get(f"/admin/user/action/deactivate/?ids={target.id}").get_data(
            as_text=True
        ),
    }
    assert "hashed@example.com" in pages["export"]
    for name, text in pages.items():
        assert "Hashed Person" in text or "hashed@example.com" in text, name
        assert_no_hash(text)
    assert "password" not in pages["export"].splitlines()[0].lower()
    filters = re.search(r'id="filter-groups-data"[^>]*>(.*?)</div>', page, re.S)
    assert filters and "password" not in filters[1].lower()


def test_searching_for_part_of_a_hash_finds_nothing(client, people):
    factories.UserFactory(email="hashed@example.com", password="sturdy-maple-61-drums")
    sign_in(client, factories.StaffFactory, "staff@example.com")
    [value] = [value for value in hashes() if value != factories._HASH]
    method, salt, digest = value.split("$")
    for term in (method, method.split(":")[0], salt[:6], digest[:8], value):
        assert search(client, term) == set(), term


def test_a_crafted_filter_or_sort_on_the_hash_is_ignored(client, people):
    sign_in(client, factories.StaffFactory, "staff@example.com")
    everyone = set(listed(client.get("/admin/user/").get_data(as_text=True)))
    for query in (
        {"flt0_password_hash_equals": "x"},
        {"flt0_99": "scrypt"},
        {"sort": "99"},
        {"sort": "password_hash"},
    ):
        response = client.get("/admin/user/", query_string=query)
        assert response.status_code == 200
        assert set(listed(response.get_data(as_text=True))) == everyone, query
