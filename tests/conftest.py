"""Fixtures: an app per test on a clean database, SQLite always, PostgreSQL when reachable."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

from portal import create_app
from portal.database import Base
from portal.emails.transports import outbox
from portal.extensions import db
from tests import factories

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(url: str, default_port: int) -> bool:
    """Tell whether something listens at the host and port of ``url``."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def require_service(url: str, port: int, name: str) -> None:
    """Skip without the service, but fail in CI, where it must be up."""
    if reachable(url, port):
        return
    message = f"{name} is not reachable at {url}"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it.")
    pytest.skip(message)


@contextmanager
def private_schema(prefix: str) -> Iterator[str]:
    """Yield a PostgreSQL URL whose tables live in a fresh schema, dropped afterwards.

    Test runs side by side (and their worker processes) never see each
    other's rows.
    """
    schema = f"{prefix}_{os.getpid()}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield (
            make_url(POSTGRES_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One schema per backend for the whole run; tests get it emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.sqlite3'}"
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    with private_schema("portal_test") as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url


def empty_tables(engine: Engine) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


class IsolatedClient(FlaskClient):
    """Run each request in its own app context, as a server would.

    Tests hold an app context open for factories and queries; without this,
    requests would share its ``g`` and database session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def make_app(database_url: str) -> Iterator[Any]:
    """Build apps on the test database with config overrides; clean up after."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        config = {"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url}
        config.update(overrides)
        app = create_app(config)
        app.test_client_class = IsolatedClient
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            empty_tables(db.engine)
            db.engine.dispose()


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    """The app under test, with an application context pushed."""
    application = make_app()
    with application.app_context():
        yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def mail(app: Flask) -> list[EmailMessage]:
    """Messages the memory transport delivered."""
    return outbox(app)


CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(client: FlaskClient, path: str, **kwargs: Any) -> str:
    """Fetch ``path`` and return the CSRF token of its form."""
    response = client.get(path, headers=kwargs.get("headers"))
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1) or match.group(2)


class Browser:
    """Submit forms the way a browser does: GET the page, POST with its token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def submit(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        token_from: str | None = None,
        **kwargs: Any,
    ) -> Any:
        token = csrf_token(self.client, token_from or path, headers=kwargs.get("headers"))
        payload = {"csrf_token": token, **(data or {})}
        return self.client.post(path, data=payload, **kwargs)


class AuthActions:
    """Sign in and out through the real pages."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.browser = Browser(client)

    def login(self, email: str, password: str = factories.PASSWORD, **extra: Any) -> Any:
        return self.browser.submit("/users/login/", {"email": email, "password": password, **extra})

    def logout(self) -> Any:
        return self.browser.submit("/users/logout/", token_from="/users/me/")


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def redis_url() -> str:
    require_service(REDIS_URL, 6379, "Redis")
    return REDIS_URL
