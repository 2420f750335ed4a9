"""Links that leave the site (in emails) are built from the configured base URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

from flask import current_app
from werkzeug.routing import BaseConverter
from werkzeug.routing import MapAdapter

from portal.users import constants as USER

# Where the back office is mounted; the response headers and the audit
# trail's "source" tell its pages by ``is_admin_path``.
ADMIN_PREFIX = "/admin"


def is_admin_path(path: str) -> bool:
    """Tell whether ``path`` is the back office or a page under it."""
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def external_url(endpoint: str, *, _anchor: str | None = None, **values: Any) -> str:
    """Build an absolute URL from ``PORTAL_BASE_URL``, never from the request's Host.

    ``_anchor`` adds a fragment, as it does for ``url_for``.
    """
    url = external_adapter().build(endpoint, values, force_external=True)
    return f"{url}#{quote(_anchor)}" if _anchor else url


def external_adapter() -> MapAdapter:
    """Return a URL builder bound to ``PORTAL_BASE_URL``, for pages of many absolute links.

    ``external_adapter().build(endpoint, values, force_external=True)``; binding once
    is what makes a sitemap of thousands of links cheap.
    """
    base = urlsplit(current_app.config["PORTAL_BASE_URL"])
    return current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )


# The largest id an INTEGER primary key holds on PostgreSQL (SQLite's are
# wider, but no row here gets a larger one). A bigger number in a link names
# no row, and the database would refuse the query it went into.
MAX_ROW_ID = 2**31 - 1


def parse_row_id(value: Any) -> int | None:
    """Read a row id from a link or a form: ASCII digits naming a row that may exist, else None.

    Refuses what ``str.isdigit`` lets through but ``int`` does not read ("²"),
    numbers past ``MAX_ROW_ID``, signs, spaces and anything not a string or int.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number = int(value)
    else:
        return None
    return number if 0 < number <= MAX_ROW_ID else None


def is_safe_next(target: str | None) -> bool:
    """Tell whether ``target`` is a path on this site, safe to redirect to."""
    if not target or not target.startswith("/"):
        return False
    if target.startswith("//") or "\\" in target:
        return False
    if any(ord(char) < 32 or ord(char) == 127 for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


class TokenConverter(BaseConverter):
    """Match a signed token (it always holds a dot), so ``confirm/resend/`` is not one."""

    regex = r"[A-Za-z0-9_\-.]*\.[A-Za-z0-9_\-.]+"


class HandleConverter(BaseConverter):
    """Match a profile handle, never one of the account pages' own names.

    So ``GET /users/logout/`` still finds the logout route (and answers 405)
    instead of looking for a person called "logout".
    """

    regex = (
        r"(?!(?:" + "|".join(sorted(USER.RESERVED_HANDLES)) + r")(?:/|$))"
        rf"[a-z0-9][a-z0-9-]{{0,{USER.HANDLE_MAX_LENGTH - 1}}}"
    )
