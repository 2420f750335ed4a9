"""Full-text search on /posts/?q=: titles and bodies, ranked, highlighted, safe, kept in step."""

from __future__ import annotations

import html
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import text as sql

from portal import create_app
from portal.extensions import db
from portal.posts import search as search_module
from tests import factories
from tests.conftest import POSTGRES_URL
from tests.conftest import private_schema
from tests.conftest import require_service
from tests.helpers import statements
from tests.helpers import text

NOW = datetime.now(UTC)
RESULT_RE = re.compile(
    r'<article class="card post-summary">\s*<h2><a href="/posts/([^"]+)/">'
    r"(.*?)</a></h2>.*?<p class=\"snippet\">(.*?)</p>",
    re.DOTALL,
)


def results(response):
    """(slug, title HTML, snippet HTML) of each result, in the order shown."""
    assert response.status_code == 200
    return RESULT_RE.findall(text(response))


def slugs(response):
    return [slug for slug, _title, _snippet in results(response)]


def search(client, query, **args):
    return client.get("/posts/", query_string={"q": query, **args})


def post(slug, *, title="An ordinary title", body="Nothing to see.", minutes=0, **values):
    return factories.PostFactory(
        slug=slug, title=title, body=body, published_at=NOW - timedelta(minutes=minutes), **values
    )


# -- what is found, and in what order -------------------------------------------


def test_titles_and_bodies_are_searched_and_a_title_match_ranks_first(client):
    post("in-body", body="A long walk, then the zephyr came over the hill.", minutes=1)
    post("in-title", title="The zephyr of spring", minutes=30)
    post("elsewhere", body="No wind at all.")
    assert slugs(search(client, "zephyr")) == ["in-title", "in-body"]


def test_every_word_must_match_in_any_case(client):
    post("both", title="Quiet Harbour", body="Boats and GULLS.")
    post("one", title="Quiet street")
    assert slugs(search(client, "quiet gulls")) == ["both"]
    assert sorted(slugs(search(client, "QUIET"))) == ["both", "one"]
    assert slugs(search(client, "quiet lighthouse")) == []


def test_whole_words_match_not_parts(client):
    post("hundred", title="100% rye")
    post("thousand", title="1000 loaves")
    assert slugs(search(client, "100")) == ["hundred"]


def test_a_quoted_phrase_matches_only_its_words_in_order(client):
    post("phrase", body="The red kite flew.")
    post("apart", body="A kite, red with rust.", minutes=1)
    assert slugs(search(client, '"red kite"')) == ["phrase"]
    assert slugs(search(client, "red kite")) == ["phrase", "apart"]


def test_words_in_other_scripts_are_found(client):
    post("greek", title="Καλημέρα κόσμε")
    post("cyrillic", body="Привет, мир")
    assert slugs(search(client, "ΚΌΣΜΕ")) == ["greek"]
    assert slugs(search(client, "мир")) == ["cyrillic"]


def test_drafts_hidden_and_scheduled_posts_are_not_found(client):
    post("public", title="Lantern festival")
    factories.DraftFactory(slug="draft", title="Lantern draft")
    factories.HiddenPostFactory(slug="hidden", title="Lantern hidden")
    post("scheduled", title="Lantern to come", minutes=-60)
    assert slugs(search(client, "lantern")) == ["public"]


# -- snippets and their safety ---------------------------------------------------------


def test_the_snippet_shows_the_match_in_its_sentence_and_marks_it(client):
    filler = " ".join(f"word{number}" for number in range(200))
    post("long", body=f"{filler} and then the *zephyr* arrived. {filler}")
    [(_slug, title, snippet)] = results(search(client, "Zephyr"))
    assert title == "An ordinary title"
    assert "then the <mark>zephyr</mark> arrived." in snippet
    # A few words lead up to the match; the Markdown is gone.
    assert snippet.startswith("… word195 word196 ") and snippet.endswith(" …")
    assert "*" not in snippet


def test_matches_in_the_title_are_marked_too(client):
    post("titled", title="Zephyr and Mistral")
    [(_slug, title, snippet)] = results(search(client, "mistral zephyr"))
    assert title == "<mark>Zephyr</mark> and <mark>Mistral</mark>"
    assert snippet == "Nothing to see."


def test_a_hostile_post_reaches_the_results_only_as_text(client):
    post(
        "hostile",
        title='<script>alert("zephyr")</script>',
        body="<img src=x onerror=alert(1)> zephyr <mark>fake</mark> [x](javascript:alert(1)) &amp;",
    )
    response = search(client, "zephyr")
    [(_slug, title, snippet)] = results(response)
    shown = text(response).split('class="card post-summary"')[1]
    assert "<script" not in shown and "<img" not in shown and 'href="javascript:' not in shown
    assert title == "&lt;script&gt;alert(&#34;<mark>zephyr</mark>&#34;)&lt;/script&gt;"
    # Only our own <mark> tags: the one the body wrote is text.
    assert re.findall(r"<[^>]*>", snippet) == ["<mark>", "</mark>"]
    assert "&lt;mark&gt;fake&lt;/mark&gt;" in snippet
    # The text a reader sees: "&amp;" in Markdown is an ampersand, escaped once.
    assert snippet.endswith("[x](javascript:alert(1)) &amp;")


def test_the_query_is_shown_escaped(client):
    post("kite", title="Kite")
    page = text(search(client, "<b>kite</b>"))
    assert "“&lt;b&gt;kite&lt;/b&gt;”" in page
    assert "<b>kite</b>" not in page
    assert 'value="&lt;b&gt;kite&lt;/b&gt;"' in page


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ('"', False),
        ('zephyr"', True),
        ('"zephyr', True),
        ('""', False),
        ("zephyr AND", False),
        ("zephyr OR gale", False),
        ("NOT zephyr", False),
        ("-zephyr", True),
        ("zephyr -gale", False),
        ("NEAR(zephyr breeze)", False),
        ("NEAR(zephyr)", False),
        ("zephyr*", True),
        ("zeph*", False),
        ("*", False),
        ("(zephyr", True),
        ("zephyr))", True),
        ("zephyr & | ! <-> :*", True),
        ("!!zephyr", True),
        ("title:zephyr", False),
        ("^zephyr", True),
        ("{zephyr}", True),
        ("'zephyr'", True),
        ("zephyr\\", True),
        ("%_%", False),
        ("\x01zephyr\x7f", True),
        ("zephyr " * 28, True),
    ],
)
def test_search_syntax_in_a_query_is_ordinary_text(client, query, found):
    post("target", title="A zephyr", body="Over the hills.")
    response = search(client, query)
    assert response.status_code == 200
    assert slugs(response) == (["target"] if found else [])


def test_an_overlong_query_is_refused_with_a_message(client):
    post("kite", title="Kite")
    page = text(search(client, "kite " * 50))
    assert "Field cannot be longer than 200 characters." in page
    assert 'class="snippet"' not in page


# -- pages ---------------------------------------------------------------------------------


def test_results_are_paged_and_the_pages_keep_the_query(app, client):
    app.config["POSTS_PER_PAGE"] = 2
    for number in range(5):
        post(f"match-{number}", title=f"Match {number}", minutes=number)
        post(f"other-{number}", title=f"Other {number}", minutes=number)
    seen, path = [], "/posts/?q=match"
    while path:
        page = text(client.get(path))
        seen += [slug for slug, _t, _s in RESULT_RE.findall(page)]
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        path = html.unescape(found.group(1)) if found else None
        assert path is None or "q=match" in path
    # Equal ranks: the newest first.
    assert seen == [f"match-{number}" for number in range(5)]
    back = text(client.get("/posts/?q=match&page=2"))
    assert 'rel="prev" href="/posts/?q=match"' in back


def test_only_the_newest_candidates_are_ranked(app, client):
    app.config.update(POSTS_PER_PAGE=2, SEARCH_CANDIDATES=3)
    for number in range(5):
        post(f"match-{number}", title=f"Match {number}")
    first, second = search(client, "match"), search(client, "match", page="2")
    assert sorted(slugs(first) + slugs(second)) == ["match-2", "match-3", "match-4"]
    assert 'rel="next"' not in text(second)
    assert search(client, "match", page="3").status_code == 404


def test_a_phrase_finds_the_newest_matches_wherever_they_are(app, client, monkeypatch):
    # PostgreSQL reads the newest SEARCH_CANDIDATES x RECENT_WINDOW posts first (here
    # four), and the index only when they hold too few matches: both give the same.
    monkeypatch.setattr(search_module, "RECENT_WINDOW", 2)
    app.config.update(SEARCH_CANDIDATES=2)
    post("old-match", body="The red kite flew.", minutes=9)
    post("old-apart", body="A kite, red with rust.", minutes=8)
    for number in range(3):
        post(f"filler-{number}", body="Nothing of the kind.", minutes=7 - number)
    post("new-match", body="A red kite again.", minutes=1)
    # One match among the four newest: the older one is found through the index.
    assert sorted(slugs(search(client, '"red kite"'))) == ["new-match", "old-match"]
    post("newest-match", body="Red kite, red kite.")
    # Two among the four newest: they are the newest two of all.
    assert sorted(slugs(search(client, '"red kite"'))) == ["new-match", "newest-match"]
    # Two words, in any order: the same two ways.
    assert sorted(slugs(search(client, "kite red"))) == ["new-match", "newest-match"]


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "²", "99999", "1" * 30])
def test_a_page_this_site_never_links_to_is_not_found(client, page):
    post("kite", title="Kite")
    assert search(client, "kite", page=page).status_code == 404


def test_a_results_page_runs_the_same_queries_whatever_it_shows(app, client):
    app.config["POSTS_PER_PAGE"] = 10
    for number in range(2):
        post(f"few-{number}", title=f"Few {number}")
    for number in range(8):
        post(f"many-{number}", title=f"Many {number}", author=factories.UserFactory())
    counts = []
    for query in ("few", "many"):
        with statements() as seen:
            assert len(slugs(search(client, query))) in (2, 8)
        counts.append(len(seen))
    assert counts[0] == counts[1]


# -- kept in step on every write -----------------------------------------------------------


def test_the_index_follows_edits_and_deletes(client, auth, browser):
    author = factories.UserFactory(email="writer@example.com")
    factories.PostFactory(author=author, slug="kept", title="Weather notes", body="A zephyr.")
    auth.login(author.email)
    assert slugs(search(client, "zephyr")) == ["kept"]

    response = browser.submit(
        "/posts/kept/edit/", {"title": "Weather notes", "body": "A mistral.", "action": "save"}
    )
    assert response.status_code == 302
    assert slugs(search(client, "zephyr")) == []
    assert slugs(search(client, "mistral")) == ["kept"]

    response = browser.submit(
        "/posts/kept/edit/", {"title": "Sirocco notes", "body": "A mistral.", "action": "save"}
    )
    assert slugs(search(client, "sirocco")) == ["kept"]
    assert slugs(search(client, "weather")) == []

    assert browser.submit("/posts/kept/delete/", {}).status_code == 302
    assert slugs(search(client, "mistral")) == []


def test_a_new_post_is_found_at_once(client, auth, browser):
    author = factories.UserFactory(email="writer@example.com")
    auth.login(author.email)
    response = browser.submit(
        "/posts/new/",
        {"title": "Fresh sirocco", "body": "Hot wind.", "action": "publish"},
        token_from="/posts/new/",
    )
    assert response.status_code == 302
    assert len(slugs(search(client, "sirocco"))) == 1


# -- the revision builds the same index ---------------------------------------------------------

SEARCH_OBJECTS = {
    "sqlite": "SELECT type, name, sql FROM sqlite_master "
    "WHERE name LIKE 'posts_post_fts%' ORDER BY name",
    "postgresql": "SELECT column_name, generation_expression FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND column_name = 'search_vector' "
    "UNION ALL SELECT indexname, indexdef FROM pg_indexes "
    "WHERE schemaname = current_schema() AND indexname = 'ix_posts_post_search'",
}


def _search_objects(connection, dialect):
    rows = connection.execute(sql(SEARCH_OBJECTS[dialect])).all()
    # The schema's name appears in PostgreSQL's index definition.
    return [tuple(re.sub(r"\bportal_\w+\.", "", str(value)) for value in row) for row in rows]


def test_the_revision_creates_what_the_models_create(app, tmp_path):
    dialect = db.engine.dialect.name
    with db.engine.connect() as connection:
        expected = _search_objects(connection, dialect)
    assert len(expected) >= 2
    if dialect == "sqlite":
        url_context = None
        url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    else:
        require_service(POSTGRES_URL, 5432, "PostgreSQL")
        url_context = private_schema("portal_search_migration")
        url = url_context.__enter__()
    try:
        migrated = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
        with migrated.app_context():
            upgrade()
            db.engine.dispose()
        engine = create_engine(url)
        with engine.connect() as connection:
            assert _search_objects(connection, dialect) == expected
        engine.dispose()
    finally:
        if url_context is not None:
            url_context.__exit__(None, None, None)
