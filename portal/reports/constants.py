"""Report reasons and statuses, imported as ``from portal.reports import constants as REPORT``."""

from portal.choices import value_named

# Why a reader reports something.
SPAM = 0
ABUSE = 1
OFF_TOPIC = 2
OTHER = 3
REASON = {
    SPAM: "spam",
    ABUSE: "abuse",
    OFF_TOPIC: "off-topic",
    OTHER: "other",
}

# OPEN: waits for staff. The rest say how staff resolved it: the content was
# fine (DISMISSED), taken down (HIDDEN), or deleted (then the report goes with
# it, and the audit trail keeps the decision).
OPEN = 0
DISMISSED = 1
HIDDEN = 2
STATUS = {
    OPEN: "open",
    DISMISSED: "dismissed",
    HIDDEN: "hidden",
}

# What staff decide about a reported post or comment, in one step.
DISMISS = "dismiss"
HIDE = "hide"
DELETE = "delete"
DECISIONS = (DISMISS, HIDE, DELETE)

# What a report is about.
TARGET_POST = "post"
TARGET_COMMENT = "comment"

NOTE_MAX_LENGTH = 500


def reason_by_name(name: str) -> int:
    """Return the reason constant named ``name`` (any case); raise ``KeyError``."""
    return value_named(REASON, name)
