"""A real OpenID Connect provider for the tests: node-oidc-provider on a loopback port.

``running_provider`` installs the provider's packages when they are missing
(``npm ci``), starts ``tests/oidc_provider/provider.mjs`` with one
confidential client, waits for its ready line and stops it afterwards.
``Provider.authorize`` plays the person at the provider over HTTP: it signs
in on the development login form and consents, and returns the redirect
back to the app. Without Node the tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
IN_CI = os.environ.get("CI", "").lower() == "true"
CLIENT_ID = "portal"
CLIENT_SECRET = "portal-test-client-secret-0123456789abcdef"
READY_TIMEOUT = 30
INSTALL_TIMEOUT = 300
FORM_RE = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message}; CI requires it.")
    pytest.skip(message)


def node_command() -> tuple[str, str]:
    """Return the paths of node and npm: skip without them, but fail in CI."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _missing("Node.js and npm are not installed")
    assert node is not None and npm is not None
    return node, npm


def install(npm: str) -> None:
    """Install the provider's locked packages once (``npm ci``) if they are missing."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(PROVIDER_DIR)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        _missing(f"npm ci failed in {PROVIDER_DIR.name}: {result.stderr.strip()[-500:]}")


@dataclass
class Provider:
    """The running provider: its issuer and the accounts a test gives it."""

    issuer: str

    def settings(self, name: str = "test", label: str = "Test ID") -> dict[str, Any]:
        """Return an ``OIDC_PROVIDERS`` entry for this provider."""
        return {
            "name": name,
            "label": label,
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }

    def add_account(
        self, *, email: str | None, email_verified: Any = True, name: str | None = "Pat Doe"
    ) -> str:
        """Create an account at the provider with these claims; return its login (its sub)."""
        login = f"person-{uuid.uuid4().hex[:12]}"
        claims: dict[str, Any] = {"login": login, "email_verified": email_verified}
        if email is not None:
            claims["email"] = email
        if name is not None:
            claims["name"] = name
        response = requests.post(f"{self.issuer}/_test/accounts", json=claims, timeout=10)
        assert response.status_code == 201, response.text
        return login

    def authorize(
        self, authorization_url: str, login: str, *, back_to: str, cancel: bool = False
    ) -> str:
        """Sign in as ``login`` and consent (or cancel); return the URL sent back to the app.

        ``back_to`` is the start of the app's callback URL: the first redirect
        there ends the round trip.
        """
        assert authorization_url.startswith(self.issuer + "/"), authorization_url
        with requests.Session() as browser:
            url = authorization_url
            for _ in range(12):
                response = browser.get(url, allow_redirects=False, timeout=10)
                while response.is_redirect:
                    url = urljoin(url, response.headers["Location"])
                    if url.startswith(back_to):
                        return url
                    response = browser.get(url, allow_redirects=False, timeout=10)
                assert response.status_code == 200, (response.status_code, response.text[:500])
                if cancel:
                    abort = re.search(r'<a href="([^"]+/abort)"', response.text)
                    assert abort, response.text[:500]
                    url = urljoin(url, unescape(abort.group(1)))
                    continue
                url = self._submit(browser, url, response.text, login)
                if url.startswith(back_to):
                    return url
        raise AssertionError("the provider never sent the browser back")

    @staticmethod
    def _submit(browser: requests.Session, url: str, page: str, login: str) -> str:
        """Post the page's login or consent form; return where it redirects."""
        match = FORM_RE.search(page)
        assert match, page[:500]
        action, body = urljoin(url, unescape(match.group(1))), match.group(2)
        data = {name: unescape(value) for name, value in HIDDEN_RE.findall(body)}
        if data.get("prompt") == "login":
            data.update(login=login, password="any password")
        response = browser.post(action, data=data, allow_redirects=False, timeout=10)
        assert response.is_redirect, (response.status_code, response.text[:500])
        return urljoin(action, response.headers["Location"])


def _wait_ready(process: subprocess.Popen[str], errors: Path) -> str:
    """Return the issuer from the provider's ready line."""
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("ready "):
                return line.split(" ", 1)[1].strip()
    raise AssertionError(f"the OpenID provider did not start: {errors.read_text()[-2000:]}")


@contextmanager
def running_provider(redirect_uris: list[str]) -> Iterator[Provider]:
    """Run the provider on a free loopback port with a client for ``redirect_uris``."""
    node, npm = node_command()
    install(npm)
    env = {
        **os.environ,
        "OIDC_TEST_CLIENT_ID": CLIENT_ID,
        "OIDC_TEST_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_TEST_REDIRECT_URIS": ",".join(redirect_uris),
        "OIDC_TEST_ACCOUNTS": json.dumps({}),
    }
    with tempfile.TemporaryDirectory() as folder:
        errors = Path(folder) / "stderr.txt"
        with errors.open("w") as stderr:
            process = subprocess.Popen(
                [node, str(PROVIDER_DIR / "provider.mjs"), "0"],
                cwd=PROVIDER_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
            try:
                yield Provider(issuer=_wait_ready(process, errors))
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
                assert process.stdout is not None
                process.stdout.close()
