"""The back office at /admin, built fresh for each app.

Overrides of Flask-Admin internals:

- ``Admin._add_view_to_menu`` (flask_admin.base), in ``PortalAdmin``: a view
  with a ``menu_label`` gets a ``LiveMenuView``, whose label is computed on
  each page. ``LiveMenuView`` reads the view ``MenuView`` keeps in ``_view``
  (flask_admin.menu), and ``inline_handler_hashes`` reads ``Admin._views``
  and each view's ``_actions``.
"""

from __future__ import annotations

import base64
import hashlib

from flask import Flask
from flask import url_for
from flask_admin import Admin
from flask_admin import BaseView
from flask_admin.babel import gettext as admin_gettext
from flask_admin.menu import MenuLink
from flask_admin.menu import MenuView
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from admin_views.audit import AuditView
from admin_views.comments import CommentView
from admin_views.dashboard import DashboardView
from admin_views.emails import ComposeView
from admin_views.emails import EmailView
from admin_views.emails import PurgeView
from admin_views.posts import PostView
from admin_views.reports import ReportView
from admin_views.suppressions import SuppressionView
from admin_views.tags import TagView
from admin_views.theme import portal_theme
from admin_views.theme import register_upstream_templates
from admin_views.users import UserView
from portal.audit.models import AuditEvent
from portal.comments.models import Comment
from portal.emails.models import Email
from portal.emails.models import Suppression
from portal.extensions import db
from portal.http import ADMIN_HANDLER_HASHES
from portal.http import csp_nonce
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.urls import ADMIN_PREFIX
from portal.users.models import User


class LiveMenuView(MenuView):
    """A menu entry whose label the view computes on each page ("Comments (3 waiting)")."""

    @property
    def name(self) -> str:
        return str(self._view.menu_label())

    @name.setter
    def name(self, value: str) -> None:
        pass


class PortalAdmin(Admin):
    """Flask-Admin, with live menu labels for views that define ``menu_label``."""

    def _add_view_to_menu(self, view: BaseView) -> None:
        if hasattr(view, "menu_label"):
            self.add_menu_item(LiveMenuView(str(view.name), view), view.category)
        else:
            super()._add_view_to_menu(view)


class SiteLink(MenuLink):
    """A menu link back to the public site."""

    def get_url(self) -> str:
        return url_for("site.index")


def init_admin(app: Flask) -> Admin:
    """Create this app's ``Admin`` (a shared one would break a second app)."""
    register_upstream_templates(app)
    admin = PortalAdmin(
        app,
        name=_l("%(site)s admin", site=app.config["PORTAL_NAME"]),
        index_view=DashboardView(name=_l("Dashboard"), url=ADMIN_PREFIX),
        theme=portal_theme(),
        csp_nonce_generator=csp_nonce,
    )
    email = _l("Email")
    admin.add_view(UserView(User, db, name=_l("Accounts"), endpoint="user"))
    admin.add_view(PostView(Post, db, name=_l("Posts"), endpoint="post"))
    admin.add_view(TagView(Tag, db, name=_l("Tags"), endpoint="tag"))
    admin.add_view(CommentView(Comment, db, name=_l("Comments"), endpoint="comment"))
    admin.add_view(ReportView(name=_l("Reports"), endpoint="report"))
    admin.add_view(EmailView(Email, db, name=_l("Queue"), category=email, endpoint="email"))
    admin.add_view(ComposeView(name=_l("Compose"), category=email, endpoint="email_compose"))
    admin.add_view(PurgeView(name=_l("Purge"), category=email, endpoint="email_purge"))
    admin.add_view(
        SuppressionView(
            Suppression, db, name=_l("Suppressions"), category=email, endpoint="suppression"
        )
    )
    admin.add_view(AuditView(AuditEvent, db, name=_l("Audit trail"), endpoint="audit"))
    admin.add_link(SiteLink(name=_l("Back to the site")))
    app.extensions[ADMIN_HANDLER_HASHES] = inline_handler_hashes(admin)
    return admin


def inline_handler_hashes(admin: Admin) -> list[str]:
    """CSP hashes of the inline handlers and javascript: links Flask-Admin renders."""
    handlers = {"javascript:void(0)", "return false;"}
    # The delete button's confirmation is in the reader's language: allow each one.
    for language in admin.app.config["LANGUAGES"]:
        with admin.app.app_context(), force_locale(language):
            question = admin_gettext("Are you sure you want to delete this record?")
        handlers.add(f"return faHelpers.safeConfirm('{question}');")
    for view in admin._views:
        for name, _label in getattr(view, "_actions", None) or []:
            handlers.add(f"return modelActions.execute('{name}');")
    digests = (hashlib.sha256(handler.encode()).digest() for handler in sorted(handlers))
    return [f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests]
