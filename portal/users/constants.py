"""Account roles and statuses, imported as ``from portal.users import constants as USER``."""

from portal.choices import value_named

# Roles: a lower number holds more power.
ADMIN = 0
STAFF = 1
USER = 2
ROLE = {
    ADMIN: "admin",
    STAFF: "staff",
    USER: "user",
}

# Statuses: NEW has not confirmed its email yet; INACTIVE cannot sign in.
INACTIVE = 0
NEW = 1
ACTIVE = 2
STATUS = {
    INACTIVE: "inactive",
    NEW: "new",
    ACTIVE: "active",
}

NAME_MAX_LENGTH = 80
HANDLE_MAX_LENGTH = 40
# Paths under /users/ that a public profile's handle must never take.
RESERVED_HANDLES = frozenset(
    {"confirm", "forgot", "login", "logout", "me", "register", "reset", "static"}
)
REASON_MAX_LENGTH = 500
# The account that keeps the posts and comments of deleted accounts.
DELETED_HANDLE = "deleted-user"
DELETED_EMAIL = "deleted-user@invalid"

# A language tag from LANGUAGES ("de", "pt_BR") and an IANA zone name
# ("America/Argentina/ComodRivadavia" is the longest, 32 characters).
LOCALE_MAX_LENGTH = 16
TIMEZONE_MAX_LENGTH = 64

# RFC 5321 caps a forward path at 256 octets including the angle brackets.
EMAIL_MAX_LENGTH = 254


def role_by_name(name: str) -> int:
    """Return the role constant named ``name`` (any case); raise ``KeyError``."""
    return value_named(ROLE, name)


def status_by_name(name: str) -> int:
    """Return the status constant named ``name`` (any case); raise ``KeyError``."""
    return value_named(STATUS, name)
