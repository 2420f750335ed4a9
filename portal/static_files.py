"""Static files under content-hashed names, so browsers and proxies keep them for a year.

``url_for("static", filename="css/portal.css")`` gives
``/static/css/portal.<12 hex>.css``, the hex being the start of the file's
SHA-256. A changed file gets a new name, so the old one may be cached as
``immutable``. The app still serves every name itself (development, tests, a
site without a front proxy): a current fingerprint gets the long cache; the
plain name, or a fingerprint that no longer matches the file (a page cached
before a deploy), gets the file with a short cache. In production nginx or
Apache serves ``/static/`` from the same folder and maps a fingerprinted name
back to the file by the same pattern (see ``deploy/``).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask import Response
from flask import current_app
from flask import send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join

EXTENSION = "portal.static_files"
DIGEST_LENGTH = 12
# One year: the longest lifetime caches honour, for names that change with their content.
LONG_MAX_AGE = 365 * 24 * 3600
# ``stem.<digest>.suffix``; the front proxies' configs use the same pattern.
FINGERPRINTED = re.compile(
    rf"(?P<stem>.+)\.(?P<digest>[0-9a-f]{{{DIGEST_LENGTH}}})(?P<suffix>\.[A-Za-z0-9]+)"
)
# Only names with a suffix get a fingerprint: the proxies match on it.
SUFFIX = re.compile(r"(?P<stem>.+?)(?P<suffix>\.[A-Za-z0-9]+)")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Resolved:
    """The file a requested name stands for, and whether its fingerprint is current."""

    filename: str
    current: bool


class StaticFingerprints:
    """The fingerprints of one static folder, each computed once per process.

    With ``watch`` (development), a file whose size or modification time
    changed is hashed again, so an edited stylesheet gets a new name without
    a restart.
    """

    def __init__(self, folder: str, *, watch: bool = False) -> None:
        self.folder = folder
        self.watch = watch
        self._digests: dict[str, tuple[tuple[int, int] | None, str | None]] = {}

    def digest(self, filename: str) -> str | None:
        """Return the file's fingerprint, or None when there is no such file."""
        cached = self._digests.get(filename)
        if cached is not None and not self.watch:
            return cached[1]
        path = safe_join(self.folder, filename)
        stamp = _stamp(path) if path is not None else None
        if cached is not None and cached[0] == stamp:
            return cached[1]
        value = _hash_file(path) if path is not None and stamp is not None else None
        if value is None:
            # A name that is no file is not remembered: requests could name endlessly many.
            self._digests.pop(filename, None)
            return None
        self._digests[filename] = (stamp, value)
        return value

    def hashed_name(self, filename: str) -> str:
        """Return the fingerprinted name of ``filename`` (the name itself if it has none)."""
        match = SUFFIX.fullmatch(filename)
        if match is None or FINGERPRINTED.fullmatch(filename):
            return filename
        value = self.digest(filename)
        if value is None:
            return filename
        return f"{match['stem']}.{value}{match['suffix']}"

    def resolve(self, requested: str) -> Resolved:
        """Map a requested name back to its file; a plain name is never "current"."""
        match = FINGERPRINTED.fullmatch(requested)
        if match is not None:
            original = match["stem"] + match["suffix"]
            value = self.digest(original)
            if value is not None:
                return Resolved(original, current=value == match["digest"])
        return Resolved(requested, current=False)


def _stamp(path: str) -> tuple[int, int] | None:
    """Return the file's size and modification time, or None if it is not a file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns


def _hash_file(path: str) -> str | None:
    """Return the first hex digits of the file's SHA-256."""
    try:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256")
    except OSError:
        return None
    return digest.hexdigest()[:DIGEST_LENGTH]


def fingerprints() -> StaticFingerprints:
    """Return the current app's fingerprints."""
    found: StaticFingerprints = current_app.extensions[EXTENSION]
    return found


def add_fingerprint(endpoint: str, values: dict[str, Any]) -> None:
    """Give ``url_for("static", filename=...)`` the file's fingerprinted name."""
    if endpoint != "static":
        return
    filename = values.get("filename")
    if isinstance(filename, str):
        values["filename"] = fingerprints().hashed_name(filename)


def serve_static(filename: str) -> Response:
    """Send a static file by its plain or fingerprinted name, cached as long as is safe."""
    folder = current_app.static_folder
    if folder is None:
        raise NotFound()
    resolved = fingerprints().resolve(filename)
    short = int(current_app.config.get("STATIC_MAX_AGE", 0))
    max_age = LONG_MAX_AGE if resolved.current else short
    # Werkzeug marks a positive max_age public; 0 leaves the browser to revalidate.
    response = send_from_directory(folder, resolved.filename, max_age=max_age)
    if max_age <= 0:
        response.cache_control.no_cache = True
    if resolved.current:
        response.cache_control.immutable = True
    return response


def init_static_files(app: Flask) -> None:
    """Fingerprint the app's static URLs and serve both kinds of name."""
    if app.static_folder is None or "static" not in app.view_functions:
        return
    app.extensions[EXTENSION] = StaticFingerprints(app.static_folder, watch=app.debug)
    app.url_defaults(add_fingerprint)
    app.view_functions["static"] = serve_static
