"""The back office at /admin, built fresh for each app."""

from __future__ import annotations

from flask import Flask
from flask import url_for
from flask_admin import Admin
from flask_admin.menu import MenuLink
from flask_admin.theme import Bootstrap4Theme

from admin_views.base import SecureIndexView
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
    admin.add_link(SiteLink(name="Back to the site"))
    return admin
