"""Prometheus metrics: requests and their latency, mail outcomes, refused sign-ins and requests.

The metrics are module-level objects on this module's own registry, so each
exists once per process however many apps the process builds (the tests build
several); every app adds only its request hooks. When
``PROMETHEUS_MULTIPROC_DIR`` names a directory before the process starts,
prometheus_client keeps every value in a file there, one per process, and a
scrape sums the files: gunicorn's workers, and mail workers on the same
machine, answer as one. Gunicorn's ``child_exit`` hook should then call
``prometheus_client.multiprocess.mark_process_dead(worker.pid)``.

Per request this costs two clock readings, a counter increment and a
histogram observation: no SQL, no I/O beyond a write to a memory map.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time
from collections.abc import Iterable
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client import ProcessCollector
from prometheus_client import disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from config.settings import parse_metrics_allow
from portal.emails import constants as EMAIL

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text format every Prometheus version reads (the client's own default without Accept).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# The endpoint label of a request no URL rule matched (a 404, a 405, a slash redirect).
UNMATCHED = "unmatched"
STARTED = "_metrics_started"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# No ``*_created`` series: a multiprocess scrape has none, and either way the
# exposition then has the same shape, at half the size.
disable_created_metrics()
REGISTRY = CollectorRegistry()
# CPU, memory and open files of this process; a multiprocess scrape leaves them out,
# since they would describe whichever worker answered.
ProcessCollector(registry=REGISTRY)

REQUESTS = Counter(
    "portal_http_requests",
    "HTTP requests answered, by URL rule endpoint and status code.",
    ("endpoint", "status"),
    registry=REGISTRY,
)
LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time from the first request hook to the response, by URL rule endpoint.",
    ("endpoint",),
    registry=REGISTRY,
)
EMAILS_SENT = Counter(
    "portal_emails_sent",
    "Messages the transport accepted.",
    registry=REGISTRY,
)
EMAILS_FAILED = Counter(
    "portal_emails_failed",
    "Messages that failed for good (refused, out of attempts, expired or unbuildable).",
    registry=REGISTRY,
)
EMAILS_RETRIED = Counter(
    "portal_emails_retried",
    "Delivery attempts that failed for now; the message went back to the queue.",
    registry=REGISTRY,
)
EMAILS_SKIPPED = Counter(
    "portal_emails_skipped",
    "Messages not sent because their address was suppressed after they were queued.",
    registry=REGISTRY,
)
SIGN_IN_FAILURES = Counter(
    "portal_sign_in_failures",
    "Password sign-ins refused: wrong address or password, or a disabled account.",
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "portal_rate_limit_refusals",
    "Requests refused with 429 Too Many Requests, by URL rule endpoint.",
    ("endpoint",),
    registry=REGISTRY,
)

OUTCOME_COUNTERS = {
    EMAIL.OUTCOME_SENT: EMAILS_SENT,
    EMAIL.OUTCOME_FAILED: EMAILS_FAILED,
    EMAIL.OUTCOME_RETRY: EMAILS_RETRIED,
    EMAIL.OUTCOME_SKIPPED: EMAILS_SKIPPED,
}


# -- what the rest of the code calls ----------------------------------------------


def count_deliveries(outcomes: Iterable[str]) -> None:
    """Count recorded delivery attempts by their outcome (``EMAIL.OUTCOME_*``)."""
    for outcome in outcomes:
        OUTCOME_COUNTERS[outcome].inc()


def count_sign_in_failure() -> None:
    """Count one refused sign-in."""
    SIGN_IN_FAILURES.inc()


def count_rate_limited() -> None:
    """Count one request refused with 429, under its endpoint."""
    RATE_LIMITED.labels(current_endpoint()).inc()


# -- request hooks ----------------------------------------------------------------


def current_endpoint() -> str:
    """Return the request's URL rule endpoint: a bounded label, unlike the path."""
    rule = request.url_rule
    return rule.endpoint if rule is not None else UNMATCHED


def start_timer() -> None:
    """Note when the request reached the app."""
    setattr(g, STARTED, time.perf_counter())


def observe_request(response: Response) -> Response:
    """Count the response by endpoint and status, and time it by endpoint."""
    count, timing = request_children(current_endpoint(), response.status_code)
    count.inc()
    started = g.pop(STARTED, None)
    if started is not None:
        timing.observe(time.perf_counter() - started)
    return response


# (endpoint, status) -> the counter and histogram children: ``labels()``
# validates its arguments on every call, which costs more than the update.
_children: dict[tuple[str, int], tuple[Any, Any]] = {}


def request_children(endpoint: str, status: int) -> tuple[Any, Any]:
    """Return the request counter and latency histogram children for one label set."""
    key = (endpoint, status)
    found = _children.get(key)
    if found is None:
        found = _children[key] = (REQUESTS.labels(endpoint, str(status)), LATENCY.labels(endpoint))
    return found


def init_metrics(app: Flask) -> None:
    """Count and time every request of ``app``.

    The timer is the first before-request hook whatever was registered
    earlier, and the count runs after the hooks registered before it (after
    hooks run in reverse), so registering early covers nearly the whole request.
    """
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request(observe_request)


# -- who may scrape ---------------------------------------------------------------


def scrape_allowed() -> bool:
    """Tell whether this request may read the metrics.

    It may with ``Authorization: Bearer <METRICS_TOKEN>`` (when a token is
    set), or from an address within ``METRICS_ALLOW``. A signed-in account,
    whatever its role, counts for nothing.
    """
    config = current_app.config
    token = config.get("METRICS_TOKEN")
    if token and bearer_matches(str(token)):
        return True
    return address_allowed(request.remote_addr, config.get("METRICS_ALLOW") or ())


def bearer_matches(token: str) -> bool:
    """Compare the request's bearer token with ``token`` in constant time."""
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Digests of equal length, so the time taken does not tell the token's length either.
    expected = hashlib.sha256(token.encode()).digest()
    given = hashlib.sha256(offered.strip().encode()).digest()
    return hmac.compare_digest(expected, given)


def address_allowed(address: str | None, allowed: Iterable[str]) -> bool:
    """Tell whether ``address`` is within one of the ``allowed`` addresses or networks."""
    networks = allowed_networks(tuple(allowed))
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in networks)


@lru_cache(maxsize=16)
def allowed_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Parse the allow-list once per distinct value (``ConfigurationError`` if it is bad)."""
    return tuple(ipaddress.ip_network(entry) for entry in parse_metrics_allow(list(entries)))


# -- the scrape -------------------------------------------------------------------


class Combined(Collector):
    """Several collectors read as one, for a single exposition."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def process_collector() -> Collector:
    """Return this process's metrics, or every process's with ``PROMETHEUS_MULTIPROC_DIR``."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        return MultiProcessCollector(None, path=path)
    return REGISTRY


def exposition(*extra: Collector) -> bytes:
    """Render the metrics, then those of ``extra`` collectors, in the Prometheus text format."""
    return generate_latest(Combined([process_collector(), *extra]))
