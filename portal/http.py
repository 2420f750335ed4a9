"""Response hardening every page gets: security headers and cache rules."""

from __future__ import annotations

import secrets

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request

ADMIN_PREFIX = "/admin"


def csp_nonce() -> str:
    """Return this request's nonce for the few script tags a page may carry."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


def content_security_policy(nonce: str) -> str:
    """Return the CSP: own origin only, scripts by nonce, no framing."""
    script_src = ["'self'", f"'nonce-{nonce}'"]
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
        "style-src": ["'self'", f"'nonce-{nonce}'"],
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
    if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
        headers["Cache-Control"] = "no-store"
    return response


def init_http(app: Flask) -> None:
    """Register the hardening hooks and expose the nonce to templates."""
    app.after_request(set_security_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
