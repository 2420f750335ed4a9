"""Header injection and overlong addresses: refused or neutralised before queueing,
and never built into a message, whatever Python version runs the code.

Python before 3.11.10 decodes an RFC 2047 encoded word and writes the CR LF
it holds into the message (CVE-2024-6923); the defences here must not rely
on the interpreter having that fixed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal.emails import constants as EMAIL
from portal.emails import services as emails
from portal.emails.addresses import InvalidHeader
from portal.emails.addresses import check_header
from portal.emails.addresses import header_text
from portal.emails.addresses import normalize_address
from portal.emails.addresses import normalize_mailbox
from portal.emails.models import Email
from portal.emails.queue import build_message
from portal.emails.queue import check_serialized_headers
from portal.emails.queue import deliver_batch
from portal.extensions import db
from portal.users import constants as USER
from portal.users import services as accounts
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.conftest import csrf_token
from tests.smtp_server import SMTPServer
from tests.smtp_server import smtp_server

# The two payloads from the report, and the headers they smuggled in.
COMPOSE_SUBJECT = "Hi =?utf-8?q?x=0D=0ABcc:_evil@evil.example?="
POST_TITLE = "Notes =?utf-8?q?x=0D=0AReply-To:_attacker@evil.example=0D=0AX-Injected:_1?="
INJECTED_LINE = re.compile(rb"^(bcc|reply-to|x-injected)\s*:", re.IGNORECASE | re.MULTILINE)

# Every character Python's email package (str.splitlines) ends a line at, and NUL.
SEPARATORS = {
    "CR": "\r",
    "LF": "\n",
    "NUL": "\0",
    "VT": "\x0b",
    "FF": "\x0c",
    "FS": "\x1c",
    "GS": "\x1d",
    "RS": "\x1e",
    "NEL": "\x85",
    "LINE SEPARATOR": "\u2028",
    "PARAGRAPH SEPARATOR": "\u2029",
}

# Spellings of an encoded word that Python's parser decodes (or may, in some version).
ENCODED_WORDS = {
    "q lower": "=?utf-8?q?x=0D=0ABcc:_evil@evil.example?=",
    "Q upper": "=?UTF-8?Q?x=0D=0ABcc:_evil@evil.example?=",
    "b lower": "=?utf-8?b?eA0KQmNjOiBldmlsQGV2aWwuZXhhbXBsZQ==?=",
    "B upper": "=?UTF-8?B?eA0KQmNjOiBldmlsQGV2aWwuZXhhbXBsZQ==?=",
    "other charset": "=?iso-8859-1?q?x=0D=0ABcc:_evil@evil.example?=",
    "language tag": "=?utf-8*en?q?x=0D=0ABcc:_evil@evil.example?=",
    "glued to words": "Hi=?utf-8?q?x=0D=0ABcc:_evil@evil.example?=there",
    "space inside": "=?utf-8?q?x=0D=0A Bcc:_evil@evil.example?=",
    "spaces around parts": "=? utf-8 ? q ? x=0D=0A ?=",
    "nested": "=?=?utf-8?q?x=0D=0ABcc:_evil@evil.example?=?=",
    "empty text": "=?utf-8?q??=",
    "two words": "=?utf-8?q?x?= =?utf-8?q?=0D=0ABcc:_evil@evil.example?=",
}


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    """A real SMTP server on 127.0.0.1 that keeps the raw bytes of what arrives."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def over_smtp(app: Flask, smtp: SMTPServer) -> SMTPServer:
    """Deliver through the loopback SMTP server (settings read at delivery time)."""
    app.config.update(
        MAIL_TRANSPORT="smtp", MAIL_SERVER=smtp.host, MAIL_PORT=smtp.port, MAIL_TIMEOUT=5
    )
    return smtp


def header_block(raw: bytes) -> bytes:
    head, separator, _ = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    assert separator, "no blank line ends the headers"
    return head


def header_names(raw: bytes) -> list[str]:
    """The names of the top-level header lines, as a receiver reads them."""
    lines = header_block(raw).split(b"\n")
    return [line.split(b":", 1)[0].decode().lower() for line in lines if line[:1] not in b" \t"]


def assert_nothing_injected(raw: bytes) -> None:
    # The header block: a body quoting the title may wrap it onto a line of its own.
    assert INJECTED_LINE.search(header_block(raw)) is None, raw.decode(errors="replace")
    assert set(header_names(raw)) <= {
        "message-id",
        "date",
        "from",
        "to",
        "subject",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        # Broadcasts and notifications carry their unsubscribe link (RFC 2369, RFC 8058).
        "list-unsubscribe",
        "list-unsubscribe-post",
    }


def email_count() -> int:
    return int(db.session.execute(select(func.count(Email.id))).scalar_one())


def row(**values: object) -> Email:
    """An unsaved row, as if written before the rules (or by other means)."""
    fields: dict[str, object] = {
        "to_address": "ada@example.com",
        "from_address": "Portal <no-reply@example.com>",
        "subject": "Hello",
        "text_body": "Hello.",
        "message_id": "<m1@example.com>",
        "created_at": datetime(2024, 1, 1),
    }
    fields.update(values)
    return Email(**fields)


def compose(client: FlaskClient, expected: int = 200, **data: str) -> str:
    token = csrf_token(client, "/admin/email_compose/")
    response = client.post(
        "/admin/email_compose/", data={"csrf_token": token, "confirm": "1", **data}
    )
    assert response.status_code == expected
    return response.get_data(as_text=True)


# -- through HTTP, delivered over real SMTP -------------------------------------


@pytest.mark.parametrize("audience", ["address", "group"])
def test_compose_refuses_an_encoded_word_subject_and_nothing_is_sent(
    app: Flask, client: FlaskClient, auth: AuthActions, over_smtp: SMTPServer, audience: str
) -> None:
    factories.StaffFactory(email="staff@example.com")
    factories.UserFactory(email="reader@example.com")
    auth.login("staff@example.com")

    page = compose(
        client,
        audience=audience,
        address="reader@example.com",
        role="",
        status="",
        subject=COMPOSE_SUBJECT,
        body="Hello",
    )

    assert "The subject may not contain encoded-word syntax (=?…?=)." in page
    assert email_count() == 0
    deliver_batch()
    assert over_smtp.handler.received == []


@pytest.mark.parametrize("name", ["VT", "RS", "NEL", "LINE SEPARATOR"])
def test_compose_refuses_other_line_separators_when_queueing(
    client: FlaskClient, auth: AuthActions, name: str
) -> None:
    factories.StaffFactory(email="staff@example.com")
    auth.login("staff@example.com")

    page = compose(
        client,
        audience="address",
        address="reader@example.com",
        subject=f"Hi{SEPARATORS[name]}X-Injected: 1",
        body="Hello",
    )

    assert "The subject must be a single line." in page
    assert email_count() == 0


def test_compose_delivers_a_subject_that_only_looks_like_the_start_of_one(
    client: FlaskClient, auth: AuthActions, over_smtp: SMTPServer
) -> None:
    factories.StaffFactory(email="staff@example.com")
    auth.login("staff@example.com")
    subject = "Quiz: 2 + x =? (answer inside)"

    compose(
        client, 302, audience="address", address="reader@example.com", subject=subject, body="Hi"
    )
    deliver_batch()

    [received] = over_smtp.handler.received
    assert_nothing_injected(received.data)
    assert str(received.message["Subject"]) == subject


def test_post_title_with_an_encoded_word_is_neutralised_in_the_authors_notification(
    app: Flask, over_smtp: SMTPServer
) -> None:
    factories.UserFactory(email="author@example.com", notify_comments=True)
    factories.StaffFactory(email="staff@example.com")
    author, staff = app.test_client(), app.test_client()
    AuthActions(author).login("author@example.com")
    created = AuthActions(author).browser.submit(
        "/posts/new/",
        {"title": POST_TITLE, "body": "Some words.", "action": "publish"},
        token_from="/users/me/",
    )
    assert created.status_code == 302
    post_path = created.headers["Location"]
    AuthActions(staff).login("staff@example.com")
    # A staff comment is approved at once, which notifies the author.
    commented = AuthActions(staff).browser.submit(
        f"{post_path}comments/", {"body": "Nice."}, token_from=post_path
    )
    assert commented.status_code == 302

    result = deliver_batch()

    assert (result.sent, result.failed) == (1, 0)
    [received] = over_smtp.handler.received
    assert received.rcpt_tos == ["author@example.com"]
    assert_nothing_injected(received.data)
    subject = str(received.message["Subject"])
    assert subject == (
        "New comment on “Notes = ?utf-8?q?x=0D=0AReply-To:_attacker@evil.example"
        "=0D=0AX-Injected:_1?=”"
    )
    assert received.message["Reply-To"] is None


def test_rows_that_cannot_be_built_safely_fail_for_good_and_the_rest_is_sent(
    app: Flask, over_smtp: SMTPServer
) -> None:
    # Rows written before these rules existed, or by other means than enqueue.
    bad = [
        factories.EmailFactory(subject=COMPOSE_SUBJECT),
        factories.EmailFactory(subject="Hi\u2028X-Injected: 1"),
        factories.EmailFactory(from_address=f'"{ENCODED_WORDS["q lower"]}" <no-reply@example.com>'),
        factories.EmailFactory(reply_to=f"{ENCODED_WORDS['b lower']} <help@example.com>"),
    ]
    good = factories.EmailFactory(to_address="fine@example.com", subject="Fine")

    result = deliver_batch()

    assert (result.sent, result.failed, result.retried) == (1, 4, 0)
    [received] = over_smtp.handler.received
    assert received.rcpt_tos == ["fine@example.com"]
    assert_nothing_injected(received.data)
    db.session.expire_all()
    assert db.session.get(Email, good.id).state == EMAIL.SENT
    errors = [db.session.get(Email, email.id).last_error for email in bad]
    assert [db.session.get(Email, email.id).state for email in bad] == [EMAIL.FAILED] * 4
    assert errors == [
        "message could not be built: The subject may not contain encoded-word syntax (=?…?=).",
        "message could not be built: The subject must be a single line.",
        "message could not be built: The sender may not contain encoded-word syntax (=?…?=).",
        "message could not be built: "
        "The reply-to address may not contain encoded-word syntax (=?…?=).",
    ]


# -- overlong local parts (RFC 5321: at most 64 octets before the @) ------------


LOCAL_64 = "a" * 64 + "@example.com"
LOCAL_65 = "a" * 65 + "@example.com"
TOO_LONG = "the part before the @-sign has 65 characters; at most 64 are allowed."


def test_registration_refuses_an_overlong_local_part(browser: Browser) -> None:
    data = {
        "name": "Grace Hopper",
        "email": LOCAL_65,
        "password": "mossy-violin-harbour-92",
        "confirm": "mossy-violin-harbour-92",
        "accept_tos": "y",
    }
    response = browser.submit("/users/register/", data)

    assert response.status_code == 200
    assert f"The email address is not valid: {TOO_LONG}" in response.get_data(as_text=True)
    assert db.session.execute(select(func.count(User.id))).scalar_one() == 0
    assert email_count() == 0


def test_email_change_refuses_an_overlong_local_part(
    client: FlaskClient, auth: AuthActions
) -> None:
    factories.UserFactory(name="Ann", email="ann@example.com")
    auth.login("ann@example.com")

    response = auth.browser.submit("/users/me/edit/", {"name": "Ann", "email": LOCAL_65})

    assert response.status_code == 200
    assert TOO_LONG in response.get_data(as_text=True)
    assert email_count() == 0


def test_normalize_address_refuses_more_than_64_characters_before_the_at(app: Flask) -> None:
    assert normalize_address(LOCAL_64) == LOCAL_64
    with pytest.raises(InvalidHeader, match=re.escape(f"The address is not valid: {TOO_LONG}")):
        normalize_address(LOCAL_65)


def test_every_way_in_refuses_an_overlong_local_part(app: Flask) -> None:
    """Registration, email change, invitation and compose all meet the same rule."""
    admin = factories.AdminFactory()
    user = factories.UserFactory()
    attempts = [
        lambda: accounts.register("Grace", LOCAL_65, "mossy-violin-harbour-92"),
        lambda: accounts.request_email_change(user, LOCAL_65),
        lambda: accounts.invite_account("Iris", LOCAL_65, USER.USER, actor=admin),
    ]
    for attempt in attempts:
        with pytest.raises(accounts.AccountError, match=TOO_LONG):
            attempt()
    with pytest.raises(emails.QueueError, match=TOO_LONG):
        emails.compose(LOCAL_65, "Hello", "Body")
    assert email_count() == 0


# -- check_header: the rule at queueing time ------------------------------------


@pytest.mark.parametrize("char", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_check_header_refuses_every_line_separator(char: str) -> None:
    with pytest.raises(InvalidHeader, match="^The subject must be a single line.$"):
        check_header("subject", f"Hi{char}X-Injected: 1")


@pytest.mark.parametrize("value", ENCODED_WORDS.values(), ids=ENCODED_WORDS.keys())
def test_check_header_refuses_encoded_word_syntax(value: str) -> None:
    with pytest.raises(InvalidHeader, match=re.escape("may not contain encoded-word syntax")):
        check_header("subject", f"Hi {value}")


@pytest.mark.parametrize("char", ["\x01", "\x1b", "\x1f", "\x7f", "\x9b"])
def test_check_header_refuses_other_control_characters(char: str) -> None:
    with pytest.raises(InvalidHeader, match="may not contain control characters"):
        check_header("subject", f"Hi{char}there")


@pytest.mark.parametrize(
    "value",
    ["Café: confirm ✓", "Quiz: x =? y", "What? =)", "a ?= b =", "Tab\tseparated", "= ? spaced"],
)
def test_check_header_accepts_ordinary_text(value: str) -> None:
    assert check_header("subject", value) == value


def test_addresses_and_display_names_refuse_encoded_words(app: Flask) -> None:
    with pytest.raises(InvalidHeader, match="encoded-word"):
        normalize_address("=?utf-8?q?a=0D=0AX-Injected=3A_1?=@example.com")
    with pytest.raises(InvalidHeader, match="encoded-word"):
        normalize_mailbox(f'"{ENCODED_WORDS["q lower"]}" <help@example.com>')
    with pytest.raises(InvalidHeader, match="single line"):
        normalize_mailbox("Help\u2028Desk <help@example.com>")
    assert normalize_mailbox("Help Desk <help@example.com>") == "Help Desk <help@example.com>"


def test_a_sender_setting_with_an_encoded_word_refuses_broadcasts(app: Flask) -> None:
    app.config["MAIL_DEFAULT_SENDER"] = f"{ENCODED_WORDS['Q upper']} <no-reply@example.com>"
    with pytest.raises(emails.QueueError, match="MAIL_DEFAULT_SENDER is unusable"):
        emails.check_broadcast("News", "Hello", EMAIL.NORMAL)


# -- header_text: user text quoted in a header is neutralised --------------------


@pytest.mark.parametrize("char", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_header_text_turns_line_separators_into_spaces(char: str) -> None:
    assert header_text(f"Hi{char}X-Injected: 1") == "Hi X-Injected: 1"


@pytest.mark.parametrize("value", ENCODED_WORDS.values(), ids=ENCODED_WORDS.keys())
def test_header_text_breaks_every_encoded_word(value: str) -> None:
    safe = header_text(f"Notes {value}")
    assert "=?" not in safe
    assert check_header("subject", safe) == safe
    assert build_message(row(subject=f"New comment on “{safe}”"))["Subject"]


def test_header_text_keeps_ordinary_text_and_cuts_long_text() -> None:
    assert header_text("  Café   notes ✓ ") == "Café notes ✓"
    assert header_text("==??") == "== ??"
    cut = header_text("word " * 100, max_length=20)
    assert len(cut) <= 20 and cut.endswith("…")


# -- the builder: fails closed on any row ----------------------------------------


@pytest.mark.parametrize("char", SEPARATORS.values(), ids=SEPARATORS.keys())
def test_builder_refuses_a_subject_with_any_line_separator(char: str) -> None:
    with pytest.raises(InvalidHeader, match="single line"):
        build_message(row(subject=f"Hi{char}Bcc: evil@evil.example"))


@pytest.mark.parametrize("value", ENCODED_WORDS.values(), ids=ENCODED_WORDS.keys())
def test_builder_refuses_encoded_words_in_every_header_it_sets(value: str) -> None:
    for values in (
        {"subject": f"Hi {value}"},
        {"from_address": f'"{value}" <no-reply@example.com>'},
        {"reply_to": f"{value} <help@example.com>"},
        {"to_address": f"{value}@example.com"},
        {"message_id": f"<{value}@example.com>"},
    ):
        with pytest.raises(InvalidHeader, match="encoded-word"):
            build_message(row(**values))


def test_builder_accepts_ordinary_rows_with_folded_headers() -> None:
    message = build_message(
        row(
            subject="Café ✓ " + "long words " * 20,
            reply_to="Help Desk <help@example.com>",
            html_body="<p>Hello.</p>",
        )
    )
    assert message["Subject"].startswith("Café ✓ long words")
    assert message.get_content_type() == "multipart/alternative"


def test_serialized_header_check_refuses_a_header_that_writes_its_own_line() -> None:
    # What an unpatched interpreter produces from an encoded word, made by hand
    # so that the check is proven on every Python version.
    message = build_message(row())
    del message["Subject"]
    message.set_raw("Subject", "Hi x\r\nBcc: evil@evil.example")
    with pytest.raises(InvalidHeader, match="would add a line of its own"):
        check_serialized_headers(message)

    for raw in ("Hi x\nBcc: evil@evil.example", "Hi x\r\n\r\nbody", "Hi\0there"):
        del message["Subject"]
        message.set_raw("Subject", raw)
        with pytest.raises(InvalidHeader):
            check_serialized_headers(message)


def test_serialized_header_check_catches_this_interpreters_own_decoding() -> None:
    message = EmailMessage()
    message["Subject"] = COMPOSE_SUBJECT
    message.set_content("x")
    if INJECTED_LINE.search(bytes(message)):
        # An interpreter with CVE-2024-6923 (3.11.7 here): the check must stop it.
        with pytest.raises(InvalidHeader, match="would add a line of its own"):
            check_serialized_headers(message)
    else:
        check_serialized_headers(message)
