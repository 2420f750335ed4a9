"""Post statuses, imported as ``from portal.posts import constants as POST``."""

from portal.choices import value_named

# DRAFT: only its author and staff see it. HIDDEN: taken down by staff.
DRAFT = 0
PUBLISHED = 1
HIDDEN = 2
STATUS = {
    DRAFT: "draft",
    PUBLISHED: "published",
    HIDDEN: "hidden",
}

TITLE_MAX_LENGTH = 200
SLUG_MAX_LENGTH = 80
BODY_MAX_LENGTH = 100_000


def status_by_name(name: str) -> int:
    """Return the status constant named ``name`` (any case); raise ``KeyError``."""
    return value_named(STATUS, name)
