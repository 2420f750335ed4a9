"""The suppression list: bounces, skipping at queue and send time, the staff screen, the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from portal import operations
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.emails import constants as EMAIL
from portal.emails import suppressions
from portal.emails.models import Attempt
from portal.emails.models import Email
from portal.emails.models import Suppression
from portal.emails.queue import deliver_batch
from portal.extensions import db
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.smtp_server import SMTPServer
from tests.smtp_server import smtp_server

SCREEN = "/admin/suppression/"


@pytest.fixture
def smtp(app: Flask) -> Iterator[SMTPServer]:
    with smtp_server() as server:
        app.config.update(
            MAIL_TRANSPORT="smtp", MAIL_SERVER=server.host, MAIL_PORT=server.port, MAIL_TIMEOUT=5
        )
        yield server


def rows() -> list[Suppression]:
    db.session.expire_all()
    return list(db.session.execute(select(Suppression).order_by(Suppression.id)).scalars())


def emails_to(address: str) -> list[Email]:
    db.session.expire_all()
    return list(db.session.execute(select(Email).where(Email.to_address == address)).scalars())


# -- bounces --------------------------------------------------------------------------


def test_a_permanent_refusal_puts_the_address_on_the_list(app, smtp):
    factories.UserFactory(email="gone@example.com")
    smtp.handler.refuse("gone@example.com", "550 5.1.1 No such user")
    operations.broadcast("News", "Hello.")
    result = deliver_batch()
    assert result.failed == 1
    [row] = rows()
    assert (row.address, row.reason, row.category, row.source) == (
        "gone@example.com",
        EMAIL.REASON_BOUNCE,
        None,
        EMAIL.SOURCE_SMTP,
    )
    assert "550" in (row.note or "")


def test_a_transient_refusal_suppresses_nothing(app, smtp):
    factories.UserFactory(email="busy@example.com")
    smtp.handler.refuse("busy@example.com", "451 4.3.0 Try again later")
    operations.broadcast("News", "Hello.")
    assert deliver_batch().retried == 1
    assert rows() == []


def test_a_bounce_outranks_an_unsubscribe_which_the_person_then_cannot_undo(app):
    suppressions.unsubscribe("x@example.com", EMAIL.BROADCAST, source=EMAIL.SOURCE_LINK)
    suppressions.suppress("X@example.com", reason=EMAIL.REASON_BOUNCE, source=EMAIL.SOURCE_SMTP)
    db.session.commit()
    [row] = rows()
    assert (row.reason, row.category) == (EMAIL.REASON_BOUNCE, None)
    with pytest.raises(suppressions.SuppressionError):
        suppressions.set_preferences(
            "x@example.com", EMAIL.OPTIONAL_CATEGORIES, source=EMAIL.SOURCE_PREFERENCES
        )
    assert rows()[0].reason == EMAIL.REASON_BOUNCE


# -- skipping ----------------------------------------------------------------------------


def test_a_broadcast_skips_suppressed_addresses_when_queued(app, smtp):
    factories.UserFactory(email="keen@example.com")
    factories.UserFactory(email="done@example.com")
    suppressions.unsubscribe("DONE@example.com", EMAIL.BROADCAST, source=EMAIL.SOURCE_LINK)
    assert operations.count_suppressed_recipients() == 1
    assert operations.broadcast("News", "Hello.") == 1
    assert emails_to("done@example.com") == []
    deliver_batch()
    assert smtp.handler.recipients == ["keen@example.com"]


def test_a_row_queued_before_the_suppression_is_cancelled_at_send_time(app, smtp):
    factories.UserFactory(email="late@example.com")
    operations.broadcast("News", "Hello.")
    suppressions.unsubscribe("late@example.com", EMAIL.BROADCAST, source=EMAIL.SOURCE_ONE_CLICK)
    result = deliver_batch()
    assert (result.sent, result.skipped) == (0, 1)
    assert smtp.handler.received == []
    [email] = emails_to("late@example.com")
    assert email.state == EMAIL.CANCELLED
    assert "suppression list" in (email.last_error or "")
    [attempt] = db.session.execute(select(Attempt)).scalars().all()
    assert attempt.outcome == EMAIL.OUTCOME_SKIPPED


def test_account_mail_to_a_suppressed_address_is_sent(app, smtp):
    factories.EmailFactory(to_address="late@example.com", category=EMAIL.ACCOUNT)
    suppressions.suppress("late@example.com", reason=EMAIL.REASON_MANUAL, source=EMAIL.SOURCE_CLI)
    db.session.commit()
    assert deliver_batch().sent == 1
    assert smtp.handler.recipients == ["late@example.com"]


# -- the staff screen ---------------------------------------------------------------------


@pytest.fixture
def listed(app) -> Suppression:
    suppressions.suppress(
        "gone@example.com", reason=EMAIL.REASON_BOUNCE, source=EMAIL.SOURCE_SMTP, note="550"
    )
    db.session.commit()
    return rows()[0]


@pytest.mark.parametrize("factory", [factories.StaffFactory, factories.AdminFactory])
def test_staff_and_admins_list_and_search_suppressions(app, client, listed, factory):
    factory(email="boss@example.com")
    AuthActions(client).login("boss@example.com")
    page = client.get(f"{SCREEN}?search=gone")
    assert page.status_code == 200
    assert "gone@example.com" in page.get_data(as_text=True)
    assert "gone@example.com" not in client.get(f"{SCREEN}?search=else").get_data(as_text=True)


def test_a_user_gets_403_and_a_visitor_the_login_page(app, client, listed):
    assert client.get(SCREEN).status_code == 302
    factories.UserFactory(email="user@example.com")
    AuthActions(client).login("user@example.com")
    assert client.get(SCREEN).status_code == 403


def test_staff_cannot_remove_one_even_with_a_crafted_post(app, client, listed):
    factories.StaffFactory(email="staff@example.com")
    AuthActions(client).login("staff@example.com")
    response = Browser(client).submit(f"{SCREEN}delete/", {"id": str(listed.id)}, token_from=SCREEN)
    assert response.status_code == 403
    assert len(rows()) == 1


def test_an_admin_removes_one_and_it_is_audited(app, client, listed):
    factories.AdminFactory(email="admin@example.com")
    AuthActions(client).login("admin@example.com")
    response = Browser(client).submit(f"{SCREEN}delete/", {"id": str(listed.id)}, token_from=SCREEN)
    assert response.status_code == 302
    assert rows() == []
    [event] = (
        db.session.execute(select(AuditEvent).where(AuditEvent.action == AUDIT.ACTION_DELETE))
        .scalars()
        .all()
    )
    assert "gone@example.com" in event.summary
    assert event.source == AUDIT.SOURCE_ADMIN


# -- the command line -------------------------------------------------------------------


def test_suppress_and_unsuppress_from_the_command_line(app, runner):
    done = runner.invoke(
        args=["emails", "suppress", "Someone@Example.com", "--reason", "asked by phone"]
    )
    assert done.exit_code == 0, done.output
    assert "Suppressed Someone@example.com" in done.output
    [row] = rows()
    assert (row.reason, row.source, row.note) == (
        EMAIL.REASON_MANUAL,
        EMAIL.SOURCE_CLI,
        "asked by phone",
    )
    again = runner.invoke(args=["emails", "suppress", "someone@example.com", "--reason", "x"])
    assert again.exit_code == 0
    assert "already suppressed" in again.output
    gone = runner.invoke(args=["emails", "unsuppress", "SOMEONE@example.com"])
    assert gone.exit_code == 0, gone.output
    assert rows() == []
    actions = db.session.execute(
        select(AuditEvent.action, AuditEvent.source).order_by(AuditEvent.id)
    ).all()
    assert actions == [
        (AUDIT.ACTION_CREATE, AUDIT.SOURCE_CLI),
        (AUDIT.ACTION_DELETE, AUDIT.SOURCE_CLI),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["emails", "suppress", "not an address", "--reason", "x"], "not valid"),
        (["emails", "suppress", "a@example.com", "--reason", "  "], "must not be empty"),
        (["emails", "unsuppress", "nobody@example.com"], "not on the suppression list"),
    ],
)
def test_bad_input_is_a_clear_message_and_exit_1(app, runner, args, message):
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert message in result.output
    assert rows() == []


def test_a_dry_run_changes_nothing(app, runner):
    result = runner.invoke(
        args=["emails", "suppress", "a@example.com", "--reason", "x", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "Would suppress" in result.output
    assert rows() == []


def test_the_compose_preview_says_how_many_will_be_skipped(app, client):
    factories.AdminFactory(email="admin@example.com")
    factories.UserFactory(email="keen@example.com")
    factories.UserFactory(email="done@example.com")
    suppressions.unsubscribe("done@example.com", EMAIL.BROADCAST, source=EMAIL.SOURCE_LINK)
    AuthActions(client).login("admin@example.com")
    page = Browser(client).submit(
        "/admin/email_compose/",
        {"audience": "group", "role": "", "status": "", "subject": "News", "body": "Hello."},
    )
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "1 of these will be skipped (suppressed)." in text
    assert "/unsubscribe/" in text  # the preview shows the footer the message will have
