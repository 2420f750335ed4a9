"""Admin search finds what people type: each word inside some searchable column.

"User 4" finds "Demo User 42" (every word, in any order and any case, inside
one of the columns), "example.com" finds every address there, and ``%``,
``_`` and ``\\`` in a word match only themselves. On both backends; on
PostgreSQL the trigram indexes of revision 0009 serve the query.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import text

from portal.extensions import db
from tests import factories


@pytest.fixture
def admin(auth):
    person = factories.AdminFactory(name="Ada Admin", email="ada@admin.test")
    assert auth.login(person.email).status_code == 302
    return person


def search(client, endpoint, term):
    response = client.get(f"/admin/{endpoint}/", query_string={"search": term})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def listed_ids(page):
    return {int(value) for value in re.findall(r'name="rowid"[^>]*\svalue="(\d+)"', page)}


# -- accounts --------------------------------------------------------------------


@pytest.fixture
def people():
    # Handles are searched too: these carry no digit and none of the words.
    people = {
        "alice": ("Alice Smith", "asmith@example.com"),
        "bob": ("Bob Jones", "ali.baba@example.org"),
        "natalie": ("Natalie Ali", "nat@example.com"),
        "user4": ("Demo User 42", "demo42@demo.test"),
        "user5": ("Demo User 5", "demo5@demo.test"),
    }
    return {
        key: factories.UserFactory(name=name, email=email, handle=f"h{letter}")
        for letter, (key, (name, email)) in zip("abcde", people.items(), strict=True)
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("ali", {"alice", "bob", "natalie"}),  # inside a name or an address, not only at the start
        ("ALI", {"alice", "bob", "natalie"}),
        ("smith", {"alice"}),
        ("example.com", {"alice", "natalie"}),
        ("User 4", {"user4"}),  # every word, each somewhere
        ("4 user", {"user4"}),  # in any order
        ("  demo   USER  ", {"user4", "user5"}),  # spaced and cased any way
        ("ali example.org", {"bob"}),  # one word in the name, one in the address
        ("ali nobody", set()),  # a word found nowhere finds nothing
    ],
)
def test_account_search_finds_every_word_inside_name_or_email(
    client, admin, people, term, expected
):
    found = listed_ids(search(client, "user", term)) - {admin.id}

    assert found == {people[key].id for key in expected}


def test_account_search_finds_the_handle(client, admin):
    person = factories.UserFactory(name="Quiet Person", handle="the-night-owl")
    factories.UserFactory(name="Loud Person")

    assert listed_ids(search(client, "user", "night-owl")) == {person.id}


# -- posts -----------------------------------------------------------------------


def test_post_search_finds_words_inside_the_title(client, admin):
    match = factories.PostFactory(title="Moving the Email Queue to PostgreSQL")
    factories.PostFactory(title="Email templates")
    factories.PostFactory(title="Queues in general")

    assert listed_ids(search(client, "post", "queue email")) == {match.id}
    assert listed_ids(search(client, "post", "gresql")) == {match.id}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("100%", {"100% organic"}),
        ("%", {"100% organic", "%d formats"}),
        ("snake_", {"snake_case rules"}),
        ("_", {"snake_case rules", "_private names"}),
        ("c:\\", {"C:\\Windows paths"}),
        ("1000", {"1000 ways"}),
        ("0 ways", {"1000 ways"}),
    ],
)
def test_wildcards_in_a_search_are_literal(client, admin, term, expected):
    titles = [
        "100% organic",
        "1000 ways",
        "10 percent",
        "%d formats",
        "snake_case rules",
        "snakeXcase rules",
        "_private names",
        "C:\\Windows paths",
        "C:/Unix paths",
    ]
    for title in titles:
        factories.PostFactory(title=title)

    page = search(client, "post", term)

    shown = {title for title in titles if html.escape(title, quote=False) in page}
    assert shown == expected


# -- comments --------------------------------------------------------------------


def test_comment_search_finds_words_inside_the_author_name_or_email(client, admin):
    kim = factories.UserFactory(name="Kim Lee", email="kim@example.com")
    joakim = factories.UserFactory(name="Joakim Berg", email="jberg@example.net")
    other = factories.UserFactory(name="Sam Stone", email="sam@example.com")
    by_kim = factories.CommentFactory(author=kim)
    by_joakim = factories.CommentFactory(author=joakim)
    factories.CommentFactory(author=other)

    assert listed_ids(search(client, "comment", "KIM")) == {by_kim.id, by_joakim.id}
    assert listed_ids(search(client, "comment", "kim example.com")) == {by_kim.id}
    assert listed_ids(search(client, "comment", "berg")) == {by_joakim.id}


# -- emails ----------------------------------------------------------------------


def test_email_search_finds_words_inside_the_address_or_subject(client, admin):
    welcome = factories.EmailFactory(to_address="zoe@example.com", subject="Welcome")
    invoice = factories.EmailFactory(to_address="amy@example.com", subject="Zoe's invoice")
    about = factories.EmailFactory(to_address="bo@example.org", subject="About zoe")
    factories.EmailFactory(to_address="cy@example.org", subject="Hello")

    assert listed_ids(search(client, "email", "zoe")) == {welcome.id, invoice.id, about.id}
    assert listed_ids(search(client, "email", "zoe example.com")) == {welcome.id, invoice.id}
    assert listed_ids(search(client, "email", "example.org about")) == {about.id}


def test_a_search_is_counted_like_the_list(client, admin):
    for number in range(3):
        factories.EmailFactory(to_address=f"user{number}@list.test", subject="Digest")
    factories.EmailFactory(to_address="other@list.test", subject="Digest")

    page = search(client, "email", "user list.test")

    assert re.search(r'<p class="admin-count">3 found<', page)


# -- the indexes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("users_user", "email"),
        ("users_user", "name"),
        ("users_user", "handle"),
        ("posts_post", "title"),
        ("emails_email", "to_address"),
        ("emails_email", "subject"),
    ],
)
def test_postgresql_answers_a_word_search_from_the_trigram_index(app, backend, table, column):
    if backend != "postgresql":
        pytest.skip("SQLite scans: it has no trigram index")
    index = f"ix_{table}_{column}_trgm"
    definition = db.session.execute(
        text(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = :n"
        ),
        {"n": index},
    ).scalar_one()
    assert "USING gin" in definition and "gin_trgm_ops" in definition

    # With sequential scans priced out, a plan that can use the index does.
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = db.session.execute(
        text(f"EXPLAIN SELECT id FROM {table} WHERE {column} ILIKE '%needle%'")
    ).scalars()

    assert index in "\n".join(plan)
