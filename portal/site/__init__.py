"""Site-wide pages."""

from portal.site.views import bp

__all__ = ["bp"]
