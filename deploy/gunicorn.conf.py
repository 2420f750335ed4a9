"""Gunicorn settings for Portal behind nginx or Apache: ``gunicorn -c deploy/gunicorn.conf.py``.

The environment (the same file the app reads, e.g. /etc/portal/portal.env)
may set ``PORTAL_WEB_BIND`` and ``PORTAL_WEB_WORKERS``. Under systemd with
``portal-web.socket``, gunicorn takes the socket systemd hands it and the
bind setting is not used.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

wsgi_app = "portal:create_app()"

# A Unix socket only the front proxy can reach (see umask).
bind = [os.environ.get("PORTAL_WEB_BIND", "unix:/run/portal/web.sock")]

# Sync workers: the proxy buffers requests and answers, so a slow client
# never holds one. The usual rule of thumb, unless set.
workers = int(os.environ.get("PORTAL_WEB_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
worker_class = "sync"

# A request running longer than this is killed (EXPORT_TIME_LIMIT stops
# exports before it); on SIGTERM or a reload, requests in flight get as long.
timeout = 30
graceful_timeout = 30

# The socket file: its owner and group (nginx's, www-data) may connect.
umask = 0o007

# Not preloaded: SIGHUP (systemctl reload) then starts workers on the new code,
# which fingerprint the new static files.
preload_app = False

# Access lines come from the app (one JSON line per request, with its request
# id); gunicorn's own access log would repeat each of them.
accesslog = None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server):
    """Drop metrics files of processes that are gone; mail workers' live files stay."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*_*.db"):
        pid = stale.stem.rpartition("_")[2]
        if pid.isdigit() and not _running(int(pid)):
            stale.unlink(missing_ok=True)


def child_exit(server, worker):
    """Tell the metrics a worker is gone; its counters still count in /metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
