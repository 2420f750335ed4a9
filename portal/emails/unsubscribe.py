"""Unsubscribe links: signed per recipient and per category, built from PORTAL_BASE_URL.

The one-click link (RFC 8058) signs the address and one category: it can
stop that category for that address and nothing else, and nobody without
the secret key can make one. It does not expire, as a mail client may keep
the ``List-Unsubscribe`` header for as long as it keeps the message; using
it twice changes nothing the second time. The preferences link signs the
address alone, under its own salt, and expires
(``EMAIL_PREFERENCES_TOKEN_MAX_AGE``).
"""

from __future__ import annotations

from email.utils import parseaddr
from urllib.parse import quote

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeSerializer
from itsdangerous import URLSafeTimedSerializer

from portal.emails import constants as EMAIL
from portal.urls import external_url

UNSUBSCRIBE_SALT = "portal.emails.unsubscribe"
PREFERENCES_SALT = "portal.emails.preferences"
UNSUBSCRIBE_ENDPOINT = "email_links.unsubscribe"
PREFERENCES_ENDPOINT = "email_links.token_preferences"


class LinkError(Exception):
    """A link that is forged, expired, or for account mail."""


def _one_click() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def _preferences() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=PREFERENCES_SALT)


def unsubscribe_token(address: str, category: int) -> str:
    """Sign ``address`` and ``category`` for the one-click link; account mail has none."""
    if category not in EMAIL.OPTIONAL_CATEGORIES:
        raise ValueError("account mail cannot be unsubscribed from")
    return _one_click().dumps({"a": address.lower(), "c": EMAIL.CATEGORY[category]})


def read_unsubscribe(token: str) -> tuple[str, int]:
    """Return the address and category a one-click token names; raise ``LinkError``."""
    try:
        payload = _one_click().loads(token)
    except BadSignature:
        raise LinkError(_("This link is not valid.")) from None
    by_name = {EMAIL.CATEGORY[category]: category for category in EMAIL.OPTIONAL_CATEGORIES}
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("a"), str)
        or payload.get("c") not in by_name
    ):
        raise LinkError(_("This link is not valid."))
    return payload["a"], by_name[payload["c"]]


def preferences_token(address: str) -> str:
    """Sign ``address`` for the preferences page reached from a message's footer."""
    return _preferences().dumps({"a": address.lower()})


def read_preferences(token: str) -> str:
    """Return the address a preferences token names; raise ``LinkError``."""
    max_age = current_app.config["EMAIL_PREFERENCES_TOKEN_MAX_AGE"]
    try:
        payload = _preferences().loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkError(_("This link has expired.")) from None
    except BadSignature:
        raise LinkError(_("This link is not valid.")) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), str):
        raise LinkError(_("This link is not valid."))
    return str(payload["a"])


def unsubscribe_url(address: str, category: int) -> str:
    return external_url(UNSUBSCRIBE_ENDPOINT, token=unsubscribe_token(address, category))


def preferences_url(address: str) -> str:
    return external_url(PREFERENCES_ENDPOINT, token=preferences_token(address))


def footer_links(address: str, category: int) -> dict[str, str | None]:
    """The template values of a message's footer: both links, or None for account mail."""
    if category not in EMAIL.OPTIONAL_CATEGORIES:
        return {"unsubscribe_url": None, "preferences_url": None}
    return {
        "unsubscribe_url": unsubscribe_url(address, category),
        "preferences_url": preferences_url(address),
    }


def mailto_address() -> str:
    """Where ``List-Unsubscribe``'s mailto goes: ``EMAIL_UNSUBSCRIBE_MAILTO``, or the sender."""
    config = current_app.config
    configured = config.get("EMAIL_UNSUBSCRIBE_MAILTO")
    return configured or parseaddr(config["MAIL_DEFAULT_SENDER"])[1]


def list_headers(address: str, category: int) -> dict[str, str]:
    """The ``List-Unsubscribe`` headers of a message of ``category`` to ``address``.

    Empty for account mail. The URL goes first: a client that supports
    RFC 8058 POSTs to it; an older one may write to the mailto.
    """
    if category not in EMAIL.OPTIONAL_CATEGORIES:
        return {}
    mailto = f"mailto:{quote(mailto_address(), safe='@')}?subject=unsubscribe"
    return {
        "List-Unsubscribe": f"<{unsubscribe_url(address, category)}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
