"""The email queue rules for staff and operators, and the ``manage.py emails`` tasks on them."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select

from portal import operations
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails import services
from portal.emails import unsubscribe
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.services import QueueError
from portal.extensions import db
from portal.users import constants as USER
from portal.users.models import User
from tests.factories import AdminFactory
from tests.factories import EmailFactory
from tests.factories import InactiveUserFactory
from tests.factories import NewUserFactory
from tests.factories import StaffFactory
from tests.factories import UserFactory
from tests.helpers import assert_no_traceback
from tests.helpers import deliver
from tests.helpers import fails_with
from tests.helpers import statements
from tests.helpers import text_of

BODY = "Hello <b>everyone</b> & welcome.\n\nThe portal moves tonight.\nExpect a short outage.\n"


# -- helpers ---------------------------------------------------------------------


def row(email_id: int) -> Email | None:
    """Read a message as committed, not as this session last saw it."""
    db.session.expire_all()
    return db.session.get(Email, email_id)


def state_of(email: Email) -> int:
    found = row(email.id)
    assert found is not None
    return found.state


def all_rows() -> list[Email]:
    db.session.expire_all()
    return list(db.session.execute(select(Email).order_by(Email.id)).scalars())


def queued_to() -> list[str]:
    """Recipients of every row, sorted: what a broadcast wrote."""
    return sorted(email.to_address for email in all_rows())


def attempt_count(email_id: int | None = None) -> int:
    query = select(func.count(Attempt.id))
    if email_id is not None:
        query = query.where(Attempt.email_id == email_id)
    return int(db.session.execute(query).scalar_one())


def log_attempt(email: Email, outcome: str, ago: timedelta) -> None:
    db.session.add(
        Attempt(email_id=email.id, worker="w:1", started_at=utcnow() - ago, outcome=outcome)
    )
    db.session.commit()


def one_of_each_state() -> dict[str, Email]:
    """A row in every state, plus a QUEUED one waiting on its backoff."""
    now = utcnow()
    return {
        "due": EmailFactory(state=EMAIL.QUEUED),
        "waiting": EmailFactory(
            state=EMAIL.QUEUED,
            attempts=2,
            next_attempt_at=now + timedelta(minutes=30),
            last_error="421 busy",
        ),
        "sending": EmailFactory(
            state=EMAIL.SENDING,
            attempts=1,
            locked_by="w:1",
            locked_until=now + timedelta(minutes=5),
        ),
        "sent": EmailFactory(state=EMAIL.SENT, attempts=1, sent_at=now),
        "failed": EmailFactory(
            state=EMAIL.FAILED,
            attempts=5,
            next_attempt_at=now - timedelta(hours=1),
            last_error="550 no such user",
        ),
        "cancelled": EmailFactory(state=EMAIL.CANCELLED),
    }


def states(rows: dict[str, Email]) -> dict[str, str]:
    return {name: EMAIL.STATE[state_of(email)] for name, email in rows.items()}


def write_body(tmp_path: Path, text: str) -> str:
    path = tmp_path / "body.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def audience() -> dict[str, User]:
    """Accounts of every role and status a broadcast may or may not reach."""
    return {
        "admin": AdminFactory(email="admin@example.com"),
        "staff": StaffFactory(email="staff@example.com"),
        "user": UserFactory(email="user@example.com"),
        "new": NewUserFactory(email="new@example.com"),
        "inactive": InactiveUserFactory(email="off@example.com"),
        "inactive_staff": InactiveUserFactory(email="offstaff@example.com", role=USER.STAFF),
    }


# -- retry -----------------------------------------------------------------------


def test_retry_requeues_failed_and_cancelled_and_hurries_waiting_rows(app: Flask) -> None:
    rows = one_of_each_state()
    before = utcnow()

    changed = services.retry(email.id for email in rows.values())

    assert changed == 3
    assert states(rows) == {
        "due": "queued",
        "waiting": "queued",
        "sending": "sending",
        "sent": "sent",
        "failed": "queued",
        "cancelled": "queued",
    }
    failed = row(rows["failed"].id)
    assert failed is not None
    assert failed.attempts == 0
    assert before <= failed.next_attempt_at <= utcnow()
    assert (failed.locked_by, failed.locked_until) == (None, None)
    waiting = row(rows["waiting"].id)
    assert waiting is not None
    assert waiting.attempts == 2  # only made due; its attempts still count
    assert waiting.next_attempt_at <= utcnow()
    sending = row(rows["sending"].id)
    assert sending is not None
    assert (sending.locked_by, sending.attempts) == ("w:1", 1)


def test_retry_of_a_row_waiting_on_backoff_delivers_it_at_once(
    app: Flask, mail: list[EmailMessage]
) -> None:
    waiting = EmailFactory(
        to_address="late@example.com", attempts=1, next_attempt_at=utcnow() + timedelta(hours=2)
    )
    assert deliver(app) == []

    assert services.retry([waiting.id]) == 1

    assert [message["To"] for message in deliver(app)] == ["late@example.com"]
    assert state_of(waiting) == EMAIL.SENT


def test_retry_counts_only_the_rows_it_changed(app: Flask) -> None:
    failed = EmailFactory(state=EMAIL.FAILED, attempts=5)

    assert services.retry([failed.id, failed.id]) == 1
    assert services.retry([failed.id]) == 0
    assert services.retry([987654]) == 0
    assert services.retry([]) == 0


def test_retry_failed_requeues_every_failed_row_and_nothing_else(app: Flask) -> None:
    rows = one_of_each_state()
    other = EmailFactory(state=EMAIL.FAILED, attempts=3)

    assert services.retry_failed() == 2

    requeued = row(other.id)
    assert requeued is not None
    assert (requeued.state, requeued.attempts) == (EMAIL.QUEUED, 0)
    assert states(rows) == {
        "due": "queued",
        "waiting": "queued",
        "sending": "sending",
        "sent": "sent",
        "failed": "queued",
        "cancelled": "cancelled",
    }
    waiting = row(rows["waiting"].id)
    assert waiting is not None
    assert waiting.next_attempt_at > utcnow()  # --failed does not hurry QUEUED rows


def test_retried_rows_work_in_chunks(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "CHUNK_SIZE", 2)
    ids = [EmailFactory(state=EMAIL.FAILED).id for _ in range(5)]

    assert services.retry(ids) == 5
    assert services.cancel(ids) == 5
    assert {email.state for email in all_rows()} == {EMAIL.CANCELLED}


# -- cancel and delete -----------------------------------------------------------


def test_cancel_moves_only_queued_and_failed(app: Flask, mail: list[EmailMessage]) -> None:
    rows = one_of_each_state()

    assert services.cancel(email.id for email in rows.values()) == 3

    assert states(rows) == {
        "due": "cancelled",
        "waiting": "cancelled",
        "sending": "sending",
        "sent": "sent",
        "failed": "cancelled",
        "cancelled": "cancelled",
    }
    assert deliver(app) == []


def test_delete_removes_rows_and_their_attempts_except_while_sending(app: Flask) -> None:
    rows = one_of_each_state()
    for email in rows.values():
        log_attempt(email, EMAIL.OUTCOME_RETRY, timedelta(minutes=1))

    assert services.delete(email.id for email in rows.values()) == 5

    assert [email.id for email in all_rows()] == [rows["sending"].id]
    assert attempt_count() == 1
    assert attempt_count(rows["sending"].id) == 1
    assert services.delete([rows["sending"].id, 987654]) == 0


# -- purge -----------------------------------------------------------------------


def aged(state: int, days: float) -> Email:
    return EmailFactory(state=state, created_at=utcnow() - timedelta(days=days))


@pytest.fixture
def history() -> dict[str, int]:
    """Old and recent rows in each state, each with one attempt logged."""
    rows = {
        f"{'old' if days > 30 else 'new'}_{EMAIL.STATE[state]}": aged(state, days)
        for days in (40, 2)
        for state in EMAIL.STATE
    }
    for email in rows.values():
        log_attempt(email, EMAIL.OUTCOME_SENT, timedelta(days=1))
    return {name: email.id for name, email in rows.items()}


def test_purge_deletes_only_old_sent_and_cancelled_rows(
    app: Flask, history: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "CHUNK_SIZE", 1)  # several batches
    extra = [aged(EMAIL.SENT, 50).id for _ in range(2)]
    gone = {history["old_sent"], history["old_cancelled"], *extra}

    assert services.purge(timedelta(days=30)) == 4

    left = {email.id for email in all_rows()}
    assert left == set(history.values()) - gone
    assert attempt_count() == len(left)
    assert services.purge(timedelta(days=30)) == 0


def test_purge_dry_run_counts_and_changes_nothing(app: Flask, history: dict[str, int]) -> None:
    before = [(email.id, email.state) for email in all_rows()]

    assert services.purge(timedelta(days=30), dry_run=True) == 2
    assert services.purge(timedelta(days=1), dry_run=True) == 4

    assert [(email.id, email.state) for email in all_rows()] == before
    assert attempt_count() == len(before)


def test_purge_refuses_a_negative_age(app: Flask) -> None:
    with pytest.raises(QueueError):
        services.purge(timedelta(days=-1))


# -- stats -----------------------------------------------------------------------


def test_queue_stats_counts_states_age_and_the_last_day(app: Flask) -> None:
    now = utcnow()
    EmailFactory(state=EMAIL.QUEUED, created_at=now - timedelta(hours=3))
    EmailFactory(state=EMAIL.QUEUED, created_at=now - timedelta(minutes=5))
    EmailFactory(state=EMAIL.SENT, sent_at=now - timedelta(hours=1))
    EmailFactory(state=EMAIL.SENT, sent_at=now - timedelta(hours=30))
    failed_now = EmailFactory(state=EMAIL.FAILED)
    failed_before = EmailFactory(state=EMAIL.FAILED)
    retried = EmailFactory(state=EMAIL.SENT, sent_at=now - timedelta(minutes=1))
    log_attempt(failed_now, EMAIL.OUTCOME_RETRY, timedelta(hours=2))
    log_attempt(failed_now, EMAIL.OUTCOME_FAILED, timedelta(hours=1))
    log_attempt(failed_before, EMAIL.OUTCOME_FAILED, timedelta(hours=25))
    log_attempt(retried, EMAIL.OUTCOME_FAILED, timedelta(hours=3))
    log_attempt(retried, EMAIL.OUTCOME_FAILED, timedelta(hours=2))

    stats = services.queue_stats()

    assert stats.counts == {"queued": 2, "sending": 0, "sent": 3, "failed": 2, "cancelled": 0}
    assert stats.oldest_queued_age is not None
    assert 3 * 3600 <= stats.oldest_queued_age < 3 * 3600 + 60
    assert stats.sent_24h == 2
    # Each message that failed in the window once, even if retried and sent since.
    assert stats.failed_24h == 2


def test_queue_stats_of_an_empty_queue(app: Flask) -> None:
    stats = services.queue_stats()

    assert stats.as_dict() == {
        "queued": 0,
        "sending": 0,
        "sent": 0,
        "failed": 0,
        "cancelled": 0,
        "oldest_queued_age": None,
        "sent_24h": 0,
        "failed_24h": 0,
    }


# -- recipients and broadcast ----------------------------------------------------


def addresses(role: int | None = None, status: int | None = None) -> list[str]:
    found = db.session.execute(operations.recipients(role, status)).scalars()
    return sorted(user.email for user in found)


@pytest.mark.parametrize(
    ("role", "status", "expected"),
    [
        (None, None, ["admin", "new", "staff", "user"]),
        (USER.STAFF, None, ["staff"]),
        (USER.USER, USER.NEW, ["new"]),
        (None, USER.ACTIVE, ["admin", "staff", "user"]),
        (None, USER.INACTIVE, ["off", "offstaff"]),
        (USER.STAFF, USER.INACTIVE, ["offstaff"]),
        (USER.ADMIN, USER.NEW, []),
    ],
)
def test_recipients_match_role_and_status_and_skip_the_disabled(
    app: Flask,
    audience: dict[str, User],
    role: int | None,
    status: int | None,
    expected: list[str],
) -> None:
    wanted = [f"{name}@example.com" for name in expected]

    assert addresses(role, status) == wanted
    assert operations.count_recipients(role, status) == len(wanted)


def test_recipients_refuse_an_unknown_role_or_status(app: Flask) -> None:
    with pytest.raises(QueueError):
        operations.recipients(role=9)
    with pytest.raises(QueueError):
        operations.count_recipients(status=9)


def test_broadcast_queues_one_message_per_account_to_its_stored_address(
    app: Flask, audience: dict[str, User]
) -> None:
    staff = audience["staff"]

    queued = operations.broadcast(" Moving day ", BODY, created_by_id=staff.id)

    assert queued == 4
    rows = all_rows()
    assert sorted(email.to_address for email in rows) == [
        "admin@example.com",
        "new@example.com",
        "staff@example.com",
        "user@example.com",
    ]
    assert {(e.subject, e.state, e.priority, e.created_by_id) for e in rows} == {
        ("Moving day", EMAIL.QUEUED, EMAIL.NORMAL, staff.id)
    }
    assert len({email.message_id for email in rows}) == 4


@pytest.mark.parametrize(
    ("role", "status", "expected"),
    [
        (USER.STAFF, None, ["staff@example.com"]),
        (None, USER.NEW, ["new@example.com"]),
        (None, USER.INACTIVE, ["off@example.com", "offstaff@example.com"]),
    ],
)
def test_broadcast_follows_the_filters(
    app: Flask,
    audience: dict[str, User],
    role: int | None,
    status: int | None,
    expected: list[str],
) -> None:
    assert operations.broadcast("Hi", BODY, role=role, status=status) == len(expected)
    assert queued_to() == expected


def test_broadcast_commits_page_by_page_and_reports_progress(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "CHUNK_SIZE", 2)
    for number in range(5):
        UserFactory(email=f"member{number}@example.com")
    seen: list[int] = []
    committed: list[int] = []

    def progress(count: int) -> None:
        seen.append(count)
        committed.append(len(all_rows()))

    assert operations.broadcast("Hi", BODY, progress=progress) == 5

    assert seen == [2, 2, 1]
    assert committed == [2, 4, 5]  # each page is in the database before the next


def test_broadcast_skips_an_unusable_stored_address_and_sends_the_rest(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    UserFactory(email="good@example.com")
    broken = UserFactory(email="two@example.com,three@example.com")

    with caplog.at_level(logging.WARNING):
        assert operations.broadcast("Hi", BODY) == 1

    assert queued_to() == ["good@example.com"]
    assert f"skipped account {broken.id}" in caplog.text


@pytest.mark.parametrize(
    ("subject", "body", "message"),
    [
        ("Hi\r\nBcc: victim@example.com", BODY, "The subject must be a single line."),
        ("Hi\nthere", BODY, "The subject must be a single line."),
        ("   ", BODY, "The subject is empty."),
        ("x" * 256, BODY, "The subject is longer than 255 characters."),
        ("Hi", "", "The message body is empty."),
        ("Hi", " \n\r\n\t ", "The message body is empty."),
    ],
)
def test_broadcast_and_compose_refuse_bad_input_and_queue_nothing(
    app: Flask, audience: dict[str, User], subject: str, body: str, message: str
) -> None:
    with pytest.raises(QueueError) as broadcast_error:
        operations.broadcast(subject, body)
    with pytest.raises(QueueError) as compose_error:
        services.compose("someone@example.com", subject, body)

    assert str(broadcast_error.value) == str(compose_error.value) == message
    assert all_rows() == []


def test_broadcast_refuses_priority_now_and_unknown_priorities(
    app: Flask, audience: dict[str, User]
) -> None:
    with pytest.raises(QueueError, match="priority 'now'"):
        operations.broadcast("Hi", BODY, priority=EMAIL.NOW)
    with pytest.raises(QueueError, match="Unknown priority"):
        operations.broadcast("Hi", BODY, priority=42)
    assert all_rows() == []


def test_a_broadcast_arrives_with_its_text_and_escaped_html(
    app: Flask, audience: dict[str, User], mail: list[EmailMessage]
) -> None:
    operations.broadcast("Moving day", BODY, role=USER.USER, status=USER.ACTIVE)

    (message,) = deliver(app)

    assert message["To"] == "user@example.com"
    assert message["Subject"] == "Moving day"
    assert message["From"] == "Portal <no-reply@example.com>"
    text, preferences = text_of(message).rsplit("\n", 2)[:2]
    assert text + "\n" == (
        "Hello <b>everyone</b> & welcome.\n\n"
        "The portal moves tonight.\nExpect a short outage.\n\n"
        "Portal, http://127.0.0.1:5000\n"
        "\nUnsubscribe from these emails:\n"
        f"{unsubscribe.unsubscribe_url('user@example.com', EMAIL.BROADCAST)}\n"
        "Choose which emails you get:\n"
    )
    assert preferences.startswith("http://127.0.0.1:5000/email-preferences/")
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<p>Hello &lt;b&gt;everyone&lt;/b&gt; &amp; welcome.</p>" in html
    assert "<p>The portal moves tonight.<br>Expect a short outage.</p>" in html
    assert "<b>everyone</b>" not in html


# -- compose ---------------------------------------------------------------------


def test_compose_queues_one_message_and_commits(app: Flask, mail: list[EmailMessage]) -> None:
    admin = AdminFactory()

    email = services.compose(
        "Reader@Example.COM", "A note", "Line one.", created_by_id=admin.id, priority=EMAIL.HIGH
    )

    stored = row(email.id)
    assert stored is not None
    assert (stored.to_address, stored.subject, stored.priority, stored.created_by_id) == (
        "Reader@example.com",
        "A note",
        EMAIL.HIGH,
        admin.id,
    )
    (message,) = deliver(app)
    assert message["To"] == "Reader@example.com"
    assert text_of(message).startswith("Line one.\n")


@pytest.mark.parametrize(
    "to",
    [
        "not-an-address",
        "a@example.com, b@example.com",
        "a@example.com\r\nBcc: b@example.com",
        "Ann <ann@example.com>",
        "",
    ],
)
def test_compose_refuses_a_bad_address_and_queues_nothing(app: Flask, to: str) -> None:
    with pytest.raises(QueueError):
        services.compose(to, "Hi", "Body")
    assert all_rows() == []


# -- manage.py emails stats ------------------------------------------------------


def test_stats_prints_a_table(runner: FlaskCliRunner) -> None:
    now = utcnow()
    EmailFactory(state=EMAIL.QUEUED, created_at=now - timedelta(hours=2, minutes=5))
    EmailFactory(state=EMAIL.SENT, sent_at=now)
    log_attempt(EmailFactory(state=EMAIL.FAILED), EMAIL.OUTCOME_FAILED, timedelta(hours=1))

    result = runner.invoke(args=["emails", "stats"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "queued            1",
        "sending           0",
        "sent              1",
        "failed            1",
        "cancelled         0",
        "Oldest queued: 2h 5m ago",
        "Sent in the last 24 hours: 1",
        "Failed in the last 24 hours: 1",
    ]


def test_stats_of_an_empty_queue_says_none_waits(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["emails", "stats"])

    assert result.exit_code == 0
    assert "Oldest queued: none" in result.output.splitlines()


def test_stats_json_is_one_object_with_a_key_per_state(runner: FlaskCliRunner) -> None:
    EmailFactory(state=EMAIL.QUEUED, created_at=utcnow() - timedelta(minutes=10))
    EmailFactory(state=EMAIL.CANCELLED)
    EmailFactory(state=EMAIL.CANCELLED)

    result = runner.invoke(args=["emails", "stats", "--json"])

    assert result.exit_code == 0
    assert len(result.output.splitlines()) == 1
    data = json.loads(result.output)
    age = data.pop("oldest_queued_age")
    assert 600 <= age < 660
    assert data == {
        "queued": 1,
        "sending": 0,
        "sent": 0,
        "failed": 0,
        "cancelled": 2,
        "sent_24h": 0,
        "failed_24h": 0,
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0s"), (59, "59s"), (90, "1m 30s"), (7200, "2h"), (7263, "2h 1m"), (273900, "3d 4h")],
)
def test_ages_read_in_two_units(seconds: float, text: str) -> None:
    from portal.formatting import format_age

    assert format_age(seconds) == text


# -- manage.py emails retry / cancel ---------------------------------------------


def test_retry_by_id_requeues_and_says_what_it_left(runner: FlaskCliRunner) -> None:
    rows = one_of_each_state()

    result = runner.invoke(
        args=["emails", "retry", "--id", str(rows["failed"].id), "--id", str(rows["sent"].id)]
    )

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Queued 1 message(s) for delivery now.",
        "Left 1 as they were: sending, sent, or already due messages are not retried.",
    ]
    assert states(rows)["failed"] == "queued"
    assert states(rows)["sent"] == "sent"


def test_retry_failed_requeues_every_failed_message(runner: FlaskCliRunner) -> None:
    rows = one_of_each_state()
    other = EmailFactory(state=EMAIL.FAILED)

    result = runner.invoke(args=["emails", "retry", "--failed", "--id", str(rows["waiting"].id)])

    assert result.exit_code == 0
    assert result.output == "Queued 3 message(s) for delivery now.\n"
    assert state_of(other) == EMAIL.QUEUED
    assert states(rows) == {
        "due": "queued",
        "waiting": "queued",
        "sending": "sending",
        "sent": "sent",
        "failed": "queued",
        "cancelled": "cancelled",
    }


def test_retry_needs_failed_or_an_id(runner: FlaskCliRunner) -> None:
    failed = EmailFactory(state=EMAIL.FAILED)

    result = runner.invoke(args=["emails", "retry"])

    fails_with(result, "Say which messages to retry: --failed, --id N, or --all with a filter.")
    assert state_of(failed) == EMAIL.FAILED


@pytest.mark.parametrize("command", ["retry", "cancel"])
def test_retry_and_cancel_refuse_unknown_ids_and_change_nothing(
    runner: FlaskCliRunner, command: str
) -> None:
    failed = EmailFactory(state=EMAIL.FAILED)

    one = runner.invoke(args=["emails", command, "--id", str(failed.id), "--id", "98765"])
    two = runner.invoke(args=["emails", command, "--id", "98765", "--id", "98764"])

    fails_with(one, "No message has the id 98765.")
    fails_with(two, "No messages have the ids 98764, 98765.")
    assert state_of(failed) == EMAIL.FAILED


@pytest.mark.parametrize("command", ["retry", "cancel"])
def test_retry_and_cancel_refuse_an_id_that_is_not_a_positive_number(
    runner: FlaskCliRunner, command: str
) -> None:
    for value in ("0", "abc"):
        result = runner.invoke(args=["emails", command, "--id", value])

        assert_no_traceback(result)
        assert result.exit_code == 2
        assert "Invalid value for '--id'" in result.output


def test_cancel_cancels_queued_and_failed_only(
    runner: FlaskCliRunner, mail: list[EmailMessage]
) -> None:
    rows = one_of_each_state()
    args = ["emails", "cancel"]
    for email in rows.values():
        args += ["--id", str(email.id)]

    result = runner.invoke(args=args)

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Cancelled 3 message(s).",
        "Left 3 as they were: only queued or failed messages can be cancelled.",
    ]
    assert states(rows) == {
        "due": "cancelled",
        "waiting": "cancelled",
        "sending": "sending",
        "sent": "sent",
        "failed": "cancelled",
        "cancelled": "cancelled",
    }
    assert runner.invoke(args=["emails", "send"]).output == "Sent 0, retrying 0, failed 0.\n"


def test_cancel_needs_an_id(runner: FlaskCliRunner) -> None:
    fails_with(
        runner.invoke(args=["emails", "cancel"]),
        "Say which messages to cancel: --id N (repeat for more) or --all with a filter.",
    )


# -- manage.py emails purge ------------------------------------------------------


def test_purge_dry_run_says_how_many_and_deletes_nothing(
    runner: FlaskCliRunner, history: dict[str, int]
) -> None:
    result = runner.invoke(args=["emails", "purge", "--older-than", "30", "--dry-run"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == (
        "Would delete 2 sent or cancelled message(s) created more than 30 day(s) ago; "
        "nothing was deleted.\n"
    )
    assert len(all_rows()) == len(history)


def test_purge_deletes_old_sent_and_cancelled_messages(
    runner: FlaskCliRunner, history: dict[str, int]
) -> None:
    result = runner.invoke(args=["emails", "purge", "--older-than", "30"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == (
        "Deleted 2 sent or cancelled message(s) created more than 30 day(s) ago.\n"
    )
    kept = {email.id for email in all_rows()}
    assert history["old_sent"] not in kept
    assert history["old_cancelled"] not in kept
    assert {history[name] for name in ("old_queued", "old_failed", "new_sent")} <= kept
    assert len(kept) == len(history) - 2


@pytest.mark.parametrize(
    "args", [["--older-than", "0"], ["--older-than", "-3"], ["--older-than", "x"], []]
)
def test_purge_needs_a_positive_number_of_days(
    runner: FlaskCliRunner, history: dict[str, int], args: list[str]
) -> None:
    result = runner.invoke(args=["emails", "purge", *args])

    assert_no_traceback(result)
    assert result.exit_code == 2
    assert "--older-than" in result.output
    assert len(all_rows()) == len(history)


# -- manage.py emails broadcast --------------------------------------------------


def test_broadcast_dry_run_counts_the_accounts_and_queues_nothing(
    runner: FlaskCliRunner, audience: dict[str, User], tmp_path: Path
) -> None:
    body = write_body(tmp_path, BODY)

    result = runner.invoke(
        args=["emails", "broadcast", "--subject", "Hi", "--body-file", body, "--dry-run"]
    )
    staff = runner.invoke(
        args=[
            "emails",
            "broadcast",
            "--subject",
            "Hi",
            "--body-file",
            body,
            "--role",
            "STAFF",
            "--status",
            "inactive",
            "--dry-run",
        ]  # fmt: skip
    )

    assert result.exit_code == 0
    assert result.output == "Would queue 4 message(s), one per matching account; none queued.\n"
    assert staff.output == "Would queue 1 message(s), one per matching account; none queued.\n"
    assert all_rows() == []


def test_broadcast_queues_with_a_progress_bar_and_delivers(
    runner: FlaskCliRunner, app: Flask, audience: dict[str, User], tmp_path: Path
) -> None:
    body = write_body(tmp_path, BODY)

    result = runner.invoke(
        args=[
            "emails",
            "broadcast",
            "--subject",
            "Moving day",
            "--body-file",
            body,
            "--role",
            "user",
        ]  # fmt: skip
    )

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert "Queueing" in result.output  # the progress bar's label
    assert result.output.splitlines()[-1] == "Queued 2 message(s)."
    assert queued_to() == ["new@example.com", "user@example.com"]
    delivered = deliver(app)
    assert sorted((m["To"], m["Subject"]) for m in delivered) == [
        ("new@example.com", "Moving day"),
        ("user@example.com", "Moving day"),
    ]
    assert text_of(delivered[0]).startswith("Hello <b>everyone</b> & welcome.\n\nThe portal")


def test_broadcast_reads_the_body_from_standard_input(
    runner: FlaskCliRunner, audience: dict[str, User]
) -> None:
    result = runner.invoke(
        args=["emails", "broadcast", "--subject", "Hi", "--body-file", "-", "--role", "admin"],
        input="From stdin.\n",
    )

    assert result.exit_code == 0
    (email,) = all_rows()
    assert (email.to_address, email.text_body.splitlines()[0]) == (
        "admin@example.com",
        "From stdin.",
    )


def test_broadcast_with_no_matching_account_queues_nothing(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        args=["emails", "broadcast", "--subject", "Hi", "--body-file", write_body(tmp_path, "x")]
    )

    assert result.exit_code == 0
    assert result.output == "No account matches; nothing was queued.\n"
    assert all_rows() == []


@pytest.mark.parametrize(
    ("body", "extra", "message"),
    [
        ("  \n\n", [], "The message body is empty."),
        ("", [], "The message body is empty."),
        (BODY, ["--subject", "Hi\r\nBcc: all@example.com"], "The subject must be a single line."),
        (BODY, ["--subject", " "], "The subject is empty."),
        (BODY, ["--role", "boss"], "Unknown role 'boss'; use one of: admin, staff, user."),
        (BODY, ["--status", "gone"], "Unknown status 'gone'; use one of: inactive, new, active."),
    ],
)
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["real", "dry-run"])
def test_broadcast_refuses_bad_input_in_one_line_and_queues_nothing(
    runner: FlaskCliRunner,
    audience: dict[str, User],
    tmp_path: Path,
    body: str,
    extra: list[str],
    message: str,
    dry_run: list[str],
) -> None:
    args = ["emails", "broadcast", "--subject", "Hi", "--body-file", write_body(tmp_path, body)]

    result = runner.invoke(args=args + extra + dry_run)

    fails_with(result, message)
    assert all_rows() == []


def test_broadcast_says_when_the_body_file_cannot_be_read(
    runner: FlaskCliRunner, audience: dict[str, User], tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.txt")
    binary = tmp_path / "body.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")

    gone = runner.invoke(args=["emails", "broadcast", "--subject", "Hi", "--body-file", missing])
    garbled = runner.invoke(
        args=["emails", "broadcast", "--subject", "Hi", "--body-file", str(binary)]
    )

    fails_with(gone, f"The body file {missing!r} cannot be read: No such file or directory.")
    fails_with(garbled, f"The body file {str(binary)!r} is not UTF-8 text.")
    assert all_rows() == []


# -- help ------------------------------------------------------------------------

EMAIL_COMMANDS = {
    "send",
    "worker",
    "stats",
    "retry",
    "cancel",
    "purge",
    "broadcast",
    "suppress",
    "unsuppress",
}
QUEUE_COMMANDS = {"stats", "retry", "cancel", "purge", "broadcast"}


def test_emails_help_lists_every_command_with_one_line(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["emails", "--help"])

    assert result.exit_code == 0
    # The commands end where the exit-status table begins.
    listed = result.output.split("\nCommands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    summaries = {}
    for line in listed:
        match = re.fullmatch(r"  (\S+)  +(\S.*)", line)
        assert match, f"not one line per command: {line!r}"
        summaries[match.group(1)] = match.group(2)
    assert set(summaries) == EMAIL_COMMANDS
    for name in QUEUE_COMMANDS:
        assert not summaries[name].endswith("..."), f"{name}: help cut short"


@pytest.mark.parametrize("command", sorted(QUEUE_COMMANDS))
def test_each_queue_command_explains_itself_and_its_options(
    runner: FlaskCliRunner, command: str
) -> None:
    result = runner.invoke(args=["emails", command, "--help"])

    assert result.exit_code == 0
    usage, summary, rest = result.output.split("\n\n", 2)
    assert re.fullmatch(rf"Usage: \S+ emails {command} \[OPTIONS\]", usage)
    assert re.fullmatch(r"  [A-Z][^\n]+\.", summary)
    options = rest.split("Options:\n", 1)[1].split("\n\n", 1)[0]
    for line in options.splitlines():
        # Each option is followed by its help on the same line (or a continuation).
        assert re.fullmatch(r"  -\S.*?  +\S.*|  {4,}\S.*", line), line


def test_account_address_is_the_stored_one_in_any_case(app):
    UserFactory(email="Ann.Smith@example.com")
    assert operations.account_address("ANN.smith@EXAMPLE.com") == "Ann.Smith@example.com"
    with pytest.raises(services.QueueError, match="No account uses that address"):
        operations.account_address("nobody@example.com")
    with pytest.raises(services.QueueError):
        operations.account_address("   ")


@pytest.mark.parametrize("command", ["send", "worker"])
def test_delivery_refuses_a_database_without_the_outbox(tmp_path, command):
    from portal import create_app

    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": empty})
    args = ["emails", command] + (["--once"] if command == "worker" else [])
    result = app.test_cli_runner().invoke(args=args)
    fails_with(result, "The database has no outbox yet: run `python manage.py init`.")
    with app.app_context():
        db.engine.dispose()


def test_worker_survives_losing_the_database(app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from portal.emails import worker as worker_module
    from portal.emails.queue import BatchResult
    from portal.emails.worker import Worker

    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        if len(calls) == 3:
            worker.stop()
        return BatchResult(sent=1)

    monkeypatch.setattr(worker_module, "deliver_batch", flaky)
    worker = Worker(idle_sleep=0.01)
    totals = worker.run()
    assert len(calls) == 3
    assert totals.sent == 2


# -- retry / cancel --all with filters, and --dry-run ----------------------------


def audit_events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())


def aged_row(state: int, *, days: float = 0, **values: object) -> Email:
    return EmailFactory(state=state, created_at=utcnow() - timedelta(days=days), **values)


def updates_of(statements: list[str]) -> int:
    return sum(1 for statement in statements if statement.lstrip().upper().startswith("UPDATE"))


@pytest.mark.parametrize("count", [3, 30])
def test_retry_all_requeues_every_match_in_two_statements_and_one_audit_event(
    runner: FlaskCliRunner, count: int
) -> None:
    failed = [EmailFactory(state=EMAIL.FAILED, attempts=5) for _ in range(count)]
    cancelled = EmailFactory(state=EMAIL.CANCELLED)
    sent = EmailFactory(state=EMAIL.SENT)
    before = len(audit_events())

    with statements() as seen:
        result = runner.invoke(args=["emails", "retry", "--all", "--state", "failed"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output == f"Queued {count} message(s) for delivery now.\n"
    assert {state_of(email) for email in failed} == {EMAIL.QUEUED}
    restarted = {email.id for email in failed}
    assert {r.attempts for r in all_rows() if r.id in restarted} == {0}
    assert (state_of(cancelled), state_of(sent)) == (EMAIL.CANCELLED, EMAIL.SENT)
    assert updates_of(seen) == 2  # restart the failed, hurry the waiting: whatever the count
    [event] = audit_events()[before:]
    assert event.action == "retry"
    assert event.summary == f"Retry: {count} message(s), state failed"


def test_retry_all_narrows_by_age_recipient_and_search(runner: FlaskCliRunner) -> None:
    old_to_ann = aged_row(EMAIL.FAILED, days=3, to_address="ann@example.com")
    new_to_ann = aged_row(EMAIL.FAILED, days=0, to_address="ann@example.com")
    invoice = aged_row(EMAIL.CANCELLED, days=3, to_address="bo@example.com", subject="Invoice 42")
    other = aged_row(EMAIL.FAILED, days=3, to_address="cy@example.com", subject="Hello")

    by_age = runner.invoke(
        args=["emails", "retry", "--all", "--older-than", "2d", "--to", "ANN@example.com"]
    )
    by_text = runner.invoke(args=["emails", "retry", "--all", "--search", "INVOICE"])

    assert by_age.output == "Queued 1 message(s) for delivery now.\n"
    assert by_text.output == "Queued 1 message(s) for delivery now.\n"
    assert state_of(old_to_ann) == EMAIL.QUEUED
    assert state_of(invoice) == EMAIL.QUEUED
    assert state_of(new_to_ann) == EMAIL.FAILED
    assert state_of(other) == EMAIL.FAILED


def test_retry_all_queued_makes_waiting_rows_due(runner: FlaskCliRunner) -> None:
    rows = one_of_each_state()

    result = runner.invoke(args=["emails", "retry", "--all", "--state", "queued"])

    assert result.output == "Queued 1 message(s) for delivery now.\n"
    waiting = row(rows["waiting"].id)
    assert waiting is not None
    assert waiting.next_attempt_at <= utcnow()
    assert waiting.attempts == 2  # hurried, not restarted
    assert states(rows)["failed"] == "failed"


def test_cancel_all_cancels_queued_and_failed_matches_only(
    runner: FlaskCliRunner, mail: list[EmailMessage]
) -> None:
    rows = {
        name: EmailFactory(state=state, to_address="gone@example.com")
        for name, state in [
            ("queued", EMAIL.QUEUED),
            ("failed", EMAIL.FAILED),
            ("sending", EMAIL.SENDING),
            ("sent", EMAIL.SENT),
        ]
    }
    elsewhere = EmailFactory(state=EMAIL.QUEUED, to_address="here@example.com")
    before = len(audit_events())

    with statements() as seen:
        result = runner.invoke(args=["emails", "cancel", "--all", "--to", "Gone@Example.com"])

    assert_no_traceback(result)
    assert result.output == "Cancelled 2 message(s).\n"
    assert states(rows) == {
        "queued": "cancelled",
        "failed": "cancelled",
        "sending": "sending",
        "sent": "sent",
    }
    assert state_of(elsewhere) == EMAIL.QUEUED
    assert updates_of(seen) == 1
    [event] = audit_events()[before:]
    assert (event.action, event.summary) == ("cancel", "Cancel: 2 message(s), to Gone@Example.com")


def test_cancel_all_by_state_and_age(runner: FlaskCliRunner) -> None:
    old_queued = aged_row(EMAIL.QUEUED, days=10)
    old_failed = aged_row(EMAIL.FAILED, days=10)
    young = aged_row(EMAIL.QUEUED, days=0)

    result = runner.invoke(
        args=["emails", "cancel", "--all", "--state", "QUEUED", "--older-than", "1w"]
    )

    assert result.output == "Cancelled 1 message(s).\n"
    assert state_of(old_queued) == EMAIL.CANCELLED
    assert (state_of(old_failed), state_of(young)) == (EMAIL.FAILED, EMAIL.QUEUED)


@pytest.mark.parametrize("command", ["retry", "cancel"])
@pytest.mark.parametrize("extra", [[], ["--search", "   "], ["--dry-run"]])
def test_all_without_a_filter_is_refused_and_changes_nothing(
    runner: FlaskCliRunner, command: str, extra: list[str]
) -> None:
    rows = one_of_each_state()
    before = states(rows)

    result = runner.invoke(args=["emails", command, "--all", *extra])

    fails_with(
        result,
        "--all needs a filter, or it would touch every message: "
        "--state, --older-than, --to or --search.",
    )
    assert states(rows) == before


@pytest.mark.parametrize("command", ["retry", "cancel"])
@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--state", "failed"], "--state, --older-than, --to and --search go with --all."),
        (["--to", "a@example.com", "--id", "1"], "go with --all."),
        (["--all", "--state", "failed", "--id", "1"], "leave out --id and --failed."),
        (["--all", "--state", "sent"], "Invalid value for '--state'"),
        (["--all", "--older-than", "0"], "is not an age such as 90m, 12h, 7d or 2w."),
        (["--all", "--older-than", "3x"], "is not an age such as 90m, 12h, 7d or 2w."),
        (["--all", "--older-than", "-2d"], "is not an age such as 90m, 12h, 7d or 2w."),
        (["--all", "--older-than", "99999999999w"], "is not an age such as"),
    ],
)
def test_filters_used_wrongly_are_a_usage_error(
    runner: FlaskCliRunner, command: str, args: list[str], said: str
) -> None:
    rows = one_of_each_state()
    before = states(rows)

    result = runner.invoke(args=["emails", command, *args])

    assert_no_traceback(result)
    assert result.exit_code == 2
    assert said in result.output
    assert states(rows) == before


def test_retry_failed_with_all_is_a_usage_error(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["emails", "retry", "--failed", "--all", "--state", "failed"])

    assert result.exit_code == 2
    assert "leave out --id and --failed." in result.output


def dry_run_cases(rows: dict[str, Email]) -> list[tuple[list[str], list[str]]]:
    """Each change a dry run can preview, and what it says."""
    ids = ["--id", str(rows["failed"].id), "--id", str(rows["sent"].id)]
    return [
        (
            ["retry", *ids],
            [
                "Would queue 1 message(s) for delivery now; nothing was changed.",
                "Would leave 1 as they were: sending, sent, or already due messages "
                "are not retried.",
            ],
        ),
        (
            ["retry", "--failed"],
            ["Would queue 1 message(s) for delivery now; nothing was changed."],
        ),
        (
            ["retry", "--all", "--state", "failed", "--state", "cancelled"],
            ["Would queue 2 message(s) for delivery now; nothing was changed."],
        ),
        (
            ["cancel", *ids],
            [
                "Would cancel 1 message(s); nothing was changed.",
                "Would leave 1 as they were: only queued or failed messages can be cancelled.",
            ],
        ),
        (
            ["cancel", "--all", "--older-than", "1m", "--search", "message"],
            ["Would cancel 3 message(s); nothing was changed."],
        ),
    ]


@pytest.mark.parametrize("case", range(5))
def test_a_dry_run_counts_what_would_change_and_changes_nothing(
    runner: FlaskCliRunner, mail: list[EmailMessage], case: int
) -> None:
    rows = one_of_each_state()
    for email in rows.values():
        email.created_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    args, said = dry_run_cases(rows)[case]
    before = states(rows)
    events = len(audit_events())

    result = runner.invoke(args=["emails", *args, "--dry-run"])

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output.splitlines() == said
    assert states(rows) == before
    assert len(audit_events()) == events
    assert mail == []
    # The same command for real changes exactly as many as the dry run said.
    real = runner.invoke(args=["emails", *args])
    assert real.output.splitlines()[0].split()[1] == said[0].split()[2]


@pytest.mark.parametrize("command", ["retry", "cancel"])
def test_a_dry_run_refuses_unknown_ids_like_the_real_run(
    runner: FlaskCliRunner, command: str
) -> None:
    result = runner.invoke(args=["emails", command, "--id", "98765", "--dry-run"])

    fails_with(result, "No message has the id 98765.")


def test_selection_rules_in_the_service(app: Flask) -> None:
    failed = EmailFactory(state=EMAIL.FAILED)

    with pytest.raises(QueueError, match="Name the messages"):
        services.retry_matching(services.Selection(search="  "))
    with pytest.raises(QueueError, match="Name the messages"):
        services.cancel_matching(services.Selection())
    with pytest.raises(QueueError, match="more than zero"):
        services.cancel_matching(services.Selection(older_than=timedelta(0)))
    with pytest.raises(QueueError, match="Unknown state"):
        services.retry_matching(services.Selection(states=(99,)))
    assert state_of(failed) == EMAIL.FAILED
    described = services.Selection(
        states=(EMAIL.FAILED,), older_than=timedelta(hours=36), to="A@x.org", search="news"
    ).describe()
    assert described == "state failed, queued more than 1d 12h ago, to A@x.org, matching “news”"


# -- broadcast --at / --expires-at -------------------------------------------------


def moment(**offset: float) -> datetime:
    """A whole-second moment this far from now, in UTC."""
    return (utcnow() + timedelta(**offset)).replace(microsecond=0)


def broadcast_args(tmp_path: Path, *extra: str) -> list[str]:
    body = write_body(tmp_path, BODY)
    return ["emails", "broadcast", "--subject", "Hi", "--body-file", body, *extra]


def test_broadcast_at_holds_the_messages_until_then_and_sets_their_expiry(
    runner: FlaskCliRunner, audience: dict[str, User], tmp_path: Path, mail: list[EmailMessage]
) -> None:
    start, end = moment(days=2), moment(days=3)

    result = runner.invoke(
        args=broadcast_args(
            tmp_path, "--role", "user", "--at", start.isoformat(), "--expires-at", end.isoformat()
        )
    )

    assert_no_traceback(result)
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == (
        f"Queued 2 message(s), to be sent from {start:%Y-%m-%d %H:%M} UTC, "
        f"expiring at {end:%Y-%m-%d %H:%M} UTC."
    )
    rows = all_rows()
    assert {(r.scheduled_at, r.next_attempt_at, r.expires_at) for r in rows} == {
        (start, start, end)
    }
    assert runner.invoke(args=["emails", "send"]).output == "Sent 0, retrying 0, failed 0.\n"
    assert mail == []
    event = audit_events()[-1]
    assert event.action == "broadcast"
    assert event.changes["scheduled_at"] == [None, start.isoformat()]
    assert event.changes["expires_at"] == [None, end.isoformat()]


@pytest.mark.parametrize(
    ("written", "offset"),
    [
        ("+02:00", timedelta(hours=2)),  # a zone given is honoured
        ("Z", timedelta(0)),
        ("", timedelta(0)),  # no zone: UTC
    ],
)
def test_broadcast_scheduled_at_reads_iso_8601_with_or_without_a_zone(
    runner: FlaskCliRunner,
    audience: dict[str, User],
    tmp_path: Path,
    written: str,
    offset: timedelta,
) -> None:
    local = moment(days=1)
    typed = f"{local:%Y-%m-%dT%H:%M:%S}{written}"

    result = runner.invoke(
        args=broadcast_args(tmp_path, "--role", "admin", "--scheduled-at", typed)
    )

    assert result.exit_code == 0, result.output
    [email] = all_rows()
    assert email.scheduled_at == local - offset
    assert email.expires_at is None


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"--at": -0.01}, "The time to send must be in the future."),
        ({"--expires-at": -1}, "The expiry must be in the future."),
        ({"--at": 48, "--expires-at": 24}, "The expiry must come after the time to send."),
    ],
)
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["real", "dry-run"])
def test_broadcast_refuses_a_schedule_in_the_past_or_out_of_order(
    runner: FlaskCliRunner,
    audience: dict[str, User],
    tmp_path: Path,
    hours: dict[str, float],
    message: str,
    dry_run: list[str],
) -> None:
    extra = [
        part for name, ahead in hours.items() for part in (name, moment(hours=ahead).isoformat())
    ]
    events = len(audit_events())

    result = runner.invoke(args=broadcast_args(tmp_path, *extra, *dry_run))

    fails_with(result, message)
    assert all_rows() == []
    assert len(audit_events()) == events


@pytest.mark.parametrize("option", ["--at", "--scheduled-at", "--expires-at"])
@pytest.mark.parametrize("value", ["tomorrow", "2030-13-01T00:00", "31/01/2030 09:00"])
def test_broadcast_refuses_a_malformed_time_as_a_usage_error(
    runner: FlaskCliRunner, audience: dict[str, User], tmp_path: Path, option: str, value: str
) -> None:
    result = runner.invoke(args=broadcast_args(tmp_path, option, value))

    assert_no_traceback(result)
    assert result.exit_code == 2
    assert f"{value!r} is not an ISO-8601 date and time" in result.output
    assert all_rows() == []


def test_broadcast_dry_run_says_when_it_would_go_out(
    runner: FlaskCliRunner, audience: dict[str, User], tmp_path: Path
) -> None:
    start = moment(days=1)
    events = len(audit_events())

    result = runner.invoke(
        args=broadcast_args(tmp_path, "--role", "admin", "--at", start.isoformat(), "--dry-run")
    )

    assert result.exit_code == 0
    assert result.output == (
        "Would queue 1 message(s), one per matching account, "
        f"to be sent from {start:%Y-%m-%d %H:%M} UTC; none queued.\n"
    )
    assert all_rows() == []
    assert len(audit_events()) == events


def test_compose_keeps_a_schedule_and_refuses_a_bad_one(app: Flask) -> None:
    start, end = moment(hours=5), moment(hours=6)

    email = services.compose("ann@example.com", "Hi", "Body", scheduled_at=start, expires_at=end)

    assert (email.scheduled_at, email.next_attempt_at, email.expires_at) == (start, start, end)
    with pytest.raises(QueueError, match="after the time to send"):
        services.compose("ann@example.com", "Hi", "Body", scheduled_at=end, expires_at=start)
    with pytest.raises(QueueError, match="cannot use priority 'now'"):
        services.compose("ann@example.com", "Hi", "Body", scheduled_at=start, priority=EMAIL.NOW)
    assert len(all_rows()) == 1


def test_schedule_problems_name_their_field() -> None:
    now = moment()
    naive_past = (now - timedelta(hours=1)).replace(tzinfo=None)

    assert services.schedule_problems(None, None, now=now) == {}
    assert services.schedule_problems(naive_past, None, now=now) == {
        "scheduled_at": "The time to send must be in the future."
    }
    assert services.schedule_problems(
        now + timedelta(hours=2), now + timedelta(hours=1), now=now
    ) == {"expires_at": "The expiry must come after the time to send."}
