"""Site-wide pages: the home page, the health check and the benchmark route."""

from __future__ import annotations

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import jsonify
from flask import render_template
from flask import send_from_directory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.posts import services as post_services

bp = Blueprint("site", __name__)


@bp.route("/")
def index() -> str:
    """The home page: the newest published posts."""
    return render_template("site/index.html", page=post_services.published_page())


def add_bench_routes(app: Flask) -> None:
    """Add /_bench/hello: the bare route that benchmarks measure pages against.

    It runs through the same app, middleware and headers as every page, and
    does no database or template work, so a ratio to it isolates a page's own cost.
    """

    def hello() -> str:
        return "hello"

    app.add_url_rule("/_bench/hello", "bench_hello", hello)


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
