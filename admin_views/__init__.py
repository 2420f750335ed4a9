"""The back office at /admin, built fresh for each app."""

from __future__ import annotations

import base64
import hashlib

from flask import Flask
from flask import url_for
from flask_admin import Admin
from flask_admin.menu import MenuLink
from flask_admin.theme import Bootstrap4Theme

from admin_views.base import SecureIndexView
from admin_views.emails import ComposeView
from admin_views.emails import EmailView
from admin_views.emails import PurgeView
from portal.emails.models import Email
from portal.extensions import db
from portal.http import ADMIN_HANDLER_HASHES
from portal.http import csp_nonce


class SiteLink(MenuLink):
    """A menu link back to the public site."""

    def get_url(self) -> str:
        return url_for("site.index")


def init_admin(app: Flask) -> Admin:
    """Create this app's ``Admin`` (a shared one would break a second app)."""
    admin = Admin(
        app,
        name=f"{app.config['PORTAL_NAME']} admin",
        index_view=SecureIndexView(name="Dashboard", url="/admin"),
        theme=Bootstrap4Theme(fluid=True),
        csp_nonce_generator=csp_nonce,
    )
    admin.add_view(EmailView(Email, db, name="Queue", category="Email", endpoint="email"))
    admin.add_view(ComposeView(name="Compose", category="Email", endpoint="email_compose"))
    admin.add_view(PurgeView(name="Purge", category="Email", endpoint="email_purge"))
    admin.add_link(SiteLink(name="Back to the site"))
    app.extensions[ADMIN_HANDLER_HASHES] = inline_handler_hashes(admin)
    return admin


def inline_handler_hashes(admin: Admin) -> list[str]:
    """CSP hashes of the inline handlers and javascript: links Flask-Admin renders."""
    handlers = {
        "javascript:void(0)",
        "return false;",
        "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    }
    for view in admin._views:
        for name, _label in getattr(view, "_actions", None) or []:
            handlers.add(f"return modelActions.execute('{name}');")
    digests = (hashlib.sha256(handler.encode()).digest() for handler in sorted(handlers))
    return [f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests]
