"""Search speed: /posts/?q= against the plain list page /posts/, under gunicorn, over 100,000 posts.

Run from the project root (see bench/README.md for what is measured and how):

    .venv/bin/python -m bench.search
    .venv/bin/python -m bench.search --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python -m bench.search --profile

The target: a search costs at most three times the list page, so each search
route's rate is at least a third of /posts/'s, measured in the same round.
The data set (10,000 accounts, 100,000 posts, 100,000 comments by default) is
built with ``manage.py seed`` as bench/public_pages.py builds its own, and
migrated to the newest revision before each run, so its search index exists.
The queries are chosen to be hard: words the seed puts in thousands of posts
(every one of them past the number of posts search ranks), a phrase, words
from titles and bodies together, and a word no post holds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine
from sqlalchemy import text

from bench import public_pages as bench
from bench.public_pages import HELLO
from bench.public_pages import Measurement
from bench.public_pages import share

# (label, query): the seed's bodies and titles come from fixed lists, so each
# of these words is in thousands of posts.
QUERIES = [
    ("common word", "limits"),
    ("two words", "simple plan"),
    ("phrase", '"know where your limits are"'),
    ("title and body", "caching decision"),
    ("no match", "xylophone"),
]
# A search may cost at most this many times the list page.
BUDGET = 3.0


def search_path(query: str) -> str:
    return "/posts/?" + urlencode({"q": query})


def report(rounds: list[list[Measurement]]) -> tuple[str, bool]:
    """A Markdown table of the medians; and whether every search met the budget."""
    import statistics

    lines = [
        "| route | req/s | ratio to /posts/ | target | mean latency ms | server CPU ms/request "
        "| cost by server CPU, × /posts/ | non-200 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    good = True
    for position, label in enumerate(result.label for result in rounds[0]):
        if position == 0:
            continue  # hello: only there for the server's warm-up and sanity
        pages = [each[position] for each in rounds]
        lists = [each[1] for each in rounds]
        pairs = list(zip(pages, lists, strict=True))
        ratio = statistics.median(share(page.rate, plain.rate) for page, plain in pairs)
        cost = statistics.median(
            share(page.cpu_per_request, plain.cpu_per_request) for page, plain in pairs
        )
        failures = sum(sum(page.failures.values()) for page in pages)
        is_search = position > 1
        met = not is_search or ratio >= 1 / BUDGET
        good = good and met and not failures
        target = f">= {1 / BUDGET:.2f} {'met' if met else '**missed**'}" if is_search else ""
        cells = [
            f"`{label}`",
            f"{statistics.median(page.rate for page in pages):,.0f}",
            f"{ratio:.2f}",
            target,
            f"{statistics.median(page.latency for page in pages) * 1000:.1f}",
            f"{statistics.median(page.cpu_per_request for page in pages) * 1000:.2f}",
            f"{cost:.2f}",
            str(failures),
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines), good


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--cache", type=Path, help="the SQLite data set, built if missing")
    parser.add_argument(
        "--database-url",
        help="use this database (PostgreSQL) instead of the SQLite file; seeded if it has no posts",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before counting")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted per route")
    parser.add_argument("--rounds", type=int, default=1, help="repeat and report the median")
    parser.add_argument(
        "--profile", action="store_true", help="instead: time and profile each page in-process"
    )
    parser.add_argument("--profile-requests", type=int, default=200)
    args = parser.parse_args(argv)

    if args.database_url:
        url = bench.server_dataset(args.database_url, args.users, args.posts, args.comments)
    else:
        cache = args.cache or bench.default_cache(args.users, args.posts, args.comments)
        url = bench.sqlite_dataset(cache, args.users, args.posts, args.comments)
    # A data set built before the search index existed gets it now (once).
    bench.manage(url, "db", "upgrade")
    if args.database_url:
        # As autovacuum would have by now: without statistics the planner takes
        # a word found in 10,000 posts for a rare one and reads every match.
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
        engine.dispose()
    data = bench.describe(url)
    routes = [("hello", HELLO), ("/posts/", "/posts/")]
    routes += [(f"?q= {label}", search_path(query)) for label, query in QUERIES]
    if args.profile:
        bench.profile(url, routes, args.profile_requests)
        return

    rounds: list[list[Measurement]] = []
    context = multiprocessing.get_context("spawn")
    with (
        bench.gunicorn(url, args.workers) as server,
        ProcessPoolExecutor(args.clients, mp_context=context) as pool,
    ):
        for number in range(1, args.rounds + 1):
            print(f"round {number} of {args.rounds}:", file=sys.stderr)
            rounds.append(bench.run_round(pool, server, routes, args))
    table, good = report(rounds)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    database = "SQLite file" if not args.database_url else bench.make_safe(args.database_url)
    print(f"{date}; {bench.machine(url)}; load average at the end {load}")
    print(f"{database}: {data.users:,} accounts, {data.posts:,} posts")
    print("queries: " + "; ".join(f"{label}: {query}" for label, query in QUERIES))
    print(
        f"gunicorn {args.workers} sync workers; {args.clients} client processes; "
        f"{args.warmup:g} s warm-up, {args.duration:g} s counted per route; "
        f"median of {args.rounds} round(s)\n"
    )
    print(table)
    if not good:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
