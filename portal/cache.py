"""Rendered pages kept for visitors who are not signed in.

Redis holds them when ``REDIS_URL`` is set, so every worker shares them;
otherwise each process keeps a small bounded dictionary. Keys carry what
changes a page (a post's ``updated_at`` and comment count, the page's
cursor), so most changes show at once; the rest (a renamed author, say)
show within ``PAGE_CACHE_SECONDS``. A page is stored only when it holds no
CSP nonce and no per-visitor state, so a cached copy is the same for everyone.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import redis
from flask import Flask
from flask import current_app
from flask import g
from flask import session
from flask_babel import get_locale
from flask_login import current_user

EXTENSION = "portal.page_cache"
LOCAL_ENTRIES = 512


class LocalStore:
    """A least-recently-used dictionary of (expiry, page), per process."""

    def __init__(self, entries: int = LOCAL_ENTRIES) -> None:
        self.entries = entries
        self.pages: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def get(self, key: str) -> str | None:
        found = self.pages.get(key)
        if found is None:
            return None
        expires, page = found
        if expires < time.monotonic():
            self.pages.pop(key, None)
            return None
        self.pages.move_to_end(key)
        return page

    def set(self, key: str, page: str, seconds: int) -> None:
        self.pages[key] = (time.monotonic() + seconds, page)
        self.pages.move_to_end(key)
        while len(self.pages) > self.entries:
            self.pages.popitem(last=False)


class RedisStore:
    """Pages in Redis with an expiry; a Redis that does not answer is a miss, not an error."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self.prefix = prefix

    def get(self, key: str) -> str | None:
        try:
            value = self.client.get(self.prefix + key)
        except redis.RedisError:
            return None
        return value.decode() if isinstance(value, bytes) else None

    def set(self, key: str, page: str, seconds: int) -> None:
        try:
            self.client.set(self.prefix + key, page.encode(), ex=seconds)
        except redis.RedisError:
            current_app.logger.warning("page cache: Redis did not answer; page not kept")


def init_cache(app: Flask) -> None:
    """Choose where pages are kept (nowhere when ``PAGE_CACHE_SECONDS`` is 0)."""
    store: Any = None
    if app.config["PAGE_CACHE_SECONDS"] > 0:
        url = app.config.get("REDIS_URL")
        store = RedisStore(url, "portal:page:") if url else LocalStore()
    app.extensions[EXTENSION] = store


def _store() -> Any:
    return current_app.extensions.get(EXTENSION)


def cacheable() -> bool:
    """Tell whether this request may be served from, and stored in, the cache."""
    # A signed-in account or a session holding anything (a flashed message, a
    # CSRF token) sees its own page.
    return _store() is not None and not current_user.is_authenticated and not session


def page_key(*parts: Any) -> str:
    """Return the cache key of a page made of ``parts``, in this request's language."""
    # Pages kept for visitors are in the language they were rendered in.
    raw = "\x1f".join(str(part) for part in (get_locale(), *parts))
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def get_page(key: str) -> str | None:
    return _store().get(key) if cacheable() else None


def keep_page(key: str, page: str) -> None:
    """Store ``page`` unless it depends on this request (its CSP nonce, a session)."""
    nonce = g.get("csp_nonce")
    if not cacheable() or (nonce and nonce in page):
        return
    _store().set(key, page, current_app.config["PAGE_CACHE_SECONDS"])
