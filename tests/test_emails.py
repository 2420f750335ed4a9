"""The email outbox: queueing, claiming and delivery over real SMTP on loopback."""

from __future__ import annotations

import io
import re
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy import select

from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.addresses import InvalidHeader
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.queue import BatchResult
from portal.emails.queue import backoff
from portal.emails.queue import build_message
from portal.emails.queue import claim
from portal.emails.queue import deliver_batch
from portal.emails.queue import enqueue
from portal.emails.queue import release
from portal.emails.transports import ConsoleTransport
from portal.emails.worker import Worker
from portal.extensions import db
from tests.factories import EmailFactory
from tests.smtp_server import SMTPServer
from tests.smtp_server import free_port
from tests.smtp_server import smtp_server

CONFIRM_CONTEXT = {"user": SimpleNamespace(name="Ada"), "link": "https://x/y"}


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    """A real SMTP server on 127.0.0.1 that records what it accepts."""
    with smtp_server() as server:
        yield server


def smtp_settings(host: str, port: int, **extra: Any) -> dict[str, Any]:
    """Configuration that delivers over SMTP to ``host:port``, failing fast."""
    return {
        "MAIL_TRANSPORT": "smtp",
        "MAIL_SERVER": host,
        "MAIL_PORT": port,
        "MAIL_TIMEOUT": 5,
        **extra,
    }


@pytest.fixture
def smtp_app(app: Flask, smtp: SMTPServer) -> Flask:
    """The app delivering through ``smtp``, with an application context pushed."""
    app.config.update(smtp_settings(smtp.host, smtp.port))
    return app


def attempts_of(email: Email) -> list[tuple[str, int | None]]:
    rows = db.session.execute(
        select(Attempt).where(Attempt.email_id == email.id).order_by(Attempt.id)
    ).scalars()
    return [(attempt.outcome, attempt.smtp_code) for attempt in rows]


def email_count() -> int:
    return int(db.session.execute(select(func.count(Email.id))).scalar_one())


# Delivery over SMTP: what arrives


def test_queued_message_arrives_with_its_envelope_headers_and_bodies(
    smtp_app: Flask, smtp: SMTPServer
) -> None:
    email = enqueue(
        "ada@example.com",
        "Café: confirm ✓",
        "confirm",
        CONFIRM_CONTEXT,
        reply_to="Help Desk <help@example.com>",
    )
    db.session.commit()

    result = deliver_batch()

    assert (result.sent, result.retried, result.failed) == (1, 0, 0)
    [received] = smtp.handler.received
    assert received.mail_from == "no-reply@example.com"
    assert received.rcpt_tos == ["ada@example.com"]
    message = received.message
    assert str(message["From"]) == "Portal <no-reply@example.com>"
    assert str(message["To"]) == "ada@example.com"
    assert str(message["Subject"]) == "Café: confirm ✓"
    assert str(message["Reply-To"]) == "Help Desk <help@example.com>"
    assert message["Message-ID"] == email.message_id
    sent_date = message["Date"].datetime
    assert abs(sent_date - email.created_at) < timedelta(seconds=1)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "Hello Ada," in text.get_content()
    assert "https://x/y" in text.get_content()
    assert '<a href="https://x/y">' in html.get_content()

    assert email.state == EMAIL.SENT
    assert email.sent_at is not None
    assert email.attempts == 1
    assert email.locked_by is None and email.locked_until is None
    assert attempts_of(email) == [(EMAIL.OUTCOME_SENT, None)]


def test_text_only_row_arrives_as_plain_text_without_reply_to(
    smtp_app: Flask, smtp: SMTPServer
) -> None:
    EmailFactory(to_address="bob@example.com", text_body="Just text.", html_body=None)

    deliver_batch()

    message = smtp.handler.received[0].message
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Just text."
    assert message["Reply-To"] is None


def test_one_connection_serves_a_whole_batch(smtp_app: Flask, smtp: SMTPServer) -> None:
    emails = EmailFactory.create_batch(5)

    result = deliver_batch(batch_size=10)

    assert result.sent == 5
    assert smtp.handler.connections == 1
    assert sorted(smtp.handler.recipients) == sorted(email.to_address for email in emails)
    assert {email.state for email in emails} == {EMAIL.SENT}


def test_smtp_login_uses_the_configured_credentials(app: Flask, smtp: SMTPServer) -> None:
    smtp.handler.credentials["portal"] = "s3cret"
    app.config.update(
        smtp_settings(smtp.host, smtp.port, MAIL_USERNAME="portal", MAIL_PASSWORD="s3cret")
    )
    with app.app_context():
        EmailFactory.create_batch(2)

        result = deliver_batch()

    assert result.sent == 2
    assert smtp.handler.logins == ["portal"]
    assert len(smtp.handler.received) == 2


# Delivery over SMTP: failures


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("RCPT", "421 4.3.2 Service shutting down"),
        ("RCPT", "451 4.7.1 Greylisted, try later"),
        ("DATA", "421 4.3.2 Service shutting down"),
        ("DATA", "451 4.3.0 Temporary failure"),
    ],
)
def test_transient_reply_requeues_the_row_with_backoff(
    smtp_app: Flask, smtp: SMTPServer, stage: str, reply: str
) -> None:
    smtp.handler.refuse("soft@example.com", reply, at=stage)
    soft = EmailFactory(to_address="soft@example.com")
    after = EmailFactory(to_address="after@example.com")
    code = int(reply[:3])

    result = deliver_batch()

    assert (result.sent, result.retried, result.failed) == (1, 1, 0)
    assert soft.state == EMAIL.QUEUED
    assert soft.attempts == 1
    assert soft.next_attempt_at > utcnow() + timedelta(seconds=30)
    assert soft.last_error is not None and soft.last_error.startswith(str(code))
    assert soft.locked_by is None and soft.locked_until is None
    assert attempts_of(soft) == [(EMAIL.OUTCOME_RETRY, code)]
    # The rest of the batch still goes out; after a 421 the server has closed
    # the session, so the next message needs a fresh connection.
    assert after.state == EMAIL.SENT
    assert smtp.handler.recipients == ["after@example.com"]
    assert smtp.handler.connections == (2 if code == 421 else 1)
    # Not claimable again before its backoff has passed.
    assert deliver_batch().total == 0


def test_closed_port_is_a_transient_error(app: Flask) -> None:
    app.config.update(smtp_settings("127.0.0.1", free_port()))
    with app.app_context():
        emails = EmailFactory.create_batch(2)

        result = deliver_batch()

        assert (result.sent, result.retried, result.failed) == (0, 2, 0)
        for email in emails:
            assert email.state == EMAIL.QUEUED
            assert email.attempts == 1
            assert email.next_attempt_at > utcnow()
            assert email.last_error is not None and "connection" in email.last_error
            assert attempts_of(email) == [(EMAIL.OUTCOME_RETRY, None)]


def test_refused_login_is_transient_not_a_verdict_on_the_messages(
    app: Flask, smtp: SMTPServer
) -> None:
    smtp.handler.credentials["portal"] = "s3cret"
    app.config.update(
        smtp_settings(smtp.host, smtp.port, MAIL_USERNAME="portal", MAIL_PASSWORD="wrong")
    )
    with app.app_context():
        emails = EmailFactory.create_batch(2)

        result = deliver_batch()

        assert (result.sent, result.retried, result.failed) == (0, 2, 0)
        for email in emails:
            assert email.state == EMAIL.QUEUED
            assert email.last_error is not None and "535" in email.last_error
            assert attempts_of(email) == [(EMAIL.OUTCOME_RETRY, None)]
    assert smtp.handler.received == []


def test_transient_error_on_the_last_attempt_fails_the_row(
    smtp_app: Flask, smtp: SMTPServer
) -> None:
    smtp.handler.refuse("soft@example.com", "451 4.7.1 Try again later")
    email = EmailFactory(to_address="soft@example.com", attempts=2, max_attempts=3)

    result = deliver_batch()

    assert (result.retried, result.failed) == (0, 1)
    assert email.state == EMAIL.FAILED
    assert email.attempts == 3
    assert email.last_error == "451 4.7.1 Try again later"
    assert attempts_of(email) == [(EMAIL.OUTCOME_FAILED, 451)]
    assert deliver_batch().total == 0


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("RCPT", "550 5.1.1 No such user"),
        ("DATA", "554 5.7.1 Message rejected"),
    ],
)
def test_permanent_refusal_fails_that_row_at_once_and_only_that_row(
    smtp_app: Flask, smtp: SMTPServer, stage: str, reply: str
) -> None:
    smtp.handler.refuse("bad@example.com", reply, at=stage)
    first = EmailFactory(to_address="first@example.com")
    bad = EmailFactory(to_address="bad@example.com")
    last = EmailFactory(to_address="last@example.com")

    result = deliver_batch()

    assert (result.sent, result.retried, result.failed) == (2, 0, 1)
    assert bad.state == EMAIL.FAILED
    assert bad.attempts == 1 < bad.max_attempts
    assert bad.last_error == reply
    assert attempts_of(bad) == [(EMAIL.OUTCOME_FAILED, int(reply[:3]))]
    assert result.errors == [f"#{bad.id} to bad@example.com: {reply}"]
    assert (first.state, last.state) == (EMAIL.SENT, EMAIL.SENT)
    assert smtp.handler.recipients == ["first@example.com", "last@example.com"]
    assert smtp.handler.connections == 1


def test_retry_resends_the_same_message_id(smtp_app: Flask, smtp: SMTPServer) -> None:
    smtp.handler.refuse("soft@example.com", "451 4.7.1 Greylisted")
    email = enqueue("soft@example.com", "Hello", "confirm", CONFIRM_CONTEXT)
    db.session.commit()
    deliver_batch()
    assert email.state == EMAIL.QUEUED

    smtp.handler.replies.clear()
    email.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    deliver_batch()

    assert email.state == EMAIL.SENT
    assert email.attempts == 2
    assert attempts_of(email) == [(EMAIL.OUTCOME_RETRY, 451), (EMAIL.OUTCOME_SENT, None)]
    [received] = smtp.handler.received
    assert received.message["Message-ID"] == email.message_id


# Claiming: what is due, in which order, by whom


def test_expired_row_fails_without_being_sent(smtp_app: Flask, smtp: SMTPServer) -> None:
    expired = EmailFactory(
        to_address="late@example.com", expires_at=utcnow() - timedelta(minutes=1)
    )
    fresh = EmailFactory(to_address="fresh@example.com", expires_at=utcnow() + timedelta(hours=1))

    result = deliver_batch()

    assert (result.sent, result.failed) == (1, 1)
    assert expired.state == EMAIL.FAILED
    assert expired.last_error is not None and "expired" in expired.last_error
    assert attempts_of(expired) == [(EMAIL.OUTCOME_FAILED, None)]
    assert fresh.state == EMAIL.SENT
    assert smtp.handler.recipients == ["fresh@example.com"]


def test_scheduled_row_is_not_sent_before_it_is_due(smtp_app: Flask, smtp: SMTPServer) -> None:
    later = enqueue(
        "later@example.com",
        "Later",
        "confirm",
        CONFIRM_CONTEXT,
        scheduled_at=utcnow() + timedelta(hours=1),
    )
    db.session.commit()

    result = deliver_batch()

    assert result.total == 0
    assert smtp.handler.connections == 0
    assert later.state == EMAIL.QUEUED
    assert later.attempts == 0

    EmailFactory(to_address="now@example.com")
    deliver_batch()
    assert smtp.handler.recipients == ["now@example.com"]
    assert later.state == EMAIL.QUEUED


def test_batch_sends_higher_priorities_first(smtp_app: Flask, smtp: SMTPServer) -> None:
    for name, priority in [
        ("low", EMAIL.LOW),
        ("normal", EMAIL.NORMAL),
        ("high", EMAIL.HIGH),
        ("now", EMAIL.NOW),
    ]:
        EmailFactory(to_address=f"{name}@example.com", priority=priority)

    deliver_batch()

    assert smtp.handler.recipients == [
        "now@example.com",
        "high@example.com",
        "normal@example.com",
        "low@example.com",
    ]


def test_small_batch_claims_the_highest_priority(smtp_app: Flask, smtp: SMTPServer) -> None:
    low = EmailFactory(to_address="low@example.com", priority=EMAIL.LOW)
    high = EmailFactory(to_address="high@example.com", priority=EMAIL.HIGH)

    deliver_batch(batch_size=1)

    assert smtp.handler.recipients == ["high@example.com"]
    assert (high.state, low.state) == (EMAIL.SENT, EMAIL.QUEUED)


def test_claim_leases_at_most_limit_rows_to_one_worker(app: Flask) -> None:
    emails = EmailFactory.create_batch(3)

    first = claim("worker-a", 2)
    second = claim("worker-b", 10)
    third = claim("worker-c", 10)

    assert [email.id for email in first] == [emails[0].id, emails[1].id]
    assert [email.id for email in second] == [emails[2].id]
    assert third == []
    lease = timedelta(seconds=app.config["EMAIL_LEASE_SECONDS"])
    for email, worker in zip(emails, ["worker-a", "worker-a", "worker-b"], strict=True):
        assert email.state == EMAIL.SENDING
        assert email.locked_by == worker
        assert email.locked_until is not None
        assert email.locked_until > utcnow() + lease - timedelta(seconds=30)
        assert email.attempts == 1


@pytest.mark.commits
def test_concurrent_claims_never_share_a_row(app: Flask) -> None:
    EmailFactory.create_batch(12)
    start = threading.Barrier(3)

    def take(worker_id: str) -> list[int]:
        with app.app_context():
            start.wait()
            return [email.id for email in claim(worker_id, 4)]

    with ThreadPoolExecutor(max_workers=3) as pool:
        claims = list(pool.map(take, ["worker-a", "worker-b", "worker-c"]))

    taken = [email_id for ids in claims for email_id in ids]
    assert len(taken) == len(set(taken))
    assert all(len(ids) <= 4 for ids in claims)
    owners = dict(db.session.execute(select(Email.id, Email.locked_by)).all())
    for worker_id, ids in zip(["worker-a", "worker-b", "worker-c"], claims, strict=True):
        assert {owners[email_id] for email_id in ids} <= {worker_id}


def test_row_whose_lease_expired_is_claimed_again(smtp_app: Flask, smtp: SMTPServer) -> None:
    abandoned = EmailFactory(
        to_address="abandoned@example.com",
        state=EMAIL.SENDING,
        locked_by="dead-worker",
        locked_until=utcnow() - timedelta(seconds=1),
        attempts=1,
    )
    held = EmailFactory(
        to_address="held@example.com",
        state=EMAIL.SENDING,
        locked_by="live-worker",
        locked_until=utcnow() + timedelta(minutes=5),
        attempts=1,
    )

    result = deliver_batch(worker_id="new-worker")

    assert result.sent == 1
    assert smtp.handler.recipients == ["abandoned@example.com"]
    assert abandoned.state == EMAIL.SENT
    assert abandoned.attempts == 2
    assert abandoned.locked_by is None
    assert db.session.execute(select(Attempt.worker)).scalars().all() == ["new-worker"]
    assert (held.state, held.locked_by) == (EMAIL.SENDING, "live-worker")


def test_release_hands_unsent_rows_back(smtp_app: Flask, smtp: SMTPServer) -> None:
    emails = EmailFactory.create_batch(2)
    claimed = claim("worker-a", 10)

    assert release(claimed, "worker-b") == 0
    assert {email.state for email in emails} == {EMAIL.SENDING}

    assert release(claimed, "worker-a") == 2
    for email in emails:
        assert email.state == EMAIL.QUEUED
        assert email.attempts == 0
        assert email.locked_by is None and email.locked_until is None

    result = deliver_batch(worker_id="worker-b")
    assert result.sent == 2
    assert [email.attempts for email in emails] == [1, 1]


# Queueing: validation and rendering


LONG_DOMAIN = f"{'b' * 63}.{'c' * 63}.{'d' * 58}.com"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"subject": "Hello\nthere"},
        {"sender": "Portal\r\nBcc: victim@example.com <no-reply@example.com>"},
        {"sender": "Portal\n <no-reply@example.com>"},
        {"reply_to": "help@example.com\r\nBcc: victim@example.com"},
        {"to": "ada@example.com\r\nBcc: victim@example.com"},
        {"to": "ada@example.com\n"},
        {"to": "ada@example.com, bob@example.com"},
        {"to": "ada@example.com;bob@example.com"},
        {"to": "ada@example.com bob@example.com"},
        {"to": "Ada <ada@example.com>"},
        {"to": f"{'a' * 64}@{LONG_DOMAIN}"},
        {"to": ""},
    ],
    ids=lambda kwargs: repr(kwargs)[:40],
)
def test_enqueue_refuses_unsafe_headers_and_adds_nothing(
    app: Flask, kwargs: dict[str, str]
) -> None:
    arguments = {"to": "ada@example.com", "subject": "Hello", **kwargs}

    with pytest.raises(InvalidHeader):
        enqueue(template="confirm", context=CONFIRM_CONTEXT, **arguments)

    assert not db.session.new
    db.session.commit()
    assert email_count() == 0


def test_enqueue_accepts_an_address_of_254_characters(app: Flask) -> None:
    address = f"{'a' * 64}@{LONG_DOMAIN[1:]}"
    assert len(address) == 254

    email = enqueue(address, "Hello", "confirm", CONFIRM_CONTEXT)
    db.session.commit()

    assert email.to_address == address


def test_enqueue_refuses_an_unknown_priority(app: Flask) -> None:
    with pytest.raises(ValueError, match="priority"):
        enqueue("ada@example.com", "Hello", "confirm", CONFIRM_CONTEXT, priority=9)

    assert not db.session.new


def test_enqueue_renders_text_and_html_bodies_from_templates(app: Flask) -> None:
    context = {"user": SimpleNamespace(name="Ada <Lovelace>"), "link": "https://x/y"}

    email = enqueue("ada@example.com", "Confirm", "confirm", context)
    db.session.commit()

    assert email.text_body.startswith("Hello Ada <Lovelace>,")
    assert "\nhttps://x/y\n" in email.text_body
    assert app.config["PORTAL_NAME"] in email.text_body
    assert email.html_body is not None
    assert "Hello Ada &lt;Lovelace&gt;," in email.html_body
    assert '<a href="https://x/y">' in email.html_body
    assert app.config["PORTAL_BASE_URL"] in email.html_body
    assert (email.state, email.priority, email.attempts) == (EMAIL.QUEUED, EMAIL.NORMAL, 0)
    assert email.max_attempts == app.config["EMAIL_MAX_ATTEMPTS"]


def test_enqueue_without_an_html_template_queues_text_only(app: Flask) -> None:
    email = enqueue(
        "ada@example.com",
        "Changed",
        "change_email_notice",
        {"user": SimpleNamespace(name="Ada"), "new_email": "new@example.com"},
    )

    assert email.html_body is None
    assert "Ada" in email.text_body


def test_enqueue_sets_a_unique_message_id_in_the_sender_domain(app: Flask) -> None:
    first = enqueue("ada@example.com", "One", "confirm", CONFIRM_CONTEXT)
    second = enqueue(
        "ada@example.com", "Two", "confirm", CONFIRM_CONTEXT, sender="a@mail.example.org"
    )
    db.session.commit()
    ids = {first.id: first.message_id, second.id: second.message_id}
    db.session.expunge_all()

    assert re.fullmatch(r"<[0-9a-f]{32}@example\.com>", ids[first.id])
    assert re.fullmatch(r"<[0-9a-f]{32}@mail\.example\.org>", ids[second.id])
    stored = db.session.execute(select(Email.id, Email.message_id)).all()
    assert dict(stored) == ids
    assert build_message(db.session.get(Email, first.id))["Message-ID"] == ids[first.id]


def test_enqueue_joins_the_callers_transaction(app: Flask) -> None:
    enqueue("ada@example.com", "Hello", "confirm", CONFIRM_CONTEXT)

    db.session.rollback()

    assert email_count() == 0


# The console transport


def test_console_transport_prints_each_message(app: Flask, capsys: Any) -> None:
    app.config["MAIL_TRANSPORT"] = "console"
    with app.app_context():
        email = enqueue("ada@example.com", "Welcome", "confirm", CONFIRM_CONTEXT)
        db.session.commit()

        result = deliver_batch()

        assert result.sent == 1
        assert email.state == EMAIL.SENT
    out = capsys.readouterr().out
    assert f"Message-ID: {email.message_id}" in out
    assert "From: Portal <no-reply@example.com>" in out
    assert "To: ada@example.com" in out
    assert "Subject: Welcome" in out
    assert "https://x/y" in out


def test_console_transport_writes_the_text_part_to_its_stream(app: Flask, capsys: Any) -> None:
    email = enqueue(
        "ada@example.com",
        "Welcome",
        "confirm",
        CONFIRM_CONTEXT,
        reply_to="help@example.com",
    )
    stream = io.StringIO()

    with ConsoleTransport(stream=stream).connect() as connection:
        connection.send(build_message(email))

    printed = stream.getvalue()
    assert "Reply-To: help@example.com" in printed
    assert "Hello Ada," in printed
    assert "<a href" not in printed
    assert capsys.readouterr().out == ""


# The worker


def test_worker_run_once_delivers_a_batch_and_reports_it(smtp_app: Flask, smtp: SMTPServer) -> None:
    emails = EmailFactory.create_batch(3)
    reports: list[BatchResult] = []
    worker = Worker(batch_size=10, worker_id="worker-1", report=reports.append)

    totals = worker.run(once=True)

    assert totals.sent == 3
    assert [report.sent for report in reports] == [3]
    assert {email.state for email in emails} == {EMAIL.SENT}
    assert len(smtp.handler.received) == 3


def test_worker_stopped_from_report_ends_after_that_batch(
    smtp_app: Flask, smtp: SMTPServer
) -> None:
    emails = EmailFactory.create_batch(3)
    worker = Worker(batch_size=2, idle_sleep=0, report=lambda result: worker.stop())

    totals = worker.run()

    assert totals.sent == 2
    assert [email.state for email in emails] == [EMAIL.SENT, EMAIL.SENT, EMAIL.QUEUED]
    assert emails[2].attempts == 0


def test_worker_stopped_mid_batch_releases_the_rest(smtp_app: Flask, smtp: SMTPServer) -> None:
    emails = EmailFactory.create_batch(3)
    reports: list[BatchResult] = []
    worker = Worker(batch_size=10, idle_sleep=0, worker_id="worker-1", report=reports.append)
    # A stop (as from SIGTERM) arriving while the first message is on the wire.
    smtp.handler.on_message = lambda received: worker.stop()

    totals = worker.run()

    assert (totals.sent, totals.released) == (1, 2)
    assert [(report.sent, report.released) for report in reports] == [(1, 2)]
    assert len(smtp.handler.received) == 1
    assert emails[0].state == EMAIL.SENT
    for email in emails[1:]:
        assert email.state == EMAIL.QUEUED
        assert email.attempts == 0
        assert email.locked_by is None and email.locked_until is None


def test_should_stop_releases_the_rest_for_the_next_batch(
    smtp_app: Flask, smtp: SMTPServer
) -> None:
    emails = EmailFactory.create_batch(3)

    first = deliver_batch(should_stop=lambda: len(smtp.handler.received) >= 1)
    second = deliver_batch()

    assert (first.sent, first.released) == (1, 2)
    assert (second.sent, second.released) == (2, 0)
    assert {email.state for email in emails} == {EMAIL.SENT}
    assert [email.attempts for email in emails] == [1, 1, 1]
    assert len(smtp.handler.received) == 3


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_worker_loop(smtp_app: Flask, smtp: SMTPServer, signum: int) -> None:
    EmailFactory.create_batch(3)
    worker = Worker(batch_size=1, idle_sleep=0, report=lambda result: signal.raise_signal(signum))
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.install_signal_handlers()
        totals = worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    assert worker.stopping
    assert totals.sent == 1
    assert len(smtp.handler.received) == 1


def test_backoff_grows_with_attempts_and_is_capped() -> None:
    for attempts, base in [(1, 60), (2, 120), (3, 240), (50, 6 * 3600)]:
        delay = backoff(attempts).total_seconds()
        assert base * 0.8 <= delay <= base * 1.2
