"""Languages and time zones: who gets which, and the German catalogue behind them.

The language is the account's setting, else the visitor's choice on the
language page, else ``Accept-Language``, else English. Times are stored in
UTC and shown in the reader's zone and language; ``<time datetime>`` keeps
the UTC instant. Emails are written in their recipient's language.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from babel.messages import extract
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from portal.extensions import db
from portal.formatting import from_reader_time
from portal.formatting import reader_time_input
from portal.i18n import LANGUAGE_COOKIE
from portal.i18n import written_for
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import csrf_token
from tests.helpers import deliver
from tests.helpers import text_of

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
# The keywords ``make translations`` extracts with, beyond Babel's defaults (``_``,
# ``gettext``, ``ngettext``, ``N_``, ...).
KEYWORDS = {
    **extract.DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
}
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def language_of(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match, "no <html lang>"
    return match.group(1)


# -- which language a request gets ---------------------------------------------


def test_a_request_without_accept_language_is_answered_in_english(client):
    html = page(client.get("/users/login/"))
    assert language_of(html) == "en"
    assert "<h1>Sign in</h1>" in html


def test_accept_language_chooses_german(client):
    response = client.get("/users/login/", headers=GERMAN)
    html = page(response)
    assert language_of(html) == "de"
    assert "<h1>Anmelden</h1>" in html
    assert "Passwort vergessen?" in html
    # Shared caches keep one copy per language.
    assert {"Accept-Language", "Cookie"} <= set(response.vary)


def test_a_language_the_site_lacks_falls_back_to_english(client):
    html = page(client.get("/users/login/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}))
    assert language_of(html) == "en"


@pytest.mark.parametrize(
    ("setting", "header", "expected"),
    [("en", GERMAN, "en"), ("de", {}, "de"), (None, GERMAN, "de"), (None, {}, "en")],
)
def test_the_account_setting_beats_the_browser(client, auth, setting, header, expected):
    factories.UserFactory(email="ann@example.com", locale=setting)
    assert auth.login("ann@example.com").status_code == 302
    html = page(client.get("/users/me/", headers=header))
    assert language_of(html) == expected
    assert ("Ihr Konto" if expected == "de" else "Your account") in html


def test_flashed_messages_and_form_errors_are_translated(client, browser):
    factories.UserFactory(email="ann@example.com")
    response = browser.submit(
        "/users/login/",
        {"email": "ann@example.com", "password": "not the password"},
        headers=GERMAN,
    )
    assert "Die E-Mail-Adresse oder das Passwort ist nicht richtig." in page(response)
    refused = browser.submit("/users/register/", {"name": ""}, headers=GERMAN)
    assert "Bitte akzeptieren Sie die Nutzungsbedingungen" in refused.get_data(as_text=True)


# -- a visitor without an account chooses ---------------------------------------


def test_a_visitor_switches_language_with_the_footer_link(client):
    home = page(client.get("/posts/"))
    assert 'href="/language/?next=/posts/"' in home
    token = csrf_token(client, "/language/?next=/posts/")
    response = client.post(
        "/language/", data={"csrf_token": token, "language": "de", "next": "/posts/"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/posts/"
    cookie = response.headers["Set-Cookie"]
    assert f"{LANGUAGE_COOKIE}=de" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    html = page(client.get("/posts/"))
    assert language_of(html) == "de" and "<h1>Beiträge</h1>" in html
    # The choice beats the browser's header.
    assert language_of(page(client.get("/posts/", headers={"Accept-Language": "en"}))) == "de"


@pytest.mark.parametrize("language", ["xx", "", "de-DE", "EN"])
def test_the_language_switch_refuses_a_language_it_does_not_offer(client, language):
    token = csrf_token(client, "/language/")
    response = client.post(
        "/language/", data={"csrf_token": token, "language": language, "next": "/posts/"}
    )
    # The page again, with the reason; no cookie, so nothing changed.
    assert response.status_code == 200
    assert LANGUAGE_COOKIE not in str(response.headers.getlist("Set-Cookie"))
    assert "Choose one of the languages in the list." in response.get_data(as_text=True)


def test_the_language_switch_needs_its_csrf_token_and_goes_only_home(client):
    refused = client.post("/language/", data={"language": "de", "next": "/posts/"})
    assert refused.status_code == 400
    assert LANGUAGE_COOKIE not in str(refused.headers.getlist("Set-Cookie"))
    token = csrf_token(client, "/language/")
    response = client.post(
        "/language/",
        data={"csrf_token": token, "language": "de", "next": "//evil.example/"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_switch_also_saves_a_signed_in_accounts_language(client, auth):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    token = csrf_token(client, "/language/")
    client.post("/language/", data={"csrf_token": token, "language": "de", "next": "/users/me/"})
    db.session.refresh(user)
    assert user.locale == "de"


def test_cached_pages_are_kept_per_language(make_app):
    app = make_app(PAGE_CACHE_SECONDS=60)
    with app.app_context():
        post = factories.PostFactory(title="Kept in two languages")
        english = page(app.test_client().get(f"/posts/{post.slug}/"))
        german = page(app.test_client().get(f"/posts/{post.slug}/", headers=GERMAN))
        again = page(app.test_client().get(f"/posts/{post.slug}/"))
    assert "No comments yet." in english and language_of(english) == "en"
    assert "Noch keine Kommentare." in german and language_of(german) == "de"
    assert again == english


# -- the account's settings -----------------------------------------------------


def edit_profile(browser, user: User, **changes: str):
    data = {
        "name": user.name,
        "email": user.email,
        "locale": user.locale or "",
        "timezone": user.timezone or "",
        **changes,
    }
    return browser.submit("/users/me/edit/", data)


def test_an_account_sets_its_language_and_time_zone(client, auth, browser):
    user = factories.UserFactory(email="ann@example.com")
    auth.login("ann@example.com")
    form = page(client.get("/users/me/edit/"))
    assert '<option selected value="">Same as my browser</option>' in form
    assert '<option value="Europe/Berlin">Europe/Berlin</option>' in form

    response = edit_profile(browser, user, locale="de", timezone="America/New_York")
    assert response.status_code == 302
    db.session.refresh(user)
    assert (user.locale, user.timezone) == ("de", "America/New_York")
    profile = page(client.get("/users/me/"))
    assert "<dt>Zeitzone</dt><dd>America/New_York</dd>" in profile
    assert "<dt>Sprache</dt><dd>Deutsch</dd>" in profile

    # Empty again: follow the browser and the site's zone.
    edit_profile(browser, user, locale="", timezone="")
    db.session.refresh(user)
    assert (user.locale, user.timezone) == (None, None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("locale", "fr", "Choose one of the languages in the list."),
        ("locale", "de-DE'", "Choose one of the languages in the list."),
        ("timezone", "Mars/Olympus_Mons", "Choose a time zone from the list"),
        ("timezone", "europe/berlin", "Choose a time zone from the list"),
    ],
)
def test_an_unknown_language_or_zone_is_refused_and_changes_nothing(
    client, auth, browser, field, value, message
):
    user = factories.UserFactory(email="ann@example.com", name="Ann")
    auth.login("ann@example.com")
    response = edit_profile(browser, user, name="Ann Renamed", **{field: value})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    db.session.refresh(user)
    assert (user.name, user.locale, user.timezone) == ("Ann", None, None)


# -- times: stored in UTC, shown in the reader's zone and language --------------


LATE_EVENING = datetime(2026, 1, 15, 23, 30, 5, 123456, tzinfo=UTC)


def test_times_are_shown_in_the_accounts_zone_and_language(client, auth):
    post = factories.PostFactory(published_at=LATE_EVENING)
    factories.ApprovedCommentFactory(post=post, created_at=LATE_EVENING)
    english = page(client.get(f"/posts/{post.slug}/"))
    # The site's zone (UTC) in English; the machine value is UTC to the second.
    assert '<time datetime="2026-01-15T23:30:05+00:00">January 15, 2026</time>' in english
    assert ">1/15/26, 11:30\u202fPM</time>" in english

    factories.UserFactory(email="ann@example.com", locale="de", timezone="Europe/Berlin")
    auth.login("ann@example.com")
    german = page(client.get(f"/posts/{post.slug}/"))
    # In Berlin it is already the next day.
    assert '<time datetime="2026-01-15T23:30:05+00:00">16. Januar 2026</time>' in german
    assert ">16.01.26, 00:30</time>" in german


def test_the_account_page_shows_the_last_sign_in_in_the_accounts_zone(client, auth):
    user = factories.UserFactory(email="ann@example.com", timezone="Asia/Tokyo")
    auth.login("ann@example.com")
    user.last_login_at = LATE_EVENING
    db.session.commit()
    html = page(client.get("/users/me/"))
    assert "<dt>Last sign-in</dt><dd>Jan 16, 2026, 8:30:05\u202fAM</dd>" in html


def test_a_time_typed_in_the_accounts_zone_is_stored_in_utc(app):
    ann = factories.UserFactory(timezone="Europe/Berlin")
    with app.test_request_context(), written_for(ann):
        # Berlin is UTC+1 in January and UTC+2 in July.
        assert from_reader_time(datetime(2026, 1, 16, 0, 30)) == datetime(
            2026, 1, 15, 23, 30, tzinfo=UTC
        )
        assert from_reader_time(datetime(2026, 7, 1, 12, 0)) == datetime(
            2026, 7, 1, 10, 0, tzinfo=UTC
        )
        assert reader_time_input(LATE_EVENING) == "2026-01-16T00:30"
    with app.test_request_context():
        # No account: the site's zone, UTC.
        assert from_reader_time(datetime(2026, 1, 16, 0, 30)) == datetime(
            2026, 1, 16, 0, 30, tzinfo=UTC
        )


# -- emails: the recipient's language, whoever caused them ----------------------


def test_an_email_is_written_in_its_recipients_language(app, browser, mail):
    factories.UserFactory(email="ann@example.com", name="Ann", locale="de")
    # The request is English (no Accept-Language); the reader is not.
    browser.submit("/users/forgot/", {"email": "ann@example.com"})
    [message] = deliver(app)
    assert message["Subject"] == "Setzen Sie Ihr Passwort für Portal zurück"
    body = text_of(message)
    assert body.startswith("Hallo Ann,")
    assert "Der Link gilt zwei Stunden und nur einmal." in body
    html = message.get_body(preferencelist=("html",)).get_content()
    assert '<html lang="de">' in html and "Neues Passwort wählen" in html


def test_a_self_service_email_without_a_setting_follows_the_request(app, browser, mail):
    factories.UserFactory(email="ann@example.com", name="Ann")
    browser.submit("/users/forgot/", {"email": "ann@example.com"}, headers=GERMAN)
    [message] = deliver(app)
    assert message["Subject"] == "Setzen Sie Ihr Passwort für Portal zurück"


def test_an_email_someone_else_causes_uses_the_recipients_language_not_theirs(app, mail):
    author = factories.UserFactory(email="author@example.com", name="Ann", locale="de")
    post = factories.PostFactory(author=author, title="Mein Beitrag")
    comment = factories.CommentFactory(post=post, body="Schön geschrieben")
    factories.StaffFactory(email="staff@example.com")
    staff = app.test_client()
    AuthActions(staff).login("staff@example.com")
    # The moderator's browser asks for English.
    token = csrf_token(staff, f"/admin/comment/action/approve/?ids={comment.id}")
    staff.post(
        f"/admin/comment/action/approve/?ids={comment.id}",
        data={"csrf_token": token, "ids": str(comment.id), "reason": ""},
        headers={"Accept-Language": "en"},
    )
    [message] = deliver(app)
    assert message["To"] == "author@example.com"
    assert message["Subject"] == "Neuer Kommentar zu „Mein Beitrag“"
    assert "Ann" in text_of(message) and "hat Ihren Beitrag „Mein Beitrag“ kommentiert" in (
        text_of(message)
    )


# -- the back office -------------------------------------------------------------


def test_the_admin_speaks_german_to_a_german_admin(client, auth):
    factories.AdminFactory(email="root@example.com", locale="de")
    factories.UserFactory(email="ann@example.com")
    auth.login("root@example.com")
    html = page(client.get("/admin/user/"))
    assert language_of(html) == "de"
    # Flask-Admin's own strings, from its German catalogue...
    assert "Liste" in html and "Mit Auswahl" in html
    # ...and Portal's: the menu, the columns and the bulk actions.
    assert "Konten" in html and "Beiträge" in html
    assert "Deaktivieren" in html
    dashboard = page(client.get("/admin/"))
    assert "E-Mail-Warteschlange" in dashboard


def test_the_admins_delete_confirmation_is_allowed_by_the_csp_in_every_language(client, auth):
    factories.AdminFactory(email="root@example.com", locale="de")
    factories.PostFactory()
    auth.login("root@example.com")
    response = client.get("/admin/post/")
    question = "Sind Sie sicher, dass Sie diesen Eintrag löschen möchten?"
    handler = f"return faHelpers.safeConfirm('{question}');"
    assert handler in page(response)
    digest = base64.b64encode(hashlib.sha256(handler.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in response.headers["Content-Security-Policy"]


# -- the catalogue ---------------------------------------------------------------


def extracted() -> dict[str | tuple[str, ...], list[str]]:
    """Every marked message of the code and templates, as ``make translations`` finds them."""
    with open(TRANSLATIONS / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str | tuple[str, ...], list[str]] = {}
    for filename, _line, message, _comments, _context in extract.extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        key = message if isinstance(message, str) else tuple(m for m in message if m)
        key = key[0] if isinstance(key, tuple) and len(key) == 1 else key
        found.setdefault(key, []).append(filename)
    return found


def german_catalogue():
    with open(TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po, locale="de")


def test_every_message_has_a_german_translation():
    catalogue = german_catalogue()
    missing = []
    for message_id, places in extracted().items():
        key = message_id[0] if isinstance(message_id, tuple) else message_id
        entry = catalogue.get(key)
        strings = [] if entry is None else entry.string
        strings = list(strings) if isinstance(strings, (tuple, list)) else [strings]
        if entry is None or entry.fuzzy or not all(strings):
            missing.append(f"{key!r} ({places[0]})")
    assert not missing, "untranslated or fuzzy:\n" + "\n".join(sorted(missing))


def test_the_german_translations_keep_every_placeholder():
    problems = [
        f"{message.id!r}: {error}"
        for message, errors in german_catalogue().check()
        for error in errors
    ]
    assert not problems, "\n".join(problems)


def test_the_compiled_catalogue_matches_the_translations():
    catalogue = german_catalogue()
    with open(TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.mo", "rb") as mo:
        compiled = read_mo(mo)
    wanted = {_hashable(m.id): _hashable(m.string) for m in catalogue if m.id and not m.fuzzy}
    have = {_hashable(m.id): _hashable(m.string) for m in compiled if m.id}
    assert have == wanted, "messages.mo is stale: run make translations"


def _hashable(value):
    # A plural's id and strings are a tuple in a .po and a list in a .mo.
    return tuple(value) if isinstance(value, (list, tuple)) else value
