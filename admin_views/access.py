"""The access rules of the back office: every answer comes from ``portal.security.can``.

Anonymous visitors are sent to the login page with a safe ``next``; signed-in
accounts the gate does not let view the admin site, or this screen, get 403.
Every screen inherits this, and with it ``redirects.OnSiteRedirectsMixin``:
no screen redirects off the site.

What a screen lets a role do (create, edit, delete, export, view details, each
action) is asked of the gate on every request, and the same answer guards the
endpoint: a crafted POST to ``new/``, ``edit/``, ``delete/``, ``action/`` or
``ajax/update/`` gets 403, like the hidden button.

Overrides of Flask-Admin internals:

- ``BaseView._handle_view`` (flask_admin.base), in ``ModelAccessMixin``: after
  Flask-Admin's own check, refuses an operation or an action the current
  user may not perform. Reads the internal ``_actions_data`` of
  ``ActionsMixin`` (flask_admin.actions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from flask import abort
from flask import flash
from flask import has_request_context
from flask import redirect
from flask import request
from flask import url_for
from flask_login import current_user

from admin_views.redirects import OnSiteRedirectsMixin
from portal import security
from portal.extensions import login_manager

if TYPE_CHECKING:
    from flask_admin.contrib.sqla import ModelView as _ModelView
else:
    _ModelView = object

# Flask-Admin view functions, and the operation each one performs.
OPERATIONS = {
    "create_view": "create",
    "edit_view": "edit",
    "ajax_update": "edit",
    "delete_view": "delete",
    "details_view": "view_details",
    "export": "export",
}


class SecureViewMixin(OnSiteRedirectsMixin):
    """Grant a view to whoever the gate lets do ``access`` (an action and a subject)."""

    access: tuple[str, str] = (security.VIEW, security.ADMIN_SITE)

    def is_accessible(self) -> bool:
        return bool(
            current_user.is_authenticated
            and security.can(current_user, security.VIEW, security.ADMIN_SITE)
            and security.can(current_user, *self.access)
        )

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        problem = security.refusal(current_user, security.VIEW, security.ADMIN_SITE)
        if problem == security.SECOND_FACTOR_REQUIRED:
            # Staff whose role needs a second factor set one up (or sign in with it) first.
            flash(problem, "error")
            return redirect(url_for("mfa.settings"))
        abort(403)

    def is_visible(self) -> bool:
        # Menu entries a role cannot use are not shown.
        return self.is_accessible()


def _allowed(action: str | None, subject: str) -> bool:
    if action is None:
        return False
    if not has_request_context():
        # Flask-Admin builds its forms and column lists at start-up: an
        # operation that some role may use is configured, then checked per request.
        return True
    return security.can(current_user, action, subject)


class ModelAccessMixin(SecureViewMixin, _ModelView):
    """A model screen whose every operation is asked of the gate.

    Subclasses name their ``subject`` and, in ``operations``, the gate action
    behind each Flask-Admin operation they offer (one not listed is off);
    ``action_rules`` names the gate action behind each bulk action.
    """

    subject: str = security.ADMIN_SITE
    operations: dict[str, str] = {"view_details": security.VIEW}
    action_rules: dict[str, str] = {}

    @property
    def access(self) -> tuple[str, str]:  # type: ignore[override]
        return (security.VIEW, self.subject)

    def has_create_permission(self) -> bool:
        return _allowed(self.operations.get("create"), self.subject)

    def has_edit_permission(self) -> bool:
        return _allowed(self.operations.get("edit"), self.subject)

    def has_delete_permission(self) -> bool:
        return _allowed(self.operations.get("delete"), self.subject)

    def has_export_permission(self) -> bool:
        return _allowed(self.operations.get("export"), self.subject)

    def has_view_details_permission(self) -> bool:
        return _allowed(self.operations.get("view_details"), self.subject)

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
        rule = self.action_rules.get(name)
        return _allowed(rule, self.subject) and super().is_action_allowed(name)

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
