"""Atom feeds (RFC 4287) of the newest published posts (the site's, an author's, a tag's),
and the sitemap (sitemaps.org).

Both are built with ElementTree, which escapes every text and attribute, and
every link in them is absolute, made from ``PORTAL_BASE_URL`` (never from the
request's Host). What is public comes from ``services.published()``, so a
scheduled post appears from its time on and a hidden one never. Feeds hold no
translated words (names and titles only), so one copy suits every reader and
a shared cache may keep it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from flask import current_app
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import func

from portal.database import utcnow
from portal.extensions import db
from portal.formatting import machine_time
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.posts.models import post_tags
from portal.posts.services import published
from portal.posts.services import tagged
from portal.urls import MAX_ROW_ID
from portal.urls import external_adapter
from portal.urls import external_url
from portal.users.models import User

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
SITEMAP_NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"
# A feed of nothing yet was last changed at the start of time, not at each request.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# Characters XML 1.0 cannot carry at all, even escaped (a body may hold them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# URLs in each part of the sitemap: well under the protocol's 50,000 (and 50 MB).
SITEMAP_CHUNK = 10_000
SITEMAP_SECTIONS = ("posts", "people", "tags")


@dataclass(frozen=True)
class Document:
    """A feed or sitemap, ready to send: its bytes, when it last changed, and its ETag."""

    body: bytes
    updated: datetime

    @property
    def etag(self) -> str:
        return hashlib.blake2b(self.body, digest_size=16).hexdigest()


# -- Atom ---------------------------------------------------------------------------------


def site_feed() -> Document:
    """Return the feed of the whole site's newest posts."""
    name = current_app.config["PORTAL_NAME"]
    return _feed(
        published(),
        title=name,
        self_url=external_url("discovery.site_feed"),
        page_url=external_url("site.index"),
    )


def author_feed(person: User) -> Document:
    """Return the feed of ``person``'s newest posts."""
    name = current_app.config["PORTAL_NAME"]
    return _feed(
        published().where(Post.author_id == person.id),
        title=f"{person.name} · {name}",
        self_url=external_url("discovery.author_feed", handle=person.handle),
        page_url=external_url("posts.profile", handle=person.handle),
    )


def tag_feed(tag: Tag) -> Document:
    """Return the feed of the newest posts that carry ``tag``."""
    name = current_app.config["PORTAL_NAME"]
    return _feed(
        published().where(tagged(tag)),
        title=f"{tag.name} · {name}",
        self_url=external_url("discovery.tag_feed", slug=tag.slug),
        page_url=external_url("posts.tag", slug=tag.slug),
    )


def _feed(statement: Select[Any], *, title: str, self_url: str, page_url: str) -> Document:
    rows = db.session.execute(
        statement.add_columns(Post.body_html, Post.created_at, Post.updated_at)
        .order_by(Post.published_at.desc(), Post.id.desc())
        .limit(current_app.config["FEED_ENTRIES"])
    ).all()
    updated = max((_entry_updated(row) for row in rows), default=NEVER)
    feed = ET.Element("feed", xmlns=ATOM_NAMESPACE)
    # The feed's own permanent address is its id (RFC 4287 4.2.6).
    _text(feed, "id", self_url)
    _text(feed, "title", title)
    _text(feed, "updated", machine_time(updated))
    ET.SubElement(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    ET.SubElement(feed, "link", rel="alternate", type="text/html", href=page_url)
    for row in rows:
        _entry(feed, row)
    return Document(_serialise(feed), updated)


def _entry_updated(row: Row[Any]) -> datetime:
    # A post scheduled ahead changes for its readers when it goes out.
    return max(row.updated_at, row.published_at)


def entry_id(row: Any) -> str:
    """Return the post's Atom id: a tag URI (RFC 4151) that no rename or move changes."""
    host = urlsplit(current_app.config["PORTAL_BASE_URL"]).hostname or "localhost"
    return f"tag:{host},{row.created_at:%Y-%m-%d}:posts/{row.id}"


def _entry(feed: ET.Element, row: Row[Any]) -> None:
    entry = ET.SubElement(feed, "entry")
    _text(entry, "id", entry_id(row))
    _text(entry, "title", row.title, type="text")
    _text(entry, "published", machine_time(row.published_at))
    _text(entry, "updated", machine_time(_entry_updated(row)))
    author = ET.SubElement(entry, "author")
    _text(author, "name", row.author_name)
    _text(author, "uri", external_url("posts.profile", handle=row.author_handle))
    url = external_url("posts.detail", slug=row.slug)
    ET.SubElement(entry, "link", rel="alternate", type="text/html", href=url)
    # The sanitised HTML the post page shows, escaped once more as Atom's type="html" asks.
    _text(entry, "content", row.body_html, type="html")


def _text(parent: ET.Element, tag: str, value: str, **attributes: str) -> None:
    ET.SubElement(parent, tag, attributes).text = _NOT_XML.sub("", value)


def _serialise(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


# -- the sitemap ------------------------------------------------------------------------------


def sitemap_index() -> Document:
    """Return the sitemap index: the home page's part and one part per chunk of rows.

    A chunk is a range of ``SITEMAP_CHUNK`` ids, so a part's address stays the
    same as rows are added; only ranges holding something public are listed.
    """
    root = ET.Element("sitemapindex", xmlns=SITEMAP_NAMESPACE)
    parts = [("pages", 0)] + [
        (section, chunk) for section in SITEMAP_SECTIONS for chunk in _chunks(section)
    ]
    for section, chunk in parts:
        item = ET.SubElement(root, "sitemap")
        _text(item, "loc", external_url("discovery.sitemap_part", section=section, chunk=chunk))
    return Document(_serialise(root), utcnow())


def _chunks(section: str) -> list[int]:
    # One query each, over an index: the chunks that hold a public post, or an
    # author of one, or a tag one carries.
    if section == "tags":
        number = (post_tags.c.tag_id // SITEMAP_CHUNK).label("chunk")
        statement = (
            published()
            .with_only_columns(number)
            .join(post_tags, post_tags.c.post_id == Post.id)
            .group_by(number)
            .order_by(number)
        )
    else:
        key = Post.id if section == "posts" else Post.author_id
        number = (key // SITEMAP_CHUNK).label("chunk")
        statement = published().with_only_columns(number).group_by(number).order_by(number)
    return [int(chunk) for chunk in db.session.execute(statement).scalars()]


def sitemap_part(section: str, chunk: int) -> Document | None:
    """Return one part of the sitemap, or None for a part that does not exist."""
    if chunk > MAX_ROW_ID // SITEMAP_CHUNK:
        return None
    if section == "pages":
        if chunk != 0:
            return None
        urls: Iterable[tuple[str, datetime | None]] = [
            (external_url("site.index"), None),
            (external_url("posts.index"), None),
        ]
    elif section in SITEMAP_SECTIONS:
        urls = list(_part_urls(section, chunk))
        if not urls:
            return None
    else:
        return None
    root = ET.Element("urlset", xmlns=SITEMAP_NAMESPACE)
    newest = NEVER
    for loc, lastmod in urls:
        item = ET.SubElement(root, "url")
        _text(item, "loc", loc)
        if lastmod is not None:
            _text(item, "lastmod", machine_time(lastmod))
            newest = max(newest, lastmod)
    return Document(_serialise(root), newest if newest > NEVER else utcnow())


def _part_urls(section: str, chunk: int) -> Iterator[tuple[str, datetime]]:
    first, last = chunk * SITEMAP_CHUNK, (chunk + 1) * SITEMAP_CHUNK - 1
    base = published()
    adapter = external_adapter()

    def url(endpoint: str, **values: str) -> str:
        return adapter.build(endpoint, values, force_external=True)

    if section == "posts":
        rows = db.session.execute(
            base.with_only_columns(Post.slug, Post.published_at, Post.updated_at)
            .where(Post.id.between(first, last))
            .order_by(Post.id)
        )
        for row in rows:
            yield url("posts.detail", slug=row.slug), max(row.published_at, row.updated_at)
    elif section == "tags":
        # A tag's page changes for its readers when its newest post goes out.
        rows = db.session.execute(
            base.with_only_columns(Tag.slug, func.max(Post.published_at).label("newest"))
            .join(post_tags, post_tags.c.post_id == Post.id)
            .join(Tag, Tag.id == post_tags.c.tag_id)
            .where(Tag.id.between(first, last))
            .group_by(Tag.id, Tag.slug)
            .order_by(Tag.id)
        )
        for row in rows:
            yield url("posts.tag", slug=row.slug), row.newest
    else:
        # A profile changes for its readers when its newest post goes out.
        rows = db.session.execute(
            base.with_only_columns(User.handle, func.max(Post.published_at).label("newest"))
            .where(Post.author_id.between(first, last))
            .group_by(Post.author_id, User.handle)
            .order_by(Post.author_id)
        )
        for row in rows:
            yield url("posts.profile", handle=row.handle), row.newest
