"""What audit events name: actions, object types and sources.

Imported as ``from portal.audit import constants as AUDIT``. Every
``audit.record`` call names its action and object type with these, and the
audit screen's filters offer exactly ``ACTIONS`` and ``OBJECT_TYPES``.
"""

# Actions: what was done.
ACTION_CREATE = "create"
ACTION_UPDATE = "update"
ACTION_DELETE = "delete"
ACTION_SET_ROLE = "set_role"
ACTION_SET_STATUS = "set_status"
ACTION_SET_PASSWORD = "set_password"
ACTION_APPROVE = "approve"
ACTION_REJECT = "reject"
ACTION_SPAM = "spam"
ACTION_EXPORT = "export"
ACTION_RETRY = "retry"
ACTION_CANCEL = "cancel"
ACTION_PURGE = "purge"
ACTION_COMPOSE = "compose"
ACTION_BROADCAST = "broadcast"
ACTION_SEED = "seed"
# Staff decided the reports on a post or a comment (dismissed, hid or deleted it).
ACTION_RESOLVE_REPORTS = "resolve_reports"
# Account events: what a person did to sign in and keep their account safe.
ACTION_SIGN_IN = "sign_in"
ACTION_SIGN_IN_FAILED = "sign_in_failed"
ACTION_SIGN_OUT = "sign_out"
ACTION_RESET_REQUESTED = "reset_requested"
ACTION_RESET_DONE = "reset_done"
ACTION_EMAIL_CHANGE_REQUESTED = "email_change_requested"
ACTION_EMAIL_CHANGED = "email_changed"
ACTION_PASSWORD_CHANGED = "password_changed"
ACTION_MFA_ENROLLED = "mfa_enrolled"
ACTION_MFA_RESET = "mfa_reset"
ACTION_MFA_DISABLED = "mfa_disabled"
ACTION_SESSION_ENDED = "session_ended"
ACTION_PROVIDER_LINKED = "provider_linked"
ACTION_PROVIDER_UNLINKED = "provider_unlinked"
ACCOUNT_ACTIONS = (
    ACTION_SIGN_IN,
    ACTION_SIGN_IN_FAILED,
    ACTION_SIGN_OUT,
    ACTION_RESET_REQUESTED,
    ACTION_RESET_DONE,
    ACTION_EMAIL_CHANGE_REQUESTED,
    ACTION_EMAIL_CHANGED,
    ACTION_PASSWORD_CHANGED,
    ACTION_MFA_ENROLLED,
    ACTION_MFA_RESET,
    ACTION_MFA_DISABLED,
    ACTION_SESSION_ENDED,
    ACTION_PROVIDER_LINKED,
    ACTION_PROVIDER_UNLINKED,
)
ACTIONS = (
    ACTION_CREATE,
    ACTION_UPDATE,
    ACTION_DELETE,
    ACTION_SET_ROLE,
    ACTION_SET_STATUS,
    ACTION_SET_PASSWORD,
    ACTION_APPROVE,
    ACTION_REJECT,
    ACTION_SPAM,
    ACTION_EXPORT,
    ACTION_RETRY,
    ACTION_CANCEL,
    ACTION_PURGE,
    ACTION_COMPOSE,
    ACTION_BROADCAST,
    ACTION_SEED,
    ACTION_RESOLVE_REPORTS,
    *ACCOUNT_ACTIONS,
)

# Object types: what it was done to.
OBJECT_USER = "user"
OBJECT_POST = "post"
OBJECT_COMMENT = "comment"
OBJECT_EMAIL = "email"
OBJECT_DATABASE = "database"
OBJECT_TAG = "tag"
OBJECT_TYPES = (
    OBJECT_USER,
    OBJECT_POST,
    OBJECT_COMMENT,
    OBJECT_EMAIL,
    OBJECT_DATABASE,
    OBJECT_TAG,
)

# Sources: where the change came from, and how the audit screen names each.
SOURCE_ADMIN = "admin"
SOURCE_SITE = "site"
SOURCE_CLI = "cli"
SOURCES = {
    SOURCE_ADMIN: "admin",
    SOURCE_SITE: "site",
    SOURCE_CLI: "manage.py",
}
