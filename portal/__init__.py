"""Portal: public posts and comments, accounts, a back office and an email outbox."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from jinja2 import StrictUndefined
from jinja2 import Undefined
from werkzeug.middleware.proxy_fix import ProxyFix

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["create_app"]


def create_app(
    config: Mapping[str, Any] | object | None = None, *, refuse_unsafe: bool = True
) -> Flask:
    """Assemble the application.

    ``config`` is a mapping of overrides applied on top of the class that
    ``PORTAL_ENV`` selects (a ``PORTAL_ENV`` key in the mapping wins), or a
    ready configuration object used as it is. ``refuse_unsafe=False`` builds
    a production app whose settings are unsafe, for ``manage.py check`` to
    list what is wrong with them.
    """
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        instance_path=str(ROOT / "instance"),
    )
    load_config(app, config)
    check_config(app, refuse_unsafe=refuse_unsafe)
    register_logs(app)
    register_templates(app)
    register_proxy(app)
    register_metrics(app)
    register_extensions(app)
    register_blueprints(app)
    register_static_files(app)
    register_hardening(app)
    register_mail(app)
    register_commands(app)
    register_admin(app)
    return app


def load_config(app: Flask, config: Mapping[str, Any] | object | None) -> None:
    """Read the settings: the class ``PORTAL_ENV`` names, then the overrides."""
    from config import config_for

    if config is None or isinstance(config, Mapping):
        overrides = dict(config or {})
        app.config.from_object(config_for(overrides.pop("PORTAL_ENV", None), app.instance_path))
        app.config.update(overrides)
    else:
        app.config.from_object(config)
    app.config.setdefault("ENV_NAME", "custom")


def check_config(app: Flask, *, refuse_unsafe: bool) -> None:
    """Refuse settings no app can run with, and production settings that are unsafe."""
    from config import ConfigurationError
    from config import startup_problems
    from portal.emails.transports import TRANSPORTS

    if app.config.get("MAIL_TRANSPORT") not in TRANSPORTS:
        raise ConfigurationError(
            f"MAIL_TRANSPORT={app.config.get('MAIL_TRANSPORT')!r} is unknown; "
            f"use one of {', '.join(TRANSPORTS)}."
        )
    if not refuse_unsafe or app.config["ENV_NAME"] != "production":
        return
    problems = startup_problems(app.config)
    if problems:
        more = (
            f" ({len(problems) - 1} more: run `python manage.py check`)"
            if len(problems) > 1
            else ""
        )
        raise ConfigurationError(f"Refusing to start: {problems[0]}{more}")


def register_logs(app: Flask) -> None:
    """Structured logs and a request id first, so every later hook's lines carry the id."""
    from portal.logs import init_logs

    init_logs(app)


def register_templates(app: Flask) -> None:
    """In tests, fail on a misspelt template variable instead of rendering blank."""
    if app.testing:
        app.jinja_env.undefined = ComparableStrictUndefined


def register_proxy(app: Flask) -> None:
    """Trust ``X-Forwarded-*`` from exactly the proxies ``PROXY_COUNT`` says sit in front."""
    count = int(app.config.get("PROXY_COUNT") or 0)
    if count:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count
        )


def register_metrics(app: Flask) -> None:
    """Count and time every request, and serve /metrics to the monitoring system.

    Registered before the other hooks, so the timing covers them too.
    """
    from portal.metrics_views import init_metrics

    init_metrics(app)


class ComparableStrictUndefined(StrictUndefined):
    """Strict, except that an undefined value may be compared.

    Flask-Admin's form macros compare optional attributes (a widget's
    ``input_type``) without testing that they exist; rendering, iterating or
    reading anything else undefined still fails.
    """

    __eq__ = Undefined.__eq__  # type: ignore[assignment]
    __ne__ = Undefined.__ne__  # type: ignore[assignment]
    __hash__ = Undefined.__hash__  # type: ignore[assignment]


def register_extensions(app: Flask) -> None:
    """Bind the extensions; the models are imported so their tables are known."""
    from portal import models  # noqa: F401 - registers every table on the metadata
    from portal.cache import init_cache
    from portal.database import include_name
    from portal.database import render_migration_item
    from portal.extensions import csrf
    from portal.extensions import db
    from portal.extensions import limiter
    from portal.extensions import login_manager
    from portal.extensions import migrate
    from portal.extensions import principal
    from portal.i18n import init_i18n
    from portal.security import init_security
    from portal.users.auth import init_login

    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(ROOT / "migrations"),
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        render_item=render_migration_item,
        include_name=include_name,  # leave out each backend's own search index
    )
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    init_login(login_manager)
    principal.init_app(app)
    init_security(app)
    init_i18n(app)
    init_cache(app)


def register_blueprints(app: Flask) -> None:
    """Mount the public, account, post and comment pages.

    The views are imported here, not by their packages, so importing a
    package's constants or services never loads a page.
    """
    from portal.comments import views as comments
    from portal.emails import views as email_links
    from portal.posts import views as posts
    from portal.privacy import views as privacy
    from portal.reports import views as reports
    from portal.site import discovery
    from portal.site import views as site
    from portal.urls import HandleConverter
    from portal.urls import TokenConverter
    from portal.users import mfa_views
    from portal.users import oidc_views
    from portal.users import views as users

    app.url_map.converters["token"] = TokenConverter
    app.url_map.converters["handle"] = HandleConverter
    app.register_blueprint(site.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(oidc_views.bp)
    app.register_blueprint(mfa_views.bp)
    app.register_blueprint(posts.bp)
    app.register_blueprint(comments.bp)
    app.register_blueprint(discovery.bp)
    app.register_blueprint(email_links.bp)
    app.register_blueprint(privacy.bp)
    app.register_blueprint(reports.bp)
    if app.config.get("BENCH_ROUTES"):
        site.add_bench_routes(app)


def register_static_files(app: Flask) -> None:
    """Give static files content-hashed names, so browsers and nginx may keep them a year."""
    from portal.static_files import init_static_files

    init_static_files(app)


def register_hardening(app: Flask) -> None:
    """Security headers, cache rules and error pages for every response."""
    from portal.errors import init_errors
    from portal.http import init_http

    init_http(app)
    init_errors(app)


def register_mail(app: Flask) -> None:
    """Deliver NOW messages in the request that queued them, after it commits."""
    from portal.emails.queue import deliver_now

    app.after_request(deliver_now)


def register_commands(app: Flask) -> None:
    """Expose the maintenance tasks as ``flask`` and ``manage.py`` commands."""
    from portal.cli import init_cli

    init_cli(app)


def register_admin(app: Flask) -> None:
    """Build this app's own back office at /admin."""
    from admin_views import init_admin

    init_admin(app)
