"""Settings read from the environment when the app is created, never at import.

Each class is instantiated with the instance folder so that values such as the
default SQLite path and the generated secret key can live there.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

SECRET_KEY_FILE = "secret_key"
MIN_SECRET_KEY_LENGTH = 32

# Keys that ship in docs, tutorials and our own development config: never
# acceptable in production, however long.
KNOWN_DEFAULT_KEYS = frozenset(
    {
        "dev",
        "development",
        "secret",
        "changeme",
        "change-me",
        "change-this",
        "default",
        "test",
        "testing",
        "portal-development-key-not-for-production",
    }
)
DEVELOPMENT_SECRET_KEY = "portal-development-key-not-for-production"


class ConfigurationError(RuntimeError):
    """The configuration cannot run in the selected environment."""


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}.") from None


def _env_positive_int(name: str, default: int) -> int:
    value = _env_int(name, default)
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, not {value}.")
    return value


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _env_fraction(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise ConfigurationError(f"{name} must be a number from 0 to 1, not {value!r}.")
    return number


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


# The names of portal.users.constants.ROLE (config imports nothing of the app).
ROLE_NAMES = ("admin", "staff", "user")


def _env_roles(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Read a comma-separated list of role names; set but empty means none."""
    if name not in os.environ:
        return default
    roles = tuple(item.lower() for item in _env_list(name))
    unknown = sorted(set(roles) - set(ROLE_NAMES))
    if unknown:
        raise ConfigurationError(
            f"{name} names unknown role(s) {', '.join(unknown)}: use {', '.join(ROLE_NAMES)}."
        )
    return roles


# -- sign-in with OpenID Connect providers ----------------------------------------

OIDC_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
OIDC_DEFAULT_SCOPES = ("openid", "email", "profile")
OIDC_REQUIRED_KEYS = ("name", "client_id", "client_secret")
OIDC_OPTIONAL_KEYS = ("label", "issuer", "server_metadata_url", "scopes")
OIDC_DISCOVERY_PATH = "/.well-known/openid-configuration"


def _oidc_text(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"OIDC_PROVIDERS: {where}: {key} must be a non-empty string.")
    return value.strip()


def _oidc_scopes(value: Any, where: str) -> list[str]:
    if value is None:
        return list(OIDC_DEFAULT_SCOPES)
    scopes = value.split() if isinstance(value, str) else value
    if not isinstance(scopes, list) or not all(isinstance(item, str) for item in scopes):
        raise ConfigurationError(f"OIDC_PROVIDERS: {where}: scopes must be a list of strings.")
    if "openid" not in scopes:
        raise ConfigurationError(f"OIDC_PROVIDERS: {where}: scopes must include 'openid'.")
    return list(dict.fromkeys(scopes))


def _oidc_provider(entry: Any, index: int) -> dict[str, Any]:
    where = f"provider {index + 1}"
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"OIDC_PROVIDERS: {where} must be an object.")
    unknown = sorted(set(entry) - set(OIDC_REQUIRED_KEYS) - set(OIDC_OPTIONAL_KEYS))
    if unknown:
        raise ConfigurationError(f"OIDC_PROVIDERS: {where}: unknown keys {', '.join(unknown)}.")
    for key in OIDC_REQUIRED_KEYS:
        if _oidc_text(entry, key, where) is None:
            raise ConfigurationError(f"OIDC_PROVIDERS: {where}: {key} is required.")
    name = str(entry["name"]).strip()
    if not OIDC_PROVIDER_NAME.fullmatch(name):
        raise ConfigurationError(
            f"OIDC_PROVIDERS: {where}: name {name!r} must be 1-40 lowercase letters, "
            "digits and hyphens (it appears in the callback URL)."
        )
    issuer = _oidc_text(entry, "issuer", where)
    metadata_url = _oidc_text(entry, "server_metadata_url", where)
    if metadata_url is None:
        if issuer is None:
            raise ConfigurationError(f"OIDC_PROVIDERS: {name}: set issuer or server_metadata_url.")
        metadata_url = issuer.rstrip("/") + OIDC_DISCOVERY_PATH
    return {
        "name": name,
        "label": _oidc_text(entry, "label", where) or name.replace("-", " ").title(),
        "issuer": issuer,
        "server_metadata_url": metadata_url,
        "client_id": str(entry["client_id"]).strip(),
        "client_secret": str(entry["client_secret"]).strip(),
        "scopes": _oidc_scopes(entry.get("scopes"), name),
    }


def parse_oidc_providers(value: Any) -> list[dict[str, Any]]:
    """Check and complete the ``OIDC_PROVIDERS`` setting; raise ``ConfigurationError``.

    ``value`` is a list of objects (or one object keyed by provider name), each
    with ``name``, ``client_id`` and ``client_secret``, an ``issuer`` or a
    ``server_metadata_url`` (the discovery document; made from the issuer when
    missing), and optionally a ``label`` for the button and ``scopes``
    (``openid email profile`` by default).
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise ConfigurationError(f"OIDC_PROVIDERS is not valid JSON: {error}.") from None
    if isinstance(value, Mapping):
        value = [{"name": name, **dict(entry)} for name, entry in value.items()]
    if not isinstance(value, list | tuple):
        raise ConfigurationError("OIDC_PROVIDERS must be a JSON list of providers.")
    providers = [_oidc_provider(entry, index) for index, entry in enumerate(value)]
    names = [provider["name"] for provider in providers]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"OIDC_PROVIDERS names {', '.join(duplicates)} more than once.")
    return providers


def oidc_problems(value: Any) -> list[str]:
    """List what keeps the providers in ``value`` from being safe in production."""
    try:
        providers = parse_oidc_providers(value)
    except ConfigurationError as error:
        return [str(error)]
    problems = []
    for provider in providers:
        for key in ("issuer", "server_metadata_url"):
            url = provider[key]
            if url is not None and not url.startswith("https://"):
                problems.append(
                    f"OIDC_PROVIDERS: {provider['name']}'s {key} is {url!r}: "
                    "a provider is reached over https:// only."
                )
    return problems


# -- who may read /metrics --------------------------------------------------------

METRICS_TOKEN_MIN_LENGTH = 32


def parse_metrics_allow(value: Any) -> list[str]:
    """Check the ``METRICS_ALLOW`` setting: addresses or networks, comma-separated or a list.

    Returns each as a network in its canonical spelling (``10.0.0.7`` becomes
    ``10.0.0.7/32``, ``10.1.2.3/16`` becomes ``10.1.0.0/16``); raises
    ``ConfigurationError`` naming the first entry that is neither.
    """
    if value is None:
        return []
    entries = value.split(",") if isinstance(value, str) else value
    if not isinstance(entries, list | tuple):
        raise ConfigurationError("METRICS_ALLOW must list addresses or networks.")
    networks = []
    for entry in entries:
        text = str(entry).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ConfigurationError(
                f"METRICS_ALLOW: {text!r} is not an IP address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/24)."
            ) from None
    return networks


def metrics_problems(config: Mapping[str, Any]) -> list[str]:
    """List what makes /metrics readable by more than the monitoring system."""
    problems = []
    token = str(config.get("METRICS_TOKEN") or "")
    if token and len(token) < METRICS_TOKEN_MIN_LENGTH:
        problems.append(
            f"METRICS_TOKEN is only {len(token)} characters: use at least "
            f"{METRICS_TOKEN_MIN_LENGTH} random characters."
        )
    try:
        networks = [
            ipaddress.ip_network(entry)
            for entry in parse_metrics_allow(config.get("METRICS_ALLOW"))
        ]
    except ConfigurationError as error:
        return [*problems, str(error)]
    if any(network.prefixlen == 0 for network in networks):
        problems.append("METRICS_ALLOW lets every address read /metrics: list the scrapers only.")
    if not config.get("PROXY_COUNT") and any(network.is_loopback for network in networks):
        problems.append(
            "METRICS_ALLOW lists a loopback address but PROXY_COUNT is 0: behind a local "
            "proxy every visitor comes from 127.0.0.1; set PROXY_COUNT or use METRICS_TOKEN."
        )
    return problems


def read_instance_secret(instance_path: str | os.PathLike[str]) -> str | None:
    """Return the secret key that ``manage.py init`` wrote, if there is one."""
    path = Path(instance_path) / SECRET_KEY_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def normalize_database_url(url: str) -> str:
    """Accept the ``postgres://`` spelling that hosting platforms hand out."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class BaseConfig:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    DEBUG = False
    TESTING = False

    def __init__(self, instance_path: str | os.PathLike[str]) -> None:
        instance = Path(instance_path)
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or read_instance_secret(instance)

        database_url = os.environ.get("DATABASE_URL")
        self.SQLALCHEMY_DATABASE_URI = (
            normalize_database_url(database_url)
            if database_url
            else f"sqlite:///{instance / 'portal.sqlite3'}"
        )
        self.SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True}

        self.PORTAL_NAME = os.environ.get("PORTAL_NAME", "Portal")
        self.PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:5000")

        # Languages offered, the source language first; times are stored in UTC
        # and shown in the account's zone, or this one.
        self.LANGUAGES = ["en", "de"]
        self.BABEL_DEFAULT_LOCALE = "en"
        self.BABEL_DEFAULT_TIMEZONE = os.environ.get("PORTAL_TIMEZONE", "UTC")

        # Rate limits and caches use Redis when it is configured, memory otherwise.
        self.REDIS_URL = os.environ.get("REDIS_URL") or None
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL or "memory://"
        self.RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "portal")
        self.RATELIMIT_HEADERS_ENABLED = True
        self.LOGIN_LIMIT_PER_ADDRESS = os.environ.get(
            "LOGIN_LIMIT_PER_ADDRESS", "20 per 5 minutes;100 per hour"
        )
        self.LOGIN_LIMIT_PER_ACCOUNT = os.environ.get(
            "LOGIN_LIMIT_PER_ACCOUNT", "5 per 5 minutes;20 per hour"
        )
        self.ACCOUNT_EMAIL_LIMIT = os.environ.get("ACCOUNT_EMAIL_LIMIT", "5 per hour")
        # Saving a post or a comment (new or edited) per account: each save renders Markdown.
        self.POST_WRITE_LIMIT = os.environ.get("POST_WRITE_LIMIT", "10 per minute;100 per day")
        # The editor's live preview renders Markdown too, but a save is not spent on it.
        self.POST_PREVIEW_LIMIT = os.environ.get("POST_PREVIEW_LIMIT", "60 per minute;2000 per day")
        self.COMMENT_WRITE_LIMIT = os.environ.get(
            "COMMENT_WRITE_LIMIT", "10 per minute;200 per day"
        )
        # Seconds a CSV export may stream before it stops with its "incomplete" line
        # (under gunicorn's 30-second worker timeout); 0 for no limit.
        self.EXPORT_TIME_LIMIT = _env_int("EXPORT_TIME_LIMIT", 25)
        # Pages that mail an address a visitor typed (sign-up, password reset,
        # email change, a new confirmation link) share these, counted per typed
        # address and per signed-in account, so nobody is mailed on a stranger's say.
        self.ACCOUNT_EMAIL_LIMIT_PER_RECIPIENT = os.environ.get(
            "ACCOUNT_EMAIL_LIMIT_PER_RECIPIENT", "5 per hour;10 per day"
        )
        self.ACCOUNT_EMAIL_LIMIT_PER_ACCOUNT = os.environ.get(
            "ACCOUNT_EMAIL_LIMIT_PER_ACCOUNT", "5 per hour;20 per day"
        )

        self.MAIL_TRANSPORT = os.environ.get("MAIL_TRANSPORT", "smtp")
        self.MAIL_SERVER = os.environ.get("MAIL_SERVER", "localhost")
        self.MAIL_PORT = _env_int("MAIL_PORT", 25)
        self.MAIL_USE_TLS = _env_bool("MAIL_USE_TLS", False)
        self.MAIL_USE_SSL = _env_bool("MAIL_USE_SSL", False)
        self.MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
        self.MAIL_TIMEOUT = _env_int("MAIL_TIMEOUT", 30)
        self.MAIL_DEFAULT_SENDER = os.environ.get(
            "MAIL_DEFAULT_SENDER", "Portal <no-reply@example.com>"
        )
        self.EMAIL_BATCH_SIZE = _env_int("EMAIL_BATCH_SIZE", 50)
        self.EMAIL_LEASE_SECONDS = _env_int("EMAIL_LEASE_SECONDS", 300)
        self.EMAIL_MAX_ATTEMPTS = _env_int("EMAIL_MAX_ATTEMPTS", 5)
        # Messages per minute per worker; 0 sends as fast as the server takes them.
        self.EMAIL_RATE_LIMIT = _env_int("EMAIL_RATE_LIMIT", 0)
        # Successful sends written per transaction; a killed worker may resend
        # up to this many (delivery is at least once either way).
        self.EMAIL_RECORD_EVERY = _env_int("EMAIL_RECORD_EVERY", 10)
        # Where List-Unsubscribe's mailto goes; empty: the sender's own address.
        self.EMAIL_UNSUBSCRIBE_MAILTO = os.environ.get("EMAIL_UNSUBSCRIBE_MAILTO") or None
        # "Download my data": an account with more rows than this (posts,
        # comments, reports, emails and audit events together) gets its file
        # built in the background and a link by email; smaller ones download at once.
        self.DATA_EXPORT_INLINE_MAX_ROWS = _env_int("DATA_EXPORT_INLINE_MAX_ROWS", 2000)

        # Public pages: how many posts and comments a page shows.
        self.POSTS_PER_PAGE = _env_int("POSTS_PER_PAGE", 10)
        self.COMMENTS_PER_PAGE = _env_int("COMMENTS_PER_PAGE", 20)
        # Tags a post may carry; the editor refuses more.
        self.POST_MAX_TAGS = _env_positive_int("POST_MAX_TAGS", 5)
        # Search ranks at most this many of the newest matching posts, so a word
        # found everywhere costs no more than a rare one; results pages stop there.
        self.SEARCH_CANDIDATES = _env_int("SEARCH_CANDIDATES", 200)
        # Posts in each Atom feed (the site's, a tag's, an author's): the newest.
        self.FEED_ENTRIES = _env_int("FEED_ENTRIES", 20)
        # New comments wait for staff before anyone else sees them.
        self.COMMENTS_REQUIRE_APPROVAL = _env_bool("COMMENTS_REQUIRE_APPROVAL", True)
        # Posts an author publishes wait for staff first: "off"; "new", for accounts
        # younger than POSTS_REVIEW_ACCOUNT_DAYS days or with fewer than
        # POSTS_REVIEW_MIN_APPROVED published posts; or "all". Staff never wait.
        self.POSTS_REQUIRE_APPROVAL = _env_choice(
            "POSTS_REQUIRE_APPROVAL", "new", ("off", "new", "all")
        )
        self.POSTS_REVIEW_ACCOUNT_DAYS = _env_int("POSTS_REVIEW_ACCOUNT_DAYS", 7)
        self.POSTS_REVIEW_MIN_APPROVED = _env_int("POSTS_REVIEW_MIN_APPROVED", 1)
        # Reports from this many different accounts hide a post or a comment
        # from the public until staff review it.
        self.REPORTS_HIDE_THRESHOLD = _env_positive_int("REPORTS_HIDE_THRESHOLD", 3)
        # Accounts younger than NEW_ACCOUNT_DAYS days (staff aside) write under
        # these limits as well as the ones above, and with at most
        # NEW_ACCOUNT_MAX_LINKS links in a post or a comment.
        self.NEW_ACCOUNT_DAYS = _env_int("NEW_ACCOUNT_DAYS", 7)
        self.NEW_ACCOUNT_POST_WRITE_LIMIT = os.environ.get(
            "NEW_ACCOUNT_POST_WRITE_LIMIT", "3 per hour;10 per day"
        )
        self.NEW_ACCOUNT_COMMENT_WRITE_LIMIT = os.environ.get(
            "NEW_ACCOUNT_COMMENT_WRITE_LIMIT", "10 per hour;50 per day"
        )
        self.NEW_ACCOUNT_MAX_LINKS = _env_int("NEW_ACCOUNT_MAX_LINKS", 2)
        # How long a post page rendered for visitors who are not signed in is
        # reused (0 turns it off); Redis keeps them when REDIS_URL is set.
        self.PAGE_CACHE_SECONDS = _env_int("PAGE_CACHE_SECONDS", 60)
        # Adds /_bench/hello, the bare route benchmarks compare pages against.
        self.BENCH_ROUTES = _env_bool("PORTAL_BENCH_ROUTES", False)

        # Unhandled errors are emailed here (through the outbox) in production.
        self.ADMINS = _env_list("ADMINS")
        # Log lines on standard error: "json" (one object per line) or "text"; see portal.logs.
        self.LOG_FORMAT: str | None = os.environ.get("LOG_FORMAT") or "json"
        self.LOG_LEVEL = os.environ.get("LOG_LEVEL") or "INFO"
        # Unhandled errors also go to Sentry when a DSN is set (needs portal[sentry]).
        self.SENTRY_DSN = os.environ.get("SENTRY_DSN") or None
        self.SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT") or self.ENV_NAME
        self.SENTRY_TRACES_SAMPLE_RATE = _env_fraction("SENTRY_TRACES_SAMPLE_RATE", 0.0)

        self.RECAPTCHA_PUBLIC_KEY = os.environ.get("RECAPTCHA_PUBLIC_KEY") or None
        self.RECAPTCHA_PRIVATE_KEY = os.environ.get("RECAPTCHA_PRIVATE_KEY") or None
        # Sign-in with OpenID Connect providers: a JSON list (see parse_oidc_providers).
        self.OIDC_PROVIDERS = parse_oidc_providers(os.environ.get("OIDC_PROVIDERS"))
        # Whether a verified provider email that matches no account creates one.
        self.OIDC_REGISTRATION = _env_bool("OIDC_REGISTRATION", True)

        self.TRUSTED_HOSTS = _env_list("TRUSTED_HOSTS") or None
        # How many reverse proxies sit in front of the app (for the client address).
        self.PROXY_COUNT = _env_int("PROXY_COUNT", 0)
        # Who may read /metrics: a bearer token, or addresses and networks
        # (comma-separated); neither set means nobody.
        self.METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
        self.METRICS_ALLOW = parse_metrics_allow(os.environ.get("METRICS_ALLOW"))

        # Signed-in sessions are rows in the database. One ends after this long
        # without a request (idle) or this long after sign-in (absolute), the
        # remember-me cookie notwithstanding; accounts that reach the back
        # office (STAFF, ADMIN) have the shorter STAFF_ lifetimes.
        self.SESSION_IDLE_MINUTES = _env_positive_int("SESSION_IDLE_MINUTES", 7 * 24 * 60)
        self.SESSION_MAX_HOURS = _env_positive_int("SESSION_MAX_HOURS", 14 * 24)
        self.STAFF_SESSION_IDLE_MINUTES = _env_positive_int("STAFF_SESSION_IDLE_MINUTES", 120)
        self.STAFF_SESSION_MAX_HOURS = _env_positive_int("STAFF_SESSION_MAX_HOURS", 12)
        # With REDIS_URL, how long Redis keeps a copy of a session row (0: never).
        self.SESSION_CACHE_SECONDS = _env_int("SESSION_CACHE_SECONDS", 60)
        self.SESSION_CACHE_PREFIX = os.environ.get("SESSION_CACHE_PREFIX", "portal:session:")
        # Roles whose accounts must set up a second factor (an authenticator app)
        # before any /admin page or staff action; production requires it of staff.
        self.MFA_REQUIRED_ROLES = _env_roles("MFA_REQUIRED_ROLES", self.MFA_DEFAULT_ROLES)

    # Request size limits: a body over these gets 413 before any view runs.
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    MAX_FORM_MEMORY_SIZE = 256 * 1024
    MAX_FORM_PARTS = 200

    # Seconds a static file asked for by its plain name (or an outdated
    # fingerprint) may be cached; fingerprinted names are kept a year.
    STATIC_MAX_AGE = 300

    SQLALCHEMY_RECORD_QUERIES = False

    SESSION_COOKIE_NAME = "portal_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_NAME = "portal_remember"
    REMEMBER_COOKIE_DURATION = timedelta(days=14)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = False
    PERMANENT_SESSION_LIFETIME = timedelta(days=14)

    WTF_CSRF_TIME_LIMIT = 6 * 3600
    HSTS = False

    CONFIRM_TOKEN_MAX_AGE = 3 * 24 * 3600
    RESET_TOKEN_MAX_AGE = 2 * 3600
    EMAIL_CHANGE_TOKEN_MAX_AGE = 24 * 3600
    INVITE_TOKEN_MAX_AGE = 7 * 24 * 3600
    # The preferences link in a broadcast or notification footer; the
    # unsubscribe link itself never expires (RFC 8058 clients keep it).
    EMAIL_PREFERENCES_TOKEN_MAX_AGE = 180 * 24 * 3600
    # A "your data is ready" link; the file itself is kept as long.
    DATA_EXPORT_TOKEN_MAX_AGE = 7 * 24 * 3600

    PASSWORD_MIN_LENGTH = 8
    PASSWORD_MAX_LENGTH = 128
    # zxcvbn score (0-4) a new password must reach.
    PASSWORD_MIN_SCORE = 3
    # Werkzeug's method string; None is its default (scrypt at full cost).
    PASSWORD_HASH_METHOD: str | None = None

    ERROR_EMAIL_INTERVAL = 3600

    MFA_DEFAULT_ROLES: tuple[str, ...] = ()


class DevelopmentConfig(BaseConfig):
    """Local development: console mail, SQLite under instance/, debug tools."""

    ENV_NAME = "development"
    DEBUG = True
    # An edited stylesheet shows on the next reload.
    STATIC_MAX_AGE = 0

    def __init__(self, instance_path: str | os.PathLike[str]) -> None:
        super().__init__(instance_path)
        self.SECRET_KEY = self.SECRET_KEY or DEVELOPMENT_SECRET_KEY
        self.MAIL_TRANSPORT = os.environ.get("MAIL_TRANSPORT", "console")
        self.DEBUG = _env_bool("FLASK_DEBUG", True)
        self.LOG_FORMAT = os.environ.get("LOG_FORMAT") or "text"


class TestingConfig(BaseConfig):
    """The test suite: memory mail, cheap password hashing, no page cache."""

    ENV_NAME = "testing"
    TESTING = True

    def __init__(self, instance_path: str | os.PathLike[str]) -> None:
        super().__init__(instance_path)
        self.SECRET_KEY = "testing-secret-key-0123456789abcdef0123456789"
        self.MAIL_TRANSPORT = "memory"
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(
            os.environ.get("TEST_DATABASE_URL", "sqlite://")
        )
        self.RATELIMIT_STORAGE_URI = "memory://"
        # Each test sees pages rendered fresh; the cache has tests of its own.
        self.PAGE_CACHE_SECONDS = 0
        # Factories make accounts a moment old: every one would be new. Review
        # and the newcomers' limits are off, and turned on by the tests of them.
        self.POSTS_REQUIRE_APPROVAL = "off"
        self.NEW_ACCOUNT_DAYS = 0
        # Scrypt at a low cost: the same code path, a thousandth of the time
        # (as Django's test settings swap in a fast hasher).
        self.PASSWORD_HASH_METHOD = "scrypt:1024:8:1"
        # Logging stays as pytest sets it (caplog works); a test may pick a format.
        self.LOG_FORMAT = None
        self.SENTRY_DSN = None


class ProductionConfig(BaseConfig):
    """Production: secure cookies, HSTS, SMTP, strict checks at start-up."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"
    HSTS = True
    MFA_DEFAULT_ROLES = ("staff", "admin")

    def __init__(self, instance_path: str | os.PathLike[str]) -> None:
        super().__init__(instance_path)
        self.DEBUG = _env_bool("FLASK_DEBUG", False)


CONFIGS: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_for(name: str | None, instance_path: str | os.PathLike[str]) -> BaseConfig:
    """Instantiate the configuration named by ``name`` or ``PORTAL_ENV``."""
    name = (name or os.environ.get("PORTAL_ENV") or "development").strip().lower()
    try:
        cls = CONFIGS[name]
    except KeyError:
        choices = ", ".join(CONFIGS)
        raise ConfigurationError(f"PORTAL_ENV={name!r} is unknown; use one of {choices}.") from None
    return cls(instance_path)


def startup_problems(config: Mapping[str, Any]) -> list[str]:
    """List what makes production refuse to start, one line each."""
    problems: list[str] = []
    key = config.get("SECRET_KEY") or ""
    if not key:
        problems.append(
            "SECRET_KEY is not set: set the SECRET_KEY environment variable "
            "or run `python manage.py init` to write instance/secret_key."
        )
    elif key.strip().lower() in KNOWN_DEFAULT_KEYS:
        problems.append(
            "SECRET_KEY is a well-known default: generate a new one with "
            "`python manage.py init` or `python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"SECRET_KEY is only {len(key)} characters: use at least "
            f"{MIN_SECRET_KEY_LENGTH} random characters."
        )
    if config.get("DEBUG"):
        problems.append("DEBUG is on: unset FLASK_DEBUG; the debugger runs code for anyone.")
    if config.get("TESTING"):
        problems.append("TESTING is on: production must not run with the testing config.")
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if not config.get(name):
            problems.append(f"{name} is off: cookies must only travel over HTTPS.")
    for name in ("SESSION_COOKIE_HTTPONLY", "REMEMBER_COOKIE_HTTPONLY"):
        if not config.get(name):
            problems.append(f"{name} is off: scripts must not read the session cookies.")
    for name in ("SESSION_COOKIE_SAMESITE", "REMEMBER_COOKIE_SAMESITE"):
        if config.get(name) not in {"Lax", "Strict"}:
            problems.append(
                f"{name} is {config.get(name)!r}: use 'Lax' so other sites cannot "
                "send requests with the session."
            )
    if str(config.get("RATELIMIT_STORAGE_URI") or "memory://").startswith("memory://"):
        problems.append(
            "REDIS_URL is not set: rate limits would be counted per process, so each worker "
            "allows the whole limit again; set REDIS_URL (e.g. redis://127.0.0.1:6379/0)."
        )
    problems += oidc_problems(config.get("OIDC_PROVIDERS"))
    if config.get("SENTRY_DSN") and not _sentry_installed():
        problems.append(
            "SENTRY_DSN is set but sentry-sdk is not installed: install it "
            "(pip install 'portal[sentry]') or unset SENTRY_DSN."
        )
    return problems


def _sentry_installed() -> bool:
    try:
        return importlib.util.find_spec("sentry_sdk") is not None
    except ValueError:  # a stand-in module without a spec
        return False


def production_problems(config: Mapping[str, Any]) -> list[str]:
    """List everything that keeps ``config`` from being ready to serve."""
    problems = startup_problems(config)
    if not config.get("TRUSTED_HOSTS"):
        problems.append(
            "TRUSTED_HOSTS is not set: list the site's host names, comma-separated "
            "(e.g. TRUSTED_HOSTS=portal.example.com)."
        )
    base_url = str(config.get("PORTAL_BASE_URL") or "")
    if not base_url.startswith("https://"):
        problems.append(
            "PORTAL_BASE_URL must be the site's https:// address: email links are built from it."
        )
    if config.get("MAIL_TRANSPORT") not in {"smtp"}:
        problems.append(
            f"MAIL_TRANSPORT is {config.get('MAIL_TRANSPORT')!r}: production delivers with 'smtp'."
        )
    if config.get("BENCH_ROUTES"):
        problems.append("PORTAL_BENCH_ROUTES is on: /_bench/hello is for benchmarks only.")
    problems += metrics_problems(config)
    return problems
