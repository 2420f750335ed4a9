"""Real-browser fixtures: the app on a loopback port, driven by Chromium through Playwright."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import ConsoleMessage
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from portal.emails.queue import deliver_batch
from portal.emails.transports import outbox
from tests import factories
from tests.conftest import POSTGRES_URL
from tests.conftest import reachable

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class LiveServer:
    """The app served over real HTTP, and its memory outbox."""

    app: Flask
    url: str

    def deliver_mail(self) -> list[EmailMessage]:
        """Run the outbox worker once and return every message delivered so far."""
        with self.app.app_context():
            deliver_batch()
        return outbox(self.app)


@dataclass
class ConsoleErrors:
    """Console errors of a page (CSP violations, failed loads) and uncaught exceptions."""

    messages: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url") or (message.page.url if message.page else "?")
        self.messages.append(f"{message.text} (at {where})")

    def on_page_error(self, error: PlaywrightError) -> None:
        self.messages.append(f"uncaught: {error.message}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests commit for real, and drop static-file handles the dev server leaves open.

    The live server answers from its own thread, which cannot share the
    test's transaction. When Chromium abandons a request (a favicon
    revalidated with 304, say), Werkzeug's development server never closes
    the file it opened. That is a property of the test server, not of the
    app, which production serves with gunicorn.
    """
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.commits)
            item.add_marker(pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"))


@pytest.fixture
def backend() -> str:
    """One database for each browser flow: PostgreSQL, as in production, where there is one.

    A flow tests screens and what a person does with them; what the database
    does under them is tested on both backends through HTTP. In CI PostgreSQL
    must be there, as for every other test; elsewhere the flows fall back to
    SQLite rather than not run.
    """
    return "postgresql" if IN_CI or reachable(POSTGRES_URL, 5432) else "sqlite"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium: skip without it, but fail in CI, where it must be installed."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    message = f"Chromium is not installed at {CHROMIUM}"
    if IN_CI:
        pytest.fail(f"{message}; CI requires it.")
    pytest.skip(message)


@pytest.fixture(scope="session")
def playwright(chromium_path: str) -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def chromium(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """Serve the app on a free loopback port; its email links point at that port.

    The socket is bound first (port 0), so the port is known before
    ``PORTAL_BASE_URL`` is set and serving starts.
    """
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PORTAL_BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(app=app, url=url)
    server.shutdown()  # serve_forever closes the socket as it returns
    thread.join(timeout=10)
    assert not thread.is_alive(), "the live server did not stop"
    # Collect what the server thread dropped while this test's filters apply.
    gc.collect()


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


# Reports every CSP violation of every document to Python. Init scripts are
# injected by the browser itself, so the policy under test does not block them.
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} on ${event.documentURI}`
  );
});
"""


def watch_csp(context: BrowserContext, violations: list[str]) -> None:
    """Collect the CSP violations of every page in ``context`` into ``violations``."""

    def report(violation: str) -> None:
        violations.append(violation)

    context.expose_function("reportCspViolation", report)
    context.add_init_script(script=CSP_WATCH)


@pytest.fixture
def csp_violations(page: Page) -> list[str]:
    """The CSP violations of every document ``page`` loads."""
    violations: list[str] = []
    watch_csp(page.context, violations)
    return violations


@pytest.fixture
def page(
    chromium: Browser, live_server: LiveServer, console_errors: ConsoleErrors
) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies) that records console errors."""
    context = chromium.new_context(base_url=live_server.url)
    tab = context.new_page()
    tab.on("console", console_errors.on_console)
    tab.on("pageerror", console_errors.on_page_error)
    yield tab
    context.close()


def sign_in(page: Page, email: str, name: str, next_path: str) -> None:
    """Sign in through the form as a factory account, and wait for the page it lands on."""
    page.goto(f"/users/login/?next={next_path}")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # The site shows it as a status, Flask-Admin as a plain alert.
    expect(page.get_by_text(f"Welcome back, {name}.")).to_be_visible()
    # Flask-Admin's handlers call its scripts, which load at the end of the page.
    page.wait_for_load_state("load")
