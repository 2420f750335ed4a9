"""Full-text search over published posts: titles and bodies, ranked, with highlighted snippets.

Each backend searches with its own engine (the index is defined beside the
post table in ``portal.posts.models``): on PostgreSQL a weighted ``tsvector``
column with a GIN index, ranked by ``ts_rank_cd``; on SQLite an FTS5 table,
ranked by ``bm25``. Both weigh a match in the title well above one in the body.

What a visitor types is never query syntax. Words are matched exactly (case
aside), all of them; text in double quotes is a phrase. Everything else (AND,
OR, NOT, NEAR, ``*``, ``-``, brackets, an unclosed quote) is ordinary text,
so no input can be a syntax error: PostgreSQL gets it through
``plainto_tsquery`` / ``phraseto_tsquery``, FTS5 as quoted strings.

Cost is bounded: only the ``SEARCH_CANDIDATES`` most recently written
matching posts are ranked, so a word found in every post costs no more than
one found in a thousand; pages are offsets into that ranked set (at most
``SEARCH_CANDIDATES / POSTS_PER_PAGE`` of them), each costing one query.
Snippets come from the text a reader sees (the sanitised HTML stripped of its
tags), escaped, with only our own ``<mark>`` around the words that matched.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from flask import current_app
from markupsafe import Markup
from markupsafe import escape
from sqlalchemy import CTE
from sqlalchemy import ColumnElement
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.sql import column
from sqlalchemy.sql import table

from portal.extensions import db
from portal.markup import plain_text
from portal.posts.models import SEARCH_CONFIG
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.posts.services import is_public
from portal.posts.services import published
from portal.posts.services import tagged

# A word: letters and digits (what both engines' tokenizers keep together).
_WORD = re.compile(r"[^\W_]+")
_PHRASE = re.compile(r'"([^"]*)"')
_NOT_TAGS = str.maketrans("<>", "  ")
# More words than this add nothing a reader needs, and each one costs a lookup.
MAX_WORDS = 12
SNIPPET_WORDS = 30
# Words shown before the first match, so it is read in its sentence.
SNIPPET_LEAD = 8

# PostgreSQL: the weights of D, C, B (body) and A (title) in ts_rank_cd.
RANK_WEIGHTS = "{0.05, 0.1, 0.2, 1.0}"
# Several words or a phrase are first looked for in this many times
# SEARCH_CANDIDATES newest posts (PostgreSQL).
RECENT_WINDOW = 10
# SQLite: bm25's weight of a match in each column (title, body).
BM25_WEIGHTS = (10.0, 1.0)

_FTS = table("posts_post_fts", column("rowid"))
_VECTOR = literal_column("posts_post.search_vector", TSVECTOR)


class BadPage(ValueError):
    """A results page this site does not link to (not a number, or past the last)."""


@dataclass(frozen=True)
class SearchQuery:
    """What a visitor asked for: the words, the phrases, and the free text they came from."""

    words: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]
    text: str  # the words outside quotes, for PostgreSQL's own parser

    @property
    def terms(self) -> frozenset[str]:
        """Every word to highlight, lower-cased."""
        return frozenset(self.words) | {word for phrase in self.phrases for word in phrase}

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)


def parse_query(raw: str) -> SearchQuery:
    """Read a visitor's query: quoted phrases, then words; anything else is ordinary text.

    At most ``MAX_WORDS`` words count, phrases first; repeated words count once.
    """
    budget = MAX_WORDS
    phrases: list[tuple[str, ...]] = []
    for quoted in _PHRASE.findall(raw):
        found = tuple(_WORD.findall(quoted.casefold()))[:budget]
        budget -= len(found)
        if found:
            phrases.append(found)
    rest = _PHRASE.sub(" ", raw)
    loose = list(_WORD.finditer(rest))[: max(budget, 0)]
    words = [word.group().casefold() for word in loose]
    # PostgreSQL reads the same stretch of text with its own parser, which keeps
    # "3.11" or "e-mail" as the one token it also made of them in the posts;
    # angle brackets are spaces there, as in the index, or "<b>" would vanish.
    text = rest[: loose[-1].end()].translate(_NOT_TAGS) if loose else ""
    return SearchQuery(words=tuple(dict.fromkeys(words)), phrases=tuple(phrases), text=text)


@dataclass(frozen=True)
class Result:
    """One post found: its list row, and its title and snippet with the matches marked."""

    row: Row[Any]
    title: Markup
    snippet: Markup


@dataclass(frozen=True)
class ResultsPage:
    """One page of results, best first, and the numbers of the pages beside it."""

    items: list[Result]
    number: int
    previous: int | None
    next: int | None


def search_page(raw: str, *, page: str | int | None = None, tag: Tag | None = None) -> ResultsPage:
    """Return a page of the published posts matching ``raw``, the best matches first.

    With ``tag``, only the posts that carry it. Raise ``BadPage`` for a page
    number this site would not link to.
    """
    number = _page_number(page)
    query = parse_query(raw)
    if not query:
        if number != 1:
            raise BadPage(page)
        return ResultsPage([], 1, None, None)
    per_page = current_app.config["POSTS_PER_PAGE"]
    candidates = current_app.config["SEARCH_CANDIDATES"]
    if number > max(1, math.ceil(candidates / per_page)):
        raise BadPage(page)
    offset = (number - 1) * per_page
    # The last page stops at the candidates' end, whatever the page size.
    limit = min(per_page + 1, candidates - offset)
    # Which posts count, as conditions on the post alone: the author is joined
    # for the page's rows only.
    within = [is_public()] if tag is None else [is_public(), tagged(tag)]
    if db.session.get_bind().dialect.name == "postgresql":
        rows = _postgresql(query, within, candidates, offset, limit)
    else:
        rows = _sqlite(query, within, candidates, offset, limit)
    more = len(rows) > per_page
    terms = query.terms
    items = [
        Result(row, highlight(row.title, terms), snippet(row.body_html, terms))
        for row in rows[:per_page]
    ]
    previous = number - 1 if number > 1 else None
    return ResultsPage(items, number, previous=previous, next=number + 1 if more else None)


def _page_number(page: str | int | None) -> int:
    if page is None or page == "":
        return 1
    text = str(page)
    if not (text.isascii() and text.isdigit()) or len(text) > 4 or int(text) < 1:
        raise BadPage(page)
    return int(text)


def _postgresql(
    query: SearchQuery, within: list[ColumnElement[bool]], candidates: int, offset: int, limit: int
) -> list[Row[Any]]:
    """One statement: find the candidates, rank them, then read the page's rows.

    Each step is a fenced CTE, so each reads only what the next needs: the
    candidates by primary key, their vectors once to rank them, and the list
    columns, author and body of the page's rows alone.
    """
    config: ColumnElement[Any] = literal_column(f"'{SEARCH_CONFIG}'::regconfig")
    parts: list[ColumnElement[Any]] = []
    if query.text:
        parts.append(func.plainto_tsquery(config, query.text))
    parts += [func.phraseto_tsquery(config, " ".join(phrase)) for phrase in query.phrases]
    tsquery = parts[0]
    for part in parts[1:]:
        tsquery = tsquery.op("&&")(part)
    several = len(query.words) + sum(len(phrase) for phrase in query.phrases) > 1
    matching = _candidates(within, tsquery, candidates, newest_first=several)
    weights: ColumnElement[Any] = literal_column(f"'{RANK_WEIGHTS}'::float4[]")
    rank = func.ts_rank_cd(weights, _VECTOR, tsquery).label("rank")
    ranked = _fenced(
        select(Post.id, Post.published_at, rank)
        .join(matching, matching.c.id == Post.id)
        .order_by(rank.desc(), Post.published_at.desc(), Post.id.desc())
        .offset(offset)
        .limit(limit),
        "ranked",
    )
    statement = (
        published()
        .add_columns(Post.body_html, ranked.c.rank)
        .join(ranked, ranked.c.id == Post.id)
        .order_by(ranked.c.rank.desc(), ranked.c.published_at.desc(), ranked.c.id.desc())
    )
    return list(db.session.execute(statement))


def _candidates(
    within: list[ColumnElement[bool]],
    tsquery: ColumnElement[Any],
    candidates: int,
    *,
    newest_first: bool,
) -> CTE:
    """The ids of the newest ``candidates`` public posts matching ``tsquery``.

    One word is left to the planner, which knows how common it is (the GIN
    index, or the newest posts first). Several words or a phrase are not: it
    multiplies the words' odds, which go together in real text, so it takes a
    common pair for a rare one and reads every post that holds it. So those
    first look among the newest ``RECENT_WINDOW`` times ``candidates`` posts,
    newest first by primary key: when these hold enough matches, they are the
    newest matches of all, and the index is never read (the test of the count
    is a one-time filter).
    """
    matches = _VECTOR.op("@@")(tsquery)
    newest = select(Post.id).where(*within).order_by(Post.id.desc()).limit(candidates)
    # Found once, whatever the planner believes of the table: without the
    # fence, a table it thinks small gets the search repeated for every post.
    if not newest_first:
        return _fenced(newest.where(matches), "matching")
    latest = (
        select(Post.id.label("id"), _VECTOR.label("vector"))
        .where(*within)
        .order_by(Post.id.desc())
        .limit(candidates * RECENT_WINDOW)
        .subquery("latest")
    )
    recent = _fenced(
        select(latest.c.id)
        .where(latest.c.vector.op("@@")(tsquery))
        .order_by(latest.c.id.desc())
        .limit(candidates),
        "recent",
    )
    found = select(func.count()).select_from(recent).scalar_subquery()
    indexed = _fenced(newest.where(matches, found < candidates), "indexed")
    either = union_all(select(recent.c.id).where(found == candidates), select(indexed.c.id))
    return either.cte("matching")


def _fenced(statement: Select[Any], name: str) -> CTE:
    """``statement`` as a CTE that PostgreSQL runs once, on its own, and never inlines."""
    return statement.cte(name).prefix_with("MATERIALIZED")


def fts5_query(query: SearchQuery) -> str:
    """Return ``query`` as an FTS5 MATCH expression: every word and phrase a quoted string."""

    def quoted(words: tuple[str, ...]) -> str:
        return '"' + " ".join(words).replace('"', '""') + '"'

    return " ".join([quoted((word,)) for word in query.words] + [quoted(p) for p in query.phrases])


def _sqlite(
    query: SearchQuery, within: list[ColumnElement[bool]], candidates: int, offset: int, limit: int
) -> list[Row[Any]]:
    match = literal_column("posts_post_fts").op("MATCH")(fts5_query(query))
    # bm25 is negative, the best match lowest; it can only be read beside its MATCH.
    rank = func.bm25(literal_column("posts_post_fts"), *BM25_WEIGHTS)
    matching = (
        select(Post.id.label("id"), rank.label("rank"))
        .join(_FTS, _FTS.c.rowid == Post.id)
        .where(match, *within)
        .order_by(_FTS.c.rowid.desc())
        .limit(candidates)
        .subquery()
    )
    statement = (
        published()
        .add_columns(Post.body_html, matching.c.rank)
        .join(matching, matching.c.id == Post.id)
        .order_by(matching.c.rank, Post.published_at.desc(), Post.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(db.session.execute(statement))


# -- highlighting -----------------------------------------------------------------------


def _matcher(terms: frozenset[str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    # Longest first, so a word is never cut short by one it starts with.
    alternatives = "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def highlight(text: str, terms: frozenset[str]) -> Markup:
    """Return ``text`` escaped, with each of ``terms`` found in it inside ``<mark>``."""
    matcher = _matcher(terms)
    if matcher is None:
        return escape(text)
    pieces: list[Markup] = []
    last = 0
    for found in matcher.finditer(text):
        pieces.append(escape(text[last : found.start()]))
        pieces.append(Markup("<mark>%s</mark>") % found.group())
        last = found.end()
    pieces.append(escape(text[last:]))
    return Markup("").join(pieces)


def snippet(html: str, terms: frozenset[str], words: int = SNIPPET_WORDS) -> Markup:
    """Return about ``words`` words of ``html``'s text around its first match, marked up.

    The text starts where the body does when only the title matched.
    """
    text = plain_text(html)
    matcher = _matcher(terms)
    first = matcher.search(text) if matcher else None
    start = 0
    if first is not None:
        before = list(_WORD.finditer(text, 0, first.start()))
        if len(before) > SNIPPET_LEAD:
            start = before[-SNIPPET_LEAD].start()
    end = len(text)
    for count, word in enumerate(_WORD.finditer(text, start), start=1):
        if count == words:
            end = word.end()
            break
    piece = highlight(text[start:end], terms)
    return (
        (Markup("… ") if start else Markup(""))
        + piece
        + (Markup(" …") if end < len(text) else Markup(""))
    )
