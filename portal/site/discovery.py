"""What helps readers and machines find posts: Atom feeds, the sitemap, robots.txt.

Every answer here is the same for everyone, so shared caches may keep it a
few minutes, and a client that sends back its ETag or date gets a 304.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import abort
from flask import request
from werkzeug.wrappers import Response as BaseResponse

from portal.markup import summary
from portal.posts import feeds
from portal.posts import services as post_services
from portal.urls import external_url
from portal.users import services as user_services

bp = Blueprint("discovery", __name__)

ATOM = "application/atom+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"
FEED_SECONDS = 300
SITEMAP_SECONDS = 3600

# Templates build canonical and OpenGraph links, and describe a post, with these.
bp.add_app_template_global(external_url, "external_url")
bp.add_app_template_filter(summary, "summary")


def _send(document: feeds.Document, mimetype: str, seconds: int) -> BaseResponse:
    response = Response(document.body, content_type=mimetype)
    response.set_etag(document.etag)
    response.last_modified = document.updated
    response.cache_control.public = True
    response.cache_control.max_age = seconds
    return response.make_conditional(request)


@bp.route("/feed.xml")
def site_feed() -> BaseResponse:
    """The Atom feed of the newest posts on the site."""
    return _send(feeds.site_feed(), ATOM, FEED_SECONDS)


@bp.route("/users/<handle:handle>/feed.xml")
def author_feed(handle: str) -> BaseResponse:
    """The Atom feed of one person's newest posts."""
    person = user_services.get_by_handle(handle)
    if person is None:
        abort(404)
    return _send(feeds.author_feed(person), ATOM, FEED_SECONDS)


@bp.route("/tags/<slug>/feed.xml")
def tag_feed(slug: str) -> BaseResponse:
    """The Atom feed of the newest posts that carry one tag."""
    tag = post_services.get_tag(slug)
    if tag is None:
        abort(404)
    return _send(feeds.tag_feed(tag), ATOM, FEED_SECONDS)


@bp.route("/sitemap.xml")
def sitemap() -> BaseResponse:
    """The sitemap index: one part for the fixed pages, then parts of posts, profiles, tags."""
    return _send(feeds.sitemap_index(), XML, SITEMAP_SECONDS)


@bp.route("/sitemaps/<any(pages, posts, people, tags):section>-<int:chunk>.xml")
def sitemap_part(section: str, chunk: int) -> BaseResponse:
    """One part of the sitemap: up to ``SITEMAP_CHUNK`` addresses with their last change."""
    document = feeds.sitemap_part(section, chunk)
    if document is None:
        abort(404)
    return _send(document, XML, SITEMAP_SECONDS)


@bp.route("/robots.txt")
def robots() -> Response:
    """Tell crawlers where the sitemap is, and that the back office is not for them."""
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "",
        f"Sitemap: {external_url('discovery.sitemap')}",
    ]
    response = Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
    response.cache_control.public = True
    response.cache_control.max_age = SITEMAP_SECONDS
    return response
