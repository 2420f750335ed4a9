"""Moderation in one step: each waiting comment's Approve, Reject and Spam buttons.

Every button is a POST with the CSRF token that goes through the comment
service (``portal.comments.services.moderate``), for each role through HTTP,
with crafted requests; the browser comes back to the same list page, which
never leaves the site, and the page costs the same statements at any length.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.extensions import db
from portal.posts.models import Post
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import csrf_token
from tests.helpers import deliver
from tests.helpers import statements

QUEUE = "/admin/comment/"
DECIDE = "/admin/comment/decide/"
ROLES = {
    "user": factories.UserFactory,
    "staff": factories.StaffFactory,
    "admin": factories.AdminFactory,
}
DECISIONS = {
    "approve": COMMENT.APPROVED,
    "reject": COMMENT.REJECTED,
    "spam": COMMENT.SPAM,
}
FORM_RE = re.compile(r'<form method="post" action="/admin/comment/decide/".*?</form>', re.DOTALL)


def sign_in(client: FlaskClient, role: str | None) -> Any:
    """Sign in as a new account of ``role`` (None stays anonymous); return it."""
    if role is None:
        return None
    person = ROLES[role](email=f"{role}@example.com", name=f"Signed-in {role}")
    assert AuthActions(client).login(person.email).status_code == 302
    return person


def token(client: FlaskClient, role: str | None) -> str:
    return csrf_token(client, "/users/login/" if role is None else "/users/me/")


def decide(client: FlaskClient, role: str | None, comment_id: Any, decision: str, **extra: Any):
    data = {"csrf_token": token(client, role), "id": comment_id, "decision": decision, **extra}
    return client.post(DECIDE, data=data)


def fresh(comment_id: int) -> Comment:
    db.session.rollback()
    comment = db.session.get(Comment, comment_id)
    assert comment is not None
    return comment


def state() -> list[tuple[Any, ...]]:
    """Everything a decision could change, read fresh."""
    db.session.rollback()
    comments = db.session.execute(
        select(
            Comment.id,
            Comment.status,
            Comment.moderated_by_id,
            Comment.moderated_at,
            Comment.moderation_reason,
        ).order_by(Comment.id)
    ).all()
    counts = db.session.execute(select(Post.id, Post.comment_count).order_by(Post.id)).all()
    events = db.session.execute(select(func.count(AuditEvent.id))).scalar_one()
    return [*map(tuple, comments), *map(tuple, counts), (events,)]


def flashes(client: FlaskClient, response: Any) -> list[str]:
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    return [html.unescape(text) for text in re.findall(r'<p class="alert[^"]*">([^<]*)</p>', page)]


def page_text(client: FlaskClient, path: str = QUEUE, **query: Any) -> str:
    response = client.get(path, query_string=query or None)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def forms_of(text: str, comment_id: int) -> list[str]:
    return [form for form in FORM_RE.findall(text) if f'name="id" value="{comment_id}"' in form]


# -- the queue's rows -------------------------------------------------------------


def test_a_waiting_row_has_three_buttons_each_its_own_form_with_the_token(client):
    sign_in(client, "staff")
    waiting = factories.CommentFactory().id
    decided = factories.ApprovedCommentFactory().id

    text = page_text(client)

    forms = forms_of(text, waiting)
    assert [re.search(r'name="decision" value="(\w+)"', form).group(1) for form in forms] == [
        "approve",
        "reject",
        "spam",
    ]
    for form in forms:
        assert re.search(r'name="csrf_token" value="[^"]+"', form)
        assert 'name="url" value="/admin/comment/' in form
    assert forms_of(text, decided) == []
    assert re.search(
        rf'id="decide-{decided}"[^>]*>\s*<span class="text-muted">Decided</span>', text
    )
    # The hidden inputs carry no id: twenty rows repeat none.
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids))
    # The buttons say which row they decide, for a screen reader.
    assert f'Approve<span class="visually-hidden"> comment #{waiting}</span>' in text
    # Without script the keys do nothing: their hint stays hidden until it runs.
    assert re.search(r'<p class="moderation-keys" data-decision-keys hidden>', text)
    assert re.search(r'<script[^>]* src="/static/js/moderation(\.\w+)?\.js"></script>', text)


def test_a_comment_is_shown_rendered_shortened_and_under_its_linked_post(client):
    sign_in(client, "staff")
    post = factories.PostFactory(title="Engines", slug="engines")
    body = "A **bold** [link](https://example.com/a) <script>alert(1)</script> " + "word " * 80
    factories.CommentFactory(post=post, body=body)
    draft_comment = factories.CommentFactory(post=factories.DraftFactory(title="Unpublished"))

    text = page_text(client)

    shown = re.findall(r'<div class="comment-excerpt">(.*?)</div>', text, re.DOTALL)
    assert len(shown) == 2
    long = next(item for item in shown if "bold" in item)
    assert long.startswith('<p>A <strong>bold</strong> <a href="https://example.com/a"')
    assert 'rel="nofollow noopener"' in long
    assert "&lt;script&gt;" in long and "<script>alert" not in text
    assert long.endswith("…</p>")
    assert len(re.sub(r"<[^>]+>", "", html.unescape(long))) <= 201
    # Every tag opened is closed: nothing cut in the middle.
    assert long.count("<p>") == long.count("</p>") == 1
    assert '<a href="/posts/engines/">Engines</a>' in text
    # A post visitors cannot open is named, not linked.
    assert "Unpublished" in text and 'href="/posts/' + draft_comment.post.slug not in text


# -- each button, each role -----------------------------------------------------------


@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_anonymous_visitors_are_sent_to_sign_in_and_nothing_changes(client, decision):
    comment = factories.CommentFactory().id
    before = state()

    response = decide(client, None, comment, decision, url=QUEUE)

    assert response.status_code == 302
    # A POST-only address is no place to come back to after signing in.
    assert response.headers["Location"] == "/users/login/"
    assert state() == before


@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_a_member_gets_403_and_nothing_changes(client, decision):
    sign_in(client, "user")
    comment = factories.CommentFactory().id
    before = state()

    assert client.get(QUEUE).status_code == 403
    assert decide(client, "user", comment, decision, url=QUEUE).status_code == 403
    assert state() == before


@pytest.mark.parametrize("role", ["staff", "admin"])
@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_staff_and_admins_decide_one_comment_through_the_service(client, role, decision):
    person = sign_in(client, role)
    post = factories.PostFactory()
    first, second = factories.CommentFactory.create_batch(2, post=post)

    response = decide(client, role, first.id, decision, url=QUEUE, next=second.id)

    assert response.status_code == 302
    assert response.headers["Location"] == f"{QUEUE}#decide-{second.id}"
    comment = fresh(first.id)
    assert comment.status == DECISIONS[decision]
    assert comment.moderated_by_id == person.id
    assert comment.moderated_at is not None
    assert fresh(second.id).status == COMMENT.PENDING
    # The service's audit event and the post's count, as for the bulk action.
    event = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.object_type == AUDIT.OBJECT_COMMENT,
            AuditEvent.object_id == str(first.id),
        )
    ).scalar_one()
    assert event.action == decision
    assert event.actor_id == person.id
    assert event.changes["status"] == ["pending", COMMENT.STATUS[DECISIONS[decision]]]
    assert db.session.get(Post, post.id).comment_count == (1 if decision == "approve" else 0)
    label = {"approve": "approved", "reject": "rejected", "spam": "spam"}[decision]
    assert flashes(client, response) == [f"Comment #{first.id} marked {label}."]


def test_approving_tells_the_post_author_as_the_bulk_action_does(client, mail):
    sign_in(client, "staff")
    author = factories.UserFactory(email="author@example.com", notify_comments=True)
    comment = factories.CommentFactory(post=factories.PostFactory(author=author)).id

    decide(client, "staff", comment, "approve", url=QUEUE)

    assert [message["To"] for message in deliver(client.application)] == ["author@example.com"]


# -- crafted requests ---------------------------------------------------------------------


def test_a_decision_without_the_csrf_token_is_refused(client):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id
    before = state()

    response = client.post(DECIDE, data={"id": comment, "decision": "approve", "url": QUEUE})

    assert response.status_code == 400
    assert state() == before


def test_a_forged_csrf_token_is_refused(client):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id
    before = state()

    response = client.post(
        DECIDE, data={"csrf_token": "forged", "id": comment, "decision": "approve"}
    )

    assert response.status_code == 400
    assert state() == before


def test_a_get_changes_nothing(client):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id
    before = state()

    response = client.get(DECIDE, query_string={"id": comment, "decision": "approve"})

    assert response.status_code == 405
    assert state() == before


@pytest.mark.parametrize("decision", ["delete", "publish", "pending", "", "APPROVE"])
def test_a_decision_the_screen_does_not_offer_is_refused(client, decision):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id
    before = state()

    assert decide(client, "staff", comment, decision, url=QUEUE).status_code == 403
    assert state() == before


@pytest.mark.parametrize(
    "status",
    [COMMENT.APPROVED, COMMENT.REJECTED, COMMENT.SPAM],
    ids=["approved", "rejected", "spam"],
)
@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_a_comment_already_decided_is_left_as_it_is_with_a_clear_message(client, status, decision):
    sign_in(client, "staff")
    comment = factories.CommentFactory(status=status).id
    before = state()

    response = decide(client, "staff", comment, decision, url=QUEUE)

    assert response.status_code == 302
    assert response.headers["Location"] == QUEUE
    assert state() == before
    assert flashes(client, response) == [
        f"comment #{comment} was already decided; nothing changed."
    ]


@pytest.mark.parametrize("row", ["999999", "0", "-1", "x", "²", "1" * 23, ""])
def test_a_row_that_does_not_exist_is_answered_with_a_message(client, row):
    sign_in(client, "staff")
    factories.CommentFactory()
    before = state()

    response = decide(client, "staff", row, "approve", url=QUEUE)

    assert response.status_code == 302
    assert response.headers["Location"] == QUEUE
    assert state() == before
    assert len(flashes(client, response)) == 1


def test_the_same_decision_twice_changes_the_comment_once(client):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id

    decide(client, "staff", comment, "approve", url=QUEUE)
    after_first = state()
    second = decide(client, "staff", comment, "reject", url=QUEUE)

    assert state() == after_first
    assert fresh(comment).status == COMMENT.APPROVED
    assert "already decided" in flashes(client, second)[0]


# -- where the browser goes back to ---------------------------------------------------------


def test_the_list_page_is_kept_with_its_filters_sort_and_page(client):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id
    back = "/admin/comment/?flt1_0=0&sort=2&desc=1&page=0&page_size=50"

    response = decide(client, "staff", comment, "spam", url=back, next="7")

    assert response.headers["Location"] == f"{back}#decide-7"


def test_the_return_address_in_the_form_is_the_one_the_list_gave_its_rows(client):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id
    text = page_text(client, flt0_0="0", page_size="50")
    back = html.unescape(re.search(r'name="url" value="([^"]+)"', forms_of(text, comment)[0])[1])
    assert back.startswith("/admin/comment/?") and "flt0_0=0" in back and "page_size=50" in back

    response = decide(client, "staff", comment, "approve", url=back)

    assert response.headers["Location"] == back


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/admin/comment/",
        "//evil.example/admin/comment/",
        "http:/evil.example/",
        "https:evil.example",
        "/\\evil.example",
        "/admin/comment/\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "/users/me/",
        "/admin/user/",
        "/admin/comment/details/?id=1",
        "/admin/commentary/",
    ],
)
def test_the_return_address_never_leaves_the_list(client, target):
    sign_in(client, "staff")
    comment = factories.CommentFactory().id

    response = decide(client, "staff", comment, "approve", url=target, next="x")

    assert response.status_code == 302
    assert response.headers["Location"] == QUEUE
    assert fresh(comment).status == COMMENT.APPROVED


def test_the_next_row_is_the_one_below_and_the_last_row_points_above(client):
    sign_in(client, "staff")
    post = factories.PostFactory()
    ids = [factories.CommentFactory(post=post).id for _ in range(3)]

    text = page_text(client)

    nexts = {row: re.search(r'name="next" value="(\d+)"', forms_of(text, row)[0]) for row in ids}
    assert {row: int(match[1]) for row, match in nexts.items() if match} == {
        ids[0]: ids[1],
        ids[1]: ids[2],
        ids[2]: ids[1],
    }


# -- cost -------------------------------------------------------------------------------------


def test_the_queue_runs_the_same_statements_for_5_or_20_waiting_rows(client):
    sign_in(client, "staff")

    def queue_statements(count: int) -> list[str]:
        db.session.execute(Comment.__table__.delete())
        db.session.commit()
        factories.CommentFactory.create_batch(count)
        with statements() as seen:
            text = page_text(client, page_size=20)
        assert len(FORM_RE.findall(text)) == 3 * count
        return seen

    few = queue_statements(5)
    many = queue_statements(20)

    assert len(many) == len(few), "\n".join(many)


# -- bulk decisions keep their reason page -----------------------------------------------------


def test_bulk_decisions_still_ask_for_a_reason(client):
    sign_in(client, "staff")
    first, second = (comment.id for comment in factories.CommentFactory.create_batch(2))
    path = f"/admin/comment/action/approve/?ids={first},{second}"

    page = page_text(client, path)
    assert "Reason (optional)" in page
    response = client.post(
        path,
        data={"csrf_token": token(client, "staff"), "ids": f"{first},{second}", "reason": "Fine."},
    )

    assert response.status_code == 302
    assert [fresh(first).moderation_reason, fresh(second).moderation_reason] == ["Fine.", "Fine."]
