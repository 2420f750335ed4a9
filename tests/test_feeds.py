"""Atom feeds (RFC 4287), parsed: the site's and each author's; link tags that lead to them."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest

from tests import factories
from tests.helpers import text

A = "{http://www.w3.org/2005/Atom}"
BASE = "https://portal.example.org"
NOW = datetime.now(UTC).replace(microsecond=0)
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@pytest.fixture(autouse=True)
def base_url(app):
    app.config["PORTAL_BASE_URL"] = BASE


def parse(response):
    """The feed's root element, after the checks every Atom feed must pass."""
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(response.data)
    assert root.tag == f"{A}feed"
    for element in [root, *root.findall(f"{A}entry")]:
        # RFC 4287 4.1.1 and 4.1.2: exactly one id, title and updated each.
        for name in ("id", "title", "updated"):
            assert len(element.findall(f"{A}{name}")) == 1, (element.tag, name)
        assert RFC3339.fullmatch(element.findtext(f"{A}updated"))
        assert element.findtext(f"{A}id").startswith(("https://", "tag:"))
    for entry in root.findall(f"{A}entry"):
        assert [link.get("rel") for link in entry.findall(f"{A}link")] == ["alternate"]
        assert entry.find(f"{A}author/{A}name").text
        assert RFC3339.fullmatch(entry.findtext(f"{A}published"))
    # Every link is absolute, on the configured site.
    for link in root.iter(f"{A}link"):
        assert link.get("href").startswith(BASE + "/"), link.get("href")
    for uri in root.iter(f"{A}uri"):
        assert uri.text.startswith(BASE + "/")
    return root


def links(element):
    return {link.get("rel"): link.get("href") for link in element.findall(f"{A}link")}


def entry_titles(root):
    return [entry.findtext(f"{A}title") for entry in root.findall(f"{A}entry")]


def test_the_site_feed_lists_the_newest_published_posts(app, client):
    app.config["FEED_ENTRIES"] = 3
    author = factories.UserFactory(name="Ann Writer", handle="ann")
    for number in range(5):
        factories.PostFactory(
            author=author,
            title=f"Post {number}",
            slug=f"post-{number}",
            published_at=NOW - timedelta(hours=number),
        )
    factories.DraftFactory(title="A draft")
    factories.HiddenPostFactory(title="Hidden one")
    root = parse(client.get("/feed.xml"))
    assert entry_titles(root) == ["Post 0", "Post 1", "Post 2"]
    assert root.findtext(f"{A}id") == f"{BASE}/feed.xml"
    assert links(root) == {"self": f"{BASE}/feed.xml", "alternate": f"{BASE}/"}
    entry = root.find(f"{A}entry")
    assert links(entry) == {"alternate": f"{BASE}/posts/post-0/"}
    assert entry.findtext(f"{A}author/{A}name") == "Ann Writer"
    assert entry.findtext(f"{A}author/{A}uri") == f"{BASE}/users/ann/"
    assert re.fullmatch(
        r"tag:portal\.example\.org,\d{4}-\d\d-\d\d:posts/\d+", entry.findtext(f"{A}id")
    )
    # The feed changed when the last of its entries did.
    updated = [each.findtext(f"{A}updated") for each in root.findall(f"{A}entry")]
    assert root.findtext(f"{A}updated") == max(updated)


def test_entry_ids_stay_the_same_when_a_post_is_edited(client):
    post = factories.PostFactory(title="Before")
    first = parse(client.get("/feed.xml")).find(f"{A}entry").findtext(f"{A}id")
    post.title = "After"
    post.updated_at = NOW + timedelta(seconds=5)
    factories.db.session.commit()
    entry = parse(client.get("/feed.xml")).find(f"{A}entry")
    assert entry.findtext(f"{A}title") == "After"
    assert entry.findtext(f"{A}id") == first


def test_the_content_is_the_sanitised_body_as_escaped_html(client):
    factories.PostFactory(body="Some **bold** <script>alert(1)</script>\x0b text")
    response = client.get("/feed.xml")
    content = parse(response).find(f"{A}entry/{A}content")
    assert content.get("type") == "html"
    assert content.text.startswith("<p>Some <strong>bold</strong> &lt;script&gt;")
    assert b"<script>" not in response.data and b"<strong>" not in response.data


def test_a_hostile_title_and_name_are_escaped(client):
    author = factories.UserFactory(name='Eve <b>&amp;</b> "quotes"')
    factories.PostFactory(author=author, title="</title><entry>&nbsp; ]]> <!-- x")
    response = client.get("/feed.xml")
    root = parse(response)
    assert entry_titles(root) == ["</title><entry>&nbsp; ]]> <!-- x"]
    assert root.findtext(f"{A}entry/{A}author/{A}name") == 'Eve <b>&amp;</b> "quotes"'
    assert len(root.findall(f"{A}entry")) == 1


def test_an_empty_feed_is_still_valid(client):
    root = parse(client.get("/feed.xml"))
    assert root.findall(f"{A}entry") == []
    assert root.findtext(f"{A}updated") == "1970-01-01T00:00:00+00:00"


def test_a_scheduled_post_appears_only_from_its_time(client):
    factories.PostFactory(title="Out now", published_at=NOW - timedelta(minutes=1))
    factories.PostFactory(title="Coming soon", published_at=NOW + timedelta(hours=2))
    assert entry_titles(parse(client.get("/feed.xml"))) == ["Out now"]


def test_links_come_from_the_configured_address_not_the_host_header(client):
    factories.PostFactory(slug="here")
    response = client.get("/feed.xml", headers={"Host": "evil.example.net"})
    assert b"evil.example.net" not in response.data


def test_an_unchanged_feed_answers_304(client):
    factories.PostFactory()
    first = client.get("/feed.xml")
    assert first.headers["Cache-Control"] in ("public, max-age=300", "max-age=300, public")
    etag = first.headers["ETag"]
    assert first.headers["Last-Modified"]
    again = client.get("/feed.xml", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    since = client.get("/feed.xml", headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    factories.PostFactory(title="A newer post")
    changed = client.get("/feed.xml", headers={"If-None-Match": etag})
    assert changed.status_code == 200


def test_an_author_feed_has_only_their_posts(client):
    ann = factories.UserFactory(name="Ann", handle="ann")
    factories.PostFactory(author=ann, title="By Ann")
    factories.PostFactory(title="By someone else")
    factories.DraftFactory(author=ann, title="Ann's draft")
    root = parse(client.get("/users/ann/feed.xml"))
    assert entry_titles(root) == ["By Ann"]
    assert links(root) == {
        "self": f"{BASE}/users/ann/feed.xml",
        "alternate": f"{BASE}/users/ann/",
    }
    assert root.findtext(f"{A}title").startswith("Ann · ")


def test_the_feed_of_nobody_is_not_found(client):
    assert client.get("/users/nobody-here/feed.xml").status_code == 404


def test_pages_point_to_their_feeds(client):
    factories.PostFactory(author=factories.UserFactory(handle="ann"), slug="one")
    site = '<link rel="alternate" type="application/atom+xml" title="Portal" href="/feed.xml">'
    for path in ("/", "/posts/", "/posts/one/", "/users/ann/"):
        assert site in text(client.get(path)), path
    profile = text(client.get("/users/ann/"))
    assert 'type="application/atom+xml" title="Person ' in profile
    assert 'href="/users/ann/feed.xml"' in profile


# -- link previews on a post page ------------------------------------------------------------


def meta(page, key):
    found = re.findall(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)">', page)
    assert len(found) == 1, (key, found)
    return found[0]


def test_a_post_page_carries_opengraph_and_a_canonical_link(client):
    author = factories.UserFactory(handle="ann")
    body = (
        "# Heading\n\nA *first* paragraph with [a link](https://example.com).\n\n" + "word " * 100
    )
    factories.PostFactory(author=author, slug="shared", title="Shared post", body=body)
    page = text(client.get("/posts/shared/", headers={"Host": "evil.example.net"}))
    assert f'<link rel="canonical" href="{BASE}/posts/shared/">' in page
    assert meta(page, "og:type") == "article"
    assert meta(page, "og:title") == "Shared post"
    assert meta(page, "og:url") == f"{BASE}/posts/shared/"
    assert meta(page, "og:site_name") == "Portal"
    assert meta(page, "article:author") == f"{BASE}/users/ann/"
    assert RFC3339.fullmatch(meta(page, "article:published_time"))
    description = meta(page, "og:description")
    assert description.startswith("Heading A first paragraph with a link. word word")
    assert description.endswith("…") and len(description) <= 200
    assert meta(page, "description") == description


def test_preview_metadata_is_escaped(client):
    factories.PostFactory(
        slug="hostile", title='"><script>x</script>', body='Quote " and <tag> & more'
    )
    page = text(client.get("/posts/hostile/"))
    assert meta(page, "og:title") == "&#34;&gt;&lt;script&gt;x&lt;/script&gt;"
    assert meta(page, "og:description") == "Quote &#34; and &lt;tag&gt; &amp; more"


def test_a_draft_has_no_preview_metadata(client, auth):
    author = factories.UserFactory(email="writer@example.com")
    factories.DraftFactory(author=author, slug="draft")
    auth.login(author.email)
    page = text(client.get("/posts/draft/"))
    assert "og:title" not in page and 'rel="canonical"' not in page
