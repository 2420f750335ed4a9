"""How the screens show values: timestamps, authors, stored HTML, status badges.

Overrides of Flask-Admin internals: none.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_admin.model import typefmt
from markupsafe import Markup

# What Flask-Admin calls to show one column of one row.
Formatter = Callable[[Any, Any, Any, str], Any]


def format_datetime(view: Any, value: datetime, name: str) -> str:
    """Show a timestamp to the second, in UTC, the zone every screen shows."""
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


# Column types -> formatters, for the lists and for the details pages.
TYPE_FORMATTERS = {**typefmt.BASE_FORMATTERS, datetime: format_datetime}
DETAIL_TYPE_FORMATTERS = {**typefmt.DETAIL_FORMATTERS, datetime: format_datetime}


def author_of(view: Any, context: Any, model: Any, name: str) -> str:
    """Show a post's or comment's author as "Name <email>"."""
    return str(model.author)


def stored_html(view: Any, context: Any, model: Any, name: str) -> Markup:
    """Show a body's HTML as the public page does: it was sanitised when saved."""
    return Markup('<div class="border rounded p-3">{}</div>').format(Markup(model.body_html))


def choice_label(labels: Mapping[Any, str]) -> Formatter:
    """Show a coded column (a role, a status) by its label, as plain text."""

    def label(view: Any, context: Any, model: Any, name: str) -> str:
        return labels[getattr(model, name)]

    return label


def status_badge(labels: Mapping[Any, str], colours: Mapping[Any, str]) -> Formatter:
    """Show a coded column as a badge: its label, in its Bootstrap colour."""

    def badge(view: Any, context: Any, model: Any, name: str) -> Markup:
        value = getattr(model, name)
        return Markup('<span class="badge badge-{}">{}</span>').format(
            colours[value], labels[value]
        )

    return badge
