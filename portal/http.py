"""Response hardening every page gets: security headers and cache rules."""

from __future__ import annotations

import base64
import hashlib
import secrets
from html.parser import HTMLParser

from flask import Flask
from flask import Request
from flask import Response
from flask import current_app
from flask import g
from flask import request
from flask import session
from werkzeug.exceptions import RequestEntityTooLarge

from portal.urls import is_admin_path

URLENCODED = "application/x-www-form-urlencoded"


class PortalRequest(Request):
    """A request whose form limits cover the forms this site actually posts."""

    def _load_form_data(self) -> None:
        # Werkzeug applies MAX_FORM_MEMORY_SIZE only to multipart bodies, but
        # every form here is urlencoded: hold those bodies to the same limit,
        # from the Content-Length alone, before anything is read.
        limit = self.max_form_memory_size
        if self.mimetype == URLENCODED and limit is not None:
            if (self.content_length or 0) > limit:
                raise RequestEntityTooLarge()
        super()._load_form_data()


def csp_nonce() -> str:
    """Return this request's nonce for the few script tags a page may carry."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


ADMIN_HANDLER_HASHES = "portal.admin_handler_hashes"


def content_security_policy(nonce: str) -> str:
    """Return the CSP: own origin only, scripts by nonce, no framing."""
    script_src = ["'self'", f"'nonce-{nonce}'"]
    if is_admin_path(request.path):
        # Flask-Admin's templates carry a few fixed inline event handlers and
        # javascript: links; allow exactly those strings by hash, nothing else.
        hashes = current_app.extensions.get(ADMIN_HANDLER_HASHES, ())
        if hashes:
            script_src += ["'unsafe-hashes'", *hashes]
    frame_src = ["'none'"]
    if current_app.config.get("RECAPTCHA_PUBLIC_KEY"):
        # The captcha, when configured, is Google's script and frame by design.
        script_src += [
            "https://www.google.com/recaptcha/",
            "https://www.gstatic.com/recaptcha/",
        ]
        frame_src = ["https://www.google.com/recaptcha/"]
    directives = {
        "default-src": ["'self'"],
        "script-src": script_src,
        "style-src": ["'self'", f"'nonce-{nonce}'", *inline_style_sources()],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-src": frame_src,
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class _InlineStyles(HTMLParser):
    """Collect the ``style`` attributes and ``<style>`` elements of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name == "style" and value]
        if tag == "style":
            self._in_style = True
            self.found.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = self._in_style and tag != "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found[-1] += data


def allow_inline_styles_of(document: str) -> None:
    """Let this response's CSP apply exactly the inline styles ``document`` carries.

    For a document shown in a sandboxed ``<iframe srcdoc>`` (an email's HTML):
    it inherits the page's policy, which otherwise refuses every inline style.
    Each style is allowed by its hash, so no other style and no script gains.
    """
    parser = _InlineStyles()
    parser.feed(document)
    parser.close()
    hashes = g.setdefault("csp_style_hashes", set())
    for style in parser.found:
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        hashes.add(f"'sha256-{digest}'")


def inline_style_sources() -> list[str]:
    hashes = sorted(g.get("csp_style_hashes", ()))
    return ["'unsafe-hashes'", *hashes] if hashes else []


def set_security_headers(response: Response) -> Response:
    """Add the security headers to every response, errors and static files included."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config.get("HSTS"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if is_admin_path(request.path) and request.endpoint != "admin.static":
        # Flask-Admin's own scripts and styles are the same for everyone: cacheable.
        headers["Cache-Control"] = "no-store"
    elif made_for_one_visitor():
        keep_private(response)
    return response


def made_for_one_visitor() -> bool:
    """Tell whether this response may show what belongs to one visitor.

    That is so for a signed-in account, and for any page rendered with a
    session that holds something (a CSRF token, a flashed message) or was
    given one. Static files are the same for everyone, and their session
    is left unread (reading it would add ``Vary: Cookie``).
    """
    if request.endpoint == "static":
        return False
    user = g.get("_login_user")
    if user is not None and user.is_authenticated:
        return True
    return bool(session) or session.modified


def keep_private(response: Response) -> None:
    """Let the visitor's browser keep the page, and no shared cache."""
    cache = response.cache_control
    if cache.no_store or cache.private:
        return
    cache.public = False
    cache.private = True


def init_http(app: Flask) -> None:
    """Register the hardening hooks and expose the nonce to templates."""
    app.request_class = PortalRequest
    app.after_request(set_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
