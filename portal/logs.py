"""Structured logs, a request id on every line, and error reports to Sentry when configured.

``LOG_FORMAT`` picks the output, one record per line on standard error:
``json`` (production: an object with ``time``, ``level``, ``logger``,
``message`` and the record's extra fields) or ``text`` (development). The
testing configuration sets neither and leaves logging as pytest arranges it.
``LOG_LEVEL`` (default ``INFO``) is the level of the app's own loggers;
libraries log warnings and up. Logging is configured once per process:
building a second app with the same settings changes nothing.

Each request gets an id: the incoming ``X-Request-ID`` when it is 8 to 64
letters, digits, ``-``, ``_`` or ``.``, otherwise a new one. It is sent back
in ``X-Request-ID``, kept in ``g.request_id``, added to every log record made
during the request, put in the error report and on the 500 page.

Each request ends with one line on the ``portal.requests`` logger: its id,
method, route (the URL rule, so no id, token or query string from the URL),
status, duration, the signed-in account's id and the client's address.
Static files are left out unless the answer is an error: in production the
front proxy serves them, and a missing file is worth a line.

With ``SENTRY_DSN`` set (and the ``sentry`` extra installed), unhandled errors
also go to Sentry, beside the mail to ADMINS, tagged with the request id,
without personal data or local variables, and with cookies, credentials,
query strings and form fields named like a password, token, code or secret
removed (``scrub_event``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import logging.config
import re
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from importlib import metadata
from typing import Any
from typing import TextIO
from urllib.parse import urlsplit

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import has_request_context
from flask import request
from flask.logging import default_handler
from sqlalchemy import inspect as inspect_instance

from config import ConfigurationError

REQUEST_ID_HEADER = "X-Request-ID"
# What an incoming id may be: enough to be useful, too plain to forge a log line.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{8,64}")

LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
HANDLER_NAME = "portal"
# The package's loggers, and Flask's app logger (named after the app, "portal").
APP_LOGGER = "portal"
REQUEST_LOGGER = "portal.requests"

SENTRY_EXTENSION = "portal.sentry"
FILTERED = "[Filtered]"
# Form fields, headers and local variables whose values never leave for Sentry.
SENSITIVE_NAME = re.compile(
    r"pass|pwd|token|code|secret|otp|key|auth|cookie|session|csrf", re.IGNORECASE
)
# The referrer too: a request sent from a reset or confirmation page names its link token.
SENSITIVE_HEADERS = frozenset(
    {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-api-key", "referer"}
)
# What a link token in a logged message becomes (as in the error report's path).
MASKED_TOKEN = "[token]"

log = logging.getLogger(__name__)
request_log = logging.getLogger(REQUEST_LOGGER)

# The attributes every LogRecord has; anything else on a record is an extra field.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
BASE_FIELDS = ("time", "level", "logger", "message")


# -- the request id -------------------------------------------------------------------


def new_request_id() -> str:
    """Make a fresh request id."""
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str | None:
    """Return ``value`` if it is a well-formed request id, else None."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


def current_request_id() -> str | None:
    """Return the id of the request being handled, if there is one."""
    if not has_request_context():
        return None
    value = g.get("request_id")
    return str(value) if value else None


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request's id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` and let the record through."""
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


def request_link_token() -> str | None:
    """Return the link token in the current request's URL (a reset link, say), if any."""
    if not has_request_context():
        return None
    token = (request.view_args or {}).get("token")
    return token if isinstance(token, str) and token else None


class LinkTokenFilter(logging.Filter):
    """Mask the request's link token in a message, such as Flask's "Exception on <path>"."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the token in the message and let the record through."""
        token = request_link_token()
        if token is not None:
            message = record.getMessage()
            if token in message:
                record.msg = message.replace(token, MASKED_TOKEN)
                record.args = ()
        return True


# -- formatters -----------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON object with its extra fields."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name in STANDARD_ATTRIBUTES or name in BASE_FIELDS:
                continue
            if name == "request_id" and value is None:
                continue
            entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ASCII only: no raw line separator (U+2028 and kin) can split the line.
        return json.dumps(entry, default=str, ensure_ascii=True)


class TextFormatter(logging.Formatter):
    """The development format: time, level, logger, request id and message."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """Fill the line, with ``-`` where no request id applies."""
        values = dict(vars(record))
        values["request_id"] = values.get("request_id") or "-"
        return TEXT_FORMAT % values


FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


class StandardErrorHandler(logging.StreamHandler[TextIO]):
    """Write each record to ``sys.stderr`` as it is when the record is made.

    Bound once, the stream would be whatever stood in for standard error at
    start-up (a test runner's or a command runner's capture, since closed).
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignore: the stream is always the current standard error."""


# -- configuration --------------------------------------------------------------------


def logging_settings(app: Flask) -> tuple[str, str] | None:
    """Return the app's (format, level), None to leave logging alone; refuse bad values."""
    fmt = app.config.get("LOG_FORMAT")
    if not fmt:
        return None
    fmt = str(fmt).strip().lower()
    if fmt not in LOG_FORMATS:
        raise ConfigurationError(
            f"LOG_FORMAT={app.config.get('LOG_FORMAT')!r} is unknown; use json or text."
        )
    level = str(app.config.get("LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigurationError(
            f"LOG_LEVEL={app.config.get('LOG_LEVEL')!r} is unknown; "
            f"use one of {', '.join(LOG_LEVELS)}."
        )
    return fmt, level


# Library loggers whose level another configuration (migrations/alembic.ini) sets.
RAISED_ELSEWHERE = ("alembic", "flask_migrate")


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """The ``dictConfig`` schema: one handler on the root logger, on standard error.

    ``level`` applies to the app's own loggers (``portal.*``, Flask's app
    logger among them); libraries log warnings and up, or ``level`` if
    higher, so a command's output is not buried under their start-up notes.
    """
    libraries = max(logging.WARNING, logging.getLevelNamesMapping()[level])
    return {
        "version": 1,
        # Loggers made before this (Flask's, SQLAlchemy's) keep working.
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {name: {"()": cls} for name, cls in FORMATTERS.items()},
        "handlers": {
            HANDLER_NAME: {
                "()": StandardErrorHandler,
                "formatter": fmt,
                "filters": ["request_id"],
            }
        },
        # Named here, Flask's app logger also loses the handler Flask may have
        # given it before: the root's handler serves it, and two would print twice.
        # Migrations' logging file raises Alembic's own loggers to INFO; these
        # keep to the libraries' level like the rest.
        "loggers": {
            APP_LOGGER: {"level": level},
            **{name: {"level": logging.getLevelName(libraries)} for name in RAISED_ELSEWHERE},
        },
        "root": {"level": logging.getLevelName(libraries), "handlers": [HANDLER_NAME]},
    }


def portal_handler() -> logging.Handler | None:
    """Return the handler this module put on the root logger, if it is there."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == HANDLER_NAME:
            return handler
    return None


def is_configured(fmt: str, level: str) -> bool:
    """Tell whether logging already runs with this format and level."""
    handler = portal_handler()
    return (
        handler is not None
        and type(handler.formatter) is FORMATTERS[fmt]
        and logging.getLogger(APP_LOGGER).level == logging.getLevelNamesMapping()[level]
    )


def configure_logging(fmt: str, level: str) -> bool:
    """Configure the process's logging; return False when it already was, as asked."""
    if is_configured(fmt, level):
        # An app that logged before its settings were read got Flask's own
        # handler; the root's handler serves it, and two would print twice.
        logging.getLogger(APP_LOGGER).removeHandler(default_handler)
        return False
    root = logging.getLogger()
    # dictConfig replaces the root's handlers; pytest's (caplog, the captured
    # log of a report) are put back so a test still sees the records.
    kept = [handler for handler in root.handlers if type(handler).__module__ == "_pytest.logging"]
    logging.config.dictConfig(logging_config(fmt, level))
    for handler in kept:
        root.addHandler(handler)
    return True


def init_logging(app: Flask) -> None:
    """Configure logging as the app's settings say (once per process)."""
    settings = logging_settings(app)
    if settings is None:
        return
    configure_logging(*settings)


# -- one line per request ------------------------------------------------------------


def start_request() -> None:
    """Give the request its id and note when it started."""
    g.request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    g.request_started = time.perf_counter()
    if current_app.extensions.get(SENTRY_EXTENSION):
        import sentry_sdk

        sentry_sdk.set_tag("request_id", g.request_id)


def send_request_id(response: Response) -> Response:
    """Return the request id in the response, and note the status for the request line."""
    request_id = current_request_id()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    g.response_status = response.status_code
    return response


def signed_in_account_id() -> int | None:
    """Return the id of the account signed in for this request, without loading anything.

    Only a user Flask-Login already loaded counts; its id is read from the
    identity map, so an expired row (after a rollback) is not read again.
    """
    user = g.get("_login_user")
    state = inspect_instance(user, raiseerr=False) if user is not None else None
    if state is None or not state.identity:
        return None
    return int(state.identity[0])


def log_request(error: BaseException | None = None) -> None:
    """Write the request's one line: id, method, route, status, duration, account, client."""
    started = g.get("request_started")
    if started is None:
        return
    status = g.get("response_status") or 500
    if request.endpoint == "static" and status < 400:
        return
    route = request.url_rule.rule if request.url_rule is not None else None
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    request_log.info(
        "%s %s %s %.0f ms",
        request.method,
        route or "-",
        status,
        duration_ms,
        extra={
            "request_id": current_request_id(),
            "method": request.method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "account_id": signed_in_account_id(),
            "client": request.remote_addr,
        },
    )


# -- Sentry ------------------------------------------------------------------------


def sentry_installed() -> bool:
    """Tell whether the Sentry SDK can be imported."""
    try:
        return importlib.util.find_spec("sentry_sdk") is not None
    except ValueError:  # a module without a spec stands in for it
        return False


def release() -> str | None:
    """Return this package's version, which Sentry shows as the release."""
    try:
        return metadata.version("portal")
    except metadata.PackageNotFoundError:
        return None


def _scrub(value: Any) -> Any:
    """Replace the value of every key that names a secret, at any depth."""
    if isinstance(value, Mapping):
        return {
            key: FILTERED if SENSITIVE_NAME.search(str(key)) else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


def _scrub_request(info: dict[str, Any]) -> None:
    """Drop cookies and the query string, filter headers and form fields, show the route."""
    info.pop("cookies", None)
    info.pop("query_string", None)
    headers = info.get("headers")
    if isinstance(headers, Mapping):
        info["headers"] = {
            name: FILTERED
            if str(name).lower() in SENSITIVE_HEADERS or SENSITIVE_NAME.search(str(name))
            else item
            for name, item in headers.items()
        }
    data = info.get("data")
    if isinstance(data, Mapping):
        info["data"] = _scrub(data)
    elif data:
        info["data"] = FILTERED  # a raw body we cannot read field by field
    url = info.get("url")
    if isinstance(url, str):
        rule = request.url_rule.rule if has_request_context() and request.url_rule else None
        # The path may carry a token (a reset link); the route never does.
        info["url"] = urlsplit(url)._replace(path=rule or "", query="", fragment="").geturl()


def scrub_event(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Remove cookies, credentials and secret form fields from an event before it is sent."""
    request_info = event.get("request")
    if isinstance(request_info, dict):
        _scrub_request(request_info)
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            if isinstance(frame.get("vars"), Mapping):
                frame["vars"] = _scrub(frame["vars"])
    if isinstance(event.get("extra"), Mapping):
        event["extra"] = _scrub(event["extra"])
    request_id = current_request_id()
    if request_id:
        event.setdefault("tags", {}).setdefault("request_id", request_id)
    return event


def _sample_rate(app: Flask) -> float:
    value = app.config.get("SENTRY_TRACES_SAMPLE_RATE") or 0
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if not 0 <= rate <= 1:
        raise ConfigurationError(
            f"SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1, not {value!r}."
        )
    return rate


def init_sentry(app: Flask) -> bool:
    """Report unhandled errors to Sentry when ``SENTRY_DSN`` is set; return whether it is on.

    Beside the mail to ADMINS, not instead of it. One client serves the
    process: a second app with the same DSN reuses it.
    """
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    rate = _sample_rate(app)
    if not sentry_installed():
        # Production refuses to start (see config.startup_problems); elsewhere, say so.
        log.warning("SENTRY_DSN is set but sentry-sdk is not installed: errors go to ADMINS only")
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.utils import BadDsn

    client = sentry_sdk.get_client()
    if not (client.is_active() and client.options.get("dsn") == dsn):
        try:
            sentry_sdk.init(
                dsn=dsn,
                integrations=[FlaskIntegration()],
                # No personal data (cookies, user, client address): that is the
                # SDK's default, and naming send_default_pii=False is deprecated
                # in sentry-sdk 2.75 (a DeprecationWarning); a test checks it.
                # Frames' local variables hold the WSGI environ and request reprs,
                # with query strings and cookies: the traceback goes without them.
                include_local_variables=False,
                environment=app.config.get("SENTRY_ENVIRONMENT") or app.config.get("ENV_NAME"),
                release=release(),
                traces_sample_rate=rate,
                before_send=scrub_event,  # type: ignore[arg-type]
            )
        except BadDsn as error:
            raise ConfigurationError(f"SENTRY_DSN is not a valid DSN: {error}") from None
    app.extensions[SENTRY_EXTENSION] = True
    return True


# -- the app ----------------------------------------------------------------------


def init_logs(app: Flask) -> None:
    """Configure logging and Sentry; give every request an id and a closing line.

    Registered before the other hooks: the id exists before any of them logs,
    and the closing line, written last, sees the final status.
    """
    init_logging(app)
    init_sentry(app)
    # On the app's logger itself, so every handler (Sentry's, a test's) gets the masked text.
    if not any(isinstance(item, LinkTokenFilter) for item in app.logger.filters):
        app.logger.addFilter(LinkTokenFilter())
    app.before_request(start_request)
    app.after_request(send_request_id)
    app.teardown_request(log_request)
    app.jinja_env.globals["request_id"] = current_request_id
