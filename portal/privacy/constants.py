"""States of a data export, and what the account pages offer."""

# A large export is built in the background: QUEUED until a builder claims it.
QUEUED = 0
BUILDING = 1
READY = 2
FAILED = 3
STATE = {
    QUEUED: "queued",
    BUILDING: "building",
    READY: "ready",
    FAILED: "failed",
}

# What becomes of a deleted account's posts and comments.
DELETE_CONTENT = "delete"
KEEP_CONTENT = "keep"

# A builder that died leaves its claim; another may take the export after this.
BUILD_LEASE_SECONDS = 15 * 60
FORMAT_NAME = "portal-account-export"
FORMAT_VERSION = 1
