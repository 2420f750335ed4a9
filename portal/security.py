"""Who may do what: roles become Flask-Principal needs, and one gate answers every question.

``can(actor, action, obj=None)`` answers each row of the access table and the
invariants no screen may break; ``refusal`` says why not, in the words the
person sees. Services, admin screens, templates (the ``can`` global) and
commands all ask here; no other code compares roles.

``actor`` is the account asking, an anonymous visitor, or None for an
operator at ``manage.py``, who may do anything the invariants allow. ``obj``
is a model instance, or one of the subject names below when the question is
about a kind of thing ("may this person add a post?").

Actions use the vocabulary of Django admin's ``has_*_permission``: view, add,
change, delete, plus export, moderate and the account-specific
change_role, change_status, end_sessions and reset_second_factor.

Where ``MFA_REQUIRED_ROLES`` names an account's role, its staff and admin
powers hold only on a session that passed a second factor: until then the
gate answers ``SECOND_FACTOR_REQUIRED`` for anything only those powers allow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from flask import Flask
from flask import current_app
from flask import g
from flask import has_request_context
from flask_login import current_user
from flask_principal import AnonymousIdentity
from flask_principal import Identity
from flask_principal import Need
from flask_principal import RoleNeed
from flask_principal import UserNeed
from flask_principal import identity_loaded
from sqlalchemy import or_

from portal.extensions import principal
from portal.users import constants as USER

admin_need = RoleNeed("admin")
staff_need = RoleNeed("staff")
# Writing public content: an account that confirmed its email, or any staff.
writer_need = RoleNeed("writer")
# Publishing, hiding, editing and deleting anyone's posts and comments.
moderator_need = RoleNeed("moderator")
# Reporting a post or a comment to staff: an account that confirmed its email.
reporter_need = RoleNeed("reporter")

# -- actions -------------------------------------------------------------------

VIEW = "view"
ADD = "add"
CHANGE = "change"
DELETE = "delete"
EXPORT = "export"
MODERATE = "moderate"  # publish, hide, approve, reject, mark as spam
CHANGE_ROLE = "change_role"
CHANGE_STATUS = "change_status"
END_SESSIONS = "end_sessions"  # sign an account out of one browser or all of them
RESET_SECOND_FACTOR = "reset_second_factor"  # remove another account's authenticator
CLOSE = "close"  # delete your own account ("Delete my account")
REPORT = "report"  # tell staff a post or a comment breaks the rules
RESOLVE = "resolve"  # decide the reports on a post or a comment
ACTIONS = (
    VIEW,
    ADD,
    CHANGE,
    DELETE,
    EXPORT,
    MODERATE,
    CHANGE_ROLE,
    CHANGE_STATUS,
    END_SESSIONS,
    RESET_SECOND_FACTOR,
    CLOSE,
    REPORT,
    RESOLVE,
)

# -- subjects ------------------------------------------------------------------

ADMIN_SITE = "admin"  # /admin and every screen under it
ACCOUNT = "account"
POST = "post"
COMMENT = "comment"
EMAIL = "email"  # the outbound queue, compose and purge
AUDIT = "audit"
REPORTS = "reports"  # the reports readers filed, and the queue staff resolve them in
TAG = "tag"  # the words posts are tagged with
SUBJECTS = (ADMIN_SITE, ACCOUNT, POST, COMMENT, EMAIL, AUDIT, REPORTS, TAG)

# A model instance's subject, by class name: the gate needs no model imports.
_SUBJECT_OF_CLASS = {
    "User": ACCOUNT,
    "Post": POST,
    "Comment": COMMENT,
    "Email": EMAIL,
    "AuditEvent": AUDIT,
    "Report": REPORTS,
    "Tag": TAG,
}

NOT_ALLOWED = "You are not allowed to do that."
LAST_ADMIN = "This is the last active admin: make another account an active admin first."
SECOND_FACTOR_REQUIRED = (
    "Your role needs a second factor: set up an authenticator app for your account "
    "(and sign in with it) before using the back office."
)
# The users layer installs, per app, the answer to "has this request's session
# passed the second factor its account has?" under this key; the gate only asks.
SECOND_FACTOR_CHECK = "portal.second_factor_check"
# What a role that needs a second factor holds only after passing one.
_ELEVATED = frozenset({admin_need, staff_need, moderator_need})


# -- needs ---------------------------------------------------------------------


def needs_for(user: Any) -> set[Need]:
    """Return the needs an account holds: its id, its role, and what they imply."""
    needs: set[Need] = {UserNeed(user.id), RoleNeed(USER.ROLE[user.role])}
    if user.role == USER.ADMIN:
        needs |= {admin_need, staff_need, moderator_need}
    elif user.role == USER.STAFF:
        needs |= {staff_need, moderator_need}
    if user.status == USER.ACTIVE or user.role in (USER.ADMIN, USER.STAFF):
        needs.add(writer_need)
    if user.status == USER.ACTIVE:
        needs.add(reporter_need)
    return needs


def _needs_of(actor: Any) -> set[Need]:
    """The needs of the account asking: this request's identity, if it is theirs."""
    if not getattr(actor, "is_authenticated", False):
        return set()
    identity = g.get("identity") if has_request_context() else None
    if identity is not None and identity.id == actor.id and identity.provides:
        return set(identity.provides)
    return needs_for(actor)


def _from_identity(actor: Any) -> bool:
    """Tell whether ``actor`` is this request's signed-in account (its needs are the identity's)."""
    if not has_request_context() or not getattr(actor, "is_authenticated", False):
        return False
    identity = g.get("identity")
    return bool(identity is not None and identity.id == actor.id and identity.provides)


def second_factor_required(user: Any) -> bool:
    """Tell whether the account's role must pass a second factor (``MFA_REQUIRED_ROLES``)."""
    return USER.ROLE.get(user.role) in (current_app.config.get("MFA_REQUIRED_ROLES") or ())


def second_factor_missing(actor: Any) -> bool:
    """Tell whether ``actor``, signed in on this request, still owes the second factor.

    Only this request's own account is asked about: nothing is known of
    another account's sessions. With no check installed, it is owed.
    """
    if not _from_identity(actor) or not second_factor_required(actor):
        return False
    check = current_app.extensions.get(SECOND_FACTOR_CHECK)
    return check is None or not check(actor)


def _same(actor: Any, other: Any) -> bool:
    try:
        return bool(other.is_authenticated) and actor.id == other.id
    except (AttributeError, RuntimeError):
        return False


# -- the gate ------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One question to the gate, with what the rules need to answer it."""

    actor: Any
    action: str
    obj: Any
    needs: frozenset[Need]
    # An operator at manage.py: every rule passes; the invariants still hold.
    system: bool
    role: int | None = None
    status: int | None = None

    def holds(self, need: Need) -> bool:
        return self.system or need in self.needs

    @property
    def about_one(self) -> bool:
        """True when ``obj`` is a row, not the name of a kind of thing."""
        return self.obj is not None and not isinstance(self.obj, str)

    def owns(self) -> bool:
        """True when the actor wrote ``obj`` (a post or a comment)."""
        signed_in = bool(getattr(self.actor, "is_authenticated", False))
        return self.about_one and signed_in and self.obj.author_id == self.actor.id

    def on_yourself(self) -> bool:
        return self.about_one and not self.system and _same(self.actor, self.obj)


def can(actor: Any, action: str, obj: Any = None, **change: Any) -> bool:
    """Tell whether ``actor`` may do ``action`` to ``obj``."""
    return refusal(actor, action, obj, **change) is None


def refusal(
    actor: Any, action: str, obj: Any = None, *, role: int | None = None, status: int | None = None
) -> str | None:
    """Say why ``actor`` may not do ``action`` to ``obj``; None when it may.

    ``role`` and ``status`` are the values an account change would set, so
    that the last active admin is refused a demotion but not a rename.
    """
    subject = subject_of(obj)
    rule = _RULES.get(subject)
    if rule is None or action not in ACTIONS:
        raise ValueError(f"The gate knows no rule for {action!r} on {subject!r}.")
    system = actor is None
    needs = frozenset() if system else frozenset(_needs_of(actor))
    full = Question(actor, action, obj, needs, system, role, status)
    if system or not needs & _ELEVATED or not second_factor_missing(actor):
        return rule(full)
    # Asked as if the role's powers were not held; refused for that alone, the
    # answer says what would lift it.
    answer = rule(replace(full, needs=needs - _ELEVATED))
    if answer is not None and rule(full) is None:
        return SECOND_FACTOR_REQUIRED
    return answer


def subject_of(obj: Any) -> str:
    """Name what ``obj`` is: a subject name passes through, an instance by its class."""
    if isinstance(obj, str):
        return obj
    if obj is None:
        return ADMIN_SITE
    return _SUBJECT_OF_CLASS.get(type(obj).__name__, type(obj).__name__)


def _unless(allowed: bool, message: str = NOT_ALLOWED) -> str | None:
    return None if allowed else message


def _admin_site(q: Question) -> str | None:
    return _unless(q.action == VIEW and q.holds(staff_need))


def _account(q: Question) -> str | None:
    is_admin = q.holds(admin_need)
    if q.action in (VIEW, EXPORT):
        return _unless(q.holds(staff_need))
    if q.action == ADD:
        return _unless(is_admin, "Only an admin can create accounts.")
    if q.action == CHANGE_ROLE:
        if q.on_yourself():
            return "You cannot change your own role."
        if not is_admin:
            return "Only an admin can change roles."
        return _last_admin(q, demoted=q.role is not None and q.role != USER.ADMIN)
    if q.action == CHANGE_STATUS:
        if q.on_yourself():
            return "You cannot change your own status."
        if not q.holds(staff_need):
            return "Only staff can change an account's status."
        if q.about_one and q.obj.role != USER.USER and not is_admin:
            return "Only an admin can change the status of a staff or admin account."
        return _last_admin(q, demoted=q.status is not None and q.status != USER.ACTIVE)
    if q.action == END_SESSIONS:
        # Everyone may sign themselves out anywhere; staff, USER accounts; admins, anyone.
        if q.on_yourself():
            return None
        if not q.holds(staff_need):
            return "Only staff can end another account's sessions."
        if q.about_one and q.obj.role != USER.USER and not is_admin:
            return "Only an admin can end the sessions of a staff or admin account."
        return None
    if q.action == CLOSE:
        # Anyone may delete their own account, and only their own; the last
        # active admin stays, or nobody could run the site.
        if not q.on_yourself():
            return "You can only delete your own account."
        return _last_admin(q, demoted=True)
    if q.action == RESET_SECOND_FACTOR:
        if q.on_yourself():
            return "You cannot reset your own second factor: turn it off from your account page."
        return _unless(is_admin, "Only an admin can reset another account's second factor.")
    if q.action == CHANGE:
        if not is_admin:
            return "Only an admin can edit accounts."
        if q.on_yourself() and (
            (q.role is not None and q.role != q.obj.role)
            or (q.status is not None and q.status != q.obj.status)
        ):
            return "You cannot change your own role or status."
        demoted = (q.role is not None and q.role != USER.ADMIN) or (
            q.status is not None and q.status != USER.ACTIVE
        )
        return _last_admin(q, demoted=demoted)
    if q.action == DELETE:
        if not is_admin:
            return "Only an admin can delete accounts."
        if q.on_yourself():
            return "You cannot delete your own account here."
        if q.about_one and q.obj.handle == USER.DELETED_HANDLE:
            return "The placeholder for deleted accounts cannot be deleted."
        return _last_admin(q, demoted=True)
    return NOT_ALLOWED


def _last_admin(q: Question, *, demoted: bool) -> str | None:
    """The last active ADMIN cannot be demoted, disabled or deleted."""
    if demoted and q.about_one and q.obj.is_last_active_admin():
        return LAST_ADMIN
    return None


def _post(q: Question) -> str | None:
    # Published posts are public; drafts and hidden posts are their author's and staff's.
    visible = not q.about_one or q.obj.is_published or q.holds(moderator_need) or q.owns()
    return _content(q, visible=visible, authors_change=q.owns())


def _comment(q: Question) -> str | None:
    # Viewing is the back office's list: the public pages show approved
    # comments themselves. Authors edit a comment while it waits; once judged
    # it is the moderators'.
    return _content(q, visible=q.holds(staff_need), authors_change=q.owns() and q.obj.is_pending)


def _content(q: Question, *, visible: bool, authors_change: bool) -> str | None:
    """Posts and comments: writers add, authors and moderators change and delete."""
    moderator = q.holds(moderator_need)
    if q.action == VIEW:
        return _unless(visible)
    if q.action == ADD:
        return _unless(q.holds(writer_need))
    if q.action == CHANGE:
        return _unless(moderator or authors_change)
    if q.action == DELETE:
        return _unless(moderator or q.owns())
    if q.action == MODERATE:
        return _unless(moderator)
    if q.action == EXPORT:
        return _unless(q.holds(staff_need))
    if q.action == REPORT:
        if not q.holds(reporter_need):
            return "Only active accounts can report: confirm your email address first."
        if q.owns():
            return "You cannot report what you wrote yourself."
        return None
    return NOT_ALLOWED


def _reports(q: Question) -> str | None:
    # Anyone active files a report (REPORT on the post or comment); staff see and resolve them.
    if q.action == ADD:
        return _unless(q.holds(reporter_need))
    if q.action in (VIEW, RESOLVE):
        return _unless(q.holds(staff_need), "Only staff can resolve reports.")
    return NOT_ALLOWED


def _email(q: Question) -> str | None:
    if q.action in (VIEW, ADD, CHANGE):  # list, compose, retry and cancel
        return _unless(q.holds(staff_need))
    if q.action == DELETE:  # delete and purge
        return _unless(q.holds(admin_need), "Only an admin can delete messages.")
    return NOT_ALLOWED


def _audit(q: Question) -> str | None:
    # Read-only, and for admins: nobody edits history.
    return _unless(q.action == VIEW and q.holds(admin_need))


def _tag(q: Question) -> str | None:
    # Tags are public; writers' new ones come with the posts they tag. Adding
    # one on its own, renaming and deleting are for whoever moderates posts.
    if q.action == VIEW:
        return None
    if q.action in (ADD, CHANGE, DELETE):
        return _unless(q.holds(moderator_need), "Only staff can manage tags.")
    return NOT_ALLOWED


_RULES: dict[str, Callable[[Question], str | None]] = {
    ADMIN_SITE: _admin_site,
    ACCOUNT: _account,
    POST: _post,
    COMMENT: _comment,
    EMAIL: _email,
    AUDIT: _audit,
    REPORTS: _reports,
    TAG: _tag,
}


def accounts_that_can(users: Any, action: str, subject: str) -> Any:
    """The SQL condition on ``users`` (the account model) for who may ``action`` ``subject``.

    For work on many accounts at once (the seed picks its writers with it,
    session housekeeping the back-office accounts, whose lifetimes are shorter);
    only questions without a per-row rule have one.
    """
    staff = users.role.in_((USER.ADMIN, USER.STAFF))
    if action == VIEW and subject == ADMIN_SITE:
        return staff
    if action == ADD and subject in (POST, COMMENT):
        return or_(users.status == USER.ACTIVE, staff)
    if action == MODERATE and subject in (POST, COMMENT):
        return staff
    raise ValueError(f"No account condition for {action!r} on {subject!r}.")


# -- wiring --------------------------------------------------------------------


def _load_identity() -> Identity:
    if current_user.is_authenticated:
        return Identity(current_user.id, auth_type="session")
    return AnonymousIdentity()


def _on_identity_loaded(sender: Flask, identity: Identity) -> None:
    identity.user = current_user
    if current_user.is_authenticated and identity.id == current_user.id:
        identity.provides.update(needs_for(current_user))


def _can_current(action: str, obj: Any = None, **change: Any) -> bool:
    return can(current_user, action, obj, **change)


def init_security(app: Flask) -> None:
    """Derive the identity from the logged-in account on every request.

    Templates ask the gate through one global: ``{% if can("add", "post") %}``.
    """
    if _load_identity not in principal.identity_loaders:
        principal.identity_loader(_load_identity)
    identity_loaded.connect_via(app)(_on_identity_loaded)
    app.jinja_env.globals["can"] = _can_current
