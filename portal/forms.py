"""Small forms every feature's pages share."""

from __future__ import annotations

from flask_wtf import FlaskForm


class ActionForm(FlaskForm):
    """An empty form: it carries the CSRF token of a POST-only button."""
