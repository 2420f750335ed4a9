"""Site-wide pages: the home page and the health check."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import render_template
from flask import send_from_directory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db

bp = Blueprint("site", __name__)


@bp.route("/")
def index() -> str:
    """Show the home page."""
    return render_template("site/index.html")


@bp.route("/favicon.ico")
def favicon() -> Response:
    """Serve the icon browsers ask for on pages that do not name one."""
    return send_from_directory(
        current_app.static_folder or "static", "img/favicon.svg", mimetype="image/svg+xml"
    )


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """Report whether the database answers, for load balancers and monitors."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200
