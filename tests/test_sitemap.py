"""sitemap.xml (sitemaps.org): an index of parts, each part bounded; robots.txt points at it."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest

from portal.posts import feeds
from tests import factories
from tests.helpers import statements
from tests.helpers import text

S = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
BASE = "https://portal.example.org"
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def base_url(app):
    app.config["PORTAL_BASE_URL"] = BASE


def parse(response, root_tag):
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(response.data)
    assert root.tag == f"{S}{root_tag}"
    return root


def parts(client):
    root = parse(client.get("/sitemap.xml"), "sitemapindex")
    locs = [item.findtext(f"{S}loc") for item in root.findall(f"{S}sitemap")]
    assert all(loc.startswith(BASE + "/sitemaps/") for loc in locs)
    return [loc.removeprefix(BASE) for loc in locs]


def urls(client, path):
    root = parse(client.get(path), "urlset")
    return {item.findtext(f"{S}loc"): item.findtext(f"{S}lastmod") for item in root}


def test_the_index_lists_the_parts_that_hold_something(client):
    assert parts(client) == ["/sitemaps/pages-0.xml"]
    factories.PostFactory()
    assert parts(client) == [
        "/sitemaps/pages-0.xml",
        "/sitemaps/posts-0.xml",
        "/sitemaps/people-0.xml",
    ]


def test_the_parts_list_home_public_posts_and_their_authors(client):
    ann = factories.UserFactory(handle="ann")
    factories.UserFactory(handle="lurker")  # has published nothing
    published = factories.PostFactory(
        author=ann, slug="out", published_at=NOW - timedelta(days=2), updated_at=NOW
    )
    factories.DraftFactory(author=ann, slug="draft")
    factories.HiddenPostFactory(author=ann, slug="hidden")
    factories.PostFactory(author=ann, slug="later", published_at=NOW + timedelta(days=1))

    assert set(urls(client, "/sitemaps/pages-0.xml")) == {f"{BASE}/", f"{BASE}/posts/"}
    posts = urls(client, "/sitemaps/posts-0.xml")
    assert list(posts) == [f"{BASE}/posts/out/"]
    assert posts[f"{BASE}/posts/out/"] == published.updated_at.replace(microsecond=0).isoformat()
    assert list(urls(client, "/sitemaps/people-0.xml")) == [f"{BASE}/users/ann/"]


def test_a_part_holds_one_range_of_ids(app, client, monkeypatch):
    monkeypatch.setattr(feeds, "SITEMAP_CHUNK", 2)
    made = [factories.PostFactory(slug=f"post-{number}") for number in range(5)]
    assert [path for path in parts(client) if "/posts-" in path] == [
        f"/sitemaps/posts-{chunk}.xml" for chunk in sorted({post.id // 2 for post in made})
    ]
    seen = []
    for path in parts(client):
        if "/posts-" in path:
            chunk = urls(client, path)
            assert len(chunk) <= 2
            seen += chunk
    assert sorted(seen) == sorted(f"{BASE}/posts/post-{number}/" for number in range(5))


def test_a_part_runs_one_query_whatever_its_size(client):
    factories.PostFactory()
    with statements() as few:
        client.get("/sitemaps/posts-0.xml")
    for _ in range(6):
        factories.PostFactory()
    with statements() as more:
        client.get("/sitemaps/posts-0.xml")
    assert len(few) == len(more)


@pytest.mark.parametrize(
    "path",
    [
        "/sitemaps/posts-7.xml",
        "/sitemaps/pages-1.xml",
        "/sitemaps/other-0.xml",
        "/sitemaps/posts-x.xml",
        "/sitemaps/posts--1.xml",
        "/sitemaps/posts-99999999999999999999999.xml",
    ],
)
def test_parts_that_do_not_exist_are_not_found(client, path):
    factories.PostFactory()
    assert client.get(path).status_code == 404


def test_the_sitemap_answers_304_when_unchanged(client):
    factories.PostFactory()
    first = client.get("/sitemaps/posts-0.xml")
    again = client.get("/sitemaps/posts-0.xml", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_robots_txt_points_at_the_sitemap(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert f"Sitemap: {BASE}/sitemap.xml" in text(response).splitlines()
    assert "Disallow: /admin/" in text(response).splitlines()
