"""Real worker processes drain one queue: each message arrives once, a killed worker loses none.

These tests run ``manage.py emails worker`` as separate processes against one
database and a real SMTP server on 127.0.0.1, then count Message-IDs at the
server. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``; the SQLite test
proves its conditional-update claim never double-sends either. A worker killed
with SIGKILL leaves its rows to lease expiry; one stopped with SIGTERM hands
them back at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

from portal import models  # noqa: F401 - every table on the metadata
from portal.database import Base
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.models import Attempt
from portal.emails.models import Email
from tests.conftest import POSTGRES_URL
from tests.conftest import require_service
from tests.smtp_server import SMTPServer
from tests.smtp_server import smtp_server

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_SECONDS = 30
IDLE_SLEEP = "0.2"


# -- databases -------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A schema of this process's own on the test PostgreSQL, with the tables, dropped after."""
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    schema = f"portal_concurrency_{os.getpid()}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = (
        make_url(POSTGRES_URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    create_schema(url)
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that several processes open, as `manage.py` would."""
    url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    create_schema(url)
    return url


def create_schema(url: str) -> None:
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


@pytest.fixture
def engine_for() -> Iterator[Callable[[str], Engine]]:
    """Engines the test itself uses to queue and inspect rows, disposed after."""
    engines: list[Engine] = []

    def build(url: str) -> Engine:
        engine = create_engine(url)
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.dispose()


def queue_messages(engine: Engine, count: int) -> set[str]:
    """Insert ``count`` due QUEUED rows in one statement; return their Message-IDs."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for number in range(count):
        message_id = f"<{uuid.uuid4().hex}@example.com>"
        rows.append(
            {
                "to_address": f"reader{number}@example.com",
                "from_address": "Portal <no-reply@example.com>",
                "subject": f"Message {number}",
                "text_body": f"Hello, reader {number}.",
                "message_id": message_id,
                "sensitive": False,
                "state": EMAIL.QUEUED,
                "priority": EMAIL.NORMAL,
                "scheduled_at": now,
                "next_attempt_at": now,
                "attempts": 0,
                "max_attempts": 5,
                "created_at": now,
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(Email), rows)
    return {row["message_id"] for row in rows}


def states(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        counts = connection.execute(select(Email.state, func.count()).group_by(Email.state))
        return {EMAIL.STATE[state]: int(number) for state, number in counts}


def wait_until_sent(engine: Engine, count: int, workers: list[WorkerProcess]) -> None:
    """Poll the table until ``count`` rows are SENT; fail early if a worker died."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        seen = states(engine)
        if seen.get("sent", 0) == count:
            return
        for worker in workers:
            assert worker.process.poll() is None, (
                f"worker exited with {worker.process.returncode}:\n{worker.stderr()}"
            )
        assert time.monotonic() < deadline, f"queue not drained in time: {seen}"
        time.sleep(0.1)


def sent_attempts_by_worker(engine: Engine) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Attempt.worker, Attempt.outcome, func.count()).group_by(
                Attempt.worker, Attempt.outcome
            )
        )
        by_worker: Counter[str] = Counter()
        for worker, outcome, number in rows:
            assert outcome == EMAIL.OUTCOME_SENT, f"{worker} logged {number} {outcome!r} attempts"
            by_worker[worker] += int(number)
        return by_worker


def message_ids_received(server: SMTPServer) -> Counter[str]:
    return Counter(str(received.message["Message-ID"]) for received in server.handler.received)


# -- worker processes --------------------------------------------------------------


class WorkerProcess:
    """``manage.py emails worker`` in its own process, its output kept in files."""

    def __init__(self, directory: Path, env: dict[str, str], *args: str) -> None:
        self.directory = directory
        self.stdout_path = directory / "stdout.txt"
        self.stderr_path = directory / "stderr.txt"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "emails", "worker", *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    @property
    def worker_id(self) -> str:
        """The lease owner name: the worker prints it when it starts."""
        for line in self.stderr().splitlines():
            if line.startswith("Worker ") and line.endswith(" started."):
                return line.removeprefix("Worker ").removesuffix(" started.")
        raise AssertionError(f"worker did not say it started:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_started(self) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while " started." not in self.stderr():
            assert self.process.poll() is None, f"worker exited early:\n{self.stderr()}"
            assert time.monotonic() < deadline, "worker did not start in time"
            time.sleep(0.05)

    def terminate(self) -> int:
        """SIGTERM, as a service manager stops it; return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE_SECONDS)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE_SECONDS)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes; any still running when the test ends is killed."""
    workers: list[WorkerProcess] = []

    def start(url: str, server: SMTPServer, *, lease_seconds: int = 300) -> WorkerProcess:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("MAIL_", "EMAIL_", "FLASK_"))
        }
        env.update(
            # The testing config forces the memory transport: run as a deployment would.
            PORTAL_ENV="development",
            FLASK_DEBUG="0",
            DATABASE_URL=url,
            MAIL_TRANSPORT="smtp",
            MAIL_SERVER=server.host,
            MAIL_PORT=str(server.port),
            MAIL_TIMEOUT="10",
            EMAIL_LEASE_SECONDS=str(lease_seconds),
            EMAIL_RECORD_EVERY=str(RECORD_EVERY),
        )
        directory = tmp_path / f"worker{len(workers)}"
        directory.mkdir()
        worker = WorkerProcess(directory, env, "--batch", "50", "--idle-sleep", IDLE_SLEEP)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(timeout=DEADLINE_SECONDS)


# -- draining with several workers ---------------------------------------------------


def drain_with_workers(
    url: str,
    engine: Engine,
    start_worker: Callable[..., WorkerProcess],
    *,
    workers: int,
    messages: int,
) -> None:
    """Start idle workers, queue ``messages`` at once, and check each arrives exactly once."""
    with smtp_server() as server:
        running = [start_worker(url, server) for _ in range(workers)]
        for worker in running:
            worker.wait_started()
        queued = queue_messages(engine, messages)

        wait_until_sent(engine, messages, running)
        statuses = [worker.terminate() for worker in running]
        received = message_ids_received(server)

    logs = [worker.stderr() for worker in running]
    assert statuses == [0] * workers, logs
    assert not any("Traceback" in log for log in logs), logs
    assert set(received) == queued
    assert [message_id for message_id, times in received.items() if times > 1] == []
    assert len(server.handler.received) == messages
    assert states(engine) == {"sent": messages}

    by_worker = sent_attempts_by_worker(engine)
    assert sum(by_worker.values()) == messages
    assert set(by_worker) <= {worker.worker_id for worker in running}
    # Both claim paths must let workers deliver side by side, not one after another.
    assert len(by_worker) >= 2, by_worker


def test_workers_on_postgresql_deliver_each_message_exactly_once(
    postgres_url: str,
    engine_for: Callable[[str], Engine],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    drain_with_workers(
        postgres_url, engine_for(postgres_url), start_worker, workers=3, messages=1000
    )


def test_workers_on_sqlite_deliver_each_message_exactly_once(
    sqlite_url: str,
    engine_for: Callable[[str], Engine],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    drain_with_workers(sqlite_url, engine_for(sqlite_url), start_worker, workers=2, messages=300)


# -- a worker killed mid-batch -----------------------------------------------------


# Successful sends a worker writes per transaction (EMAIL_RECORD_EVERY).
RECORD_EVERY = 10


def leased_to(engine: Engine, worker_id: str) -> dict[int, datetime]:
    """Rows ``worker_id`` holds in SENDING, with the end of each lease."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Email.id, Email.locked_until).where(
                Email.state == EMAIL.SENDING, Email.locked_by == worker_id
            )
        )
        return {row.id: row.locked_until for row in rows}


def test_a_worker_killed_mid_batch_loses_nothing_on_postgresql(
    postgres_url: str,
    engine_for: Callable[[str], Engine],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    messages = 200
    lease = 2
    engine = engine_for(postgres_url)
    queued = queue_messages(engine, messages)
    delay = {"seconds": 0.02}

    with smtp_server() as server:
        # A slow server keeps the first worker inside its batch long enough to kill it.
        server.handler.on_message = lambda received: time.sleep(delay["seconds"])
        doomed = start_worker(postgres_url, server, lease_seconds=lease)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(server.handler.received) < 15:
            assert doomed.process.poll() is None, doomed.stderr()
            assert time.monotonic() < deadline, "the first worker delivered nothing"
            time.sleep(0.01)
        doomed.kill()
        arrived_before_kill = len(server.handler.received)
        orphaned = leased_to(engine, doomed.worker_id)
        # Killed mid-batch: it still held rows it had claimed but not finished.
        assert orphaned, states(engine)
        assert arrived_before_kill < messages
        delay["seconds"] = 0

        rescuer = start_worker(postgres_url, server, lease_seconds=lease)
        wait_until_sent(engine, messages, [rescuer])
        status = rescuer.terminate()
        received = message_ids_received(server)

    assert status == 0, rescuer.stderr()
    assert "Traceback" not in rescuer.stderr()
    # At least once: nothing lost, nothing stuck in SENDING or QUEUED.
    assert set(received) == queued
    assert states(engine) == {"sent": messages}
    # Only what the dead worker had sent but not yet recorded (at most one group
    # of outcomes, the message in flight included) may arrive twice.
    repeated = [message_id for message_id, times in received.items() if times > 1]
    assert len(repeated) <= RECORD_EVERY, repeated
    assert max(received.values()) <= 2
    with engine.connect() as connection:
        orphans = connection.execute(
            select(Email.id, Email.message_id, Email.sent_at).where(Email.id.in_(orphaned))
        ).all()
    assert set(repeated) <= {row.message_id for row in orphans}
    # Nobody took the dead worker's rows before their lease ran out.
    for row in orphans:
        assert row.sent_at >= orphaned[row.id], row
    # One successful attempt per row: the dead worker logged none for what it left.
    by_worker = sent_attempts_by_worker(engine)
    assert sum(by_worker.values()) == messages
    assert by_worker[rescuer.worker_id] >= len(orphaned)


def test_sigterm_mid_batch_hands_the_rest_back_at_once_on_postgresql(
    postgres_url: str,
    engine_for: Callable[[str], Engine],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    messages = 120
    engine = engine_for(postgres_url)
    queued = queue_messages(engine, messages)
    delay = {"seconds": 0.02}

    with smtp_server() as server:
        server.handler.on_message = lambda received: time.sleep(delay["seconds"])
        # A lease far longer than the test: only a release lets anyone else send the rest.
        stopping = start_worker(postgres_url, server, lease_seconds=600)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while len(server.handler.received) < 10:
            assert stopping.process.poll() is None, stopping.stderr()
            assert time.monotonic() < deadline, "the worker delivered nothing"
            time.sleep(0.01)
        status = stopping.terminate()
        arrived = len(server.handler.received)
        left = states(engine)
        delay["seconds"] = 0

        assert status == 0, stopping.stderr()
        assert "Traceback" not in stopping.stderr()
        # The message in flight finished; the rest of its batch is queued again, not leased.
        assert left == {"sent": arrived, "queued": messages - arrived}, left
        with engine.connect() as connection:
            leased = connection.execute(
                select(func.count()).select_from(Email).where(Email.locked_by.is_not(None))
            ).scalar_one()
        assert leased == 0

        successor = start_worker(postgres_url, server, lease_seconds=600)
        wait_until_sent(engine, messages, [successor])
        assert successor.terminate() == 0, successor.stderr()
        received = message_ids_received(server)

    assert set(received) == queued
    assert max(received.values()) == 1
    assert sum(sent_attempts_by_worker(engine).values()) == messages
