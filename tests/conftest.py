"""Fixtures: one app per backend, a rolled-back transaction per test.

SQLite always, PostgreSQL when reachable (and required in CI).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask import has_app_context
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from flask_sqlalchemy.session import Session
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

from portal import create_app
from portal import models  # noqa: F401 - every table on the metadata, for create_all
from portal.database import Base
from portal.emails.transports import outbox
from portal.extensions import db
from portal.extensions import limiter
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


class Backends:
    """One database and one app per backend for the whole run (per xdist worker).

    Built on first use and kept: a worker that alternates between SQLite and
    PostgreSQL tests reuses both instead of rebuilding either.
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.urls: dict[str, str] = {}
        self.apps: dict[str, Flask] = {}
        self.states: dict[str, AppState] = {}
        self._schemas = ExitStack()

    def url(self, backend: str) -> str:
        if backend not in self.urls:
            if backend == "sqlite":
                path = self.tmp_path_factory.mktemp("db") / "portal.sqlite3"
                url = f"sqlite:///{path}"
            else:
                require_service(POSTGRES_URL, 5432, "PostgreSQL")
                url = self._schemas.enter_context(private_schema("portal_test"))
            engine = create_engine(url)
            Base.metadata.create_all(engine)
            engine.dispose()
            self.urls[backend] = url
        return self.urls[backend]

    def app(self, backend: str) -> Flask:
        if backend not in self.apps:
            app = build_app(self.url(backend))
            self.apps[backend] = app
            self.states[backend] = AppState.of(app)
        return self.apps[backend]

    def close(self) -> None:
        for app in self.apps.values():
            with app.app_context():
                db.engine.dispose()
        self._schemas.close()


def build_app(database_url: str, **overrides: Any) -> Flask:
    config = {"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": database_url, **overrides}
    app = create_app(config)
    app.test_client_class = IsolatedClient
    return app


@dataclass
class AppState:
    """What a test may change on the shared app (settings, limits, mail), to put back."""

    config: dict[str, Any]
    extensions: dict[str, Any]
    limiter: dict[str, Any]
    limits: dict[str, Any]

    @classmethod
    def of(cls, app: Flask) -> AppState:
        return cls(
            config=copy.deepcopy(dict(app.config)),
            extensions=dict(app.extensions),
            limiter=dict(vars(limiter)),
            limits=dict(vars(limiter.limit_manager)),
        )

    def restore(self, app: Flask) -> None:
        """Put the app back as it was built; clear rate-limit counters and the outbox."""
        app.config.clear()
        app.config.update(copy.deepcopy(self.config))
        app.extensions.clear()
        app.extensions.update(self.extensions)
        outbox(app).clear()
        # The limiter is one object; an app a test built re-binds it to its own storage.
        # Its limit manager too: an app built with RATELIMIT_DEFAULT sets default
        # limits on it in place, which would then apply to the shared app.
        vars(limiter).update(self.limiter)
        vars(limiter.limit_manager).update(self.limits)
        limiter.reset()


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    store = Backends(tmp_path_factory)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backends: Backends, backend: str) -> str:
    """The URL of this backend's test database, shared by the whole run."""
    return backends.url(backend)


class JoinedSession(Session):
    """A session that works inside the test's open transaction.

    Flask-SQLAlchemy picks the app's engine itself; a session of an app on the
    test database is given the test's connection instead, so every request,
    command and factory of the test writes into one transaction that is rolled
    back at its end. ``join_transaction_mode="create_savepoint"`` turns each
    ``commit()`` the code makes into the release of a SAVEPOINT.
    """

    def get_bind(self, *args: Any, **kwargs: Any) -> Any:
        engine = super().get_bind(*args, **kwargs)
        joined = self.bind
        if isinstance(joined, Connection) and engine.url == joined.engine.url:
            return joined
        return engine

    def settle(self) -> None:
        """End this session's SAVEPOINT before a request, if it holds no change of its own.

        Savepoints nest: left open, it would enclose the request's work, and
        a ``rollback()`` the test makes afterwards (to read rows afresh) would
        undo what the request committed. Objects are not expired, as another
        connection's commit would not expire them either.
        """
        if not self.in_transaction() or self.new or self.dirty or self.deleted:
            return
        if self.info.get("flushed"):
            return
        keep = self.expire_on_commit
        self.expire_on_commit = False
        try:
            self.commit()
        finally:
            self.expire_on_commit = keep
        # The test's transaction is still "open" as far as it knows: its next
        # commit or rollback expires what it holds, as that transaction's end would.
        self.info["settled"] = True

    def commit(self) -> None:
        super().commit()
        if self.info.pop("settled", False) and self.expire_on_commit:
            self.expire_all()

    def rollback(self) -> None:
        super().rollback()
        if self.info.pop("settled", False):
            self.expire_all()


@event.listens_for(JoinedSession, "after_flush")
def _note_flush(session: Session, context: Any) -> None:
    session.info["flushed"] = True


@event.listens_for(JoinedSession, "after_transaction_end")
def _forget_flush(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop("flushed", None)


@contextmanager
def rolled_back(app: Flask) -> Iterator[None]:
    """Run the test in one transaction on one connection, rolled back at the end."""
    with app.app_context():
        engine = db.engine
    connection = engine.connect()
    sqlite = engine.dialect.name == "sqlite"
    transaction = connection.begin()
    if sqlite:
        # The sqlite3 module opens transactions on its own and would let a
        # RELEASE SAVEPOINT commit; with its autocommit we say BEGIN ourselves.
        connection.connection.driver_connection.isolation_level = None  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN")
    else:
        restart_sequences(connection)
    original = db.session
    # Flask-SQLAlchemy's own factory for its scoped session (a private method,
    # stable since 3.0): the replacement keeps its per-app-context scoping.
    db.session = db._make_scoped_session(
        {"class_": JoinedSession, "bind": connection, "join_transaction_mode": "create_savepoint"}
    )
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
        db.session = original
        transaction.rollback()
        if sqlite:
            connection.connection.driver_connection.isolation_level = ""  # type: ignore[union-attr]
        connection.close()


def restart_sequences(connection: Connection) -> None:
    """Number rows from 1 in every test, as a new database would (sequences ignore rollback)."""
    calls = ", ".join(
        f"setval(pg_get_serial_sequence('{table.name}', '{column.name}'), 1, false)"
        for table in Base.metadata.sorted_tables
        for column in table.primary_key.columns
        if column.autoincrement is True or column.autoincrement == "auto"
        if column.type.python_type is int and len(table.primary_key.columns) == 1
    )
    connection.exec_driver_sql(f"SELECT {calls}")


def empty_tables(engine: Engine) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())


@pytest.fixture
def database(request: pytest.FixtureRequest, backends: Backends, backend: str) -> Iterator[Flask]:
    """The shared app of this backend, its database as the test left none of it.

    A test runs inside a transaction that is rolled back; a test marked
    ``commits`` (threads, subprocesses, a live server) commits for real, and
    the tables are emptied after it.
    """
    app = backends.app(backend)
    state = backends.states[backend]
    try:
        if request.node.get_closest_marker("commits"):
            try:
                yield app
            finally:
                with app.app_context():
                    db.session.remove()
                    empty_tables(db.engine)
        else:
            with rolled_back(app):
                yield app
    finally:
        state.restore(app)


class IsolatedClient(FlaskClient):
    """Run each request in its own app context, as a server would.

    Tests hold an app context open for factories and queries; without this,
    requests would share its ``g`` and database session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        test_session = db.session() if has_app_context() else None
        if isinstance(test_session, JoinedSession):
            test_session.settle()
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def make_app(database: Flask, database_url: str) -> Iterator[Any]:
    """Build an app of its own, for settings read only when an app is built.

    Settings read per request are changed on the shared app's config instead
    (``app.config[...] = ...``); the ``app`` fixture puts them back. Apps
    built here work inside the test's transaction too.
    """
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        app = build_app(database_url, **overrides)
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(database: Flask) -> Iterator[Flask]:
    """The app under test, with an application context pushed."""
    with database.app_context():
        yield database


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


CSRF_FIELD = "csrf_token"
CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(client: FlaskClient, path: str, **kwargs: Any) -> str:
    """Fetch ``path`` and return the CSRF token of its form."""
    response = client.get(path, headers=kwargs.get("headers"))
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1) or match.group(2)


def session_csrf_token(client: FlaskClient) -> str:
    """The CSRF token any form of the client's session carries, made as Flask-WTF makes it.

    Every form of one session carries an equally valid token, so a test need
    not render the page to post to it: the session's secret is read (or
    created, as a first page would) and signed.
    """
    app = client.application
    with client.session_transaction() as session:
        secret = session.setdefault(CSRF_FIELD, hashlib.sha1(os.urandom(64)).hexdigest())
    key = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
    return str(URLSafeTimedSerializer(key, salt="wtf-csrf-token").dumps(secret))


class Browser:
    """Submit forms as a browser would: POST with the session's CSRF token.

    ``token_from`` opens that page first and takes the token from its form,
    for a test whose page view itself matters (it reads or starts a step);
    so does a submit with headers of its own, whose cookies may differ.
    """

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
        if token_from is None and not kwargs.get("headers"):
            token = session_csrf_token(self.client)
        else:
            # Headers (another Host, a language) make the page's own answer the one to use.
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
