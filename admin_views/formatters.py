"""How the screens show values: timestamps, authors, stored HTML, status badges.

Overrides of Flask-Admin internals: none.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_admin.model import typefmt
from flask_babel import get_timezone
from flask_babel import gettext as _
from markupsafe import Markup

from portal.formatting import machine_time
from portal.formatting import show_datetime
from portal.i18n import name_label

# What Flask-Admin calls to show one column of one row.
Formatter = Callable[[Any, Any, Any, str], Any]


def format_datetime(view: Any, value: datetime, name: str) -> Markup:
    """Show a timestamp to the second in the reader's language and zone, naming the zone.

    The ``<time>`` element keeps the exact instant in UTC for machines and tools.
    """
    return Markup('<time datetime="{}">{} {}</time>').format(
        machine_time(value), show_datetime(value), get_timezone()
    )


def format_bool(view: Any, value: bool, name: str) -> str:
    """Show a yes/no column as the word, not "True" or an icon without text."""
    return _("Yes") if value else _("No")


# Column types -> formatters, for the lists and for the details pages.
TYPE_FORMATTERS = {**typefmt.BASE_FORMATTERS, datetime: format_datetime, bool: format_bool}
DETAIL_TYPE_FORMATTERS = {
    **typefmt.DETAIL_FORMATTERS,
    datetime: format_datetime,
    bool: format_bool,
}


def author_of(view: Any, context: Any, model: Any, name: str) -> str:
    """Show a post's or comment's author as "Name <email>"."""
    return str(model.author)


def stored_html(view: Any, context: Any, model: Any, name: str) -> Markup:
    """Show a body's HTML as the public page does: it was sanitised when saved."""
    return Markup('<div class="border rounded p-3">{}</div>').format(Markup(model.body_html))


def choice_label(labels: Mapping[Any, str]) -> Formatter:
    """Show a coded column (a role, a status) by its label, as plain text."""

    def label(view: Any, context: Any, model: Any, name: str) -> str:
        return name_label(labels[getattr(model, name)])

    return label


def status_badge(labels: Mapping[Any, str], colours: Mapping[Any, str]) -> Formatter:
    """Show a coded column as a badge: its label, in its Bootstrap colour."""

    def badge(view: Any, context: Any, model: Any, name: str) -> Markup:
        value = getattr(model, name)
        return Markup('<span class="badge badge-{}">{}</span>').format(
            colours[value], name_label(labels[value])
        )

    return badge
