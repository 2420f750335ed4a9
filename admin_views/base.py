"""The access rules of the back office, in one place.

Anonymous visitors are sent to the login page with a safe ``next``; signed-in
accounts without the staff permission get 403. Every screen inherits this.

What a screen lets a role do (create, edit, delete, export, view details, each
action) is decided on every request from the named permissions, and the same
decision guards the endpoint: a crafted POST to ``new/``, ``edit/``,
``delete/``, ``action/`` or ``ajax/update/`` gets 403, like the hidden button.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from flask import Response
from flask import abort
from flask import flash
from flask import has_request_context
from flask import redirect
from flask import request
from flask import stream_with_context
from flask_admin import expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterConverter
from flask_admin.model import filters
from flask_admin.model import typefmt
from flask_login import current_user
from flask_principal import Permission
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy.orm import joinedload
from werkzeug.utils import secure_filename

from portal.audit import services as audit
from portal.extensions import db
from portal.extensions import login_manager
from portal.security import staff_permission

# The most rows one action may touch at once.
MAX_SELECTION = 1000

# Flask-Admin view functions, and the operation each one performs.
OPERATIONS = {
    "create_view": "create",
    "edit_view": "edit",
    "ajax_update": "edit",
    "delete_view": "delete",
    "details_view": "view_details",
    "export": "export",
}


class SecureViewMixin:
    """Grant a view to holders of ``permission``; everyone else is turned away."""

    permission: Permission = staff_permission

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and self.permission.can())

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        abort(403)

    def is_visible(self) -> bool:
        # Menu entries a role cannot use are not shown.
        return self.is_accessible()


def _allowed(permission: Permission | None) -> bool:
    if permission is None:
        return False
    if not has_request_context():
        # Flask-Admin builds its forms and column lists at start-up: an
        # operation that some role may use is configured, then checked per request.
        return True
    return bool(permission.can())


class PortalFilterConverter(FilterConverter):
    """Filters for our own column types (UTC timestamps filter like datetimes)."""

    @filters.convert("utcdatetime")
    def conv_utc_datetime(self, column: Any, name: str, **kwargs: Any) -> Any:
        return self.conv_datetime(column, name, **kwargs)


def _format_datetime(view: Any, value: datetime, name: str) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def author_of(view: Any, context: Any, model: Any, name: str) -> str:
    """Show a post's or comment's author as "Name <email>"."""
    return str(model.author)


def stored_html(view: Any, context: Any, model: Any, name: str) -> Markup:
    """Show a body's HTML as the public page does: it was sanitised when saved."""
    return Markup('<div class="border rounded p-3">{}</div>').format(Markup(model.body_html))


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


# Characters a spreadsheet reads as the start of a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> str:
    """Return ``value`` as CSV text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _like_prefix(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class _Echo:
    # csv.writer writes into this and hands each line straight back.
    def write(self, line: str) -> str:
        return line


class SecureModelView(SecureViewMixin, ModelView):
    """A model screen whose every operation is checked against a permission.

    Subclasses name a permission per operation (None turns it off) and per
    action in ``action_permissions`` (actions not listed need ``permission``).
    """

    create_permission: Permission | None = None
    edit_permission: Permission | None = None
    delete_permission: Permission | None = None
    export_permission: Permission | None = None
    details_permission: Permission | None = staff_permission
    action_permissions: dict[str, Permission] = {}
    filter_converter = PortalFilterConverter()
    # Timestamps to the second, in UTC, the zone every screen shows.
    column_type_formatters = {**typefmt.BASE_FORMATTERS, datetime: _format_datetime}
    column_type_formatters_detail = {**typefmt.DETAIL_FORMATTERS, datetime: _format_datetime}

    def has_create_permission(self) -> bool:
        return _allowed(self.create_permission)

    def has_edit_permission(self) -> bool:
        return _allowed(self.edit_permission)

    def has_delete_permission(self) -> bool:
        return _allowed(self.delete_permission)

    def has_export_permission(self) -> bool:
        return _allowed(self.export_permission)

    def has_view_details_permission(self) -> bool:
        return _allowed(self.details_permission)

    # Flask-Admin reads these flags in its views and templates; as properties
    # they are decided for the current user on every request.
    @property
    def can_create(self) -> bool:
        return self.has_create_permission()

    @property
    def can_edit(self) -> bool:
        return self.has_edit_permission()

    @property
    def can_delete(self) -> bool:
        return self.has_delete_permission()

    @property
    def can_export(self) -> bool:
        return self.has_export_permission()

    @property
    def can_view_details(self) -> bool:
        return self.has_view_details_permission()

    # -- lists that stay fast on big tables ----------------------------------

    # Counting stops here: past it the list says "10,000+" and never counts further.
    count_cap = 10_000
    # The object type audit events and exports name ("user", "post", ...).
    audit_type = ""

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
        """Flask-Admin's list query, with a capped count and prefix search.

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
        # The phrase must start one of the searchable columns (case-insensitive): a
        # prefix match walks an index where "%word%" would read every row. The
        # whole phrase, not each word, so a full name ("Ann Lee") finds its account.
        term = " ".join(search.split())
        conditions, count_conditions = [], []
        for field, path in self._search_fields:
            query, joins, alias = self._apply_path_joins(query, joins, path, inner_join=False)
            column = field if alias is None else getattr(alias, field.key)
            conditions.append(func.lower(column).like(_like_prefix(term), escape="\\"))
            count_query, count_joins, count_alias = self._apply_path_joins(
                count_query, count_joins, path, inner_join=False
            )
            column = field if count_alias is None else getattr(count_alias, field.key)
            count_conditions.append(func.lower(column).like(_like_prefix(term), escape="\\"))
        query = query.filter(or_(*conditions))
        count_query = count_query.filter(or_(*count_conditions))
        return query, count_query, joins, count_joins

    # -- CSV export: streamed, neutralised, audited --------------------------

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
            "export",
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

    # -- actions that ask for input first ------------------------------------

    # Action name -> the form its intermediate page asks to fill in.
    input_actions: dict[str, type[FlaskForm]] = {}

    def ask_for_input(self, name: str, ids: Any) -> Any:
        """Send the selection to the action's page, which asks before it acts."""
        wanted = [str(value) for value in ids if str(value).isdigit()][:MAX_SELECTION]
        return redirect(self.get_url(".action_input", action_name=name, ids=",".join(wanted)))

    @expose("/action/<action_name>/", methods=("GET", "POST"))
    def action_input(self, action_name: str) -> Any:
        """Ask for an action's input (a reason, a new role), then apply it to the selection."""
        name = action_name
        if name not in self.input_actions or not self.is_action_allowed(name):
            abort(403)
        raw = request.values.get("ids", "")
        ids = [int(part) for part in raw.split(",") if part.isdigit()][:MAX_SELECTION]
        models = self.selection(ids)
        if not models:
            flash("Select at least one row first.", "error")
            return redirect(self.get_url(".index_view"))
        form = self.input_actions[name]()
        if form.validate_on_submit():
            self.apply_action(name, models, form)
            return redirect(self.get_url(".index_view"))
        label = dict(self._actions)[name] if self._actions else name
        return self.render(
            "admin/action_input.html", form=form, name=name, label=label, models=models, ids=raw
        )

    def selection(self, ids: list[int]) -> list[Any]:
        """Load the selected rows, in id order."""
        if not ids:
            return []
        return list(self.get_query().filter(self.model.id.in_(ids)).order_by(self.model.id).all())

    def apply_action(self, name: str, models: list[Any], form: FlaskForm) -> None:
        raise NotImplementedError(name)

    def is_action_allowed(self, name: str) -> bool:
        permission = self.action_permissions.get(name, self.permission)
        return bool(permission.can()) and super().is_action_allowed(name)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        response = super()._handle_view(name, **kwargs)
        if response is not None:
            return response
        operation = OPERATIONS.get(name)
        if operation is not None and not getattr(self, f"can_{operation}"):
            abort(403)
        if name == "action_view" and request.method == "POST":
            action = request.form.get("action", "")
            if action not in self._actions_data or not self.is_action_allowed(action):
                abort(403)
        return None
