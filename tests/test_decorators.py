"""The permission decorator that views use: login page for anonymous, 403 without the need."""

from __future__ import annotations

import pytest

from portal.security import staff_permission
from portal.security import writer_permission
from portal.users.decorators import permission_required
from tests import factories


@pytest.fixture
def guarded(make_app):
    app = make_app()

    @app.route("/_test/staff")
    @permission_required(staff_permission)
    def staff_only():
        return "staff ok"

    @app.route("/_test/write")
    @permission_required(writer_permission)
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
def test_permission_required(guarded, factory, staff, write):
    from tests.conftest import AuthActions

    client = guarded.test_client()
    if factory is not None:
        AuthActions(client).login(factory(email="someone@example.com").email)
    staff_response = client.get("/_test/staff")
    assert staff_response.status_code == staff
    assert client.get("/_test/write").status_code == write
    if staff == 302:
        assert staff_response.headers["Location"] == "/users/login/?next=/_test/staff"
