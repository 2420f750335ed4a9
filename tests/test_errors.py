"""Error pages in the site's layout, error reports to ADMINS, and the health check."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from flask import abort
from sqlalchemy import select
from sqlalchemy import text

from portal import create_app
from portal.database import Base
from portal.emails.models import Email
from portal.extensions import db
from portal.extensions import limiter
from tests import factories
from tests.conftest import REDIS_URL
from tests.helpers import deliver
from tests.helpers import text_of

OPS = "ops@example.com"
BRAND = '<a class="brand" href="/">Portal</a>'
SECRET = "hunter2-in-the-exception-message"
TOKEN_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def boom():
    raise RuntimeError(SECRET)


def boom_elsewhere():
    raise RuntimeError(SECRET)


def bad_query():
    db.session.execute(text("SELECT secret_column FROM no_such_table_one"))
    return "unreachable"


def other_bad_query():
    db.session.execute(text("SELECT secret_column FROM no_such_table_two"))
    return "unreachable"


def server_error():
    abort(500)


def boom_with_token(token):
    raise RuntimeError("failed while reading a link")


def add_failing_routes(app):
    for view in (boom, boom_elsewhere, bad_query, other_bad_query, server_error):
        app.add_url_rule(f"/{view.__name__}", view.__name__, view)
    app.add_url_rule("/boom_with_token/<token:token>/", "boom_with_token", boom_with_token)


@pytest.fixture
def app(make_app):
    """A non-debug app that answers errors with pages (tests usually re-raise them)."""
    application = make_app(ADMINS=[OPS], PROPAGATE_EXCEPTIONS=False)
    add_failing_routes(application)
    with application.app_context():
        yield application


def reports():
    db.session.expire_all()
    return db.session.execute(select(Email).order_by(Email.id)).scalars().all()


def assert_nothing_leaks(app, body):
    assert "Traceback" not in body
    assert SECRET not in body
    assert "secret_column" not in body and "SELECT" not in body
    assert app.config["SECRET_KEY"] not in body
    assert str(app.config["SQLALCHEMY_DATABASE_URI"]) not in body


# -- the pages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signed_in", "method", "path", "status", "heading"),
    [
        (True, "GET", "/admin/", 403, "You cannot open this page"),
        (False, "GET", "/no-such-page/", 404, "Page not found"),
        (False, "GET", "/users/logout/", 405, "Not allowed here"),
        (False, "GET", "/boom", 500, "Something went wrong"),
        (False, "GET", "/bad_query", 500, "Something went wrong"),
        (False, "GET", "/server_error", 500, "Something went wrong"),
    ],
)
def test_error_pages_share_the_site_layout(
    app, client, auth, signed_in, method, path, status, heading
):
    if signed_in:
        auth.login(factories.UserFactory(name="Ada Lovelace").email)
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert BRAND in body
    assert f'<p class="error-code">{status}</p>' in body
    assert f"<h1>{heading}</h1>" in body
    if signed_in:
        assert "Ada Lovelace" in body  # the layout still knows who is signed in
    assert_nothing_leaks(app, body)


def test_405_says_which_methods_are_allowed(client):
    response = client.get("/users/logout/")
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "POST" in allowed
    assert "GET" not in allowed


def test_unhandled_errors_are_logged_with_their_traceback(client, caplog):
    with caplog.at_level(logging.ERROR):
        assert client.get("/boom").status_code == 500
    [record] = [r for r in caplog.records if "Exception on /boom [GET]" in r.getMessage()]
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError


def test_production_shows_the_page_not_the_traceback(make_app, monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    app = make_app(
        PORTAL_ENV="production",
        SECRET_KEY="f" * 64,
        TRUSTED_HOSTS=["portal.example.org"],
        PORTAL_BASE_URL="https://portal.example.org",
        MAIL_TRANSPORT="smtp",
        RATELIMIT_STORAGE_URI=REDIS_URL,
    )
    add_failing_routes(app)
    assert app.config["PROPAGATE_EXCEPTIONS"] is None and not app.testing and not app.debug
    client = app.test_client()
    for path in ("/boom", "/bad_query"):
        response = client.get(path, base_url="https://portal.example.org")
        assert response.status_code == 500
        body = response.get_data(as_text=True)
        assert BRAND in body and "Something went wrong" in body
        assert_nothing_leaks(app, body)


# -- reports to ADMINS --------------------------------------------------------------------


def test_an_unhandled_error_is_emailed_to_admins_through_the_outbox(app, client):
    assert client.get("/boom").status_code == 500

    [report] = reports()
    assert report.to_address == OPS
    assert report.sensitive is True
    assert "RuntimeError" in report.subject
    assert "GET /boom" in report.text_body
    assert SECRET in report.text_body  # the admins get what the visitor must not see
    assert "Traceback" in report.text_body

    [message] = deliver(app)
    assert message["To"] == OPS
    assert "GET /boom" in text_of(message)


def test_a_report_masks_the_link_token_in_the_path(app, client):
    token = "eyJ1aWQiOjN9.axABMQ.Y9t1jR-Ypx0FlGrJLuHTg2mgYvc"
    assert client.get(f"/boom_with_token/{token}/").status_code == 500

    [report] = reports()
    assert "GET /boom_with_token/[token]/" in report.text_body
    assert token not in report.text_body


def test_one_email_per_distinct_error_per_hour(app, client):
    assert client.get("/boom").status_code == 500
    assert client.get("/boom").status_code == 500
    assert len(reports()) == 1

    assert client.get("/boom_elsewhere").status_code == 500
    first, second = reports()
    assert second.subject != first.subject
    assert client.get("/boom_elsewhere").status_code == 500
    assert len(reports()) == 2

    # An hour later the same error is worth another message.
    for report in reports():
        report.created_at -= timedelta(hours=1, seconds=1)
    db.session.commit()
    assert client.get("/boom").status_code == 500
    assert [r.subject for r in reports()].count(first.subject) == 2


def test_database_errors_from_different_views_are_reported_separately(client):
    assert client.get("/bad_query").status_code == 500
    assert client.get("/bad_query").status_code == 500
    assert client.get("/other_bad_query").status_code == 500
    first, second = reports()
    assert first.subject != second.subject
    assert "/bad_query" in first.text_body and "/other_bad_query" in second.text_body


def test_every_admin_gets_the_report(make_app):
    app = make_app(ADMINS=[OPS, "dev@example.com"], PROPAGATE_EXCEPTIONS=False)
    add_failing_routes(app)
    assert app.test_client().get("/boom").status_code == 500
    with app.app_context():
        assert sorted(r.to_address for r in reports()) == ["dev@example.com", OPS]


def test_no_report_without_admins(make_app):
    app = make_app(ADMINS=[], PROPAGATE_EXCEPTIONS=False)
    add_failing_routes(app)
    assert app.test_client().get("/boom").status_code == 500
    with app.app_context():
        assert reports() == []


def test_http_errors_are_not_reported(client, auth):
    auth.login(factories.UserFactory().email)
    assert client.get("/admin/").status_code == 403
    assert client.get("/no-such-page/").status_code == 404
    assert client.get("/users/logout/").status_code == 405
    assert reports() == []


# -- a broken database ---------------------------------------------------------------------


@pytest.fixture
def file_app(tmp_path):
    """An app on a SQLite file of its own, which the test may break."""
    (tmp_path / "db").mkdir()
    path = tmp_path / "db" / "portal.sqlite3"
    app = create_app(
        {
            "PORTAL_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
            "ADMINS": [OPS],
            "PROPAGATE_EXCEPTIONS": False,
        }
    )
    add_failing_routes(app)
    with app.app_context():
        Base.metadata.create_all(db.engine)
    yield app, path
    with app.app_context():
        db.engine.dispose()


def break_database(app, path):
    with app.app_context():
        db.engine.dispose()
    path.write_bytes(b"this is not a database" * 100)


def sign_in(client, email):
    page = client.get("/users/login/").get_data(as_text=True)
    token = TOKEN_RE.search(page).group(1)
    data = {"csrf_token": token, "email": email, "password": factories.PASSWORD}
    assert client.post("/users/login/", data=data).status_code == 302


def test_the_500_page_renders_when_the_database_is_broken(file_app, caplog):
    app, path = file_app
    with app.app_context():
        email = factories.UserFactory(name="Ada Lovelace").email
    signed_in, visitor = app.test_client(), app.test_client()
    sign_in(signed_in, email)
    assert "Ada Lovelace" in signed_in.get("/").get_data(as_text=True)

    break_database(app, path)
    requests = [(signed_in, "/"), (signed_in, "/users/me/"), (signed_in, "/boom")]
    requests += [(visitor, "/boom"), (visitor, "/bad_query")]
    with caplog.at_level(logging.ERROR):
        for client, page in requests:
            response = client.get(page)
            assert response.status_code == 500, page
            body = response.get_data(as_text=True)
            assert BRAND in body and "Something went wrong" in body
            assert "Sign in" in body  # shown as to a visitor: nobody can be loaded
            assert_nothing_leaks(app, body)
    # The report could not be queued, but the log says so.
    assert any("could not queue the error report" in r.getMessage() for r in caplog.records)


# -- /healthz ---------------------------------------------------------------------------------


def test_healthz_reports_a_reachable_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "sqlite:///{tmp}/no-such-directory/portal.sqlite3",
    ],
)
def test_healthz_reports_an_unreachable_database(tmp_path, url):
    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url.format(tmp=tmp_path)})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "error", "database": "unreachable"}
    with app.app_context():
        db.engine.dispose()


def test_healthz_answers_again_when_the_database_is_back(file_app):
    app, path = file_app
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    with app.app_context():
        db.engine.dispose()
    path.parent.rename(path.parent.with_name("away"))
    assert client.get("/healthz").status_code == 503
    path.parent.with_name("away").rename(path.parent)
    assert client.get("/healthz").status_code == 200


# -- 429 ------------------------------------------------------------------------------------


def test_429_page_says_when_to_retry(make_app):
    app = make_app()

    @limiter.limit("1 per minute")
    def limited():
        return "ok"

    app.add_url_rule("/limited", "limited", limited)
    client = app.test_client()
    assert client.get("/limited").status_code == 200
    response = client.get("/limited")
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 61
    body = response.get_data(as_text=True)
    assert BRAND in body and "<h1>Too many attempts</h1>" in body
    assert re.search(r"Please wait\s+\d+ seconds\s+before trying again", body)
