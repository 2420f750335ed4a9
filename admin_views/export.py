"""CSV exports: streamed row by row, cells neutralised, each one audited.

Overrides of Flask-Admin internals:

- ``BaseModelView._export_csv`` (flask_admin.model.base), in
  ``StreamedExportMixin``: streams the list's own query in batches instead
  of loading every row, neutralises formula cells, records an audit event.

Reads the internals ``_get_list_extra_args``, ``_get_column_by_idx`` and
``_export_columns`` of the same class.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from flask import Response
from flask import request
from flask import stream_with_context
from werkzeug.utils import secure_filename

from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.extensions import db

if TYPE_CHECKING:
    from flask_admin.contrib.sqla import ModelView as _ModelView
else:
    _ModelView = object

# Characters a spreadsheet reads as the start of a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> str:
    """Return ``value`` as CSV text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    # csv.writer writes into this and hands each line straight back.
    def write(self, line: str) -> str:
        return line


class StreamedExportMixin(_ModelView):
    """A model screen whose CSV export streams, neutralises and audits."""

    # The object type audit events and exports name ("user", "post", ...).
    audit_type = ""

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
        columns = self._export_columns
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow([title for _name, title in columns])
            # yield_per reads the rows in batches, so memory stays flat.
            for row in query.yield_per(500):
                yield writer.writerow(
                    [neutralise_cell(self.get_export_value(row, name)) for name, _ in columns]
                )

        filename = secure_filename(self.get_export_name(export_type="csv"))
        return Response(
            stream_with_context(lines()),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )
