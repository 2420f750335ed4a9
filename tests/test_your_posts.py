"""'Your posts' at /users/me/posts/ and the header's links to it and to Write, through HTTP."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from portal.extensions import db
from portal.posts import constants as POST
from portal.users import constants as USER
from tests import factories
from tests.helpers import sign_in
from tests.helpers import statements
from tests.helpers import text

PATH = "/users/me/posts/"


@pytest.fixture
def people(app):
    return {
        "author": factories.UserFactory(name="Ada Author"),
        "other": factories.UserFactory(name="Otto Other"),
    }


@pytest.fixture
def posts(people):
    """Ada's posts, one or more in each state, and Otto's, which she must never see."""
    ada, later = people["author"], datetime.now(UTC) + timedelta(days=2)
    return {
        "draft": [
            factories.DraftFactory(author=ada, title="Draft one"),
            factories.DraftFactory(author=ada, title="Draft two"),
        ],
        "scheduled": [
            factories.PostFactory(author=ada, title="Tomorrow's news", published_at=later)
        ],
        "published": [factories.PostFactory(author=ada, title="Old news")],
        "pending": [factories.PostFactory(author=ada, title="Under review", status=POST.PENDING)],
        "hidden": [factories.HiddenPostFactory(author=ada, title="Taken down")],
        "other": [
            factories.DraftFactory(author=people["other"], title="Otto's draft"),
            factories.PostFactory(author=people["other"], title="Otto's post"),
        ],
    }


def count_of(page: str, label: str) -> int:
    match = re.search(rf"{label}\s*<span class=\"count\">(\d+)</span>", page)
    assert match, f"no count for {label}"
    return int(match.group(1))


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(PATH)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/users/login/?next=")


def test_every_state_is_counted_and_other_peoples_posts_never_show(client, auth, people, posts):
    sign_in(auth, people, "author")
    response = client.get(PATH)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = text(response)
    assert count_of(page, "All") == 6
    assert count_of(page, "Drafts") == 2
    assert count_of(page, "Scheduled") == 1
    assert count_of(page, "Published") == 1
    assert count_of(page, "Waiting for review") == 1
    assert count_of(page, "Hidden") == 1
    for state, written in posts.items():
        for post in written:
            if state == "other":
                assert post.title not in page
                assert f"/posts/{post.slug}/" not in page
            else:
                assert f'href="/posts/{post.slug}/edit/"' in page


def test_the_counts_come_from_one_grouped_query(client, auth, people, posts):
    sign_in(auth, people, "author")
    with statements() as seen:
        assert client.get(PATH).status_code == 200
    grouped = [s for s in seen if "GROUP BY" in s.upper() and "posts_post" in s]
    assert len(grouped) == 1, grouped
    assert len([s for s in seen if "posts_post" in s]) == 2  # the counts and the page


@pytest.mark.parametrize(
    ("state", "shown", "label"),
    [
        ("draft", {"Draft one", "Draft two"}, "Draft"),
        ("scheduled", {"Tomorrow's news"}, "Scheduled"),
        ("published", {"Old news"}, "Published"),
        ("pending", {"Under review"}, "Waiting for review"),
        ("hidden", {"Taken down"}, "Hidden by staff"),
    ],
)
def test_the_state_filter_shows_that_state_only(client, auth, people, posts, state, shown, label):
    sign_in(auth, people, "author")
    page = text(client.get(f"{PATH}?state={state}"))
    titles = set(re.findall(r'<h2><a href="/posts/[^"]+/">([^<]+)</a></h2>', page))
    assert {title.replace("&#39;", "'") for title in titles} == shown
    assert f'<span class="badge badge-{state}">{label}</span>' in page
    assert f'href="/users/me/posts/?state={state}" aria-current="page"' in page


def test_an_unknown_state_is_not_found(client, auth, people):
    sign_in(auth, people, "author")
    assert client.get(f"{PATH}?state=everything").status_code == 404


def test_scheduled_posts_say_when_they_publish_in_the_readers_time_zone(client, auth, people):
    when = datetime(2099, 1, 2, 9, 30, tzinfo=UTC)
    factories.PostFactory(author=people["author"], title="Far future", published_at=when)
    people["author"].timezone = "Europe/Berlin"
    db.session.commit()
    sign_in(auth, people, "author")
    page = text(client.get(f"{PATH}?state=scheduled"))
    assert "Publishes <time" in page
    assert "10:30" in page  # 09:30 UTC is 10:30 in Berlin in winter


def test_the_list_is_paginated_and_the_filter_kept(app, client, auth, people):
    app.config["POSTS_PER_PAGE"] = 2
    for number in range(5):
        factories.DraftFactory(author=people["author"], title=f"Draft {number}")
    factories.PostFactory(author=people["author"], title="Public one")
    sign_in(auth, people, "author")
    first = text(client.get(f"{PATH}?state=draft"))
    assert "Draft 4" in first and "Draft 3" in first and "Draft 2" not in first
    older = re.search(r'rel="next" href="([^"]+)"', first)
    assert older and "state=draft" in older.group(1)
    second = text(client.get(older.group(1).replace("&amp;", "&")))
    assert "Draft 2" in second and "Draft 1" in second and "Public one" not in second
    assert client.get(f"{PATH}?after=nonsense").status_code == 400


def test_empty_states_say_so_and_lead_to_write(client, auth, people):
    sign_in(auth, people, "author")
    page = text(client.get(PATH))
    assert "You have not written anything yet." in page
    assert page.count('href="/posts/new/"') >= 2  # the header's, the page's
    factories.DraftFactory(author=people["author"])
    page = text(client.get(f"{PATH}?state=scheduled"))
    assert "Nothing is scheduled." in page
    assert "You have not written anything yet." not in page


def test_the_header_links_to_write_and_your_posts_only_when_signed_in(client, auth, people):
    anonymous = text(client.get("/posts/"))
    assert f'href="{PATH}"' not in anonymous
    assert ">Write</a>" not in anonymous
    sign_in(auth, people, "author")
    page = text(client.get("/posts/"))
    assert '<a href="/posts/new/">Write</a>' in page
    assert f'<a href="{PATH}">Your posts</a>' in page
    assert f'<a href="{PATH}" aria-current="page">Your posts</a>' in text(client.get(PATH))
    assert '<a href="/posts/new/" aria-current="page">Write</a>' in text(client.get("/posts/new/"))


def test_an_unconfirmed_account_has_its_posts_but_no_write_link(client, auth, people):
    people["author"].status = USER.NEW
    db.session.commit()
    sign_in(auth, people, "author")
    page = text(client.get("/posts/"))
    assert f'<a href="{PATH}">Your posts</a>' in page
    assert ">Write</a>" not in page


def test_a_profile_handle_never_takes_the_page(client, auth, people):
    # "me" is reserved: /users/me/posts/ is this page, never someone called "me".
    sign_in(auth, people, "author")
    assert "Your posts" in text(client.get(PATH))
    assert client.get(f"/users/{people['author'].handle}/posts/").status_code == 404
