"""The access rules of the back office, in one place.

Anonymous visitors are sent to the login page with a safe ``next``; signed-in
accounts without the staff permission get 403. Every screen inherits this.
"""

from __future__ import annotations

from typing import Any

from flask import abort
from flask import request
from flask_admin import AdminIndexView
from flask_admin import expose
from flask_login import current_user
from flask_principal import Permission

from portal.extensions import login_manager
from portal.security import staff_permission


class SecureViewMixin:
    """Grant a view to holders of ``permission``; everyone else is turned away."""

    permission: Permission = staff_permission

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and self.permission.can())

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        abort(403)

    def is_visible(self) -> bool:
        # Menu entries a role cannot use are not shown.
        return self.is_accessible()


class SecureIndexView(SecureViewMixin, AdminIndexView):
    """The back office's home page, for staff."""

    @expose("/")
    def index(self) -> str:
        return self.render("admin/index.html", user=current_user, path=request.path)
