"""Keyset pagination: pages that cost the same at row ten and at row ten million.

A page is found by the (timestamp, id) of the row next to it, not by an
OFFSET, so the database walks its index straight to the page and never
counts or skips the rows before it. Links carry that key as a short cursor.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Generic
from typing import TypeVar

from sqlalchemy import Select
from sqlalchemy import literal
from sqlalchemy import tuple_
from sqlalchemy.orm import InstrumentedAttribute

from portal.database import UTCDateTime
from portal.extensions import db

T = TypeVar("T")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
_CURSOR = re.compile(r"(\d{1,18})-(\d{1,18})")


class BadCursor(ValueError):
    """A page link that this site did not make."""


def encode_cursor(moment: datetime, row_id: int) -> str:
    return f"{(moment - EPOCH) // MICROSECOND}-{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise BadCursor(cursor)
    micros, row_id = (int(part) for part in match.groups())
    try:
        return EPOCH + micros * MICROSECOND, row_id
    except OverflowError:
        raise BadCursor(cursor) from None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows, and the cursors of the pages on either side (None at an end)."""

    items: list[T]
    previous: str | None
    next: str | None


def keyset_page(
    statement: Select[*tuple[Any, ...]],
    moment: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[int],
    key: Callable[[T], tuple[datetime, int]],
    *,
    per_page: int,
    after: str | None = None,
    before: str | None = None,
    newest_first: bool = True,
) -> Page[T]:
    """Run ``statement`` for the page after ``after`` or before ``before`` (or the first).

    ``moment`` and ``row_id`` are the columns the list is ordered on; ``key``
    reads them back from a row. Raise ``BadCursor`` for a cursor we did not make.
    """
    backwards = before is not None
    cursor = before if backwards else after
    # The order rows are read in: the list's own order, or its reverse when going back.
    descending = newest_first != backwards
    if cursor is not None:
        at, at_id = decode_cursor(cursor)
        position = tuple_(moment, row_id)
        edge = tuple_(literal(at, UTCDateTime()), literal(at_id))
        statement = statement.where(position < edge if descending else position > edge)
    order = (moment.desc(), row_id.desc()) if descending else (moment.asc(), row_id.asc())
    result = db.session.execute(statement.order_by(*order).limit(per_page + 1))
    # One entity comes back as objects; several columns as rows (lighter to build).
    rows = list(result.scalars() if len(statement.selected_columns) == 1 else result)
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    first = encode_cursor(*key(rows[0])) if rows else None
    last = encode_cursor(*key(rows[-1])) if rows else None
    if backwards:
        return Page(rows, previous=first if more else None, next=last)
    return Page(rows, previous=first if cursor is not None else None, next=last if more else None)
