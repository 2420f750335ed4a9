"""Admin list speed: the comments and accounts lists at 10,000 and at 1,000,000 rows.

Run from the project root (see bench/README.md for what is measured and how):

    .venv/bin/python -m bench.admin_lists
    .venv/bin/python -m bench.admin_lists --backends sqlite --sizes 10000 100000
    .venv/bin/python -m bench.admin_lists --requests 50

For each size a database is filled once with ``manage.py seed`` (that many
accounts and that many comments, on a hundredth as many posts) and kept: a
SQLite file under ``--cache``, a schema of its own on PostgreSQL. An admin
then opens page 1 of each list through the app in this process, a warm-up and
then ``--requests`` times; the median is reported, and the ratio of the big
table's median to the small one's. The target is a ratio of at most 1.5, and
the same number of SQL statements at page size 20 and 100.

S5, search: each list is also searched for a few phrases people type ("User
4", "example.com", a word found nowhere); at the largest size on PostgreSQL
a search answers in at most 1 s and at most 10 times the plain list.

``--fast-fill`` builds the PostgreSQL data sets with ``generate_series``
INSERTs (minutes rather than hours at a million rows) after the demo
accounts from ``manage.py seed``; the rows look like the seed's.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text

from portal import create_app
from portal.extensions import db

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN = ("admin@example.com", "admin-portal-demo-1")
LISTS = {"comments": "/admin/comment/", "accounts": "/admin/user/", "emails": "/admin/email/"}
TARGET = 1.5
# S5: what staff type, and a word no row holds (the search that reads the most).
SEARCHES = ("User 4", "example.com", "zqxj")
SEARCH_LIMIT_MS = 1000
SEARCH_RATIO = 10


@dataclass(frozen=True)
class Measure:
    backend: str
    size: int
    page: str
    median_ms: float
    statements_20: int
    statements_100: int
    search_ms: dict[str, float]


def seed(url: str, size: int) -> None:
    """Fill the database at ``url`` with ``size`` accounts and ``size`` comments."""
    env = {**os.environ, "DATABASE_URL": url, "PORTAL_ENV": "development", "FLASK_DEBUG": "0"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "db", "upgrade"], env=env, check=True, cwd=ROOT)
    args = ["seed", "--users", str(size), "--posts", str(max(size // 100, 100))]
    subprocess.run([*manage, *args, "--comments", str(size)], env=env, check=True, cwd=ROOT)


# Rows like the seed's, a million in a few minutes: accounts, posts on a hundredth
# as many, comments and queued messages. The demo accounts come from the seed first.
FAST_FILL = (
    """
    INSERT INTO users_user (name, email, handle, password_hash, role, status, session_version,
                            created_at, login_count, notify_comments, notify_new_device)
    SELECT 'Demo User ' || n, 'demo' || n || '@example.com', 'demo-user-' || n, '!', 2, 2, 1,
           now() - n * interval '30 seconds', 0, true, false
    FROM generate_series(1, :size) AS n
    """,
    """
    INSERT INTO posts_post (author_id, title, slug, body, body_html, status, comment_count,
                            created_at, updated_at, published_at)
    SELECT u.id, 'Notes on topic ' || n, 'notes-on-topic-' || n, 'Body ' || n,
           '<p>Body ' || n || '</p>', 1, 0, now() - n * interval '1 hour',
           now() - n * interval '1 hour', now() - n * interval '1 hour'
    FROM generate_series(1, :posts) AS n
    JOIN users_user u ON u.email = 'demo' || n || '@example.com'
    """,
    """
    INSERT INTO comments_comment (post_id, author_id, body, body_html, status, created_at,
                                  updated_at)
    SELECT p.id, u.id, 'Comment ' || n, '<p>Comment ' || n || '</p>', n % 3,
           now() - n * interval '10 seconds', now() - n * interval '10 seconds'
    FROM generate_series(1, :size) AS n
    JOIN posts_post p ON p.slug = 'notes-on-topic-' || (1 + n % :posts)
    JOIN users_user u ON u.email = 'demo' || (1 + n % :size) || '@example.com'
    """,
    """
    INSERT INTO emails_email (to_address, from_address, subject, text_body, message_id,
                              sensitive, state, priority, scheduled_at, next_attempt_at,
                              attempts, max_attempts, created_at)
    SELECT 'demo' || n || '@example.com', 'portal@example.com', 'Digest number ' || n, 'Hello',
           '<' || n || '.bench@example.com>', false, 2, 1, now(), now(), 1, 5,
           now() - n * interval '10 seconds'
    FROM generate_series(1, :size) AS n
    """,
)


def fast_fill(url: str, size: int) -> None:
    """Fill PostgreSQL at ``url`` with ``size`` accounts, comments and messages, in SQL."""
    env = {**os.environ, "DATABASE_URL": url, "PORTAL_ENV": "development", "FLASK_DEBUG": "0"}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "db", "upgrade"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "seed"], env=env, check=True, cwd=ROOT)
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in FAST_FILL:
            connection.execute(text(statement), {"size": size, "posts": max(size // 100, 100)})
    engine.dispose()


def has_rows(url: str, size: int) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            users = connection.execute(text("SELECT count(*) FROM users_user")).scalar_one()
            comments = connection.execute(
                text("SELECT count(*) FROM comments_comment")
            ).scalar_one()
    except Exception:  # noqa: BLE001 - no tables yet: build them
        return False
    finally:
        engine.dispose()
    return users >= size and comments >= size


@contextmanager
def database(
    backend: str, size: int, cache: Path, postgres_url: str, fast: bool = False
) -> Iterator[str]:
    """Yield the URL of a database holding the data set for ``size``, building it once."""
    if backend == "sqlite":
        cache.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{cache / f'admin-lists-{size}.db'}"
    else:
        schema = f"bench_admin_{size}"
        engine = create_engine(postgres_url)
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        engine.dispose()
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    if not has_rows(url, size):
        print(f"building the {backend} data set for {size:,} rows (once)...", flush=True)
        if fast and backend == "postgresql":
            fast_fill(url, size)
        else:
            seed(url, size)
    if backend == "postgresql":
        # As autovacuum would have by now: statistics, and the visibility map
        # that index-only scans rely on.
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
        engine.dispose()
    yield url


def signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    response = client.post("/users/login/", data={"email": ADMIN[0], "password": ADMIN[1]})
    if response.status_code != 302:
        raise SystemExit(f"signing in as the demo admin answered {response.status_code}")
    return client


def statements(app: Flask, client: FlaskClient, path: str) -> int:
    count = 0

    def counter(*args: Any) -> None:
        nonlocal count
        count += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        response = client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    return count


def timed(client: FlaskClient, path: str, requests: int, **query: str) -> float:
    """Return the median milliseconds of ``requests`` GETs of ``path`` after one warm-up."""
    client.get(path, query_string=query)
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path, query_string=query)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} {query} answered {response.status_code}")
    return statistics.median(timings)


def measure(backend: str, size: int, url: str, requests: int) -> list[Measure]:
    app = create_app(
        {
            "PORTAL_ENV": "development",
            "SQLALCHEMY_DATABASE_URI": url,
            "DEBUG": False,
            # The bench signs in without a form page to read a token from.
            "WTF_CSRF_ENABLED": False,
        }
    )
    client = signed_in(app)
    results = []
    for name, path in LISTS.items():
        for _ in range(3):
            client.get(path)
        searched = {
            phrase: timed(client, path, max(requests // 3, 3), search=phrase) for phrase in SEARCHES
        }
        results.append(
            Measure(
                backend,
                size,
                name,
                timed(client, path, requests),
                statements(app, client, f"{path}?page_size=20"),
                statements(app, client, f"{path}?page_size=100"),
                searched,
            )
        )
    with app.app_context():
        db.engine.dispose()
    return results


def report(results: list[Measure], sizes: list[int]) -> str:
    small, big = min(sizes), max(sizes)
    lines = [
        f"| backend | list | page 1 at {small:,} | page 1 at {big:,} | ratio | "
        "statements at 20 / 100 |",
        "|---|---|---|---|---|---|",
    ]
    for backend in dict.fromkeys(result.backend for result in results):
        for page in LISTS:
            rows = {r.size: r for r in results if r.backend == backend and r.page == page}
            ratio = rows[big].median_ms / rows[small].median_ms
            verdict = "ok" if ratio <= TARGET else "over target"
            lines.append(
                f"| {backend} | {page} | {rows[small].median_ms:.1f} ms | "
                f"{rows[big].median_ms:.1f} ms | {ratio:.2f} ({verdict}) | "
                f"{rows[big].statements_20} / {rows[big].statements_100} |"
            )
    lines += [
        "",
        f"S5, search at {big:,} (target: at most {SEARCH_LIMIT_MS} ms on PostgreSQL "
        f"and {SEARCH_RATIO}x the plain list)",
        "",
        "| backend | list | plain | " + " | ".join(f"“{p}”" for p in SEARCHES) + " | verdict |",
        "|---|---|---|" + "---|" * len(SEARCHES) + "---|",
    ]
    for result in results:
        if result.size != big:
            continue
        worst = max(result.search_ms.values())
        met = worst <= SEARCH_LIMIT_MS and worst <= SEARCH_RATIO * result.median_ms
        verdict = "ok" if met else ("over target" if result.backend == "postgresql" else "-")
        lines.append(
            f"| {result.backend} | {result.page} | {result.median_ms:.1f} ms | "
            + " | ".join(f"{result.search_ms[p]:.1f} ms" for p in SEARCHES)
            + f" | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--cache", type=Path, default=ROOT / "instance" / "bench")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument(
        "--fast-fill", action="store_true", help="build PostgreSQL data sets in SQL"
    )
    options = parser.parse_args(argv)

    results: list[Measure] = []
    for backend in options.backends:
        for size in options.sizes:
            with database(
                backend, size, options.cache, options.postgres_url, options.fast_fill
            ) as url:
                results.extend(measure(backend, size, url, options.requests))
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(report(results, options.sizes))


if __name__ == "__main__":
    main()
