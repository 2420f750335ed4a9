"""Bulk actions that ask first: the selection goes to a page with a form.

Overrides of Flask-Admin internals: none. Reads the internal ``_actions`` of
``ActionsMixin`` (flask_admin.actions) for an action's label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

from flask import abort
from flask import flash
from flask import redirect
from flask import request
from flask_admin import expose
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from portal.urls import parse_row_id

if TYPE_CHECKING:
    from flask_admin.contrib.sqla import ModelView as _ModelView
else:
    _ModelView = object

# The most rows one action may touch at once.
MAX_SELECTION = 1000


def selected_ids(ids: Iterable[Any]) -> list[int]:
    """The row ids of a selection, dropping anything that cannot be one ("x", "²", 23 digits)."""
    parsed = (parse_row_id(value) for value in ids)
    return [key for key in parsed if key is not None]


class InputActionsMixin(_ModelView):
    """Actions named in ``input_actions`` ask for their form's input before they act."""

    # Action name -> the form its intermediate page asks to fill in.
    input_actions: dict[str, type[FlaskForm]] = {}

    def ask_for_input(self, name: str, ids: Any) -> Any:
        """Send the selection to the action's page, which asks before it acts."""
        wanted = selected_ids(ids)[:MAX_SELECTION]
        return redirect(
            self.get_url(".action_input", action_name=name, ids=",".join(map(str, wanted)))
        )

    @expose("/action/<action_name>/", methods=("GET", "POST"))
    def action_input(self, action_name: str) -> Any:
        """Ask for an action's input (a reason, a new role), then apply it to the selection."""
        name = action_name
        if name not in self.input_actions or not self.is_action_allowed(name):
            abort(403)
        raw = request.values.get("ids", "")
        ids = selected_ids(raw.split(","))[:MAX_SELECTION]
        models = self.selection(ids)
        if not models:
            flash(_("Select at least one row first."), "error")
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
