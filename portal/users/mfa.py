"""The second factor: a TOTP authenticator app, and single-use recovery codes.

An account enrols in two steps: ``begin_enrolment`` stores a new secret (not
yet in force), ``confirm_enrolment`` puts it in force once the person types
one code their app made from it, and returns ten recovery codes, shown once.

Codes are checked with ``check_code``: a six-digit TOTP code of the current
30-second step or the one either side of it, or a recovery code. A TOTP code
is good once: the step of the last one accepted is stored, and no code of
that step or an earlier one is accepted again. A recovery code is spent when
it is used. Both are claimed with one conditional UPDATE, so two requests
racing with the same code cannot both win.

Storage:

- The TOTP secret must be readable to check codes, so it cannot be hashed. It
  is encrypted (Fernet: AES-128-CBC with an HMAC-SHA256) with a key derived
  from ``SECRET_KEY``, so a copy of the database alone (a backup, a replica, a
  dump) does not give anyone the secrets. Keys in ``SECRET_KEY_FALLBACKS``
  still decrypt, so the key can be rotated without locking anyone out; a
  secret no key decrypts is ``SecretUnreadable`` (an admin resets it).
- Recovery codes have 60 random bits each (12 characters of Crockford's base32)
  and only their SHA-256, salted with the account id, is kept. A slow hash buys
  little for 60 random bits: it guards against guessing passwords people chose.

No code, secret or recovery code is ever logged or written to the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pyotp
import segno
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.fernet import MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from portal import security
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import utcnow
from portal.extensions import db
from portal.i18n import N_
from portal.users import events
from portal.users import sessions
from portal.users.models import RecoveryCode
from portal.users.models import SecondFactor
from portal.users.models import User

# pyotp's defaults, which every authenticator app expects: six digits, 30 seconds, SHA-1.
TIME_STEP_SECONDS = 30
CODE_DIGITS = 6
# A code of the step before or after the current one is accepted too (clock drift).
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# Crockford's base32: no I, L, O or U, so nothing reads as another character.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_CODE_LENGTH = 12  # 12 x 5 = 60 random bits
RECOVERY_GROUP = 4
# What a person may mistype for a Crockford character.
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})
# The longest thing anyone could mean as a code; anything longer is refused unread.
CODE_MAX_LENGTH = 40
_KEY_INFO = b"portal.users.mfa: TOTP secrets"

WRONG_CODE = N_("That code is not right, or it was already used. Try the next one your app shows.")
NOT_ENROLLED = N_("This account has no second factor.")
ALREADY_ENROLLED = N_("This account already has a second factor: turn it off first.")
NO_ENROLMENT = N_("Start again: the set-up was not found.")
WRONG_PASSWORD = N_("The password is not correct.")
# The reason a refused sign-in's event gives (the code itself is never kept).
WRONG_CODE_REASON = "wrong second-factor code"
UNREADABLE = N_(
    "The authenticator of this account cannot be read any more (the site's key changed): "
    "sign in with a recovery code, or ask an admin to reset your second factor."
)


class SecondFactorError(Exception):
    """A second-factor request was refused; the message is safe to show."""


class SecretUnreadable(SecondFactorError):
    """No configured key decrypts the stored secret."""


@dataclass(frozen=True)
class Enrolment:
    """What the set-up page shows: the secret as text and as a QR code."""

    secret: str
    uri: str

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four characters, easier to type into an app by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))

    def qr_svg(self) -> Markup:
        """The QR code of the ``otpauth://`` address, as inline SVG (no image request, no data:)."""
        code = segno.make(self.uri, error="m")
        svg = code.svg_inline(
            scale=5,
            border=4,
            dark="#000",
            light="#fff",
            title="QR code of the authenticator secret",
        )
        return Markup(svg)  # noqa: S704 - segno's own markup, with nothing of the visitor's


def now() -> float:
    """Return the time codes are checked against (tests replace it to move the clock)."""
    return time.time()


# -- the secret at rest ---------------------------------------------------------


def _fernet_key(secret_key: str | bytes) -> bytes:
    material = secret_key.encode() if isinstance(secret_key, str) else secret_key
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(material)
    return base64.urlsafe_b64encode(derived)


def _cipher() -> MultiFernet:
    """The current key first (it encrypts), then each fallback (they only decrypt)."""
    config = current_app.config
    keys = [config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or ())]
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


def encrypt_secret(secret: str) -> str:
    """Encrypt a base32 TOTP secret for the database."""
    return _cipher().encrypt(secret.encode()).decode()


def decrypt_secret(stored: str) -> str:
    """Decrypt a stored TOTP secret; ``SecretUnreadable`` when no key does."""
    try:
        return _cipher().decrypt(stored.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(_(UNREADABLE)) from None


# -- state ----------------------------------------------------------------------


def _row(user: User) -> SecondFactor | None:
    return db.session.get(SecondFactor, user.id)


def is_enrolled(user: User) -> bool:
    """Tell whether ``user`` has a second factor in force."""
    row = _row(user)
    return row is not None and row.enrolled_at is not None


def required_for(user: User) -> bool:
    """Tell whether the account's role must have a second factor (``MFA_REQUIRED_ROLES``)."""
    return security.second_factor_required(user)


def session_passed(user: User) -> bool:
    """Tell whether this request's session passed the second factor the account has now.

    A session begun before the account enrolled, or one whose account turned
    its second factor off since, has not.
    """
    record = sessions.current()
    if record is None or record.user_id != user.id or not record.second_factor:
        return False
    return is_enrolled(user)


def recovery_codes_left(user: User) -> int:
    """Count the account's recovery codes not used yet."""
    return int(
        db.session.execute(
            select(func.count(RecoveryCode.id)).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        ).scalar_one()
    )


# -- enrolment ------------------------------------------------------------------


def _issuer() -> str:
    return str(current_app.config["PORTAL_NAME"])


def _enrolment(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=_issuer())
    return Enrolment(secret=secret, uri=uri)


def begin_enrolment(user: User, password: str) -> Enrolment:
    """Store a new secret for ``user``, not in force until a code confirms it.

    It takes the account's password, so a stolen session cookie cannot set up
    a factor of its own (and with it reach what needs one). Starting again
    replaces a set-up that was never confirmed.
    """
    row = _row(user)
    if row is not None and row.enrolled_at is not None:
        raise SecondFactorError(_(ALREADY_ENROLLED))
    if not user.check_password(password):
        raise SecondFactorError(_(WRONG_PASSWORD))
    secret = pyotp.random_base32()
    if row is None:
        row = SecondFactor(user_id=user.id, secret=encrypt_secret(secret))
        db.session.add(row)
    else:
        row.secret = encrypt_secret(secret)
        row.created_at = utcnow()
        row.last_time_step = None
    db.session.commit()
    return _enrolment(user, secret)


def pending_enrolment(user: User) -> Enrolment | None:
    """Return the set-up ``user`` began and has not confirmed, or None."""
    row = _row(user)
    if row is None or row.enrolled_at is not None:
        return None
    try:
        return _enrolment(user, decrypt_secret(row.secret))
    except SecretUnreadable:
        return None


def drop_pending_enrolment(user: User) -> None:
    """Forget a set-up that was never confirmed; a second factor in force stays."""
    db.session.execute(
        delete(SecondFactor).where(
            SecondFactor.user_id == user.id, SecondFactor.enrolled_at.is_(None)
        )
    )
    db.session.commit()


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Put the pending secret in force with one valid code; return new recovery codes.

    The codes are returned once, to be shown once: only their hashes are kept.
    """
    row = _row(user)
    if row is None or row.enrolled_at is not None:
        raise SecondFactorError(_(ALREADY_ENROLLED if row is not None else NO_ENROLMENT))
    step = _matching_step(decrypt_secret(row.secret), code, after=None)
    if step is None:
        raise SecondFactorError(_(WRONG_CODE))
    row.enrolled_at = utcnow()
    row.last_time_step = step
    codes = _replace_recovery_codes(user)
    # Sessions begun without the factor end; the caller starts one that passed it.
    sessions.end_all(user)
    audit.record(
        AUDIT.ACTION_MFA_ENROLLED,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Set up a second factor for {user.email}",
    )
    db.session.commit()
    return codes


# -- checking codes -------------------------------------------------------------


def _clean_totp(code: str) -> str | None:
    digits = "".join(code.split())
    return digits if len(digits) == CODE_DIGITS and digits.isdigit() else None


def _steps(at: float) -> Iterator[int]:
    current = int(at // TIME_STEP_SECONDS)
    return iter(range(current - VALID_WINDOW, current + VALID_WINDOW + 1))


def _matching_step(secret: str, code: str, *, after: int | None) -> int | None:
    """Return the time step whose code ``code`` is (within the window, later than ``after``)."""
    digits = _clean_totp(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, digits=CODE_DIGITS, interval=TIME_STEP_SECONDS)
    found = None
    # Every step of the window is compared, so the time taken does not say which matched.
    for step in _steps(now()):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected, digits) and (after is None or step > after):
            found = step
    return found


def _claim_step(user: User, step: int) -> bool:
    """Record ``step`` as the last one used, unless a request got there first."""
    claimed = db.session.execute(
        update(SecondFactor)
        .where(
            SecondFactor.user_id == user.id,
            SecondFactor.enrolled_at.is_not(None),
            or_(SecondFactor.last_time_step.is_(None), SecondFactor.last_time_step < step),
        )
        .values(last_time_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(claimed, "rowcount", 0))


def _check_totp(user: User, row: SecondFactor, code: str) -> bool:
    step = _matching_step(decrypt_secret(row.secret), code, after=row.last_time_step)
    return step is not None and _claim_step(user, step)


def check_code(user: User, code: str) -> bool:
    """Tell whether ``code`` is a good TOTP or recovery code of ``user``, and spend it.

    Commits: a spent code stays spent whatever the request does next.
    Raises ``SecretUnreadable`` only for a TOTP code when the secret cannot
    be read; a recovery code still works then.
    """
    row = _row(user)
    if row is None or row.enrolled_at is None or len(code) > CODE_MAX_LENGTH:
        return False
    if _clean_totp(code) is not None:
        accepted = _check_totp(user, row, code)
    else:
        accepted = _use_recovery_code(user, code)
    db.session.commit()
    db.session.expire(row)
    return accepted


def verify_sign_in(user: User, code: str) -> bool:
    """Check the code of a sign-in waiting for its second factor; a wrong one is recorded."""
    accepted = False
    try:
        accepted = check_code(user, code)
    finally:
        if not accepted:
            events.sign_in_failed(user, reason=WRONG_CODE_REASON)
            db.session.commit()
    return accepted


def require_code(user: User, code: str) -> None:
    """Raise ``SecondFactorError`` unless ``code`` is good (spending it)."""
    if not is_enrolled(user):
        raise SecondFactorError(_(NOT_ENROLLED))
    if not check_code(user, code):
        raise SecondFactorError(_(WRONG_CODE))


# -- recovery codes -------------------------------------------------------------


def new_recovery_code() -> str:
    """Return a random recovery code, as shown: ``xxxx-xxxx-xxxx``."""
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(raw[i : i + RECOVERY_GROUP] for i in range(0, len(raw), RECOVERY_GROUP))


def normalise_recovery_code(code: str) -> str | None:
    """Return the code's characters as stored, or None when it cannot be a recovery code."""
    cleaned = "".join(code.lower().replace("-", "").split()).translate(_LOOKALIKES)
    if len(cleaned) != RECOVERY_CODE_LENGTH or any(c not in RECOVERY_ALPHABET for c in cleaned):
        return None
    return cleaned


def hash_recovery_code(user_id: int, code: str) -> str:
    """Return the SHA-256 (hex) the database keeps of one of ``user_id``'s codes."""
    return hashlib.sha256(f"{user_id}:{code}".encode()).hexdigest()


def _replace_recovery_codes(user: User) -> list[str]:
    """Delete the account's recovery codes and add a new set, in this transaction."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        stored = normalise_recovery_code(code)
        assert stored is not None
        db.session.add(RecoveryCode(user_id=user.id, code_hash=hash_recovery_code(user.id, stored)))
    return codes


def _use_recovery_code(user: User, code: str) -> bool:
    stored = normalise_recovery_code(code)
    if stored is None:
        return False
    spent = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == hash_recovery_code(user.id, stored),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(spent, "rowcount", 0))


def regenerate_recovery_codes(user: User, code: str) -> list[str]:
    """Replace the account's recovery codes after one good code; return the new ones."""
    require_code(user, code)
    codes = _replace_recovery_codes(user)
    db.session.commit()
    return codes


# -- turning it off -------------------------------------------------------------


def forget(user: User) -> None:
    """Delete the account's second factor and recovery codes (part of the caller's transaction)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(delete(SecondFactor).where(SecondFactor.user_id == user.id))


def disable(user: User, password: str, code: str) -> None:
    """Turn the account's second factor off; it takes the password and a good code."""
    if not is_enrolled(user):
        raise SecondFactorError(_(NOT_ENROLLED))
    if not user.check_password(password):
        raise SecondFactorError(_(WRONG_PASSWORD))
    require_code(user, code)
    forget(user)
    # As after a password change: this browser stays signed in, the others end.
    sessions.end_all(user, keep=sessions.current_id())
    audit.record(
        AUDIT.ACTION_MFA_DISABLED,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Turned off the second factor of {user.email}",
    )
    db.session.commit()


def reset(user: User, *, actor: User | None) -> None:
    """Remove another account's second factor (an admin, or ``manage.py``); its sessions end.

    The account signs in with its password alone afterwards, and enrols again.
    """
    problem = security.refusal(actor, security.RESET_SECOND_FACTOR, user)
    if problem:
        raise SecondFactorError(problem)
    if not is_enrolled(user):
        raise SecondFactorError(_(NOT_ENROLLED))
    forget(user)
    ended = sessions.end_all(user)
    audit.record(
        AUDIT.ACTION_MFA_RESET,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Reset the second factor of {user.email}; {ended} session(s) ended",
    )
    db.session.commit()
