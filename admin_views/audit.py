"""The audit trail: read-only, for admins."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from markupsafe import escape

from admin_views.base import SecureModelView
from portal import security
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent


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

    subject = security.AUDIT
    operations = {"view_details": security.VIEW}

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
        "id": _l("#"),
        "created_at": _l("When"),
        "actor_label": _l("Who"),
        "actor_id": _l("Account number"),
        "source": _l("Source"),
        "address": _l("From"),
        "action": _l("Action"),
        "object_type": _l("Object"),
        "object_id": _l("Object number"),
        "summary": _l("Summary"),
        "changes": _l("Changes"),
    }
    column_filters = ("actor_label", "action", "object_type", "object_id", "source", "created_at")
    column_choices = {
        # From the constants every event is recorded with: a new action shows up here.
        "action": [(name, name) for name in AUDIT.ACTIONS],
        "object_type": [(name, name) for name in AUDIT.OBJECT_TYPES],
        "source": list(AUDIT.SOURCES.items()),
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
