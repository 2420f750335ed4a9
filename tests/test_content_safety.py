"""Hostile content: shown inert everywhere, or refused with a clear message and nothing stored."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from portal.comments import constants as COMMENT
from portal.comments import services as comment_services
from portal.comments.models import Comment
from portal.extensions import db
from portal.posts import services as post_services
from portal.posts.models import Post
from portal.users.models import User
from tests import factories
from tests.helpers import deliver
from tests.helpers import text_of

SLUG = "the-post"

# Markdown and HTML that try to run script, by every route we know of.
HOSTILE_BODIES = {
    "script-tag": "<script>alert(1)</script>",
    "script-split": "<scr<script>ipt>alert(1)</script>",
    "img-onerror": '<img src=x onerror="alert(1)">',
    "svg-onload": "<svg onload=alert(1)>",
    "iframe": '<iframe src="https://evil.example/"></iframe>',
    "style": "<style>body { display: none }</style>",
    "div-onclick": '<div onclick="alert(1)">click</div>',
    "html-js-link": '<a href="javascript:alert(1)">click</a>',
    "md-js-link": "[click](javascript:alert(1))",
    "md-js-link-case": "[click](JaVaScRiPt:alert(1))",
    "md-js-link-entity": "[click](&#106;avascript:alert(1))",
    "md-js-link-hex-entity": "[click](&#x6A;avascript&#x3A;alert(1))",
    "md-js-link-angle": "[click](<javascript:alert(1)>)",
    "md-js-link-tab": "[click](<java\tscript:alert(1)>)",
    "md-js-link-encoded": "[click](javascript%3Aalert(1))",
    "md-vbscript-link": "[click](vbscript:msgbox(1))",
    "md-data-link": "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "md-data-link-case": "[click](DATA:text/html,<script>alert(1)</script>)",
    "md-ref-js": "[click][evil]\n\n[evil]: javascript:alert(1)",
    "md-ref-data": "[click][evil]\n\n[evil]: data:text/html,<script>alert(1)</script>",
    "md-ref-js-title": '[click][evil]\n\n[evil]: javascript:alert(1) "title"',
    "autolink-js": "<javascript:alert(1)>",
    "autolink-data": "<data:text/html,alert(1)>",
    "md-image": "![pixel](https://evil.example/track.png)",
    "md-image-js": "![pixel](javascript:alert(1))",
    "md-title-breakout": '[click](https://example.org "x\\" onmouseover=\\"alert(1)")',
    "md-link-text-html": "[<img src=x onerror=alert(1)>](https://example.org)",
    "code-span": "`<script>alert(1)</script>`",
    "fenced-code": "```html\n<script>alert(1)</script>\n```",
    "html-comment": "<!-- <script>alert(1)</script> -->",
    "mailto-ok": "[write](mailto:someone@example.org)",
}

SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:")
# What a browser reads as a URL's scheme; anything else makes the URL relative.
SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
URL_ATTRIBUTES = set("href src action formaction xlink:href data poster background".split())
ACTIVE_TAGS = set("script iframe frame object embed img svg math style base".split())
POST_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li",
    "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul", "del", "s",
}  # fmt: skip
COMMENT_TAGS = {"a", "br", "code", "em", "p", "strong"}
OWN_SCRIPT = re.compile(r"/static/js/[a-z_-]+(\.[0-9a-f]+)?\.js")
TEMPLATE_TRAPS = ["{{7*7}}", "{{ config }}", "{% if 1 %}yes{% endif %}"]


# -- helpers -------------------------------------------------------------------


class Tags(HTMLParser):
    """Every start tag of a document with its attributes, as a browser would read them."""

    def __init__(self, source):
        super().__init__(convert_charrefs=True)
        self.found = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, [(name, value or "") for name, value in attrs]))

    handle_startendtag = handle_starttag


def unmarked(page):
    """A page without the search's highlights, which wrap each matched word in <mark>."""
    return re.sub(r"</?mark>", "", page)


def squash(url):
    """A URL the way a browser reads its scheme: no whitespace or control characters, lower case."""
    return "".join(char for char in url if ord(char) > 32 and ord(char) != 127).lower()


def own_element(tag, attrs):
    """Portal's own: a script file under /static/js/ running nothing inline, or the icon."""
    names = dict(attrs)
    if tag == "script":
        return OWN_SCRIPT.fullmatch(names.get("src", "")) is not None and set(names) <= {
            "src",
            "defer",
            "nonce",
        }
    return (
        tag == "svg"
        and names.get("class") == "theme-toggle-icon"
        and not any(name.startswith("on") for name in names)
    )


def assert_inert(source, where=""):
    """No tag in ``source`` can run script: no active elements, handlers, or script URLs.

    The pages' own script files and icon are the exception; the sanitiser drops every
    ``<script>`` and ``<svg>`` a body holds, so these cannot come from content.
    """
    for tag, attrs in Tags(source).found:
        if own_element(tag, attrs):
            continue
        assert tag not in ACTIVE_TAGS, f"<{tag}> in {where}"
        for name, value in attrs:
            assert not name.startswith("on"), f"{name}= on <{tag}> in {where}"
            if name in URL_ATTRIBUTES:
                assert not squash(value).startswith(SCRIPT_SCHEMES), f"{name}={value!r} in {where}"


def assert_allowed(fragment, tags):
    """Stored HTML holds only allow-listed tags and attributes; links get rel=nofollow noopener."""
    assert_inert(fragment, "stored HTML")
    for tag, attrs in Tags(fragment).found:
        assert tag in tags, f"<{tag}> is not on the allow-list"
        names = dict(attrs)
        allowed = {"a": {"href", "title", "rel"}, "td": {"align"}, "th": {"align"}}.get(tag, set())
        assert set(names) <= allowed, f"<{tag} {names}>"
        if tag == "a":
            assert names.get("rel") == "nofollow noopener"
            href = squash(names.get("href", ""))
            scheme = SCHEME.match(href)
            # Either one of the allowed schemes, or none at all (a relative link).
            assert scheme is None or scheme.group(1) in {"http", "https", "mailto"}, href


def text(response):
    return response.get_data(as_text=True)


def posts():
    db.session.expire_all()
    return db.session.execute(select(Post)).scalars().all()


def comments():
    db.session.expire_all()
    return db.session.execute(select(Comment)).scalars().all()


@pytest.fixture
def writer(client, auth):
    """An ACTIVE account, signed in."""
    person = factories.UserFactory(name="Wendy Writer", email="writer@example.com", handle="wendy")
    auth.login(person.email)
    return person


@pytest.fixture
def staff():
    return factories.StaffFactory(name="Sam Staff", email="staff@example.com")


def public_pages(slug):
    return [f"/posts/{slug}/", "/posts/", "/", "/users/wendy/"]


# -- post bodies ---------------------------------------------------------------


# The payloads that also go the whole way through the pages; every one is
# checked where it is turned into HTML, which is where the pages get it from.
THROUGH_THE_PAGES = ["script-split", "img-onerror", "md-js-link-entity", "md-ref-js", "mailto-ok"]


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_post_body_is_kept_as_written_and_stored_inert(app, body):
    post = post_services.create_post(factories.UserFactory(), "Hostile", body, publish=True)
    assert post.body == body
    assert_allowed(post.body_html, POST_TAGS)


@pytest.mark.parametrize("name", THROUGH_THE_PAGES)
def test_hostile_post_body_is_stored_and_shown_inert(client, auth, browser, writer, name):
    body = HOSTILE_BODIES[name]
    response = browser.submit(
        "/posts/new/", {"title": "Hostile", "body": body, "action": "publish"}
    )
    assert response.status_code == 302
    [post] = posts()
    assert post.body == body  # the source is kept as written
    assert_allowed(post.body_html, POST_TAGS)
    for path in [f"/posts/{post.slug}/", f"/posts/{post.slug}/edit/", "/posts/", "/users/wendy/"]:
        page = client.get(path)
        assert page.status_code == 200
        assert_inert(text(page), f"{path} as its author")
    auth.logout()
    page = client.get(f"/posts/{post.slug}/")
    assert page.status_code == 200
    assert_inert(text(page), "the post page, anonymous")


def test_raw_html_is_shown_as_text(client, browser, writer):
    browser.submit(
        "/posts/new/",
        {"title": "Raw", "body": "<script>alert(1)</script>", "action": "publish"},
    )
    page = text(client.get("/posts/raw/"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_safe_markdown_still_works(client, browser, writer):
    body = (
        "# Heading\n\n**bold** *italic* ~~gone~~ `code`\n\n"
        "- one\n- two\n\n> quoted\n\n| a | b |\n|:--|--:|\n| 1 | 2 |\n\n"
        "[site](https://example.org) <https://example.com/x> [ref][r]\n\n[r]: https://example.net"
    )
    browser.submit("/posts/new/", {"title": "Rich", "body": body, "action": "publish"})
    [post] = posts()
    stored = post.body_html
    for piece in [
        "<h1>Heading</h1>",
        "<strong>bold</strong>",
        "<em>italic</em>",
        "<s>gone</s>",
        "<code>code</code>",
        "<li>one</li>",
        "<blockquote>",
        "<table>",
        '<td align="right">2</td>',
        '<a href="https://example.org" rel="nofollow noopener">site</a>',
        '<a href="https://example.com/x" rel="nofollow noopener">https://example.com/x</a>',
        '<a href="https://example.net" rel="nofollow noopener">ref</a>',
    ]:
        assert piece in stored, piece
    assert stored in text(client.get("/posts/rich/"))
    assert_allowed(stored, POST_TAGS)


@pytest.mark.parametrize(
    "body",
    ["[click](javascript:alert(1))", "<javascript:alert(1)>", "[c][e]\n\n[e]: data:text/html,x"],
)
def test_script_links_do_not_become_links(browser, writer, body):
    browser.submit("/posts/new/", {"title": "Links", "body": body, "action": "publish"})
    [post] = posts()
    assert "<a " not in post.body_html


# -- comments ------------------------------------------------------------------


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_comment_is_kept_as_written_and_stored_inert(app, body):
    post = factories.PostFactory()
    comment = comment_services.add_comment(post, factories.UserFactory(), body)
    assert comment.body == body.strip()
    assert_allowed(comment.body_html, COMMENT_TAGS)


@pytest.mark.parametrize("name", THROUGH_THE_PAGES)
def test_hostile_comment_is_stored_and_shown_inert(client, auth, browser, writer, staff, name):
    body = HOSTILE_BODIES[name]
    factories.PostFactory(author=writer, slug=SLUG)
    response = browser.submit(f"/posts/{SLUG}/comments/", {"body": body})
    assert response.status_code == 302
    [comment] = comments()
    assert comment.body == body.strip()
    assert_allowed(comment.body_html, COMMENT_TAGS)
    # Pending: its author sees it on the post page and on the edit and delete pages.
    for path in [
        f"/posts/{SLUG}/",
        f"/comments/{comment.id}/edit/",
        f"/comments/{comment.id}/delete/",
    ]:
        page = client.get(path)
        assert page.status_code == 200
        assert_inert(text(page), path)
    comment_services.moderate([comment], COMMENT.APPROVED, actor=db.session.get(User, staff.id))
    auth.logout()
    page = text(client.get(f"/posts/{SLUG}/"))
    assert f'id="comment-{comment.id}"' in page
    assert_inert(page, "post page, anonymous")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("# Heading", "<p># Heading</p>\n"),
        ("> quoted", "<p>&gt; quoted</p>\n"),
        ("- item", "<p>- item</p>\n"),
        ("---", "<p>---</p>\n"),
        (
            "| a | b |\n|---|---|",
            "<p>| a | b |<br>\n|---|---|</p>\n",
        ),
        (
            "![pixel](https://evil.example/track.png)",
            '<p>!<a href="https://evil.example/track.png" rel="nofollow noopener">pixel</a></p>\n',
        ),
        (
            "[ref][r]\n\n[r]: https://example.org",
            "<p>[ref][r]</p>\n<p>[r]: https://example.org</p>\n",
        ),
    ],
    ids=["heading", "quote", "list", "rule", "table", "image", "reference"],
)
def test_comments_render_only_the_small_subset(browser, writer, body, expected):
    factories.PostFactory(slug=SLUG)
    browser.submit(f"/posts/{SLUG}/comments/", {"body": body})
    [comment] = comments()
    assert_allowed(comment.body_html, COMMENT_TAGS)
    assert comment.body_html == expected


def test_comment_links_and_emphasis_work(browser, writer):
    factories.PostFactory(slug=SLUG)
    browser.submit(
        f"/posts/{SLUG}/comments/",
        {"body": "*so* **true** `x` [see](https://example.org) <https://example.com>\nnext line"},
    )
    [comment] = comments()
    assert comment.body_html == (
        "<p><em>so</em> <strong>true</strong> <code>x</code> "
        '<a href="https://example.org" rel="nofollow noopener">see</a> '
        '<a href="https://example.com" rel="nofollow noopener">https://example.com</a><br>\n'
        "next line</p>\n"
    )


# -- titles, names and comments with template syntax -----------------------------


@pytest.mark.parametrize("trap", TEMPLATE_TRAPS)
def test_template_syntax_in_titles_shows_literally(client, auth, browser, writer, trap):
    title = f"Sum {trap} end"
    response = browser.submit(
        "/posts/new/", {"title": title, "body": f"Body {trap} here", "action": "publish"}
    )
    [post] = posts()
    assert post.title == title
    assert response.headers["Location"] == f"/posts/{post.slug}/"
    shown = html.escape(title, quote=False)
    for path in [
        *public_pages(post.slug),
        f"/posts/{post.slug}/edit/",
        f"/posts/{post.slug}/delete/",
    ]:
        page = text(client.get(path))
        assert shown in page or html.escape(title) in page, path
        assert "Sum 49 end" not in page, path
        assert "Sum yes end" not in page, path
    page = text(client.get(f"/posts/{post.slug}/"))
    assert f"<title>{shown} · " in page
    assert f"<p>Body {html.escape(trap, quote=False)} here</p>" in page
    assert "Body 49 here" not in page
    search = text(client.get("/posts/", query_string={"q": trap}))
    assert f'value="{html.escape(trap)}"' in search  # the query in the box, as text
    assert shown in unmarked(search)
    assert "Sum 49 end" not in search


@pytest.mark.parametrize("trap", TEMPLATE_TRAPS)
def test_template_syntax_in_names_and_comments_shows_literally(
    app, client, auth, browser, staff, trap
):
    author = factories.UserFactory(name=f"Ann {trap} Lee", email="ann@example.com", handle="wendy")
    commenter = factories.UserFactory(name=f"Cal {trap} Poe", email="cal@example.com")
    post = factories.PostFactory(author=author, title=f"Title {trap}", slug=SLUG)
    comment = factories.CommentFactory(post=post, author=commenter, body=f"Said {trap} so")
    comment_services.moderate([comment], COMMENT.APPROVED, actor=db.session.get(User, staff.id))
    for path in public_pages(SLUG):
        page = text(client.get(path))
        assert html.escape(f"Ann {trap} Lee", quote=False) in page, path
        assert "Ann 49 Lee" not in page and "Ann yes Lee" not in page, path
    page = text(client.get(f"/posts/{SLUG}/"))
    assert html.escape(f"Cal {trap} Poe", quote=False) in page
    assert f"<p>Said {html.escape(trap, quote=False)} so</p>" in page
    assert "Said 49 so" not in page

    [message] = deliver(app)
    assert message["Subject"] == f"New comment on “Title {trap}”"
    body = text_of(message)
    assert f"Hello Ann {trap} Lee," in body
    assert f"Cal {trap} Poe commented on your post “Title {trap}”" in body
    assert f"Said {trap} so" in body
    assert "49" not in body.split("http", 1)[0]


def test_markup_in_titles_and_names_is_escaped_everywhere(app, client, auth, browser, staff):
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    author = factories.UserFactory(name=f"Eve {evil}"[:80], email="eve@example.com", handle="wendy")
    post = factories.PostFactory(author=author, title=f"Title {evil}", slug=SLUG)
    comment = factories.CommentFactory(post=post, author=author, body="Hi")
    theirs = factories.CommentFactory(
        post=post, author=factories.UserFactory(name=f"Mal {evil}"[:80]), body="Yo"
    )
    comment_services.moderate(
        [comment, theirs], COMMENT.APPROVED, actor=db.session.get(User, staff.id)
    )
    for path in public_pages(SLUG) + ["/posts/?q=script"]:
        response = client.get(path)
        assert response.status_code == 200
        page = text(response)
        assert_inert(page, path)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in unmarked(page), path
    auth.login("eve@example.com")
    for path in [
        f"/posts/{SLUG}/edit/",
        f"/posts/{SLUG}/delete/",
        f"/comments/{comment.id}/delete/",
    ]:
        page = text(client.get(path))
        assert_inert(page, path)
    message = deliver(app)[0]
    assert_inert(message.get_body(preferencelist=("html",)).get_content(), "email")


def test_search_query_is_reflected_as_text(client):
    hostile = '"><script>alert(1)</script>'
    page = text(client.get("/posts/", query_string={"q": hostile}))
    assert_inert(page, "search")
    assert "&lt;script&gt;" in page


# -- refused input: a clear message, nothing stored ----------------------------

TITLE_REQUIRED = "A title is required."
BODY_REQUIRED = "Write something in the body."
CONTROL = "A title cannot contain control characters or line breaks."


@pytest.mark.parametrize(
    ("title", "body", "message"),
    [
        ("", "Body", TITLE_REQUIRED),
        ("   ", "Body", TITLE_REQUIRED),
        ("\t \u00a0", "Body", TITLE_REQUIRED),
        ("T" * 201, "Body", "A title has at most 200 characters."),
        ("Title", "", BODY_REQUIRED),
        ("Title", "   ", BODY_REQUIRED),
        ("Title", " \r\n\t\r\n ", BODY_REQUIRED),
        ("Title", "x" * 100_001, "A post has at most 100,000 characters."),
        ("Title", "nul \x00 byte", "The body contains a character that is not allowed."),
        ("nul \x00 byte", "Body", CONTROL),
        ("bell \x07", "Body", CONTROL),
        ("escape \x1b[2J", "Body", CONTROL),
        ("line\nbreak", "Body", CONTROL),
        ("carriage\rreturn", "Body", CONTROL),
        ("tab\there", "Body", CONTROL),
        ("delete \x7f", "Body", CONTROL),
        ("next \x85 line", "Body", CONTROL),
        ("c1 csi \x9b31m", "Body", CONTROL),
    ],
    ids=[
        "empty-title",
        "blank-title",
        "whitespace-and-tab-title",
        "overlong-title",
        "empty-body",
        "blank-body",
        "whitespace-lines-body",
        "overlong-body",
        "nul-in-body",
        "nul-in-title",
        "bell-in-title",
        "escape-in-title",
        "newline-in-title",
        "cr-in-title",
        "tab-in-title",
        "del-in-title",
        "c1-nel-in-title",
        "c1-csi-in-title",
    ],
)
def test_bad_posts_are_refused_with_a_message_and_nothing_stored(
    client, browser, writer, title, body, message
):
    response = browser.submit("/posts/new/", {"title": title, "body": body, "action": "publish"})
    assert response.status_code == 200
    page = text(response)
    assert html.escape(message, quote=False) in page or message in page
    assert posts() == []

    post = factories.PostFactory(author=writer, title="Kept", slug=SLUG, body="Kept body")
    response = browser.submit(
        f"/posts/{SLUG}/edit/", {"title": title, "body": body, "action": "save"}
    )
    assert response.status_code == 200
    assert message in text(response)
    [row] = posts()
    assert (row.id, row.title, row.body, row.slug) == (post.id, "Kept", "Kept body", SLUG)


def test_title_at_the_limit_is_accepted(client, browser, writer):
    title = "T" * 200
    response = browser.submit("/posts/new/", {"title": title, "body": "Body", "action": "publish"})
    assert response.status_code == 302
    [post] = posts()
    assert post.title == title


def test_title_is_trimmed(browser, writer):
    browser.submit("/posts/new/", {"title": "  Spaced out  ", "body": "Body", "action": "publish"})
    [post] = posts()
    assert post.title == "Spaced out"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "Write something in your comment."),
        ("   \r\n  ", "Write something in your comment."),
        ("x" * 5_001, "A comment has at most 5,000 characters."),
        ("nul \x00 byte", "The comment contains a character that is not allowed."),
    ],
    ids=["empty", "blank", "overlong", "nul"],
)
def test_bad_comments_are_refused_with_a_message_and_nothing_stored(
    client, browser, writer, body, message
):
    post = factories.PostFactory(slug=SLUG)
    response = browser.submit(f"/posts/{SLUG}/comments/", {"body": body})
    assert response.status_code == 200
    assert message in text(response)
    assert comments() == []
    db.session.expire_all()
    assert db.session.get(Post, post.id).comment_count == 0

    pending = factories.CommentFactory(post=post, author=writer, body="Kept")
    response = browser.submit(f"/comments/{pending.id}/edit/", {"body": body})
    assert response.status_code == 200
    assert message in text(response)
    [row] = comments()
    assert row.body == "Kept"


def test_comment_at_the_limit_is_accepted(browser, writer):
    factories.PostFactory(slug=SLUG)
    response = browser.submit(f"/posts/{SLUG}/comments/", {"body": "x" * 5_000})
    assert response.status_code == 302
    [comment] = comments()
    assert len(comment.body) == 5_000
