"""Post statuses, imported as ``from portal.posts import constants as POST``."""

from portal.choices import value_named

# DRAFT: only its author and staff see it. HIDDEN: taken down by staff.
# PENDING: its author published it, and it waits for staff to approve it
# (``POSTS_REQUIRE_APPROVAL``); like a draft, only its author and staff see it.
DRAFT = 0
PUBLISHED = 1
HIDDEN = 2
PENDING = 3
STATUS = {
    DRAFT: "draft",
    PUBLISHED: "published",
    HIDDEN: "hidden",
    PENDING: "pending",
}

# The lists of an author's "Your posts" page: the statuses, with PUBLISHED split
# by the clock into the posts readers see and those SCHEDULED for later.
SCHEDULED = "scheduled"
OWN_STATES = (STATUS[DRAFT], SCHEDULED, STATUS[PUBLISHED], STATUS[PENDING], STATUS[HIDDEN])

# POSTS_REQUIRE_APPROVAL: which authors' posts wait for staff before they go public.
REVIEW_OFF = "off"
REVIEW_NEW = "new"  # accounts younger than POSTS_REVIEW_ACCOUNT_DAYS, or with few approved posts
REVIEW_ALL = "all"
REVIEW_MODES = (REVIEW_OFF, REVIEW_NEW, REVIEW_ALL)

TITLE_MAX_LENGTH = 200
SLUG_MAX_LENGTH = 80
# Paths under /posts/ that are pages of their own: no post may take them as its slug.
RESERVED_SLUGS = frozenset({"new", "preview"})
BODY_MAX_LENGTH = 100_000
# A moderator's reason for approving or rejecting a post (kept in the audit trail).
REASON_MAX_LENGTH = 500

# Tags: a name as a writer typed it (one or two words), and its address. A
# transliterated name can be longer than the name itself ("日本語" -> "ri-ben-yu").
TAG_NAME_MAX_LENGTH = 40
TAG_SLUG_MAX_LENGTH = 60


def status_by_name(name: str) -> int:
    """Return the status constant named ``name`` (any case); raise ``KeyError``."""
    return value_named(STATUS, name)
