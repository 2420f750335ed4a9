"""Moderation in one step: each waiting row of a queue carries a button per decision.

A screen names its ``decisions`` (approve, reject, ...), tells which rows
still wait (``is_waiting``) and applies one decision to one row through its
blueprint's service (``apply_decision``). The list shows the buttons in the
column named ``decide``: one small form per button, each a POST with the
CSRF token, so a decision needs no script and no second page. Bulk decisions
keep their reason page (``admin_views.actions``).

After a decision the browser goes back to the same list page (filters, sort
and page kept) with the next row named in the fragment; with script on
(``static/js/moderation.js``) that row takes the focus, and j/k/a/r/s work.

Overrides of Flask-Admin internals: none. ``render`` (public) adds what the
buttons need to the list page's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from flask import abort
from flask import flash
from flask import get_template_attribute
from flask import redirect
from flask import url_for
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms import HiddenField
from wtforms.validators import InputRequired

from portal import security
from portal.extensions import db
from portal.urls import is_safe_next
from portal.urls import parse_row_id

if TYPE_CHECKING:
    from flask_admin.contrib.sqla import ModelView as _ModelView
else:
    _ModelView = object

# The list column the buttons show in, and the template macro that draws them.
DECISION_COLUMN = "decide"
MACROS = "admin/moderation.html"


@dataclass(frozen=True)
class Decision:
    """One button: its name in the form, its words, its key and its Bootstrap colour."""

    name: str
    label: Any  # a lazy string: translated when shown
    key: str
    style: str
    # The gate action it needs on the screen's subject (and on the row).
    permission: str = security.MODERATE


class DecisionRefused(Exception):
    """A decision the rules refuse; the message is safe to show."""


class DecisionForm(FlaskForm):
    """The hidden fields of one decision button (the global CSRF check runs first)."""

    id = HiddenField(validators=[InputRequired()])
    decision = HiddenField(validators=[InputRequired()])
    url = HiddenField()
    next = HiddenField()


def row_anchor(row_id: Any) -> str:
    """The id of a row's decision group, which the fragment after a decision names."""
    return f"decide-{row_id}"


def decision_buttons(view: Any, context: Any, model: Any, name: str) -> Markup:
    """Show a row's decision buttons (a formatter for the ``decide`` column)."""
    row_id = view.get_pk_value(model)
    draw = get_template_attribute(MACROS, "decision_group")
    return Markup(
        draw(
            view=view,
            row_id=row_id,
            label=view.row_name(model),
            decisions=context.get("allowed_decisions", ()),
            waiting=view.is_waiting(model),
            next_id=context.get("next_rows", {}).get(row_id),
            return_url=context.get("return_url") or view.get_url(".index_view"),
        )
    )


class DecisionsMixin(_ModelView):
    """A model screen whose waiting rows are decided in one step each."""

    decisions: Sequence[Decision] = ()

    # -- what a screen says ----------------------------------------------------

    def is_waiting(self, model: Any) -> bool:
        """Tell whether ``model`` still waits for a decision."""
        raise NotImplementedError

    def apply_decision(self, model: Any, decision: Decision) -> str:
        """Apply ``decision`` to ``model`` through the service; return what to tell the moderator.

        Raise ``DecisionRefused`` with a message when the rules refuse it.
        """
        raise NotImplementedError

    def row_name(self, model: Any) -> str:
        """Name a row in a few words, for the buttons' labels and the messages."""
        return str(self.object_label(model))

    def already_decided(self, model: Any) -> str:
        """Say that ``model`` was decided before this request, and that nothing changed."""
        return _("%(name)s was already decided; nothing changed.", name=self.row_name(model))

    # -- the page --------------------------------------------------------------

    @property
    def extra_css(self) -> list[str]:
        return [url_for("static", filename="css/moderation.css")]

    @property
    def extra_js(self) -> list[str]:
        return [url_for("static", filename="js/moderation.js")]

    def allowed_decisions(self) -> list[Decision]:
        """The decisions this request's account may make on this screen's subject."""
        return [
            decision
            for decision in self.decisions
            if security.can(current_user, decision.permission, self.subject)
        ]

    def render(self, template: str, **kwargs: Any) -> str:
        rows = kwargs.get("data")
        if template == self.list_template and rows is not None:
            kwargs["allowed_decisions"] = self.allowed_decisions()
            kwargs["next_rows"] = self._next_rows(rows)
        return super().render(template, **kwargs)

    def _next_rows(self, rows: Sequence[Any]) -> dict[Any, Any]:
        # The row that takes the focus after a decision: the one below, or,
        # on the last row, the one above (the decided row may leave the list).
        ids = [self.get_pk_value(row) for row in rows]
        after = dict(zip(ids, ids[1:], strict=False))
        if len(ids) > 1:
            after[ids[-1]] = ids[-2]
        return after

    # -- the decision ----------------------------------------------------------

    @expose("/decide/", methods=("POST",))
    def decide_view(self) -> Response:
        """Apply one decision to one waiting row, then go back to the same list page."""
        form = DecisionForm()
        decision = next((d for d in self.decisions if d.name == form.decision.data), None)
        # The same answer as the bulk action's: a decision not allowed here is refused.
        if decision is None or not security.can(current_user, decision.permission, self.subject):
            abort(403)
        back = self.queue_url(form.url.data)
        key = parse_row_id(form.id.data)
        if not form.validate_on_submit() or key is None:
            flash(_("That decision names no row; nothing changed."), "error")
            return redirect(back)
        model = db.session.execute(
            db.select(self.model).where(self.model.id == key).with_for_update()
        ).scalar_one_or_none()
        if model is None:
            flash(_("That row no longer exists; nothing changed."), "error")
            return redirect(back)
        if not security.can(current_user, decision.permission, model):
            abort(403)
        if not self.is_waiting(model):
            message = self.already_decided(model)
            db.session.rollback()
            flash(message, "error")
            return redirect(back)
        try:
            message = self.apply_decision(model, decision)
        except DecisionRefused as error:
            db.session.rollback()
            flash(str(error), "error")
            return redirect(back)
        flash(message, "success")
        following = parse_row_id(form.next.data)
        return redirect(back if following is None else f"{back}#{row_anchor(following)}")

    def queue_url(self, target: str | None) -> str:
        """``target`` if it is a page of this screen's list, without its fragment; else the list."""
        index = self.get_url(".index_view")
        if not target or not is_safe_next(target):
            return str(index)
        parts = urlsplit(target)
        if parts.path != urlsplit(index).path:
            return str(index)
        return urlunsplit(("", "", parts.path, parts.query, ""))
