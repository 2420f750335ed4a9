"""Error pages, error reports emailed to ADMINS in production, and the 400 for broken links."""

from __future__ import annotations

import hashlib
import time
import traceback
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask import current_app
from flask import g
from flask import render_template
from flask import request
from flask_login import current_user
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError

from portal.database import utcnow
from portal.emails.models import Email
from portal.emails.queue import enqueue
from portal.extensions import db
from portal.extensions import limiter
from portal.extensions import login_manager
from portal.logs import request_link_token
from portal.metrics import count_rate_limited

PAGES = {403, 404, 405, 429, 500}
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


def render_error(error: HTTPException) -> tuple[str, int, dict[str, str]]:
    """Render the page for an HTTP error, in the site's layout."""
    code = error.code or 500
    headers: dict[str, str] = {}
    retry_after = None
    if code == 429:
        count_rate_limited()
        retry_after = _retry_after_seconds()
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
    if code == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    if code == 400:
        # The request may be too broken to build links from (a forged Host).
        return render_template("errors/400.html"), 400, headers
    template = f"errors/{code}.html" if code in PAGES else "errors/default.html"
    return (
        render_template(template, error=error, code=code, retry_after=retry_after),
        code,
        headers,
    )


def _retry_after_seconds() -> int | None:
    limit = limiter.current_limit
    if limit is None:
        return None
    # The same arithmetic as the Retry-After header Flask-Limiter sets.
    return max(1, int(limit.reset_at - time.time()))


def handle_exception(error: InternalServerError) -> tuple[str, int, dict[str, str]]:
    """Log an unhandled error, report it to ADMINS, and show the 500 page."""
    original = getattr(error, "original_exception", None) or error
    if not current_app.debug and current_app.config.get("ADMINS"):
        report_error(original)
    _forget_unloadable_account()
    return render_error(InternalServerError())


def _forget_unloadable_account() -> None:
    # The layout asks who is signed in; with the database down that question
    # fails again inside this handler, so the page is shown as to a visitor.
    try:
        _ = current_user.is_authenticated
    except Exception:  # noqa: BLE001 - whatever broke, the error page must render
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001
            pass
        g._login_user = login_manager.anonymous_user()


def error_fingerprint(error: BaseException) -> str:
    """Identify an error by its type and where it was raised, not by its message.

    "Where" is the innermost line of this project's code, so that two database
    errors from different views (both raised deep inside SQLAlchemy) stay distinct.
    """
    frames = traceback.extract_tb(error.__traceback__)
    own = [
        frame
        for frame in frames
        if frame.filename.startswith(PROJECT_ROOT) and "site-packages" not in frame.filename
    ]
    frame = (own or frames)[-1] if frames else None
    where = f"{frame.filename}:{frame.lineno}" if frame else "?"
    raw = f"{type(error).__module__}.{type(error).__qualname__}@{where}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def report_error(error: BaseException) -> None:
    """Queue one email per distinct error per interval to each of ADMINS."""
    fingerprint = error_fingerprint(error)
    subject = f"[{current_app.config['PORTAL_NAME']}] Error {fingerprint}: {type(error).__name__}"
    try:
        db.session.rollback()
        since = utcnow() - timedelta(seconds=current_app.config["ERROR_EMAIL_INTERVAL"])
        already = db.session.execute(
            select(func.count(Email.id)).where(Email.subject == subject, Email.created_at >= since)
        ).scalar_one()
        if already:
            return
        details = "".join(traceback.format_exception(error))
        for address in current_app.config["ADMINS"]:
            enqueue(
                address,
                subject,
                "error_report",
                {
                    "method": request.method,
                    "path": reported_path(),
                    "request_id": g.get("request_id"),
                    "fingerprint": fingerprint,
                    "details": details,
                },
                sensitive=True,
            )
        db.session.commit()
    except Exception:  # noqa: BLE001 - reporting must never hide the original error
        db.session.rollback()
        current_app.logger.exception("could not queue the error report %s", fingerprint)


def reported_path() -> str:
    """The request's path for a report, with any link token in it masked."""
    token = request_link_token()
    return request.path.replace(token, "[token]") if token else request.path


def refuse_nul_in_url() -> None:
    """Answer 400 to a path or query string that holds a NUL character.

    No link or form of this site makes one, and PostgreSQL refuses a NUL in
    any text it is given: a search, a filter or a slug with one would end in
    a database error. One check here covers every page, present and future.
    """
    values = [request.path]
    for key, value in request.args.items(multi=True):
        values += (key, value)
    if any("\x00" in value for value in values):
        raise BadRequest()


def init_errors(app: Flask) -> None:
    """Route HTTP errors and unhandled exceptions to the site's pages; refuse broken links."""
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(InternalServerError, handle_exception)
    app.before_request(refuse_nul_in_url)
