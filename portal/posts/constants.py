"""Post statuses, imported as ``from portal.posts import constants as POST``."""

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
    wanted = name.strip().lower()
    for value, label in STATUS.items():
        if label == wanted:
            return value
    raise KeyError(name)
