"""States and priorities of outgoing messages."""

# States: see DESIGN.md section 3 for the transitions.
QUEUED = 0
SENDING = 1
SENT = 2
FAILED = 3
CANCELLED = 4
STATE = {
    QUEUED: "queued",
    SENDING: "sending",
    SENT: "sent",
    FAILED: "failed",
    CANCELLED: "cancelled",
}

# Priorities: a lower number goes first, so claims sort ascending.
NOW = 0
HIGH = 1
NORMAL = 2
LOW = 3
PRIORITY = {
    NOW: "now",
    HIGH: "high",
    NORMAL: "normal",
    LOW: "low",
}

# Outcomes of one delivery attempt.
OUTCOME_SENT = "sent"
OUTCOME_RETRY = "retry"
OUTCOME_FAILED = "failed"

SUBJECT_MAX_LENGTH = 255
OUTCOME_SKIPPED = "skipped"

# Categories: what a message is for. Account mail (confirmation, reset, email
# change, security notices, new device) is always sent; the others carry an
# unsubscribe link and skip suppressed addresses.
ACCOUNT = 0
BROADCAST = 1
NOTIFICATION = 2
CATEGORY = {
    ACCOUNT: "account",
    BROADCAST: "broadcast",
    NOTIFICATION: "notification",
}
# The categories a person may unsubscribe from, in the order pages list them.
OPTIONAL_CATEGORIES = (BROADCAST, NOTIFICATION)

# Why an address is on the suppression list.
REASON_BOUNCE = "bounce"  # a permanent (5xx) SMTP refusal
REASON_UNSUBSCRIBE = "unsubscribe"  # the person asked
REASON_MANUAL = "manual"  # staff or an operator put it there
REASON = {
    REASON_BOUNCE: "bounced",
    REASON_UNSUBSCRIBE: "unsubscribed",
    REASON_MANUAL: "added by staff",
}
# Where a suppression came from.
SOURCE_SMTP = "smtp"
SOURCE_ONE_CLICK = "one-click"  # RFC 8058 POST from a mail client
SOURCE_LINK = "link"  # the confirmation page behind the footer link
SOURCE_PREFERENCES = "preferences"
SOURCE_ADMIN = "admin"
SOURCE_CLI = "cli"
SOURCES = (SOURCE_SMTP, SOURCE_ONE_CLICK, SOURCE_LINK, SOURCE_PREFERENCES, SOURCE_ADMIN, SOURCE_CLI)
SUPPRESSION_NOTE_MAX_LENGTH = 500
