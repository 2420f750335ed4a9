"""Comment statuses, imported as ``from portal.comments import constants as COMMENT``."""

# Only APPROVED comments are public; a PENDING one is shown to its author alone.
PENDING = 0
APPROVED = 1
REJECTED = 2
SPAM = 3
STATUS = {
    PENDING: "pending",
    APPROVED: "approved",
    REJECTED: "rejected",
    SPAM: "spam",
}

BODY_MAX_LENGTH = 5_000
REASON_MAX_LENGTH = 500
