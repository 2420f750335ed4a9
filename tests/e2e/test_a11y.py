"""Every page passes axe-core and the Nu HTML Checker, for every role, in a real browser.

The pages come from the app's URL map: every GET route, its arguments filled
from seeded rows, so a new page is checked the day it is added (and a route
whose arguments no sample fills fails until one is named here). Routes that
serve no HTML page are excluded, each with its reason.

Each role (anonymous, USER, STAFF, ADMIN) walks every page in its own
browser context, under the real CSP: axe is injected as an init script (the
browser's own, which the policy does not govern). It also sees the pages with
a flashed message and with a form's errors shown. axe must report no
violation of any impact, in light mode and (for colour contrast) dark mode;
the HTML each page was served with is validated in one Nu checker run at the
end, which must report no error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import Response
from sqlalchemy import select

from portal.audit import services as audit
from portal.comments import constants as COMMENT
from portal.extensions import db
from portal.users.models import User
from tests import factories
from tests.e2e.conftest import IN_CI
from tests.e2e.conftest import ConsoleErrors
from tests.e2e.conftest import LiveServer
from tests.e2e.conftest import watch_csp

pytestmark = pytest.mark.e2e

NODE_MODULES = Path(__file__).resolve().parent.parent / "a11y" / "node_modules"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"
VNU = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"

# Endpoints that serve no HTML page, and why each is left out.
EXCLUDED = {
    "static": "static files",
    "admin.static": "Flask-Admin's static files",
    "site.favicon": "an image",
    "site.healthz": "a plain-text health check for load balancers",
    "metrics.scrape": "Prometheus text for the monitoring system",
    "discovery.robots": "robots.txt, plain text",
    "discovery.sitemap": "an XML sitemap index",
    "discovery.sitemap_part": "an XML sitemap",
    "discovery.site_feed": "an Atom feed",
    "discovery.author_feed": "an Atom feed",
    "discovery.tag_feed": "an Atom feed",
    "privacy.download_export": "a JSON download",
    "email_compose.accounts": "JSON for the compose screen's account search",
}
# Endpoint suffixes of every Flask-Admin model screen that serve no page.
EXCLUDED_SUFFIXES = {
    ".export": "a CSV download",
    ".ajax_lookup": "JSON for select boxes",
}
# Endpoints that only redirect (to an identity provider), never render.
REDIRECTS_ONLY = {
    "oidc.login": "redirects to the identity provider",
    "oidc.start_link": "redirects to the identity provider",
    "oidc.callback": "redirects back from the identity provider",
}

# axe: every rule of every standard and best practice; only the result that fails.
AXE_RUN = """async (only) => {
  const options = {resultTypes: ["violations"]};
  if (only) { options.runOnly = {type: "rule", values: only}; }
  const result = await axe.run(document, options);
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + ": " + n.failureSummary),
  }));
}"""


def tool_problem() -> str | None:
    """Say what is missing to run these checks, or None."""
    if not AXE.exists():
        return f"axe-core is not installed ({AXE}); run npm ci in tests/a11y"
    if not VNU.exists():
        return f"the Nu HTML Checker is not installed ({VNU}); run npm ci in tests/a11y"
    if shutil.which("java") is None:
        return "Java is not installed; the Nu HTML Checker needs it"
    return None


@pytest.fixture
def backend() -> str:
    """SQLite only: the markup a page is served with does not depend on the database."""
    return "sqlite"


@pytest.fixture(scope="module")
def checkers() -> None:
    """Skip without axe, the Nu checker or Java, but fail in CI, where they must be."""
    problem = tool_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"{problem}; CI requires it.")
    pytest.skip(problem)


@dataclass
class Seeded:
    """The rows the sample arguments come from."""

    values: dict[str, Any]
    rows: dict[type, Any]  # model class -> the primary key of one of its rows
    # What the walk could not fill: a route argument, a screen's row.
    gaps: list[str] = field(default_factory=list)


def seed(app: Flask) -> Seeded:
    """Accounts of every role, content in every state, a message, an audit event."""
    with app.app_context():
        factories.AdminFactory(name="Ada Admin", email="ada@example.com")
        factories.StaffFactory(name="Sam Staff", email="sam@example.com")
        uma = factories.UserFactory(name="Uma User", email="uma@example.com")
        others = factories.UserFactory.create_batch(3)
        post = factories.PostFactory(author=uma, title="Difference Engine No. 2")
        # The same slug as the post's, so /tags/<slug>/ has a sample too.
        tag = factories.TagFactory(name="Engines", slug=post.slug)
        post.tags = [tag]
        factories.DraftFactory(author=uma, title="Half a thought")
        factories.HiddenPostFactory(author=others[0])
        comment = factories.ApprovedCommentFactory(post=post, author=uma)
        factories.CommentFactory(post=post, author=others[1])
        factories.CommentFactory(post=post, author=others[2], status=COMMENT.SPAM)
        email = factories.EmailFactory()
        event = audit.record("update", "post", post.id, summary="Seeded event")
        db.session.commit()
        values = {
            "slug": post.slug,
            "handle": uma.handle,
            "comment_id": comment.id,
            "post_id": post.id,
            "user_id": uma.id,
            "email_id": email.id,
            # Well formed, but no token the app signed: its "invalid link" page.
            "token": "not-a-token.signed-by-us",
            "name": "example",
        }
        rows = {type(row): row.id for row in (uma, post, comment, email, event, tag)}
        return Seeded(values=values, rows=rows)


@dataclass(frozen=True)
class Target:
    path: str
    endpoint: str


def factory_for(model: type) -> Any:
    """The factory in tests/factories.py that makes ``model`` rows, or None."""
    for candidate in vars(factories).values():
        meta = getattr(candidate, "_meta", None)
        if isinstance(candidate, type) and getattr(meta, "model", None) is model:
            return candidate
    return None


def row_of(app: Flask, seeded: Seeded, model: type) -> Any:
    """The primary key of a row of ``model``: a seeded one, else one its factory makes."""
    if model not in seeded.rows:
        make = factory_for(model)
        if make is None:
            seeded.gaps.append(f"add a factory for {model.__name__}: its admin screen has rows")
            return None
        with app.app_context():
            row = make()
            db.session.commit()
            seeded.rows[model] = row.id
    return seeded.rows[model]


def admin_targets(app: Flask, seeded: Seeded) -> dict[str, list[str]]:
    """Query strings for Flask-Admin's screens: a row id, or a selection for an action."""
    queries: dict[str, list[str]] = {}
    for admin in app.extensions.get("admin", []):
        for view in admin._views:
            model = getattr(view, "model", None)
            if model is None:
                continue
            key = row_of(app, seeded, model)
            found = key is not None
            queries[f"{view.endpoint}.*"] = [urlencode({"id": key})] if found else []
            queries[f"{view.endpoint}.action_input"] = [urlencode({"ids": key})] if found else []
    return queries


def pages(app: Flask, seeded: Seeded) -> list[Target]:
    """Every GET page of the URL map, with sample arguments; a route no sample fills fails."""
    admin = admin_targets(app, seeded)
    views = {
        view.endpoint: view
        for instance in app.extensions.get("admin", [])
        for view in instance._views
    }
    targets: list[Target] = []
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
            endpoint = rule.endpoint
            if "GET" not in (rule.methods or ()):
                continue
            if endpoint in EXCLUDED or endpoint in REDIRECTS_ONLY:
                continue
            if any(endpoint.endswith(suffix) for suffix in EXCLUDED_SUFFIXES):
                continue
            view_name, _, method = endpoint.partition(".")
            view = views.get(view_name)
            if view is not None and method == "action_input":
                for action in getattr(view, "input_actions", {}):
                    path = app.url_for(endpoint, action_name=action)
                    for query in admin.get(endpoint, [""]):
                        targets.append(Target(f"{path}?{query}", endpoint))
                continue
            arguments = {}
            for name in rule.arguments:
                if name in seeded.values:
                    arguments[name] = seeded.values[name]
                else:
                    seeded.gaps.append(f"name a sample for <{name}> of {rule.rule}")
            if len(arguments) < len(rule.arguments):
                continue
            path = app.url_for(endpoint, **arguments)
            if view is not None and getattr(view, "model", None) is not None:
                if method not in ("index_view", "create_view"):
                    for query in admin[f"{view_name}.*"]:
                        targets.append(Target(f"{path}?{query}", endpoint))
                    continue
            targets.append(Target(path, endpoint))
    return targets


@dataclass
class Findings:
    """What axe and the Nu checker found, by page."""

    folder: Path
    problems: list[str] = field(default_factory=list)
    documents: dict[Path, str] = field(default_factory=dict)
    checked: int = 0

    def keep_html(self, label: str, html: str) -> None:
        path = self.folder / f"{len(self.documents):04d}.html"
        path.write_text(html, encoding="utf-8")
        self.documents[path] = label

    def validate_html(self) -> None:
        """Run the Nu checker once over every page kept, and note each error."""
        if not self.documents:
            return
        command = ["java", "-Xss8m", "-jar", str(VNU), "--format", "json", "--exit-zero-always"]
        result = subprocess.run(
            [*command, *map(str, self.documents)], capture_output=True, text=True, check=True
        )
        for message in json.loads(result.stderr or result.stdout)["messages"]:
            if message.get("type") != "error" and message.get("subType") != "fatal":
                continue
            label = self.documents.get(Path(message.get("url", "").removeprefix("file:")), "?")
            line = message.get("lastLine", "?")
            self.problems.append(f"Nu: {label} (line {line}): {message['message']}")


class Walker:
    """One role's browser context: opens pages and checks each one it is served."""

    def __init__(
        self,
        chromium: Browser,
        live_server: LiveServer,
        findings: Findings,
        role: str,
        *,
        dark_too: bool,
    ) -> None:
        self.role = role
        self.findings = findings
        self.dark_too = dark_too
        # Reduced motion: no colour transition is half-way when the scheme changes.
        self.context: BrowserContext = chromium.new_context(
            base_url=live_server.url,
            viewport={"width": 1280, "height": 900},
            reduced_motion="reduce",
        )
        self.csp_violations: list[str] = []
        watch_csp(self.context, self.csp_violations)
        self.context.add_init_script(path=str(AXE))
        self.console = ConsoleErrors()
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", self.console.on_page_error)
        self.documents: list[Response] = []
        self.page.on("response", self._note_document)
        self.error_pages: set[int] = set()

    def _note_document(self, response: Response) -> None:
        if response.request.resource_type == "document" and response.frame == self.page.main_frame:
            self.documents.append(response)

    def close(self) -> None:
        self.context.close()

    def sign_in(self, email: str, next_path: str) -> None:
        """Sign in through the form; the page it lands on shows the welcome message."""
        self.page.goto(f"/users/login/?{urlencode({'next': next_path})}")
        self.page.get_by_label("Email", exact=True).fill(email)
        self.page.get_by_label("Password", exact=True).fill(factories.PASSWORD)
        self.act("sign-in (a flashed message)", self.sign_in_button)

    def sign_in_button(self) -> None:
        self.page.get_by_role("button", name="Sign in", exact=True).click()

    def visit(self, path: str) -> None:
        """Open ``path`` and check the page, unless it is only a redirect."""
        self.documents.clear()
        self.page.goto(path)
        self.check(path, followed=False)

    def act(self, label: str, action: Callable[[], None]) -> None:
        """Do something that loads a page (submit a form) and check the page it loads."""
        self.documents.clear()
        action()
        self.page.wait_for_load_state("load")
        self.check(label, followed=True)

    def check(self, label: str, *, followed: bool) -> None:
        """Check the page last served; a visit that was redirected checks nothing."""
        served = next(
            (doc for doc in reversed(self.documents) if not 300 <= doc.status < 400), None
        )
        if served is None:
            return
        kind = served.headers.get("content-type", "")
        if "text/html" not in kind:
            if not followed:
                self.findings.problems.append(
                    f"{label} serves {kind}, not a page: list its endpoint in EXCLUDED, with why"
                )
            return
        if len(self.documents) > 1 and not followed:
            # Redirected: the page it leads to is on the list in its own right.
            return
        if served.status >= 400:
            # One error page of each status per role says enough.
            if served.status in self.error_pages:
                return
            self.error_pages.add(served.status)
        where = f"{self.role} {label} [{served.status}]"
        self.findings.checked += 1
        self.findings.keep_html(where, served.text())
        self.run_axe(where, None)
        if self.dark_too:
            self.page.emulate_media(color_scheme="dark")
            self.run_axe(f"{where} (dark)", ["color-contrast"])
            self.page.emulate_media(color_scheme="light")

    def run_axe(self, where: str, only: list[str] | None) -> None:
        for violation in self.page.evaluate(AXE_RUN, only):
            nodes = "; ".join(violation["nodes"])
            self.findings.problems.append(
                f"axe: {where}: {violation['id']} ({violation['impact']}): "
                f"{violation['help']} -> {nodes}"
            )


@pytest.fixture
def findings(tmp_path: Path) -> Iterator[Findings]:
    yield Findings(folder=tmp_path)


ROLES = (
    # role, email, where signing in leads, dark mode checked too
    ("anonymous", None, None, True),
    ("user", "uma@example.com", "/posts/", False),
    ("staff", "sam@example.com", "/admin/", False),
    ("admin", "ada@example.com", "/admin/user/", True),
)
# The pages only staff see are in the back office; a member's own pages on the site.
BACK_OFFICE = "/admin/"


def walks(role: str, target: Target) -> bool:
    """Tell whether ``role`` opens ``target``; each page is checked for every role that uses it.

    The back office is walked by STAFF and ADMIN (anonymous visitors and
    members meet its login redirect and 403 page, its first page is enough);
    the site by everyone but STAFF, whose public pages are the ADMIN's.
    """
    office = target.path.startswith(BACK_OFFICE)
    if role in ("anonymous", "user"):
        return not office or target.path == BACK_OFFICE
    if role == "staff":
        return office or target.endpoint == "posts.detail"
    return True


def show_form_errors(walker: Walker, seeded: Seeded) -> None:
    """Submit forms that come back with their errors, on both sides of the site."""
    page = walker.page
    if walker.role == "anonymous":
        page.goto("/users/login/")
        page.get_by_label("Email", exact=True).fill("nobody@example.com")
        page.get_by_label("Password", exact=True).fill("wrong password")
        walker.act("login (wrong password)", walker.sign_in_button)
        page.goto("/users/register/")
        walker.act(
            "register (empty form)",
            lambda: page.get_by_role("button", name="Register", exact=True).click(),
        )
        page.goto("/users/forgot/")
        page.get_by_label("Email", exact=True).fill("nobody@example.com")
        walker.act(
            "forgot password (a flashed message)",
            lambda: page.get_by_role("button", name="Send the link", exact=True).click(),
        )
    elif walker.role == "user":
        page.goto("/posts/new/")
        walker.act(
            "new post (empty form)",
            lambda: page.get_by_role("button", name="Publish", exact=True).click(),
        )
        page.goto("/users/me/edit/")
        page.get_by_label("Name", exact=True).fill("")
        walker.act(
            "profile (empty name)",
            lambda: page.get_by_role("button", name="Save", exact=True).click(),
        )
    else:
        submit = "main form button[type=submit], main form input[type=submit]"
        page.goto("/admin/email_compose/")
        walker.act("compose (empty form)", lambda: page.locator(submit).first.click())
        if walker.role == "admin":
            page.goto("/admin/user/new/")
            walker.act("new account (empty form)", lambda: page.locator(submit).first.click())
            page.goto(f"/admin/user/edit/?id={seeded.values['user_id']}")
            page.get_by_label("Name").fill("")
            walker.act("edit account (empty name)", lambda: page.locator(submit).first.click())
            page.goto(f"/admin/user/action/deactivate/?ids={seeded.values['user_id']}")
            walker.act("deactivate (no reason)", lambda: page.locator(submit).first.click())


@pytest.mark.parametrize(("role", "email", "landing", "dark_too"), ROLES, ids=[r[0] for r in ROLES])
def test_every_page_passes_axe_and_the_nu_checker(
    checkers: None,
    chromium: Browser,
    live_server: LiveServer,
    findings: Findings,
    role: str,
    email: str | None,
    landing: str | None,
    dark_too: bool,
) -> None:
    # One test per role, so the walks share the machine's cores.
    # Each context fetches Flask-Admin's dozen assets once, not on every page.
    live_server.app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 3600
    seeded = seed(live_server.app)
    targets = pages(live_server.app, seeded)
    walker = Walker(chromium, live_server, findings, role, dark_too=dark_too)
    try:
        if email is not None:
            walker.sign_in(email, landing)
        for target in targets:
            if walks(role, target):
                walker.visit(target.path)
        show_form_errors(walker, seeded)
    finally:
        walker.close()
    findings.validate_html()

    # Redirects and repeated error pages are not checked again; a walk that lost
    # its session on the way (every page a sign-in redirect) checks only a few.
    assert findings.checked >= 10, "the walk checked too few pages"
    assert findings.problems == [], "\n".join(findings.problems)
    assert walker.csp_violations == []
    assert walker.console.messages == []


def test_the_page_list_covers_every_get_route(live_server: LiveServer) -> None:
    """A GET route is either walked or excluded with its reason; nothing slips through."""
    seeded = seed(live_server.app)
    walked = {target.endpoint for target in pages(live_server.app, seeded)}
    assert seeded.gaps == [], "\n".join(seeded.gaps)
    app = live_server.app
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        endpoint = rule.endpoint
        skipped = (
            endpoint in EXCLUDED
            or endpoint in REDIRECTS_ONLY
            or any(endpoint.endswith(suffix) for suffix in EXCLUDED_SUFFIXES)
        )
        view, _, method = endpoint.partition(".")
        inputless = method == "action_input" and not getattr(
            next(
                (v for a in app.extensions["admin"] for v in a._views if v.endpoint == view),
                None,
            ),
            "input_actions",
            None,
        )
        assert skipped or inputless or endpoint in walked, endpoint
    with live_server.app.app_context():
        assert db.session.execute(select(User.id)).first() is not None


def test_the_theme_toggle_follows_the_system_then_remembers_the_choice(
    checkers: None,
    page: Page,
    live_server: LiveServer,
    console_errors: ConsoleErrors,
    csp_violations: list[str],
) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto("/")
    toggle = page.get_by_role("button", name="Dark mode")
    assert toggle.get_attribute("aria-pressed") == "true"  # the system's preference
    background = "getComputedStyle(document.body).backgroundColor"
    dark = page.evaluate(background)

    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    assert page.evaluate(background) != dark
    page.goto("/users/login/")  # another page, the same choice, before the first paint
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.get_by_role("button", name="Dark mode").get_attribute("aria-pressed") == "false"

    assert console_errors.messages == []
    assert csp_violations == []


PHONE = {"width": 390, "height": 844}


def test_pages_fit_a_phone_screen_without_sideways_scrolling(
    checkers: None, chromium: Browser, live_server: LiveServer
) -> None:
    """At 390 px the site and the back office fit the width: nothing scrolls sideways."""
    with live_server.app.app_context():
        factories.StaffFactory(name="Sam Staff", email="sam@example.com")
        post = factories.PostFactory(title="Difference Engine No. 2")
        factories.CommentFactory(post=post, body="The carry mechanism is elegant. " * 4)
        db.session.commit()
        slug = post.slug
    context = chromium.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    overflowing = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    wide: dict[str, int] = {}
    try:
        for path in ("/", f"/posts/{slug}/", "/users/login/"):
            page.goto(path)
            wide[path] = page.evaluate(overflowing)
        page.get_by_label("Email", exact=True).fill("sam@example.com")
        page.get_by_label("Password", exact=True).fill(factories.PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_load_state("load")
        for path in ("/admin/", "/admin/comment/", "/admin/user/", "/admin/email_compose/"):
            page.goto(path)
            wide[path] = page.evaluate(overflowing)
    finally:
        context.close()
    assert wide == dict.fromkeys(wide, 0)
