"""Server-side sign-in sessions: one database row per signed-in browser.

The cookie carries a random token (signed, inside Flask's session cookie and
the remember-me cookie); the row keeps only its SHA-256, so reading the table
gives nobody a way in. A session ends when its row goes: sign-out, ending it
from "Where you're signed in" or the back office, a password or role change,
disabling the account, or its idle or absolute lifetime running out.

With ``REDIS_URL`` set, Redis keeps a copy of each row for a few seconds so a
signed-in page need not read it from the database. A copy carries the
account's ``session_version``, which every "end all sessions" raises, and is
deleted when its row is (again once the deletion commits), so a copy is
never trusted after its session ended. The time a session was last seen is
written at most once a minute.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import Any

import redis
from flask import current_app
from flask import g
from flask import has_request_context
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import exists
from sqlalchemy import not_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from portal import security
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import utcnow
from portal.extensions import db
from portal.users.devices import describe
from portal.users.models import User
from portal.users.models import UserSession

TOKEN_BYTES = 32
# A token from secrets.token_urlsafe(32) has 43 characters; a longer "token" is
# refused before it is hashed.
TOKEN_MAX_LENGTH = 64
ADDRESS_MAX_LENGTH = 45
# The last-seen time is written at most this often per session.
LAST_SEEN_EVERY = timedelta(minutes=1)
# Clocks of two servers may differ by this much: a session this much older than
# its account is still taken to be the account's own.
CLOCK_SKEW = timedelta(minutes=1)
# The most sessions a list shows (the most recently active first).
LIST_LIMIT = 100
PURGE_BATCH = 500

CACHE_EXTENSION = "portal.session_cache"
# Session-level keys: what this request's session did, for ``settle`` and after commit.
CURRENT = "portal_session"
CHANGED = "portal_session_changed"
FORGET = "portal.sessions.forget"


class SessionNotFound(LookupError):
    """No session of that account has that id (it ended, or it is someone else's)."""


class NotAllowed(PermissionError):
    """The gate refuses this person ending that account's sessions; the message is safe to show."""


@dataclass(frozen=True)
class Record:
    """What a request needs to know of its session row (and what Redis keeps of it)."""

    id: int
    token_hash: str
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    second_factor: bool
    # The account's session_version when this copy was made.
    version: int

    @classmethod
    def of(cls, row: UserSession, user: User) -> Record:
        return cls(
            row.id,
            row.token_hash,
            row.user_id,
            row.created_at,
            row.last_seen_at,
            row.second_factor,
            user.session_version,
        )

    def dumps(self) -> str:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["last_seen_at"] = self.last_seen_at.isoformat()
        return json.dumps(data)

    @classmethod
    def loads(cls, text: str | bytes) -> Record | None:
        """Read a cached copy; anything malformed is no copy at all."""
        try:
            data = json.loads(text)
            return cls(
                id=int(data["id"]),
                token_hash=str(data["token_hash"]),
                user_id=int(data["user_id"]),
                created_at=datetime.fromisoformat(data["created_at"]),
                last_seen_at=datetime.fromisoformat(data["last_seen_at"]),
                second_factor=bool(data["second_factor"]),
                version=int(data["version"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


# -- tokens and lifetimes -------------------------------------------------------


def hash_token(token: str) -> str:
    """Return the SHA-256 (hex) of a session token: the only form the database holds."""
    return hashlib.sha256(token.encode()).hexdigest()


def lifetimes(user: User) -> tuple[timedelta, timedelta]:
    """Return (idle, absolute) lifetimes of ``user``'s sessions: shorter for the back office."""
    config = current_app.config
    if security.can(user, security.VIEW, security.ADMIN_SITE):
        return (
            timedelta(minutes=config["STAFF_SESSION_IDLE_MINUTES"]),
            timedelta(hours=config["STAFF_SESSION_MAX_HOURS"]),
        )
    return (
        timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
        timedelta(hours=config["SESSION_MAX_HOURS"]),
    )


def is_expired(record: Record | UserSession, user: User, now: datetime) -> bool:
    """Tell whether a session has been idle too long or has lived too long."""
    idle, longest = lifetimes(user)
    return now - record.last_seen_at >= idle or now - record.created_at >= longest


# -- the Redis copy ---------------------------------------------------------------


class SessionCache:
    """Copies of session rows in Redis, by hashed token; a Redis that does not answer is a miss."""

    def __init__(self, url: str, prefix: str, seconds: int) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self.prefix = prefix
        self.seconds = seconds

    def get(self, token_hash: str) -> Record | None:
        try:
            value = self.client.get(self.prefix + token_hash)
        except redis.RedisError:
            return None
        return Record.loads(value) if isinstance(value, bytes) else None

    def put(self, record: Record) -> None:
        try:
            self.client.set(self.prefix + record.token_hash, record.dumps(), ex=self.seconds)
        except redis.RedisError:
            current_app.logger.warning("sessions: Redis did not answer; session not cached")

    def forget(self, token_hashes: list[str]) -> None:
        if not token_hashes:
            return
        try:
            self.client.delete(*(self.prefix + value for value in token_hashes))
        except redis.RedisError:
            current_app.logger.warning("sessions: Redis did not answer; copies expire on their own")


def _cache() -> SessionCache | None:
    """The Redis copy for the current settings, or None without ``REDIS_URL``."""
    config = current_app.config
    url = config.get("REDIS_URL")
    seconds = int(config.get("SESSION_CACHE_SECONDS") or 0)
    if not url or seconds <= 0:
        return None
    # Made on first use for the settings in force, so a test may point one app elsewhere.
    caches: dict[tuple[str, str, int], SessionCache] = current_app.extensions.setdefault(
        CACHE_EXTENSION, {}
    )
    key = (url, config["SESSION_CACHE_PREFIX"], seconds)
    if key not in caches:
        caches[key] = SessionCache(*key)
    return caches[key]


def _forget(token_hashes: list[str]) -> None:
    """Drop the Redis copies now, and again once the deletion commits.

    Until then another request may still read the row and cache it afresh.
    """
    cache = _cache()
    if cache is None or not token_hashes:
        return
    cache.forget(token_hashes)
    db.session().info.setdefault(FORGET, []).append((cache, list(token_hashes)))


@event.listens_for(Session, "after_commit")
def _forget_after_commit(session: Session) -> None:
    for cache, token_hashes in session.info.pop(FORGET, []):
        cache.forget(token_hashes)


@event.listens_for(Session, "after_rollback")
def _nothing_to_forget(session: Session) -> None:
    # The rows were not deleted: the copies dropped early only cost a read.
    session.info.pop(FORGET, None)


# -- starting and loading -------------------------------------------------------


def start(
    user: User,
    *,
    address: str | None,
    user_agent: str | None,
    second_factor: bool = False,
) -> str:
    """Record a new session of ``user`` and return its token (for the cookie only).

    The token is attached to ``user``, whose ``get_id`` Flask-Login stores.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    row = UserSession(
        token_hash=hash_token(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        address=(address or "")[:ADDRESS_MAX_LENGTH] or None,
        device=describe(user_agent),
        second_factor=second_factor,
    )
    db.session.add(row)
    db.session.commit()
    user.session_token = token
    _set_current(Record.of(row, user))
    return token


def load(token: str) -> User | None:
    """Return the account signed in with ``token``, or None when that session is over.

    One database read, none with a Redis copy (besides the account itself,
    which every signed-in page reads). An expired session, or one whose
    account is disabled, is refused and deleted.
    """
    if not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    token_hash = hash_token(token)
    cache = _cache()
    found: tuple[Record, User] | None = None
    if cache is not None:
        found = _from_cache(cache, token_hash)
    from_database = found is None
    if found is None:
        found = _from_database(token_hash)
    if found is None:
        return None
    record, user = found
    now = utcnow()
    if not user.is_active or _predates(record, user) or is_expired(record, user, now):
        _delete(select(UserSession.token_hash).where(UserSession.id == record.id))
        _mark_changed()
        return None
    if now - record.last_seen_at >= LAST_SEEN_EVERY:
        touched = db.session.execute(
            update(UserSession).where(UserSession.id == record.id).values(last_seen_at=now)
        )
        _mark_changed()
        if not getattr(touched, "rowcount", 1):
            # A cached copy of a session that has just ended.
            _forget([token_hash])
            return None
        record = replace(record, last_seen_at=now)
        from_database = True
    if cache is not None and from_database:
        cache.put(record)
    user.session_token = token
    _set_current(record)
    return user


def _predates(record: Record, user: User) -> bool:
    """Tell whether the session began before its account: a deleted account's, whose id came back.

    (SQLite hands the highest id out again once its row is deleted.)
    """
    return record.created_at < user.created_at - CLOCK_SKEW


def _from_cache(cache: SessionCache, token_hash: str) -> tuple[Record, User] | None:
    record = cache.get(token_hash)
    if record is None:
        return None
    user = db.session.get(User, record.user_id)
    if user is None or user.session_version != record.version:
        cache.forget([token_hash])
        return None
    return record, user


def _from_database(token_hash: str) -> tuple[Record, User] | None:
    row = db.session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    session_row, user = row
    return Record.of(session_row, user), user


def _set_current(record: Record) -> None:
    if has_request_context():
        setattr(g, CURRENT, record)


def _mark_changed() -> None:
    if has_request_context():
        setattr(g, CHANGED, True)


def current() -> Record | None:
    """Return this request's session (None for a visitor, or outside a request)."""
    return g.get(CURRENT) if has_request_context() else None


def current_id() -> int | None:
    """Return the id of this request's session row, if it has one."""
    record = current()
    return record.id if record is not None else None


def settle() -> None:
    """Commit what loading this request's session wrote (its last-seen time, an expiry)."""
    if has_request_context() and g.pop(CHANGED, False):
        db.session.commit()


# -- listing and ending ---------------------------------------------------------


def of(user: User) -> list[UserSession]:
    """Return the account's live sessions, the most recently active first."""
    rows = db.session.execute(
        select(UserSession)
        .where(UserSession.user_id == user.id)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        .limit(LIST_LIMIT)
    ).scalars()
    now = utcnow()
    return [row for row in rows if not is_expired(row, user, now)]


def _delete(hashes: Select[Any]) -> int:
    """Delete the session rows whose hashes ``hashes`` selects; drop their copies."""
    token_hashes = list(db.session.execute(hashes).scalars())
    if not token_hashes:
        return 0
    db.session.execute(
        delete(UserSession).where(UserSession.token_hash.in_(token_hashes)),
        execution_options={"synchronize_session": False},
    )
    _forget(token_hashes)
    return len(token_hashes)


def end_all(user: User, *, keep: int | None = None) -> int:
    """Delete every session of ``user`` but ``keep`` (a session id); return how many ended.

    Part of the caller's transaction. Raising the session version also makes
    any cached copy untrustworthy at once, the kept session's included (it is
    read afresh).
    """
    hashes = select(UserSession.token_hash).where(UserSession.user_id == user.id)
    if keep is not None:
        hashes = hashes.where(UserSession.id != keep)
    ended = _delete(hashes)
    user.session_version = (user.session_version or 0) + 1
    return ended


def end_current() -> None:
    """End this request's session (signing out); nothing happens for a visitor."""
    record = current()
    if record is None:
        return
    _delete(select(UserSession.token_hash).where(UserSession.id == record.id))
    setattr(g, CURRENT, None)
    db.session.commit()


def _require(actor: Any, user: User) -> None:
    problem = security.refusal(actor, security.END_SESSIONS, user)
    if problem:
        raise NotAllowed(problem)


def end_session(user: User, session_id: int, *, actor: Any) -> str:
    """End one session of ``user``, as ``actor`` (the owner, staff, or None for an operator).

    Return the device it was on. Raise ``NotAllowed`` when the gate refuses,
    ``SessionNotFound`` when ``user`` has no session with that id. Audited;
    committed.
    """
    _require(actor, user)
    row = db.session.execute(
        select(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id)
    ).scalar_one_or_none()
    if row is None:
        raise SessionNotFound(session_id)
    where = f" ({row.address})" if row.address else ""
    audit.record(
        AUDIT.ACTION_SESSION_ENDED,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Ended a session of {user.email}: {row.device}{where}",
        changes={"session": [f"{row.device}{where}", None]},
    )
    device = row.device
    _delete(select(UserSession.token_hash).where(UserSession.id == row.id))
    db.session.commit()
    return device


def end_sessions(user: User, *, actor: Any, keep: int | None = None) -> int:
    """End every session of ``user`` but ``keep``; return how many ended. Audited; committed."""
    _require(actor, user)
    ended = end_all(user, keep=keep)
    audit.record(
        AUDIT.ACTION_SESSION_ENDED,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Ended {ended} {'other ' if keep else ''}session(s) of {user.email}",
        changes={"sessions": [ended, 0]},
    )
    db.session.commit()
    return ended


# -- housekeeping ---------------------------------------------------------------


def _expired_condition(now: datetime) -> Any:
    """SQL for the sessions past their lifetimes (and those whose account is gone)."""
    config = current_app.config
    staff = UserSession.user_id.in_(
        select(User.id).where(security.accounts_that_can(User, security.VIEW, security.ADMIN_SITE))
    )

    def past(idle_minutes: int, max_hours: int) -> Any:
        return or_(
            UserSession.last_seen_at <= now - timedelta(minutes=idle_minutes),
            UserSession.created_at <= now - timedelta(hours=max_hours),
        )

    orphan = not_(exists().where(User.id == UserSession.user_id))
    return or_(
        and_(
            staff,
            past(config["STAFF_SESSION_IDLE_MINUTES"], config["STAFF_SESSION_MAX_HOURS"]),
        ),
        and_(not_(staff), past(config["SESSION_IDLE_MINUTES"], config["SESSION_MAX_HOURS"])),
        orphan,
    )


def purge_expired(now: datetime | None = None) -> int:
    """Delete every session past its idle or absolute lifetime; return how many. Committed."""
    condition = _expired_condition(now or utcnow())
    total = 0
    while True:
        ended = _delete(select(UserSession.token_hash).where(condition).limit(PURGE_BATCH))
        db.session.commit()
        total += ended
        if ended < PURGE_BATCH:
            return total
