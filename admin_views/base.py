"""The base of every model screen, put together from one module per job.

``access`` decides who may do what, ``lists`` keeps counts and search cheap,
``export`` streams CSV, ``actions`` asks for an action's input, ``formatters``
shows values (and ``redirects``, through ``access``, keeps every return
address on the site). Each of those modules lists, at its top, the
Flask-Admin internals it overrides.

Overrides of Flask-Admin internals: none here.
"""

from __future__ import annotations

from typing import Any

from flask_admin.contrib.sqla import ModelView

from admin_views.access import ModelAccessMixin
from admin_views.actions import InputActionsMixin
from admin_views.export import StreamedExportMixin
from admin_views.formatters import DETAIL_TYPE_FORMATTERS
from admin_views.formatters import TYPE_FORMATTERS
from admin_views.lists import CappedListMixin
from admin_views.lists import PortalFilterConverter
from portal.extensions import db
from portal.urls import parse_row_id

__all__ = ["SecureModelView"]


class SecureModelView(
    ModelAccessMixin, InputActionsMixin, StreamedExportMixin, CappedListMixin, ModelView
):
    """A model screen whose every operation is asked of the gate.

    Subclasses name their ``subject``, the gate action behind each operation
    they offer (``operations``) and behind each bulk action (``action_rules``).
    """

    filter_converter = PortalFilterConverter()
    # Timestamps to the second, in the reader's language and time zone.
    column_type_formatters = TYPE_FORMATTERS
    column_type_formatters_detail = DETAIL_TYPE_FORMATTERS
    # The attribute a page title, a heading and a row's checkbox name a row by
    # ("Edit · Uma User · Accounts"); None: the row's own text, else its number.
    label_attribute: str | None = None
    label_length = 60

    def object_label(self, model: Any) -> str:
        """Name one row in a few words: its label attribute, its text, or "#<id>"."""
        if self.label_attribute is not None:
            text = str(getattr(model, self.label_attribute) or "")
        elif type(model).__str__ is not object.__str__:
            text = str(model)
        else:
            text = f"#{self.get_pk_value(model)}"
        text = " ".join(text.split()) or f"#{self.get_pk_value(model)}"
        if len(text) <= self.label_length:
            return text
        return text[: self.label_length - 1] + "…"

    def get_one(self, id: Any) -> Any:
        # An id no row can have ("../etc/passwd", 23 digits) finds nothing, as
        # a deleted row's does, instead of making the database refuse the query.
        key = parse_row_id(id)
        return None if key is None else db.session.get(self.model, key)
