"""CSV exports of accounts, posts and comments from /admin.

An export holds what the list shows under its search and filters (every page
of it, nothing more), streams plain rows instead of loading every object,
never runs a spreadsheet formula, never carries a password hash, leaves an
audit event, and never ends short without a last line that says so.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from flask import request_finished
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from admin_views import export as export_module
from admin_views.comments import CommentView
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.helpers import statements

ADDRESS = "198.51.100.40"
DANGEROUS = [
    '=HYPERLINK("https://evil.example/","click")',
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTabbed",
    "\rReturned",
]


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def staff(client, auth):
    """A signed-in staff member, calling from ADDRESS."""
    client.environ_base["REMOTE_ADDR"] = ADDRESS
    person = factories.StaffFactory(name="Sam Staff", email="sam@example.com")
    assert auth.login(person.email).status_code == 302
    return person


def export(client, endpoint, **query):
    """Download an export; return the response and its rows (header first)."""
    response = client.get(f"/admin/{endpoint}/export/csv/", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_data(as_text=True)
    return response, list(csv.reader(io.StringIO(body, newline="")))


def column(rows, title):
    index = rows[0].index(title)
    return [row[index] for row in rows[1:]]


def filter_arg(client, endpoint, label, operation):
    """The URL argument of a list's filter on ``label`` with ``operation``."""
    views = client.application.extensions["admin"][0]._views
    view = next(v for v in views if getattr(v, "endpoint", None) == endpoint)
    for index, flt in enumerate(view._filters):
        if flt.name == label and flt.operation() == operation:
            return f"flt0_{view.get_filter_arg(index, flt)}"
    raise AssertionError(f"no filter {label} {operation} on {endpoint}")


def export_events():
    db.session.rollback()
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "export").order_by(AuditEvent.id)
        ).scalars()
    )


# -- what goes in --------------------------------------------------------------


def test_accounts_export_is_a_streamed_csv_download(client, staff):
    factories.UserFactory(name="Alpha One", email="alpha@example.com")
    sent = []

    # The test client hands back every body as an iterator: look at the
    # response the app built instead, before it is sent.
    def finished(sender, response, **extra):
        sent.append(response)

    with request_finished.connected_to(finished, client.application):
        response = client.get("/admin/user/export/csv/")

    assert response.status_code == 200
    (built,) = sent
    assert built.is_streamed
    assert not isinstance(built.response, list | tuple | bytes | str)
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert disposition.endswith(".csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert rows[0][:3] == ["#", "Name", "Email"]
    assert "Role" in rows[0] and "Status" in rows[0]
    assert {"Alpha One", "Sam Staff"} == set(column(rows, "Name"))
    by_email = {row[2]: row for row in rows[1:]}
    alpha = by_email["alpha@example.com"]
    assert alpha[rows[0].index("Role")] == "user"
    assert alpha[rows[0].index("Status")] == "active"


def test_accounts_export_never_holds_the_password_hash(client, staff):
    person = factories.UserFactory(password="a-completely-different-secret-42")
    hashes = [u.password_hash for u in db.session.execute(select(User)).scalars()]

    response, rows = export(client, "user")

    body = response.get_data(as_text=True)
    assert str(person.id) in column(rows, "#")
    for password_hash in hashes:
        assert password_hash not in body
    assert "scrypt" not in body
    assert not any("password" in title.lower() for title in rows[0])


def test_export_holds_the_searched_list_only(client, staff):
    factories.UserFactory.create_batch(3)
    factories.UserFactory(name="Zed Match", email="zed.match@example.com")
    factories.UserFactory(name="Zed Other", email="other-zed@example.com")

    _response, rows = export(client, "user", search="zed")

    # "zed" starts a name in both, but starts only one email; search matches either column.
    assert sorted(column(rows, "Name")) == ["Zed Match", "Zed Other"]
    _response, rows = export(client, "user", search="zed.match")
    assert column(rows, "Email") == ["zed.match@example.com"]


def test_export_holds_the_filtered_list_only(client, staff):
    factories.UserFactory.create_batch(2)
    disabled = factories.InactiveUserFactory.create_batch(2)
    status_is = filter_arg(client, "user", "Status", "equals")

    _response, rows = export(client, "user", **{status_is: str(USER.INACTIVE)})

    assert sorted(column(rows, "Email")) == sorted(u.email for u in disabled)
    assert set(column(rows, "Status")) == {"inactive"}


def test_export_holds_every_page_of_the_list_not_just_the_first(client, staff):
    factories.UserFactory.create_batch(45)

    _response, rows = export(client, "user")

    assert len(rows) - 1 == 46  # the 45 and the staff member; the list shows 20 a page
    assert len(set(column(rows, "#"))) == 46


def test_posts_export_follows_search_and_filter(client, staff):
    author = factories.UserFactory(email="writer@example.com")
    factories.PostFactory(title="Garden notes", author=author)
    factories.PostFactory(title="Garden party", author=author, status=POST.HIDDEN)
    factories.PostFactory(title="Kitchen notes", author=author)
    factories.PostFactory(title="Garden tools")  # another author
    status_is = filter_arg(client, "post", "Status", "equals")

    _response, rows = export(client, "post", search="garden", **{status_is: str(POST.PUBLISHED)})

    assert rows[0][:2] == ["#", "Title"]
    assert sorted(column(rows, "Title")) == ["Garden notes", "Garden tools"]
    assert set(column(rows, "Status")) == {"published"}
    by_title = dict(zip(column(rows, "Title"), column(rows, "Author email"), strict=True))
    assert by_title["Garden notes"] == "writer@example.com"


def test_comments_export_follows_search_and_filter(client, staff):
    post = factories.PostFactory(title="Under discussion")
    kim = factories.UserFactory(email="kim@example.com")
    factories.CommentFactory(post=post, author=kim, body="Kim waits.")
    factories.ApprovedCommentFactory(post=post, author=kim, body="Kim approved.")
    factories.CommentFactory(post=post, body="Someone else waits.")
    status_is = filter_arg(client, "comment", "Status", "equals")

    _response, rows = export(client, "comment", search="kim@", **{status_is: str(COMMENT.PENDING)})

    assert column(rows, "Comment") == ["Kim waits."]
    assert column(rows, "Post title") == ["Under discussion"]
    assert column(rows, "Author email") == ["kim@example.com"]
    assert column(rows, "Status") == ["pending"]


# -- formulas are neutralised --------------------------------------------------------


def test_account_cells_that_start_a_formula_are_neutralised(client, staff):
    for index, name in enumerate(DANGEROUS):
        factories.UserFactory(name=name, email=f"formula{index}@example.com")
    factories.UserFactory(name="Plain a=b-c+d@e", email="plain@example.com")

    _response, rows = export(client, "user")

    names = set(column(rows, "Name"))
    for name in DANGEROUS:
        assert "'" + name in names, repr(name)
        assert name not in names
    assert "Plain a=b-c+d@e" in names  # only a cell's first character counts


def test_post_and_comment_cells_that_start_a_formula_are_neutralised(client, staff):
    post = factories.PostFactory(title="=1+1")
    for body in DANGEROUS:
        factories.CommentFactory(post=post, body=body)

    _response, posts = export(client, "post")
    _response, comments = export(client, "comment")

    assert column(posts, "Title") == ["'=1+1"]
    assert sorted(column(comments, "Comment")) == sorted("'" + body for body in DANGEROUS)
    assert column(comments, "Post title") == ["'=1+1"] * len(DANGEROUS)


# -- who, and the audit trail ---------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["user", "post", "comment"])
def test_each_export_writes_an_audit_event(client, staff, endpoint):
    factories.CommentFactory()

    export(client, endpoint)
    export(client, endpoint, search="somebody")

    found = export_events()
    assert len(found) == 2
    for item in found:
        assert item.object_type == endpoint
        assert item.object_id is None
        assert item.actor_id == staff.id
        assert item.actor_label == "Sam Staff <sam@example.com>"
        assert (item.source, item.address) == ("admin", ADDRESS)
        assert "CSV" in item.summary
    plain, searched = found
    assert plain.changes == {}
    assert "“somebody”" in searched.summary
    assert searched.changes["search"] == [None, "somebody"]


def test_export_event_records_the_filters_used(client, staff):
    status_is = filter_arg(client, "user", "Status", "equals")

    export(client, "user", **{status_is: str(USER.NEW)})

    (item,) = export_events()
    assert "1 filter(s)" in item.summary
    assert f"{status_is}={USER.NEW}" in item.changes["filters"][1]


@pytest.mark.parametrize(("role", "expected"), [(None, "login"), ("user", 403)])
@pytest.mark.parametrize("endpoint", ["user", "post", "comment"])
def test_only_staff_export_and_refusals_write_no_event(client, auth, role, expected, endpoint):
    factories.PostFactory()
    if role is not None:
        auth.login(factories.UserFactory(email="plain@example.com").email)

    response = client.get(f"/admin/{endpoint}/export/csv/")

    if expected == "login":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/users/login/")
    else:
        assert response.status_code == expected
    assert export_events() == []


# -- big tables --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "make"),
    [
        ("post", lambda n: factories.PostFactory.create_batch(n)),
        ("comment", lambda n: factories.CommentFactory.create_batch(n)),
    ],
)
def test_export_loads_related_columns_without_a_query_per_row(client, staff, endpoint, make):
    make(3)
    with statements() as few:
        _response, small = export(client, endpoint)
    make(40)
    with statements() as many:
        _response, large = export(client, endpoint)

    assert (len(small), len(large)) == (4, 44)
    assert len(many) == len(few), many


@pytest.mark.parametrize(
    ("endpoint", "make"),
    [
        ("post", lambda n: factories.PostFactory.create_batch(n)),
        ("comment", lambda n: factories.CommentFactory.create_batch(n)),
    ],
)
def test_export_reads_rows_without_building_objects(client, staff, endpoint, make):
    make(5)
    loaded = []

    def load(target, context):
        loaded.append(target)

    for model in (Post, Comment):
        event.listen(model, "load", load)
    try:
        _response, rows = export(client, endpoint)
    finally:
        for model in (Post, Comment):
            event.remove(model, "load", load)

    assert len(rows) == 6
    assert loaded == []


# -- a download that stops says so ------------------------------------------------------


def lines_of(response):
    return response.get_data(as_text=True).splitlines()


def test_a_complete_export_ends_with_its_last_row(client, staff, monkeypatch):
    # Several chunks, the last one short: nothing follows the last row.
    monkeypatch.setattr(CommentView, "export_chunk_rows", 2)
    made = factories.CommentFactory.create_batch(5)

    response, rows = export(client, "comment")

    body = response.get_data(as_text=True)
    assert sorted(int(cell) for cell in column(rows, "#")) == sorted(c.id for c in made)
    assert body.endswith("\r\n")
    assert "incomplete" not in body
    assert lines_of(response)[-1].split(",")[0] == rows[-1][0]


def test_an_export_that_fails_mid_stream_ends_with_a_marker(client, staff, monkeypatch, caplog):
    factories.CommentFactory.create_batch(5)
    read_rows = CommentView.export_rows

    def failing(self, statement):
        chunks = read_rows(self, statement)
        yield next(chunks)
        raise OperationalError("SELECT secret_column", {}, Exception("connection lost"))

    monkeypatch.setattr(CommentView, "export_chunk_rows", 2)
    monkeypatch.setattr(CommentView, "export_rows", failing)

    response = client.get("/admin/comment/export/csv/")

    assert response.status_code == 200
    lines = lines_of(response)
    assert lines[-1] == "# export incomplete: stopped after 2 rows by an error on the server"
    assert len(lines) == 1 + 2 + 1  # the header, the rows that were sent, the marker
    assert "secret_column" not in response.get_data(as_text=True)
    assert "CSV export of Comments stopped after 2 rows" in caplog.text


def test_an_export_that_fails_before_its_first_row_says_so(client, staff, monkeypatch, caplog):
    def failing(self, statement):
        raise OperationalError("SELECT", {}, Exception("connection lost"))
        yield  # a generator, as the real one

    monkeypatch.setattr(CommentView, "export_rows", failing)

    response = client.get("/admin/comment/export/csv/")

    assert response.status_code == 200
    header, marker = lines_of(response)
    assert header.startswith("#,Status,")
    assert marker == "# export incomplete: stopped after 0 rows by an error on the server"


def test_an_export_past_its_time_limit_ends_with_a_marker_line(app, client, staff, monkeypatch):
    factories.CommentFactory.create_batch(5)
    app.config["EXPORT_TIME_LIMIT"] = 25
    # Each look at the clock is ten seconds after the one before.
    ticks = iter(range(0, 1000, 10))
    monkeypatch.setattr(export_module, "clock", lambda: next(ticks))
    monkeypatch.setattr(CommentView, "export_chunk_rows", 2)

    response = client.get("/admin/comment/export/csv/")

    lines = lines_of(response)
    assert lines[-1] == (
        "# export incomplete: stopped after 4 rows at the time limit of 25 seconds;"
        " narrow the list with a search or a filter and export again"
    )
    assert len(lines) == 1 + 4 + 1


def test_an_export_without_a_time_limit_sends_every_row(app, client, staff, monkeypatch):
    factories.CommentFactory.create_batch(5)
    app.config["EXPORT_TIME_LIMIT"] = 0
    ticks = iter(range(0, 1000, 100))
    monkeypatch.setattr(export_module, "clock", lambda: next(ticks))
    monkeypatch.setattr(CommentView, "export_chunk_rows", 2)

    _response, rows = export(client, "comment")

    assert len(rows) == 1 + 5


def test_timestamps_export_in_utc_as_before(client, staff):
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    factories.CommentFactory(created_at=when, moderated_at=None)

    _response, rows = export(client, "comment")

    assert column(rows, "Written") == ["2026-01-02 03:04:05.678901+00:00"]
    assert column(rows, "Decided") == [""]


def test_timestamp_cells_read_any_zone_as_utc():
    plus_two = timezone(timedelta(hours=2))

    assert export_module.utc_texts(
        [
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=plus_two),
            datetime(2026, 1, 2, 3, 4, 5),
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            None,
        ]
    ) == ["2026-01-02 03:04:05+00:00"] * 3 + [""]
