"""The gate's view decorator: login page for anonymous, 403 for those it refuses."""

from __future__ import annotations

import pytest

from portal import security
from portal.users.decorators import allowed_to
from tests import factories


@pytest.fixture
def guarded(make_app):
    app = make_app()

    @app.route("/_test/staff")
    @allowed_to(security.VIEW, security.ADMIN_SITE)
    def staff_only():
        return "staff ok"

    @app.route("/_test/write")
    @allowed_to(security.ADD, security.POST)
    def writers_only():
        return "write ok"

    with app.app_context():
        yield app


@pytest.mark.parametrize(
    ("factory", "staff", "write"),
    [
        (None, 302, 302),
        (factories.NewUserFactory, 403, 403),
        (factories.UserFactory, 403, 200),
        (factories.StaffFactory, 200, 200),
        (factories.AdminFactory, 200, 200),
    ],
)
def test_allowed_to(guarded, factory, staff, write):
    from tests.conftest import AuthActions

    client = guarded.test_client()
    if factory is not None:
        AuthActions(client).login(factory(email="someone@example.com").email)
    staff_response = client.get("/_test/staff")
    assert staff_response.status_code == staff
    assert client.get("/_test/write").status_code == write
    if staff == 302:
        assert staff_response.headers["Location"] == "/users/login/?next=/_test/staff"
