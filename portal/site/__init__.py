"""Site-wide pages."""

from portal.site.views import add_bench_routes
from portal.site.views import bp

__all__ = ["add_bench_routes", "bp"]
