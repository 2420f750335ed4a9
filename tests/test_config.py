"""Settings from the environment, and production refusing to start with unsafe ones."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine
from werkzeug.security import generate_password_hash

from config import ConfigurationError
from config import config_for
from config import settings
from portal import ROOT
from portal import create_app
from portal.database import Base
from tests.conftest import REDIS_URL

HOST = "portal.example.org"
READ_INSTANCE_SECRET = settings.read_instance_secret
# Everything the settings read; a developer's shell must not change the outcome.
VARIABLES = [
    "PORTAL_ENV",
    "SECRET_KEY",
    "FLASK_DEBUG",
    "DATABASE_URL",
    "TRUSTED_HOSTS",
    "PORTAL_BASE_URL",
    "MAIL_TRANSPORT",
    "MAIL_PORT",
    "ADMINS",
    "REDIS_URL",
    "PROXY_COUNT",
]


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    """A clean environment, and an instance folder of the test's own."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    instance = tmp_path / "instance"
    instance.mkdir()
    # create_app's instance folder is the checkout's; read the test's instead.
    monkeypatch.setattr(
        settings, "read_instance_secret", lambda _path: READ_INSTANCE_SECRET(instance)
    )
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    return instance


def good_production(monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.setenv("TRUSTED_HOSTS", HOST)
    monkeypatch.setenv("PORTAL_BASE_URL", f"https://{HOST}")
    monkeypatch.setenv("MAIL_TRANSPORT", "smtp")
    # Nothing connects to it unless a limited form is posted.
    monkeypatch.setenv("REDIS_URL", REDIS_URL)


def refusal(config=None):
    with pytest.raises(ConfigurationError) as caught:
        create_app(config)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- production starts with good settings ------------------------------------------------


def test_production_starts_with_good_settings(monkeypatch):
    good_production(monkeypatch)
    app = create_app()
    assert app.config["ENV_NAME"] == "production"
    assert (app.debug, app.testing) == (False, False)
    assert app.config["SECRET_KEY"] == os.environ["SECRET_KEY"]
    assert app.config["TRUSTED_HOSTS"] == [HOST]
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["REMEMBER_COOKIE_HTTPONLY"]
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
    assert app.config["RATELIMIT_STORAGE_URI"] == REDIS_URL


def test_production_reads_the_key_that_manage_py_init_wrote(monkeypatch, environment):
    good_production(monkeypatch)
    monkeypatch.delenv("SECRET_KEY")
    key = secrets.token_hex(32)
    (environment / "secret_key").write_text(key + "\n", encoding="utf-8")
    assert create_app().config["SECRET_KEY"] == key


def test_config_reads_the_key_from_the_instance_folder_it_is_given(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "read_instance_secret", READ_INSTANCE_SECRET)
    key = secrets.token_hex(32)
    (tmp_path / "secret_key").write_text(key + "\n", encoding="utf-8")
    assert config_for("production", tmp_path).SECRET_KEY == key
    assert config_for("production", tmp_path / "missing").SECRET_KEY is None


def test_the_environment_key_wins_over_the_instance_file(monkeypatch, environment):
    good_production(monkeypatch)
    (environment / "secret_key").write_text(secrets.token_hex(32), encoding="utf-8")
    assert create_app().config["SECRET_KEY"] == os.environ["SECRET_KEY"]


def test_development_needs_no_secret_key_or_mail_settings():
    app = create_app()
    assert app.config["ENV_NAME"] == "development"
    assert app.debug is True
    assert app.config["SECRET_KEY"]
    assert app.config["MAIL_TRANSPORT"] == "console"


# -- production refuses to start ---------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "overrides", "problem", "advice"),
    [
        ({"SECRET_KEY": None}, {}, "SECRET_KEY is not set", "python manage.py init"),
        ({"SECRET_KEY": "a1b2c3d4e5f6"}, {}, "only 12 characters", "at least 32"),
        ({"SECRET_KEY": "dev"}, {}, "well-known default", "python manage.py init"),
        ({"SECRET_KEY": "changeme"}, {}, "well-known default", "python manage.py init"),
        ({"SECRET_KEY": " ChangeMe "}, {}, "well-known default", "python manage.py init"),
        (
            {"SECRET_KEY": settings.DEVELOPMENT_SECRET_KEY},
            {},
            "well-known default",
            "python manage.py init",
        ),
        ({"FLASK_DEBUG": "1"}, {}, "DEBUG is on", "unset FLASK_DEBUG"),
        ({}, {"DEBUG": True}, "DEBUG is on", "unset FLASK_DEBUG"),
        ({}, {"TESTING": True}, "TESTING is on", "testing config"),
        ({}, {"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE is off", "HTTPS"),
        ({}, {"REMEMBER_COOKIE_SECURE": False}, "REMEMBER_COOKIE_SECURE is off", "HTTPS"),
        ({}, {"SESSION_COOKIE_HTTPONLY": False}, "SESSION_COOKIE_HTTPONLY is off", "scripts"),
        ({}, {"REMEMBER_COOKIE_HTTPONLY": False}, "REMEMBER_COOKIE_HTTPONLY is off", "scripts"),
        ({}, {"SESSION_COOKIE_SAMESITE": None}, "SESSION_COOKIE_SAMESITE is None", "'Lax'"),
        ({}, {"REMEMBER_COOKIE_SAMESITE": "None"}, "REMEMBER_COOKIE_SAMESITE is", "'Lax'"),
        # Every worker would count on its own: 4 workers, 4 times the limit.
        ({"REDIS_URL": None}, {}, "REDIS_URL is not set", "counted per process"),
        ({"REDIS_URL": ""}, {}, "REDIS_URL is not set", "counted per process"),
        ({}, {"RATELIMIT_STORAGE_URI": "memory://"}, "REDIS_URL is not set", "set REDIS_URL"),
    ],
)
def test_production_refuses_unsafe_settings(monkeypatch, variables, overrides, problem, advice):
    good_production(monkeypatch)
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    message = refusal(overrides or None)
    assert message.startswith("Refusing to start: ")
    assert problem in message
    assert advice in message


def test_production_refuses_an_empty_instance_key_file(monkeypatch, environment):
    good_production(monkeypatch)
    monkeypatch.delenv("SECRET_KEY")
    (environment / "secret_key").write_text("\n", encoding="utf-8")
    assert "SECRET_KEY is not set" in refusal()


def test_refusal_names_the_first_problem_and_counts_the_rest(monkeypatch):
    good_production(monkeypatch)
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    message = refusal()
    assert "SECRET_KEY is not set" in message
    assert message.endswith("(1 more: run `python manage.py check`)")


def test_secret_key_in_the_config_mapping_is_checked_too(monkeypatch):
    good_production(monkeypatch)
    assert "well-known default" in refusal({"SECRET_KEY": "secret"})


def test_development_and_testing_accept_what_production_refuses(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "dev")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert create_app({"PORTAL_ENV": "development"}).debug is True
    assert create_app({"PORTAL_ENV": "testing"}).testing is True


# -- other one-line configuration errors -----------------------------------------------


def test_unknown_portal_env_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "Staging")
    assert refusal() == (
        "PORTAL_ENV='staging' is unknown; use one of development, testing, production."
    )


def test_unknown_mail_transport_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("MAIL_TRANSPORT", "pigeon")
    message = refusal()
    assert message.startswith("MAIL_TRANSPORT='pigeon' is unknown; use one of ")
    assert "smtp" in message and "console" in message


def test_a_number_that_is_not_one_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("MAIL_PORT", "twenty-five")
    assert refusal() == "MAIL_PORT must be a whole number, not 'twenty-five'."


def test_lists_and_database_urls_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ADMINS", " ops@example.com, ,dev@example.com ")
    monkeypatch.setenv("TRUSTED_HOSTS", f"{HOST},www.{HOST}")
    monkeypatch.setenv("DATABASE_URL", "postgres://portal@db.internal/portal")
    config = config_for("production", tmp_path)
    assert config.ADMINS == ["ops@example.com", "dev@example.com"]
    assert config.TRUSTED_HOSTS == [HOST, f"www.{HOST}"]
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://portal@db.internal/portal"


# -- gunicorn --------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_env(tmp_path, **values):
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(
        PORTAL_ENV="production",
        SECRET_KEY=secrets.token_hex(32),
        TRUSTED_HOSTS=HOST,
        PORTAL_BASE_URL=f"https://{HOST}",
        MAIL_TRANSPORT="smtp",
        REDIS_URL=REDIS_URL,
        DATABASE_URL=f"sqlite:///{tmp_path / 'served.sqlite3'}",
    )
    env.update(values)
    return env


def gunicorn(port):
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "portal:create_app()",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--no-control-socket",
    ]


def get_healthz(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz", headers={"Host": HOST})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def test_gunicorn_serves_the_production_config(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'served.sqlite3'}")
    Base.metadata.create_all(engine)
    engine.dispose()
    port = free_port()
    with open(tmp_path / "stderr", "w+b") as stderr:
        server = subprocess.Popen(
            gunicorn(port),
            cwd=ROOT,
            env=gunicorn_env(tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, (tmp_path / "stderr").read_text()
                try:
                    status, content_type, body = get_healthz(port)
                    break
                except OSError:
                    assert time.monotonic() < deadline, "gunicorn did not answer in 30 s"
                    time.sleep(0.1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert status == 200
    assert content_type == "application/json"
    assert json.loads(body) == {"status": "ok", "database": "ok"}
    assert server.returncode == 0


@pytest.mark.parametrize(
    ("unsafe", "reason"),
    [
        (
            {"SECRET_KEY": "changeme"},
            "Refusing to start: SECRET_KEY is a well-known default: generate a new one with",
        ),
        # Without Redis each worker would keep its own rate-limit counters.
        ({"REDIS_URL": ""}, "Refusing to start: REDIS_URL is not set: rate limits would be"),
    ],
)
def test_gunicorn_will_not_serve_an_unsafe_config(tmp_path, unsafe, reason):
    result = subprocess.run(
        gunicorn(free_port()),
        cwd=ROOT,
        env=gunicorn_env(tmp_path, **unsafe),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert any(line.startswith(reason) for line in result.stderr.splitlines()), result.stderr


@pytest.mark.parametrize("name", ["development", "production"])
def test_only_the_tests_hash_passwords_at_a_low_cost(app, name, tmp_path):
    from portal.users.models import hash_password

    assert config_for(name, tmp_path).PASSWORD_HASH_METHOD is None
    assert hash_password("x").startswith("scrypt:1024:8:1$")
    app.config["PASSWORD_HASH_METHOD"] = None
    # Werkzeug's default cost, whatever this version of it chooses.
    assert hash_password("x").split("$")[0] == generate_password_hash("x").split("$")[0]
