"""Comments under posts: writing, editing while pending, deleting."""

from portal.comments.views import bp

__all__ = ["bp"]
