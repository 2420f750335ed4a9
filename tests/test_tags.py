"""Tags through the pages: writing, tag page and filter, feed and sitemap, the back office."""

from __future__ import annotations

import html
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.posts.models import post_tags
from tests import factories
from tests.helpers import sign_in
from tests.helpers import statements
from tests.helpers import text

A = "{http://www.w3.org/2005/Atom}"
S = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
BASE = "https://portal.example.org"
NOW = datetime.now(UTC).replace(microsecond=0)
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@pytest.fixture(autouse=True)
def base_url(app):
    app.config["PORTAL_BASE_URL"] = BASE


@pytest.fixture
def people(app):
    return {
        "author": factories.UserFactory(name="Alice Author", email="author@example.com"),
        "other": factories.UserFactory(name="Oscar Other", email="other@example.com"),
        "staff": factories.StaffFactory(name="Sam Staff", email="staff@example.com"),
    }


def tag(name, slug=None):
    row = Tag(name=name, slug=slug or name.lower().replace(" ", "-"), created_at=NOW)
    db.session.add(row)
    db.session.commit()
    return row


def tagged_post(tags, **values):
    post = factories.PostFactory(**values)
    post.tags = list(tags)
    db.session.commit()
    return post


def tag_names(post_id):
    db.session.expire_all()
    return [t.name for t in db.session.get(Post, post_id).tags]


def all_tags():
    db.session.expire_all()
    return sorted(db.session.execute(select(Tag.name, Tag.slug)).all())


def titles_on(page):
    found = re.findall(r'<h2><a href="/posts/[^"]+/">(.*?)</a></h2>', page)
    return [html.unescape(re.sub(r"</?mark>", "", title)) for title in found]


def write(title="Tagged post", tags="", action="publish"):
    return {"title": title, "body": "Some *words*.", "tags": tags, "action": action}


# -- writing tags -----------------------------------------------------------------------


def test_a_writer_tags_a_new_post_and_the_missing_tags_are_created(client, auth, browser, people):
    tag("Python")
    sign_in(auth, people, "author")
    response = browser.submit(
        "/posts/new/", write(tags=" python ,Night  trains, #Crème brûlée, python, ,")
    )
    assert response.headers["Location"] == "/posts/tagged-post/"
    [post] = db.session.execute(select(Post)).scalars().all()
    # Tidied, the existing tag reused whatever its case, each once, shown by name.
    assert tag_names(post.id) == ["Crème brûlée", "Night trains", "Python"]
    assert all_tags() == [
        ("Crème brûlée", "creme-brulee"),
        ("Night trains", "night-trains"),
        ("Python", "python"),
    ]
    page = text(client.get("/posts/tagged-post/"))
    assert '<a href="/tags/python/" rel="tag">Python</a>' in page
    assert '<a href="/tags/creme-brulee/" rel="tag">Crème brûlée</a>' in page


def test_the_editor_shows_the_field_with_its_hint_and_the_post_tags(client, auth, people):
    post = tagged_post([tag("Travel"), tag("Rail")], author=people["author"], slug="mine")
    sign_in(auth, people, "author")
    page = text(client.get("/posts/new/"))
    assert 'name="tags"' in page
    assert "Separate tags with commas" in page
    page = text(client.get(f"/posts/{post.slug}/edit/"))
    assert re.search(r'name="tags"[^>]*value="Rail, Travel"', page), page


def test_editing_replaces_the_tags_and_leaves_the_others_alone(client, auth, browser, people):
    post = tagged_post([tag("Travel"), tag("Rail")], author=people["author"], slug="mine")
    sign_in(auth, people, "author")
    response = browser.submit(
        "/posts/mine/edit/", write(title="Mine", tags="rail, Food", action="save")
    )
    assert response.status_code == 302
    assert tag_names(post.id) == ["Food", "Rail"]
    # The tag nobody carries now stays, for staff to delete if they wish.
    assert [name for name, _slug in all_tags()] == ["Food", "Rail", "Travel"]

    # Emptied, the post carries none.
    browser.submit("/posts/mine/edit/", write(title="Mine", tags="", action="save"))
    assert tag_names(post.id) == []


def test_a_form_without_the_field_keeps_the_tags(client, auth, browser, people):
    post = tagged_post([tag("Travel")], author=people["author"], slug="mine")
    sign_in(auth, people, "author")
    data = {"title": "Mine", "body": "New body.", "action": "save"}
    assert browser.submit("/posts/mine/edit/", data).status_code == 302
    assert tag_names(post.id) == ["Travel"]


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ("a, b, c, d, e, f", "A post can have at most 5 tags; you gave 6."),
        ("x" * 41, "A tag has at most 40 characters"),
        ("ok, !!!", "A tag needs at least one letter or digit: “!!!”."),
        ("bad\x07tag", "A tag cannot contain control characters."),
    ],
)
def test_bad_tags_are_refused_and_change_nothing(client, auth, browser, people, tags, message):
    post = tagged_post([tag("Travel")], author=people["author"], slug="mine", title="Mine")
    sign_in(auth, people, "author")

    response = browser.submit("/posts/new/", write(title="Refused", tags=tags))
    assert response.status_code == 200
    assert message in html.unescape(text(response))
    response = browser.submit("/posts/mine/edit/", write(title="Changed", tags=tags, action="save"))
    assert response.status_code == 200
    assert message in html.unescape(text(response))

    db.session.expire_all()
    assert [p.title for p in db.session.execute(select(Post)).scalars()] == ["Mine"]
    assert tag_names(post.id) == ["Travel"]
    assert all_tags() == [("Travel", "travel")]


def test_the_limit_is_configured(app, client, auth, browser, people):
    app.config["POST_MAX_TAGS"] = 2
    sign_in(auth, people, "author")
    response = browser.submit("/posts/new/", write(tags="a, b, c"))
    assert "A post can have at most 2 tags; you gave 3." in html.unescape(text(response))
    assert browser.submit("/posts/new/", write(tags="a, b, A")).status_code == 302


def test_equal_slugs_get_unique_ones_and_case_makes_no_new_tag(client, auth, browser, people):
    sign_in(auth, people, "author")
    browser.submit("/posts/new/", write(title="One", tags="C++"))
    browser.submit("/posts/new/", write(title="Two", tags="C#, c++"))
    assert all_tags() == [("C#", "c-2"), ("C++", "c")]


# -- the tag page and the filter ------------------------------------------------------------


@pytest.fixture
def shelf(people):
    """Published, scheduled, draft, pending and hidden posts, some tagged "Rail"."""
    rail, food = tag("Rail"), tag("Food")
    author = people["author"]
    for number in range(3):
        tagged_post(
            [rail],
            author=author,
            title=f"Rail {number}",
            published_at=NOW - timedelta(hours=number + 1),
        )
    tagged_post([food], author=author, title="Food only")
    tagged_post(
        [rail, food], author=author, title="Rail and food", published_at=NOW - timedelta(days=1)
    )
    tagged_post([rail], author=author, title="Scheduled rail", published_at=NOW + timedelta(days=1))
    draft = factories.DraftFactory(author=author, title="Draft rail")
    pending = factories.PostFactory(author=author, title="Pending rail", status=POST.PENDING)
    hidden = factories.HiddenPostFactory(author=author, title="Hidden rail")
    for post in (draft, pending, hidden):
        post.tags = [rail]
    db.session.commit()
    return rail


def test_the_tag_page_lists_its_public_posts_newest_first(client, shelf):
    page = text(client.get("/tags/rail/"))
    assert titles_on(page) == ["Rail 0", "Rail 1", "Rail 2", "Rail and food"]
    assert "<h1>Posts tagged “Rail”</h1>" in page
    assert (
        '<link rel="alternate" type="application/atom+xml" title="Rail" href="/tags/rail/feed.xml">'
        in page
    )


def test_the_tag_page_is_paginated_like_the_post_list(app, client, shelf):
    app.config["POSTS_PER_PAGE"] = 3
    first = text(client.get("/tags/rail/"))
    assert titles_on(first) == ["Rail 0", "Rail 1", "Rail 2"]
    older = html.unescape(re.search(r'<a rel="next" href="([^"]+)"', first).group(1))
    assert older.startswith("/tags/rail/?after=")
    assert titles_on(text(client.get(older))) == ["Rail and food"]
    assert client.get("/tags/rail/?after=garbage").status_code == 400


def test_an_unknown_tag_is_not_found(client, shelf):
    assert client.get("/tags/nope/").status_code == 404
    assert client.get("/tags/nope/feed.xml").status_code == 404
    assert client.get("/posts/?tag=nope").status_code == 404


def test_the_post_list_filters_by_tag_and_keeps_the_filter_across_pages(app, client, shelf):
    page = text(client.get("/posts/?tag=food"))
    assert titles_on(page) == ["Food only", "Rail and food"]
    assert 'href="/tags/food/">Food</a>' in page
    app.config["POSTS_PER_PAGE"] = 1
    page = text(client.get("/posts/?tag=food"))
    older = html.unescape(re.search(r'<a rel="next" href="([^"]+)"', page).group(1))
    assert "tag=food" in older
    assert titles_on(text(client.get(older))) == ["Rail and food"]


def test_search_within_a_tag(client, shelf):
    page = text(client.get("/posts/?q=rail&tag=food"))
    assert titles_on(page) == ["Rail and food"]
    assert titles_on(text(client.get("/posts/?q=rail"))) == [
        "Rail 0",
        "Rail 1",
        "Rail 2",
        "Rail and food",
    ]
    # The search box on a tag's list searches within it.
    assert '<input type="hidden" name="tag" value="rail">' in text(client.get("/tags/rail/"))


def test_the_tag_page_runs_the_same_statements_at_any_page_size(app, client, shelf):
    counts = []
    for size in (1, 3):
        app.config["POSTS_PER_PAGE"] = size
        with statements() as seen:
            assert client.get("/tags/rail/").status_code == 200
        counts.append(len(seen))
    assert counts[0] == counts[1] == 2  # the tag, then the page of posts with their authors


# -- the feed and the sitemap ---------------------------------------------------------------


def parse_feed(response):
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(response.data)
    assert root.tag == f"{A}feed"
    for element in [root, *root.findall(f"{A}entry")]:
        # RFC 4287 4.1.1 and 4.1.2: exactly one id, title and updated each.
        for name in ("id", "title", "updated"):
            assert len(element.findall(f"{A}{name}")) == 1, (element.tag, name)
        assert RFC3339.fullmatch(element.findtext(f"{A}updated"))
    for entry in root.findall(f"{A}entry"):
        # 4.1.2: an author (the feed has none of its own), and a link, there being no content src.
        assert entry.find(f"{A}author/{A}name").text
        assert [link.get("rel") for link in entry.findall(f"{A}link")] == ["alternate"]
    for link in root.iter(f"{A}link"):
        assert link.get("href").startswith(BASE + "/"), link.get("href")
    return root


def test_the_tag_feed_holds_its_public_posts(app, client, shelf):
    app.config["FEED_ENTRIES"] = 3
    root = parse_feed(client.get("/tags/rail/feed.xml"))
    assert root.findtext(f"{A}id") == f"{BASE}/tags/rail/feed.xml"
    assert root.findtext(f"{A}title") == "Rail · Portal"
    assert {link.get("rel"): link.get("href") for link in root.findall(f"{A}link")} == {
        "self": f"{BASE}/tags/rail/feed.xml",
        "alternate": f"{BASE}/tags/rail/",
    }
    assert [e.findtext(f"{A}title") for e in root.findall(f"{A}entry")] == [
        "Rail 0",
        "Rail 1",
        "Rail 2",
    ]


def test_the_feed_of_a_tag_with_nothing_public_is_valid_and_empty(client, shelf):
    tag("Empty")
    root = parse_feed(client.get("/tags/empty/feed.xml"))
    assert root.findall(f"{A}entry") == []


def test_the_sitemap_lists_the_tags_that_carry_public_posts(client, shelf):
    tag("Empty")
    only_draft = tag("Drafty")
    factories.DraftFactory(title="Just a draft").tags = [only_draft]
    db.session.commit()
    index = ET.fromstring(client.get("/sitemap.xml").data)
    parts = [item.findtext(f"{S}loc") for item in index.findall(f"{S}sitemap")]
    assert f"{BASE}/sitemaps/tags-0.xml" in parts
    response = client.get("/sitemaps/tags-0.xml")
    assert response.status_code == 200
    urls = {
        item.findtext(f"{S}loc"): item.findtext(f"{S}lastmod")
        for item in ET.fromstring(response.data)
    }
    assert set(urls) == {f"{BASE}/tags/rail/", f"{BASE}/tags/food/"}
    assert all(RFC3339.fullmatch(lastmod) for lastmod in urls.values())
    assert client.get("/sitemaps/tags-1.xml").status_code == 404


# -- deleting ------------------------------------------------------------------------------


def test_deleting_a_post_removes_its_tag_links(client, auth, browser, people):
    tagged_post([tag("Rail")], author=people["author"], slug="mine")
    sign_in(auth, people, "author")
    assert browser.submit("/posts/mine/delete/").status_code == 302
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(post_tags)).scalar_one() == 0
    assert all_tags() == [("Rail", "rail")]


# -- the back office --------------------------------------------------------------------------


def test_staff_list_tags_with_their_post_counts_in_one_statement(client, auth, people, shelf):
    sign_in(auth, people, "staff")
    with statements() as seen:
        page = text(client.get("/admin/tag/"))
    assert "Rail" in page and "Food" in page
    # Rail: 3 published, the pair, scheduled, draft, pending and hidden.
    cells = r'col-name">\s*Rail\s*</td>\s*<td class="col-slug">\s*rail\s*</td>\s*'
    assert re.search(cells + r'<td class="col-post_count">\s*8\s*</td>', page), page
    tag_queries = [sql for sql in seen if "posts_tag" in sql and "posts_post_tag" in sql]
    assert len(tag_queries) == 1, tag_queries


def test_staff_create_rename_and_delete_tags(client, auth, browser, people, shelf):
    sign_in(auth, people, "staff")
    response = browser.submit("/admin/tag/new/", {"name": "  Slow travel "})
    assert response.status_code == 302
    assert ("Slow travel", "slow-travel") in all_tags()
    # Another case of a name that exists is refused.
    response = browser.submit("/admin/tag/new/", {"name": "rail"}, follow_redirects=True)
    assert "There is already a tag “Rail”." in text(response)
    assert [name for name, _slug in all_tags()].count("Rail") == 1

    rail = db.session.execute(select(Tag).where(Tag.slug == "rail")).scalar_one()
    response = browser.submit(f"/admin/tag/edit/?id={rail.id}", {"name": "Railways"})
    assert response.status_code == 302
    assert ("Railways", "rail") in all_tags()  # the address stays
    assert "Railways" in text(client.get("/tags/rail/"))

    events = db.session.execute(select(AuditEvent.summary).order_by(AuditEvent.id)).scalars()
    assert list(events)[-2:] == ["Created tag “Slow travel”", "Renamed tag “Rail” to “Railways”"]

    response = browser.submit("/admin/tag/delete/", {"id": str(rail.id)}, token_from="/admin/tag/")
    assert response.status_code == 302
    assert "rail" not in [slug for _name, slug in all_tags()]
    assert client.get("/tags/rail/").status_code == 404
    # The posts stay, without it.
    assert "Rail 0" in titles_on(text(client.get("/posts/")))


def test_staff_set_a_post_tags_in_its_admin_edit_form(client, auth, browser, people, shelf):
    post = db.session.execute(select(Post).where(Post.title == "Food only")).scalar_one()
    sign_in(auth, people, "staff")
    page = text(client.get(f"/admin/post/edit/?id={post.id}"))
    assert re.search(r'name="tags"[^>]*value="Food"', page), page
    data = {"title": "Food only", "body": "Body", "status": "published", "tags": "Food, Rail, New"}
    assert browser.submit(f"/admin/post/edit/?id={post.id}", data).status_code == 302
    assert tag_names(post.id) == ["Food", "New", "Rail"]
