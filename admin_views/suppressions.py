"""The suppression list: addresses broadcasts and notifications skip. Removing one is ADMIN only."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from admin_views.base import SecureModelView
from admin_views.formatters import status_badge
from portal import security
from portal.emails import constants as EMAIL
from portal.emails import suppressions
from portal.emails.models import Suppression

_reason = status_badge(
    EMAIL.REASON,
    {
        EMAIL.REASON_BOUNCE: "danger",
        EMAIL.REASON_UNSUBSCRIBE: "secondary",
        EMAIL.REASON_MANUAL: "warning",
    },
)


def _category(view: Any, context: Any, model: Suppression, name: str) -> str:
    return model.category_name


class SuppressionView(SecureModelView):
    """Who no longer gets broadcasts or notifications, since when, and why."""

    subject = security.EMAIL
    # Staff list and search; removing one is the gate's "delete" on email: ADMIN only.
    operations = {"delete": security.DELETE, "view_details": security.VIEW}

    column_list = ("address", "reason", "category", "source", "note", "created_at")
    column_labels = {
        "address": _l("Address"),
        "reason": _l("Reason"),
        "category": _l("Mail refused"),
        "source": _l("Source"),
        "note": _l("Note"),
        "created_at": _l("Since"),
    }
    column_searchable_list = ("address",)
    column_filters = ("reason", "source", "created_at")
    column_choices = {
        "reason": list(EMAIL.REASON.items()),
        "source": [(name, name) for name in EMAIL.SOURCES],
    }
    column_sortable_list = ("created_at",)
    column_default_sort = [("created_at", True), ("id", True)]
    column_formatters = {"reason": _reason, "category": _category}
    column_formatters_detail = {"reason": _reason, "category": _category}
    page_size = 50

    def delete_model(self, model: Suppression) -> bool:
        suppressions.remove(model)
        return True
