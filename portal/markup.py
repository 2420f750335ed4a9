"""Markdown from users, rendered and then sanitised against an allow-list.

Images are not allowed: the CSP would block other sites' images anyway, and
they would tell those sites who reads the page.

Rendering never trusts the parser alone: raw HTML is escaped by the parser,
and nh3 then keeps only the tags, attributes and URL schemes listed here, so
a bug in one layer does not reach a page.
"""

from __future__ import annotations

from functools import cache

import nh3
from markdown_it import MarkdownIt

LINK_REL = "nofollow noopener"
URL_SCHEMES = frozenset({"http", "https", "mailto"})

POST_TAGS = frozenset(
    {
        "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "li", "ol", "p", "pre", "strong", "table", "tbody", "td",
        "th", "thead", "tr", "ul", "del", "s",
    }
)  # fmt: skip
COMMENT_TAGS = frozenset({"a", "br", "code", "em", "p", "strong"})
ATTRIBUTES = {
    "a": {"href", "title"},
    "th": {"align"},
    "td": {"align"},
}


@cache
def _post_parser() -> MarkdownIt:
    # CommonMark with tables and strikethrough; raw HTML in the source is shown as text.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


@cache
def _comment_parser() -> MarkdownIt:
    # A small subset for comments: paragraphs, emphasis, inline code and links.
    return MarkdownIt("zero", {"html": False, "breaks": True}).enable(
        ["emphasis", "backticks", "link", "newline", "escape", "autolink"]
    )


def _clean(html: str, tags: frozenset[str]) -> str:
    return nh3.clean(
        html,
        tags=set(tags),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items() if tag in tags},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


_ALIGN = {f"text-align:{side}": side for side in ("left", "center", "right")}


def render_post(source: str) -> str:
    """Return the safe HTML for a post body written in Markdown."""
    parser = _post_parser()
    env: dict[str, object] = {}
    tokens = parser.parse(source, env)
    for token in tokens:
        # Tables mark alignment with a style attribute, which the sanitiser and
        # the CSP both drop; the align attribute survives both.
        if token.type in ("th_open", "td_open") and "style" in token.attrs:
            side = _ALIGN.get(str(token.attrs.pop("style")))
            if side:
                token.attrs["align"] = side
    return _clean(parser.renderer.render(tokens, parser.options, env), POST_TAGS)


def render_comment(source: str) -> str:
    """Return the safe HTML for a comment: a small Markdown subset."""
    return _clean(_comment_parser().render(source), COMMENT_TAGS)
