"""Email queue throughput: worker processes against a bare smtplib loop, same messages, same sink.

Run from the project root (see bench/README.md for what is measured and how):

    .venv/bin/python -m bench.email_throughput
    .venv/bin/python -m bench.email_throughput --backends postgresql --rounds 3
    .venv/bin/python -m bench.email_throughput --profile sqlite

An aiosmtpd sink (tests/smtp_server.py) runs in a process of its own and stamps
each message it accepts. Each round sends the same messages twice: once with a
bare ``smtplib`` loop over one connection, once by ``manage.py emails worker``
processes draining the queue table. Rates are taken at the sink, from the first
to the last message accepted, so process start-up counts for neither side.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import multiprocessing
import os
import platform
import pstats
import re
import signal
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy import event
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
from portal.emails.queue import build_message

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)
DEADLINE_SECONDS = 600
TARGET = 0.7

# Bodies the size of the app's account emails (templates/emails/): a short text
# part and an HTML alternative in the shared layout.
TEXT_BODY = (
    "Hello {name},\n\n"
    "Please confirm your email address for Portal by opening this link:\n\n"
    "https://portal.example.org/users/confirm/{token}\n\n"
    "The link is valid for three days. If you did not create an account, ignore this message.\n"
)
HTML_BODY = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portal</title></head>'
    '<body style="font-family: sans-serif; line-height: 1.5">'
    "<p>Hello {name},</p><p>Please confirm your email address for Portal:</p>"
    '<p><a href="https://portal.example.org/users/confirm/{token}">Confirm my address</a></p>'
    "<p>The link is valid for three days. If you did not create an account, "
    "ignore this message.</p><hr><p><small>Portal</small></p></body></html>"
)


# -- the sink: aiosmtpd in a process of its own ------------------------------------


@dataclass
class SinkStats:
    count: int
    unique: int
    connections: int
    first: float | None
    last: float | None

    @property
    def span(self) -> float:
        assert self.first is not None and self.last is not None
        return self.last - self.first

    @property
    def rate(self) -> float:
        """Messages per second between the first and the last one accepted."""
        return (self.count - 1) / self.span if self.count > 1 and self.span > 0 else 0.0


def _serve_sink(pipe: Connection) -> None:
    """Run the test SMTP server until told to stop, answering commands on ``pipe``."""
    from tests.smtp_server import smtp_server

    with smtp_server() as server:
        handler = server.handler
        stamps: list[float] = []
        handler.on_message = lambda received: stamps.append(time.perf_counter())
        pipe.send((server.host, server.port))
        while True:
            command = pipe.recv()
            if command == "stop":
                break
            if command == "reset":
                handler.received.clear()
                handler.connections = 0
                stamps.clear()
                pipe.send(None)
            elif command == "count":
                pipe.send(len(handler.received))
            elif command == "stats":
                received = list(handler.received)
                ids = Counter(_message_id(item.data) for item in received)
                pipe.send(
                    SinkStats(
                        count=len(received),
                        unique=len(ids),
                        connections=handler.connections,
                        first=stamps[0] if stamps else None,
                        last=stamps[-1] if stamps else None,
                    )
                )


def _message_id(data: bytes) -> bytes:
    match = MESSAGE_ID.search(data)
    return match.group(1) if match else b""


class Sink:
    """The client side of the sink process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_serve_sink, args=(child,), daemon=True)
        self.process.start()
        self.host, self.port = self.pipe.recv()

    def ask(self, command: str) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def reset(self) -> None:
        self.ask("reset")

    def count(self) -> int:
        return int(self.ask("count"))

    def stats(self) -> SinkStats:
        stats = self.ask("stats")
        assert isinstance(stats, SinkStats)
        return stats

    def close(self) -> None:
        self.pipe.send("stop")
        self.process.join(10)


# -- databases ---------------------------------------------------------------------


@contextlib.contextmanager
def database(backend: str, postgres_url: str) -> Iterator[str]:
    """A fresh database with the tables: a SQLite file, or a PostgreSQL schema of our own."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-email-") as directory:
            url = f"sqlite:///{Path(directory) / 'bench.sqlite3'}"
            create_tables(url)
            yield url
        return
    schema = f"bench_email_{os.getpid()}"
    admin = create_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = (
        make_url(postgres_url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        create_tables(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def create_tables(url: str) -> None:
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(Attempt.__table__.delete())
        connection.execute(Email.__table__.delete())
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE emails_email, emails_attempt"))


def make_rows(count: int) -> list[dict[str, Any]]:
    """``count`` due messages with unique Message-IDs, as rows for one INSERT."""
    now = utcnow()
    rows = []
    for number in range(count):
        values = {"name": f"Reader {number}", "token": uuid.uuid4().hex}
        rows.append(
            {
                "to_address": f"reader{number}@example.com",
                "from_address": "Portal <no-reply@example.com>",
                "subject": f"Confirm your email address ({number})",
                "text_body": TEXT_BODY.format(**values),
                "html_body": HTML_BODY.format(**values),
                "message_id": f"<{uuid.uuid4().hex}@example.com>",
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
    return rows


def count_state(engine: Engine, state: int) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(Email).where(Email.state == state)
        return int(connection.execute(query).scalar_one())


# -- the ways of sending -------------------------------------------------------------


@dataclass
class Run:
    label: str
    messages: int
    wall: float
    sink: SinkStats

    @property
    def rate(self) -> float:
        return self.sink.rate


def bare_loop(sink: Sink, rows: list[dict[str, Any]], *, prebuilt: bool) -> Run:
    """Send the rows' messages with smtplib over one connection: the ceiling to compare with.

    The messages are those a worker builds (``build_message`` on the same
    values). By default each is built inside the loop, as any sender must;
    ``prebuilt`` builds them all first and times only ``send_message``.
    """
    emails = [Email(**row) for row in rows]
    prepared = [build_message(email) for email in emails] if prebuilt else []
    sink.reset()
    started = time.perf_counter()
    with smtplib.SMTP(sink.host, sink.port, timeout=30) as client:
        if prebuilt:
            for message in prepared:
                client.send_message(message)
        else:
            for email in emails:
                client.send_message(build_message(email))
    wall = time.perf_counter() - started
    stats = sink.stats()
    check_arrivals(stats, len(rows), "bare loop")
    label = "smtplib loop, prebuilt messages" if prebuilt else "smtplib loop"
    return Run(label, len(rows), wall, stats)


def worker_env(url: str, sink: Sink) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MAIL_", "EMAIL_", "FLASK_"))
    }
    env.update(
        PORTAL_ENV="development",
        FLASK_DEBUG="0",
        DATABASE_URL=url,
        MAIL_TRANSPORT="smtp",
        MAIL_SERVER=sink.host,
        MAIL_PORT=str(sink.port),
    )
    return env


def workers_drain(
    url: str, engine: Engine, sink: Sink, rows: list[dict[str, Any]], workers: int, batch: int
) -> Run:
    """Start idle workers, queue every row in one commit, time the drain, stop them with SIGTERM."""
    sink.reset()
    env = worker_env(url, sink)
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as directory:
        logs = [Path(directory) / f"worker{number}.log" for number in range(workers)]
        processes = []
        for log in logs:
            with log.open("wb") as stream:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "manage.py", "emails", "worker"]
                        + ["--batch", str(batch), "--idle-sleep", "0.1"],
                        cwd=ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=stream,
                    )
                )
        try:
            for log in logs:
                wait_for(lambda log=log: b" started." in log.read_bytes(), processes, logs)
            started = time.perf_counter()
            with engine.begin() as connection:
                connection.execute(insert(Email), rows)
            wait_for(lambda: sink.count() >= len(rows), processes, logs)
            wait_for(lambda: count_state(engine, EMAIL.SENT) == len(rows), processes, logs)
            wall = time.perf_counter() - started
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            statuses = [process.wait(60) for process in processes]
            output = "\n".join(log.read_text(errors="replace") for log in logs)
    if statuses != [0] * workers or "Traceback" in output:
        raise SystemExit(f"workers exited with {statuses}:\n{output}")
    stats = sink.stats()
    check_arrivals(stats, len(rows), f"{workers} worker(s)")
    label = "1 worker" if workers == 1 else f"{workers} workers"
    return Run(label, len(rows), wall, stats)


def wait_for(condition: Any, processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    """Poll ``condition``; give up if a worker exits or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        for process in processes:
            if process.poll() is not None:
                output = "\n".join(log.read_text(errors="replace") for log in logs)
                raise SystemExit(f"a worker exited with {process.returncode}:\n{output}")
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the workers")
        time.sleep(0.05)


def check_arrivals(stats: SinkStats, expected: int, label: str) -> None:
    if stats.count != expected or stats.unique != expected:
        raise SystemExit(
            f"{label}: the sink got {stats.count} messages, {stats.unique} distinct, "
            f"expected {expected} exactly once"
        )


# -- profiling: the worker's loop in this process ----------------------------------


def profile(url: str, engine: Engine, sink: Sink, count: int, batch: int) -> None:
    """Drain the queue with ``deliver_batch`` in this process and show where the time goes.

    First without a profiler: wall and CPU time per message, and the SQL the loop
    runs per message (statements, their time, commits). Then under cProfile.
    """
    from portal import create_app
    from portal.emails.queue import deliver_batch
    from portal.extensions import db

    os.environ.update(worker_env(url, sink))
    app = create_app()
    with app.app_context():
        sql = Counter[str]()
        sql_time = Counter[str]()

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["bench_started"] = time.perf_counter()

        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            kind = statement.split(None, 1)[0].upper()
            sql[kind] += 1
            sql_time[kind] += time.perf_counter() - conn.info.pop("bench_started")

        def committed(conn: Any) -> None:
            sql["COMMIT"] += 1

        event.listen(db.engine, "before_cursor_execute", before)
        event.listen(db.engine, "after_cursor_execute", after)
        event.listen(db.engine, "commit", committed)
        with engine.begin() as connection:
            connection.execute(insert(Email), make_rows(count))
        sink.reset()
        started, cpu = time.perf_counter(), time.process_time()
        while deliver_batch(batch_size=batch).total:
            pass
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
        event.remove(db.engine, "commit", committed)
        check_arrivals(sink.stats(), count, "in-process loop")
        print(
            f"in-process loop: {count / wall:,.0f} messages/s; per message: "
            f"{wall / count * 1000:.2f} ms wall, {cpu / count * 1000:.2f} ms CPU in this process"
        )
        for kind, number in sql.most_common():
            spent = f", {sql_time[kind] / count * 1000:.3f} ms" if kind in sql_time else ""
            print(f"  {kind:8} {number / count:6.2f} per message{spent}")

        empty_tables(engine)
        with engine.begin() as connection:
            connection.execute(insert(Email), make_rows(count))
        sink.reset()
        profiler = cProfile.Profile()
        profiler.enable()
        while deliver_batch(batch_size=batch).total:
            pass
        profiler.disable()
        check_arrivals(sink.stats(), count, "profiled loop")
        db.session.remove()
        db.engine.dispose()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(25)
        print(out.getvalue())


# -- reporting ---------------------------------------------------------------------


def machine() -> str:
    return (
        f"{os.cpu_count()} cores ({platform.machine()}), {platform.system()} "
        f"{platform.release().split('-')[0]}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def postgres_version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one()).split()[0]
    finally:
        engine.dispose()


@dataclass
class Round:
    """One measurement: the queue's run beside both bare loops, same messages, same sink."""

    run: Run
    bare: Run
    prebuilt: Run

    @property
    def ratio(self) -> float:
        return self.run.rate / self.bare.rate


def median_round(rounds: list[Round]) -> Round:
    return sorted(rounds, key=lambda each: each.ratio)[len(rounds) // 2]


def report(results: list[tuple[str, Round]]) -> str:
    lines = [
        "| database | sender | messages | msg/s | ratio to smtplib loop "
        "| ratio to prebuilt loop | wall s | SMTP sessions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, each in results:
        # Each queue run beside the loops of its own round: the ratios pair them.
        for run in (each.bare, each.prebuilt, each.run):
            lines.append(
                f"| {backend} | {run.label} | {run.messages:,} | {run.rate:,.0f} "
                f"| {run.rate / each.bare.rate:.2f} | {run.rate / each.prebuilt.rate:.2f} "
                f"| {run.wall:.1f} | {run.sink.connections} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50, help="worker --batch (default 50)")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument(
        "--workers",
        default="1,2",
        help="worker counts to run on PostgreSQL (SQLite runs 1: one writer at a time)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat and report the median")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument(
        "--profile",
        choices=("sqlite", "postgresql"),
        help="instead: profile the delivery loop in this process on that database",
    )
    args = parser.parse_args(argv)

    sink = Sink()
    try:
        if args.profile:
            with database(args.profile, args.postgres_url) as url:
                engine = create_engine(url)
                profile(url, engine, sink, args.messages, args.batch)
                engine.dispose()
            return
        results: list[tuple[str, Round]] = []
        versions = [machine()]
        for backend in args.backends.split(","):
            counts = [1] if backend == "sqlite" else [int(n) for n in args.workers.split(",")]
            with database(backend, args.postgres_url) as url:
                if backend == "postgresql":
                    versions.append(f"PostgreSQL {postgres_version(url)}")
                engine = create_engine(url)
                for workers in counts:
                    rounds = []
                    for _ in range(args.rounds):
                        empty_tables(engine)
                        rows = make_rows(args.messages)
                        bare = bare_loop(sink, rows, prebuilt=False)
                        prebuilt = bare_loop(sink, rows, prebuilt=True)
                        run = workers_drain(url, engine, sink, rows, workers, args.batch)
                        rounds.append(Round(run, bare, prebuilt))
                        print(
                            f"{backend}, {run.label}: {run.rate:,.0f} msg/s; "
                            f"smtplib loop {bare.rate:,.0f} msg/s (ratio {rounds[-1].ratio:.2f}); "
                            f"prebuilt {prebuilt.rate:,.0f} msg/s",
                            file=sys.stderr,
                        )
                    results.append((backend, median_round(rounds)))
                engine.dispose()
    finally:
        sink.close()
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{date}; {'; '.join(versions)}; load average at the end {load}")
    print(f"{args.messages:,} messages; worker --batch {args.batch}; median of {args.rounds}\n")
    print(report(results))


if __name__ == "__main__":
    main()
