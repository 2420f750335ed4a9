"""The audit trail: read-only, for admins."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from markupsafe import escape

from admin_views.base import SecureModelView
from portal.audit.models import AuditEvent
from portal.security import admin_permission

OBJECT_TYPES = ["user", "post", "comment", "email", "database"]
ACTIONS = [
    "create",
    "update",
    "delete",
    "set_role",
    "set_status",
    "set_password",
    "approve",
    "reject",
    "spam",
    "export",
    "retry",
    "cancel",
    "purge",
    "compose",
    "broadcast",
    "seed",
]


def _changes(view: Any, context: Any, model: AuditEvent, name: str) -> Markup:
    if not model.changes:
        return Markup('<span class="text-muted">no field changes</span>')
    rows = Markup("").join(
        Markup("<tr><th>{}</th><td>{}</td><td>→</td><td>{}</td></tr>").format(
            field, _value(old), _value(new)
        )
        for field, (old, new) in model.changes.items()
    )
    return Markup('<table class="table table-sm mb-0"><tbody>{}</tbody></table>').format(rows)


def _value(value: Any) -> Markup:
    if value is None:
        return Markup('<span class="text-muted">—</span>')
    return escape(str(value))


class AuditView(SecureModelView):
    """Who changed what, when and from where. Nobody edits history."""

    permission = admin_permission
    details_permission = admin_permission

    column_list = (
        "created_at",
        "actor_label",
        "source",
        "address",
        "action",
        "object_type",
        "object_id",
        "summary",
    )
    column_labels = {
        "created_at": "When",
        "actor_label": "Who",
        "address": "From",
        "object_type": "Object",
        "object_id": "Id",
    }
    column_filters = ("actor_label", "action", "object_type", "object_id", "source", "created_at")
    column_choices = {
        "action": [(name, name) for name in ACTIONS],
        "object_type": [(name, name) for name in OBJECT_TYPES],
        "source": [("admin", "admin"), ("site", "site"), ("cli", "manage.py")],
    }
    column_sortable_list = ("created_at",)
    column_default_sort = [("created_at", True), ("id", True)]
    column_details_list = (
        "id",
        "created_at",
        "actor_label",
        "actor_id",
        "source",
        "address",
        "action",
        "object_type",
        "object_id",
        "summary",
        "changes",
    )
    column_formatters_detail = {"changes": _changes}
    page_size = 50
    can_set_page_size = True
    page_size_options = (50, 100, 200)
