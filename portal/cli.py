"""Maintenance tasks, available as ``python manage.py ...`` and ``flask --app portal ...``.

A user's mistake (an unknown address, a bad role name) ends in a one-line
error and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import os
import secrets
import sys
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
from portal.users import services
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


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Check production readiness; exit non-zero on problems."""
    settings = config_for("production", current_app.instance_path)
    values = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    problems = production_problems(values)
    problems += _redis_problems(values.get("REDIS_URL"))
    database = _database_problems()
    problems += database or _demo_password_problems()
    if not problems:
        click.echo("Ready for production: no problems found.")
        return
    for problem in problems:
        click.echo(f"- {problem}", err=True)
    raise fail(f"{len(problems)} problem(s) found.")


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


@click.group("users")
def users_group() -> None:
    """List accounts; change role, status, password."""


@users_group.command("list")
@click.option("--role", help="Only this role (admin, staff, user).")
@click.option("--status", help="Only this status (inactive, new, active).")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Show at most this many.",
)
@with_appcontext
def users_list_command(role: str | None, status: str | None, limit: int) -> None:
    """List accounts, newest first."""
    query = select(User).order_by(User.created_at.desc(), User.id.desc())
    count_query = select(func.count(User.id))
    if role:
        query = query.where(User.role == parse_role(role))
        count_query = count_query.where(User.role == parse_role(role))
    if status:
        query = query.where(User.status == parse_status(status))
        count_query = count_query.where(User.status == parse_status(status))
    users = db.session.execute(query.limit(limit)).scalars().all()
    total = db.session.execute(count_query).scalar_one()
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


@users_group.command("set-role")
@click.argument("email")
@click.argument("role")
@with_appcontext
def users_set_role_command(email: str, role: str) -> None:
    """Give the account EMAIL the role ROLE (admin, staff, user)."""
    wanted = parse_role(role)
    user = find_user(email)
    try:
        changed = services.change_account(user, actor=None, role=wanted)
    except services.AccountError as error:
        raise fail(str(error)) from None
    verb = "is now" if changed else "was already"
    click.echo(f"{user.email} {verb} {USER.ROLE[wanted]}.")


@users_group.command("set-status")
@click.argument("email")
@click.argument("status")
@with_appcontext
def users_set_status_command(email: str, status: str) -> None:
    """Give the account EMAIL the status STATUS (inactive, new, active)."""
    wanted = parse_status(status)
    user = find_user(email)
    try:
        changed = services.change_account(user, actor=None, status=wanted)
    except services.AccountError as error:
        raise fail(str(error)) from None
    verb = "is now" if changed else "was already"
    click.echo(f"{user.email} {verb} {USER.STATUS[wanted]}.")


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


# -- demo data -------------------------------------------------------------------


@click.command("seed")
@click.option("--users", "extra_users", default=0, show_default=True, help="Extra USER accounts.")
@click.option("--posts", default=0, show_default=True, help="Posts over the past year.")
@click.option("--comments", default=0, show_default=True, help="Comments on published posts.")
@click.option(
    "--force",
    is_flag=True,
    help="Allow generated rows in a production database (no demo accounts).",
)
@with_appcontext
def seed_command(extra_users: int, posts: int, comments: int, force: bool) -> None:
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


# -- email -----------------------------------------------------------------------


@click.group("emails")
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
    click.echo(f"Sent {result.sent}, retrying {result.retried}, failed {result.failed}.")
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


@emails_group.command("retry")
@click.option("--failed", is_flag=True, help="Retry every failed message.")
@ID_OPTION
@with_appcontext
def emails_retry_command(failed: bool, ids: tuple[int, ...]) -> None:
    """Requeue failed or cancelled messages now.

    Failed and cancelled messages start over; queued ones waiting for a retry
    or a schedule become due at once. Sending and sent messages are left alone.
    """
    from portal.emails import services as emails

    if not failed and not ids:
        raise fail("Say which messages to retry: --failed, --id N, or both.")
    unchanged = 0
    retried = 0
    if ids:
        require_known_ids(ids)
        retried = emails.retry(ids)
        unchanged = len(set(ids)) - retried
    if failed:
        retried += emails.retry_failed()
    click.echo(f"Queued {retried} message(s) for delivery now.")
    if unchanged:
        click.echo(
            f"Left {unchanged} as they were: sending, sent, or already due messages "
            "are not retried."
        )


@emails_group.command("cancel")
@ID_OPTION
@with_appcontext
def emails_cancel_command(ids: tuple[int, ...]) -> None:
    """Cancel queued or failed messages."""
    from portal.emails import services as emails

    if not ids:
        raise fail("Say which messages to cancel: --id N, repeated for more.")
    require_known_ids(ids)
    cancelled = emails.cancel(ids)
    click.echo(f"Cancelled {cancelled} message(s).")
    unchanged = len(set(ids)) - cancelled
    if unchanged:
        click.echo(
            f"Left {unchanged} as they were: only queued or failed messages can be cancelled."
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
    from datetime import timedelta

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
@click.option("--dry-run", is_flag=True, help="Only say how many accounts would receive it.")
@with_appcontext
def emails_broadcast_command(
    subject: str, body_file: str, role: str | None, status: str | None, dry_run: bool
) -> None:
    """Queue one message to every matching account."""
    from portal import operations
    from portal.emails import services as emails

    wanted_role = parse_role(role) if role else None
    wanted_status = parse_status(status) if status else None
    body = read_body_file(body_file)
    try:
        emails.check_message(subject, body)
        total = operations.count_recipients(wanted_role, wanted_status)
        if dry_run:
            click.echo(f"Would queue {total} message(s), one per matching account; none queued.")
            return
        if not total:
            click.echo("No account matches; nothing was queued.")
            return
        with click.progressbar(length=total, label="Queueing") as bar:
            queued = operations.broadcast(
                subject, body, role=wanted_role, status=wanted_status, progress=bar.update
            )
    except emails.QueueError as error:
        raise fail(str(error)) from None
    click.echo(f"Queued {queued} message(s).")


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
    ):
        app.cli.add_command(command)
    app.shell_context_processor(shell_context)
