"""The back office never sends a browser off the site through a return address.

Flask-Admin follows the ``url`` value of a request after details, create,
edit, delete and bulk actions, and links to it as "List". Its own check
passes ``http:/evil.example`` and ``https:evil.example`` (which browsers
resolve to the foreign host); every return address under /admin must pass
the site's ``is_safe_next`` instead, or the screen goes back to its list.
"""

from __future__ import annotations

import inspect
from urllib.parse import urlencode

import pytest
from flask import redirect
from flask_admin.actions import ActionsMixin
from flask_admin.helpers import get_redirect_target
from flask_admin.model.base import BaseModelView

from admin_views.redirects import RETURN_URL
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.urls import is_safe_next
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import csrf_token
from tests.helpers import text

# Each sends a browser to evil.example, once it strips tabs and newlines and
# reads backslashes as slashes.
FOREIGN = [
    "http:/evil.example",
    "https:evil.example",
    "HTTPS:evil.example",
    "https:/evil.example",
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "http:\\\\evil.example",
    "ht\ttp:/evil.example",
    "ht\ntps:evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
]
# Flask-Admin's check resolves against the request's own scheme: some of the
# addresses above only pass it on HTTPS, as behind the production proxy.
BASES = ["http://localhost", "https://localhost"]
LIST = "/admin/post/"
MISSING = 99_999_999


def cases():
    return [(base, target) for base in BASES for target in FOREIGN]


def referer(base: str) -> dict[str, str]:
    # Flask-WTF checks the Referer of a POST over HTTPS, as a browser sends it.
    return {"Referer": f"{base}{LIST}"}


@pytest.fixture
def staff(client):
    account = factories.StaffFactory()
    response = AuthActions(client).login(account.email)
    assert response.status_code == 302
    return account


@pytest.fixture
def post():
    return factories.PostFactory()


def with_url(path: str, target: str, **params: object) -> str:
    return f"{path}?{urlencode({**params, 'url': target})}"


def test_is_safe_next_refuses_every_foreign_address():
    for target in FOREIGN:
        assert not is_safe_next(target), target


def test_details_of_a_missing_row_go_back_to_the_list(client, staff):
    for base, target in cases():
        response = client.get(with_url("/admin/post/details/", target, id=MISSING), base_url=base)

        assert response.status_code == 302, (base, target)
        assert response.headers["Location"] == LIST, (base, target)


def test_details_and_edit_pages_link_back_to_the_list(client, staff, post):
    for base, target in cases():
        for path in ("/admin/post/details/", "/admin/post/edit/"):
            response = client.get(with_url(path, target, id=post.id), base_url=base)

            assert response.status_code == 200, (path, base, target)
            assert "evil.example" not in text(response), (path, base, target)
            assert f'href="{LIST}"' in text(response), (path, base, target)


def test_saving_an_edit_goes_back_to_the_list(client, staff, post):
    token = csrf_token(client, f"/admin/post/edit/?id={post.id}")
    for base, target in cases():
        response = client.post(
            with_url("/admin/post/edit/", target, id=post.id),
            data={
                "csrf_token": token,
                "title": post.title,
                "body": post.body,
                "status": POST.STATUS[POST.PUBLISHED],
            },
            base_url=base,
            headers=referer(base),
        )

        assert response.status_code == 302, (base, target)
        assert response.headers["Location"] == LIST, (base, target)


def test_a_return_address_in_the_edit_form_is_checked_too(client, staff, post):
    token = csrf_token(client, f"/admin/post/edit/?id={post.id}")
    for base, target in cases():
        response = client.post(
            f"/admin/post/edit/?id={post.id}",
            data={
                "csrf_token": token,
                "title": post.title,
                "body": post.body,
                "status": POST.STATUS[POST.PUBLISHED],
                "url": target,
            },
            base_url=base,
            headers=referer(base),
        )

        assert response.headers["Location"] == LIST, (base, target)


def test_delete_goes_back_to_the_list(client, staff):
    token = csrf_token(client, LIST)
    for base, target in cases():
        victim = factories.PostFactory().id
        response = client.post(
            "/admin/post/delete/",
            data={"csrf_token": token, "id": victim, "url": target},
            base_url=base,
            headers=referer(base),
        )

        assert response.status_code == 302, (base, target)
        assert response.headers["Location"] == LIST, (base, target)
        assert db.session.get(Post, victim) is None, (base, target)


def test_a_bulk_action_goes_back_to_the_list(client, staff, post):
    token = csrf_token(client, LIST)
    for base, target in cases():
        response = client.post(
            "/admin/post/action/",
            data={"csrf_token": token, "action": "hide", "rowid": post.id, "url": target},
            base_url=base,
            headers=referer(base),
        )

        assert response.status_code == 302, (base, target)
        assert response.headers["Location"] == LIST, (base, target)


def test_an_anonymous_visitor_signs_in_and_lands_on_the_site(app, post):
    account = factories.StaffFactory()
    # Behind TLS, as in production, where most of these passed Flask-Admin's check.
    base = "https://localhost"
    for target in FOREIGN:
        for row in (MISSING, post.id):
            client = app.test_client()
            page = with_url("/admin/post/details/", target, id=row)
            to_login = client.get(page, base_url=base)
            assert to_login.status_code == 302, target

            signed_in = AuthActions(client).browser.submit(
                to_login.headers["Location"],
                {"email": account.email, "password": factories.PASSWORD},
                base_url=base,
                headers=referer(base),
            )
            assert signed_in.headers["Location"] == page, target

            response = client.get(page, base_url=base)
            if row == MISSING:
                assert response.headers["Location"] == LIST, target
            else:
                assert response.status_code == 200, target
                assert "evil.example" not in text(response), target


def test_a_return_address_on_this_site_is_still_followed(client, staff, post):
    back = "/admin/post/?search=Post&page_size=50"

    details = client.get(with_url("/admin/post/details/", back, id=MISSING))
    page = client.get(with_url("/admin/post/details/", back, id=post.id))
    token = csrf_token(client, LIST)
    action = client.post(
        "/admin/post/action/",
        data={"csrf_token": token, "action": "hide", "rowid": post.id, "url": back},
    )

    assert details.headers["Location"] == back
    assert 'href="/admin/post/?search=Post&amp;page_size=50"' in text(page)
    assert action.headers["Location"] == back


def test_any_redirect_off_the_site_goes_to_the_screen_instead(app):
    # Whatever builds the redirect (not only a ``url`` value), the screen answers it.
    (admin,) = app.extensions["admin"]
    screens = {view.endpoint: view for view in admin._views}
    with app.test_request_context("/admin/post/"):
        for endpoint, index in (
            ("post", "/admin/post/"),
            ("email_compose", "/admin/email_compose/"),
        ):
            for target in FOREIGN:
                if "\n" in target:
                    continue  # no response can carry it as a header
                answer = screens[endpoint]._keep_redirect_on_site(redirect(target, code=303))

                assert answer.headers["Location"] == index, (endpoint, target)
                assert answer.status_code == 303
                assert "evil" not in answer.get_data(as_text=True)
            kept = screens[endpoint]._keep_redirect_on_site(redirect("/admin/user/?page=2"))
            assert kept.headers["Location"] == "/admin/user/?page=2"


def test_flask_admin_still_reads_its_return_address_where_the_screens_check_it():
    # admin_views.redirects cleans the request value these views read; if
    # Flask-Admin reads another, the links they render are no longer checked.
    assert inspect.signature(get_redirect_target).parameters["param_name"].default == RETURN_URL
    for cls, name in [
        (BaseModelView, "create_view"),
        (BaseModelView, "edit_view"),
        (BaseModelView, "details_view"),
        (BaseModelView, "delete_view"),
        (BaseModelView, "export"),
        (ActionsMixin, "handle_action"),
    ]:
        assert "get_redirect_target()" in inspect.getsource(getattr(cls, name)), name
