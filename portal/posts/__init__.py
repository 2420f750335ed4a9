"""Posts: the public list, the post page, writing and the public profiles."""

from portal.posts.views import bp

__all__ = ["bp"]
