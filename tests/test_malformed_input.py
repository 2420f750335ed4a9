"""Malformed input gets a 4xx page, never a 500.

A NUL in a link, a number too big for the database's integers, a page before
the first, "²" (a digit to ``str.isdigit`` but not to ``int``), a path that
climbs out of its folder: each is a visitor's mistake, or an attack, and is
answered as one. The first part tests each case found by the attack on the
site; the second walks every route of the app as each role and fails on any
answer of 500 or more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from admin_views.actions import selected_ids
from portal.emails.models import Email
from portal.extensions import db
from portal.urls import MAX_ROW_ID
from portal.urls import is_safe_next
from portal.urls import parse_row_id
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import csrf_token
from tests.helpers import text

HUGE = "9" * 23
NOT_A_NUMBER = "²"  # "²".isdigit() is True, int("²") raises


@pytest.fixture
def staff(client):
    account = factories.StaffFactory()
    assert AuthActions(client).login(account.email).status_code == 302
    return account


def accounts() -> int:
    return db.session.scalar(select(func.count(User.id))) or 0


def flashed(client: FlaskClient, path: str) -> str:
    """The page a redirect lands on, with the messages it flashed."""
    return text(client.get(path))


# -- reading ids ------------------------------------------------------------------


def test_a_row_id_is_ascii_digits_within_the_database_integer():
    assert parse_row_id("1") == 1
    assert parse_row_id(str(MAX_ROW_ID)) == MAX_ROW_ID
    assert parse_row_id(7) == 7
    for value in (str(MAX_ROW_ID + 1), HUGE, "0", "-1", "+1", " 1", "1 ", "1_0", "1.0", ""):
        assert parse_row_id(value) is None, value
    for value in (NOT_A_NUMBER, "١", "１", "1\x00", "../etc/passwd", None, True, 2**40, ["1"]):
        assert parse_row_id(value) is None, value


def test_a_selection_drops_what_cannot_be_a_row_id():
    ids = ["3", NOT_A_NUMBER, HUGE, "-2", "x", str(MAX_ROW_ID), "１", "1\x00", 5]

    assert selected_ids(ids) == [3, MAX_ROW_ID, 5]


# -- the public site ---------------------------------------------------------------


def test_a_nul_in_a_search_is_a_bad_request(client):
    # PostgreSQL refuses a NUL in any text it is given.
    response = client.get("/posts/?q=%00")

    assert response.status_code == 400
    assert "Bad request" in text(response)


@pytest.mark.parametrize(
    "path",
    [
        "/posts/?q=a%00b",
        "/posts/%00/",
        "/users/login/?next=/%00",
        "/posts/?%00=1",
        "/users/person-1%00/",
    ],
)
def test_a_nul_anywhere_in_a_link_is_a_bad_request(client, path):
    assert client.get(path).status_code == 400


def test_a_comment_id_too_big_for_the_database_is_not_found(client, auth):
    author = factories.UserFactory()
    comment = factories.CommentFactory(author=author)
    auth.login(author.email)

    for path in (
        "/comments/99999999999999999999/edit/",
        f"/comments/{MAX_ROW_ID + 1}/edit/",
        f"/comments/{HUGE}/delete/",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/comments/{comment.id}/edit/").status_code == 200


# -- the back office ---------------------------------------------------------------


def test_a_page_before_the_first_or_past_any_row_is_not_found(client, staff):
    factories.PostFactory()

    for page in ("1000000000000000000", "-1", str(MAX_ROW_ID)):
        assert client.get(f"/admin/post/?page={page}").status_code == 404, page
    assert client.get("/admin/post/?page=1").status_code == 200
    assert client.get("/admin/post/?page=abc").status_code == 200  # Flask-Admin reads page 0


def test_a_number_filter_out_of_its_columns_range_is_refused(client, staff):
    factories.PostFactory(title="Kept")
    # flt0_0 is "Status equals" (SMALLINT), flt0_5 "Status in list" on the post screen.
    for value in (HUGE, "32768", f"1,{HUGE}"):
        for key in ("flt0_0", "flt0_5"):
            response = client.get(f"/admin/post/?{urlencode({key: value})}")

            assert response.status_code == 200, (key, value)
            assert "Invalid Filter Value" in text(response), (key, value)
            assert "Kept" in text(response), "an invalid filter is dropped, not applied"
    # The role filter on accounts, too.
    assert "Invalid Filter Value" in text(client.get(f"/admin/user/?flt0_0={HUGE}"))
    assert "Invalid Filter Value" not in text(client.get("/admin/post/?flt0_0=1"))


@pytest.mark.parametrize("view", ["post", "user", "comment", "email"])
@pytest.mark.parametrize("operation", ["details", "edit"])
def test_an_id_that_cannot_name_a_row_finds_no_record(client, staff, view, operation):
    for value in (HUGE, "../etc/passwd", NOT_A_NUMBER, "-1"):
        response = client.get(f"/admin/{view}/{operation}/?{urlencode({'id': value})}")

        # Edit is no operation for staff on accounts, comments and the queue.
        assert response.status_code in (302, 403), (value, response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"] == f"/admin/{view}/", value
            assert "Record does not exist." in flashed(client, response.headers["Location"])


def test_a_nul_in_an_id_is_a_bad_request(client, staff):
    assert client.get("/admin/post/details/?id=1%00").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/admin/post/?search=%00",
        "/admin/user/?search=a%00",
        "/admin/comment/?search=%00",
        "/admin/email/?search=%00",
        "/admin/comment/export/csv/?search=%00",
        "/admin/comment/export/csv/?flt0_30=%00",
        "/admin/comment/?flt0_30=%00",
    ],
)
def test_a_nul_in_a_search_filter_or_export_is_a_bad_request(client, staff, path):
    assert client.get(path).status_code == 400


@pytest.mark.parametrize("ids", [HUGE, NOT_A_NUMBER, f"{HUGE},{NOT_A_NUMBER},-1"])
def test_an_action_page_without_a_usable_id_asks_for_a_selection(client, staff, ids):
    response = client.get(f"/admin/user/action/deactivate/?{urlencode({'ids': ids})}")

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/user/"
    assert "Select at least one row first." in flashed(client, "/admin/user/")


def test_an_action_page_keeps_the_usable_ids_of_a_selection(client, staff):
    target = factories.UserFactory()
    ids = f"{target.id},{NOT_A_NUMBER},{HUGE}"

    response = client.get(f"/admin/user/action/deactivate/?{urlencode({'ids': ids})}")

    assert response.status_code == 200
    assert target.email in text(response)


def test_a_bulk_action_passes_on_only_the_usable_ids(client, staff):
    target = factories.UserFactory()
    token = csrf_token(client, "/admin/user/")

    response = client.post(
        "/admin/user/action/",
        data={
            "csrf_token": token,
            "action": "deactivate",
            "rowid": [str(target.id), NOT_A_NUMBER, HUGE],
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/user/action/deactivate/?ids={target.id}"


def test_deleting_an_account_by_an_id_that_cannot_be_one_deletes_nothing(client, auth):
    admin = factories.AdminFactory()
    factories.UserFactory()
    auth.login(admin.email)
    token = csrf_token(client, "/admin/user/")
    before = accounts()

    for value in (NOT_A_NUMBER, HUGE):
        response = client.post(
            "/admin/user/delete/", data={"csrf_token": token, "id": value, "confirm": "1"}
        )

        assert response.headers["Location"] == "/admin/user/", value
        assert "That account no longer exists." in flashed(client, "/admin/user/")
    assert accounts() == before


@pytest.mark.parametrize("audience", ["address", "account"])
def test_composing_to_an_address_with_a_nul_is_a_form_error(client, staff, browser, audience):
    response = browser.submit(
        "/admin/email_compose/",
        {audience: "ann\x00@example.com", "audience": audience, "subject": "Hi", "body": "Hello"},
    )

    assert response.status_code == 200
    assert "An email address cannot contain control characters." in text(response)
    assert db.session.scalar(select(func.count(Email.id))) == 0


@pytest.mark.parametrize("path", ["/users/login/", "/users/forgot/"])
def test_a_nul_in_a_typed_email_is_an_ordinary_miss(browser, path):
    # PostgreSQL refuses a NUL in a query; no stored address can hold one.
    data = {"email": "ann\x00@example.com", "password": "whatever-it-is-1"}

    response = browser.submit(path, data)

    assert response.status_code < 500, response.status_code


# -- too large a body ---------------------------------------------------------------


@pytest.mark.parametrize("role", [None, USER.USER, USER.STAFF, USER.ADMIN])
def test_a_body_over_the_form_limit_is_413_for_everyone(client, auth, role):
    # The limit is met before the identity is loaded: the page must not need it.
    if role is not None:
        account = factories.UserFactory(role=role)
        auth.login(account.email)
    body = {"body": "x" * 300_000}

    for path in ("/posts/new/", "/users/me/edit/", "/admin/user/action/"):
        response = client.post(path, data=body)

        assert response.status_code == 413, (path, response.status_code)
        assert "What you sent is too large." in text(response)


# -- every route, every role ---------------------------------------------------------

NUL = "\x00"
OVERLONG = "x" * 1000
# Path parameters get one of each: a NUL, a number past any integer column, a
# negative one, a digit that is not a number, a path out of its folder, an
# overlong word; and some more by converter.
HOSTILE = [NUL, HUGE, "-1", NOT_A_NUMBER, "../../etc/passwd", OVERLONG]
EXTRA_BY_CONVERTER = {
    "int": ["0", str(MAX_ROW_ID + 1)],
    "path": ["..%2f..%2fetc%2fpasswd", "/etc/passwd", "a/../../b"],
}
# What the pages read from query strings, in two groups. The first names a
# row or a place in a list, and a bad one refuses the request before anything
# else is read; the rest (the list's search, sort and filters, the return
# address, the lookups) are tried in a URL of their own, so that they reach
# the page's query.
FIRST_READ = ["id", "ids", "page", "after", "before", "cursor"]
FIRST_READ_VALUES = [HUGE, "-1", NOT_A_NUMBER]
THEN_READ = [
    "url",
    "next",
    "search",
    "q",
    "sort",
    "desc",
    "page_size",
    "name",
    "query",
    "offset",
    "limit",
    "modal",
    # Filters of every kind (numbers, choices, dates, words) on each screen, by index.
    *[f"flt{index}_{index}" for index in range(0, 36, 3)],
]
THEN_READ_VALUES = [NUL, HUGE, "-1", NOT_A_NUMBER, OVERLONG]
# POSTs that take ids and a return address, tried with each hostile value.
POSTED = re.compile(r"\.(action_view|delete_view|action_input|ajax_update)$")
# Werkzeug's own redirects (a doubled slash merged) name the site in full.
SITE = "http://localhost"
PARAMETER = re.compile(r"<(?:([a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str
    methods: frozenset[str]
    converters: tuple[tuple[str, str], ...]  # each path parameter, and its converter's name


@cache
def routes(app: Flask) -> tuple[Route, ...]:
    """Every route of the app but static files, with its path parameters' converters."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        converters = tuple(
            (match.group(2), match.group(1) or "default") for match in PARAMETER.finditer(rule.rule)
        )
        found.append(Route(rule.endpoint, rule.rule, frozenset(rule.methods or ()), converters))
    return tuple(sorted(found, key=lambda route: route.rule))


def fill(rule: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return quote(values[match.group(2)], safe="/%")

    return PARAMETER.sub(value, rule)


def sane_values(world: dict[str, Any]) -> dict[str, str]:
    """A value for each path parameter that finds a real page."""
    return {
        "slug": world["slug"],
        "comment_id": str(world["comment_id"]),
        "handle": world["handle"],
        "token": "not.a-token",
        "export_type": "csv",
        "action_name": "deactivate",
        "filename": "css/portal.css",
        "name": "example",  # a sign-in provider's name
        "session_id": "1",
        "section": "posts",  # a part of the sitemap
        "chunk": "1",
    }


def urls_for(route: Route, sane: dict[str, str]) -> list[str]:
    """The hostile URLs of one route: each path parameter, then the query parameters."""
    urls = []
    for name, converter in route.converters:
        for hostile in HOSTILE + EXTRA_BY_CONVERTER.get(converter, []):
            urls.append(fill(route.rule, {**sane, name: hostile}))
    path = fill(route.rule, sane)
    for names, values in ((FIRST_READ, FIRST_READ_VALUES), (THEN_READ, THEN_READ_VALUES)):
        for hostile in values:
            urls.append(f"{path}?{urlencode(dict.fromkeys(names, hostile))}")
    return urls


def build_world() -> dict[str, Any]:
    author = factories.UserFactory()
    post = factories.PostFactory(author=author)
    comment = factories.CommentFactory(post=post, author=author)
    factories.ApprovedCommentFactory(post=post)
    factories.DraftFactory(author=author)
    factories.EmailFactory()
    return {"slug": post.slug, "comment_id": comment.id, "handle": author.handle}


def answer(client: FlaskClient, method: str, url: str, **kwargs: Any) -> str | None:
    """Say what is wrong with the answer to one request, or None if it is a fine answer."""
    try:
        response = client.open(url, method=method, **kwargs)
        # The whole body: a streamed export fails while it is read.
        response.get_data()
        response.close()
    except Exception as error:  # noqa: BLE001 - every crash is reported with its URL
        first = str(error).splitlines()[0] if str(error) else ""
        return f"{method} {url[:160]!r}: {type(error).__name__}: {first[:200]}"
    if response.status_code >= 500:
        return f"{method} {url[:160]!r}: {response.status_code}"
    location = response.headers.get("Location", "").removeprefix(SITE)
    if location and not is_safe_next(location):
        return f"{method} {url[:160]!r}: redirects off the site to {location!r}"
    return None


ROLES = {
    "anonymous": None,
    "user": factories.UserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}


@pytest.mark.parametrize("role", ROLES)
def test_no_route_answers_hostile_input_with_a_server_error(app, client, role):
    world = build_world()
    make = ROLES[role]
    if make is not None:
        assert AuthActions(client).login(make().email).status_code == 302
    token = csrf_token(client, "/users/login/" if make is None else "/users/me/")
    sane = sane_values(world)

    problems = []
    for route in routes(app):
        if "GET" in route.methods:
            for url in urls_for(route, sane):
                problems.append(answer(client, "GET", url))
        if "POST" in route.methods and POSTED.search(route.endpoint):
            path = fill(route.rule, sane)
            for hostile in HOSTILE:
                form = {
                    "csrf_token": token,
                    "action": "delete",
                    **dict.fromkeys(("rowid", "id", "ids", "url", "reason", "pk"), hostile),
                }
                problems.append(answer(client, "POST", path, data=form))
    problems = [problem for problem in problems if problem]

    assert not problems, f"{len(problems)} bad answer(s) as {role}:\n" + "\n".join(problems[:25])
