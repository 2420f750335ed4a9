"""Rendering a body costs a bounded amount of work, whatever it holds.

Bodies that would make the Markdown parser work far harder than prose of
their size (runs of brackets, thousands of one-letter lines or list items)
are refused with a message, through the post and comment forms like any
other bad body, and nothing is saved. Time is measured in bench/render.py;
here the guarantee is counted: the Python calls a render makes, refused or
not, stay within a few times those of prose of the same size.
"""

from __future__ import annotations

import html
import random
import sys
from collections.abc import Callable

import pytest
from sqlalchemy import select

from portal import markup
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from tests import factories
from tests.helpers import text

SLUG = "the-post"
MESSAGE = markup.TOO_COSTLY
WORDS = "the of and a to in is you that it he was for on are as with his they at be".split()


def repeated(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def prose(size: int) -> str:
    """Sentences in paragraphs, a word in a dozen emphasised, linked or code."""
    rng = random.Random(3)
    paragraphs: list[str] = []
    while sum(len(p) + 2 for p in paragraphs) < size:
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 90))]
        for index in range(0, len(words), 12):
            words[index] = rng.choice(
                (f"*{words[index]}*", f"`{words[index]}`", f"[{words[index]}](https://a.example/)")
            )
        paragraphs.append(" ".join(words).capitalize() + ".")
    return "\n\n".join(paragraphs)[:size]


def rich_post(size: int) -> str:
    """A long post using every feature posts have, as a reference page would."""
    section = (
        "## Setting up\n\n"
        "Install the **tool** with `pip install tool`, then read [the guide]"
        '(https://docs.example.org/guide "The guide") and the *notes* below.\n\n'
        "1. Download it.\n2. Run `tool init`.\n   - on Linux: `~/.tool`\n   - on macOS too\n\n"
        "> Tip: ~~old~~ new flags are listed in the table.\n\n"
        "| flag | default | meaning |\n|:-----|:-------:|--------:|\n"
        "| `-v` | off | more output |\n| `-q` | off | less output |\n\n"
        "```python\nimport tool\ntool.run(['a', 'b'])  # [not a link](x)\n```\n\n"
        "See <https://example.org/> or write to <help@example.org>. 3 < 4 & 5 > 2.\n\n"
        "---\n\n"
    )
    return repeated(section, size)


# The three bodies the problem was shown with, and the worst others found.
WORST = {
    "image-openers": lambda size: repeated("![", size),
    "bracket-run": lambda size: repeated("[", size),
    "one-letter-lines": lambda size: repeated("a\n", size),
    "bracket-line-bang": lambda size: repeated("[\n!", size),
    "emphasis-image": lambda size: repeated("_![", size),
    "unclosed-links": lambda size: repeated("[a](", size),
    "list-items": lambda size: repeated("- a\n", size),
    "headings": lambda size: repeated("# a\n", size),
    "emphasis-lines": lambda size: repeated("*a\n", size),
    "nested-brackets": lambda size: "[" * (size // 2) + "]" * (size - size // 2),
    "tiny-table": lambda size: (
        "|a" * 50 + "|\n" + "|-" * 50 + "|\n" + repeated("|a" * 50 + "|\n", size)
    )[:size],
}


def python_calls(render: Callable[[str], str], source: str) -> int:
    """How many Python and C functions rendering ``source`` calls, refused or not."""
    count = 0

    def profile(frame, event, arg):  # type: ignore[no-untyped-def]
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    render.cache_clear()  # type: ignore[attr-defined]
    sys.setprofile(profile)
    try:
        render(source)
    except markup.MarkupTooCostly:
        pass
    finally:
        sys.setprofile(None)
    return count


# -- the renderer -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["image-openers", "bracket-run", "one-letter-lines"])
def test_the_bodies_that_took_seconds_are_refused(name):
    with pytest.raises(markup.MarkupTooCostly, match="simplify its Markdown"):
        markup.render_post(WORST[name](POST.BODY_MAX_LENGTH))


@pytest.mark.parametrize("name", list(WORST))
def test_the_worst_bodies_are_refused_as_posts_and_as_comments(name):
    with pytest.raises(markup.MarkupTooCostly):
        markup.render_post(WORST[name](20_000))
    if name not in ("headings", "list-items", "tiny-table"):  # not Markdown in comments
        with pytest.raises(markup.MarkupTooCostly):
            markup.render_comment(WORST[name](COMMENT.BODY_MAX_LENGTH))


@pytest.mark.parametrize("name", list(WORST))
def test_a_render_costs_at_most_a_few_times_prose_of_its_size(name):
    # Calls stand in for time, deterministically: prose makes about four per character.
    size = 10_000
    baseline = python_calls(markup.render_post, prose(size))

    calls = python_calls(markup.render_post, WORST[name](size))

    assert calls <= 5 * baseline, (calls, baseline)


@pytest.mark.parametrize(
    "body",
    [prose(POST.BODY_MAX_LENGTH), rich_post(POST.BODY_MAX_LENGTH)],
    ids=["prose", "rich-post"],
)
def test_long_real_posts_are_never_refused(body):
    rendered = markup.render_post(body)

    assert "<p>" in rendered
    assert python_calls(markup.render_post, body) <= 3 * python_calls(
        markup.render_post, prose(POST.BODY_MAX_LENGTH)
    )


def test_the_rich_post_renders_every_feature():
    rendered = markup.render_post(rich_post(2_000))

    for tag in ("<h2>", "<strong>", "<code>", "<a href=", "<ol>", "<ul>", "<blockquote>"):
        assert tag in rendered, tag
    assert '<th align="left">' in rendered and "<s>old</s>" in rendered and "<pre>" in rendered


def test_short_bodies_are_never_refused_however_odd():
    # The fixed allowance: a couple of dozen brackets are silly, not an attack.
    for unit in ("[", "![", "a\n", "*a", "- a\n"):
        markup.render_post(repeated(unit, 30))
        markup.render_comment(repeated(unit, 30))


def test_ordinary_comments_at_the_limit_are_never_refused():
    body = prose(COMMENT.BODY_MAX_LENGTH).replace("\n\n", "\n")

    assert "<p>" in markup.render_comment(body)


# -- through the forms ----------------------------------------------------------------


@pytest.fixture
def writer(auth):
    person = factories.UserFactory(email="writer@example.com")
    auth.login(person.email)
    return person


def stored_posts():
    db.session.expire_all()
    return db.session.execute(select(Post)).scalars().all()


def stored_comments():
    db.session.expire_all()
    return db.session.execute(select(Comment)).scalars().all()


def test_a_post_too_costly_to_render_is_refused_with_a_message(browser, writer):
    body = WORST["image-openers"](POST.BODY_MAX_LENGTH)

    response = browser.submit("/posts/new/", {"title": "Boom", "body": body, "action": "publish"})

    assert response.status_code == 200
    assert html.escape(MESSAGE, quote=False) in text(response)
    assert stored_posts() == []

    post = factories.PostFactory(author=writer, title="Kept", slug=SLUG, body="Kept body")
    response = browser.submit(
        f"/posts/{SLUG}/edit/", {"title": "Kept", "body": body, "action": "save"}
    )
    assert response.status_code == 200
    assert html.escape(MESSAGE, quote=False) in text(response)
    [row] = stored_posts()
    assert (row.id, row.body) == (post.id, "Kept body")


def test_a_comment_too_costly_to_render_is_refused_with_a_message(browser, writer):
    factories.PostFactory(slug=SLUG)
    body = WORST["bracket-run"](COMMENT.BODY_MAX_LENGTH)

    response = browser.submit(f"/posts/{SLUG}/comments/", {"body": body})

    assert response.status_code == 200
    assert html.escape(MESSAGE, quote=False) in text(response)
    assert stored_comments() == []

    pending = factories.CommentFactory(author=writer, body="Kept")
    response = browser.submit(f"/comments/{pending.id}/edit/", {"body": body})
    assert response.status_code == 200
    assert html.escape(MESSAGE, quote=False) in text(response)
    [row] = stored_comments()
    assert row.body == "Kept"
