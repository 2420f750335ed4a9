"""The access rules of the back office, in one place.

Anonymous visitors are sent to the login page with a safe ``next``; signed-in
accounts without the staff permission get 403. Every screen inherits this.

What a screen lets a role do (create, edit, delete, export, view details, each
action) is decided on every request from the named permissions, and the same
decision guards the endpoint: a crafted POST to ``new/``, ``edit/``,
``delete/``, ``action/`` or ``ajax/update/`` gets 403, like the hidden button.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort
from flask import has_request_context
from flask import request
from flask_admin import AdminIndexView
from flask_admin import expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterConverter
from flask_admin.model import filters
from flask_admin.model import typefmt
from flask_login import current_user
from flask_principal import Permission

from portal.emails.services import queue_stats
from portal.extensions import login_manager
from portal.formatting import format_age
from portal.security import staff_permission

# Flask-Admin view functions, and the operation each one performs.
OPERATIONS = {
    "create_view": "create",
    "edit_view": "edit",
    "ajax_update": "edit",
    "delete_view": "delete",
    "details_view": "view_details",
    "export": "export",
}


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


def _allowed(permission: Permission | None) -> bool:
    if permission is None:
        return False
    if not has_request_context():
        # Flask-Admin builds its forms and column lists at start-up: an
        # operation that some role may use is configured, then checked per request.
        return True
    return bool(permission.can())


class PortalFilterConverter(FilterConverter):
    """Filters for our own column types (UTC timestamps filter like datetimes)."""

    @filters.convert("utcdatetime")
    def conv_utc_datetime(self, column: Any, name: str, **kwargs: Any) -> Any:
        return self.conv_datetime(column, name, **kwargs)


def _format_datetime(view: Any, value: datetime, name: str) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


class SecureModelView(SecureViewMixin, ModelView):
    """A model screen whose every operation is checked against a permission.

    Subclasses name a permission per operation (None turns it off) and per
    action in ``action_permissions`` (actions not listed need ``permission``).
    """

    create_permission: Permission | None = None
    edit_permission: Permission | None = None
    delete_permission: Permission | None = None
    export_permission: Permission | None = None
    details_permission: Permission | None = staff_permission
    action_permissions: dict[str, Permission] = {}
    filter_converter = PortalFilterConverter()
    # Timestamps to the second, in UTC, the zone every screen shows.
    column_type_formatters = {**typefmt.BASE_FORMATTERS, datetime: _format_datetime}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, datetime: _format_datetime}

    def has_create_permission(self) -> bool:
        return _allowed(self.create_permission)

    def has_edit_permission(self) -> bool:
        return _allowed(self.edit_permission)

    def has_delete_permission(self) -> bool:
        return _allowed(self.delete_permission)

    def has_export_permission(self) -> bool:
        return _allowed(self.export_permission)

    def has_view_details_permission(self) -> bool:
        return _allowed(self.details_permission)

    # Flask-Admin reads these flags in its views and templates; as properties
    # they are decided for the current user on every request.
    @property
    def can_create(self) -> bool:
        return self.has_create_permission()

    @property
    def can_edit(self) -> bool:
        return self.has_edit_permission()

    @property
    def can_delete(self) -> bool:
        return self.has_delete_permission()

    @property
    def can_export(self) -> bool:
        return self.has_export_permission()

    @property
    def can_view_details(self) -> bool:
        return self.has_view_details_permission()

    def is_action_allowed(self, name: str) -> bool:
        permission = self.action_permissions.get(name, self.permission)
        return bool(permission.can()) and super().is_action_allowed(name)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        response = super()._handle_view(name, **kwargs)
        if response is not None:
            return response
        operation = OPERATIONS.get(name)
        if operation is not None and not getattr(self, f"can_{operation}"):
            abort(403)
        if name == "action_view" and request.method == "POST":
            action = request.form.get("action", "")
            if action not in self._actions_data or not self.is_action_allowed(action):
                abort(403)
        return None


class SecureIndexView(SecureViewMixin, AdminIndexView):
    """The back office's home page, for staff."""

    @expose("/")
    def index(self) -> str:
        return self.render(
            "admin/index.html",
            user=current_user,
            email_stats=queue_stats(),
            format_age=format_age,
        )
