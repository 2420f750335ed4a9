"""CSV export speed: rows per second of the comments and accounts exports.

Run from the project root (see bench/README.md for what is measured and how):

    .venv/bin/python -m bench.exports
    .venv/bin/python -m bench.exports --backends sqlite --sizes 100000
    .venv/bin/python -m bench.exports --rounds 3

The data sets are the ones ``bench.admin_lists`` builds (that many accounts
and that many comments), built once and kept. An admin downloads each whole
export through the app in this process, reading the streamed body chunk by
chunk as a client would; the rate is rows over the seconds from the request
to the last byte. The target is at least 50,000 rows a second, so that a
million rows stream well within gunicorn's default 30-second worker timeout.
The bench stops if a download is not a 200, does not hold every row, or ends
with the "export incomplete" marker.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from flask.testing import FlaskClient

from bench.admin_lists import DEFAULT_POSTGRES_URL
from bench.admin_lists import ROOT
from bench.admin_lists import database
from bench.admin_lists import signed_in
from portal import create_app
from portal.extensions import db

EXPORTS = {"comments": "/admin/comment/export/csv/", "accounts": "/admin/user/export/csv/"}
TARGET = 50_000
INCOMPLETE = b"# export incomplete"


@dataclass(frozen=True)
class Measure:
    backend: str
    size: int
    export: str
    rows: int
    megabytes: float
    seconds: float
    first_byte_ms: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def download(client: FlaskClient, path: str) -> tuple[int, int, float, float]:
    """Stream one export; return its data rows, bytes, seconds and ms to the first chunk."""
    started = time.perf_counter()
    response = client.get(path, buffered=False)
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    first = None
    lines = size = 0
    tail = b""
    for chunk in response.response:
        if first is None:
            first = time.perf_counter()
        lines += chunk.count(b"\n")
        size += len(chunk)
        tail = (tail + chunk)[-200:]
    response.close()
    seconds = time.perf_counter() - started
    if INCOMPLETE in tail:
        raise SystemExit(f"{path} ended with {tail.decode(errors='replace').strip()!r}")
    return lines - 1, size, seconds, ((first or started) - started) * 1000


def measure(backend: str, size: int, url: str, rounds: int) -> list[Measure]:
    app = create_app(
        {
            "PORTAL_ENV": "development",
            "SQLALCHEMY_DATABASE_URI": url,
            "DEBUG": False,
            "WTF_CSRF_ENABLED": False,
            # The bench measures the stream; the time limit would end it early.
            "EXPORT_TIME_LIMIT": 0,
        }
    )
    client = signed_in(app)
    results = []
    for name, path in EXPORTS.items():
        runs = [download(client, path) for _ in range(rounds)]
        rows = {run[0] for run in runs}
        if len(rows) != 1 or min(rows) < size:
            raise SystemExit(f"{path} held {sorted(rows)} rows, expected at least {size:,}")
        seconds = statistics.median(run[2] for run in runs)
        results.append(
            Measure(
                backend,
                size,
                name,
                rows.pop(),
                runs[0][1] / 1e6,
                seconds,
                statistics.median(run[3] for run in runs),
            )
        )
        print(f"{backend} {size:,} {name}: {results[-1].rate:,.0f} rows/s", flush=True)
    with app.app_context():
        db.engine.dispose()
    return results


def report(results: list[Measure]) -> str:
    lines = [
        "| backend | export | rows | MB | seconds | rows/s | first chunk ms | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        verdict = "met" if r.rate >= TARGET else "**missed**"
        lines.append(
            f"| {r.backend} | {r.export} | {r.rows:,} | {r.megabytes:.1f} | {r.seconds:.2f} | "
            f"{r.rate:,.0f} | {r.first_byte_ms:.0f} | >= {TARGET:,} {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3, help="downloads per export (median)")
    parser.add_argument("--cache", type=Path, default=ROOT / "instance" / "bench")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    options = parser.parse_args(argv)

    results: list[Measure] = []
    for backend in options.backends:
        for size in options.sizes:
            with database(backend, size, options.cache, options.postgres_url) as url:
                results.extend(measure(backend, size, url, options.rounds))
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(report(results))


if __name__ == "__main__":
    main()
