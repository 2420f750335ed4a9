"""``/metrics``: the Prometheus scrape, for the monitoring system only.

Anyone else (any method, any role, a wrong token, an address outside
``METRICS_ALLOW``) gets the site's ordinary 404 page, exactly what a path
that does not exist gets: not 403, not 405 for a POST, nothing that says
the page is there. The scrape is never cached and never rate-limited.
"""

from __future__ import annotations

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import abort
from flask import request

from portal import metrics
from portal.emails.metrics import QueueCollector
from portal.extensions import csrf
from portal.extensions import limiter

bp = Blueprint("metrics", __name__)

# Every method reaches the view, so that a POST is refused with the same 404
# as on a missing page instead of a 405 that would confirm the route.
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SCRAPE_METHODS = frozenset({"GET", "HEAD"})


@bp.route("/metrics", methods=ANY_METHOD, provide_automatic_options=False)
@limiter.exempt
@csrf.exempt
def scrape() -> Response:
    """Serve the metrics to the monitoring system; look absent to everyone else."""
    if request.method not in SCRAPE_METHODS or not metrics.scrape_allowed():
        abort(404)
    response = Response(metrics.exposition(QueueCollector()), content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_metrics(app: Flask) -> None:
    """Count and time every request, and serve ``/metrics``."""
    metrics.init_metrics(app)
    app.register_blueprint(bp)
