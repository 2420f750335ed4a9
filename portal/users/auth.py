"""Flask-Login wiring: the cookie holds a session token, the database the session."""

from __future__ import annotations

from flask import current_app
from flask import flash
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _
from flask_login import LoginManager
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.users import sessions
from portal.users.models import User

# What Flask-Login keeps in Flask's session for a signed-in browser.
LOGIN_KEYS = ("_user_id", "_fresh", "_id", "_remember_seconds")


def load_user(token: str) -> User | None:
    """Return the account for a session token, or None once that session is over.

    A session is over when its record is gone (sign-out, logout everywhere,
    a password or role change, disabling the account, staff ending it) or
    has outlived its idle or absolute lifetime.
    """
    return sessions.load(token)


def send_to_login() -> Response:
    """Send an anonymous visitor to the login page, remembering where they were."""
    flash(_("Please sign in to see that page."), "info")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("users.login", next=target))


def _carries_session() -> bool:
    """Tell whether the request brought a session or remember-me cookie at all."""
    config = current_app.config
    cookies = request.cookies
    return config["SESSION_COOKIE_NAME"] in cookies or config["REMEMBER_COOKIE_NAME"] in cookies


def settle_session() -> None:
    """Load the signed-in account before the view runs, and save what loading wrote.

    The last-seen time (once a minute) and the removal of an expired session
    are committed here, before the view changes anything. A browser whose
    session ended forgets its token, and its remember-me cookie is deleted.
    A visitor without cookies costs nothing.
    """
    if not _carries_session():
        return
    if request.endpoint == "static":
        # Static files need no account; whatever loaded one anyway is still saved.
        sessions.settle()
        return
    signed_in = current_user.is_authenticated
    sessions.settle()
    if not signed_in and "_user_id" in session:
        for key in LOGIN_KEYS:
            session.pop(key, None)
        session["_remember"] = "clear"


def init_login(manager: LoginManager) -> None:
    """Configure the login manager for this app."""
    manager.user_loader(load_user)
    manager.unauthorized_handler(send_to_login)
    manager.login_view = "users.login"
    manager.session_protection = "basic"
