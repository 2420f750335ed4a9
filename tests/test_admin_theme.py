"""The back office's own theme: every screen's landmarks, titles and labels, over HTTP."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

import pytest

from portal.comments import constants as COMMENT
from tests import factories


class Outline(HTMLParser):
    """What a page is made of: its title, headings, landmarks, ids and labels."""

    def __init__(self) -> None:
        super().__init__()
        self.lang: str | None = None
        self.title = ""
        self.h1: list[str] = []
        self.mains = 0
        self.ids: Counter[str] = Counter()
        self.links: list[tuple[str, str]] = []  # (href, class)
        self.checkboxes_outside_labels = 0
        self._in: list[str] = []
        self._label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = values.get("lang")
        if "id" in values:
            self.ids[values["id"]] += 1
        if tag == "main":
            self.mains += 1
        if tag == "a":
            self.links.append((values.get("href", ""), values.get("class", "")))
        if tag == "label":
            self._label_depth += 1
        if tag == "input" and values.get("type") == "checkbox" and not self._label_depth:
            self.checkboxes_outside_labels += 1
        if tag == "svg":
            self._in.append(tag)  # an SVG's own <title> is no page title
        if tag in ("title", "h1") and "svg" not in self._in:
            self._in.append(tag)
            if tag == "h1":
                self.h1.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label_depth -= 1
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if "title" in self._in:
            self.title += data
        if "h1" in self._in:
            self.h1[-1] += data


def outline(response) -> Outline:
    assert response.status_code == 200, response.request.path
    parsed = Outline()
    parsed.feed(response.get_data(as_text=True))
    parsed.title = " ".join(parsed.title.split())
    parsed.h1 = [" ".join(text.split()) for text in parsed.h1]
    return parsed


@pytest.fixture
def world(app):
    uma = factories.UserFactory(name="Uma User", email="uma@example.com")
    post = factories.PostFactory(author=uma, title="Difference Engine No. 2")
    comment = factories.CommentFactory(post=post, author=uma, body="The carry is elegant.")
    email = factories.EmailFactory(subject="Welcome aboard")
    return {"user": uma.id, "post": post.id, "comment": comment.id, "email": email.id}


def screens(world: dict[str, int], role: str) -> list[tuple[str, str]]:
    """Every admin screen a role opens, and the <title> it must have."""
    pages = [
        ("/admin/", "Dashboard · Portal admin"),
        ("/admin/user/", "Accounts · Portal admin"),
        (f"/admin/user/details/?id={world['user']}", "Uma User · Accounts · Portal admin"),
        ("/admin/post/", "Posts · Portal admin"),
        (
            f"/admin/post/details/?id={world['post']}",
            "Difference Engine No. 2 · Posts · Portal admin",
        ),
        (f"/admin/post/edit/?id={world['post']}", "Edit · Difference Engine No. 2 · Posts"),
        ("/admin/comment/", "Comments"),
        (f"/admin/comment/details/?id={world['comment']}", "The carry is elegant. · Comments"),
        ("/admin/email/", "Queue · Email · Portal admin"),
        (f"/admin/email/details/?id={world['email']}", "Welcome aboard · Queue · Email"),
        ("/admin/email_compose/", "Compose · Email · Portal admin"),
        (f"/admin/user/action/deactivate/?ids={world['user']}", "Accounts · Portal admin"),
    ]
    if role == "admin":
        pages += [
            ("/admin/user/new/", "New · Accounts · Portal admin"),
            (f"/admin/user/edit/?id={world['user']}", "Edit · Uma User · Accounts · Portal admin"),
            ("/admin/audit/", "Audit trail · Portal admin"),
            ("/admin/email_purge/", "Purge · Email · Portal admin"),
        ]
    return pages


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_every_screen_has_one_h1_a_main_a_language_a_skip_link_and_its_own_title(
    client, auth, world, role
):
    factory = factories.AdminFactory if role == "admin" else factories.StaffFactory
    factory(email="boss@example.com")
    auth.login("boss@example.com")
    titles = []
    for path, title in screens(world, role):
        page = outline(client.get(path))
        assert page.lang == "en", path
        assert page.mains == 1, path
        assert len(page.h1) == 1 and page.h1[0], (path, page.h1)
        assert page.title.startswith(title) or title in page.title, (path, page.title)
        assert page.title.endswith("· Portal admin"), (path, page.title)
        assert ("#main", "skip-link") in page.links, path
        assert page.ids["main"] == 1, path
        duplicated = [name for name, count in page.ids.items() if count > 1]
        assert duplicated == [], (path, duplicated)
        titles.append(page.title)
    assert len(set(titles)) == len(titles) - 1  # the action page shares its screen's title


def test_the_page_language_follows_the_readers_language(client, auth, world):
    factories.StaffFactory(email="sam@example.com")
    auth.login("sam@example.com")
    page = outline(client.get("/admin/user/", headers={"Accept-Language": "de"}))
    assert page.lang in ("de", "en")  # "de" once the catalogue exists; never empty
    assert (
        page.lang
        == client.get("/admin/user/", headers={"Accept-Language": "de"})
        .get_data(as_text=True)
        .split('lang="', 1)[1]
        .split('"', 1)[0]
    )


def test_a_twenty_row_list_repeats_no_id_and_labels_every_checkbox(client, auth):
    factories.AdminFactory(email="root@example.com")
    factories.UserFactory.create_batch(25)
    auth.login("root@example.com")
    response = client.get("/admin/user/")
    page = outline(response)
    text = response.get_data(as_text=True)
    assert len(re.findall(r'name="rowid"', text)) == 20
    assert len(re.findall(r'<form class="icon" method="POST"', text)) == 20  # a delete per row
    duplicated = [name for name, count in page.ids.items() if count > 1]
    assert duplicated == []
    assert page.checkboxes_outside_labels == 0
    assert len(re.findall(r'<span class="visually-hidden">Select (?!every)', text)) == 20
    assert "Select every row on this page" in text


def test_columns_filters_and_fields_have_human_labels(client, auth, world):
    factories.AdminFactory(email="root@example.com")
    auth.login("root@example.com")
    accounts = client.get("/admin/user/").get_data(as_text=True)
    for label in ("Joined", "Last sign-in", "Role", "Status"):
        assert f">{label}" in accounts, label
    details = client.get(f"/admin/user/details/?id={world['user']}").get_data(as_text=True)
    for label in ("Email confirmed", "Sign-ins", "Emails about comments"):
        assert f"<dt>{label}</dt>" in details, label
    # Yes/no columns say so in words, never "True" or an icon alone.
    assert re.search(r"<dt>Emails about comments</dt>\s*<dd>\s*(Yes|No)\s*</dd>", details)
    assert ">True<" not in details and ">False<" not in details
    email = client.get(f"/admin/email/details/?id={world['email']}").get_data(as_text=True)
    assert re.search(r"<dt>Carries account links</dt>\s*<dd>\s*No\s*</dd>", email)
    # Filters are named by the same labels (Flask-Admin reads column_labels).
    assert "Last sign-in" in accounts.split('id="filter-groups-data"', 1)[1]
    # No raw field name made pretty is left anywhere on the screens.
    for path in ("/admin/user/", "/admin/post/", "/admin/comment/", "/admin/email/"):
        text = client.get(path).get_data(as_text=True)
        for raw in ("Created At", "Confirmed At", "Last Login At", "Body Html", "To Address"):
            assert raw not in text, (path, raw)


def test_breadcrumbs_and_navigation_show_where_you_are(client, auth, world):
    factories.AdminFactory(email="root@example.com")
    auth.login("root@example.com")
    text = client.get(f"/admin/user/edit/?id={world['user']}").get_data(as_text=True)
    crumbs = text.split('<ol class="admin-breadcrumbs">', 1)[1].split("</ol>", 1)[0]
    assert re.findall(r">([^<>]+)</(?:a|li)>", crumbs) == [
        "Dashboard",
        "Accounts",
        "Uma User",
        "Edit",
    ]
    assert '<li aria-current="page">Edit</li>' in crumbs
    nav = text.split('<nav class="admin-nav"', 1)[1].split("</nav>", 1)[0]
    assert re.search(r'href="/admin/user/"\s+aria-current="page">Accounts</a>', nav)
    assert nav.count("aria-current") == 1


def test_the_theme_assets_load_as_files_under_the_csp(client, auth):
    factories.StaffFactory(email="sam@example.com")
    auth.login("sam@example.com")
    response = client.get("/admin/")
    text = response.get_data(as_text=True)
    for asset in ("css/tokens.", "css/admin.", "js/theme."):
        assert re.search(rf'(href|src)="/static/{re.escape(asset)}[0-9a-f]{{12}}\.', text), asset
    assert "<style" not in text and " style=" not in text
    assert "data-theme-toggle" in text
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    # The public site shares the tokens.
    assert re.search(
        r'href="/static/css/tokens\.[0-9a-f]{12}\.css"', client.get("/").get_data(as_text=True)
    )


def test_flashed_messages_sit_in_one_status_region(client, auth):
    factories.StaffFactory(email="sam@example.com", name="Sam Staff")
    response = auth.login("sam@example.com")
    site = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'role="status"' in site and '<li class="flash' not in site
    factories.CommentFactory(status=COMMENT.PENDING)
    office = client.get("/admin/comment/action/approve/?ids=999999", follow_redirects=True)
    text = office.get_data(as_text=True)
    region = text.split('<div class="admin-messages" role="status" aria-live="polite">', 1)[1]
    assert "Select at least one row first." in region.split("</div>", 1)[0]
