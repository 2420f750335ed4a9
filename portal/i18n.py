"""Languages and time zones: which ones a request is answered in, and the catalogues behind them.

English is the source language; every other language is a catalogue under
``portal/translations`` (``make translations`` extracts, merges and compiles
them). The language is chosen per request: the account's own setting first,
then the visitor's choice (the ``LANGUAGE_COOKIE`` the language page sets),
then the browser's ``Accept-Language``, then ``BABEL_DEFAULT_LOCALE``. The
time zone is the account's own, else ``BABEL_DEFAULT_TIMEZONE``. Times are
stored in UTC and turned into the reader's zone only when shown.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytz
from babel import Locale
from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import has_request_context
from flask import request
from flask_babel import force_locale
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.extensions import babel
from portal.formatting import init_filters

# Where a visitor without an account keeps their choice of language.
LANGUAGE_COOKIE = "portal_language"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it; ``_`` translates it when shown.

    For module constants that must stay plain English strings (commands and
    tests read them) but reach pages through ``gettext(CONSTANT)``.
    """
    return message


def supported_languages() -> list[str]:
    """Return the configured language codes, the default first."""
    return list(current_app.config["LANGUAGES"])


def is_language(value: Any) -> bool:
    """Tell whether ``value`` names one of the configured languages."""
    return isinstance(value, str) and value in current_app.config["LANGUAGES"]


@functools.cache
def timezones() -> tuple[str, ...]:
    """Return every IANA time zone name this system knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def is_timezone(value: Any) -> bool:
    """Tell whether ``value`` names a time zone (``Europe/Berlin``, ``UTC``)."""
    return isinstance(value, str) and value in timezones()


def language_name(code: str) -> str:
    """Return a language's name in that language: ``Deutsch``, ``English``."""
    return Locale.parse(code).get_display_name(code) or code


def language_choices() -> list[tuple[str, str]]:
    """Return (code, own name) for each configured language, for a select."""
    return [(code, language_name(code)) for code in supported_languages()]


# The names of roles and statuses as pages show them; the constants keep the
# English names that links, forms and the CLI use.
NAME_LABELS = {
    "admin": _l("admin"),
    "staff": _l("staff"),
    "user": _l("user"),
    "inactive": _l("inactive"),
    "new": _l("new"),
    "active": _l("active"),
    "draft": _l("draft"),
    "published": _l("published"),
    "hidden": _l("hidden"),
    "pending": _l("pending"),
    "approved": _l("approved"),
    "rejected": _l("rejected"),
    "spam": _l("spam"),
    "queued": _l("queued"),
    "sending": _l("sending"),
    "sent": _l("sent"),
    "failed": _l("failed"),
    "cancelled": _l("cancelled"),
}


def name_label(name: str) -> str:
    """Return the reader's word for a role or status name (``hidden`` → ``verborgen``)."""
    label = NAME_LABELS.get(name)
    return str(label) if label is not None else name


def _account() -> Any:
    # The account behind this request, or None; a request outside Flask-Login
    # (a command, a worker) has none.
    if not has_request_context():
        return None
    user = current_user._get_current_object()
    return user if user.is_authenticated else None


def select_locale() -> str | None:
    """Return the language this request is answered in (None: the default)."""
    if not has_request_context():
        return None
    account = _account()
    if account is not None and is_language(account.locale):
        return str(account.locale)
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if is_language(chosen):
        return chosen
    return request.accept_languages.best_match(supported_languages())


def select_timezone() -> str | None:
    """Return the time zone this request shows times in (None: the default)."""
    account = _account()
    if account is not None and is_timezone(account.timezone):
        return str(account.timezone)
    return None


def locale_for(account: Any) -> str:
    """Return the language to write to ``account`` in.

    Its own setting when it has one. Otherwise the language of the request,
    when the request is the account's own doing (signing up, asking for a
    password reset: the reader is the one at the browser); a message caused
    by somebody else (a moderator, a broadcast) uses the site's default.
    """
    chosen = getattr(account, "locale", None)
    if is_language(chosen):
        return str(chosen)
    if has_request_context():
        actor = _account()
        if actor is None or actor.id == getattr(account, "id", None):
            return str(get_locale() or current_app.config["BABEL_DEFAULT_LOCALE"])
    return str(current_app.config["BABEL_DEFAULT_LOCALE"])


@contextmanager
def written_for(reader: Any) -> Iterator[None]:
    """Render what runs inside in the language and time zone of ``reader``, an account.

    An email is read by its recipient, not by whoever caused it: its subject,
    body and times follow the recipient's settings (``locale_for``; the site's
    zone when the account has none). With no account, the site's defaults.
    """
    config = current_app.config
    locale = locale_for(reader) if reader is not None else config["BABEL_DEFAULT_LOCALE"]
    zone = getattr(reader, "timezone", None)
    with force_locale(locale):
        context = g.get("_flask_babel")
        if context is None:
            yield
            return
        saved = getattr(context, "babel_tzinfo", None)
        # Flask-Babel converts times with pytz zones; zoneinfo knows the same names.
        context.babel_tzinfo = pytz.timezone(
            zone if is_timezone(zone) else config["BABEL_DEFAULT_TIMEZONE"]
        )
        try:
            yield
        finally:
            context.babel_tzinfo = saved


@dataclass(frozen=True)
class Reader:
    """The settings an email needs of its recipient, without loading the whole account."""

    id: int | None
    locale: str | None
    timezone: str | None


def vary_on_language(response: Response) -> Response:
    """Tell shared caches that a page rendered in a language depends on what chose it."""
    context = g.get("_flask_babel")
    if context is not None and getattr(context, "babel_locale", None) is not None:
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response


def init_i18n(app: Flask) -> None:
    """Bind Flask-Babel: the catalogues, the language and zone selectors, ``_`` in templates."""
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(app.root_path + "/translations"),
    )
    app.after_request(vary_on_language)
    init_filters(app)
    app.jinja_env.globals["current_language"] = lambda: str(get_locale())
    app.jinja_env.globals["language_name"] = language_name
    app.jinja_env.globals["name_label"] = name_label
