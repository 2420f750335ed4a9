"""The editor's live preview endpoint, POST /posts/preview/, through HTTP."""

from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.users import constants as USER
from tests import factories
from tests.helpers import sign_in
from tests.helpers import text

PATH = "/posts/preview/"
EDITOR = "/posts/new/"
# As a browser sends it: CR LF line breaks, which a save makes LF.
BODY = (
    "# Title\r\n\r\nHello **bold**, [a link](https://example.org) and a table:\r\n\r\n"
    "| a | b |\r\n|:-|-:|\r\n| 1 | 2 |\r\n"
)


@pytest.fixture
def people(app):
    return {
        "author": factories.UserFactory(name="Ada Author"),
        "newcomer": factories.UserFactory(name="Nina New", status=USER.NEW),
    }


def preview(browser, body, **data):
    return browser.submit(PATH, {"body": body, **data}, token_from=EDITOR)


def test_anonymous_visitors_are_refused(client, browser):
    response = browser.submit(PATH, {"body": "Hello"}, token_from="/users/login/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/")


def test_an_unconfirmed_account_is_refused(client, auth, browser, people):
    sign_in(auth, people, "newcomer")
    response = browser.submit(PATH, {"body": "Hello"}, token_from="/users/me/")
    assert response.status_code == 403


def test_a_csrf_token_is_required(client, auth, people):
    sign_in(auth, people, "author")
    response = client.post(PATH, data={"body": "Hello"})
    assert response.status_code == 400
    assert "<strong>" not in text(response)


def test_get_shows_no_preview(client, auth, people):
    sign_in(auth, people, "author")
    assert client.get(PATH).status_code in (404, 405)


def test_the_fragment_is_what_saving_produces(client, auth, browser, people):
    sign_in(auth, people, "author")
    response = preview(browser, BODY)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    fragment = text(response)
    assert "<strong>bold</strong>" in fragment
    assert "<html" not in fragment  # a fragment, not a page
    saved = browser.submit(EDITOR, {"title": "Saved", "body": BODY, "action": "draft"})
    assert saved.status_code == 302
    post = db.session.execute(db.select(Post)).scalar_one()
    assert post.status == POST.DRAFT
    assert fragment == post.body_html


def test_script_and_raw_html_are_never_rendered(client, auth, browser, people):
    sign_in(auth, people, "author")
    fragment = text(
        preview(
            browser,
            "Hi <script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
            "[click](javascript:alert(3))",
        )
    )
    assert "<script" not in fragment
    assert "<img" not in fragment
    assert 'href="javascript' not in fragment
    assert "&lt;script&gt;" in fragment  # shown as text, as the published post shows it


def test_a_blank_body_previews_as_nothing(client, auth, browser, people):
    sign_in(auth, people, "author")
    response = preview(browser, "  \n ")
    assert response.status_code == 200
    assert text(response) == ""


def test_a_body_too_long_to_save_is_refused_with_the_reason(client, auth, browser, people):
    sign_in(auth, people, "author")
    response = preview(browser, "a" * (POST.BODY_MAX_LENGTH + 1))
    assert response.status_code == 422
    assert text(response).startswith('<p class="error">A post has at most')


def test_a_request_larger_than_any_form_is_refused_unread(app, client, auth, browser, people):
    sign_in(auth, people, "author")
    size = app.config["MAX_FORM_MEMORY_SIZE"]
    response = preview(browser, "a" * (size + 1))
    assert response.status_code == 413


def test_previews_are_rate_limited_per_account(app, client, auth, browser, people):
    app.config["POST_PREVIEW_LIMIT"] = "2 per minute"
    sign_in(auth, people, "author")
    assert preview(browser, "one").status_code == 200
    assert preview(browser, "two").status_code == 200
    assert preview(browser, "three").status_code == 429
    # A preview spends nothing of the saves' own limit.
    saved = browser.submit(EDITOR, {"title": "Still saved", "body": "x", "action": "draft"})
    assert saved.status_code == 302


def test_the_editor_carries_the_live_preview_hidden_until_script_shows_it(client, auth, people):
    sign_in(auth, people, "author")
    page = text(client.get(EDITOR))
    assert re.search(r'<script src="/static/js/preview\.[0-9a-f]{12}\.js" defer>', page)
    region = page[page.index('<section class="live-preview"') :]
    region = region[: region.index(">")]
    assert " hidden" in region
    assert f'data-preview-url="{PATH}"' in region
    assert 'aria-live="polite"' in page
    # The server-side Preview button stays for readers without script.
    assert 'name="action" value="preview"' in page
