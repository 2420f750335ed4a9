"""The outbox as a scrape sees it: messages by state and the oldest queued one's age."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from flask import current_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.models import Email
from portal.extensions import db


class QueueCollector(Collector):
    """Read the queue at scrape time, with one aggregate query.

    The counts and the oldest ``created_at`` per state come from a single
    ``GROUP BY state`` (the ``(state, created_at)`` index covers it); the age
    is measured as ``manage.py emails stats`` measures it, so both agree.
    A database that does not answer gives ``portal_email_queue_up 0`` and no
    other figure, rather than a failed scrape.
    """

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "portal_email_queue_up", "1 if the outbox could be read for this scrape, else 0."
        )
        try:
            rows = db.session.execute(
                select(Email.state, func.count(), func.min(Email.created_at)).group_by(Email.state)
            ).all()
        except SQLAlchemyError:
            db.session.rollback()
            current_app.logger.exception("metrics: could not read the email queue")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from queue_families({state: (count, oldest) for state, count, oldest in rows})


def queue_families(rows: dict[int, tuple[int, datetime | None]]) -> Iterator[Metric]:
    """Turn ``{state: (count, oldest created_at)}`` into the depth and age gauges."""
    depth = GaugeMetricFamily(
        "portal_email_queue_messages", "Messages in the outbox, by state.", labels=["state"]
    )
    for state, name in EMAIL.STATE.items():
        depth.add_metric([name], rows.get(state, (0, None))[0])
    yield depth
    oldest = rows.get(EMAIL.QUEUED, (0, None))[1]
    age = GaugeMetricFamily(
        "portal_email_queue_oldest_age_seconds",
        "Seconds since the oldest queued message was queued; 0 when none is queued.",
    )
    seconds = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    age.add_metric([], max(seconds, 0.0))
    yield age
