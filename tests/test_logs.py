"""Structured logs: one JSON line per request and per worker batch, the request id, Sentry."""

from __future__ import annotations

import gzip
import json
import logging
import re
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
import sentry_sdk
from flask import Flask
from flask.logging import default_handler
from sqlalchemy import select

from config import CONFIGS
from config import ConfigurationError
from config import DevelopmentConfig
from config import ProductionConfig
from config import config_for
from config import production_problems
from config import startup_problems
from portal import logs
from portal.emails.models import Email
from portal.emails.worker import Worker
from portal.extensions import db
from tests import factories

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
NEW_ID = re.compile(r"[0-9a-f]{32}")
REQUEST_FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "account_id",
    "client",
}
OPS = "ops@example.com"
SECRETS = {
    "password": "correct-horse-battery-7",
    "token": "resettokenAAA.secretpartBBB123",
    "query": "qs-secret-token-4242",
    "cookie": "cookie-value-9f8e7d",
    "authorization": "bearer-value-1a2b3c",
}
PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": "b6c1e0f7a2d94c3e8f5a1b7d9e0c2f4a6b8d0e1f3a5c7e9b",
    "TRUSTED_HOSTS": ["portal.example.org"],
    "PORTAL_BASE_URL": "https://portal.example.org",
    "MAIL_TRANSPORT": "smtp",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/15",
}
ENV_VARS = ("LOG_FORMAT", "LOG_LEVEL", "SENTRY_DSN", "SENTRY_ENVIRONMENT")


@pytest.fixture(autouse=True)
def own_logging() -> Iterator[None]:
    """Put logging back as it was: a format picked here ends with the test."""
    saved = {
        logger: (logger.handlers[:], logger.level)
        for logger in (logging.getLogger(), logging.getLogger(logs.APP_LOGGER))
    }
    yield
    for logger, (handlers, level) in saved.items():
        logger.handlers[:] = handlers
        logger.setLevel(level)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def explode() -> str:
    """A view that fails."""
    raise RuntimeError("the view broke")


def chatty() -> str:
    """A view that logs a line of its own."""
    logging.getLogger("portal.somewhere").warning("working on it")
    return "ok"


def add_routes(app: Flask) -> Flask:
    app.add_url_rule("/explode", "explode", explode, methods=["GET", "POST"])
    app.add_url_rule("/chatty", "chatty", chatty)
    return app


@pytest.fixture
def json_app(make_app: Any) -> Iterator[Flask]:
    """An app of its own that logs JSON and answers errors with the 500 page."""
    application = add_routes(
        make_app(LOG_FORMAT="json", LOG_LEVEL="INFO", ADMINS=[OPS], PROPAGATE_EXCEPTIONS=False)
    )
    with application.app_context():
        yield application


@pytest.fixture
def json_client(json_app: Flask) -> Any:
    return json_app.test_client()


def json_lines(capsys: pytest.CaptureFixture[str], logger: str | None = None) -> list[dict]:
    """The JSON log lines written to standard error since the last call."""
    err = capsys.readouterr().err
    found = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in found if logger is None or line["logger"] == logger]


def request_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return json_lines(capsys, logs.REQUEST_LOGGER)


# -- one line per request ---------------------------------------------------------------


def test_a_request_writes_one_json_line_with_typed_fields(json_app, json_client, capsys):
    user = factories.UserFactory()
    post = factories.PostFactory()
    browser_login(json_client, user.email)
    capsys.readouterr()

    response = json_client.get(f"/posts/{post.slug}/")

    assert response.status_code == 200
    [line] = request_lines(capsys)
    assert set(line) == REQUEST_FIELDS
    assert ISO_UTC.fullmatch(line["time"])
    assert line["level"] == "INFO"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert NEW_ID.fullmatch(line["request_id"])
    assert line["method"] == "GET"
    assert line["route"] == "/posts/<slug>/"
    assert post.slug not in json.dumps(line)
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["account_id"] == user.id
    assert line["client"] == "127.0.0.1"


def test_a_visitor_has_no_account_id_and_an_unknown_path_no_route(json_client, capsys):
    json_client.get("/no-such-page/")
    [line] = request_lines(capsys)
    assert (line["status"], line["route"], line["account_id"]) == (404, None, None)


def test_each_request_gets_its_own_id(json_client, capsys):
    first = json_client.get("/").headers["X-Request-ID"]
    second = json_client.get("/").headers["X-Request-ID"]
    assert first != second
    assert [line["request_id"] for line in request_lines(capsys)] == [first, second]


@pytest.mark.parametrize("incoming", ["abc-123_DEF.456", "a" * 8, "Z" * 64])
def test_a_well_formed_incoming_id_is_kept(json_client, capsys, incoming):
    response = json_client.get("/", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming
    [line] = request_lines(capsys)
    assert line["request_id"] == incoming


@pytest.mark.parametrize(
    "hostile",
    [
        "abcdefgh\nforged log line",
        "abcdefgh\r\nX-Injected: 1",
        "x" * 200,
        "a" * 65,
        "short",
        "with spaces in it",
        '<script>alert("id")</script>',
        "caf\u00e9-\u00e9t\u00e9-id",
    ],
)
def test_a_hostile_incoming_id_is_replaced(json_client, capsys, hostile):
    response = json_client.get("/", environ_overrides={"HTTP_X_REQUEST_ID": hostile})
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    assert NEW_ID.fullmatch(request_id)
    err = capsys.readouterr().err
    assert hostile not in err
    assert [json.loads(line)["request_id"] for line in err.splitlines()] == [request_id]


def test_other_lines_during_a_request_carry_its_id(json_client, capsys):
    response = json_client.get("/chatty", headers={"X-Request-ID": "trace-0001"})
    logging.getLogger("portal.somewhere").warning("outside any request")

    lines = json_lines(capsys)
    inside, closing, outside = lines
    assert (inside["logger"], inside["level"], inside["message"]) == (
        "portal.somewhere",
        "WARNING",
        "working on it",
    )
    assert inside["request_id"] == closing["request_id"] == "trace-0001"
    assert response.headers["X-Request-ID"] == "trace-0001"
    assert outside["message"] == "outside any request"
    assert "request_id" not in outside


def test_extra_fields_and_tracebacks_stay_on_one_line(json_app, capsys):
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logging.getLogger("portal.somewhere").exception(
            "failed\u2028here", extra={"count": 3, "what": object()}
        )
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    [line] = [json.loads(err)]
    assert line["message"] == "failed\u2028here"
    assert line["count"] == 3
    assert line["what"].startswith("<object object")
    assert "ValueError: bad\nvalue" in line["exception"]


def test_the_request_line_holds_no_secret(json_app, json_client, capsys):
    user = factories.UserFactory(password=SECRETS["password"])
    json_client.set_cookie("tracker", SECRETS["cookie"])
    headers = {"Authorization": f"Bearer {SECRETS['authorization']}"}
    login = browser_login(json_client, user.email, SECRETS["password"], headers=headers)
    json_client.get(f"/users/reset/{SECRETS['token']}/?next={SECRETS['query']}", headers=headers)

    assert login.status_code == 302
    err = capsys.readouterr().err
    session_cookie = json_client.get_cookie(json_app.config["SESSION_COOKIE_NAME"])
    assert session_cookie is not None
    for secret in [*SECRETS.values(), session_cookie.value, user.password_hash]:
        assert secret not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    routes = {(line["method"], line["route"]) for line in lines if line.get("route")}
    assert ("POST", "/users/login/") in routes
    assert ("GET", "/users/reset/<token:token>/") in routes


def browser_login(client: Any, email: str, password: str = factories.PASSWORD, **kwargs: Any):
    """Sign in through the login form."""
    page = client.get("/users/login/", **kwargs).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    data = {"csrf_token": token.group(1), "email": email, "password": password}
    return client.post("/users/login/", data=data, **kwargs)


def test_static_files_are_logged_only_when_they_fail(json_client, capsys):
    for path, status in [("/static/css/portal.css", 200), ("/static/css/missing.css", 404)]:
        response = json_client.get(path)
        assert response.status_code == status
        response.close()
    [line] = request_lines(capsys)
    assert (line["route"], line["status"]) == ("/static/<path:filename>", 404)


# -- errors ------------------------------------------------------------------------------


def test_the_500_page_and_the_error_report_show_the_request_id(json_client, capsys):
    response = json_client.get("/explode", headers={"X-Request-ID": "incident-2024-0042"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "incident-2024-0042"
    body = response.get_data(as_text=True)
    assert "quote this reference: <code>incident-2024-0042</code>" in body
    [report] = db.session.execute(select(Email).where(Email.to_address == OPS)).scalars().all()
    assert "Request ID: incident-2024-0042" in report.text_body
    lines = json_lines(capsys)
    failure = [line for line in lines if line["level"] == "ERROR"]
    assert failure and all(line["request_id"] == "incident-2024-0042" for line in failure)
    assert "RuntimeError: the view broke" in failure[0]["exception"]
    [closing] = [line for line in lines if line["logger"] == logs.REQUEST_LOGGER]
    assert (closing["route"], closing["status"]) == ("/explode", 500)


def explode_with_token(token: str) -> str:
    """A view under a link token that fails."""
    raise RuntimeError("the view broke")


def test_an_error_under_a_link_token_logs_the_path_without_it(json_app, capsys, caplog):
    json_app.add_url_rule("/explode/<token:token>/", "explode_token", explode_with_token)
    response = json_app.test_client().get(f"/explode/{SECRETS['token']}/")

    assert response.status_code == 500
    err = capsys.readouterr().err
    assert SECRETS["token"] not in err
    assert SECRETS["token"] not in caplog.text
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    [failure] = [line for line in lines if line["level"] == "ERROR"]
    assert failure["message"] == "Exception on /explode/[token]/ [GET]"
    assert "RuntimeError: the view broke" in failure["exception"]


def test_a_view_error_that_propagates_is_still_logged_as_a_500(make_app, capsys):
    app = add_routes(make_app(LOG_FORMAT="json"))
    with pytest.raises(RuntimeError):
        app.test_client().get("/explode")
    [line] = request_lines(capsys)
    assert (line["route"], line["status"]) == ("/explode", 500)


# -- the worker --------------------------------------------------------------------------


def test_a_worker_batch_writes_one_line(json_app, capsys):
    factories.EmailFactory.create_batch(3)
    factories.EmailFactory(to_address="bad\naddress@example.com")

    Worker(batch_size=10, worker_id="worker-7").run(once=True)
    Worker(batch_size=10, worker_id="worker-7").run(once=True)  # nothing left: no line

    [line] = json_lines(capsys, "portal.emails.worker")
    assert line["level"] == "INFO"
    assert line["message"] == "email batch: sent 3, retried 0, failed 1"
    assert line["worker_id"] == "worker-7"
    assert (line["batch_size"], line["claimed"]) == (10, 4)
    assert (line["sent"], line["retried"], line["failed"], line["released"]) == (3, 0, 1, 0)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert "request_id" not in line


# -- configuration ----------------------------------------------------------------------


def test_each_environment_has_its_format(tmp_path):
    assert DevelopmentConfig(tmp_path).LOG_FORMAT == "text"
    assert ProductionConfig(tmp_path).LOG_FORMAT == "json"
    assert CONFIGS["testing"](tmp_path).LOG_FORMAT is None  # pytest's own capture, caplog included
    assert ProductionConfig(tmp_path).LOG_LEVEL == "INFO"
    assert ProductionConfig(tmp_path).SENTRY_TRACES_SAMPLE_RATE == 0


def test_the_environment_picks_format_and_level(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    config = DevelopmentConfig(tmp_path)
    assert (config.LOG_FORMAT, config.LOG_LEVEL) == ("json", "warning")


def test_text_lines_in_development(make_app, capsys):
    app = make_app(LOG_FORMAT="text")
    response = app.test_client().get("/", headers={"X-Request-ID": "dev-request-1"})
    logging.getLogger("portal.somewhere").warning("outside")

    first, second = capsys.readouterr().err.splitlines()
    assert response.status_code == 200
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO portal\.requests \[dev-request-1\] "
        r"GET / 200 \d+ ms",
        first,
    )
    assert second.endswith(" WARNING portal.somewhere [-] outside")


def test_log_level_applies_to_the_app_and_libraries_keep_to_warnings(make_app, capsys):
    app = make_app(LOG_FORMAT="json", LOG_LEVEL="INFO")
    logging.getLogger("alembic.runtime.plugins").info("setup plugin")  # start-up chatter
    logging.getLogger("alembic.runtime.plugins").warning("a library warning")
    logging.getLogger("portal.somewhere").debug("too fine")
    app.test_client().get("/")
    lines = json_lines(capsys)
    assert [line["logger"] for line in lines] == ["alembic.runtime.plugins", logs.REQUEST_LOGGER]
    assert lines[0]["message"] == "a library warning"


def test_a_higher_log_level_drops_the_request_lines(make_app, capsys):
    app = make_app(LOG_FORMAT="json", LOG_LEVEL="WARNING")
    app.test_client().get("/")
    logging.getLogger("portal.somewhere").warning("still shown")
    assert [line["message"] for line in json_lines(capsys)] == ["still shown"]


def test_logging_is_configured_once_for_many_apps(make_app, capsys):
    # As after an app that logged before logging was configured: Flask gave it a handler.
    logging.getLogger("portal").addHandler(default_handler)
    first = make_app(LOG_FORMAT="json")
    handler = logs.portal_handler()
    second = make_app(LOG_FORMAT="json")

    assert logs.portal_handler() is handler
    assert logs.configure_logging("json", "INFO") is False
    assert [h.get_name() for h in logging.getLogger().handlers].count(logs.HANDLER_NAME) == 1
    first.logger.warning("from the app logger")
    second.test_client().get("/")
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("{") for line in err), err  # nothing printed twice, as text
    lines = [json.loads(line) for line in err]
    assert [line["message"] for line in lines].count("from the app logger") == 1
    assert len([line for line in lines if line["logger"] == logs.REQUEST_LOGGER]) == 1


def test_caplog_still_sees_records_once_json_is_on(make_app, caplog):
    # The app is built inside the test, while caplog's handler is on the root logger.
    app = make_app(LOG_FORMAT="json")
    with caplog.at_level(logging.INFO, logger=logs.REQUEST_LOGGER):
        response = app.test_client().get("/")
    [record] = [r for r in caplog.records if r.name == logs.REQUEST_LOGGER]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.request_id == response.headers["X-Request-ID"]  # type: ignore[attr-defined]


def test_the_quiet_default_of_tests_configures_nothing(app):
    assert app.config["LOG_FORMAT"] is None
    assert logs.logging_settings(app) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is unknown; use json or text."),
        ({"LOG_FORMAT": "json", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is unknown"),
        ({"SENTRY_DSN": "not a dsn"}, "SENTRY_DSN is not a valid DSN"),
        (
            {"SENTRY_DSN": "http://public@127.0.0.1:9/1", "SENTRY_TRACES_SAMPLE_RATE": "2"},
            "SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1, not '2'.",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(make_app, overrides, message):
    with pytest.raises(ConfigurationError) as error:
        make_app(**overrides)
    assert message in str(error.value)
    assert not sentry_sdk.get_client().is_active()


def test_a_bad_sample_rate_in_the_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTRY_TRACES_SAMPLE_RATE", "often")
    with pytest.raises(ConfigurationError, match="from 0 to 1, not 'often'"):
        config_for("production", tmp_path)


# -- Sentry ---------------------------------------------------------------------------------


class Collector(BaseHTTPRequestHandler):
    """Accept Sentry envelopes and keep their bodies, decompressed."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        self.server.received.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test's output clean."""


@pytest.fixture
def sentry_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def no_sentry_after() -> Iterator[None]:
    """Close whatever client a test started, so no other test reports to it."""
    yield
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    assert not sentry_sdk.get_client().is_active()


def envelope_events(bodies: list[bytes]) -> list[dict]:
    """The event items in the envelopes the server received."""
    events = []
    for body in bodies:
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_an_unhandled_error_reaches_sentry_scrubbed_and_tagged(
    make_app, sentry_server, no_sentry_after
):
    port = sentry_server.server_address[1]
    app = add_routes(
        make_app(
            SENTRY_DSN=f"http://public@127.0.0.1:{port}/1",
            PROPAGATE_EXCEPTIONS=False,
            WTF_CSRF_ENABLED=False,
            ADMINS=[OPS],
        )
    )
    client = app.test_client()
    client.set_cookie("tracker", SECRETS["cookie"])

    response = client.post(
        f"/explode?token={SECRETS['query']}",
        data={
            "password": SECRETS["password"],
            "reset_code": "314159",
            "api_secret": "shh-secret-value",
            "note": "harmless-note-value",
        },
        headers={"Authorization": f"Bearer {SECRETS['authorization']}"},
    )
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)

    raw = b"".join(sentry_server.received)
    [event] = envelope_events(sentry_server.received)
    request_id = response.headers["X-Request-ID"]
    assert event["tags"]["request_id"] == request_id
    assert event["environment"] == "testing"
    assert event["release"] == logs.release()
    assert event["exception"]["values"][-1]["value"] == "the view broke"
    assert event["request"]["data"]["note"] == "harmless-note-value"
    assert event["request"]["url"] == "http://localhost/explode"
    assert event["request"]["headers"]["Authorization"] == logs.FILTERED
    assert "cookies" not in event["request"] and "user" not in event
    assert sentry_sdk.get_client().should_send_default_pii() is False
    for secret in [*SECRETS.values(), "314159", "shh-secret-value"]:
        assert secret.encode() not in raw
    # Beside the mail to ADMINS, not instead of it.
    with app.app_context():
        reports = db.session.execute(select(Email).where(Email.to_address == OPS)).scalars().all()
    assert len(reports) == 1
    assert f"Request ID: {request_id}" in reports[0].text_body


def test_a_second_app_with_the_same_dsn_keeps_the_client(make_app, no_sentry_after):
    make_app(SENTRY_DSN="http://public@127.0.0.1:9/1")
    client = sentry_sdk.get_client()
    app = make_app(SENTRY_DSN="http://public@127.0.0.1:9/1")
    assert sentry_sdk.get_client() is client
    assert app.extensions[logs.SENTRY_EXTENSION] is True


def test_without_a_dsn_sentry_stays_off(app):
    assert logs.init_sentry(app) is False
    assert not sentry_sdk.get_client().is_active()
    assert logs.SENTRY_EXTENSION not in app.extensions


def test_scrubbing_removes_cookies_credentials_and_secret_fields():
    event = {
        "request": {
            "url": "http://portal.test/users/reset/abc.def/",
            "query_string": "token=abc",
            "cookies": {"portal_session": "value"},
            "headers": {
                "Cookie": "portal_session=value",
                "Authorization": "Bearer abc",
                "X-CSRF-Token": "abc",
                "User-Agent": "pytest",
            },
            "data": {"new_password": "x", "otp_code": "1", "csrf_token": "t", "name": "Ada"},
        },
        "exception": {
            "values": [
                {"stacktrace": {"frames": [{"vars": {"password": "x", "form": {"token": "y"}}}]}}
            ]
        },
        "extra": {"client_secret": "s", "count": 2},
    }
    scrubbed = logs.scrub_event(event, {})
    request_info = scrubbed["request"]
    assert "cookies" not in request_info and "query_string" not in request_info
    assert request_info["url"] == "http://portal.test"  # outside a request no route is known
    assert request_info["headers"] == {
        "Cookie": logs.FILTERED,
        "Authorization": logs.FILTERED,
        "X-CSRF-Token": logs.FILTERED,
        "User-Agent": "pytest",
    }
    assert request_info["data"] == {
        "new_password": logs.FILTERED,
        "otp_code": logs.FILTERED,
        "csrf_token": logs.FILTERED,
        "name": "Ada",
    }
    frame = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["vars"] == {"password": logs.FILTERED, "form": {"token": logs.FILTERED}}
    assert scrubbed["extra"] == {"client_secret": logs.FILTERED, "count": 2}


def test_the_referrer_which_may_name_a_link_token_is_filtered():
    referer = f"http://portal.test/users/reset/{SECRETS['token']}/"
    event = {"request": {"headers": {"Referer": referer, "User-Agent": "pytest"}}}
    headers = logs.scrub_event(event, {})["request"]["headers"]
    assert headers == {"Referer": logs.FILTERED, "User-Agent": "pytest"}


def test_a_raw_body_is_dropped_whole():
    event = {"request": {"data": '{"password": "x"}'}}
    assert logs.scrub_event(event, {})["request"]["data"] == logs.FILTERED


def test_a_dsn_without_the_sdk_is_a_production_problem(monkeypatch):
    config = {"SENTRY_DSN": "https://public@sentry.example.org/1"}
    assert not [p for p in startup_problems(config) if p.startswith("SENTRY_DSN")]
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    expected = (
        "SENTRY_DSN is set but sentry-sdk is not installed: install it "
        "(pip install 'portal[sentry]') or unset SENTRY_DSN."
    )
    assert expected in startup_problems(config)
    assert expected in production_problems(config)
    assert expected not in startup_problems({})


def test_a_dsn_without_the_sdk_outside_production_warns_and_goes_on(make_app, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    with caplog.at_level(logging.WARNING, logger="portal.logs"):
        app = make_app(SENTRY_DSN="https://public@sentry.example.org/1")
    assert logs.SENTRY_EXTENSION not in app.extensions
    assert "SENTRY_DSN is set but sentry-sdk is not installed" in caplog.text


def test_production_refuses_a_dsn_without_the_sdk(make_app, monkeypatch):
    dsn = "https://public@sentry.example.org/1"
    make_app(**PRODUCTION, SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="staging")  # starts with the SDK
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    with pytest.raises(ConfigurationError) as error:
        make_app(**PRODUCTION, SENTRY_DSN=dsn)
    assert str(error.value) == (
        "Refusing to start: SENTRY_DSN is set but sentry-sdk is not installed: install it "
        "(pip install 'portal[sentry]') or unset SENTRY_DSN."
    )


def test_request_id_in_templates_outside_a_request_is_none(app):
    assert app.jinja_env.globals["request_id"]() is None
    with app.test_request_context("/"):
        assert logs.current_request_id() is None  # no hook has run
