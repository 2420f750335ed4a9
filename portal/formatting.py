"""Small text helpers shared by the pages, the admin and the commands.

Times are stored in UTC. A page shows them in the reader's language and time
zone (``show_datetime``, ``show_date``: Flask-Babel's selectors in
``portal.i18n`` pick both) and keeps the exact instant, in UTC, for machines
(``machine_time`` in ``<time datetime>``).
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from flask import Flask
from flask_babel import format_date
from flask_babel import format_datetime
from flask_babel import format_decimal
from flask_babel import to_user_timezone
from flask_babel import to_utc


def machine_time(moment: datetime | None) -> str:
    """Return ``moment`` as ISO 8601 in UTC to the second, for ``<time datetime>``."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def show_datetime(moment: datetime | None, style: str = "medium") -> str:
    """Return a date and time in the reader's language and zone: ``02.12.2026, 21:10:22``."""
    return "" if moment is None else str(format_datetime(moment, style))


def show_date(moment: datetime | None, style: str = "long") -> str:
    """Return the day ``moment`` falls on in the reader's zone, in their language."""
    return "" if moment is None else str(format_date(moment, style))


def show_month(moment: datetime | None) -> str:
    """Return the month and year ``moment`` falls in: ``December 2026``, ``Dezember 2026``."""
    return "" if moment is None else str(format_date(moment, "LLLL y"))


def show_number(number: Any) -> str:
    """Return a number with the reader's separators: ``12,345`` or ``12.345``."""
    return str(format_decimal(number))


def from_reader_time(typed: datetime) -> datetime:
    """Read a time typed without a zone (a ``datetime-local`` input) in the reader's zone.

    Return the instant in UTC, as it is stored. Daylight-saving gaps and
    repeats resolve as the zone's rules say (pytz's ``localize``).
    """
    if typed.tzinfo is not None:
        return typed.astimezone(UTC)
    return to_utc(typed).replace(tzinfo=UTC)


def to_reader_time(moment: datetime) -> datetime:
    """Return ``moment`` as the reader's wall-clock time, without a zone (for a form's input)."""
    return to_user_timezone(moment).replace(tzinfo=None)


def reader_time_input(moment: datetime | None) -> str:
    """Return ``moment`` as a ``datetime-local`` value in the reader's zone (``2026-01-16T00:30``).

    The pair of ``from_reader_time``: a form shows a stored time with it.
    """
    if moment is None:
        return ""
    return to_user_timezone(moment).strftime("%Y-%m-%dT%H:%M")


def init_filters(app: Flask) -> None:
    """Make the formatters template filters: ``{{ post.published_at|datetime }}``."""
    app.jinja_env.filters.update(
        datetime=show_datetime,
        date=show_date,
        month=show_month,
        number=show_number,
        machine_time=machine_time,
    )


def format_age(seconds: float) -> str:
    """Say how long ``seconds`` is in the two largest units: ``3d 4h``, ``5m 2s``."""
    remaining = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return " ".join(parts[:2])
