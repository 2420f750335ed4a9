"""Portal's own look for the back office, over Flask-Admin's Bootstrap 4 templates.

Our templates under ``templates/admin/`` replace Flask-Admin's of the same
name (the app's folder is searched first). Where ours only change a few
blocks, they extend the original, reachable under the name ``UPSTREAM``
gives it: ``{% extends "bootstrap4/admin/model/list.html" %}``.

Overrides of Flask-Admin internals: none. The templates replace these of
Flask-Admin's, keeping their block and macro names: ``admin/base.html``
(the layout), ``admin/model/layout.html`` and ``admin/model/row_actions.html``
(macros), and extend ``admin/model/list.html``, ``create.html``,
``edit.html`` and ``details.html``.
"""

from __future__ import annotations

from pathlib import Path

import flask_admin
from flask import Blueprint
from flask import Flask
from flask_admin.theme import Bootstrap4Theme
from flask_admin.theme import Theme

# Flask-Admin's own templates, as "bootstrap4/admin/...".
UPSTREAM = Path(flask_admin.__file__).resolve().parent / "templates"
BLUEPRINT = "admin_theme"


def portal_theme() -> Theme:
    """The theme the admin renders with: Bootstrap 4's scripts, our layout."""
    return Bootstrap4Theme(base_template="admin/base.html", fluid=True)


def register_upstream_templates(app: Flask) -> None:
    """Make Flask-Admin's original templates extendable under their theme folder's name."""
    if BLUEPRINT not in app.blueprints:
        app.register_blueprint(Blueprint(BLUEPRINT, __name__, template_folder=str(UPSTREAM)))
