"""Compose shows what it will send: one recipient input at a time, accounts picked by search,
and a preview rendered by the queue's own code that queues nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func
from sqlalchemy import select

from portal.emails.models import Email
from portal.extensions import db
from tests import factories
from tests.conftest import csrf_token

COMPOSE = "/admin/email_compose/"
ACCOUNTS = "/admin/email_compose/accounts"
ROLES = {
    "user": factories.UserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}


def sign_in(auth, role="staff"):
    person = ROLES[role](name=f"The {role}", email=f"{role}@staff.test")
    assert auth.login(person.email).status_code == 302
    return person


def queued():
    return db.session.execute(select(func.count(Email.id))).scalar_one()


def compose(client, **data):
    token = csrf_token(client, COMPOSE)
    return client.post(COMPOSE, data={"csrf_token": token, **data})


# -- the account picker's endpoint -------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"), [(None, "login"), ("user", 403), ("staff", 200), ("admin", 200)]
)
def test_the_account_search_is_for_staff_only(client, auth, role, expected):
    factories.UserFactory(name="Findable Person")
    if role is not None:
        sign_in(auth, role)

    response = client.get(ACCOUNTS, query_string={"q": "findable"})

    if expected == "login":
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/users/login/")
    else:
        assert response.status_code == expected
    assert "Findable" not in response.get_data(as_text=True) or expected == 200


def test_the_account_search_answers_json_that_no_cache_keeps(client, auth):
    person = factories.UserFactory(name="Uma User", email="uma@example.com", handle="uma-u")
    sign_in(auth)

    response = client.get(ACCOUNTS, query_string={"q": "uma"})

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "no-store" in response.headers["Cache-Control"]
    assert response.get_json() == [{"id": person.id, "text": "Uma User <uma@example.com>"}]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("smith", {"ann", "bob"}),  # inside the name or the address
        ("night-owl", {"cy"}),  # the handle
        ("ann example.org", {"ann"}),  # every word, each somewhere
        ("SMITH ANN", {"ann"}),
        ("100%", {"pct"}),  # a wildcard is only itself
        ("_", {"under"}),
        ("", set()),  # no words, no accounts
        ("   ", set()),
    ],
)
def test_the_account_search_matches_every_word_in_name_handle_or_email(
    client, auth, term, expected
):
    people = {
        "ann": factories.UserFactory(name="Ann Smith", email="ann@example.org"),
        "bob": factories.UserFactory(name="Bob Jones", email="bob.smith@example.com"),
        "cy": factories.UserFactory(name="Cy Quiet", handle="the-night-owl"),
        "pct": factories.UserFactory(name="Sale 100% Off"),
        "under": factories.UserFactory(name="Odd Name", email="odd_name@example.com"),
    }
    sign_in(auth)

    found = {item["id"] for item in client.get(ACCOUNTS, query_string={"q": term}).get_json()}

    assert found == {people[key].id for key in expected}


def test_the_account_search_lists_at_most_twenty(client, auth):
    factories.UserFactory.create_batch(25, name=factories.factory.Sequence(lambda n: f"Many {n}"))
    sign_in(auth)

    found = client.get(ACCOUNTS, query_string={"q": "many"}).get_json()

    assert len(found) == 20


def test_the_account_search_changes_nothing_and_takes_no_post(client, auth):
    sign_in(auth)

    assert client.post(ACCOUNTS, data={"q": "x"}).status_code in (400, 405)


# -- the form ------------------------------------------------------------------------


def test_without_script_every_recipient_input_shows_under_its_choice(client, auth):
    sign_in(auth)

    page = client.get(COMPOSE).get_data(as_text=True)

    for audience, field in (("address", "address"), ("account", "account"), ("group", "role")):
        block = re.search(
            rf'<[a-z]+ class="compose-recipient[^"]*" data-audience="{audience}">'
            r"(.*?)</(div|fieldset)>",
            page,
            re.S,
        )
        assert block, audience
        assert f'id="{field}"' in block.group(1)
        assert "hidden" not in block.group(0).split(">")[0]  # shown until the script runs
    assert re.search(r'<label[^>]*for="account"[^>]*>Account</label>', page)
    assert re.search(r'<script src="/static/js/compose\.[^"]*js" defer></script>', page)
    assert 'data-accounts-url="/admin/email_compose/accounts"' in page
    assert re.search(r'<input[^>]*id="account_id"[^>]*type="hidden"', page)


# -- the preview ---------------------------------------------------------------------


def srcdoc(page):
    frame = re.search(r'<iframe[^>]*id="preview-html"[^>]*>', page)
    assert frame, "no HTML preview"
    assert re.search(r'\ssandbox=""', frame.group(0))
    return html.unescape(re.search(r'srcdoc="([^"]*)"', frame.group(0)).group(1))


def preview_text(page):
    return html.unescape(re.search(r'<pre[^>]*id="preview-text">(.*?)</pre>', page, re.S).group(1))


def test_the_preview_shows_the_message_as_queued_and_queues_nothing(client, auth, monkeypatch):
    # The footer's preferences link is signed with the second it was made in: hold the
    # clock, so preview and queue sign in the same second.
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_800_000_000)
    staff = sign_in(auth)
    people = factories.UserFactory.create_batch(12)
    factories.InactiveUserFactory()
    form = {
        "audience": "group",
        "role": "2",
        "status": "",
        "subject": "  News & notes ",
        "body": "Hello <all>,\r\n\r\nsee you.",
    }

    response = compose(client, preview="1", **form)

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert queued() == 0
    assert "12 recipients" in page
    listed = re.findall(
        r"<li>([^<]+)</li>", re.search(r'id="preview-recipients">(.*?)</ol>', page, re.S).group(1)
    )
    assert listed == [person.email for person in people[:10]]  # the first ten, in sending order
    assert staff.email not in listed
    shown_subject = html.unescape(re.search(r'id="preview-subject">([^<]*)<', page).group(1))
    shown_text, shown_html = preview_text(page), srcdoc(page)

    compose(client, confirm="1", **form)

    first = db.session.execute(
        select(Email).where(Email.to_address == people[0].email)
    ).scalar_one()
    assert queued() == 12
    assert shown_subject == first.subject == "News & notes"
    assert shown_text == first.text_body
    assert shown_html == first.html_body
    assert "Hello &lt;all&gt;," in shown_html  # the body is escaped in the HTML part


def test_the_preview_to_a_picked_account_uses_its_stored_address(client, auth):
    sign_in(auth)
    person = factories.UserFactory(name="Ann Smith", email="Ann.Smith@example.com")

    page = compose(
        client,
        preview="1",
        audience="account",
        account="Ann Smith <Ann.Smith@example.com>",
        account_id=str(person.id),
        subject="Hi",
        body="Hello",
    ).get_data(as_text=True)

    assert "1 recipient" in page
    assert re.search(r'id="preview-recipients">\s*<li>Ann\.Smith@example\.com</li>', page)
    assert queued() == 0


def test_the_html_preview_is_allowed_its_inline_styles_and_nothing_more(client, auth):
    sign_in(auth)

    response = compose(
        client, preview="1", audience="address", address="a@example.com", subject="Hi", body="Yo"
    )

    document = srcdoc(response.get_data(as_text=True))
    styles = re.findall(r'style="([^"]*)"', document)
    assert styles, "the broadcast template styles its HTML part"
    policy = response.headers["Content-Security-Policy"]
    style_src = next(p for p in policy.split(";") if p.strip().startswith("style-src")).split()
    assert "'unsafe-hashes'" in style_src
    assert "'unsafe-inline'" not in style_src
    hashes = {part for part in style_src if part.startswith("'sha256-")}
    expected = {
        "'sha256-"
        + base64.b64encode(hashlib.sha256(html.unescape(s).encode()).digest()).decode()
        + "'"
        for s in styles
    }
    assert hashes == expected
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert "sha256" not in script_src.split("'unsafe-hashes'")[0]


def test_other_pages_keep_refusing_inline_styles(client, auth):
    sign_in(auth)

    policy = client.get(COMPOSE).headers["Content-Security-Policy"]

    style_src = next(p for p in policy.split(";") if p.strip().startswith("style-src"))
    assert "unsafe-hashes" not in style_src and "sha256" not in style_src


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"audience": "account", "account": "", "account_id": ""}, "Enter or pick the account"),
        ({"audience": "account", "account": "x", "account_id": "999999"}, "No such account"),
        ({"audience": "account", "account": "x", "account_id": "abc"}, "Not a valid integer"),
        ({"audience": "group", "role": "0", "status": "0"}, "Nobody matches"),
        ({"audience": "address", "address": "not an address"}, "The recipient is not valid"),
        (
            {"audience": "address", "address": "a@example.com", "subject": "  "},
            "This field is required",
        ),
    ],
)
def test_a_preview_of_bad_input_says_why_and_queues_nothing(client, auth, data, message):
    sign_in(auth)
    form = {"subject": "Hi", "body": "Hello", **data}

    response = compose(client, preview="1", **form)

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in page
    assert 'id="compose-preview"' not in page
    assert queued() == 0
