"""The back office's access table: every role, every screen, every operation, GET and crafted POST.

DESIGN §2: staff list, search and view accounts and (de)activate USER accounts;
only an ADMIN changes roles, creates or deletes accounts and sees the audit
trail; staff moderate posts and comments and export. Anonymous visitors go to
the login page, signed-in accounts without the staff permission get 403, and a
refused request leaves the database exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audit import services as audit
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.emails.models import Email
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.posts.models import post_tags
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import session_csrf_token

ROLES = {
    "new": factories.NewUserFactory,
    "user": factories.UserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}
ALL_ROLES = [None, "new", "user", "staff", "admin"]
LOGIN = "login"


# -- the objects every case acts on ---------------------------------------------


@dataclass
class World:
    target: int  # an ACTIVE USER account
    dormant: int  # an INACTIVE USER account
    post: int  # a published post by the target
    draft: int  # a draft by the target
    comment: int  # a comment waiting for moderation, under the post
    event: int  # an audit event
    tag: int  # a tag the post carries

    def ids(self) -> dict[str, int]:
        return dict(vars(self))


def build_world() -> World:
    target = factories.UserFactory(email="target@example.com", name="Target Person")
    dormant = factories.InactiveUserFactory(email="dormant@example.com", name="Dormant Person")
    post = factories.PostFactory(author=target, title="Published post")
    draft = factories.DraftFactory(author=target, title="Draft post")
    comment = factories.CommentFactory(post=post, author=dormant, body="Waiting comment")
    event = audit.record("update", "post", post.id, summary="Seeded event")
    tag = Tag(name="Seeded tag", slug="seeded-tag")
    post.tags = [tag]
    db.session.commit()
    return World(target.id, dormant.id, post.id, draft.id, comment.id, event.id, tag.id)


def snapshot() -> dict[str, Any]:
    """Everything a screen could change, read fresh from the database."""
    db.session.rollback()

    def rows(*columns: Any) -> list[tuple[Any, ...]]:
        return sorted(tuple(row) for row in db.session.execute(select(*columns)).all())

    return {
        "users": rows(
            User.id,
            User.name,
            User.email,
            User.role,
            User.status,
            User.session_version,
            User.password_hash,
        ),
        "posts": rows(
            Post.id, Post.title, Post.body, Post.status, Post.author_id, Post.comment_count
        ),
        "comments": rows(
            Comment.id,
            Comment.status,
            Comment.author_id,
            Comment.post_id,
            Comment.moderation_reason,
        ),
        "audit": rows(AuditEvent.id),
        "emails": rows(Email.id),
        "tags": rows(Tag.id, Tag.name, Tag.slug),
        "post_tags": rows(post_tags.c.post_id, post_tags.c.tag_id),
    }


def fresh(model: type[Any], object_id: int) -> Any:
    db.session.rollback()
    return db.session.get(model, object_id)


# -- the table ------------------------------------------------------------------


@dataclass
class Case:
    """One operation: how to ask for it, and the answer staff and admins get.

    ``effect`` says what an allowed request must have done (checked against
    the database); without one, an allowed request must change nothing.
    ``everyone`` is the answer for every role, anonymous included (a method
    the route does not take at all).
    """

    name: str
    method: str
    path: str
    staff: int | None = None
    admin: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    effect: Callable[[World], bool] | None = None
    writes_audit_only: bool = False
    everyone: int | None = None


def status_of(model: type[Any], attribute: str, value: Any) -> Callable[[World], bool]:
    def check(world: World) -> bool:
        row = fresh(model, getattr(world, attribute.split(".")[0]))
        return row is not None and getattr(row, attribute.split(".")[1]) == value

    return check


def gone(model: type[Any], attribute: str) -> Callable[[World], bool]:
    return lambda world: fresh(model, getattr(world, attribute)) is None


def renamed(world: World) -> bool:
    return fresh(User, world.target).name == "Renamed Person"


def invited(world: World) -> bool:
    db.session.rollback()
    user = db.session.execute(
        select(User).where(User.email == "invited@example.com")
    ).scalar_one_or_none()
    return user is not None and user.status == USER.NEW


def post_edited(world: World) -> bool:
    post = fresh(Post, world.post)
    return post.title == "Edited title" and post.status == POST.HIDDEN


POST_EDIT = {"title": "Edited title", "body": "Edited body", "status": "hidden"}


def tag_named(name: str) -> Callable[[World], bool]:
    def check(world: World) -> bool:
        db.session.rollback()
        found = db.session.execute(select(Tag).where(Tag.name == name)).scalar_one_or_none()
        return found is not None

    return check


CASES = [
    # The dashboard.
    Case("dashboard", "GET", "/admin/", 200, 200),
    Case("dashboard-post", "POST", "/admin/", everyone=405),
    # Accounts: staff look up and (de)activate; admins do everything else.
    Case("user-list", "GET", "/admin/user/", 200, 200),
    Case("user-search", "GET", "/admin/user/?search=target", 200, 200),
    Case("user-filter", "GET", "/admin/user/?flt0_0=2", 200, 200),
    Case("user-details", "GET", "/admin/user/details/?id={target}", 200, 200),
    Case("user-new", "GET", "/admin/user/new/", 403, 200),
    Case(
        "user-new-post",
        "POST",
        "/admin/user/new/",
        403,
        302,
        data={"name": "Invited Person", "email": "invited@example.com", "role": "2"},
        effect=invited,
    ),
    Case("user-edit", "GET", "/admin/user/edit/?id={target}", 403, 200),
    Case(
        "user-edit-post",
        "POST",
        "/admin/user/edit/?id={target}",
        403,
        302,
        data={"name": "Renamed Person", "role": "2", "status": "2"},
        effect=renamed,
    ),
    Case(
        "user-ajax-update",
        "POST",
        "/admin/user/ajax/update/",
        403,
        404,
        data={"list_form_pk": "{target}", "name": "Renamed Person"},
    ),
    Case("user-delete-get", "GET", "/admin/user/delete/", everyone=405),
    Case("user-delete", "POST", "/admin/user/delete/", 403, 200, data={"id": "{target}"}),
    Case(
        "user-delete-confirm",
        "POST",
        "/admin/user/delete/",
        403,
        302,
        data={"id": "{target}", "confirm": "1", "content": "keep"},
        effect=gone(User, "target"),
    ),
    Case("user-export", "GET", "/admin/user/export/csv/", 200, 200, writes_audit_only=True),
    Case(
        "user-action-activate",
        "POST",
        "/admin/user/action/",
        302,
        302,
        data={"action": "activate", "rowid": "{dormant}"},
    ),
    Case("user-activate-page", "GET", "/admin/user/action/activate/?ids={dormant}", 200, 200),
    Case(
        "user-activate",
        "POST",
        "/admin/user/action/activate/",
        302,
        302,
        data={"ids": "{dormant}", "reason": "Appeal accepted", "notify": "y"},
        effect=status_of(User, "dormant.status", USER.ACTIVE),
    ),
    Case(
        "user-action-deactivate",
        "POST",
        "/admin/user/action/",
        302,
        302,
        data={"action": "deactivate", "rowid": "{target}"},
    ),
    Case("user-deactivate-page", "GET", "/admin/user/action/deactivate/?ids={target}", 200, 200),
    Case(
        "user-deactivate",
        "POST",
        "/admin/user/action/deactivate/",
        302,
        302,
        data={"ids": "{target}", "reason": "Spam links", "notify": "y"},
        effect=status_of(User, "target.status", USER.INACTIVE),
    ),
    Case(
        "user-action-set-role",
        "POST",
        "/admin/user/action/",
        403,
        302,
        data={"action": "set_role", "rowid": "{target}"},
    ),
    Case("user-set-role-page", "GET", "/admin/user/action/set_role/?ids={target}", 403, 200),
    Case(
        "user-set-role",
        "POST",
        "/admin/user/action/set_role/",
        403,
        302,
        data={"ids": "{target}", "role": str(USER.STAFF)},
        effect=status_of(User, "target.role", USER.STAFF),
    ),
    # Accounts are deleted one at a time, through the confirmation page.
    Case(
        "user-action-delete",
        "POST",
        "/admin/user/action/",
        403,
        403,
        data={"action": "delete", "rowid": "{target}"},
    ),
    Case(
        "user-unknown-input-action",
        "GET",
        "/admin/user/action/delete/?ids={target}",
        403,
        403,
    ),
    # Posts: staff moderate; nobody creates posts here.
    Case("post-list", "GET", "/admin/post/", 200, 200),
    Case("post-search", "GET", "/admin/post/?search=published", 200, 200),
    Case("post-details", "GET", "/admin/post/details/?id={post}", 200, 200),
    Case("post-new", "GET", "/admin/post/new/", 403, 403),
    Case(
        "post-new-post",
        "POST",
        "/admin/post/new/",
        403,
        403,
        data={"title": "Forged", "body": "Forged", "status": "published"},
    ),
    Case("post-edit", "GET", "/admin/post/edit/?id={post}", 200, 200),
    Case(
        "post-edit-post",
        "POST",
        "/admin/post/edit/?id={post}",
        302,
        302,
        data=POST_EDIT,
        effect=post_edited,
    ),
    Case(
        "post-ajax-update",
        "POST",
        "/admin/post/ajax/update/",
        404,
        404,
        data={"list_form_pk": "{post}", "title": "Forged"},
    ),
    Case(
        "post-delete",
        "POST",
        "/admin/post/delete/",
        302,
        302,
        data={"id": "{post}"},
        effect=gone(Post, "post"),
    ),
    Case("post-export", "GET", "/admin/post/export/csv/", 200, 200, writes_audit_only=True),
    Case(
        "post-publish",
        "POST",
        "/admin/post/action/",
        302,
        302,
        data={"action": "publish", "rowid": "{draft}"},
        effect=status_of(Post, "draft.status", POST.PUBLISHED),
    ),
    Case(
        "post-hide",
        "POST",
        "/admin/post/action/",
        302,
        302,
        data={"action": "hide", "rowid": "{post}"},
        effect=status_of(Post, "post.status", POST.HIDDEN),
    ),
    Case(
        "post-action-delete",
        "POST",
        "/admin/post/action/",
        302,
        302,
        data={"action": "delete", "rowid": "{post}"},
        effect=gone(Post, "post"),
    ),
    Case(
        "post-unknown-action",
        "POST",
        "/admin/post/action/",
        403,
        403,
        data={"action": "set_role", "rowid": "{post}"},
    ),
    # Tags: staff and admins add, rename and delete them; nothing to export.
    Case("tag-list", "GET", "/admin/tag/", 200, 200),
    Case("tag-search", "GET", "/admin/tag/?search=seeded", 200, 200),
    Case("tag-details", "GET", "/admin/tag/details/?id={tag}", 200, 200),
    Case("tag-history", "GET", "/admin/tag/history/?id={tag}", 200, 200),
    Case("tag-new", "GET", "/admin/tag/new/", 200, 200),
    Case(
        "tag-new-post",
        "POST",
        "/admin/tag/new/",
        302,
        302,
        data={"name": "Fresh tag"},
        effect=tag_named("Fresh tag"),
    ),
    Case("tag-edit", "GET", "/admin/tag/edit/?id={tag}", 200, 200),
    Case(
        "tag-edit-post",
        "POST",
        "/admin/tag/edit/?id={tag}",
        302,
        302,
        data={"name": "Renamed tag"},
        effect=tag_named("Renamed tag"),
    ),
    Case(
        "tag-ajax-update",
        "POST",
        "/admin/tag/ajax/update/",
        404,
        404,
        data={"list_form_pk": "{tag}", "name": "Forged"},
    ),
    Case(
        "tag-delete",
        "POST",
        "/admin/tag/delete/",
        302,
        302,
        data={"id": "{tag}"},
        effect=gone(Tag, "tag"),
    ),
    Case("tag-export", "GET", "/admin/tag/export/csv/", 403, 403),
    Case(
        "tag-action-delete",
        "POST",
        "/admin/tag/action/",
        302,
        302,
        data={"action": "delete", "rowid": "{tag}"},
        effect=gone(Tag, "tag"),
    ),
    # Comments: a moderation queue; never written or edited here.
    Case("comment-list", "GET", "/admin/comment/", 200, 200),
    Case("comment-search", "GET", "/admin/comment/?search=dormant", 200, 200),
    Case("comment-details", "GET", "/admin/comment/details/?id={comment}", 200, 200),
    Case("comment-new", "GET", "/admin/comment/new/", 403, 403),
    Case(
        "comment-new-post",
        "POST",
        "/admin/comment/new/",
        403,
        403,
        data={"body": "Forged", "post": "{post}", "author": "{target}"},
    ),
    Case("comment-edit", "GET", "/admin/comment/edit/?id={comment}", 403, 403),
    Case(
        "comment-edit-post",
        "POST",
        "/admin/comment/edit/?id={comment}",
        403,
        403,
        data={"body": "Forged", "status": str(COMMENT.APPROVED)},
    ),
    Case(
        "comment-ajax-update",
        "POST",
        "/admin/comment/ajax/update/",
        403,
        403,
        data={"list_form_pk": "{comment}", "status": str(COMMENT.APPROVED)},
    ),
    Case(
        "comment-delete",
        "POST",
        "/admin/comment/delete/",
        302,
        302,
        data={"id": "{comment}"},
        effect=gone(Comment, "comment"),
    ),
    Case("comment-export", "GET", "/admin/comment/export/csv/", 200, 200, writes_audit_only=True),
    *[
        case
        for name, status in [
            ("approve", COMMENT.APPROVED),
            ("reject", COMMENT.REJECTED),
            ("spam", COMMENT.SPAM),
        ]
        for case in (
            Case(
                f"comment-action-{name}",
                "POST",
                "/admin/comment/action/",
                302,
                302,
                data={"action": name, "rowid": "{comment}"},
            ),
            Case(
                f"comment-{name}-page",
                "GET",
                f"/admin/comment/action/{name}/?ids={{comment}}",
                200,
                200,
            ),
            Case(
                f"comment-{name}",
                "POST",
                f"/admin/comment/action/{name}/",
                302,
                302,
                data={"ids": "{comment}", "reason": "Checked"},
                effect=status_of(Comment, "comment.status", status),
            ),
        )
    ],
    Case(
        "comment-action-delete",
        "POST",
        "/admin/comment/action/",
        302,
        302,
        data={"action": "delete", "rowid": "{comment}"},
        effect=gone(Comment, "comment"),
    ),
    # The audit trail: admins read it; nobody changes it.
    Case("audit-list", "GET", "/admin/audit/", 403, 200),
    Case("audit-details", "GET", "/admin/audit/details/?id={event}", 403, 200),
    Case("audit-new", "GET", "/admin/audit/new/", 403, 403),
    Case(
        "audit-new-post",
        "POST",
        "/admin/audit/new/",
        403,
        403,
        data={"action": "delete", "object_type": "user", "summary": "Forged"},
    ),
    Case("audit-edit", "GET", "/admin/audit/edit/?id={event}", 403, 403),
    Case(
        "audit-edit-post",
        "POST",
        "/admin/audit/edit/?id={event}",
        403,
        403,
        data={"summary": "Forged"},
    ),
    Case(
        "audit-ajax-update",
        "POST",
        "/admin/audit/ajax/update/",
        403,
        403,
        data={"list_form_pk": "{event}", "summary": "Forged"},
    ),
    Case("audit-delete", "POST", "/admin/audit/delete/", 403, 403, data={"id": "{event}"}),
    Case("audit-export", "GET", "/admin/audit/export/csv/", 403, 403),
    Case(
        "audit-action-delete",
        "POST",
        "/admin/audit/action/",
        403,
        403,
        data={"action": "delete", "rowid": "{event}"},
    ),
]


def expected_for(case: Case, role: str | None) -> int | str:
    if case.everyone is not None:
        return case.everyone
    if role is None:
        return LOGIN
    if role in ("new", "user"):
        return 403
    answer = case.staff if role == "staff" else case.admin
    assert answer is not None, case.name
    return answer


def allowed(answer: int | str) -> bool:
    return answer in (200, 302)


def sign_in(role: str | None, client: FlaskClient) -> None:
    if role is not None:
        ROLES[role](email=f"{role}@example.com", name=f"Signed-in {role}")
        response = AuthActions(client).login(f"{role}@example.com")
        assert response.status_code == 302, "sign-in failed"


def send(client: FlaskClient, role: str | None, case: Case, world: World) -> Any:
    ids = world.ids()
    path = case.path.format(**ids)
    if case.method == "GET":
        return client.get(path)
    # The session's own token, as any of its pages would carry it: the case is the POST.
    token = session_csrf_token(client)
    data = {key: value.format(**ids) for key, value in case.data.items()}
    return client.post(path, data={"csrf_token": token, **data})


def assert_answer(response: Any, answer: int | str, case: Case, world: World) -> None:
    if answer == LOGIN:
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert location.path == "/users/login/"
        if case.method == "GET":
            # Back to the page after signing in; a POST-only URL is not a place to return to.
            assert parse_qs(location.query) == {"next": [case.path.format(**world.ids())]}
        else:
            assert location.query == ""
    else:
        assert response.status_code == answer, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("role", ALL_ROLES, ids=lambda role: role or "anonymous")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_access(client, role, case):
    world = build_world()
    sign_in(role, client)
    before = snapshot()

    response = send(client, role, case, world)

    answer = expected_for(case, role)
    assert_answer(response, answer, case, world)
    after = snapshot()
    if not allowed(answer):
        assert after == before, f"{case.name} was refused but changed the database"
    elif case.effect is not None:
        assert case.effect(world), f"{case.name} did not do its job"
    elif case.writes_audit_only:
        # An export changes no data; it leaves a trace in the audit trail.
        assert {**after, "audit": None} == {**before, "audit": None}
    else:
        assert after == before, f"{case.name} changed the database"


def test_the_table_covers_every_screen_and_operation():
    """Each model screen is asked for each operation, so a new screen cannot slip through."""
    names = {case.name for case in CASES}
    for screen in ("user", "post", "tag", "comment", "audit"):
        for operation in (
            "list",
            "details",
            "new",
            "new-post",
            "edit",
            "edit-post",
            "ajax-update",
            "delete",
            "export",
            "action-delete",
        ):
            assert f"{screen}-{operation}" in names, f"{screen}-{operation}"


# -- menus and buttons show only what the role may use --------------------------------


def menu(client: FlaskClient) -> str:
    page = client.get("/admin/").get_data(as_text=True)
    start = page.index('<nav class="admin-nav"')
    return page[start : page.index('<ul class="admin-nav-list admin-nav-links">', start)]


def test_staff_menu_has_no_audit_trail_and_no_purge(client):
    factories.CommentFactory()
    sign_in("staff", client)
    entries = menu(client)
    for link in ("/admin/user/", "/admin/post/", "/admin/comment/", "/admin/email/"):
        assert f'href="{link}"' in entries, link
    assert "Audit trail" not in entries
    assert "/admin/audit/" not in entries
    assert "/admin/email_purge/" not in entries


def test_admin_menu_has_the_audit_trail(client):
    sign_in("admin", client)
    entries = menu(client)
    assert "Audit trail" in entries
    assert 'href="/admin/audit/"' in entries
    assert 'href="/admin/email_purge/"' in entries


def test_comments_menu_label_counts_the_waiting_ones(client):
    post = factories.PostFactory()
    factories.CommentFactory.create_batch(3, post=post)
    factories.ApprovedCommentFactory(post=post)
    factories.CommentFactory(post=post, status=COMMENT.SPAM)
    sign_in("staff", client)
    assert "Comments (3 waiting)" in menu(client)

    comment = db.session.execute(
        select(Comment).where(Comment.status == COMMENT.PENDING).limit(1)
    ).scalar_one()
    comment.status = COMMENT.APPROVED
    db.session.commit()
    assert "Comments (2 waiting)" in menu(client)


def test_comments_menu_label_without_waiting_comments(client):
    factories.ApprovedCommentFactory()
    sign_in("staff", client)
    entries = menu(client)
    assert 'href="/admin/comment/">' in entries or 'href="/admin/comment/"' in entries
    assert "waiting" not in entries


def test_staff_see_no_create_no_role_change_and_no_edit_on_accounts(client):
    world = build_world()
    sign_in("staff", client)
    page = client.get("/admin/user/").get_data(as_text=True)
    assert "/admin/user/new/" not in page
    assert "/admin/user/edit/" not in page
    assert "/admin/user/delete/" not in page
    assert 'value="set_role"' not in page and "Change role" not in page
    assert "Deactivate" in page and "Activate" in page
    details = client.get(f"/admin/user/details/?id={world.target}").get_data(as_text=True)
    assert "/admin/user/edit/" not in details
    assert "/admin/user/delete/" not in details


def test_admins_see_create_edit_delete_and_role_change_on_accounts(client):
    world = build_world()
    sign_in("admin", client)
    page = client.get("/admin/user/").get_data(as_text=True)
    assert "/admin/user/new/" in page
    assert f"/admin/user/edit/?id={world.target}" in page
    assert "Change role" in page


def test_nobody_sees_create_for_posts_and_comments_or_edit_for_comments(client):
    build_world()
    sign_in("admin", client)
    posts = client.get("/admin/post/").get_data(as_text=True)
    assert "/admin/post/new/" not in posts
    assert "/admin/post/edit/" in posts
    comments = client.get("/admin/comment/").get_data(as_text=True)
    assert "/admin/comment/new/" not in comments
    assert "/admin/comment/edit/" not in comments


def test_audit_trail_shows_no_change_buttons_even_to_admins(client):
    world = build_world()
    sign_in("admin", client)
    page = client.get("/admin/audit/").get_data(as_text=True)
    assert "Seeded event" in page
    for link in ("/admin/audit/new/", "/admin/audit/edit/", "/admin/audit/delete/", "export/csv"):
        assert link not in page, link
    details = client.get(f"/admin/audit/details/?id={world.event}").get_data(as_text=True)
    assert "Seeded event" in details
    assert "/admin/audit/edit/" not in details


def test_an_action_needs_the_csrf_token(client):
    world = build_world()
    sign_in("admin", client)
    before = snapshot()
    response = client.post(
        "/admin/user/action/set_role/", data={"ids": str(world.target), "role": str(USER.ADMIN)}
    )
    assert response.status_code == 400
    assert snapshot() == before
