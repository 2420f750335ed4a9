"""A delivery loop that stops cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from flask import current_app
from sqlalchemy.exc import OperationalError

from portal.emails.queue import BatchResult
from portal.emails.queue import Pacer
from portal.emails.queue import default_worker_id
from portal.emails.queue import deliver_batch
from portal.extensions import db

log = logging.getLogger(__name__)


class Worker:
    """Claim and deliver batches until told to stop."""

    def __init__(
        self,
        *,
        batch_size: int | None = None,
        idle_sleep: float = 5.0,
        worker_id: str | None = None,
        report: Callable[[BatchResult], None] = lambda result: None,
    ) -> None:
        self.batch_size = batch_size
        self.idle_sleep = idle_sleep
        self.worker_id = worker_id or default_worker_id()
        self.report = report
        self._stop = threading.Event()
        # One pacer across batches, woken early by a stop request.
        self.pacer = Pacer(current_app.config.get("EMAIL_RATE_LIMIT"), wait=self._stop.wait)

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Finish the message in flight, release the rest of the batch, then exit."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, *, once: bool = False) -> BatchResult:
        """Deliver until stopped (or one batch with ``once``); return the totals."""
        totals = BatchResult()
        while not self.stopping:
            started = time.perf_counter()
            try:
                result = deliver_batch(
                    batch_size=self.batch_size,
                    worker_id=self.worker_id,
                    should_stop=lambda: self.stopping,
                    pacer=self.pacer,
                )
            except OperationalError:
                # The database went away (a restart, a failover): claimed rows
                # keep their lease and come back; try again after a pause.
                db.session.rollback()
                current_app.logger.exception("the email worker lost the database; retrying")
                if once:
                    raise
                self._stop.wait(self.idle_sleep)
                continue
            totals.add(result)
            self.log_batch(result, time.perf_counter() - started)
            if result.total or result.released:
                self.report(result)
            if once:
                break
            if not result.total:
                self._stop.wait(self.idle_sleep)
        return totals

    def log_batch(self, result: BatchResult, seconds: float) -> None:
        """Write one line for a batch that claimed anything (idle polls stay quiet)."""
        claimed = result.total + result.released + result.lost
        if not claimed:
            return
        log.info(
            "email batch: sent %s, retried %s, failed %s",
            result.sent,
            result.retried,
            result.failed,
            extra={
                "worker_id": self.worker_id,
                "batch_size": self.batch_size or current_app.config["EMAIL_BATCH_SIZE"],
                "claimed": claimed,
                "sent": result.sent,
                "retried": result.retried,
                "failed": result.failed,
                "released": result.released,
                "lost": result.lost,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
