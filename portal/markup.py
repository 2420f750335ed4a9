"""Markdown from users, rendered and then sanitised against an allow-list.

Images are not allowed: the CSP would block other sites' images anyway, and
they would tell those sites who reads the page.

Rendering never trusts the parser alone: raw HTML is escaped by the parser,
and nh3 then keeps only the tags, attributes and URL schemes listed here, so
a bug in one layer does not reach a page.

Rendering has a bounded cost. The parser spends a little work per character
on prose, but some inputs make it try the same thing again and again: each
``[`` of a run of brackets starts a link that it then looks for, up to twenty
levels deep; every short line or list item costs a full pass of the block
rules. So the parsers here are metered: each line, each rule they try, each
token they make, each link they normalise and each character a link
destination scans costs work, and a body may spend ``WORK_ALLOWANCE`` plus
``WORK_PER_CHARACTER`` for each of its characters. Typical Markdown spends a
third of that or less, the densest real documents measured (API references,
changelogs) three quarters; past it the parser stops at once and
``MarkupTooCostly`` says why. No body then costs more than about three times
prose of its size (bench/render.py measures it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from functools import lru_cache
from html import escape
from html import unescape
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it import helpers as markdown_helpers
from markdown_it.ruler import Ruler

from portal.i18n import N_

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


# The work a body may make the parser do: this much, plus so much per character.
WORK_ALLOWANCE = 3_000
WORK_PER_CHARACTER = 2
# What each step costs, in work, roughly in proportion to its time.
LINE_WORK = 1  # a line: the block parser marks each one before any rule runs
BLOCK_RULE_WORK = 1  # a block rule tried on a line (a list item, a heading, ...)
INLINE_RULE_WORK = 1  # an inline rule tried at a character
INLINE_TOKEN_WORK = 4  # an inline token (text, emphasis, a link): made and rendered
SKIP_WORK = 1  # a look past one inline token (how link labels are found)
BLOCK_TOKEN_WORK = 6  # a block token: made, rendered and sanitised
DESTINATION_CHARACTERS = 8  # characters a link destination scans for one unit of work
LINK_WORK = 16  # a link's address or text normalised (parsed, encoded, checked)

TOO_COSTLY = N_(
    "This text has more formatting than it can hold: simplify its Markdown "
    "(long runs of brackets, asterisks or backslashes, or a great many very short "
    "lines or list items) or shorten it."
)

# The blocks a block rule may end without a blank line (markdown-it's "alt" chains).
_BLOCK_CHAINS = ("paragraph", "reference", "blockquote", "list")


class MarkupTooCostly(ValueError):
    """Rendering this Markdown would cost more work than its length allows."""

    def __init__(self) -> None:
        super().__init__(TOO_COSTLY)


class _Meter:
    # The work one render may still spend, and the block tokens already paid for.
    __slots__ = ("left", "block_tokens", "inline_list", "inline_tokens")

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.block_tokens = 0
        self.inline_list: object = None
        self.inline_tokens = 0

    def spend(self, work: int) -> None:
        self.left -= work
        if self.left < 0:
            raise MarkupTooCostly


_meter: ContextVar[_Meter] = ContextVar("markup_meter")


def work_budget(source: str) -> int:
    """The work rendering ``source`` may cost."""
    return WORK_ALLOWANCE + int(WORK_PER_CHARACTER * len(source))


@contextmanager
def _metered_run(source: str) -> Iterator[_Meter]:
    meter = _Meter(work_budget(source))
    meter.spend(LINE_WORK * source.count("\n"))
    reset = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(reset)


def _block_rule(rule: Callable[..., bool]) -> Callable[..., bool]:
    def metered(state: Any, start: int, end: int, silent: bool) -> bool:
        meter = _meter.get()
        meter.spend(BLOCK_RULE_WORK)
        matched = rule(state, start, end, silent)
        # One rule can make many tokens (a table makes three per cell): pay for
        # them as they appear. Nested blocks share the one token list.
        made = len(state.tokens) - meter.block_tokens
        if made > 0:
            meter.block_tokens += made
            meter.spend(BLOCK_TOKEN_WORK * made)
        return matched

    return metered


def _inline_rule(rule: Callable[..., bool]) -> Callable[..., bool]:
    def metered(state: Any, silent: bool) -> bool:
        meter = _meter.get()
        meter.spend(INLINE_RULE_WORK)
        matched = rule(state, silent)
        # Each paragraph has its token list; a link's text adds to its paragraph's.
        tokens = state.tokens
        if tokens is not meter.inline_list:
            meter.inline_list, meter.inline_tokens = tokens, 0
        made = len(tokens) - meter.inline_tokens
        if made > 0:
            meter.inline_tokens += made
            meter.spend(INLINE_TOKEN_WORK * made)
        return matched

    return metered


def _skip_token(skip: Callable[[Any], None]) -> Callable[[Any], None]:
    def metered(state: Any) -> None:
        _meter.get().spend(SKIP_WORK)
        skip(state)

    return metered


def _link_destination(parse: Callable[..., Any]) -> Callable[..., Any]:
    # A destination is scanned one character at a time up to a space, and a run
    # of unclosed links scans the same run again for each of them.
    def metered(text: str, start: int, end: int) -> Any:
        result = parse(text, start, end)
        stop = result.pos if result.ok else _scan_end(text, start, end)
        _meter.get().spend((stop - start) // DESTINATION_CHARACTERS)
        return result

    return metered


def _link_normaliser(normalise: Callable[[str], str]) -> Callable[[str], str]:
    def metered(url: str) -> str:
        _meter.get().spend(LINK_WORK)
        return normalise(url)

    return metered


def _scan_end(text: str, start: int, end: int) -> int:
    # Where a failed destination scan stopped at the latest: the next space,
    # control character or line end, found at C speed.
    space = text.find(" ", start, end)
    newline = text.find("\n", start, end)
    found = [index for index in (space, newline) if index >= 0]
    return min(found) if found else end


def _wrap(ruler: Ruler[Any], wrapper: Callable[[Any], Any]) -> None:
    # Replace each active rule with its metered self, keeping the chains it ends.
    chains = {chain: ruler.getRules(chain) for chain in _BLOCK_CHAINS}
    for name, rule in zip(ruler.get_active_rules(), ruler.getRules(""), strict=True):
        alt = [chain for chain, rules in chains.items() if rule in rules]
        ruler.at(name, wrapper(rule), {"alt": alt})


def _metered(parser: MarkdownIt) -> MarkdownIt:
    _wrap(parser.block.ruler, _block_rule)
    _wrap(parser.inline.ruler, _inline_rule)
    parser.inline.skipToken = _skip_token(  # type: ignore[method-assign,assignment]
        parser.inline.skipToken
    )
    # Every link's address and text go through these: mdurl parses and encodes them.
    parser.normalizeLink = _link_normaliser(  # type: ignore[method-assign,assignment]
        parser.normalizeLink
    )
    parser.normalizeLinkText = _link_normaliser(  # type: ignore[method-assign,assignment]
        parser.normalizeLinkText
    )
    # The link rules reach the helpers through the parser: give it its own.
    parser.helpers = SimpleNamespace(  # type: ignore[assignment]
        parseLinkLabel=markdown_helpers.parseLinkLabel,
        parseLinkDestination=_link_destination(markdown_helpers.parseLinkDestination),
        parseLinkTitle=markdown_helpers.parseLinkTitle,
    )
    return parser


@cache
def _post_parser() -> MarkdownIt:
    # CommonMark with tables and strikethrough; raw HTML in the source is shown as text.
    return _metered(MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]))


@cache
def _comment_parser() -> MarkdownIt:
    # A small subset for comments: paragraphs, emphasis, inline code and links.
    return _metered(
        MarkdownIt("zero", {"html": False, "breaks": True}).enable(
            ["emphasis", "backticks", "link", "newline", "escape", "autolink"]
        )
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


# Validating a body and then saving it render the same text: the second is free.
@lru_cache(maxsize=16)
def render_post(source: str) -> str:
    """Return the safe HTML for a post body written in Markdown.

    Raise ``MarkupTooCostly`` when the body would cost more than its length allows.
    """
    parser = _post_parser()
    env: dict[str, object] = {}
    with _metered_run(source):
        tokens = parser.parse(source, env)
    for token in tokens:
        # Tables mark alignment with a style attribute, which the sanitiser and
        # the CSP both drop; the align attribute survives both.
        if token.type in ("th_open", "td_open") and "style" in token.attrs:
            side = _ALIGN.get(str(token.attrs.pop("style")))
            if side:
                token.attrs["align"] = side
    return _clean(parser.renderer.render(tokens, parser.options, env), POST_TAGS)


@lru_cache(maxsize=16)
def render_comment(source: str) -> str:
    """Return the safe HTML for a comment: a small Markdown subset.

    Raise ``MarkupTooCostly`` when the comment would cost more than its length allows.
    """
    parser = _comment_parser()
    env: dict[str, object] = {}
    with _metered_run(source):
        tokens = parser.parse(source, env)
    return _clean(parser.renderer.render(tokens, parser.options, env), COMMENT_TAGS)


# The tags after which a reader sees a break: their text is kept apart from the next.
_BLOCK_TAG = re.compile(r"<(?=/?(?:blockquote|br|h[1-6]|hr|li|ol|p|pre|table|td|th|tr|ul)\b)")


def plain_text(html: str) -> str:
    """Return the text a reader sees in sanitised ``html``: no tags, entities decoded.

    Blocks are kept apart by a space and runs of white space become one, so
    the result reads as a line (a search snippet, a link preview's description).
    """
    spaced = _BLOCK_TAG.sub(" <", html)
    return " ".join(unescape(nh3.clean(spaced, tags=set(), attributes={})).split())


def summary(html: str, limit: int = 200) -> str:
    """Return the start of ``html``'s text, at most ``limit`` characters, cut at a word."""
    text = plain_text(html)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


# Elements without content or end tag: nothing to close after a cut.
_VOID_TAGS = frozenset({"br", "hr", "img", "wbr"})
_SPACES = re.compile(r"\s+")


class _Shortener(HTMLParser):
    """Copy sanitised HTML until ``limit`` characters of text, then close what is open."""

    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.left = limit
        self.parts: list[str] = []
        self.open: list[str] = []
        self.wrote = False  # Some text is already kept.
        self.cut = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut:
            return
        self.parts.append(self.get_starttag_text() or "")
        if tag not in _VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.cut:
            self.parts.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if self.cut or tag not in self.open:
            return
        while self.open:
            closed = self.open.pop()
            self.parts.append(f"</{closed}>")
            if closed == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.cut:
            return
        # Runs of white space show as one character: count them so.
        text = _SPACES.sub(" ", data)
        if len(text) <= self.left:
            self.parts.append(escape(data, quote=False))
            self.left -= len(text)
            self.wrote = self.wrote or bool(text.strip())
            return
        kept = text[: self.left]
        if text[len(kept)] != " ":
            # Inside a word: back to the space before it, or before this text
            # when words came earlier (only a first word longer than the limit is cut).
            if " " in kept:
                kept = kept.rsplit(" ", 1)[0]
            elif self.wrote:
                kept = ""
        self.parts.append(escape(kept.rstrip(" ,;:.-"), quote=False) + "…")
        self.cut = True

    def result(self) -> str:
        return "".join(self.parts) + "".join(f"</{tag}>" for tag in reversed(self.open))


def shorten_html(html: str, limit: int, tags: frozenset[str] = COMMENT_TAGS) -> str:
    """Return sanitised ``html`` cut after ``limit`` characters of text, its markup kept whole.

    The text is cut at a word and ends in "…"; every element left open is
    closed, and the result is sanitised again (``tags``: those ``html`` may
    hold), so no cut can leave half a tag or an unclosed one on a page.
    """
    if len(html) <= limit:
        return html  # Its text is no longer than the whole.
    shortener = _Shortener(limit)
    shortener.feed(html)
    shortener.close()
    if not shortener.cut:
        return html
    return _clean(shortener.result(), tags)


_LINK = re.compile(r"<a\s[^>]*\bhref=", re.IGNORECASE)


def link_count(html: str) -> int:
    """Count the links in rendered, sanitised ``html``: written ones and autolinks alike."""
    return len(_LINK.findall(html))
