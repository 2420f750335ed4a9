"""Unsubscribe: the headers and footer as received over SMTP, one-click, the preferences page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from flask import Flask
from sqlalchemy import select

from portal import operations
from portal.emails import constants as EMAIL
from portal.emails import services as emails
from portal.emails import suppressions
from portal.emails import unsubscribe
from portal.emails.models import Suppression
from portal.emails.queue import deliver_batch
from portal.extensions import db
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.smtp_server import SMTPServer
from tests.smtp_server import smtp_server

BASE_URL = "https://portal.example.org"
MAILTO = "unsubscribe@example.org"
URL_RE = re.compile(r"https?://[^\s<>\"]+")


@pytest.fixture
def smtp(app: Flask) -> Iterator[SMTPServer]:
    """Deliver through a real SMTP server on loopback, with the site's public address set."""
    with smtp_server() as server:
        app.config.update(
            MAIL_TRANSPORT="smtp",
            MAIL_SERVER=server.host,
            MAIL_PORT=server.port,
            MAIL_TIMEOUT=5,
            PORTAL_BASE_URL=BASE_URL,
            EMAIL_UNSUBSCRIBE_MAILTO=MAILTO,
        )
        yield server


def received(server: SMTPServer, to: str) -> tuple[bytes, EmailMessage]:
    [message] = [item for item in server.handler.received if to in item.rcpt_tos]
    return message.data, message.message


def header_lines(raw: bytes) -> dict[str, bytes]:
    """Each header of the raw message as its one unfolded line, by lower-case name."""
    head = raw.replace(b"\r\n", b"\n").partition(b"\n\n")[0]
    unfolded = re.sub(rb"\n[ \t]+", b" ", head)
    return {
        line.split(b":", 1)[0].lower().decode(): line.split(b":", 1)[1].strip()
        for line in unfolded.split(b"\n")
    }


def body_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def one_click_url(raw: bytes) -> str:
    value = header_lines(raw)["list-unsubscribe"].decode()
    match = re.match(r"<(https://[^>]+)>, <(mailto:[^>]+)>$", value)
    assert match, value
    return match.group(1)


def broadcast_to(*people: str) -> None:
    for address in people:
        factories.UserFactory(email=address)
    operations.broadcast("Spring news", "Hello everyone.\n\nSee you soon.")
    deliver_batch()


def path_of(url: str) -> str:
    assert url.startswith(BASE_URL), url
    return url.removeprefix(BASE_URL)


# -- the message as received ------------------------------------------------------


def test_a_broadcast_arrives_with_both_unsubscribe_headers_and_footer_links(app, smtp):
    broadcast_to("reader@example.com")
    raw, message = received(smtp, "reader@example.com")
    headers = header_lines(raw)
    # One unfolded line, no encoded words: a client reads the URL as it is.
    assert b"=?" not in headers["list-unsubscribe"]
    url = one_click_url(raw)
    assert url.startswith(f"{BASE_URL}/unsubscribe/")
    assert headers["list-unsubscribe"].endswith(f"<mailto:{MAILTO}?subject=unsubscribe>".encode())
    assert headers["list-unsubscribe-post"] == b"List-Unsubscribe=One-Click"
    text, html = body_of(message, "plain"), body_of(message, "html")
    assert url in URL_RE.findall(text)
    assert f'href="{url}"' in html
    assert any(link.startswith(f"{BASE_URL}/email-preferences/") for link in URL_RE.findall(text))


def test_a_comment_notification_carries_a_link_for_notifications_only(app, smtp, client):
    author = factories.UserFactory(email="author@example.com")
    post = factories.PostFactory(author=author)
    comment = factories.CommentFactory(post=post)
    from portal.comments import constants as COMMENT
    from portal.comments import services as comments

    comments.moderate([comment], COMMENT.APPROVED, actor=None)
    deliver_batch()
    raw, _message = received(smtp, "author@example.com")
    address, category = unsubscribe.read_unsubscribe(one_click_url(raw).rsplit("/", 2)[-2])
    assert (address, category) == ("author@example.com", EMAIL.NOTIFICATION)


def test_account_mail_has_no_unsubscribe_header_or_footer(app, smtp, client):
    Browser(client).submit(
        "/users/register/",
        {
            "name": "New Person",
            "email": "new@example.com",
            "password": factories.PASSWORD,
            "confirm": factories.PASSWORD,
            "accept_tos": "y",
        },
    )
    deliver_batch()
    raw, message = received(smtp, "new@example.com")
    assert "list-unsubscribe" not in header_lines(raw)
    assert "/unsubscribe/" not in body_of(message, "plain")
    with pytest.raises(ValueError):
        unsubscribe.unsubscribe_token("new@example.com", EMAIL.ACCOUNT)


# -- one click -----------------------------------------------------------------------


def test_one_click_post_works_without_a_session_or_csrf_token_and_twice(app, smtp):
    app.config["WTF_CSRF_ENABLED"] = True
    broadcast_to("reader@example.com")
    path = path_of(one_click_url(received(smtp, "reader@example.com")[0]))
    client = app.test_client()
    for _ in range(2):
        response = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert response.mimetype == "text/plain"
    rows = db.session.execute(select(Suppression)).scalars().all()
    assert [(r.address, r.reason, r.category, r.source) for r in rows] == [
        ("reader@example.com", EMAIL.REASON_UNSUBSCRIBE, EMAIL.BROADCAST, EMAIL.SOURCE_ONE_CLICK)
    ]
    # The next broadcast skips the address; notifications would still go.
    smtp.handler.received.clear()
    operations.broadcast("More news", "Again.")
    deliver_batch()
    assert smtp.handler.recipients == []
    assert not suppressions.is_suppressed("reader@example.com", EMAIL.NOTIFICATION)


def test_get_shows_a_button_and_changes_nothing_then_the_button_unsubscribes(app, smtp, client):
    broadcast_to("reader@example.com")
    path = path_of(one_click_url(received(smtp, "reader@example.com")[0]))
    page = client.get(path)
    assert page.status_code == 200
    assert "reader@example.com" in page.get_data(as_text=True)
    assert 'method="post"' in page.get_data(as_text=True)
    assert db.session.execute(select(Suppression)).scalars().all() == []
    done = client.post(path)
    assert done.status_code == 200
    assert 'id="unsubscribed"' in done.get_data(as_text=True)
    assert suppressions.find("READER@example.com").source == EMAIL.SOURCE_LINK


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: unsubscribe.unsubscribe_token("victim@example.com", EMAIL.BROADCAST).replace(
            ".", "x.", 1
        ),
    ],
    ids=["bad signature", "payload changed"],
)
def test_a_forged_token_is_refused_and_changes_nothing(app, client, tamper):
    token = tamper(unsubscribe.unsubscribe_token("victim@example.com", EMAIL.BROADCAST))
    response = client.post(f"/unsubscribe/{token}/", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert client.get(f"/unsubscribe/{token}/").status_code == 400
    assert db.session.execute(select(Suppression)).scalars().all() == []


def test_a_token_for_one_category_cannot_unsubscribe_another(app, client):
    token = unsubscribe.unsubscribe_token("reader@example.com", EMAIL.NOTIFICATION)
    # A preferences token is signed under another salt: it is no unsubscribe link.
    other = unsubscribe.preferences_token("reader@example.com")
    assert client.post(f"/unsubscribe/{other}/").status_code == 400
    client.post(f"/unsubscribe/{token}/", data={"List-Unsubscribe": "One-Click"})
    standing = suppressions.standing("reader@example.com")
    assert standing.refused == {EMAIL.NOTIFICATION}
    assert standing.allows(EMAIL.BROADCAST)


# -- preferences ------------------------------------------------------------------------


def test_the_footer_preferences_link_works_without_signing_in(app, client):
    token = unsubscribe.preferences_token("reader@example.com")
    path = f"/email-preferences/{token}/"
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    browser = Browser(client)
    browser.submit(path, {"notification": "y"})
    assert suppressions.standing("reader@example.com").refused == {EMAIL.BROADCAST}
    browser.submit(path, {"broadcast": "y", "notification": "y"})
    assert suppressions.find("reader@example.com") is None
    browser.submit(path, {})
    assert suppressions.standing("reader@example.com").refused == set(EMAIL.OPTIONAL_CATEGORIES)


def test_a_forged_preferences_link_is_refused(app, client):
    token = unsubscribe.preferences_token("reader@example.com")
    assert client.get(f"/email-preferences/{token[:-3]}xyz/").status_code == 400


def test_the_signed_in_preferences_page_is_under_the_account(app, client):
    factories.UserFactory(email="member@example.com")
    assert client.get("/users/me/email-preferences/").status_code == 302
    AuthActions(client).login("member@example.com")
    response = Browser(client).submit("/users/me/email-preferences/", {"broadcast": "y"})
    assert response.status_code == 302
    assert suppressions.standing("member@example.com").refused == {EMAIL.NOTIFICATION}
    profile = client.get("/users/me/").get_data(as_text=True)
    assert "/users/me/email-preferences/" in profile


def test_account_mail_is_sent_to_an_address_that_refuses_everything(app, smtp, client):
    factories.UserFactory(email="member@example.com")
    suppressions.suppress(
        "member@example.com", reason=EMAIL.REASON_BOUNCE, source=EMAIL.SOURCE_SMTP
    )
    db.session.commit()
    Browser(client).submit("/users/forgot/", {"email": "member@example.com"})
    deliver_batch()
    assert smtp.handler.recipients == ["member@example.com"]
    with pytest.raises(suppressions.SuppressionError):
        suppressions.suppress(
            "member@example.com",
            reason=EMAIL.REASON_MANUAL,
            source=EMAIL.SOURCE_CLI,
            category=EMAIL.ACCOUNT,
        )


def test_compose_to_a_suppressed_address_is_refused(app):
    suppressions.unsubscribe("reader@example.com", EMAIL.BROADCAST, source=EMAIL.SOURCE_LINK)
    with pytest.raises(emails.QueueError, match="suppression list"):
        emails.compose("reader@example.com", "Hi", "Body")
