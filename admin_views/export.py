"""CSV exports: the exported columns read as rows, streamed in chunks, audited.

Overrides of Flask-Admin internals:

- ``BaseModelView._export_csv`` (flask_admin.model.base), in
  ``StreamedExportMixin``: reads exactly the exported columns of the list's
  own query as plain rows (no ORM objects), streams them in chunks,
  neutralises formula cells, records an audit event, and ends a download that
  stops early with a marker line.

Reads the internals ``_get_list_extra_args``, ``_get_column_by_idx`` and
``_export_columns`` of the same class.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

from flask import Response
from flask import current_app
from flask import request
from flask import stream_with_context
from sqlalchemy import DateTime
from sqlalchemy import Select
from sqlalchemy import type_coerce
from sqlalchemy.orm import aliased
from werkzeug.utils import secure_filename

from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import UTCDateTime
from portal.extensions import db

if TYPE_CHECKING:
    from flask_admin.contrib.sqla import ModelView as _ModelView
else:
    _ModelView = object

# Characters a spreadsheet reads as the start of a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The last line of a download that stopped before its last row. A complete
# download ends with its last row and nothing after it.
INCOMPLETE = "# export incomplete: "

# What turns one column of a chunk of rows into its CSV cells.
Column = Callable[[Sequence[Any]], list[str]]
# Seconds since some fixed point; a test may stand in its own.
clock: Callable[[], float] = time.monotonic


def neutralise_cell(value: Any) -> str:
    """Return ``value`` as CSV text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def neutralise_cells(values: Iterable[Any]) -> list[str]:
    """``neutralise_cell`` for each of ``values``, in two list passes instead of a call each."""
    texts = ["" if value is None else str(value) for value in values]
    return ["'" + text if text.startswith(FORMULA_STARTS) else text for text in texts]


def utc_texts(values: Iterable[datetime | None]) -> list[str]:
    """Each timestamp as ``str()`` writes it once in UTC ("2026-01-02 03:04:05+00:00").

    A naive value is UTC already (SQLite keeps no zone); an aware one is
    converted only when it is not in UTC. No cell needs neutralising: each
    starts with its year.
    """
    return [
        ""
        if value is None
        else f"{value}+00:00"
        if value.tzinfo is None
        else str(value.astimezone(UTC) if value.utcoffset() else value)
        for value in values
    ]


def incomplete_line(reason: str) -> str:
    """The marker line that ends a download which stopped early."""
    return f"{INCOMPLETE}{reason}\r\n"


class StreamedExportMixin(_ModelView):
    """A model screen whose CSV export streams rows, neutralises and audits.

    Export formatters (``column_formatters_export``) are called with the row
    in place of the model: ``getattr(row, name)`` is the column's value.
    """

    # The object type audit events and exports name ("user", "post", ...).
    audit_type = ""
    # Rows read from the database and written to the download at a time.
    export_chunk_rows = 2_000

    def _export_csv(self, return_url: Any) -> Any:
        args = self._get_list_extra_args()
        sort = self._get_column_by_idx(args.sort)
        _count, query = self.get_list(
            0,
            sort[0] if sort else None,
            args.sort_desc,
            args.search,
            args.filters,
            execute=False,
            page_size=0,
        )
        audit.record(
            AUDIT.ACTION_EXPORT,
            self.audit_type or self.model.__tablename__,
            summary=f"Exported {self.name} as CSV"
            + (f", search “{args.search}”" if args.search else "")
            + (f", {len(args.filters)} filter(s)" if args.filters else ""),
            changes={
                "search": [None, args.search],
                "filters": [None, request.query_string.decode()],
            }
            if args.search or args.filters
            else None,
        )
        db.session.commit()
        statement = self.export_statement(query)
        limit = float(current_app.config["EXPORT_TIME_LIMIT"])

        filename = secure_filename(self.get_export_name(export_type="csv"))
        return Response(
            stream_with_context(self.export_lines(self.export_rows(statement), limit)),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )

    def export_statement(self, query: Any) -> Select[Any]:
        """The list's query reading only the exported columns, each labelled by its name.

        A dotted column (``author.email``) is read through an outer join of its
        own, so a row without the related object still exports, with an
        empty cell, and the list's own search and filter joins stay as they are.
        """
        joined: dict[str, Any] = {}
        columns = []
        for name, _title in self._export_columns:
            *path, attribute = name.split(".")
            owner, prefix = self.model, ""
            for segment in path:
                prefix = f"{prefix}.{segment}" if prefix else segment
                if prefix not in joined:
                    relation = getattr(owner, segment)
                    target = aliased(relation.property.mapper.class_)
                    query = query.outerjoin(relation.of_type(target))
                    joined[prefix] = target
                owner = joined[prefix]
            column = getattr(owner, attribute)
            if self._plain_timestamp(name):
                # Read as the driver gives it; ``utc_texts`` writes what the
                # UTC type would have made of it, at a fraction of the cost.
                column = type_coerce(column, DateTime(timezone=True))
            columns.append(column.label(name))
        statement: Select[Any] = query.enable_eagerloads(False).with_entities(*columns).statement
        return statement

    def export_columns(self) -> list[Column]:
        """One function per exported column: from a chunk of rows to its neutralised cells.

        The same steps as Flask-Admin's ``get_export_value`` (the column's
        export formatter or its value, then its choices or the formatter for
        the value's type), taken a column of a chunk at a time: a million rows
        cost a few list passes each, not a dozen calls per cell.
        """
        return [self._export_column(i, name) for i, (name, _) in enumerate(self._export_columns)]

    def _export_type(self, name: str) -> Any:
        # The SQL type of an exported column, through its relationships.
        *path, attribute = name.split(".")
        owner = self.model
        for segment in path:
            owner = getattr(owner, segment).property.mapper.class_
        return getattr(owner, attribute).type

    def _plain_timestamp(self, name: str) -> bool:
        # A UTC timestamp that no formatter, choice or type formatter changes.
        if (self.column_formatters_export or {}).get(name) or (self.column_choices or {}).get(name):
            return False
        if any(issubclass(datetime, kind) for kind in self.column_type_formatters_export or {}):
            return False
        return isinstance(self._export_type(name), UTCDateTime)

    def _export_column(self, index: int, name: str) -> Column:
        if self._plain_timestamp(name):
            return lambda chunk: utc_texts([row[index] for row in chunk])
        formatter = (self.column_formatters_export or {}).get(name)
        choices = dict((self.column_choices or {}).get(name) or ())
        by_type = dict(self.column_type_formatters_export or {})
        found: dict[type, Any] = {}

        def type_formatter(kind: type) -> Any:
            if kind not in found:
                found[kind] = next(
                    (fmt for base, fmt in by_type.items() if issubclass(kind, base)), None
                )
            return found[kind]

        def texts(chunk: Sequence[Any]) -> list[str]:
            if formatter is None:
                values = [row[index] for row in chunk]
            else:
                values = [formatter(self, None, row, name) for row in chunk]
            if choices:
                values = [choices.get(value) or value for value in values]
            else:
                formats = {kind: type_formatter(kind) for kind in set(map(type, values))}
                if any(formats.values()):
                    values = [
                        value if (fmt := formats[type(value)]) is None else fmt(self, value, name)
                        for value in values
                    ]
            return neutralise_cells(values)

        return texts

    def export_rows(self, statement: Select[Any]) -> Iterator[Sequence[Any]]:
        """Yield the rows of ``statement`` in chunks of ``export_chunk_rows``: plain rows.

        ``yield_per`` streams: a server-side cursor on PostgreSQL, so memory
        stays flat whatever the size of the table.
        """
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            # A cursor makes PostgreSQL plan for the first rows (a nested loop of
            # index lookups); an export reads them all, for which one hash join
            # and one sort are twice as fast. For this transaction only.
            connection.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1")
        result = connection.execute(statement.execution_options(yield_per=self.export_chunk_rows))
        # Closing this generator early closes the cursor too.
        with result:
            yield from result.partitions()

    def export_lines(self, chunks: Iterable[Sequence[Any]], limit: float = 0) -> Iterator[str]:
        """The CSV text of the header, then of each chunk of rows.

        A download that stops early (an error, or ``limit`` seconds passed,
        when it is not 0) ends with the ``INCOMPLETE`` marker line, so the
        file never looks complete when it is not.
        """
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([title for _name, title in self._export_columns])
        yield buffer.getvalue()
        columns = self.export_columns()
        written = 0
        started = clock()
        try:
            for chunk in chunks:
                # Checked once the next chunk is in hand, so a download that
                # did send its last row is never marked incomplete.
                if limit and clock() - started >= limit:
                    yield incomplete_line(
                        f"stopped after {written} rows at the time limit of {limit:g} seconds;"
                        " narrow the list with a search or a filter and export again"
                    )
                    return
                buffer.seek(0)
                buffer.truncate()
                writer.writerows(zip(*(texts(chunk) for texts in columns), strict=True))
                written += len(chunk)
                yield buffer.getvalue()
        except Exception:  # noqa: BLE001 - the download must say it stopped, whatever stopped it
            current_app.logger.exception(
                "CSV export of %s stopped after %d rows", self.name, written
            )
            yield incomplete_line(f"stopped after {written} rows by an error on the server")
        finally:
            # Stopped early or not, the rows' cursor is closed now, not when collected.
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
