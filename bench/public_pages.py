"""Public page speed: /, /posts/ and a post page under gunicorn, against the bare /_bench/hello.

Run from the project root (see bench/README.md for what is measured and how):

    .venv/bin/python -m bench.public_pages
    .venv/bin/python -m bench.public_pages --rounds 3 --duration 15
    .venv/bin/python -m bench.public_pages --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python -m bench.public_pages --profile

The data set (10,000 accounts, 100,000 posts, 1,000,000 comments by default)
is built once with ``manage.py seed`` into a SQLite file under ``--cache`` and
reused while it is there. gunicorn serves ``portal:create_app()`` with two
sync workers; client processes in this script request one route at a time,
each over a new connection, for a warm-up and then a fixed duration. A page's
rate is reported as a ratio to /_bench/hello measured in the same round, so
the machine's speed and the load generator's own cost cancel out.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import multiprocessing
import os
import platform
import pstats
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HELLO = "/_bench/hello"
# Minimum ratio to /_bench/hello for each page, by label.
TARGETS = {"/": 0.25, "/posts/": 0.25, "/posts/<slug>/": 0.35}
SECRET_KEY = "bench-public-pages-" + "0" * 32
START_TIMEOUT = 60.0


# -- the data set --------------------------------------------------------------------


def default_cache(users: int, posts: int, comments: int) -> Path:
    folder = Path(tempfile.gettempdir()) / "portal-bench"
    return folder / f"public-pages-{users}-{posts}-{comments}.sqlite3"


def app_env(url: str) -> dict[str, str]:
    """The environment of every process that runs the app: development settings, no debug."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FLASK_", "MAIL_", "PORTAL_", "DATABASE_", "SECRET_"))
    }
    env.update(
        PORTAL_ENV="development",
        FLASK_DEBUG="0",
        DATABASE_URL=url,
        SECRET_KEY=SECRET_KEY,
        MAIL_TRANSPORT="console",
        PORTAL_BENCH_ROUTES="1",
    )
    return env


def manage(url: str, *args: str) -> None:
    """Run ``manage.py ARGS`` on the database at ``url``; stop the bench if it fails."""
    command = [sys.executable, "manage.py", *args]
    done = subprocess.run(command, cwd=ROOT, env=app_env(url), check=False)
    if done.returncode:
        raise SystemExit(f"`manage.py {' '.join(args)}` exited with {done.returncode}")


def seed_args(users: int, posts: int, comments: int) -> list[str]:
    return ["seed", "--users", str(users), "--posts", str(posts), "--comments", str(comments)]


def sqlite_dataset(path: Path, users: int, posts: int, comments: int) -> str:
    """Return the URL of the cached SQLite data set, building it first if it is missing.

    It is built under a temporary name and renamed at the end, so a build
    that was interrupted is never mistaken for a finished one.
    """
    if path.exists():
        print(f"Data set: reusing {path}", file=sys.stderr)
        return f"sqlite:///{path}"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    url = f"sqlite:///{partial}"
    print(f"Data set: building {path} (a few minutes, once)", file=sys.stderr)
    started = time.perf_counter()
    # `db upgrade`, not `init`: the bench must not write the project's instance/secret_key.
    manage(url, "db", "upgrade")
    manage(url, *seed_args(users, posts, comments))
    os.replace(partial, path)
    print(f"Data set: built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return f"sqlite:///{path}"


def server_dataset(url: str, users: int, posts: int, comments: int) -> str:
    """Use the database at ``url`` as it is if it has posts; else migrate and seed it."""
    from sqlalchemy import create_engine
    from sqlalchemy import inspect
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            ready = (
                inspect(connection).has_table("posts_post")
                and connection.execute(text("SELECT 1 FROM posts_post LIMIT 1")).first()
            )
    finally:
        engine.dispose()
    if ready:
        print("Data set: using the posts already in --database-url", file=sys.stderr)
        return url
    print("Data set: migrating and seeding --database-url", file=sys.stderr)
    manage(url, "db", "upgrade")
    manage(url, *seed_args(users, posts, comments))
    return url


@dataclass
class Dataset:
    users: int
    posts: int
    comments: int
    slug: str
    slug_comments: int


def describe(url: str) -> Dataset:
    """Count the rows, and pick the published post with the most approved comments."""
    from sqlalchemy import create_engine
    from sqlalchemy import func
    from sqlalchemy import select

    from portal import models
    from portal.posts import constants as POST

    engine = create_engine(url)
    try:
        with engine.connect() as connection:

            def count(model: Any) -> int:
                query = select(func.count()).select_from(model)
                return int(connection.execute(query).scalar_one())

            busiest = connection.execute(
                select(models.Post.slug, models.Post.comment_count)
                .where(models.Post.status == POST.PUBLISHED)
                .order_by(models.Post.comment_count.desc(), models.Post.id)
                .limit(1)
            ).one()
            return Dataset(
                users=count(models.User),
                posts=count(models.Post),
                comments=count(models.Comment),
                slug=busiest.slug,
                slug_comments=busiest.comment_count,
            )
    finally:
        engine.dispose()


# -- the server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """GET ``path`` over a new connection; return the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def gunicorn(url: str, workers: int) -> Iterator[tuple[int, int]]:
    """Serve the app on a free port with ``workers`` sync workers; yield the port and pid.

    The server's log must hold no traceback when it stops.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "portal:create_app()",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=app_env(url), stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            wait_until_serving(process, port, log)
            yield port, process.pid
        finally:
            process.terminate()
            process.wait(30)
            log.seek(0)
            output = log.read().decode(errors="replace")
    if "Traceback" in output:
        raise SystemExit(f"gunicorn logged an error:\n{output}")


def wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n{log.read().decode()}")
        with contextlib.suppress(OSError):
            status, body = get(port, HELLO, timeout=2)
            if status == 200 and body == b"hello":
                return
            raise SystemExit(f"{HELLO} answered {status}: is PORTAL_BENCH_ROUTES honoured?")
        time.sleep(0.1)
    raise SystemExit("gunicorn did not start serving in time")


def cpu_used(master: int) -> tuple[float, float]:
    """CPU seconds (user and system) used so far by the server and by the clients.

    The server is the gunicorn master and its workers; the clients are this
    process's other children (the load generator's processes).
    """
    tick = os.sysconf("SC_CLK_TCK")
    server = clients = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command may hold spaces: the fields we need come after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid, parent = int(stat.parent.name), int(fields[1])
            ticks = int(fields[11]) + int(fields[12])
            if master in (pid, parent):
                server += ticks
            elif parent == os.getpid():
                clients += ticks
    return server / tick, clients / tick


# -- the load ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one client process saw."""

    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # summed response time of the counted requests


def drive(port: int, path: str, start_at: float, measure_from: float, stop_at: float) -> Tally:
    """Request ``path`` back to back until ``stop_at`` (wall-clock times).

    Responses that end before ``measure_from`` are the warm-up and are not
    counted, except that every response must be a 200 whenever it comes.
    """
    tally = Tally()
    time.sleep(max(0.0, start_at - time.time()))
    while True:
        began = time.time()
        if began >= stop_at:
            return tally
        try:
            status, _body = get(port, path)
            outcome = str(status)
        except (OSError, http.client.HTTPException) as error:
            outcome = type(error).__name__
        ended = time.time()
        if outcome != "200":
            tally.failures[outcome] += 1
        elif measure_from <= ended < stop_at:
            tally.ok += 1
            tally.seconds += ended - began


@dataclass
class Measurement:
    label: str
    path: str
    requests: int
    duration: float
    failures: Counter[str]
    latency: float  # mean seconds per counted request
    cpu: float  # CPU seconds gunicorn used while the requests were counted
    client_cpu: float  # and the clients

    @property
    def rate(self) -> float:
        return self.requests / self.duration

    @property
    def cpu_per_request(self) -> float:
        return share(self.cpu, self.requests)

    @property
    def client_cpu_per_request(self) -> float:
        return share(self.client_cpu, self.requests)

    @property
    def total_cpu_per_request(self) -> float:
        return share(self.cpu + self.client_cpu, self.requests)


def measure(
    pool: ProcessPoolExecutor,
    clients: int,
    server: tuple[int, int],
    label: str,
    path: str,
    warmup: float,
    duration: float,
) -> Measurement:
    """Run ``clients`` clients on ``path`` at once: a warm-up, then ``duration`` seconds counted.

    The server's CPU time over the counted seconds is taken too: unlike the
    rate, it hardly changes when other programs compete for the cores.
    """
    port, master = server
    start_at = time.time() + 0.5  # time for every client to be handed its task
    measure_from = start_at + warmup
    stop_at = measure_from + duration
    futures = [
        pool.submit(drive, port, path, start_at, measure_from, stop_at) for _ in range(clients)
    ]
    time.sleep(max(0.0, measure_from - time.time()))
    server_before, clients_before = cpu_used(master)
    time.sleep(max(0.0, stop_at - time.time()))
    server_after, clients_after = cpu_used(master)
    tallies = [future.result() for future in futures]
    requests = sum(tally.ok for tally in tallies)
    failures: Counter[str] = Counter()
    for tally in tallies:
        failures.update(tally.failures)
    latency = sum(tally.seconds for tally in tallies) / requests if requests else 0.0
    return Measurement(
        label,
        path,
        requests,
        duration,
        failures,
        latency,
        cpu=server_after - server_before,
        client_cpu=clients_after - clients_before,
    )


def share(part: float, whole: float) -> float:
    """``part / whole``, or 0 when nothing was measured."""
    return part / whole if whole else 0.0


def cpu_ratio(hello: Measurement, page: Measurement, *, clients: bool = True) -> float:
    """The page's rate relative to hello's, as the CPU time per request predicts it.

    With ``clients``, the load generator's CPU counts too: on a machine with
    no other work, server and clients share the cores and this is the ratio
    the rates should show. Without, it is the server's cost alone.
    """
    if clients:
        return share(hello.total_cpu_per_request, page.total_cpu_per_request)
    return share(hello.cpu_per_request, page.cpu_per_request)


def run_round(
    pool: ProcessPoolExecutor,
    server: tuple[int, int],
    routes: list[tuple[str, str]],
    args: argparse.Namespace,
) -> list[Measurement]:
    results = []
    for label, path in routes:
        result = measure(pool, args.clients, server, label, path, args.warmup, args.duration)
        hello = results[0] if results else result
        failed = sum(result.failures.values())
        print(
            f"  {label:<16} {result.rate:8,.0f} req/s  ratio {share(result.rate, hello.rate):.2f}"
            f"  {result.latency * 1000:6.1f} ms  CPU ms/request: server"
            f" {result.cpu_per_request * 1000:5.2f}, with clients"
            f" {result.total_cpu_per_request * 1000:5.2f}"
            f" (ratio {cpu_ratio(hello, result):.2f})  failures {failed}",
            file=sys.stderr,
        )
        results.append(result)
    return results


# -- profiling: the pages in this process ---------------------------------------------------


def profile(url: str, routes: list[tuple[str, str]], requests: int) -> None:
    """Time each route in-process with the test client, count its SQL, then cProfile it."""
    from sqlalchemy import event

    from portal import create_app
    from portal.extensions import db

    os.environ.update(app_env(url))
    app = create_app()
    client = app.test_client()
    with app.app_context():
        engine = db.engine
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    hello_time = 0.0
    for label, path in routes:
        for _ in range(20):  # warm-up: templates compiled, caches filled
            assert client.get(path).status_code == 200, path
        statements.clear()
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            client.get(path)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        hello_time = hello_time or wall
        kinds = Counter(statement.split(None, 1)[0].upper() for statement in statements)
        sql = ", ".join(f"{number / requests:.1f} {kind}" for kind, number in kinds.most_common())
        print(
            f"{label:<16} {wall / requests * 1000:6.2f} ms wall, {cpu / requests * 1000:6.2f} ms "
            f"CPU per request ({hello_time / wall:.2f} of hello); SQL per request: {sql or 'none'}"
        )
    event.remove(engine, "before_cursor_execute", count)
    for label, path in routes[1:]:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            client.get(path)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(15)
        stats.sort_stats("cumulative").print_stats(30)
        print(f"\n== {label}: {requests} requests ==\n{out.getvalue()}")


# -- reporting ---------------------------------------------------------------------------------


def machine(url: str) -> str:
    """The cores, system and versions that the figures depend on."""
    versions = (
        f"{os.cpu_count()} cores ({platform.machine()}), {platform.system()} "
        f"{platform.release().split('-')[0]}, Python {platform.python_version()}"
    )
    if url.startswith("sqlite"):
        return f"{versions}, SQLite {sqlite3.sqlite_version}"
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            server = str(connection.execute(text("SHOW server_version")).scalar_one()).split()[0]
    finally:
        engine.dispose()
    return f"{versions}, PostgreSQL {server}"


def median_of(
    pairs: list[tuple[Measurement, Measurement]],
    value: Callable[[Measurement, Measurement], float],
) -> float:
    """The median over rounds of ``value(hello, page)``."""
    return statistics.median(value(hello, page) for hello, page in pairs)


def report(rounds: list[list[Measurement]]) -> tuple[str, bool]:
    """A Markdown table of the medians per route; and whether every target and 200 held."""
    lines = [
        "| route | req/s | ratio to hello | target | mean latency ms | server CPU ms/request "
        "| client CPU ms/request | ratio by server CPU | ratio by all CPU | non-200 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    good = True
    for position, label in enumerate(result.label for result in rounds[0]):
        pairs = [(each[0], each[position]) for each in rounds]
        ratio = median_of(pairs, lambda hello, page: share(page.rate, hello.rate))
        failures = sum(sum(page.failures.values()) for _hello, page in pairs)
        target = TARGETS.get(label)
        met = target is None or ratio >= target
        good = good and met and not failures
        shown = "" if target is None else f">= {target:.2f} {'met' if met else '**missed**'}"
        cells = [
            f"`{label}`",
            f"{median_of(pairs, lambda hello, page: page.rate):,.0f}",
            f"{ratio:.2f}",
            shown,
            f"{median_of(pairs, lambda hello, page: page.latency) * 1000:.1f}",
            f"{median_of(pairs, lambda hello, page: page.cpu_per_request) * 1000:.2f}",
            f"{median_of(pairs, lambda hello, page: page.client_cpu_per_request) * 1000:.2f}",
            f"{median_of(pairs, lambda hello, page: cpu_ratio(hello, page, clients=False)):.2f}",
            f"{median_of(pairs, cpu_ratio):.2f}",
            str(failures),
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines), good


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--comments", type=int, default=1_000_000)
    parser.add_argument(
        "--cache",
        type=Path,
        help="the SQLite data set, built if missing (default: a file under the temp folder "
        "named after the sizes)",
    )
    parser.add_argument(
        "--database-url",
        help="use this database (PostgreSQL) instead of the SQLite file; seeded if it has no posts",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before counting")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted per route")
    parser.add_argument("--rounds", type=int, default=3, help="repeat and report the median")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: time and profile each page in this process",
    )
    parser.add_argument("--profile-requests", type=int, default=300)
    args = parser.parse_args(argv)

    if args.database_url:
        url = server_dataset(args.database_url, args.users, args.posts, args.comments)
    else:
        cache = args.cache or default_cache(args.users, args.posts, args.comments)
        url = sqlite_dataset(cache, args.users, args.posts, args.comments)
    data = describe(url)
    routes = [
        ("hello", HELLO),
        ("/", "/"),
        ("/posts/", "/posts/"),
        ("/posts/<slug>/", f"/posts/{data.slug}/"),
    ]
    if args.profile:
        profile(url, routes, args.profile_requests)
        return

    rounds: list[list[Measurement]] = []
    context = multiprocessing.get_context("spawn")
    with (
        gunicorn(url, args.workers) as server,
        ProcessPoolExecutor(args.clients, mp_context=context) as pool,
    ):
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds}:", file=sys.stderr)
            rounds.append(run_round(pool, server, routes, args))
    table, good = report(rounds)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    database = "SQLite file" if not args.database_url else make_safe(args.database_url)
    print(f"{date}; {machine(url)}; load average at the end {load}")
    print(
        f"{database}: {data.users:,} accounts, {data.posts:,} posts, {data.comments:,} comments; "
        f"the post page is /posts/{data.slug}/ ({data.slug_comments:,} approved comments)"
    )
    print(
        f"gunicorn {args.workers} sync workers; {args.clients} client processes, a new "
        f"connection per request; {args.warmup:g} s warm-up, {args.duration:g} s counted "
        f"per route; median of {args.rounds} round(s)\n"
    )
    print(table)
    if not good:
        raise SystemExit(1)


def make_safe(url: str) -> str:
    """The URL without its password, to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
