"""Languages: which one a request is answered in, and the catalogues behind it.

English is the source language; every other language is a catalogue under
``portal/translations``. The choice is made per request: the account's own
setting first, then the browser's ``Accept-Language``, then the default.
"""

from __future__ import annotations

from flask import Flask
from flask import current_app
from flask import request

from portal.extensions import babel


def select_locale() -> str | None:
    """Return the language this request is answered in."""
    supported = current_app.config["LANGUAGES"]
    if not request:
        return None
    return request.accept_languages.best_match(supported)


def init_i18n(app: Flask) -> None:
    """Bind Flask-Babel: the catalogues, the locale selector, ``_`` in templates."""
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(app.root_path + "/translations"),
    )
