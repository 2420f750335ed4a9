"""Flask-Login wiring: the session id carries a version that can end it."""

from __future__ import annotations

from flask import flash
from flask import redirect
from flask import request
from flask import url_for
from flask_login import LoginManager
from werkzeug.wrappers import Response

from portal.extensions import db
from portal.users import constants as USER
from portal.users.models import User


def load_user(session_id: str) -> User | None:
    """Return the account for a session id, or None once that session is over.

    A session ends when the account's session version moved on (logout
    everywhere, a password or role change) or the account is INACTIVE.
    """
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or user.session_version != int(version) or user.status == USER.INACTIVE:
        return None
    return user


def send_to_login() -> Response:
    """Send an anonymous visitor to the login page, remembering where they were."""
    flash("Please sign in to see that page.", "info")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("users.login", next=target))


def init_login(manager: LoginManager) -> None:
    """Configure the login manager for this app."""
    manager.user_loader(load_user)
    manager.unauthorized_handler(send_to_login)
    manager.login_view = "users.login"
    manager.session_protection = "basic"
