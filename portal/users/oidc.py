"""Sign-in with OpenID Connect providers: the flow, the identities and the linking rule.

An identity at a provider is its issuer and subject (``iss`` + ``sub``),
never its email address. The linking rule, the only ways an identity comes
to open an account here:

(a) the signed-in person of a confirmed (ACTIVE) account links it from
    their account page, after typing their password (``confirm_password``,
    then the provider round trip); or
(b) at sign-in, the provider asserts ``email_verified: true`` (the JSON
    value true, nothing else) for an address that equals, in any case, the
    address of a confirmed (ACTIVE) account: the identity is linked to that
    account and signs in.

An unverified provider email never links and never signs in to an existing
account, and neither does a verified one whose account is NEW (someone typed
that address with a password of their own and never confirmed it). When a
verified address matches no account, a new ACTIVE account is made for it
(``OIDC_REGISTRATION``, on by default); an unverified one is refused.

An account made that way has no usable password: the person signs in with
the provider, or sets a password through "Forgot your password?". Unlinking
the last identity of an account without a usable password is refused, so
nobody locks themselves out. INACTIVE accounts never sign in this way.
"""

from __future__ import annotations

import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import FlaskIntegration
from authlib.integrations.flask_client import FlaskOAuth2App
from flask import current_app
from flask import request
from flask import session
from flask_babel import gettext as _
from joserfc.errors import JoseError
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from config.settings import parse_oidc_providers
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import utcnow
from portal.extensions import db
from portal.i18n import N_
from portal.users import constants as USER
from portal.users import services
from portal.users.models import ProviderIdentity
from portal.users.models import User
from portal.users.models import hash_password

# Where the pending flow waits in the session between the redirect and the callback.
FLOW_KEY = "oidc_flow"
# Where a password confirmed for linking waits until the provider round trip starts.
GRANT_KEY = "oidc_link_grant"
# Seconds a started flow may take to come back, and a confirmed password stays good.
FLOW_MAX_AGE = 600
GRANT_MAX_AGE = 300
# Seconds to wait for the provider's discovery, token and userinfo endpoints.
HTTP_TIMEOUT = 10

PURPOSE_SIGN_IN = "sign-in"
PURPOSE_LINK = "link"

# Marks a salt no real hash has (Werkzeug's salts are letters and digits).
UNUSABLE_SALT_MARK = "!"
PROVIDER_ERROR_MAX_LENGTH = 40

STATE_MESSAGE = N_(
    "The sign-in with {label} could not be completed: it expired or was not started "
    "in this browser. Nothing was changed; please try again."
)
DENIED_MESSAGE = N_(
    "{label} did not sign you in (it was cancelled or refused). Nothing was changed."
)
PROVIDER_ERROR_MESSAGE = N_("{label} could not sign you in ({error}). Nothing was changed.")
TOKEN_MESSAGE = N_(
    "{label} did not confirm who you are, so you are not signed in. Nothing was changed; "
    "please try again."
)
UNREACHABLE_MESSAGE = N_(
    "{label} cannot be reached right now. Nothing was changed; try again later."
)
UNVERIFIED_MESSAGE = N_(
    "{label} has not verified the email address of that account, so it cannot sign you in "
    "here. Verify the address at {label}, or sign in with your password and link {label} "
    "from your account page."
)
NO_EMAIL_MESSAGE = N_(
    "{label} did not share an email address, so it cannot sign you in here. Sign in with your "
    "password and link {label} from your account page."
)
UNCONFIRMED_MESSAGE = N_(
    "An account with this email address exists but has not confirmed it yet. Sign in with "
    "its password and confirm the address; then {label} can be linked from your account page."
)
NO_REGISTRATION_MESSAGE = N_(
    "No account here uses the email address {label} gave. Create an account first, then "
    "link {label} from your account page."
)
TAKEN_BY_OTHER_MESSAGE = N_("That {label} account is already linked to another account here.")
ALREADY_LINKED_MESSAGE = N_("Your account is already linked to {label}. Unlink it first.")
UNCONFIRMED_LINK_MESSAGE = N_(
    "Confirm your email address first (follow the link we sent to it); then {label} can be "
    "linked to your account."
)
WRONG_PASSWORD_MESSAGE = N_("The password is not correct.")
NO_PASSWORD_MESSAGE = N_(
    "Your account has no password yet. Set one with “Forgot your password?” on the sign-in "
    "page, then link {label}."
)
LAST_WAY_MESSAGE = N_(
    "{label} is the only way to sign in to your account: set a password (“Forgot your "
    "password?” on the sign-in page) or link another provider before unlinking it."
)
NOT_LINKED_MESSAGE = N_("Your account is not linked to {label}.")
UNKNOWN_PROVIDER_MESSAGE = N_("There is no such sign-in provider.")
GRANT_MESSAGE = N_("Please confirm your password to link {label}.")


class ProviderError(services.AccountError):
    """A provider sign-in or link that is refused; the message is safe to show."""


@dataclass(frozen=True)
class Provider:
    """One configured OpenID Connect provider."""

    name: str
    label: str
    issuer: str | None
    server_metadata_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Assertion:
    """What a provider vouched for in one completed flow (the ID token, and userinfo)."""

    provider: Provider
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True)
class Flow:
    """A flow this browser started: what it was for, who started it, where it ends."""

    provider: str
    state: str
    purpose: str
    user_id: int | None
    next_url: str | None
    started_at: float


@dataclass(frozen=True)
class SignIn:
    """The account a provider sign-in opens, and whether it was just made or linked."""

    user: User
    created: bool
    linked: bool


# -- providers and their clients --------------------------------------------------


def configured() -> list[Provider]:
    """Return the providers ``OIDC_PROVIDERS`` lists, in order."""
    return [
        Provider(
            name=entry["name"],
            label=entry["label"],
            issuer=entry["issuer"],
            server_metadata_url=entry["server_metadata_url"],
            client_id=entry["client_id"],
            client_secret=entry["client_secret"],
            scopes=tuple(entry["scopes"]),
        )
        for entry in parse_oidc_providers(current_app.config.get("OIDC_PROVIDERS"))
    ]


def get_provider(name: str) -> Provider:
    """Return the provider called ``name``; raise ``ProviderError`` if none is."""
    for provider in configured():
        if provider.name == name:
            return provider
    raise ProviderError(_(UNKNOWN_PROVIDER_MESSAGE))


def _client(provider: Provider) -> FlaskOAuth2App:
    # One client per app and settings, so the discovery document and the keys
    # are fetched once, and a changed setting gets a fresh client.
    clients: dict[Provider, FlaskOAuth2App] = current_app.extensions.setdefault(
        "portal.oidc_clients", {}
    )
    client = clients.get(provider)
    if client is None:
        client = FlaskOAuth2App(
            FlaskIntegration(provider.name),
            name=provider.name,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=provider.server_metadata_url,
            client_kwargs={
                "scope": " ".join(provider.scopes),
                "code_challenge_method": "S256",
                "default_timeout": HTTP_TIMEOUT,
            },
        )
        clients[provider] = client
    return client


def _metadata(provider: Provider) -> dict[str, Any]:
    """Return the provider's discovery document, checked against the configured issuer."""
    client = _client(provider)
    try:
        metadata: dict[str, Any] = client.load_server_metadata()
    except (requests.RequestException, ValueError):
        raise ProviderError(_(UNREACHABLE_MESSAGE).format(label=provider.label)) from None
    issuer = metadata.get("issuer")
    if not issuer or (provider.issuer is not None and issuer != provider.issuer):
        # A discovery document for another issuer: never trust its tokens.
        current_app.logger.error(
            "OIDC provider %s: discovery names issuer %r, expected %r",
            provider.name,
            issuer,
            provider.issuer,
        )
        raise ProviderError(_(UNREACHABLE_MESSAGE).format(label=provider.label))
    return metadata


# -- the flow: to the provider and back ---------------------------------------------


def start(
    provider: Provider,
    redirect_uri: str,
    *,
    purpose: str,
    user: User | None = None,
    next_url: str | None = None,
) -> str:
    """Begin a flow for this browser and return the provider's authorization URL.

    Authlib keeps the state, nonce and PKCE verifier in the session; the flow
    notes what it is for, so the callback only accepts the one this browser began.
    """
    _metadata(provider)
    client = _client(provider)
    try:
        authorization = client.create_authorization_url(redirect_uri)
    except (requests.RequestException, AuthlibBaseError, ValueError, RuntimeError):
        raise ProviderError(_(UNREACHABLE_MESSAGE).format(label=provider.label)) from None
    client.save_authorize_data(redirect_uri=redirect_uri, **authorization)
    session[FLOW_KEY] = {
        "provider": provider.name,
        "state": authorization["state"],
        "purpose": purpose,
        "user_id": user.id if user is not None else None,
        "next": next_url,
        "started_at": time.time(),
    }
    return str(authorization["url"])


def take_flow(provider: Provider) -> Flow:
    """Remove this browser's pending flow and return it if the callback belongs to it.

    Raise ``ProviderError`` for a callback with another state (forged, replayed,
    or from a flow another browser started) and for a flow older than ``FLOW_MAX_AGE``.
    """
    data = session.pop(FLOW_KEY, None)
    state = request.args.get("state") or ""
    message = _(STATE_MESSAGE).format(label=provider.label)
    if not isinstance(data, dict) or data.get("provider") != provider.name:
        raise ProviderError(message)
    try:
        flow = Flow(
            provider=str(data["provider"]),
            state=str(data["state"]),
            purpose=str(data["purpose"]),
            user_id=data.get("user_id"),
            next_url=data.get("next"),
            started_at=float(data["started_at"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ProviderError(message) from None
    expired = time.time() - flow.started_at > FLOW_MAX_AGE
    if expired or not secrets.compare_digest(state.encode(), flow.state.encode()):
        abandon(provider, flow)
        raise ProviderError(message)
    return flow


def _provider_error(provider: Provider, flow: Flow) -> None:
    """Raise the provider's own refusal (``?error=...``), if it sent one."""
    error = request.args.get("error")
    if error is None:
        return
    abandon(provider, flow)
    if error == "access_denied":
        raise ProviderError(_(DENIED_MESSAGE).format(label=provider.label))
    code = "".join(char for char in error if char.isascii() and (char.isalnum() or char == "_"))
    raise ProviderError(
        _(PROVIDER_ERROR_MESSAGE).format(
            label=provider.label, error=code[:PROVIDER_ERROR_MAX_LENGTH] or "error"
        )
    )


def abandon(provider: Provider, flow: Flow) -> None:
    """Forget what Authlib kept for ``flow`` (its nonce and verifier) without finishing it."""
    _client(provider).framework.clear_state_data(session, flow.state)


def finish(provider: Provider, flow: Flow) -> Assertion:
    """Complete ``flow`` (from ``take_flow``) with what the provider sent back.

    Raise ``ProviderError`` (and change nothing) for a refusal by the
    provider, an answer from another issuer, a failed code exchange, or an ID
    token that is not signed by the provider for this client and this flow's nonce.
    """
    _provider_error(provider, flow)
    metadata = _metadata(provider)
    issuer = str(metadata["issuer"])
    returned_issuer = request.args.get("iss")
    if returned_issuer is not None and returned_issuer != issuer:
        # RFC 9207: a response from another issuer (a mix-up) is refused.
        abandon(provider, flow)
        raise ProviderError(_(TOKEN_MESSAGE).format(label=provider.label))
    client = _client(provider)
    try:
        token = client.authorize_access_token()
    except requests.RequestException:
        raise ProviderError(_(UNREACHABLE_MESSAGE).format(label=provider.label)) from None
    except (AuthlibBaseError, JoseError, ValueError, KeyError):
        raise ProviderError(_(TOKEN_MESSAGE).format(label=provider.label)) from None
    claims = token.get("userinfo")
    if not claims or not claims.get("sub") or claims.get("iss") != issuer:
        raise ProviderError(_(TOKEN_MESSAGE).format(label=provider.label))
    claims = dict(claims)
    if "email" not in claims and metadata.get("userinfo_endpoint"):
        claims.update(_userinfo(provider, client, token, str(claims["sub"])))
    return _assertion(provider, issuer, claims)


def _userinfo(
    provider: Provider, client: FlaskOAuth2App, token: dict[str, Any], subject: str
) -> dict[str, Any]:
    """Fetch the claims the ID token left to the userinfo endpoint (for the same subject)."""
    try:
        info = dict(client.userinfo(token=token))
    except requests.RequestException:
        raise ProviderError(_(UNREACHABLE_MESSAGE).format(label=provider.label)) from None
    except (AuthlibBaseError, ValueError):
        raise ProviderError(_(TOKEN_MESSAGE).format(label=provider.label)) from None
    if info.get("sub") != subject:
        # OIDC Core 5.3.2: userinfo for another subject must not be used.
        raise ProviderError(_(TOKEN_MESSAGE).format(label=provider.label))
    return {key: info[key] for key in ("email", "email_verified", "name") if key in info}


def _assertion(provider: Provider, issuer: str, claims: dict[str, Any]) -> Assertion:
    email = claims.get("email")
    name = claims.get("name")
    return Assertion(
        provider=provider,
        issuer=issuer,
        subject=str(claims["sub"]),
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        # Only the JSON value true counts: "true", 1 or a missing claim do not.
        email_verified=claims.get("email_verified") is True,
        name=name if isinstance(name, str) else None,
    )


# -- passwords and the link grant -------------------------------------------------


def unusable_password_hash() -> str:
    """Return a stored hash no password matches, checked as slowly as a real one.

    It is a real hash of a random secret whose salt is marked, so a sign-in
    attempt against it costs the same as against any account.
    """
    method, salt, digest = hash_password(secrets.token_urlsafe(32)).split("$", 2)
    return f"{method}${UNUSABLE_SALT_MARK}{salt}${digest}"


def has_usable_password(user: User) -> bool:
    """Tell whether ``user`` can sign in with a password."""
    parts = (user.password_hash or "").split("$", 2)
    return len(parts) == 3 and not parts[1].startswith(UNUSABLE_SALT_MARK)


def _refuse_unconfirmed(user: User, label: str) -> None:
    """Refuse linking to an account whose address was never confirmed.

    Whoever registered it may not own the address: an identity they linked
    would outlive the owner taking the account back with a reset link.
    """
    if user.status != USER.ACTIVE:
        raise ProviderError(_(UNCONFIRMED_LINK_MESSAGE).format(label=label))


def confirm_password(user: User, provider: Provider, password: str) -> None:
    """Check the password before linking ``provider`` and grant one flow for it.

    Raise ``ProviderError`` when the account's address is not confirmed, it
    has no password, the password is wrong, or the account already has an
    identity at this provider.
    """
    _refuse_unconfirmed(user, provider.label)
    if not has_usable_password(user):
        raise ProviderError(_(NO_PASSWORD_MESSAGE).format(label=provider.label))
    if not user.check_password(password):
        raise ProviderError(_(WRONG_PASSWORD_MESSAGE))
    if identity_at(user, provider.name) is not None:
        raise ProviderError(_(ALREADY_LINKED_MESSAGE).format(label=provider.label))
    session[GRANT_KEY] = {"provider": provider.name, "user_id": user.id, "at": time.time()}


def has_grant(user: User, provider: Provider) -> bool:
    """Tell whether this browser confirmed ``user``'s password for ``provider`` just now."""
    grant = session.get(GRANT_KEY)
    return (
        isinstance(grant, dict)
        and grant.get("provider") == provider.name
        and grant.get("user_id") == user.id
        and time.time() - float(grant.get("at") or 0) <= GRANT_MAX_AGE
    )


def take_grant(user: User, provider: Provider) -> None:
    """Use up the password confirmation for ``provider``; raise ``ProviderError`` if none."""
    granted = has_grant(user, provider)
    session.pop(GRANT_KEY, None)
    if not granted:
        raise ProviderError(_(GRANT_MESSAGE).format(label=provider.label))


# -- identities ---------------------------------------------------------------------


def identities_of(user: User) -> list[ProviderIdentity]:
    """Return the identities linked to ``user``, oldest first."""
    return list(
        db.session.execute(
            select(ProviderIdentity)
            .where(ProviderIdentity.user_id == user.id)
            .order_by(ProviderIdentity.created_at, ProviderIdentity.id)
        ).scalars()
    )


def identity_at(user: User, provider_name: str) -> ProviderIdentity | None:
    """Return ``user``'s identity at the provider called ``provider_name``, if linked."""
    return db.session.execute(
        select(ProviderIdentity).where(
            ProviderIdentity.user_id == user.id, ProviderIdentity.provider == provider_name
        )
    ).scalar_one_or_none()


def find_identity(issuer: str, subject: str) -> ProviderIdentity | None:
    """Return the identity for the provider's ``issuer`` and ``subject``, if linked."""
    return db.session.execute(
        select(ProviderIdentity).where(
            ProviderIdentity.issuer == issuer, ProviderIdentity.subject == subject
        )
    ).scalar_one_or_none()


def _add_identity(user: User, assertion: Assertion, *, how: str) -> ProviderIdentity:
    """Link the asserted identity to ``user`` and record it, in the current transaction."""
    now = utcnow()
    identity = ProviderIdentity(
        user_id=user.id,
        provider=assertion.provider.name,
        issuer=assertion.issuer,
        subject=assertion.subject,
        email=assertion.email[: USER.EMAIL_MAX_LENGTH] if assertion.email else None,
        created_at=now,
        last_used_at=now,
    )
    db.session.add(identity)
    audit.record(
        AUDIT.ACTION_PROVIDER_LINKED,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Linked {assertion.provider.label} to {user.email} ({how})",
        changes={
            "provider": [None, assertion.provider.name],
            "issuer": [None, assertion.issuer],
            "subject": [None, assertion.subject],
        },
    )
    return identity


def _commit_link() -> None:
    # The unique (issuer, subject) and (account, provider) constraints decide a race.
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        message = _("That identity was just linked elsewhere. Please try again.")
        raise ProviderError(message) from None


def link(user: User, assertion: Assertion) -> ProviderIdentity:
    """Link the asserted identity to signed-in ``user`` (rule (a): password confirmed).

    Refused, changing nothing, when ``user`` has not confirmed its address,
    the identity belongs to another account or ``user`` already has one at
    this provider.
    """
    label = assertion.provider.label
    _refuse_unconfirmed(user, label)
    existing = find_identity(assertion.issuer, assertion.subject)
    if existing is not None:
        if existing.user_id == user.id:
            raise ProviderError(_(ALREADY_LINKED_MESSAGE).format(label=label))
        raise ProviderError(_(TAKEN_BY_OTHER_MESSAGE).format(label=label))
    if identity_at(user, assertion.provider.name) is not None:
        raise ProviderError(_(ALREADY_LINKED_MESSAGE).format(label=label))
    identity = _add_identity(user, assertion, how="from the account page, password confirmed")
    _commit_link()
    return identity


def unlink(user: User, provider: Provider) -> None:
    """Remove ``user``'s identity at ``provider``, unless it is their last way to sign in."""
    identity = identity_at(user, provider.name)
    if identity is None:
        raise ProviderError(_(NOT_LINKED_MESSAGE).format(label=provider.label))
    if not has_usable_password(user) and len(identities_of(user)) <= 1:
        raise ProviderError(_(LAST_WAY_MESSAGE).format(label=provider.label))
    audit.record(
        AUDIT.ACTION_PROVIDER_UNLINKED,
        AUDIT.OBJECT_USER,
        user.id,
        summary=f"Unlinked {provider.label} from {user.email}",
        changes={
            "provider": [identity.provider, None],
            "issuer": [identity.issuer, None],
            "subject": [identity.subject, None],
        },
    )
    db.session.delete(identity)
    db.session.commit()


def forget_identities(user: User) -> None:
    """Remove every identity of ``user`` (the account is being deleted)."""
    db.session.execute(delete(ProviderIdentity).where(ProviderIdentity.user_id == user.id))


# -- signing in ---------------------------------------------------------------------


def _refuse_disabled(user: User) -> None:
    if user.status == USER.INACTIVE:
        raise ProviderError(_(services.DISABLED_MESSAGE))


def sign_in(assertion: Assertion) -> SignIn:
    """Return the account the asserted identity opens, linking or creating it by the rule.

    A linked identity opens its account. Otherwise rule (b): a verified email
    equal to an ACTIVE account's links to it; a verified email matching no
    account makes a new ACTIVE account (when ``OIDC_REGISTRATION`` is on).
    Everything else is refused with ``ProviderError`` and changes nothing.
    """
    label = assertion.provider.label
    identity = find_identity(assertion.issuer, assertion.subject)
    if identity is not None:
        user = identity.user
        _refuse_disabled(user)
        identity.last_used_at = utcnow()
        if assertion.email:
            identity.email = assertion.email[: USER.EMAIL_MAX_LENGTH]
        db.session.commit()
        return SignIn(user=user, created=False, linked=False)
    if assertion.email is None:
        raise ProviderError(_(NO_EMAIL_MESSAGE).format(label=label))
    if not assertion.email_verified:
        raise ProviderError(_(UNVERIFIED_MESSAGE).format(label=label))
    owner = services.get_by_email(assertion.email)
    if owner is not None:
        _refuse_disabled(owner)
        if owner.status != USER.ACTIVE:
            raise ProviderError(_(UNCONFIRMED_MESSAGE).format(label=label))
        if identity_at(owner, assertion.provider.name) is not None:
            # The account holds another identity at this provider: never a second one.
            raise ProviderError(_(ALREADY_LINKED_MESSAGE).format(label=label))
        _add_identity(owner, assertion, how="at sign-in, by the verified email address")
        _commit_link()
        return SignIn(user=owner, created=False, linked=True)
    if not current_app.config.get("OIDC_REGISTRATION", True):
        raise ProviderError(_(NO_REGISTRATION_MESSAGE).format(label=label))
    user = _register(assertion)
    return SignIn(user=user, created=True, linked=True)


def _display_name(assertion: Assertion, address: str) -> str:
    """Return a name for a new account: the provider's, else the address's local part."""
    raw = assertion.name or address.split("@", 1)[0]
    printable = "".join(char for char in raw if unicodedata.category(char)[0] != "C")
    name = " ".join(printable.split())[: USER.NAME_MAX_LENGTH].strip()
    return name or "Member"


def _register(assertion: Assertion) -> User:
    """Make an ACTIVE account for a verified address no account uses, and link the identity."""
    address = services.clean_email(assertion.email or "")
    name = _display_name(assertion, address)
    now = utcnow()
    user = User(
        name=name,
        email=address,
        handle=services.new_handle(name),
        role=USER.USER,
        status=USER.ACTIVE,
        created_at=now,
        confirmed_at=now,
        password_hash=unusable_password_hash(),
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ProviderError(
            _("An account with this email address was just created. Please sign in again.")
        ) from None
    _add_identity(user, assertion, how=f"signed up with {assertion.provider.label}")
    _commit_link()
    return user
