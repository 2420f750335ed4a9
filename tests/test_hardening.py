"""What every response carries, what production adds, and how big a request may be."""

from __future__ import annotations

import io
import re
import secrets

import pytest
from sqlalchemy import func
from sqlalchemy import select

from portal.emails.models import Email
from portal.extensions import db
from portal.users.models import User
from tests import factories
from tests.conftest import REDIS_URL

HOST = "portal.example.org"
HTTPS = f"https://{HOST}"
PRODUCTION = {
    "PORTAL_ENV": "production",
    "SECRET_KEY": secrets.token_hex(32),
    "TRUSTED_HOSTS": [HOST],
    "PORTAL_BASE_URL": HTTPS,
    "MAIL_TRANSPORT": "smtp",
    # Production refuses per-process limits. Nothing connects until a limited
    # form is posted; a test that posts one asks for the redis_url fixture.
    "RATELIMIT_STORAGE_URI": REDIS_URL,
    "RATELIMIT_KEY_PREFIX": f"portal-test-{secrets.token_hex(4)}",
}
TOKEN_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
STRONG = "mossy-violin-harbour-92"
ENCODINGS = ["application/x-www-form-urlencoded", "multipart/form-data"]


def csp_of(response):
    """Split the Content-Security-Policy header into {directive: [sources]}."""
    policy = response.headers["Content-Security-Policy"]
    directives = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def nonce_of(response):
    [nonce] = [s for s in csp_of(response)["script-src"] if s.startswith("'nonce-")]
    return nonce[len("'nonce-") : -1]


def assert_security_headers(response):
    csp = csp_of(response)
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def submit_over_https(client, path, data):
    """GET a form over HTTPS on the trusted host, then POST it as a browser would.

    Over HTTPS, Flask-WTF also wants a same-origin Referer, which browsers send
    under our Referrer-Policy.
    """
    page = client.get(path, base_url=HTTPS)
    match = TOKEN_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return client.post(
        path,
        data={"csrf_token": match.group(1), **data},
        base_url=HTTPS,
        headers={"Referer": HTTPS + path},
    )


def set_cookie(response, name):
    """Return the attributes of the Set-Cookie header for ``name``, lower-cased."""
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    return [part.strip().lower() for part in header.split(";")[1:]]


@pytest.fixture
def production(make_app, monkeypatch):
    """The production configuration, on the test database."""
    for name in ("FLASK_DEBUG", "REDIS_URL", "SECRET_KEY", "TRUSTED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    return make_app(**PRODUCTION)


# -- headers on every response ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/no-such-page/", 404),
        ("/static/css/portal.css", 200),
        ("/favicon.ico", 200),
        ("/users/me/", 302),
        ("/healthz", 200),
    ],
)
def test_every_response_carries_the_security_headers(client, path, status):
    with client.get(path) as response:
        assert response.status_code == status
        assert_security_headers(response)


def test_security_headers_on_error_pages_for_signed_in_users_and_posts(client, auth):
    auth.login(factories.UserFactory().email)
    for method, path, status in [
        ("GET", "/admin/", 403),
        ("GET", "/users/logout/", 405),
        ("POST", "/", 405),
        ("POST", "/users/login/", 400),  # no CSRF token
    ]:
        response = client.open(path, method=method)
        assert response.status_code == status
        assert_security_headers(response)


def test_each_response_gets_a_fresh_nonce(client):
    first, second = client.get("/"), client.get("/")
    assert nonce_of(first) != nonce_of(second)
    assert len(nonce_of(first)) >= 16


def test_admin_scripts_carry_the_nonce_of_their_response(client, auth):
    auth.login(factories.StaffFactory().email)
    response = client.get("/admin/")
    assert response.status_code == 200
    nonce = nonce_of(response)
    scripts = re.findall(r"<script\b[^>]*>", response.get_data(as_text=True))
    assert scripts, "the admin page loads its scripts"
    for tag in scripts:
        assert f'nonce="{nonce}"' in tag, tag


def test_no_hsts_outside_production(client):
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_production_sends_hsts_for_a_year(production):
    response = production.test_client().get("/", base_url=HTTPS)
    assert response.status_code == 200
    hsts = response.headers["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))
    assert max_age >= 365 * 24 * 3600
    assert_security_headers(response)


# -- production --------------------------------------------------------------------


def test_production_app_keeps_none_of_the_testing_settings(production):
    assert production.config["ENV_NAME"] == "production"
    assert production.testing is False
    assert production.debug is False
    assert production.config["MAIL_TRANSPORT"] == "smtp"
    assert production.config["SESSION_COOKIE_SECURE"] is True
    assert production.config["REMEMBER_COOKIE_SECURE"] is True


@pytest.mark.parametrize("path", ["/", "/users/login/", "/healthz", "/no-such-page/"])
def test_forged_host_gets_a_plain_400(production, path):
    response = production.test_client().get(path, base_url="https://evil.example")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Bad request" in body
    assert "Traceback" not in body
    assert "evil.example" not in body
    assert_security_headers(response)


def test_the_trusted_host_is_served(production):
    client = production.test_client()
    assert client.get("/", base_url=HTTPS).status_code == 200
    assert client.get("/healthz", base_url=HTTPS).status_code == 200


def test_trusted_hosts_come_from_the_environment_comma_separated(make_app, monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("TRUSTED_HOSTS", f"{HOST}, www.{HOST}")
    overrides = {k: v for k, v in PRODUCTION.items() if k != "TRUSTED_HOSTS"}
    client = make_app(**overrides).test_client()
    assert client.get("/", base_url=HTTPS).status_code == 200
    assert client.get("/", base_url=f"https://www.{HOST}").status_code == 200
    assert client.get("/", base_url="https://evil.example").status_code == 400


def test_production_cookies_are_secure_httponly_and_samesite(production, redis_url):
    with production.app_context():
        email = factories.UserFactory().email
    client = production.test_client()
    response = submit_over_https(
        client,
        "/users/login/",
        {"email": email, "password": factories.PASSWORD, "remember": "y"},
    )
    assert response.status_code == 302
    for name in ("portal_session", "portal_remember"):
        attributes = set_cookie(response, name)
        assert "secure" in attributes
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
    assert client.get("/users/me/", base_url=HTTPS).status_code == 200


def test_development_cookies_are_httponly_and_samesite_but_work_over_http(client, auth):
    response = auth.login(factories.UserFactory().email, remember="y")
    assert response.status_code == 302
    for name in ("portal_session", "portal_remember"):
        attributes = set_cookie(response, name)
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "secure" not in attributes


# -- caching ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "path", "status"),
    [
        (None, "/users/login/", 200),
        (None, "/users/register/", 200),
        (None, "/users/me/", 302),
        (factories.UserFactory, "/users/me/", 200),
        (factories.UserFactory, "/users/me/edit/", 200),
        (factories.UserFactory, "/admin/", 403),
        (factories.StaffFactory, "/admin/", 200),
        (factories.AdminFactory, "/admin/", 200),
    ],
)
def test_account_and_admin_pages_are_never_cached(client, auth, factory, path, status):
    if factory is not None:
        auth.login(factory().email)
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"


def test_public_pages_may_be_cached(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")


def page_kinds():
    """One page of each public kind, for its author, a reader and staff: {kind: path}."""
    author = factories.UserFactory(email="author@example.com", handle="the-author")
    published = factories.PostFactory(author=author, slug="a-post")
    draft = factories.DraftFactory(author=author, slug="a-draft")
    return {
        "home": "/",
        "posts": "/posts/",
        "search": "/posts/?q=post",
        "post": f"/posts/{published.slug}/",
        "profile": "/users/the-author/",
        "draft": f"/posts/{draft.slug}/",
        "edit": f"/posts/{published.slug}/edit/",
        "missing": "/posts/no-such-post/",
    }


ANONYMOUS_KINDS = ["home", "posts", "search", "post", "profile"]


@pytest.mark.parametrize("kind", ANONYMOUS_KINDS)
def test_pages_for_anonymous_visitors_without_a_session_may_be_shared(app, kind):
    path = page_kinds()[kind]
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert "Cache-Control" not in response.headers
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    ("email", "kind", "status"),
    [
        ("author@example.com", "home", 200),
        ("author@example.com", "posts", 200),
        ("author@example.com", "search", 200),
        ("author@example.com", "post", 200),
        ("author@example.com", "profile", 200),
        ("author@example.com", "draft", 200),
        ("author@example.com", "edit", 200),
        ("author@example.com", "missing", 404),
        ("staff@example.com", "post", 200),  # with the moderator's form
        ("staff@example.com", "draft", 200),
        ("reader@example.com", "post", 200),  # with the comment form
    ],
)
def test_pages_for_signed_in_visitors_are_private(app, client, auth, email, kind, status):
    path = page_kinds()[kind]
    factories.StaffFactory(email="staff@example.com")
    factories.UserFactory(email="reader@example.com")
    auth.login(email)
    response = client.get(path)
    assert response.status_code == status
    cache = response.cache_control
    assert cache.private or cache.no_store, response.headers.get("Cache-Control")
    assert not cache.public


def test_an_anonymous_visitor_with_a_session_gets_private_pages(app, client):
    path = page_kinds()["post"]
    client.get("/users/login/")  # the form's CSRF token is now in the session
    response = client.get(path)
    assert response.status_code == 200
    assert response.cache_control.private


def test_static_files_stay_shareable_for_signed_in_visitors(client, auth):
    auth.login(factories.UserFactory().email)
    with client.get("/static/css/portal.css") as response:
        assert response.status_code == 200
        assert not response.cache_control.private


# -- request size ------------------------------------------------------------------------


class HugeBody(io.RawIOBase):
    """A request body of ``size`` bytes that counts how much of it was read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.size - self.position)
        buffer[:count] = b"a" * count
        self.position += count
        self.read_bytes += count
        return count


@pytest.mark.parametrize("content_type", ENCODINGS)
def test_a_body_over_the_limit_is_refused_before_it_is_read(app, client, content_type):
    body = HugeBody(100 * app.config["MAX_CONTENT_LENGTH"])
    response = client.post("/users/register/", input_stream=body, content_type=content_type)
    assert response.status_code == 413
    assert "What you sent is too large." in response.get_data(as_text=True)
    assert body.read_bytes == 0


def registration(token):
    return {
        "csrf_token": token,
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "password": STRONG,
        "confirm": STRONG,
        "accept_tos": "y",
    }


def csrf_from(client, path):
    return TOKEN_RE.search(client.get(path).get_data(as_text=True)).group(1)


def counts():
    return (
        db.session.scalar(select(func.count(User.id))),
        db.session.scalar(select(func.count(Email.id))),
    )


def test_an_oversized_registration_gets_413_and_creates_nothing(app, client):
    data = registration(csrf_from(client, "/users/register/"))
    data["padding"] = "a" * app.config["MAX_CONTENT_LENGTH"]
    response = client.post("/users/register/", data=data)
    assert response.status_code == 413
    assert counts() == (0, 0)

    del data["padding"]
    assert client.post("/users/register/", data=data).status_code == 302
    assert counts() == (1, 1)


# Werkzeug applies the field limit to multipart bodies only; the site's own forms
# are urlencoded, and those are held to it as a whole.
@pytest.mark.parametrize("content_type", ENCODINGS)
def test_one_huge_form_field_gets_413(app, client, content_type):
    data = registration(csrf_from(client, "/users/register/"))
    data["name"] = "a" * (app.config["MAX_FORM_MEMORY_SIZE"] + 1)
    assert len(data["name"]) < app.config["MAX_CONTENT_LENGTH"] // 2
    response = client.post("/users/register/", data=data, content_type=content_type)
    assert response.status_code == 413
    assert counts() == (0, 0)


def test_too_many_form_parts_get_413(app, client):
    data = registration(csrf_from(client, "/users/register/"))
    data.update({f"field{n}": "x" for n in range(app.config["MAX_FORM_PARTS"] + 1)})
    response = client.post("/users/register/", data=data, content_type="multipart/form-data")
    assert response.status_code == 413
    assert counts() == (0, 0)
