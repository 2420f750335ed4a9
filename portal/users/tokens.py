"""Signed, expiring, single-use links for account emails.

Each token signs the state it is meant to change (the address being
confirmed, a digest of the current password hash), so it stops working as soon
as that state changes: after use, or after another change to the account.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeTimedSerializer

CONFIRM = "confirm-email"
RESET = "reset-password"
EMAIL_CHANGE = "change-email"
# An account created by an admin: the link sets its first password.
INVITE = "invite"

MAX_AGE_SETTING = {
    CONFIRM: "CONFIRM_TOKEN_MAX_AGE",
    RESET: "RESET_TOKEN_MAX_AGE",
    EMAIL_CHANGE: "EMAIL_CHANGE_TOKEN_MAX_AGE",
    INVITE: "INVITE_TOKEN_MAX_AGE",
}


class TokenError(Exception):
    """A token that is forged, expired, or for another purpose."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal.{purpose}")


def fingerprint(value: str) -> str:
    """Return a short keyed digest of ``value`` that reveals nothing about it."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:24]


def make(purpose: str, payload: dict[str, Any]) -> str:
    """Sign ``payload`` for ``purpose``."""
    return _serializer(purpose).dumps(payload)


def read(purpose: str, token: str) -> dict[str, Any]:
    """Return the payload of a valid token for ``purpose``; raise ``TokenError``."""
    max_age = current_app.config[MAX_AGE_SETTING[purpose]]
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError(_("This link has expired."), expired=True) from None
    except BadSignature:
        raise TokenError(_("This link is not valid.")) from None
    if not isinstance(payload, dict):
        raise TokenError(_("This link is not valid."))
    return payload
