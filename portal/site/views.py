"""Site-wide pages: the home page, the health check and the benchmark route."""

from __future__ import annotations

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import jsonify
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import send_from_directory
from flask import url_for
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as BaseResponse

from portal import i18n
from portal.extensions import db
from portal.posts import services as post_services
from portal.site.forms import LanguageForm
from portal.urls import is_safe_next
from portal.users import services as user_services

bp = Blueprint("site", __name__)


@bp.route("/")
def index() -> str:
    """The home page: the newest published posts."""
    return render_template("site/index.html", page=post_services.published_page())


@bp.route("/language/", methods=["GET", "POST"])
def language() -> str | BaseResponse:
    """Choose the site's language; a cookie keeps it, and a signed-in account too."""
    form = LanguageForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    if form.validate_on_submit():
        target = form.next.data if is_safe_next(form.next.data) else url_for("site.index")
        response = make_response(redirect(target))
        response.set_cookie(
            i18n.LANGUAGE_COOKIE,
            form.chosen,
            max_age=i18n.LANGUAGE_COOKIE_SECONDS,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
        if current_user.is_authenticated:
            user_services.set_language(current_user, form.chosen)
        return response
    return render_template("site/language.html", form=form)


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
