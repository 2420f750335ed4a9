"""Who may open the account pages and /admin/: every role, by GET and by crafted POST."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.extensions import db
from portal.users import constants as USER
from portal.users.models import User
from tests import factories

ROLES = {
    "user": factories.UserFactory,
    "new": factories.NewUserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}

LOGIN = "/users/login/?next="

# (role, path, expected status) for GET; None as role is an anonymous visitor.
PAGES = ["/users/me/", "/users/me/edit/", "/users/me/password/", "/admin/"]
EXPECTED = {
    None: {path: 302 for path in PAGES},
    "user": {"/users/me/": 200, "/users/me/edit/": 200, "/users/me/password/": 200, "/admin/": 403},
    "new": {"/users/me/": 200, "/users/me/edit/": 200, "/users/me/password/": 200, "/admin/": 403},
    "staff": {path: 200 for path in PAGES},
    "admin": {path: 200 for path in PAGES},
}
CASES = [(role, path, EXPECTED[role][path]) for role in EXPECTED for path in PAGES]


def sign_in_as(role, auth):
    if role is None:
        return None
    user = ROLES[role](email=f"{role}@example.com")
    auth.login(user.email)
    return user


@pytest.mark.parametrize(("role", "path", "expected"), CASES)
def test_get_access(client, auth, role, path, expected):
    sign_in_as(role, auth)
    response = client.get(path)
    assert response.status_code == expected
    if expected == 302:
        assert response.headers["Location"] == LOGIN + path


@pytest.mark.parametrize("path", PAGES)
def test_account_disabled_after_sign_in_loses_access_at_once(client, auth, path):
    user = sign_in_as("admin", auth)
    factories.AdminFactory(email="other-admin@example.com")  # keeps an active admin
    assert client.get(path).status_code == 200
    account = db.session.get(User, user.id)
    account.status = USER.INACTIVE
    db.session.commit()
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == LOGIN + path


def test_role_lowered_after_sign_in_takes_effect_at_the_next_request(client, auth):
    user = sign_in_as("staff", auth)
    assert client.get("/admin/").status_code == 200
    account = db.session.get(User, user.id)
    account.role = USER.USER
    db.session.commit()
    assert client.get("/admin/").status_code == 403


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/users/me/edit/", {"name": "Mallory", "email": "mallory@example.com"}),
        (
            "/users/me/password/",
            {"current_password": "x", "password": "mossy-violin-9", "confirm": "mossy-violin-9"},
        ),
        ("/users/me/logout-everywhere/", {}),
        ("/users/confirm/resend/", {}),
    ],
)
def test_crafted_posts_from_anonymous_visitors_go_to_the_login_page(client, browser, path, data):
    response = browser.submit(path, data, token_from="/users/login/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")
    assert db.session.execute(select(func.count(User.id))).scalar_one() == 0


@pytest.mark.parametrize(("role", "shown"), [(None, False), ("user", False), ("staff", True)])
def test_admin_link_only_for_staff(client, auth, role, shown):
    sign_in_as(role, auth)
    page = client.get("/").get_data(as_text=True)
    assert ('href="/admin/"' in page) is shown


def test_admin_index_names_the_signed_in_staff_member(client, auth):
    factories.StaffFactory(name="Sam Staff", email="sam@example.com")
    auth.login("sam@example.com")
    page = client.get("/admin/").get_data(as_text=True)
    assert "Sam Staff" in page
    assert "Back to the site" in page
