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
