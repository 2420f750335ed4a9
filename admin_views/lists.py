"""List pages that stay fast on big tables: a capped count, word search, filters.

Numbers from the query string stay within what the database holds: a page
before the first or past any row is no page (404), and a number filter on a
column too small for the value is refused as an invalid filter, as a word in
a number filter is.

Overrides of Flask-Admin internals:

- ``ModelView._apply_search`` (flask_admin.contrib.sqla.view), in
  ``CappedListMixin``: each word inside one of the columns, with ``ILIKE`` on
  the bare column so PostgreSQL's trigram indexes serve it (portal.search),
  where Flask-Admin casts the column (which no index serves) and leaves
  ``%`` and ``_`` in a word as wildcards.

Re-implements the public ``ModelView.get_list`` (flask_admin.contrib.sqla.view)
in ``CappedListMixin``, for the capped count; its body follows Flask-Admin's.
Reads the internals ``_search_supported``, ``_search_fields``, ``_filters``,
``_auto_joins``, ``_apply_filters``, ``_apply_path_joins``, ``_apply_sorting``
and ``_apply_pagination`` of the same class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from flask import abort
from flask_admin.contrib.sqla.filters import FilterConverter
from flask_admin.contrib.sqla.filters import FilterEmpty
from flask_admin.model import filters
from sqlalchemy import BigInteger
from sqlalchemy import SmallInteger
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.search import matches_every_word
from portal.urls import MAX_ROW_ID

if TYPE_CHECKING:
    from flask_admin.contrib.sqla import ModelView as _ModelView
else:
    _ModelView = object


class CappedCount(int):
    """A row count that stopped past a cap: prints as "10,000+" beyond it.

    Its value is the rows actually counted, which the pager divides into pages.
    """

    cap: int = 0
    capped: bool = False

    @classmethod
    def of(cls, counted: int, cap: int) -> CappedCount:
        count = cls(counted)
        count.cap, count.capped = cap, counted > cap
        return count

    def __str__(self) -> str:
        return f"{self.cap:,}+" if self.capped else f"{int(self):,}"


def integer_range(column: Any) -> range:
    """The integers ``column`` holds on PostgreSQL (SMALLINT, INTEGER or BIGINT)."""
    sql_type = getattr(column, "type", None)
    bits = 32
    if isinstance(sql_type, SmallInteger):
        bits = 16
    elif isinstance(sql_type, BigInteger):
        bits = 64
    return range(-(2 ** (bits - 1)), 2 ** (bits - 1))


class InRangeMixin:
    """A number filter that refuses a value its column cannot hold (the database would)."""

    column: Any

    def clean(self, value: str) -> Any:
        cleaned = super().clean(value)  # type: ignore[misc]
        numbers = cleaned if isinstance(cleaned, list) else [cleaned]
        held = integer_range(self.column)
        if any(number not in held for number in numbers):
            raise ValueError(f"{value!r} is out of range")
        return cleaned


def _in_range(flt: type) -> type:
    if flt is FilterEmpty:
        return flt
    return type(flt.__name__, (InRangeMixin, flt), {})


class PortalFilterConverter(FilterConverter):
    """Filters for our own column types (UTC timestamps filter like datetimes).

    Number filters refuse values out of their column's range.
    """

    int_filters = tuple(_in_range(flt) for flt in FilterConverter.int_filters)

    @filters.convert("utcdatetime")
    def conv_utc_datetime(self, column: Any, name: str, **kwargs: Any) -> Any:
        return self.conv_datetime(column, name, **kwargs)


class CappedListMixin(_ModelView):
    """A model list whose count and search cost the same on any size of table."""

    # Counting stops here: past it the list says "10,000+" and never counts further.
    count_cap = 10_000

    def get_list(
        self,
        page: int | None,
        sort_column: Any,
        sort_desc: bool,
        search: str | None,
        filters: Any,
        execute: bool = True,
        page_size: int | None = None,
    ) -> tuple[int | None, Any]:
        """Flask-Admin's list query, with a capped count and word search.

        The count reads at most ``count_cap + 1`` rows, so it costs the same on
        a thousand rows as on ten million; related columns shown in the list
        are joined into the same query (``column_auto_select_related``). Past
        the cap it reads one row beyond the current page, no further than the
        page's own OFFSET does, so the pager still offers the next page.
        """
        joins: dict[Any, Any] = {}
        count_joins: dict[Any, Any] = {}
        query = self.get_query()
        rows: Any = db.session.query(literal_column("1")).select_from(self.model)
        if self._search_supported and search:
            query, rows, joins, count_joins = self._apply_search(
                query, rows, joins, count_joins, search
            )
        if filters and self._filters:
            query, rows, joins, count_joins = self._apply_filters(
                query, rows, joins, count_joins, filters
            )
        size = self.page_size if page_size is None else page_size
        if page and (page < 0 or page * size > MAX_ROW_ID):
            # No table has rows there; the database would refuse the OFFSET.
            abort(404)
        reach = max(self.count_cap, ((page or 0) + 1) * size)
        counted = db.session.query(func.count()).select_from(rows.limit(reach + 1).subquery())
        count = CappedCount.of(int(counted.scalar() or 0), self.count_cap)
        for join in self._auto_joins:
            query = query.options(joinedload(join))
        query, joins = self._apply_sorting(query, joins, sort_column, sort_desc)
        query = self._apply_pagination(query, page, page_size)
        return count, (query.all() if execute else query)

    def _apply_search(
        self, query: Any, count_query: Any, joins: Any, count_joins: Any, search: str
    ) -> tuple[Any, Any, Any, Any]:
        # Every word must be inside one of the searchable columns, in any case
        # (portal.search): "User 4" finds "Demo User 42". Related columns are
        # joined once each, in the page query and in the count alike.
        columns, count_columns = [], []
        for field, path in self._search_fields:
            query, joins, alias = self._apply_path_joins(query, joins, path, inner_join=False)
            columns.append(field if alias is None else getattr(alias, field.key))
            count_query, count_joins, count_alias = self._apply_path_joins(
                count_query, count_joins, path, inner_join=False
            )
            count_columns.append(field if count_alias is None else getattr(count_alias, field.key))
        query = query.filter(matches_every_word(columns, search))
        count_query = count_query.filter(matches_every_word(count_columns, search))
        return query, count_query, joins, count_joins
