"""The maintenance tasks, driven through the CLI runner as an operator would run them."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import text

from config import config_for
from portal import create_app
from portal import security
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.transports import DeliveryError
from portal.extensions import db
from portal.seed import DEMO_ACCOUNTS
from portal.users import constants as USER
from portal.users.models import User
from tests.conftest import REDIS_URL
from tests.factories import PASSWORD
from tests.factories import AdminFactory
from tests.factories import EmailFactory
from tests.factories import InactiveUserFactory
from tests.factories import NewUserFactory
from tests.factories import StaffFactory
from tests.factories import UserFactory
from tests.helpers import assert_no_traceback
from tests.helpers import fails_with

ROOT = Path(__file__).resolve().parent.parent
# Passes the password policy, and differs from the factories' PASSWORD.
NEW_PASSWORD = "quiet-harbor-93-kettles"
PRODUCTION_ENV = ("SECRET_KEY", "TRUSTED_HOSTS", "PORTAL_BASE_URL", "MAIL_TRANSPORT", "REDIS_URL")
REDIS_PROBLEM = (
    "REDIS_URL is not set: rate limits would be counted per process, so each worker "
    "allows the whole limit again; set REDIS_URL (e.g. redis://127.0.0.1:6379/0)."
)


# -- helpers ---------------------------------------------------------------------


def account(email: str) -> User | None:
    """Read an account as committed: what a later command or request would see."""
    db.session.rollback()
    return db.session.execute(
        select(User).where(func.lower(User.email) == email.lower())
    ).scalar_one_or_none()


def account_count() -> int:
    db.session.rollback()
    return db.session.execute(select(func.count(User.id))).scalar_one()


def email_row(email_id: int) -> Email:
    db.session.rollback()
    row = db.session.get(Email, email_id)
    assert row is not None
    return row


@contextmanager
def running(app: Flask) -> Iterator[FlaskCliRunner]:
    """Give a runner whose commands (and our re-queries) use ``app``, not the fixture app."""
    with app.app_context():
        yield app.test_cli_runner()


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    """A database URL for an empty SQLite file that only this test uses."""
    return f"sqlite:///{tmp_path / 'x.db'}"


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """The worker installs SIGTERM/SIGINT handlers; give pytest its own back."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    """An environment `check` accepts: strong key, trusted hosts, https, SMTP, Redis."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.setenv("TRUSTED_HOSTS", "portal.example.com")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.com")
    monkeypatch.setenv("MAIL_TRANSPORT", "smtp")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)


# -- init ------------------------------------------------------------------------


def test_init_writes_a_private_secret_key_and_migrates(
    make_app: Any, tmp_path: Path, sqlite_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=sqlite_file)
    instance = tmp_path / "instance"
    app.instance_path = str(instance)
    key_file = instance / "secret_key"

    with running(app) as runner:
        result = runner.invoke(args=["init"])
        assert_no_traceback(result)
        assert result.exit_code == 0
        # Alembic logs its progress to stderr; the command's own report is on stdout.
        assert result.stdout.splitlines() == [
            f"Secret key: wrote {key_file}",
            "Database: schema is up to date.",
        ]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text(encoding="utf-8").strip()
        assert re.fullmatch(r"[0-9a-f]{64}", key)
        tables = set(inspect(db.engine).get_table_names())
        assert {"users_user", "emails_email", "emails_attempt", "alembic_version"} <= tables
        with db.engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            heads = ScriptDirectory(app.extensions["migrate"].directory).get_heads()
            assert [version.scalar_one()] == heads

    # Production picks the key up when SECRET_KEY is not in the environment.
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert config_for("production", instance).SECRET_KEY == key


def test_init_a_second_time_keeps_the_key_and_the_data(
    make_app: Any, tmp_path: Path, sqlite_file: str
) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=sqlite_file)
    app.instance_path = str(tmp_path)
    key_file = tmp_path / "secret_key"
    with running(app) as runner:
        assert runner.invoke(args=["init"]).exit_code == 0
        key = key_file.read_text(encoding="utf-8")
        UserFactory(email="kept@example.com")

        result = runner.invoke(args=["init"])

        assert_no_traceback(result)
        assert result.exit_code == 0
        assert result.stdout.splitlines() == [
            f"Secret key: kept {key_file}",
            "Database: schema is up to date.",
        ]
        assert key_file.read_text(encoding="utf-8") == key
        assert account("kept@example.com") is not None


def test_init_says_why_the_database_cannot_be_migrated(tmp_path: Path) -> None:
    # Not make_app: its clean-up would try to empty tables in a database that cannot open.
    app = create_app(
        {
            "PORTAL_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
        }
    )
    app.instance_path = str(tmp_path)
    try:
        with running(app) as runner:
            result = runner.invoke(args=["init"])
    finally:
        with app.app_context():
            db.engine.dispose()

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stdout == f"Secret key: wrote {tmp_path / 'secret_key'}\n"
    assert result.stderr.splitlines()[-1] == (
        "Error: The database could not be migrated: unable to open database file"
    )


# -- check -----------------------------------------------------------------------


def test_check_lists_every_problem_and_exits_non_zero(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.instance_path = str(tmp_path)  # no instance/secret_key either
    for name in PRODUCTION_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_BASE_URL", "http://portal.example.com")
    monkeypatch.setenv("MAIL_TRANSPORT", "console")
    monkeypatch.setenv("FLASK_DEBUG", "1")

    result = runner.invoke(args=["check"])

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "- SECRET_KEY is not set: set the SECRET_KEY environment variable "
        "or run `python manage.py init` to write instance/secret_key.",
        "- DEBUG is on: unset FLASK_DEBUG; the debugger runs code for anyone.",
        f"- {REDIS_PROBLEM}",
        "- TRUSTED_HOSTS is not set: list the site's host names, comma-separated "
        "(e.g. TRUSTED_HOSTS=portal.example.com).",
        "- PORTAL_BASE_URL must be the site's https:// address: email links are built from it.",
        "- MAIL_TRANSPORT is 'console': production delivers with 'smtp'.",
        "- The database schema is not up to date: run `python manage.py db upgrade`.",
        "Error: 7 problem(s) found.",
    ]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "SECRET_KEY",
            "changeme",
            "SECRET_KEY is a well-known default: generate a new one with `python manage.py init` "
            "or `python -c 'import secrets; print(secrets.token_hex(32))'`.",
        ),
        (
            "SECRET_KEY",
            "k" * 20,
            "SECRET_KEY is only 20 characters: use at least 32 random characters.",
        ),
        (
            "TRUSTED_HOSTS",
            " , ",
            "TRUSTED_HOSTS is not set: list the site's host names, comma-separated "
            "(e.g. TRUSTED_HOSTS=portal.example.com).",
        ),
        (
            "MAIL_TRANSPORT",
            "memory",
            "MAIL_TRANSPORT is 'memory': production delivers with 'smtp'.",
        ),
        (
            "PORTAL_BENCH_ROUTES",
            "1",
            "PORTAL_BENCH_ROUTES is on: /_bench/hello is for benchmarks only.",
        ),
        ("REDIS_URL", "", REDIS_PROBLEM),
        (
            "REDIS_URL",
            "redis://127.0.0.1:1/0",
            "REDIS_URL does not answer (ConnectionError): rate limits need it in production.",
        ),
    ],
)
def test_check_names_the_one_bad_setting(
    make_app: Any,
    tmp_path: Path,
    sqlite_file: str,
    production_env: None,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    problem: str,
) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=sqlite_file)
    app.instance_path = str(tmp_path)
    with running(app) as runner:
        assert runner.invoke(args=["init"]).exit_code == 0
        monkeypatch.setenv(name, value)

        result = runner.invoke(args=["check"])

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"- {problem}", "Error: 1 problem(s) found."]


def test_check_says_a_create_all_schema_is_not_up_to_date(
    app: Flask, runner: FlaskCliRunner, production_env: None
) -> None:
    # The test database is built with create_all: no alembic_version, so no revision.
    result = runner.invoke(args=["check"])

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "- The database schema is not up to date: run `python manage.py db upgrade`.",
        "Error: 1 problem(s) found.",
    ]


def test_check_says_ready_on_a_migrated_database(
    make_app: Any, tmp_path: Path, sqlite_file: str, production_env: None
) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=sqlite_file)
    app.instance_path = str(tmp_path)
    with running(app) as runner:
        assert runner.invoke(args=["init"]).exit_code == 0

        result = runner.invoke(args=["check"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == "Ready for production: no problems found.\n"


def test_check_reports_an_unreachable_database(tmp_path: Path, production_env: None) -> None:
    # Not make_app: its clean-up would try to empty tables in a database that cannot open.
    app = create_app(
        {
            "PORTAL_ENV": "testing",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'x.db'}",
        }
    )
    app.instance_path = str(tmp_path)
    try:
        with running(app) as runner:
            result = runner.invoke(args=["check"])
    finally:
        with app.app_context():
            db.engine.dispose()

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "- The database is unreachable: OperationalError.",
        "Error: 1 problem(s) found.",
    ]


def unsafe_production_env(tmp_path: Path) -> dict[str, str]:
    """A production environment that create_app refuses: a well-known SECRET_KEY."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {*PRODUCTION_ENV, "FLASK_DEBUG", "DATABASE_URL"}
    }
    env.update(
        PORTAL_ENV="production",
        SECRET_KEY="changeme",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
    )
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_manage_check_runs_when_production_refuses_to_start(tmp_path: Path) -> None:
    done = manage("check", env=unsafe_production_env(tmp_path))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "- SECRET_KEY is a well-known default: generate a new one with `python manage.py init` "
        "or `python -c 'import secrets; print(secrets.token_hex(32))'`.",
        f"- {REDIS_PROBLEM}",
        "- TRUSTED_HOSTS is not set: list the site's host names, comma-separated "
        "(e.g. TRUSTED_HOSTS=portal.example.com).",
        "- PORTAL_BASE_URL must be the site's https:// address: email links are built from it.",
        "- The database schema is not up to date: run `python manage.py db upgrade`.",
        "Error: 5 problem(s) found.",
    ]


def test_manage_other_tasks_refuse_an_unsafe_production_in_one_line(tmp_path: Path) -> None:
    done = manage("users", "list", env=unsafe_production_env(tmp_path))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "Error: Refusing to start: SECRET_KEY is a well-known default: generate a new one with "
        "`python manage.py init` or `python -c 'import secrets; print(secrets.token_hex(32))'`. "
        "(1 more: run `python manage.py check`)"
    ]


# -- create-admin ----------------------------------------------------------------


def test_create_admin_reads_the_password_from_stdin(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "boss@example.com",
            "--name",
            "Bo Boss",
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )

    assert_no_traceback(result)
    assert result.exit_code == 0
    admin = account("boss@example.com")
    assert admin is not None
    assert result.output == f"Created admin boss@example.com (id {admin.id}).\n"
    assert PASSWORD not in result.output
    assert (admin.name, admin.role, admin.status) == ("Bo Boss", USER.ADMIN, USER.ACTIVE)
    assert admin.confirmed_at is not None
    assert admin.check_password(PASSWORD)


def test_create_admin_prompts_for_the_password_twice(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["create-admin", "--email", "boss@example.com", "--name", "Bo Boss"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert "Password: " in result.output
    assert "Repeat password: " in result.output
    assert PASSWORD not in result.output  # the prompt hides what is typed
    admin = account("boss@example.com")
    assert admin is not None
    assert admin.role == USER.ADMIN
    assert admin.check_password(PASSWORD)


def test_create_admin_refuses_passwords_that_differ(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["create-admin", "--email", "boss@example.com", "--name", "Bo Boss"],
        input=f"{PASSWORD}\n{NEW_PASSWORD}\n",
    )

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert "Error: The two entered values do not match." in result.output
    assert account("boss@example.com") is None


@pytest.mark.parametrize(
    ("password", "hint"),
    [
        (
            "password",
            "This is a top-10 common password. Add another word or two. Uncommon words are better.",
        ),
        ("s3cret!", "Use at least 8 characters."),
        (
            "Bo Boss 2024",  # built from the admin's own name
            "This password is easy to guess. Add another word or two. Uncommon words are better.",
        ),
    ],
)
def test_create_admin_refuses_a_weak_password_with_a_hint(
    runner: FlaskCliRunner, password: str, hint: str
) -> None:
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "boss@example.com",
            "--name",
            "Bo Boss",
            "--password-stdin",
        ],
        input=f"{password}\n",
    )

    fails_with(result, hint)
    assert account("boss@example.com") is None


def test_create_admin_refuses_an_address_taken_in_another_case(runner: FlaskCliRunner) -> None:
    UserFactory(email="taken@example.com")

    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "Taken@Example.COM",
            "--name",
            "Bo Boss",
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )

    fails_with(result, "An account already uses 'Taken@Example.COM'.")
    assert account_count() == 1
    existing = account("taken@example.com")
    assert existing is not None
    assert existing.role == USER.USER


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--password", PASSWORD], "Error: No such option '--password'."),
        ([PASSWORD], "Got unexpected extra argument"),
    ],
)
def test_create_admin_never_takes_the_password_as_an_argument(
    runner: FlaskCliRunner, extra: list[str], error: str
) -> None:
    # An argument would land in shell history and in every process listing.
    result = runner.invoke(
        args=["create-admin", "--email", "boss@example.com", "--name", "Bo Boss", *extra],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert_no_traceback(result)
    assert result.exit_code == 2
    assert error in result.output
    assert account("boss@example.com") is None


@pytest.mark.parametrize(
    ("email", "name", "stdin", "message"),
    [
        ("boss@example.com", "Bo Boss", "", "No password on standard input."),
        ("boss@example.com", "Bo Boss", "\n", "No password on standard input."),
        (
            "not-an-email",
            "Bo Boss",
            f"{PASSWORD}\n",
            "The email address is not valid: An email address must have an @-sign.",
        ),
        ("boss@example.com", "   ", f"{PASSWORD}\n", "A name is required."),
    ],
)
def test_create_admin_refuses_bad_input(
    runner: FlaskCliRunner, email: str, name: str, stdin: str, message: str
) -> None:
    result = runner.invoke(
        args=["create-admin", "--email", email, "--name", name, "--password-stdin"],
        input=stdin,
    )

    fails_with(result, message)
    assert account_count() == 0


def test_create_admin_refuses_a_name_longer_than_the_column(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "boss@example.com",
            "--name",
            "N" * 81,
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert account("boss@example.com") is None


def test_an_admin_made_by_create_admin_can_sign_in_and_open_the_admin(
    runner: FlaskCliRunner, auth: Any, client: Any
) -> None:
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "boss@example.com",
            "--name",
            "Bo Boss",
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )
    assert result.exit_code == 0

    response = auth.login("boss@example.com")

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


# -- users list ------------------------------------------------------------------


@pytest.fixture
def people(app: Flask) -> dict[str, User]:
    """One account per role and status, created a minute apart (oldest first)."""
    start = utcnow() - timedelta(hours=1)
    makers = {
        "admin@example.com": AdminFactory,
        "staff@example.com": StaffFactory,
        "new@example.com": NewUserFactory,
        "off@example.com": InactiveUserFactory,
        "on@example.com": UserFactory,
    }
    return {
        email: maker(email=email, created_at=start + timedelta(minutes=index))
        for index, (email, maker) in enumerate(makers.items())
    }


def listed_emails(result: Result) -> list[str]:
    """The EMAIL column of `users list`, top to bottom."""
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "EMAIL", "NAME", "ROLE", "STATUS", "CREATED", "LAST", "LOGIN"]
    return [re.split(r"\s{2,}", line)[1] for line in lines[1:-1]]


def test_users_list_shows_every_account_newest_first(
    runner: FlaskCliRunner, people: dict[str, User]
) -> None:
    result = runner.invoke(args=["users", "list"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert listed_emails(result) == [
        "on@example.com",
        "off@example.com",
        "new@example.com",
        "staff@example.com",
        "admin@example.com",
    ]
    assert result.output.splitlines()[-1] == "5 of 5 account(s) shown."
    admin = people["admin@example.com"]
    admin_line = result.output.splitlines()[-2]
    assert re.split(r"\s{2,}", admin_line) == [
        str(admin.id),
        "admin@example.com",
        admin.name,
        "admin",
        "active",
        f"{admin.created_at:%Y-%m-%d %H:%M}",
        "never",
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--role", "staff"], ["staff@example.com"]),
        (["--role", "ADMIN"], ["admin@example.com"]),
        (["--status", "new"], ["new@example.com"]),
        (["--status", "inactive"], ["off@example.com"]),
        (["--role", "user", "--status", "active"], ["on@example.com"]),
        (["--role", "user"], ["on@example.com", "off@example.com", "new@example.com"]),
        (["--role", "staff", "--status", "inactive"], []),
    ],
)
def test_users_list_filters_by_role_and_status(
    runner: FlaskCliRunner, people: dict[str, User], options: list[str], expected: list[str]
) -> None:
    result = runner.invoke(args=["users", "list", *options])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert listed_emails(result) == expected
    count = len(expected)
    assert result.output.splitlines()[-1] == f"{count} of {count} account(s) shown."


def test_users_list_limit_says_how_many_are_hidden(
    runner: FlaskCliRunner, people: dict[str, User]
) -> None:
    result = runner.invoke(args=["users", "list", "--limit", "2"])

    assert result.exit_code == 0
    assert listed_emails(result) == ["on@example.com", "off@example.com"]
    assert result.output.splitlines()[-1] == "2 of 5 account(s) shown."


def test_users_list_limit_zero_only_counts(runner: FlaskCliRunner, people: dict[str, User]) -> None:
    result = runner.invoke(args=["users", "list", "--limit", "0"])

    assert result.exit_code == 0
    assert listed_emails(result) == []
    assert result.output.splitlines()[-1] == "0 of 5 account(s) shown."


def test_users_list_refuses_a_negative_limit(
    runner: FlaskCliRunner, people: dict[str, User]
) -> None:
    # PostgreSQL rejects LIMIT -1 with a DataError: the option must stop it first.
    result = runner.invoke(args=["users", "list", "--limit", "-1"])

    assert_no_traceback(result)
    assert result.exit_code == 2
    assert "Error: Invalid value for '--limit': -1 is not in the range x>=0." in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--role", "boss"], "Unknown role 'boss'; use one of: admin, staff, user."),
        (["--status", "banned"], "Unknown status 'banned'; use one of: inactive, new, active."),
    ],
)
def test_users_list_refuses_an_unknown_name_in_one_line(
    runner: FlaskCliRunner, people: dict[str, User], options: list[str], message: str
) -> None:
    result = runner.invoke(args=["users", "list", *options])

    fails_with(result, message)


# -- users set-role / set-status -------------------------------------------------


def test_set_role_changes_the_role_and_ends_sessions(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(args=["users", "set-role", "UMA@example.com", "Staff"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == "uma@example.com is now staff.\n"
    user = account("uma@example.com")
    assert user is not None
    assert user.role == USER.STAFF
    assert user.session_version == 2


def test_set_role_to_the_same_role_changes_nothing(runner: FlaskCliRunner) -> None:
    StaffFactory(email="sam@example.com")

    result = runner.invoke(args=["users", "set-role", "sam@example.com", "staff"])

    assert result.exit_code == 0
    assert result.output == "sam@example.com was already staff.\n"
    user = account("sam@example.com")
    assert user is not None
    assert (user.role, user.session_version) == (USER.STAFF, 1)


def test_set_role_refuses_an_unknown_address(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(args=["users", "set-role", "nobody@example.com", "admin"])

    fails_with(result, "No account uses the address 'nobody@example.com'.")
    assert db.session.execute(select(User.role)).scalars().all() == [USER.USER]


def test_set_role_refuses_an_unknown_role(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(args=["users", "set-role", "uma@example.com", "owner"])

    fails_with(result, "Unknown role 'owner'; use one of: admin, staff, user.")
    user = account("uma@example.com")
    assert user is not None
    assert (user.role, user.session_version) == (USER.USER, 1)


@pytest.mark.parametrize("role", ["staff", "user"])
def test_set_role_keeps_the_last_active_admin(runner: FlaskCliRunner, role: str) -> None:
    AdminFactory(email="ada@example.com")
    # A disabled admin cannot sign in, so it does not count as another admin.
    InactiveUserFactory(email="old@example.com", role=USER.ADMIN)

    result = runner.invoke(args=["users", "set-role", "ada@example.com", role])

    fails_with(result, security.LAST_ADMIN)
    admin = account("ada@example.com")
    assert admin is not None
    assert (admin.role, admin.session_version) == (USER.ADMIN, 1)


def test_set_role_demotes_an_admin_when_another_remains(runner: FlaskCliRunner) -> None:
    AdminFactory(email="ada@example.com")
    AdminFactory(email="bob@example.com")

    result = runner.invoke(args=["users", "set-role", "ada@example.com", "user"])

    assert result.exit_code == 0
    assert result.output == "ada@example.com is now user.\n"
    admin = account("ada@example.com")
    assert admin is not None
    assert (admin.role, admin.session_version) == (USER.USER, 2)


def test_set_status_disables_an_account_and_ends_sessions(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(args=["users", "set-status", "uma@example.com", "INACTIVE"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == "uma@example.com is now inactive.\n"
    user = account("uma@example.com")
    assert user is not None
    assert (user.status, user.session_version) == (USER.INACTIVE, 2)


def test_set_status_activates_a_new_account(runner: FlaskCliRunner) -> None:
    NewUserFactory(email="nel@example.com")

    result = runner.invoke(args=["users", "set-status", "nel@example.com", "active"])

    assert result.exit_code == 0
    assert result.output == "nel@example.com is now active.\n"
    user = account("nel@example.com")
    assert user is not None
    assert user.status == USER.ACTIVE
    assert user.confirmed_at is not None


def test_set_status_to_the_same_status_changes_nothing(runner: FlaskCliRunner) -> None:
    InactiveUserFactory(email="off@example.com")

    result = runner.invoke(args=["users", "set-status", "off@example.com", "inactive"])

    assert result.exit_code == 0
    assert result.output == "off@example.com was already inactive.\n"
    user = account("off@example.com")
    assert user is not None
    assert (user.status, user.session_version) == (USER.INACTIVE, 1)


def test_set_status_refuses_an_unknown_address(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "set-status", "nobody@example.com", "inactive"])

    fails_with(result, "No account uses the address 'nobody@example.com'.")


def test_set_status_refuses_an_unknown_status(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(args=["users", "set-status", "uma@example.com", "banned"])

    fails_with(result, "Unknown status 'banned'; use one of: inactive, new, active.")
    user = account("uma@example.com")
    assert user is not None
    assert user.status == USER.ACTIVE


@pytest.mark.parametrize("status", ["inactive", "new"])
def test_set_status_keeps_the_last_active_admin_active(runner: FlaskCliRunner, status: str) -> None:
    AdminFactory(email="ada@example.com")
    StaffFactory(email="sam@example.com")

    result = runner.invoke(args=["users", "set-status", "ada@example.com", status])

    fails_with(result, security.LAST_ADMIN)
    admin = account("ada@example.com")
    assert admin is not None
    assert (admin.status, admin.session_version) == (USER.ACTIVE, 1)


# -- users set-password ----------------------------------------------------------


def test_set_password_from_stdin_ends_sessions(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(
        args=["users", "set-password", "uma@example.com", "--password-stdin"],
        input=f"{NEW_PASSWORD}\n",
    )

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == "Password changed for uma@example.com; its sessions have ended.\n"
    user = account("uma@example.com")
    assert user is not None
    assert user.session_version == 2
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(PASSWORD)


def test_set_password_prompts_twice(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(
        args=["users", "set-password", "uma@example.com"],
        input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n",
    )

    assert result.exit_code == 0
    assert NEW_PASSWORD not in result.output
    user = account("uma@example.com")
    assert user is not None
    assert user.check_password(NEW_PASSWORD)


def test_set_password_refuses_a_weak_password(runner: FlaskCliRunner) -> None:
    UserFactory(email="uma@example.com")

    result = runner.invoke(
        args=["users", "set-password", "uma@example.com", "--password-stdin"],
        input="password\n",
    )

    fails_with(
        result,
        "This is a top-10 common password. Add another word or two. Uncommon words are better.",
    )
    user = account("uma@example.com")
    assert user is not None
    assert user.session_version == 1
    assert user.check_password(PASSWORD)


def test_set_password_refuses_an_unknown_address(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["users", "set-password", "nobody@example.com", "--password-stdin"],
        input=f"{NEW_PASSWORD}\n",
    )

    fails_with(result, "No account uses the address 'nobody@example.com'.")


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["users", "set-role", "uma@example.com", "staff"], None),
        (["users", "set-status", "uma@example.com", "inactive"], None),
        (["users", "set-password", "uma@example.com", "--password-stdin"], f"{NEW_PASSWORD}\n"),
    ],
    ids=["set-role", "set-status", "set-password"],
)
def test_a_signed_in_browser_is_signed_out_by_the_change(
    runner: FlaskCliRunner, auth: Any, client: Any, args: list[str], stdin: str | None
) -> None:
    UserFactory(email="uma@example.com")
    auth.login("uma@example.com")
    assert client.get("/users/me/").status_code == 200

    assert runner.invoke(args=args, input=stdin).exit_code == 0

    response = client.get("/users/me/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")


# -- seed ------------------------------------------------------------------------

DEMO = {
    # email: (role, password), as `seed` prints them
    "admin@example.com": (USER.ADMIN, "admin-portal-demo-1"),
    "staff@example.com": (USER.STAFF, "staff-portal-demo-1"),
    "user@example.com": (USER.USER, "user-portal-demo-1"),
}
DEMO_OUTPUT = [
    "Demo accounts (development only):",
    "  admin  admin@example.com    password: admin-portal-demo-1",
    "  staff  staff@example.com    password: staff-portal-demo-1",
    "  user   user@example.com     password: user-portal-demo-1",
]


def test_seed_creates_the_demo_accounts_and_prints_how_to_sign_in(
    runner: FlaskCliRunner,
) -> None:
    result = runner.invoke(args=["seed"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output.splitlines() == DEMO_OUTPUT
    assert account_count() == 3
    for email, (role, password) in DEMO.items():
        user = account(email)
        assert user is not None
        assert (user.role, user.status) == (role, USER.ACTIVE)
        assert user.check_password(password)


def test_seed_twice_keeps_one_of_each_demo_account_and_restores_it(
    runner: FlaskCliRunner,
) -> None:
    assert runner.invoke(args=["seed"]).exit_code == 0
    assert (
        runner.invoke(args=["users", "set-status", "staff@example.com", "inactive"]).exit_code == 0
    )

    result = runner.invoke(args=["seed"])

    assert result.exit_code == 0
    assert result.output.splitlines() == DEMO_OUTPUT
    assert account_count() == 3
    assert {user.email for user in db.session.execute(select(User)).scalars()} == set(DEMO)
    staff = account("staff@example.com")
    assert staff is not None
    assert (staff.role, staff.status) == (USER.STAFF, USER.ACTIVE)


def test_seed_users_adds_that_many_accounts(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["seed", "--users", "50"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert "Accounts" in result.output  # the progress bar's label
    assert result.output.splitlines()[-4:] == DEMO_OUTPUT
    assert account_count() == 53
    extra = db.session.execute(select(User).where(User.email.notin_(DEMO))).scalars().all()
    assert len(extra) == 50
    assert {(user.role, user.status) for user in extra} == {(USER.USER, USER.ACTIVE)}

    again = runner.invoke(args=["seed", "--users", "50"])

    assert again.exit_code == 0
    assert account_count() == 103
    emails = db.session.execute(select(func.lower(User.email))).scalars().all()
    assert len(set(emails)) == 103


def test_seed_refuses_a_negative_number_of_users(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["seed", "--users", "-5"])

    fails_with(result, "--users must be zero or more.")
    assert account_count() == 0


def production_app(make_app: Any) -> Flask:
    """What create_app accepts as production (its start-up check runs on these)."""
    return make_app(
        ENV_NAME="production",
        TESTING=False,
        SESSION_COOKIE_SECURE=True,
        REMEMBER_COOKIE_SECURE=True,
        RATELIMIT_STORAGE_URI=REDIS_URL,  # never reached by these commands
    )


def test_seed_refuses_a_production_database_without_force(make_app: Any) -> None:
    with running(production_app(make_app)) as runner:
        result = runner.invoke(args=["seed"])

        fails_with(result, "Refusing to seed a production database; pass --force if you mean it.")
        assert account_count() == 0


def test_seed_force_in_production_creates_no_demo_accounts(make_app: Any) -> None:
    with running(production_app(make_app)) as runner:
        forced = runner.invoke(args=["seed", "--force"])

        fails_with(
            forced,
            "Production gets no demo accounts or demo content (their passwords are public); "
            "give --users, --posts or --comments for generated rows.",
        )
        assert account_count() == 0

        generated = runner.invoke(args=["seed", "--force", "--users", "2"])

        assert_no_traceback(generated)
        assert generated.exit_code == 0
        assert "password" not in generated.output
        assert "Demo accounts" not in generated.output
        assert account_count() == 2
        for _role, _name, email, _password in DEMO_ACCOUNTS:
            assert account(email) is None


def test_seed_force_in_production_needs_someone_to_write_the_posts(make_app: Any) -> None:
    with running(production_app(make_app)) as runner:
        result = runner.invoke(args=["seed", "--force", "--posts", "3"])

        fails_with(result, "No account may write posts: add --users N.")
        assert account_count() == 0

        comments = runner.invoke(args=["seed", "--force", "--comments", "3"])

        fails_with(comments, "No post is published, so comments have nowhere to go: add --posts N.")


# -- check: published demo passwords ---------------------------------------------


@pytest.fixture
def ready_for_check(
    make_app: Any, tmp_path: Path, sqlite_file: str, production_env: None
) -> Iterator[FlaskCliRunner]:
    """A migrated database and an environment `check` has nothing against."""
    app = make_app(SQLALCHEMY_DATABASE_URI=sqlite_file)
    app.instance_path = str(tmp_path)
    with running(app) as runner:
        assert runner.invoke(args=["init"]).exit_code == 0
        yield runner


def test_check_flags_accounts_that_sign_in_with_a_demo_password(
    ready_for_check: FlaskCliRunner,
) -> None:
    UserFactory(email="User@Example.com", password="user-portal-demo-1")
    StaffFactory(email="moderator@corp.example", password="admin-portal-demo-1")
    AdminFactory(email="boss@corp.example", password="staff-portal-demo-1")
    # Not flagged: a demo address with a password of its own, and staff with theirs.
    AdminFactory(email="admin@example.com")
    StaffFactory(email="careful@corp.example")
    db.session.commit()

    result = ready_for_check.invoke(args=["check"])

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"- The {role} account {email} has a published demo password: set a new one with "
        f"`python manage.py users set-password {email}`."
        for role, email in [
            ("user", "User@Example.com"),
            ("staff", "moderator@corp.example"),
            ("admin", "boss@corp.example"),
        ]
    ] + ["Error: 3 problem(s) found."]


def test_check_tries_demo_passwords_only_on_demo_addresses_and_staff(
    ready_for_check: FlaskCliRunner,
) -> None:
    # Hashing every account's password thrice would take minutes on a big site.
    UserFactory(email="someone@corp.example", password="user-portal-demo-1")
    db.session.commit()

    result = ready_for_check.invoke(args=["check"])

    assert result.exit_code == 0
    assert result.output == "Ready for production: no problems found.\n"


def test_check_is_satisfied_once_the_demo_password_is_changed(
    ready_for_check: FlaskCliRunner,
) -> None:
    AdminFactory(email="admin@example.com", password="admin-portal-demo-1")
    db.session.commit()
    assert ready_for_check.invoke(args=["check"]).exit_code == 1

    changed = ready_for_check.invoke(
        args=["users", "set-password", "admin@example.com", "--password-stdin"],
        input=f"{NEW_PASSWORD}\n",
    )
    assert changed.exit_code == 0

    result = ready_for_check.invoke(args=["check"])
    assert result.exit_code == 0, result.output


# -- emails send / worker --------------------------------------------------------


class RefusingTransport:
    """A server that answers every message with ``error``."""

    def __init__(self, error: DeliveryError) -> None:
        self.error = error

    @contextmanager
    def connect(self) -> Iterator[RefusingTransport]:
        yield self

    def send(self, message: Any) -> None:
        raise self.error


def refuse_with(monkeypatch: pytest.MonkeyPatch, error: DeliveryError) -> None:
    monkeypatch.setattr("portal.emails.queue.transport_for", lambda app: RefusingTransport(error))


def test_emails_send_delivers_the_due_messages(runner: FlaskCliRunner, mail: list[Any]) -> None:
    first = EmailFactory(to_address="ann@example.com", subject="First")
    second = EmailFactory(to_address="ben@example.com", subject="Second")
    later = EmailFactory(next_attempt_at=utcnow() + timedelta(hours=1))
    cancelled = EmailFactory(state=EMAIL.CANCELLED)
    ids = first.id, second.id, later.id, cancelled.id

    result = runner.invoke(args=["emails", "send"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == "Sent 2, retrying 0, failed 0.\n"
    assert sorted((message["To"], message["Subject"]) for message in mail) == [
        ("ann@example.com", "First"),
        ("ben@example.com", "Second"),
    ]
    rows = [email_row(email_id) for email_id in ids]
    assert [row.state for row in rows] == [EMAIL.SENT, EMAIL.SENT, EMAIL.QUEUED, EMAIL.CANCELLED]
    assert rows[0].sent_at is not None
    assert rows[0].locked_by is None


def test_emails_send_with_nothing_due_says_so(runner: FlaskCliRunner, mail: list[Any]) -> None:
    result = runner.invoke(args=["emails", "send"])

    assert result.exit_code == 0
    assert result.output == "Sent 0, retrying 0, failed 0.\n"
    assert mail == []


def test_emails_send_batch_sends_only_that_many(runner: FlaskCliRunner, mail: list[Any]) -> None:
    urgent = EmailFactory(priority=EMAIL.HIGH)
    normal = EmailFactory()

    result = runner.invoke(args=["emails", "send", "--batch", "1"])

    assert result.exit_code == 0
    assert result.output == "Sent 1, retrying 0, failed 0.\n"
    assert [message["Message-ID"] for message in mail] == [urgent.message_id]
    assert email_row(normal.id).state == EMAIL.QUEUED


def test_emails_send_refuses_a_batch_of_zero(runner: FlaskCliRunner, mail: list[Any]) -> None:
    EmailFactory()

    result = runner.invoke(args=["emails", "send", "--batch", "0"])

    assert_no_traceback(result)
    assert result.exit_code == 2
    assert "Invalid value for '--batch'" in result.output
    assert mail == []


def test_emails_send_exits_1_when_a_message_fails_for_good(
    runner: FlaskCliRunner, mail: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_with(monkeypatch, DeliveryError("550 no", permanent=True, code=550))
    email = EmailFactory(to_address="gone@example.com")

    result = runner.invoke(args=["emails", "send"])

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stdout == "Sent 0, retrying 0, failed 1.\n"
    assert result.stderr == f"  #{email.id} to gone@example.com: 550 no\n"
    row = email_row(email.id)
    assert (row.state, row.attempts, row.last_error) == (EMAIL.FAILED, 1, "550 no")
    attempts = db.session.execute(select(Attempt).where(Attempt.email_id == email.id)).scalars()
    assert [(attempt.outcome, attempt.smtp_code) for attempt in attempts] == [
        (EMAIL.OUTCOME_FAILED, 550)
    ]


def test_emails_send_leaves_a_transient_failure_queued(
    runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_with(monkeypatch, DeliveryError("421 busy", permanent=False, code=421))
    email = EmailFactory()

    result = runner.invoke(args=["emails", "send"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == "Sent 0, retrying 1, failed 0.\n"
    row = email_row(email.id)
    assert (row.state, row.attempts, row.last_error) == (EMAIL.QUEUED, 1, "421 busy")
    assert row.next_attempt_at > utcnow()


def test_emails_worker_once_delivers_one_batch_and_stops(
    runner: FlaskCliRunner, mail: list[Any], restore_signals: None
) -> None:
    ids = [EmailFactory().id for _ in range(3)]

    result = runner.invoke(args=["emails", "worker", "--once", "--batch", "2"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"Worker \S+ started\.", lines[0])
    assert lines[1:] == [
        "batch: sent 2, retrying 0, failed 0, released 0",
        lines[0].replace("started.", "stopped: sent 2, retrying 0, failed 0."),
    ]
    assert len(mail) == 2
    # Oldest first, and the third waits for the next run.
    assert [email_row(email_id).state for email_id in ids] == [
        EMAIL.SENT,
        EMAIL.SENT,
        EMAIL.QUEUED,
    ]


def test_emails_worker_once_with_nothing_due_stops_at_once(
    runner: FlaskCliRunner, mail: list[Any], restore_signals: None
) -> None:
    result = runner.invoke(args=["emails", "worker", "--once", "--idle-sleep", "60"])

    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[1].endswith("stopped: sent 0, retrying 0, failed 0.")
    assert mail == []


# -- help ------------------------------------------------------------------------

TASKS = {
    "backup",
    "check",
    "create-admin",
    "db",
    "emails",
    "init",
    "restore",
    "run",
    "seed",
    "shell",
    "users",
}


def one_line_commands(help_text: str) -> set[str]:
    """Return the names under "Commands:", checking each has a help on its own line."""
    names = set()
    # The commands end where the exit-status table begins.
    for line in help_text.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0].splitlines():
        match = re.fullmatch(r"  (\S+)  +(\S.*)", line)
        assert match, f"not one line per command: {line!r}"
        names.add(match.group(1))
    return names


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "manage.py", "--help"],
        [str(Path(sys.executable).with_name("flask")), "--app", "portal", "--help"],
    ],
    ids=["manage.py", "flask"],
)
def test_help_lists_every_task_with_one_line(command: list[str]) -> None:
    env = {**os.environ, "PORTAL_ENV": "testing"}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert TASKS <= one_line_commands(done.stdout)


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        ("users", {"list", "set-role", "set-status", "set-password"}),
        ("emails", {"send", "worker"}),
    ],
)
def test_group_help_lists_its_commands_with_one_line(
    runner: FlaskCliRunner, group: str, commands: set[str]
) -> None:
    result = runner.invoke(args=[group, "--help"])

    assert result.exit_code == 0
    assert commands <= one_line_commands(result.output)


def test_shell_preloads_the_database_every_model_and_the_constants(app: Flask) -> None:
    from portal import models

    names = app.make_shell_context()

    assert names["db"] is db
    for model in models.__all__:
        assert names[model] is getattr(models, model), model
    assert {"USER", "POST", "COMMENT", "EMAIL", "AUDIT"} <= set(names)


@pytest.mark.parametrize(
    "command",
    [["users"], ["emails"], ["check"], ["seed"], ["backup"], ["restore"]],
    ids=lambda command: command[0],
)
def test_help_ends_with_what_each_exit_status_means(
    runner: FlaskCliRunner, command: list[str]
) -> None:
    result = runner.invoke(args=[*command, "--help"])

    assert result.exit_code == 0
    table = result.output.split("\n\n")[-1].splitlines()
    assert table[0] == "  Exit status:"
    assert table[1] == "    0  done (a dry run included)"
    assert table[2] == "    1  refused or invalid input: the message says why"
    assert table[-1] == "    2  usage: an unknown option, or a missing or malformed value"


# -- users list: JSON and search -------------------------------------------------


def listed_json(result: Result) -> dict[str, Any]:
    """The one JSON document `users list --json` printed, with nothing else on stdout."""
    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def test_users_list_json_is_one_document_newest_first(
    runner: FlaskCliRunner, people: dict[str, User]
) -> None:
    result = runner.invoke(args=["users", "list", "--json", "--limit", "3"])

    document = listed_json(result)
    assert (document["total"], document["shown"]) == (5, 3)
    assert [row["email"] for row in document["accounts"]] == [
        "on@example.com",
        "off@example.com",
        "new@example.com",
    ]
    off = people["off@example.com"]
    assert document["accounts"][1] == {
        "id": off.id,
        "email": "off@example.com",
        "name": off.name,
        "role": "user",
        "status": "inactive",
        "created_at": off.created_at.isoformat(),
        "last_login_at": None,
    }
    assert "hash" not in result.stdout


def test_users_list_json_follows_the_filters(
    runner: FlaskCliRunner, people: dict[str, User]
) -> None:
    result = runner.invoke(args=["users", "list", "--json", "--role", "user", "--status", "new"])

    document = listed_json(result)
    assert [row["email"] for row in document["accounts"]] == ["new@example.com"]
    assert document["total"] == 1


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("ADA", ["ada@example.org"]),  # the name, in any case
        ("lace", ["ada@example.org"]),  # the middle of a name
        ("example.net", ["bo@example.net"]),  # the middle of an address
        ("example", ["bo@example.net", "ada@example.org", "pc@example.org"]),
        ("100%", ["pc@example.org"]),  # a LIKE wildcard matches itself only
        ("_", []),
    ],
)
def test_users_list_search_finds_a_piece_of_the_name_or_address(
    runner: FlaskCliRunner, search: str, expected: list[str]
) -> None:
    start = utcnow() - timedelta(hours=1)
    UserFactory(name="Ada Lovelace", email="ada@example.org", created_at=start)
    UserFactory(name="Bo", email="bo@example.net", created_at=start + timedelta(minutes=1))
    UserFactory(name="Sure 100% Pc", email="pc@example.org", created_at=start)

    result = runner.invoke(args=["users", "list", "--json", "--search", search])

    emails = [row["email"] for row in listed_json(result)["accounts"]]
    assert sorted(emails) == sorted(expected)
    table = runner.invoke(args=["users", "list", "--search", search])
    assert sorted(listed_emails(table)) == sorted(expected)


def test_users_list_refuses_a_blank_search(runner: FlaskCliRunner, people: dict[str, User]) -> None:
    fails_with(
        runner.invoke(args=["users", "list", "--search", "  "]),
        "--search needs some text to look for.",
    )


def test_users_list_orders_accounts_that_joined_together_by_id(runner: FlaskCliRunner) -> None:
    moment = utcnow() - timedelta(hours=1)
    made = [UserFactory(created_at=moment) for _ in range(4)]

    first = listed_json(runner.invoke(args=["users", "list", "--json"]))
    again = listed_json(runner.invoke(args=["users", "list", "--json", "--limit", "2"]))

    ids = [row["id"] for row in first["accounts"]]
    assert ids == sorted((user.id for user in made), reverse=True)
    assert [row["id"] for row in again["accounts"]] == ids[:2]


def test_users_list_json_errors_go_to_stderr(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["users", "list", "--json", "--role", "boss"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: Unknown role 'boss'; use one of: admin, staff, user.\n"


# -- users set-role / set-status --dry-run ----------------------------------------


NOBODY = "nobody@example.com"
ROLES = "admin, staff, user"
STATES = "inactive, new, active"


def audit_count() -> int:
    db.session.rollback()
    return db.session.execute(select(func.count(AuditEvent.id))).scalar_one()


@pytest.mark.parametrize(
    ("command", "value", "said"),
    [
        ("set-role", "staff", "Would make uma@example.com staff (now user); nothing was changed."),
        (
            "set-status",
            "inactive",
            "Would make uma@example.com inactive (now active); nothing was changed.",
        ),
    ],
)
def test_a_dry_run_says_what_would_change_and_changes_nothing(
    runner: FlaskCliRunner, command: str, value: str, said: str
) -> None:
    UserFactory(email="uma@example.com")
    events = audit_count()

    result = runner.invoke(args=["users", command, "uma@example.com", value, "--dry-run"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == said + "\n"
    user = account("uma@example.com")
    assert user is not None
    assert (user.role, user.status, user.session_version) == (USER.USER, USER.ACTIVE, 1)
    assert audit_count() == events
    # The real run afterwards still does it: the dry run left no half-made change behind.
    real = runner.invoke(args=["users", command, "uma@example.com", value])
    assert real.output == f"uma@example.com is now {value}.\n"
    assert audit_count() == events + 1


def test_a_dry_run_of_no_change_says_so(runner: FlaskCliRunner) -> None:
    StaffFactory(email="sam@example.com")

    result = runner.invoke(args=["users", "set-role", "sam@example.com", "staff", "--dry-run"])

    assert result.exit_code == 0
    assert result.output == "sam@example.com is already staff; nothing would change.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set-role", "ada@example.com", "user"], security.LAST_ADMIN),
        (["set-status", "ada@example.com", "inactive"], security.LAST_ADMIN),
        (["set-role", "nobody@example.com", "user"], f"No account uses the address {NOBODY!r}."),
        (["set-role", "ada@example.com", "owner"], f"Unknown role 'owner'; use one of: {ROLES}."),
        (["set-status", "ada@example.com", "x"], f"Unknown status 'x'; use one of: {STATES}."),
    ],
)  # fmt: skip
def test_a_dry_run_meets_the_same_refusals_as_the_real_run(
    runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    AdminFactory(email="ada@example.com")
    events = audit_count()

    real = runner.invoke(args=["users", *args])
    dry = runner.invoke(args=["users", *args, "--dry-run"])

    fails_with(real, message)
    fails_with(dry, message)
    admin = account("ada@example.com")
    assert admin is not None
    assert (admin.role, admin.status, admin.session_version) == (USER.ADMIN, USER.ACTIVE, 1)
    assert audit_count() == events


# -- check --json ----------------------------------------------------------------


def test_check_json_lists_each_problem_with_its_level_and_exits_1(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.instance_path = str(tmp_path)
    for name in PRODUCTION_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTAL_BASE_URL", "http://portal.example.com")
    monkeypatch.setenv("MAIL_TRANSPORT", "smtp")
    monkeypatch.setenv("SECRET_KEY", secrets.token_hex(32))
    monkeypatch.setenv("TRUSTED_HOSTS", "portal.example.com")
    monkeypatch.delenv("FLASK_DEBUG", raising=False)

    result = runner.invoke(args=["check", "--json"])

    assert_no_traceback(result)
    assert result.exit_code == 1
    assert result.stderr == "Error: 3 problem(s) found.\n"
    assert json.loads(result.stdout) == {
        "ready": False,
        "problems": [
            {"level": "error", "area": "settings", "message": REDIS_PROBLEM},
            {
                "level": "error",
                "area": "settings",
                "message": "PORTAL_BASE_URL must be the site's https:// address: "
                "email links are built from it.",
            },
            {
                "level": "error",
                "area": "database",
                "message": "The database schema is not up to date: "
                "run `python manage.py db upgrade`.",
            },
        ],
    }


def test_check_json_says_ready_with_exit_0(
    make_app: Any, tmp_path: Path, sqlite_file: str, production_env: None
) -> None:
    app = make_app(SQLALCHEMY_DATABASE_URI=sqlite_file)
    app.instance_path = str(tmp_path)
    with running(app) as runner:
        assert runner.invoke(args=["init"]).exit_code == 0

        result = runner.invoke(args=["check", "--json"])

    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(result.stdout) == {"ready": True, "problems": []}


def test_check_json_names_accounts_with_a_demo_password(
    ready_for_check: FlaskCliRunner,
) -> None:
    AdminFactory(email="root@example.org", password="admin-portal-demo-1")

    result = ready_for_check.invoke(args=["check", "--json"])

    assert result.exit_code == 1
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["level"], problem["area"]) == ("error", "accounts")
    assert "root@example.org" in problem["message"]


# -- seed --dry-run --------------------------------------------------------------


def test_seed_dry_run_says_what_it_would_load_and_loads_nothing(
    runner: FlaskCliRunner,
) -> None:
    events = audit_count()

    result = runner.invoke(args=["seed", "--dry-run", "--users", "1200", "--comments", "5"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Would create the demo accounts admin@example.com, staff@example.com, user@example.com.",
        "Would add 5 demo posts and 7 demo comments.",
        "Would add 1,200 account(s), 0 post(s) and 5 comment(s).",
        "Nothing was changed.",
    ]
    assert account_count() == 0
    assert audit_count() == events


def test_seed_dry_run_after_a_seed_would_reset_the_demo_accounts(
    runner: FlaskCliRunner,
) -> None:
    assert runner.invoke(args=["seed"]).exit_code == 0
    runner.invoke(args=["users", "set-status", "staff@example.com", "inactive"])

    result = runner.invoke(args=["seed", "--dry-run"])

    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Would reset the demo accounts admin@example.com, staff@example.com, user@example.com "
        "(role, status and password as printed; their sessions end).",
        "Nothing was changed.",
    ]
    staff = account("staff@example.com")
    assert staff is not None
    assert staff.status == USER.INACTIVE


def test_seed_dry_run_refuses_what_the_real_seed_refuses(
    runner: FlaskCliRunner, make_app: Any
) -> None:
    fails_with(
        runner.invoke(args=["seed", "--users", "-5", "--dry-run"]), "--users must be zero or more."
    )
    with running(production_app(make_app)) as production:
        fails_with(
            production.invoke(args=["seed", "--dry-run"]),
            "Refusing to seed a production database; pass --force if you mean it.",
        )
        fails_with(
            production.invoke(args=["seed", "--force", "--posts", "3", "--dry-run"]),
            "No account may write posts: add --users N.",
        )
        planned = production.invoke(args=["seed", "--force", "--users", "2", "--dry-run"])
        assert planned.output.splitlines() == [
            "Would add 2 account(s), 0 post(s) and 0 comment(s).",
            "Nothing was changed.",
        ]
        assert account_count() == 0


def test_a_dry_run_on_a_database_of_its_own_commits_nothing(backend: str, tmp_path: Path) -> None:
    """Outside the test transaction: what a dry run leaves is what another connection reads."""
    from tests.test_backup import own_app

    with own_app(backend, tmp_path, "dry_run") as app:
        UserFactory(email="uma@example.com")
        queued = EmailFactory(state=EMAIL.QUEUED)
        runner = app.test_cli_runner()

        results = [
            runner.invoke(args=["users", "set-role", "uma@example.com", "staff", "--dry-run"]),
            runner.invoke(args=["users", "set-status", "uma@example.com", "new", "--dry-run"]),
            runner.invoke(args=["emails", "cancel", "--all", "--state", "queued", "--dry-run"]),
            runner.invoke(args=["emails", "retry", "--id", str(queued.id), "--dry-run"]),
        ]

        assert [result.exit_code for result in results] == [0, 0, 0, 0]
        assert results[2].output == "Would cancel 1 message(s); nothing was changed.\n"
        db.session.remove()
        with db.engine.connect() as other:
            role, status = other.execute(select(User.role, User.status)).one()
            state = other.execute(select(Email.state)).scalar_one()
            events = other.execute(select(func.count(AuditEvent.id))).scalar_one()
        assert (role, status, state, events) == (USER.USER, USER.ACTIVE, EMAIL.QUEUED, 0)
