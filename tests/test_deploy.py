"""The production recipe: fingerprinted static files, and the site behind nginx as deploy/ ships it.

The first tests run in the app (the names ``url_for`` gives static files and
how the app serves them). The rest start the real thing once for the module:
gunicorn with ``deploy/gunicorn.conf.py`` on a Unix socket in production
mode, one mail worker, an SMTP server on loopback, and nginx with
``deploy/nginx/portal.conf`` rendered into a temporary folder and a
self-signed certificate, then talk to nginx over HTTPS from several loopback
addresses (Linux routes all of 127.0.0.0/8 to the loopback interface).
They need nginx, openssl and Redis: skipped without them, failed in CI.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import flask_admin
import pytest
import redis
import requests
from flask import url_for
from requests.adapters import HTTPAdapter
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from config import BaseConfig
from portal.database import Base
from portal.database import utcnow
from portal.static_files import DIGEST_LENGTH
from portal.static_files import LONG_MAX_AGE
from portal.static_files import StaticFingerprints
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.conftest import CSRF_RE
from tests.conftest import IN_CI
from tests.conftest import REDIS_URL
from tests.conftest import require_service
from tests.smtp_server import SMTPServer
from tests.smtp_server import free_port
from tests.smtp_server import smtp_server

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
STATIC = ROOT / "portal" / "static"
ADMIN_STATIC = Path(flask_admin.__file__).parent / "static"
NGINX = Path("/usr/sbin/nginx")
MIME_TYPES = Path("/etc/nginx/mime.types")
PLACEHOLDER = re.compile(r"\$\{(PORTAL_[A-Z_]+)\}")
CSS = "css/portal.css"
LONG_CACHE = f"public, max-age={LONG_MAX_AGE}, immutable"
SHORT_CACHE = f"public, max-age={BaseConfig.STATIC_MAX_AGE}"
ADMIN_CACHE = "public, max-age=86400"
SERVER_NAME = "localhost"
READER = "reader@example.com"
STARTUP_SECONDS = 60


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:DIGEST_LENGTH]


def fingerprinted(filename: str) -> str:
    stem, suffix = filename.rsplit(".", 1)
    return f"{stem}.{digest_of(STATIC / filename)}.{suffix}"


# -- the names the app gives static files, and how it serves them ---------------------


def test_url_for_gives_static_files_their_content_hash(app):
    with app.test_request_context():
        assert url_for("static", filename=CSS) == f"/static/{fingerprinted(CSS)}"
        assert url_for("static", filename="img/favicon.svg", _external=True) == (
            f"http://localhost/static/{fingerprinted('img/favicon.svg')}"
        )
        # No file, or no suffix for the proxies to match on: the name as given.
        assert url_for("static", filename="css/missing.css") == "/static/css/missing.css"
        assert url_for("static", filename="../config/settings.py") == (
            "/static/../config/settings.py"
        )


def test_pages_link_the_fingerprinted_names(client):
    page = client.get("/users/login/").get_data(as_text=True)
    assert f'href="/static/{fingerprinted(CSS)}"' in page
    assert f'href="/static/{fingerprinted("img/favicon.svg")}"' in page


def test_the_app_serves_fingerprinted_names_for_a_year(client):
    with client.get(f"/static/{fingerprinted(CSS)}") as response:
        assert response.status_code == 200
        assert response.data == (STATIC / CSS).read_bytes()
        assert response.headers["Cache-Control"] == LONG_CACHE
        assert "Content-Security-Policy" in response.headers
        etag = response.headers["ETag"]
    with client.get(f"/static/{fingerprinted(CSS)}", headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304


@pytest.mark.parametrize(
    "name",
    [CSS, "css/portal.000000000000.css"],
    ids=["plain name", "outdated fingerprint"],
)
def test_plain_and_outdated_names_get_the_file_with_a_short_cache(client, name):
    with client.get(f"/static/{name}") as response:
        assert response.status_code == 200
        assert response.data == (STATIC / CSS).read_bytes()
        assert response.headers["Cache-Control"] == SHORT_CACHE
        assert "immutable" not in response.headers["Cache-Control"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/css/missing.000000000000.css",
        "/static/css/missing.css",
        "/static/..%2f..%2fconfig/settings.py",
        "/static/..%2fportal.000000000000.css",
    ],
)
def test_names_that_are_no_file_are_not_found(client, path):
    with client.get(path) as response:
        assert response.status_code == 404


def test_fingerprints_are_computed_once_per_process(tmp_path):
    (tmp_path / "site.css").write_text("body { color: black }")
    kept = StaticFingerprints(str(tmp_path))
    first = kept.hashed_name("site.css")
    assert re.fullmatch(r"site\.[0-9a-f]{12}\.css", first)
    (tmp_path / "site.css").write_text("body { color: white; margin: 0 }")
    assert kept.hashed_name("site.css") == first
    # A fresh process sees the new content; so does development (watch).
    assert StaticFingerprints(str(tmp_path)).hashed_name("site.css") != first
    watched = StaticFingerprints(str(tmp_path), watch=True)
    before = watched.hashed_name("site.css")
    (tmp_path / "site.css").write_text("body { color: red }")
    assert watched.hashed_name("site.css") not in {before, first}


def test_names_that_are_no_file_are_not_remembered(tmp_path, client):
    names = StaticFingerprints(str(tmp_path))
    for number in range(50):
        assert names.resolve(f"gone{number}.000000000000.css").current is False
    assert names._digests == {}
    # Through the app too: each such request leaves nothing behind.
    kept = client.application.extensions["portal.static_files"]
    before = len(kept._digests)
    for number in range(20):
        with client.get(f"/static/css/gone{number}.000000000000.css") as response:
            assert response.status_code == 404
    assert len(kept._digests) == before
    # A file that appears later gets its fingerprint (development's watch mode).
    watched = StaticFingerprints(str(tmp_path), watch=True)
    assert watched.digest("late.css") is None
    (tmp_path / "late.css").write_text("p { margin: 0 }")
    assert watched.digest("late.css") is not None


def test_only_names_with_a_suffix_get_a_fingerprint(tmp_path):
    (tmp_path / "LICENSE").write_text("text")
    (tmp_path / "app.js").write_text("x = 1")
    names = StaticFingerprints(str(tmp_path))
    assert names.hashed_name("LICENSE") == "LICENSE"
    hashed = names.hashed_name("app.js")
    assert hashed != "app.js"
    assert names.hashed_name(hashed) == hashed  # never fingerprinted twice
    resolved = names.resolve(hashed)
    assert (resolved.filename, resolved.current) == ("app.js", True)


# -- the proxy configurations ------------------------------------------------------


def test_the_proxies_limit_bodies_to_the_apps_maximum():
    nginx = (DEPLOY / "nginx" / "portal.conf").read_text()
    apache = (DEPLOY / "apache" / "portal.conf").read_text()
    (size,) = re.findall(r"^\s*client_max_body_size (\d+)m;", nginx, re.M)
    assert int(size) * 1024 * 1024 == BaseConfig.MAX_CONTENT_LENGTH
    (limit,) = re.findall(r"^\s*LimitRequestBody (\d+)$", apache, re.M)
    assert int(limit) == BaseConfig.MAX_CONTENT_LENGTH
    # Both map fingerprints of the app's length back to the file.
    assert f"[0-9a-f]{{{DIGEST_LENGTH}}}" in nginx
    assert f"[0-9a-f]{{{DIGEST_LENGTH}}}" in apache


def test_the_systemd_units_are_valid(tmp_path):
    """systemd reads every unit without a warning, with the paths of this checkout."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    environment = tmp_path / "portal.env"
    environment.write_text("PORTAL_ENV=production\n")
    units = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text().replace("/etc/portal/portal.env", str(environment))
        # An instance of the mail worker's template, as `systemctl enable portal-mail@1` makes.
        name = unit.name.replace("@.", "@1.")
        (tmp_path / name).write_text(text.replace("/srv/portal", str(ROOT)))
        units.append(str(tmp_path / name))
    assert {Path(unit).name for unit in units} >= {
        "portal-web.socket",
        "portal-web.service",
        "portal-mail@1.service",
    }
    checked = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == ""


def render(template: Path, values: dict[str, str]) -> str:
    """Fill in the ``${PORTAL_...}`` placeholders, as ``envsubst`` with their names does."""
    text = template.read_text()
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    assert not missing, f"{template.name} has placeholders without a value: {missing}"
    return PLACEHOLDER.sub(lambda match: values[match[1]], text)


# -- the stack ------------------------------------------------------------------------


def require_program(path: Path | str | None, name: str) -> str:
    """Skip without the program, but fail in CI, where it is installed."""
    if path is not None and Path(path).exists():
        return str(path)
    message = f"{name} is not installed"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it.")
    pytest.skip(message)


class SourceAddress(HTTPAdapter):
    """Connect from a given loopback address, as a different visitor would."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


@dataclass
class Stack:
    """The running site: where nginx listens, and what it runs on."""

    folder: Path
    cert: Path
    http_port: int
    https_port: int
    smtp: SMTPServer
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    visitors: list[requests.Session] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://{SERVER_NAME}:{self.https_port}"

    def visitor(self, address: str = "127.0.0.1") -> requests.Session:
        """A browser on ``address``: its own cookies, the test certificate trusted."""
        session = requests.Session()
        # Only the test's certificate is trusted, and no proxy from the environment is used.
        session.trust_env = False
        session.verify = str(self.cert)
        adapter = SourceAddress(address)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self.visitors.append(session)
        return session

    def close_visitors(self) -> None:
        for session in self.visitors:
            session.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.folder.glob("*.log"))
        )


def make_certificate(folder: Path) -> Path:
    """Write a self-signed certificate for ``localhost`` and its key; return the certificate."""
    openssl = require_program(shutil.which("openssl"), "openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "2", "-subj", f"/CN={SERVER_NAME}"),
            *("-addext", f"subjectAltName=DNS:{SERVER_NAME}"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert


def make_database(folder: Path) -> str:
    """Create the schema in a SQLite file, with one confirmed account; return its URL."""
    url = f"sqlite:///{folder / 'portal.sqlite3'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(
            User(
                name="Reader",
                email=READER,
                handle="reader",
                password_hash=generate_password_hash(
                    factories.PASSWORD, method=factories.TEST_HASH_METHOD
                ),
                role=USER.USER,
                status=USER.ACTIVE,
                confirmed_at=utcnow(),
            )
        )
        session.commit()
    engine.dispose()
    return url


def production_environment(stack: Stack, database_url: str, prefix: str) -> dict[str, str]:
    """The settings a production install puts in its environment file."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(stack.folder),
        "LANG": "C.UTF-8",
        "PORTAL_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": deploy_redis_url(),
        "RATELIMIT_KEY_PREFIX": prefix,
        "PAGE_CACHE_SECONDS": "0",
        "TRUSTED_HOSTS": SERVER_NAME,
        "PORTAL_BASE_URL": stack.origin,
        "PROXY_COUNT": "1",
        "MAIL_TRANSPORT": "smtp",
        "MAIL_SERVER": stack.smtp.host,
        "MAIL_PORT": str(stack.smtp.port),
        "MAIL_TIMEOUT": "5",
        "LOGIN_LIMIT_PER_ADDRESS": "2 per minute",
        "LOGIN_LIMIT_PER_ACCOUNT": "100 per minute",
        "PORTAL_WEB_BIND": f"unix:{stack.folder / 'web.sock'}",
        "PORTAL_WEB_WORKERS": "2",
    }


def nginx_config(stack: Stack) -> Path:
    """Render the site file and an nginx.conf around it that runs without root."""
    folder = stack.folder
    site = folder / "portal.conf"
    site.write_text(
        render(
            DEPLOY / "nginx" / "portal.conf",
            {
                "PORTAL_SERVER_NAME": SERVER_NAME,
                "PORTAL_ORIGIN": stack.origin,
                "PORTAL_HTTP_LISTEN": f"127.0.0.1:{stack.http_port}",
                "PORTAL_HTTPS_LISTEN": f"127.0.0.1:{stack.https_port}",
                "PORTAL_SOCKET": str(folder / "web.sock"),
                "PORTAL_STATIC": str(STATIC),
                "PORTAL_ADMIN_STATIC": str(ADMIN_STATIC),
                "PORTAL_TLS_CERT": str(stack.cert),
                "PORTAL_TLS_KEY": str(folder / "key.pem"),
            },
        )
    )
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Run as root (a container), nginx's workers would drop to "nobody", who
    # cannot read the test's private folder.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = folder / "nginx.conf"
    main.write_text(
        f"""{user}worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "nginx-error.log"} warn;
events {{ worker_connections 64; }}
http {{
    include {MIME_TYPES};
    default_type application/octet-stream;
    access_log {folder / "nginx-access.log"};
{temp}
    include {site};
}}
"""
    )
    return main


def start(stack: Stack, name: str, command: list[str], env: dict[str, str]) -> None:
    """Start a process of the stack, its output in ``<name>.log``."""
    with open(stack.folder / f"{name}.log", "wb") as log:
        stack.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )


def stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop every process of the stack: SIGTERM, then SIGKILL for any that lingers."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(stack: Stack, ready: Callable[[], bool], what: str) -> None:
    """Wait for ``ready()``; fail with the logs if a process dies or time runs out."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        for name, process in stack.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode}) before {what}:\n{stack.logs()}")
        if ready():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}:\n{stack.logs()}")


def answers(stack: Stack) -> bool:
    try:
        response = stack.visitor().get(f"{stack.origin}/healthz", timeout=5)
    except (requests.ConnectionError, requests.Timeout):
        # Not up yet, or a busy machine's workers still importing the app: ask again.
        return False
    return response.status_code == 200


def deploy_redis_url() -> str:
    """The suite's Redis server, a database beside the suite's (whose tests empty it at will)."""
    parts = urlsplit(REDIS_URL)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{number - 1 if number else 1}"))


def forget_redis_keys(prefix: str) -> None:
    client = redis.Redis.from_url(deploy_redis_url())
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx = require_program(NGINX, "nginx")
    require_program(MIME_TYPES, "nginx's mime.types")
    require_service(REDIS_URL, 6379, "Redis")
    folder = tmp_path_factory.mktemp("deploy")
    prefix = f"portal-deploy-{os.getpid()}-{secrets.token_hex(4)}"
    with ExitStack() as cleanup:
        smtp = cleanup.enter_context(smtp_server())
        site = Stack(
            folder=folder,
            cert=make_certificate(folder),
            http_port=free_port(),
            https_port=free_port(),
            smtp=smtp,
        )
        cleanup.callback(forget_redis_keys, prefix)
        cleanup.callback(stop, site.processes)
        cleanup.callback(site.close_visitors)
        env = production_environment(site, make_database(folder), prefix)
        config = nginx_config(site)
        checked = subprocess.run(
            [nginx, "-t", "-p", str(folder), "-c", str(config), "-e", str(folder / "nginx-t.log")],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stderr
        start(
            site,
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "--config", str(DEPLOY / "gunicorn.conf.py")],
            env,
        )
        start(
            site,
            "mail-worker",
            [sys.executable, "manage.py", "emails", "worker", "--idle-sleep", "0.2"],
            env,
        )
        start(
            site,
            "nginx",
            [nginx, "-p", str(folder), "-c", str(config), "-e", str(folder / "nginx-error.log")]
            + ["-g", "daemon off;"],
            {"PATH": env["PATH"]},
        )
        wait_until(site, lambda: answers(site), "the site answered through nginx")
        yield site


def login_token(visitor: requests.Session, stack: Stack) -> str:
    page = visitor.get(f"{stack.origin}/users/login/", timeout=10)
    assert page.status_code == 200
    match = CSRF_RE.search(page.text)
    assert match, "no CSRF token on the login page"
    return match.group(1) or match.group(2)


def failed_login(
    visitor: requests.Session, stack: Stack, headers: dict[str, str] | None = None
) -> int:
    """Sign in with a wrong password; return the status code."""
    token = login_token(visitor, stack)
    response = visitor.post(
        f"{stack.origin}/users/login/",
        data={"csrf_token": token, "email": READER, "password": "not-the-password"},
        headers={"Referer": f"{stack.origin}/users/login/", **(headers or {})},
        allow_redirects=False,
        timeout=10,
    )
    return response.status_code


@pytest.mark.commits
def test_nginx_serves_static_files_itself_compressed_and_cached(stack):
    visitor = stack.visitor()
    page = visitor.get(f"{stack.origin}/", timeout=10)
    assert page.status_code == 200
    # The app answers pages (its headers on every response), uncompressed.
    assert "Content-Security-Policy" in page.headers
    assert "Content-Encoding" not in page.headers
    href = f"/static/{fingerprinted(CSS)}"
    assert f'href="{href}"' in page.text

    for path, cache, body in [
        (href, LONG_CACHE, STATIC / CSS),
        (f"/static/{CSS}", SHORT_CACHE, STATIC / CSS),
        (
            "/admin/static/vendor/jquery.min.js?v=3.5.1",
            ADMIN_CACHE,
            ADMIN_STATIC / "vendor/jquery.min.js",
        ),
    ]:
        response = visitor.get(f"{stack.origin}{path}", timeout=10)
        assert response.status_code == 200, path
        # nginx's answer: the app would have added its security headers.
        assert response.headers["Server"] == "nginx"
        assert "Content-Security-Policy" not in response.headers, path
        assert response.headers["Cache-Control"] == cache
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.content == body.read_bytes()

    missing = visitor.get(f"{stack.origin}/static/css/missing.000000000000.css", timeout=10)
    assert missing.status_code == 404
    assert "Content-Security-Policy" not in missing.headers


@pytest.mark.commits
def test_rate_limits_count_per_client_address_not_per_proxy(stack):
    first, second = stack.visitor("127.0.0.2"), stack.visitor("127.0.0.3")
    # LOGIN_LIMIT_PER_ADDRESS is "2 per minute" here.
    assert [failed_login(first, stack) for _ in range(3)] == [200, 200, 429]
    # Another address has its own count, though both come through the same nginx.
    assert failed_login(second, stack) == 200
    # A forged X-Forwarded-For is replaced by nginx: it neither frees the
    # limited address nor moves another into the limited one's count.
    assert failed_login(first, stack, {"X-Forwarded-For": "203.0.113.9"}) == 429
    assert failed_login(second, stack, {"X-Forwarded-For": "127.0.0.2"}) == 200
    assert failed_login(second, stack) == 429


@pytest.mark.commits
def test_the_site_is_https_only(stack):
    visitor = stack.visitor("127.0.0.4")
    plain = visitor.get(
        f"http://{SERVER_NAME}:{stack.http_port}/users/login/?next=/posts/",
        allow_redirects=False,
        timeout=10,
    )
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"{stack.origin}/users/login/?next=/posts/"

    page = visitor.get(f"{stack.origin}/users/login/", timeout=10)
    assert page.raw.headers.getlist("Strict-Transport-Security") == [
        "max-age=31536000; includeSubDomains"
    ]
    cookie = page.raw.headers["Set-Cookie"]
    assert cookie.startswith("portal_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie

    # URLs the app builds whole (a redirect to the canonical path, url_for
    # with _external) use the scheme and host nginx served, whatever the client claims.
    redirect = visitor.get(
        f"{stack.origin}/users/login",
        headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert redirect.status_code == 308
    assert redirect.headers["Location"] == f"{stack.origin}/users/login/"


@pytest.mark.commits
def test_a_host_the_site_does_not_serve_gets_no_answer(stack):
    with pytest.raises(requests.ConnectionError):
        stack.visitor().get(f"{stack.origin}/", headers={"Host": "evil.example"}, timeout=10)


@pytest.mark.commits
def test_nginx_refuses_bodies_over_the_apps_limit(stack):
    visitor = stack.visitor("127.0.0.5")
    limit = BaseConfig.MAX_CONTENT_LENGTH
    headers = {"Content-Type": "application/octet-stream"}
    too_big = visitor.post(
        f"{stack.origin}/users/login/", data=b"x" * (limit + 1), headers=headers, timeout=30
    )
    assert too_big.status_code == 413
    assert "Content-Security-Policy" not in too_big.headers  # nginx's answer, not the app's
    # Up to the limit, the body reaches the app (which refuses it for its own reason).
    at_limit = visitor.post(
        f"{stack.origin}/users/login/", data=b"x" * limit, headers=headers, timeout=30
    )
    assert at_limit.status_code == 400
    assert "Content-Security-Policy" in at_limit.headers


@pytest.mark.commits
def test_the_mail_worker_delivers_what_the_site_queued(stack):
    visitor = stack.visitor("127.0.0.6")
    page = visitor.get(f"{stack.origin}/users/forgot/", timeout=10)
    match = CSRF_RE.search(page.text)
    assert match
    response = visitor.post(
        f"{stack.origin}/users/forgot/",
        data={"csrf_token": match.group(1) or match.group(2), "email": READER},
        headers={"Referer": f"{stack.origin}/users/forgot/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    received = stack.smtp.handler.received
    wait_until(stack, lambda: bool(received), "the worker delivered the reset email")
    (message,) = received
    assert message.rcpt_tos == [READER]
    body = message.message.get_body(preferencelist=("plain",))
    assert body is not None
    assert f"{stack.origin}/users/reset/" in body.get_content()
