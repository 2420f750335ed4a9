"""Maintenance tasks, available as ``python manage.py ...`` and ``flask --app portal ...``.

A user's mistake (an unknown address, a bad role name) ends in a one-line
error and a non-zero exit, never a traceback: 1 when the task refuses, 2 when
click cannot parse the command line (the table ends each ``--help``). Tasks
that read take ``--json``: one document on standard output, messages on
standard error. Tasks that change data take ``--dry-run``: the real change
runs, is reported, and is rolled back.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import nullcontext
from dataclasses import asdict
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from config import production_problems
from config.settings import SECRET_KEY_FILE
from config.settings import config_for
from config.settings import read_instance_secret
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.comments import constants as COMMENT
from portal.emails import constants as EMAIL
from portal.extensions import db
from portal.formatting import format_age
from portal.posts import constants as POST
from portal.users import constants as USER
from portal.users import mfa
from portal.users import services
from portal.users import sessions
from portal.users.models import User


def fail(message: str) -> click.ClickException:
    """Return the exception that prints ``message`` and exits with status 1."""
    return click.ClickException(message)


def find_user(email: str) -> User:
    user = services.get_by_email(email)
    if user is None:
        raise fail(f"No account uses the address {email!r}.")
    return user


def read_password(password_stdin: bool) -> str:
    """Read a password from standard input or prompt twice; never from argv."""
    if password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise fail("No password on standard input.")
        return password
    return str(click.prompt("Password", hide_input=True, confirmation_prompt="Repeat password"))


def parse_role(value: str) -> int:
    try:
        return USER.role_by_name(value)
    except KeyError:
        raise fail(
            f"Unknown role {value!r}; use one of: {', '.join(USER.ROLE.values())}."
        ) from None


def parse_status(value: str) -> int:
    try:
        return USER.status_by_name(value)
    except KeyError:
        choices = ", ".join(USER.STATUS.values())
        raise fail(f"Unknown status {value!r}; use one of: {choices}.") from None


def epilog(also_refused: str = "") -> str:
    """Return the exit-status table that ends a group's or task's --help.

    ``also_refused`` names what else exits with 1 there (``\\b`` keeps click
    from rewrapping the table).
    """
    rows = ["0  done (a dry run included)", "1  refused or invalid input: the message says why"]
    if also_refused:
        rows.append(f"   {also_refused}")
    rows.append("2  usage: an unknown option, or a missing or malformed value")
    return "\b\nExit status:\n" + "\n".join(f"  {row}" for row in rows)


EXIT_CODES = epilog()


def echo_json(value: Any) -> None:
    """Print ``value`` as one JSON document on standard output (messages go to stderr)."""
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def iso(moment: datetime | None) -> str | None:
    """Return ``moment`` in ISO-8601, or None."""
    return moment.isoformat() if moment is not None else None


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the real change, then undo it: what ``--dry-run`` does.

    The service functions commit. Inside the block a commit only flushes,
    into a savepoint rolled back at the end, so a dry run meets every check
    (the same errors, the same exit status), counts exactly what a real run
    changes, and leaves no row, audit event or queued message behind.
    """
    session = db.session()
    savepoint = session.begin_nested()
    vars(session)["commit"] = session.flush
    try:
        yield
    finally:
        vars(session).pop("commit", None)
        if savepoint.is_active:
            savepoint.rollback()


def dry_run_or_real(dry_run: bool) -> Any:
    """The context a change runs in: rolled back for a dry run, as it is otherwise."""
    return rolled_back() if dry_run else nullcontext()


class Moment(click.ParamType):
    """An ISO-8601 date and time; without a zone, UTC."""

    name = "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO-8601 date and time, e.g. 2030-01-31T09:00+01:00.",
                param,
                ctx,
            )
        from portal.emails.services import as_utc

        return as_utc(moment)


class Age(click.ParamType):
    """A length of time: ``90m``, ``12h``, ``7d``, ``2w``; a bare number is days."""

    name = "AGE"
    UNITS = {
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
        "w": timedelta(weeks=1),
    }

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        text = str(value).strip().lower()
        unit = self.UNITS.get(text[-1:]) if text else None
        number = text[:-1] if unit else text
        try:
            if not number.isdigit() or int(number) <= 0:
                raise ValueError(number)
            return int(number) * (unit or self.UNITS["d"])
        except (ValueError, OverflowError):
            self.fail(f"{value!r} is not an age such as 90m, 12h, 7d or 2w.", param, ctx)


# -- install ---------------------------------------------------------------------


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create the instance secret key and the database schema."""
    from flask_migrate import upgrade

    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    key_file = instance / SECRET_KEY_FILE
    if read_instance_secret(instance):
        click.echo(f"Secret key: kept {key_file}")
    else:
        key_file.unlink(missing_ok=True)  # an empty file is no key at all
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        click.echo(f"Secret key: wrote {key_file}")
    try:
        upgrade()
    except SQLAlchemyError as error:
        # A wrong DATABASE_URL or a server that is down: say so, no traceback.
        detail = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise fail(f"The database could not be migrated: {detail}") from None
    click.echo("Database: schema is up to date.")


LEVEL_ERROR = "error"


@dataclass(frozen=True)
class Problem:
    """One thing `check` found: how serious, which part of the set-up, and what to do."""

    level: str
    area: str
    message: str


@click.command("check", epilog=epilog("(also when a problem is found: each is listed)"))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as one JSON object.")
@with_appcontext
def check_command(as_json: bool) -> None:
    """Check production readiness; exit non-zero on problems.

    ``--json`` prints ``{"ready": ..., "problems": [{"level", "area",
    "message"}, ...]}`` on standard output, whatever it finds.
    """
    problems = readiness_problems()
    if as_json:
        echo_json({"ready": not problems, "problems": [asdict(problem) for problem in problems]})
    elif not problems:
        click.echo("Ready for production: no problems found.")
    else:
        for problem in problems:
            click.echo(f"- {problem.message}", err=True)
    if any(problem.level == LEVEL_ERROR for problem in problems):
        raise fail(f"{len(problems)} problem(s) found.")


def readiness_problems() -> list[Problem]:
    """List what keeps this site from being ready for production, settings first."""
    settings = config_for("production", current_app.instance_path)
    values = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    found = [("settings", message) for message in production_problems(values)]
    found += [("redis", message) for message in _redis_problems(values.get("REDIS_URL"))]
    database = _database_problems()
    found += [("database", message) for message in database]
    if not database:
        found += [("accounts", message) for message in _demo_password_problems()]
    return [Problem(LEVEL_ERROR, area, message) for area, message in found]


def _database_problems() -> list[str]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        return [f"The database is unreachable: {error.__class__.__name__}."]
    migrate = current_app.extensions["migrate"]
    script = ScriptDirectory(migrate.directory)
    heads = set(script.get_heads())
    if current != heads:
        return ["The database schema is not up to date: run `python manage.py db upgrade`."]
    return []


def _redis_problems(url: str | None) -> list[str]:
    import redis

    if not url:
        return []  # production_problems already says REDIS_URL is missing
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError) as error:
        return [
            f"REDIS_URL does not answer ({error.__class__.__name__}): "
            "rate limits need it in production."
        ]
    return []


def _demo_password_problems() -> list[str]:
    from portal import seed

    return [
        f"The {USER.ROLE[user.role]} account {user.email} has a published demo password: "
        f"set a new one with `python manage.py users set-password {user.email}`."
        for user in seed.accounts_with_demo_passwords()
    ]


# -- accounts --------------------------------------------------------------------


@click.command("create-admin")
@click.option("--email", required=True, help="The new admin's email address.")
@click.option("--name", required=True, help="The new admin's display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_admin_command(email: str, name: str, password_stdin: bool) -> None:
    """Create an ACTIVE admin account."""
    if services.email_taken(email):
        raise fail(f"An account already uses {email!r}.")
    password = read_password(password_stdin)
    try:
        user = services.create_admin(name, email, password)
    except services.AccountError as error:
        raise fail(str(error)) from None
    click.echo(f"Created admin {user.email} (id {user.id}).")


@click.group("users", epilog=EXIT_CODES)
def users_group() -> None:
    """List accounts; change role, status, password."""


DRY_RUN_OPTION = click.option(
    "--dry-run", is_flag=True, help="Check and say what would change; change nothing."
)


@users_group.command("list")
@click.option("--role", help="Only this role (admin, staff, user).")
@click.option("--status", help="Only this status (inactive, new, active).")
@click.option("--search", metavar="TEXT", help="Only names or addresses containing TEXT.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Show at most this many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@with_appcontext
def users_list_command(
    role: str | None, status: str | None, search: str | None, limit: int, as_json: bool
) -> None:
    """List accounts, newest first.

    Accounts joined at the same moment come by id, newest first, so the
    order is the same on every run. ``--json`` prints ``{"total": ...,
    "shown": ..., "accounts": [...]}``.
    """
    from portal.database import LIKE_ESCAPE
    from portal.database import escape_like

    criteria = []
    if role:
        criteria.append(User.role == parse_role(role))
    if status:
        criteria.append(User.status == parse_status(status))
    if search is not None:
        if not search.strip():
            raise fail("--search needs some text to look for.")
        pattern = f"%{escape_like(search.strip().lower())}%"
        criteria.append(
            func.lower(User.name).like(pattern, escape=LIKE_ESCAPE)
            | func.lower(User.email).like(pattern, escape=LIKE_ESCAPE)
        )
    query = select(User).where(*criteria).order_by(User.created_at.desc(), User.id.desc())
    users = db.session.execute(query.limit(limit)).scalars().all()
    total = db.session.execute(select(func.count(User.id)).where(*criteria)).scalar_one()
    if as_json:
        accounts = [account_json(user) for user in users]
        echo_json({"total": total, "shown": len(users), "accounts": accounts})
        return
    rows = [("ID", "EMAIL", "NAME", "ROLE", "STATUS", "CREATED", "LAST LOGIN")]
    for user in users:
        rows.append(
            (
                str(user.id),
                user.email,
                user.name,
                user.role_name,
                user.status_name,
                f"{user.created_at:%Y-%m-%d %H:%M}",
                f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    click.echo(f"{len(users)} of {total} account(s) shown.")


def account_json(user: User) -> dict[str, Any]:
    """One account as `users list --json` prints it; never its password hash."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role_name,
        "status": user.status_name,
        "created_at": iso(user.created_at),
        "last_login_at": iso(user.last_login_at),
    }


@users_group.command("set-role")
@click.argument("email")
@click.argument("role")
@DRY_RUN_OPTION
@with_appcontext
def users_set_role_command(email: str, role: str, dry_run: bool) -> None:
    """Give the account EMAIL the role ROLE (admin, staff, user)."""
    wanted = parse_role(role)
    user = find_user(email)
    before = USER.ROLE[user.role]
    changed = change_account(user, dry_run, role=wanted)
    report_change(user.email, before, USER.ROLE[wanted], changed=changed, dry_run=dry_run)


@users_group.command("set-status")
@click.argument("email")
@click.argument("status")
@DRY_RUN_OPTION
@with_appcontext
def users_set_status_command(email: str, status: str, dry_run: bool) -> None:
    """Give the account EMAIL the status STATUS (inactive, new, active)."""
    wanted = parse_status(status)
    user = find_user(email)
    before = USER.STATUS[user.status]
    changed = change_account(user, dry_run, status=wanted)
    report_change(user.email, before, USER.STATUS[wanted], changed=changed, dry_run=dry_run)


def change_account(user: User, dry_run: bool, **change: Any) -> bool:
    """Apply ``change`` as the operator (or only try it, for a dry run); say why if refused."""
    try:
        with dry_run_or_real(dry_run):
            return services.change_account(user, actor=None, **change)
    except services.AccountError as error:
        raise fail(str(error)) from None


def report_change(address: str, before: str, after: str, *, changed: bool, dry_run: bool) -> None:
    """Say what a role or status change did, or would do."""
    if not dry_run:
        verb = "is now" if changed else "was already"
        click.echo(f"{address} {verb} {after}.")
    elif changed:
        click.echo(f"Would make {address} {after} (now {before}); nothing was changed.")
    else:
        click.echo(f"{address} is already {after}; nothing would change.")


@users_group.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def users_set_password_command(email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL; its sessions end."""
    user = find_user(email)
    password = read_password(password_stdin)
    try:
        services.set_password(user, password, audited=True)
    except services.AccountError as error:
        raise fail(str(error)) from None
    db.session.commit()
    click.echo(f"Password changed for {user.email}; its sessions have ended.")


@users_group.command("reset-mfa")
@click.argument("email")
@click.option("--dry-run", is_flag=True, help="Check and say what would happen; change nothing.")
@with_appcontext
def users_reset_mfa_command(email: str, dry_run: bool) -> None:
    """Reset the two-step sign-in of EMAIL; its sessions end.

    The account then signs in with its password alone and sets up a new one.
    """
    user = find_user(email)
    try:
        with dry_run_or_real(dry_run):
            mfa.reset(user, actor=None)
    except mfa.SecondFactorError as error:
        raise fail(str(error)) from None
    if dry_run:
        click.echo(f"Would reset the two-step sign-in of {user.email} and end its sessions.")
        return
    click.echo(
        f"Two-step sign-in of {user.email} is reset and its sessions have ended: "
        "it signs in with its password and sets it up again."
    )


@users_group.command("purge-sessions")
@click.option("--dry-run", is_flag=True, help="Only say how many would be deleted.")
@with_appcontext
def users_purge_sessions_command(dry_run: bool) -> None:
    """Delete sign-in sessions past their idle or absolute lifetime (for cron)."""
    with dry_run_or_real(dry_run):
        count = sessions.purge_expired()
    click.echo(f"{'Would delete' if dry_run else 'Deleted'} {count} expired session(s).")


# -- demo data -------------------------------------------------------------------


@click.command("seed", epilog=EXIT_CODES)
@click.option("--users", "extra_users", default=0, show_default=True, help="Extra USER accounts.")
@click.option("--posts", default=0, show_default=True, help="Posts over the past year.")
@click.option("--comments", default=0, show_default=True, help="Comments on published posts.")
@click.option(
    "--force",
    is_flag=True,
    help="Allow generated rows in a production database (no demo accounts).",
)
@DRY_RUN_OPTION
@with_appcontext
def seed_command(extra_users: int, posts: int, comments: int, force: bool, dry_run: bool) -> None:
    """Load demo accounts and content, or bulk rows for load tests.

    The demo accounts are created or reset and printed. A database without
    posts also gets a few demo posts and comments, unless --posts asks for
    generated ones. Production never gets the demo accounts or content:
    their passwords are published.
    """
    import time

    from portal import seed

    demo = seed.demo_accounts_allowed()
    if not demo and not force:
        raise fail("Refusing to seed a production database; pass --force if you mean it.")
    for option, value in (("--users", extra_users), ("--posts", posts), ("--comments", comments)):
        if value < 0:
            raise fail(f"{option} must be zero or more.")
    if not demo and not (extra_users or posts or comments):
        raise fail(
            "Production gets no demo accounts or demo content (their passwords are public); "
            "give --users, --posts or --comments for generated rows."
        )
    try:
        seed.check_posts_possible(users=extra_users, posts=posts)
        seed.check_comments_possible(posts=posts, comments=comments)
    except seed.SeedError as error:
        raise fail(str(error)) from None
    if dry_run:
        for line in seed_plan(demo, extra_users, posts, comments):
            click.echo(line)
        return
    started = time.perf_counter()
    if demo:
        seed.ensure_demo_accounts()
        if not posts:
            seed.add_demo_content()
    loads = (
        ("Accounts", seed.add_users, extra_users),
        ("Posts", seed.add_posts, posts),
        ("Comments", seed.add_comments, comments),
    )
    for label, load, count in loads:
        if count:
            with click.progressbar(length=count, label=label) as bar:
                load(count, progress=bar.update)
    if extra_users or posts or comments:
        summary = f"Added {extra_users:,} account(s), {posts:,} post(s) and {comments:,} comment(s)"
        audit.record(AUDIT.ACTION_SEED, AUDIT.OBJECT_DATABASE, summary=summary)
        db.session.commit()
        click.echo(f"{summary} in {time.perf_counter() - started:.1f} s.")
    if demo:
        click.echo("Demo accounts (development only):")
        for role, _name, email, password in seed.DEMO_ACCOUNTS:
            click.echo(f"  {USER.ROLE[role]:<6} {email:<20} password: {password}")


def seed_plan(demo: bool, extra_users: int, posts: int, comments: int) -> list[str]:
    """Say what `seed` with these options would write, without writing it."""
    from portal import seed

    lines = []
    if demo:
        create, reset = seed.demo_accounts_plan()
        if create:
            lines.append(f"Would create the demo accounts {', '.join(create)}.")
        if reset:
            lines.append(
                f"Would reset the demo accounts {', '.join(reset)} "
                "(role, status and password as printed; their sessions end)."
            )
        if not posts and not seed.has_posts():
            lines.append(
                f"Would add {len(seed.DEMO_POSTS)} demo posts "
                f"and {len(seed.DEMO_COMMENTS)} demo comments."
            )
    if extra_users or posts or comments:
        lines.append(
            f"Would add {extra_users:,} account(s), {posts:,} post(s) and {comments:,} comment(s)."
        )
    lines.append("Nothing was changed.")
    return lines


# -- email -----------------------------------------------------------------------


@click.group("emails", epilog=epilog("(also `emails send` when a message failed for good)"))
def emails_group() -> None:
    """Deliver and inspect the outgoing email queue."""


@emails_group.command("send")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), help="Messages to claim.")
@with_appcontext
def emails_send_command(batch_size: int | None) -> None:
    """Deliver one batch of due messages and exit (for cron)."""
    from portal.emails.queue import deliver_batch

    require_outbox()
    result = deliver_batch(batch_size=batch_size)
    click.echo(
        f"Sent {result.sent}, retrying {result.retried}, failed {result.failed}"
        + (f", skipped {result.skipped} (suppressed)" if result.skipped else "")
        + "."
    )
    for error in result.errors:
        click.echo(f"  {error}", err=True)
    if result.failed:
        raise SystemExit(1)


@emails_group.command("worker")
@click.option("--batch", "batch_size", type=click.IntRange(min=1), help="Messages per claim.")
@click.option(
    "--idle-sleep",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait when nothing is due.",
)
@click.option("--once", is_flag=True, help="Deliver one batch, then stop.")
@with_appcontext
def emails_worker_command(batch_size: int | None, idle_sleep: float, once: bool) -> None:
    """Deliver messages until SIGTERM or SIGINT.

    The message in flight finishes; the rest of its batch goes back to the queue.
    """
    from portal.emails.queue import BatchResult
    from portal.emails.worker import Worker

    def report(result: BatchResult) -> None:
        click.echo(
            f"batch: sent {result.sent}, retrying {result.retried}, "
            f"failed {result.failed}, released {result.released}",
            err=True,
        )

    require_outbox()
    worker = Worker(batch_size=batch_size, idle_sleep=idle_sleep, report=report)
    worker.install_signal_handlers()
    click.echo(f"Worker {worker.worker_id} started.", err=True)
    totals = worker.run(once=once)
    click.echo(
        f"Worker {worker.worker_id} stopped: sent {totals.sent}, retrying {totals.retried}, "
        f"failed {totals.failed}.",
        err=True,
    )


def require_outbox() -> None:
    """Refuse to start delivering without a reachable database that has the outbox."""
    from sqlalchemy import inspect

    try:
        ready = inspect(db.engine).has_table("emails_email")
    except SQLAlchemyError as error:
        raise fail(f"The database is unreachable: {error.__class__.__name__}.") from None
    if not ready:
        raise fail("The database has no outbox yet: run `python manage.py init`.")


def require_known_ids(ids: tuple[int, ...]) -> None:
    """Refuse ids that name no message, before anything changes."""
    from portal.emails.models import Email

    wanted = set(ids)
    found = set(db.session.execute(select(Email.id).where(Email.id.in_(wanted))).scalars())
    missing = sorted(wanted - found)
    if len(missing) == 1:
        raise fail(f"No message has the id {missing[0]}.")
    if missing:
        raise fail(f"No messages have the ids {', '.join(map(str, missing))}.")


ID_OPTION = click.option(
    "--id",
    "ids",
    type=click.IntRange(min=1),
    multiple=True,
    help="A message id; repeat for more.",
)


@emails_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for monitoring.")
@with_appcontext
def emails_stats_command(as_json: bool) -> None:
    """Show queue counts, oldest wait and last 24h.

    Counts by state, the age of the oldest queued message, and how many were
    sent and failed in the last 24 hours; ``--json`` prints them as one object.
    """
    import json

    from portal.emails import services as emails

    stats = emails.queue_stats()
    if as_json:
        click.echo(json.dumps(stats.as_dict()))
        return
    width = max(len(name) for name in stats.counts)
    for name, count in stats.counts.items():
        click.echo(f"{name:<{width}}  {count:>8}")
    age = stats.oldest_queued_age
    click.echo(f"Oldest queued: {'none' if age is None else format_age(age) + ' ago'}")
    click.echo(f"Sent in the last 24 hours: {stats.sent_24h}")
    click.echo(f"Failed in the last 24 hours: {stats.failed_24h}")


STATE_BY_NAME = {name: state for state, name in EMAIL.STATE.items()}
ALL_OPTION = click.option(
    "--all", "select_all", is_flag=True, help="Every message the filters below match."
)
OLDER_THAN_OPTION = click.option(
    "--older-than",
    type=Age(),
    metavar="AGE",
    help="With --all: only messages queued more than AGE ago (90m, 12h, 7d, 2w).",
)
TO_OPTION = click.option(
    "--to", metavar="ADDRESS", help="With --all: only messages to ADDRESS (any case)."
)
SEARCH_OPTION = click.option(
    "--search",
    metavar="TEXT",
    help="With --all: only messages whose recipient or subject contains TEXT.",
)


def state_option(states: tuple[int, ...]) -> Any:
    """The ``--state`` filter, offering the states the command can change."""
    names = [EMAIL.STATE[state] for state in states]
    return click.option(
        "--state",
        "states",
        multiple=True,
        metavar="STATE",
        type=click.Choice(names, case_sensitive=False),
        help=f"With --all: only messages in this state ({', '.join(names)}); repeat for more.",
    )


def selection_of(
    select_all: bool,
    states: tuple[str, ...],
    older_than: timedelta | None,
    to: str | None,
    search: str | None,
    *,
    by_id: bool,
) -> Any:
    """Turn ``--all`` and its filters into a ``Selection``; None without ``--all``."""
    from portal.emails import services as emails

    filtered = bool(states) or any(value is not None for value in (older_than, to, search))
    if not select_all:
        if filtered:
            raise click.UsageError("--state, --older-than, --to and --search go with --all.")
        return None
    if by_id:
        raise click.UsageError("--all chooses messages by filters: leave out --id and --failed.")
    selection = emails.Selection(
        states=tuple(STATE_BY_NAME[name.lower()] for name in states),
        older_than=older_than,
        to=to,
        search=search,
    )
    if selection.is_empty():
        raise fail(
            "--all needs a filter, or it would touch every message: "
            "--state, --older-than, --to or --search."
        )
    return selection


@emails_group.command("retry")
@click.option("--failed", is_flag=True, help="Retry every failed message.")
@ID_OPTION
@ALL_OPTION
@state_option((EMAIL.FAILED, EMAIL.CANCELLED, EMAIL.QUEUED))
@OLDER_THAN_OPTION
@TO_OPTION
@SEARCH_OPTION
@DRY_RUN_OPTION
@with_appcontext
def emails_retry_command(
    failed: bool,
    ids: tuple[int, ...],
    select_all: bool,
    states: tuple[str, ...],
    older_than: timedelta | None,
    to: str | None,
    search: str | None,
    dry_run: bool,
) -> None:
    """Requeue failed or cancelled messages now.

    Failed and cancelled messages start over; queued ones waiting for a retry
    or a schedule become due at once. Sending and sent messages are left alone.
    ``--all`` with filters does it to every match in one statement.
    """
    from portal.emails import services as emails

    selection = selection_of(select_all, states, older_than, to, search, by_id=bool(failed or ids))
    if selection is None and not failed and not ids:
        raise fail("Say which messages to retry: --failed, --id N, or --all with a filter.")
    if ids:
        require_known_ids(ids)
    unchanged = 0
    retried = 0
    with dry_run_or_real(dry_run):
        if selection is not None:
            retried = emails.retry_matching(selection)
        if ids:
            retried = emails.retry(ids)
            unchanged = len(set(ids)) - retried
        if failed:
            retried += emails.retry_failed()
    if dry_run:
        click.echo(f"Would queue {retried} message(s) for delivery now; nothing was changed.")
    else:
        click.echo(f"Queued {retried} message(s) for delivery now.")
    if unchanged:
        click.echo(
            f"{'Would leave' if dry_run else 'Left'} {unchanged} as they were: "
            "sending, sent, or already due messages are not retried."
        )


@emails_group.command("cancel")
@ID_OPTION
@ALL_OPTION
@state_option((EMAIL.QUEUED, EMAIL.FAILED))
@OLDER_THAN_OPTION
@TO_OPTION
@SEARCH_OPTION
@DRY_RUN_OPTION
@with_appcontext
def emails_cancel_command(
    ids: tuple[int, ...],
    select_all: bool,
    states: tuple[str, ...],
    older_than: timedelta | None,
    to: str | None,
    search: str | None,
    dry_run: bool,
) -> None:
    """Cancel queued or failed messages.

    A message being sent is left alone. ``--all`` with filters cancels every
    match in one statement.
    """
    from portal.emails import services as emails

    selection = selection_of(select_all, states, older_than, to, search, by_id=bool(ids))
    if selection is None and not ids:
        raise fail("Say which messages to cancel: --id N (repeat for more) or --all with a filter.")
    unchanged = 0
    with dry_run_or_real(dry_run):
        if selection is not None:
            cancelled = emails.cancel_matching(selection)
        else:
            require_known_ids(ids)
            cancelled = emails.cancel(ids)
            unchanged = len(set(ids)) - cancelled
    if dry_run:
        click.echo(f"Would cancel {cancelled} message(s); nothing was changed.")
    else:
        click.echo(f"Cancelled {cancelled} message(s).")
    if unchanged:
        click.echo(
            f"{'Would leave' if dry_run else 'Left'} {unchanged} as they were: "
            "only queued or failed messages can be cancelled."
        )


@emails_group.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    required=True,
    metavar="DAYS",
    help="Delete messages created more than DAYS days ago.",
)
@click.option("--dry-run", is_flag=True, help="Only say how many would be deleted.")
@with_appcontext
def emails_purge_command(days: int, dry_run: bool) -> None:
    """Delete old sent and cancelled messages.

    Their attempt logs go with them; queued, sending and failed messages stay.
    """
    from portal.emails import services as emails

    count = emails.purge(timedelta(days=days), dry_run=dry_run)
    what = f"sent or cancelled message(s) created more than {days} day(s) ago"
    if dry_run:
        click.echo(f"Would delete {count} {what}; nothing was deleted.")
    else:
        click.echo(f"Deleted {count} {what}.")


def read_body_file(path: str) -> str:
    """Return the UTF-8 text of ``path`` (``-`` for standard input), in one-line errors."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise fail(f"The body file {path!r} is not UTF-8 text.") from None
    except OSError as error:
        raise fail(f"The body file {path!r} cannot be read: {error.strerror}.") from None


@emails_group.command("broadcast")
@click.option("--subject", required=True, help="The subject line.")
@click.option(
    "--body-file",
    required=True,
    metavar="FILE",
    help="A UTF-8 text file with the body (- for standard input).",
)
@click.option("--role", help="Only accounts with this role (admin, staff, user).")
@click.option("--status", help="Only this status (inactive, new, active); default: not inactive.")
@click.option(
    "--at",
    "--scheduled-at",
    "scheduled_at",
    type=Moment(),
    help="Send from this moment on (ISO-8601; UTC when no zone is given).",
)
@click.option(
    "--expires-at",
    type=Moment(),
    help="Give up on a message not sent by then (ISO-8601; after --at).",
)
@click.option("--dry-run", is_flag=True, help="Only say how many accounts would receive it.")
@with_appcontext
def emails_broadcast_command(
    subject: str,
    body_file: str,
    role: str | None,
    status: str | None,
    scheduled_at: datetime | None,
    expires_at: datetime | None,
    dry_run: bool,
) -> None:
    """Queue one message to every matching account."""
    from portal import operations
    from portal.emails import services as emails

    wanted_role = parse_role(role) if role else None
    wanted_status = parse_status(status) if status else None
    body = read_body_file(body_file)
    when = emails.schedule_words(scheduled_at, expires_at)
    try:
        emails.check_broadcast(
            subject, body, EMAIL.NORMAL, scheduled_at=scheduled_at, expires_at=expires_at
        )
        total = operations.count_recipients(wanted_role, wanted_status)
        if dry_run:
            click.echo(
                f"Would queue {total} message(s), one per matching account{when}; none queued."
            )
            return
        if not total:
            click.echo("No account matches; nothing was queued.")
            return
        with click.progressbar(length=total, label="Queueing") as bar:
            queued = operations.broadcast(
                subject,
                body,
                role=wanted_role,
                status=wanted_status,
                scheduled_at=scheduled_at,
                expires_at=expires_at,
                progress=bar.update,
            )
    except emails.QueueError as error:
        raise fail(str(error)) from None
    click.echo(f"Queued {queued} message(s){when}.")


@emails_group.command("suppress")
@click.argument("address")
@click.option("--reason", required=True, help="Why (kept with the entry), e.g. 'asked by phone'.")
@DRY_RUN_OPTION
@with_appcontext
def emails_suppress_command(address: str, reason: str, dry_run: bool) -> None:
    """Stop broadcasts and notifications to ADDRESS; account mail still goes."""
    from portal.emails import suppressions

    if not reason.strip():
        raise fail("Say why: --reason must not be empty.")
    with dry_run_or_real(dry_run):
        try:
            row, changed = suppressions.add(address, note=reason, source=EMAIL.SOURCE_CLI)
        except suppressions.SuppressionError as error:
            raise fail(str(error)) from None
        summary = f"{row.address} ({EMAIL.REASON[row.reason]}, {row.category_name})"
    if not changed:
        click.echo(f"{summary} was already suppressed; nothing was changed.")
    elif dry_run:
        click.echo(f"Would suppress {summary}; nothing was changed.")
    else:
        click.echo(f"Suppressed {summary}.")


@emails_group.command("unsuppress")
@click.argument("address")
@DRY_RUN_OPTION
@with_appcontext
def emails_unsuppress_command(address: str, dry_run: bool) -> None:
    """Take ADDRESS off the suppression list: broadcasts and notifications go to it again."""
    from portal.emails import suppressions

    with dry_run_or_real(dry_run):
        row = suppressions.find(address)
        if row is None:
            raise fail(f"{address!r} is not on the suppression list.")
        shown = row.address
        suppressions.remove(row)
    if dry_run:
        click.echo(f"Would take {shown} off the suppression list; nothing was changed.")
    else:
        click.echo(f"Took {shown} off the suppression list.")


# -- your data --------------------------------------------------------------------


@click.group("privacy", epilog=EXIT_CODES)
def privacy_group() -> None:
    """People's own data: exports built in the background."""


@privacy_group.command("build-exports")
@click.option("--limit", type=click.IntRange(min=1), help="Build at most this many.")
@with_appcontext
def privacy_build_exports_command(limit: int | None) -> None:
    """Build the data exports people asked for and email each its link (for cron)."""
    from portal.privacy import services as privacy

    built, failed = privacy.build_pending(limit)
    click.echo(f"Built {built} export(s), {failed} failed.")
    if failed:
        raise SystemExit(1)


# -- backups ---------------------------------------------------------------------


@click.command("backup", epilog=EXIT_CODES)
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace PATH if it exists.")
@with_appcontext
def backup_command(path: Path | None, yes: bool) -> None:
    """Copy the database to a file (default: instance/backups/).

    SQLite through its online backup API, PostgreSQL with pg_dump (custom
    format, the schema holding the tables); the site may keep running.
    """
    from portal import backup

    try:
        database = backup.database_of(db.engine)
        if path is None:
            path = backup.default_path(current_app.instance_path, database.kind, None)
            path.parent.mkdir(parents=True, exist_ok=True)
        size = backup.create(database, path, overwrite=yes)
    except backup.BackupError as error:
        raise fail(str(error)) from None
    click.echo(f"Backed up {database.label} to {path} ({size:,} bytes).")


@click.command("restore", epilog=EXIT_CODES)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace what the database holds now.")
@with_appcontext
def restore_command(path: Path, yes: bool) -> None:
    """Replace the database with a backup made by `backup`.

    The file must be a backup of this kind of database (a SQLite file or a
    pg_dump archive of the same schema). The restore is all or nothing.
    """
    from portal import backup

    try:
        database = backup.database_of(db.engine)
        backup.check(database, path)
        if backup.has_tables(db.engine) and not yes:
            raise fail(f"{database.label} holds data: pass --yes to replace it with {path}.")
        # Our own connections would hold locks the restore waits for.
        db.session.remove()
        db.engine.dispose()
        backup.restore(database, path)
    except backup.BackupError as error:
        raise fail(str(error)) from None
    click.echo(f"Restored {database.label} from {path}.")
    for message in _database_problems():
        click.echo(message, err=True)


def shell_context() -> dict[str, Any]:
    """Names preloaded in ``manage.py shell``: the database, every model, the constants."""
    from portal import models

    return {
        "db": db,
        "User": models.User,
        "Post": models.Post,
        "Comment": models.Comment,
        "Email": models.Email,
        "Attempt": models.Attempt,
        "AuditEvent": models.AuditEvent,
        "USER": USER,
        "POST": POST,
        "COMMENT": COMMENT,
        "EMAIL": EMAIL,
        "AUDIT": AUDIT,
    }


def init_cli(app: Flask) -> None:
    """Register every task on the app's command group."""
    for command in (
        init_command,
        check_command,
        create_admin_command,
        users_group,
        seed_command,
        emails_group,
        privacy_group,
        backup_command,
        restore_command,
    ):
        app.cli.add_command(command)
    app.shell_context_processor(shell_context)
