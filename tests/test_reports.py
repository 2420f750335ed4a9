"""Reports: readers report a post or a comment once; staff resolve them in /admin in one step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select

from portal import security
from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.comments import constants as COMMENT
from portal.comments.models import Comment
from portal.database import utcnow
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.reports import constants as REPORT
from portal.reports.models import Report
from portal.users import constants as USER
from portal.users.models import User
from tests import factories
from tests.conftest import AuthActions
from tests.conftest import Browser
from tests.conftest import csrf_token
from tests.helpers import statements

SLUG = "a-reported-post"
QUEUE = "/admin/report/"
RESOLVE = "/admin/report/resolve/"


@pytest.fixture
def author(app):
    return factories.UserFactory(name="Ava Author", email="ava@example.com")


@pytest.fixture
def post(app, author):
    return factories.PostFactory(title="A reported post", slug=SLUG, author=author)


@pytest.fixture
def comment(app, post, author):
    comment = factories.ApprovedCommentFactory(post=post, author=author, body="Buy now!")
    post.comment_count = 1
    db.session.commit()
    return comment


def reports() -> list[Report]:
    db.session.expire_all()
    return list(db.session.execute(select(Report).order_by(Report.id)).scalars())


def sign_in(client: FlaskClient, person: User) -> None:
    assert AuthActions(client).login(person.email).status_code == 302


def report(client: FlaskClient, path: str, reason: str = "spam", note: str = ""):
    return Browser(client).submit(path, {"reason": reason, "note": note})


# -- the gate, per role ------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "may_report", "may_resolve"),
    [
        (factories.UserFactory, True, False),
        (factories.NewUserFactory, False, False),
        (factories.InactiveUserFactory, False, False),
        (factories.StaffFactory, True, True),
        (factories.AdminFactory, True, True),
    ],
)
def test_the_gate_answers_each_role(app, post, factory, may_report, may_resolve):
    person = factory()
    assert security.can(person, security.REPORT, post) is may_report
    assert security.can(person, security.ADD, security.REPORTS) is may_report
    assert security.can(person, security.RESOLVE, security.REPORTS) is may_resolve
    assert security.can(person, security.VIEW, security.REPORTS) is may_resolve
    # Nobody reports what they wrote.
    assert security.can(post.author, security.REPORT, post) is False


# -- filing ------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, post):
    token = csrf_token(client, "/users/login/")
    for response in (
        client.get(f"/posts/{SLUG}/report/"),
        client.post(f"/posts/{SLUG}/report/", data={"csrf_token": token, "reason": "spam"}),
    ):
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/users/login/")
    assert reports() == []


def test_an_active_account_reports_a_post_once(client, post):
    reader = factories.UserFactory(name="Rita Reader")
    sign_in(client, reader)
    page = client.get(f"/posts/{SLUG}/")
    assert f'href="/posts/{SLUG}/report/"' in page.get_data(as_text=True)
    form = client.get(f"/posts/{SLUG}/report/")
    assert form.status_code == 200
    assert "Off-topic" in form.get_data(as_text=True)

    sent = report(client, f"/posts/{SLUG}/report/", "abuse", "  Rude   to readers. ")
    assert sent.status_code == 302 and sent.headers["Location"] == f"/posts/{SLUG}/"
    (filed,) = reports()
    assert (filed.post_id, filed.comment_id, filed.reporter_id) == (post.id, None, reader.id)
    assert (filed.reason, filed.note, filed.status) == (REPORT.ABUSE, "Rude to readers.", 0)

    again = client.post(
        f"/posts/{SLUG}/report/",
        data={"csrf_token": csrf_token(client, f"/posts/{SLUG}/"), "reason": "spam"},
        follow_redirects=True,
    )
    assert "You have already reported this" in again.get_data(as_text=True)
    assert [row.reason for row in reports()] == [REPORT.ABUSE]


def test_a_comment_is_reported_from_its_own_link(client, comment):
    reader = factories.UserFactory()
    sign_in(client, reader)
    assert f'href="/comments/{comment.id}/report/"' in client.get(f"/posts/{SLUG}/").get_data(
        as_text=True
    )
    assert report(client, f"/comments/{comment.id}/report/", "off-topic").status_code == 302
    (filed,) = reports()
    assert (filed.comment_id, filed.post_id, filed.reason) == (comment.id, None, REPORT.OFF_TOPIC)


def test_a_bad_report_is_refused_and_saves_nothing(client, post):
    sign_in(client, factories.UserFactory())
    no_reason = report(client, f"/posts/{SLUG}/report/", "")
    too_long = report(client, f"/posts/{SLUG}/report/", "other", "x" * 501)
    crafted = report(client, f"/posts/{SLUG}/report/", "boring")
    for response in (no_reason, too_long, crafted):
        assert response.status_code == 200
        assert "There is a problem" in response.get_data(as_text=True)
    assert "at most 500 characters" in too_long.get_data(as_text=True)
    no_token = client.post(f"/posts/{SLUG}/report/", data={"reason": "spam"})
    assert no_token.status_code == 400
    assert reports() == []


@pytest.mark.parametrize("factory", [factories.NewUserFactory])
def test_unconfirmed_accounts_are_refused_clearly(client, post, factory):
    sign_in(client, factory())
    for response in (
        client.get(f"/posts/{SLUG}/report/"),
        report(client, f"/posts/{SLUG}/report/"),
    ):
        assert response.status_code == 403
        assert "confirm your email address" in response.get_data(as_text=True)
    assert reports() == []


def test_your_own_post_and_comment_cannot_be_reported(client, post, comment, author):
    sign_in(client, author)
    page = client.get(f"/posts/{SLUG}/").get_data(as_text=True)
    assert "/report/" not in page
    for path in (f"/posts/{SLUG}/report/", f"/comments/{comment.id}/report/"):
        response = report(client, path)
        assert response.status_code == 403
        assert "You cannot report what you wrote yourself." in response.get_data(as_text=True)
    assert reports() == []


def test_what_readers_cannot_see_cannot_be_reported(client, author):
    draft = factories.DraftFactory(author=author, slug="a-draft")
    waiting = factories.CommentFactory(status=COMMENT.PENDING)
    sign_in(client, factories.UserFactory())
    assert client.get("/posts/a-draft/report/").status_code == 404
    assert client.get(f"/comments/{waiting.id}/report/").status_code == 404
    assert client.get("/comments/99999999999/report/").status_code == 404
    assert draft.status == POST.DRAFT and reports() == []


# -- hiding after enough reports ------------------------------------------------------


def test_enough_reports_hide_a_comment_until_staff_dismiss_them(app, client, post, comment):
    app.config["REPORTS_HIDE_THRESHOLD"] = 2
    for reader in (factories.UserFactory(), factories.UserFactory()):
        sign_in(client, reader)
        assert report(client, f"/comments/{comment.id}/report/").status_code == 302
        AuthActions(client).logout()
    db.session.expire_all()
    assert db.session.get(Comment, comment.id).status == COMMENT.REJECTED
    assert db.session.get(Post, post.id).comment_count == 0
    assert "Buy now!" not in client.get(f"/posts/{SLUG}/").get_data(as_text=True)

    staff = factories.StaffFactory()
    sign_in(client, staff)
    queue = client.get(QUEUE).get_data(as_text=True)
    assert "hidden by reports until reviewed" in queue and "2 reports" in queue
    dismissed = resolve(client, "comment", comment.id, "dismiss")
    assert dismissed.status_code == 302
    db.session.expire_all()
    assert db.session.get(Comment, comment.id).status == COMMENT.APPROVED
    assert db.session.get(Post, post.id).comment_count == 1
    assert {row.status for row in reports()} == {REPORT.DISMISSED}
    assert {row.resolved_by_id for row in reports()} == {staff.id}
    AuthActions(client).logout()
    assert "Buy now!" in client.get(f"/posts/{SLUG}/").get_data(as_text=True)


def test_one_account_alone_never_hides_anything(app, client, post):
    app.config["REPORTS_HIDE_THRESHOLD"] = 1
    sign_in(client, factories.UserFactory())
    report(client, f"/posts/{SLUG}/report/")
    db.session.expire_all()
    # One distinct account meets a threshold of one: the post is hidden.
    assert db.session.get(Post, post.id).status == POST.HIDDEN
    assert reports()[0].hid_target is True


# -- resolving in /admin ---------------------------------------------------------------


def resolve(client: FlaskClient, kind: str, target: int, decision: str, **extra):
    data = {
        "csrf_token": csrf_token(client, QUEUE),
        "kind": kind,
        "target": target,
        "decision": decision,
        **extra,
    }
    return client.post(RESOLVE, data=data)


def file(target, reporter=None, reason=REPORT.SPAM, note=None) -> Report:
    where = {"post_id": target.id} if isinstance(target, Post) else {"comment_id": target.id}
    row = Report(
        reporter=reporter or factories.UserFactory(),
        reason=reason,
        note=note,
        created_at=utcnow(),
        **where,
    )
    db.session.add(row)
    db.session.commit()
    return row


@pytest.mark.parametrize(("role", "expected"), [(None, 302), ("user", 403), ("staff", 200)])
def test_the_queue_is_for_staff(client, post, role, expected):
    file(post)
    if role is not None:
        person = factories.StaffFactory() if role == "staff" else factories.UserFactory()
        sign_in(client, person)
    response = client.get(QUEUE)
    assert response.status_code == expected
    if role is None:
        assert response.headers["Location"].startswith("/users/login/")
    if role == "user":
        crafted = client.post(
            RESOLVE,
            data={
                "csrf_token": csrf_token(client, "/users/me/"),
                "kind": "post",
                "target": post.id,
                "decision": "delete",
            },
        )
        assert crafted.status_code == 403
        assert db.session.get(Post, post.id) is not None
    if role == "staff":
        assert response.headers["Cache-Control"] == "no-store"


def test_the_queue_groups_reports_by_item(client, post, comment):
    first = factories.UserFactory(name="Ned Noter", email="ned@example.com")
    file(post, first, REPORT.SPAM, "Selling watches <script>x</script>")
    file(post, reason=REPORT.SPAM)
    file(post, reason=REPORT.ABUSE)
    file(comment, reason=REPORT.OTHER)
    sign_in(client, factories.AdminFactory())
    page = client.get(QUEUE).get_data(as_text=True)
    assert "3 reports" in page and "1 report" in page
    assert "spam: 2" in page and "abuse: 1" in page and "other: 1" in page
    assert "Selling watches &lt;script&gt;" in page and "Ned Noter" in page
    assert page.count('action="/admin/report/resolve/"') == 2


def test_the_queue_costs_the_same_statements_at_any_length(client):
    sign_in(client, factories.StaffFactory())

    def cost() -> int:
        with statements() as seen:
            assert client.get(QUEUE).status_code == 200
        return len(seen)

    file(factories.PostFactory())
    file(factories.ApprovedCommentFactory())
    few = cost()
    for _ in range(4):
        file(factories.PostFactory(), note="Again.")
        file(factories.ApprovedCommentFactory(), note="And again.")
    assert cost() == few


def test_staff_hide_a_post_and_deactivate_its_author_in_one_step(client, post, author):
    for _ in range(2):
        file(post)
    staff = factories.StaffFactory()
    sign_in(client, staff)
    response = resolve(client, "post", post.id, "hide", deactivate="y")
    assert response.status_code == 302 and response.headers["Location"] == QUEUE
    db.session.expire_all()
    assert db.session.get(Post, post.id).status == POST.HIDDEN
    assert db.session.get(User, author.id).status == USER.INACTIVE
    assert {row.status for row in reports()} == {REPORT.HIDDEN}
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == AUDIT.ACTION_RESOLVE_REPORTS)
    ).scalar_one()
    assert (event.object_type, event.object_id, event.actor_id) == ("post", str(post.id), staff.id)
    assert event.changes["decision"] == [None, "hide"]
    # Resolved reports leave the queue; resolving them again changes nothing.
    again = resolve(client, "post", post.id, "dismiss")
    assert again.status_code == 302
    db.session.expire_all()
    assert db.session.get(Post, post.id).status == POST.HIDDEN


def test_staff_cannot_deactivate_a_staff_author(client):
    colleague = factories.StaffFactory()
    theirs = factories.PostFactory(author=colleague)
    file(theirs)
    sign_in(client, factories.StaffFactory())
    assert "Also deactivate" not in client.get(QUEUE).get_data(as_text=True)
    refused = resolve(client, "post", theirs.id, "hide", deactivate="y")
    assert refused.status_code == 302
    message = client.get(QUEUE).get_data(as_text=True)
    assert "Only an admin can change the status of a staff or admin account." in message
    db.session.expire_all()
    # Refused as a whole: the post is not hidden either.
    assert db.session.get(Post, theirs.id).status == POST.PUBLISHED
    assert db.session.get(User, colleague.id).status == USER.ACTIVE
    assert {row.status for row in reports()} == {REPORT.OPEN}


def test_deleting_a_comment_takes_its_reports_along(client, post, comment):
    file(comment)
    file(comment)
    comment_id, post_id = comment.id, post.id
    sign_in(client, factories.StaffFactory())
    assert resolve(client, "comment", comment_id, "delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(Comment, comment_id) is None
    assert reports() == []
    assert db.session.get(Post, post_id).comment_count == 0


def test_deleting_a_reported_post_deletes_the_reports_on_it_and_its_comments(client, post, comment):
    file(post)
    file(comment)
    post_id = post.id
    sign_in(client, factories.AdminFactory())
    assert resolve(client, "post", post_id, "delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(Post, post_id) is None
    assert reports() == []


def test_crafted_decisions_change_nothing(client, post):
    file(post)
    sign_in(client, factories.StaffFactory())
    for kind, target, decision in (("post", post.id, "publish"), ("user", post.id, "hide")):
        assert resolve(client, kind, target, decision).status_code == 302
    assert resolve(client, "post", 987654, "hide").status_code == 302
    db.session.expire_all()
    assert db.session.get(Post, post.id).status == POST.PUBLISHED
    assert {row.status for row in reports()} == {REPORT.OPEN}


def test_the_author_never_sees_who_reported(client, post, comment, author):
    rita = factories.UserFactory(name="Rita Reporter", email="rita@example.com")
    file(post, rita, note="I am Rita")
    file(comment, rita)
    sign_in(client, author)
    for path in (f"/posts/{SLUG}/", "/users/me/", f"/posts/{SLUG}/edit/"):
        text = client.get(path).get_data(as_text=True)
        assert "Rita" not in text and "rita@example.com" not in text


def test_reports_count_only_distinct_open_ones(app, client, post):
    app.config["REPORTS_HIDE_THRESHOLD"] = 2
    old = file(post)
    old.status, old.resolved_at = REPORT.DISMISSED, utcnow() - timedelta(days=1)
    db.session.commit()
    sign_in(client, factories.UserFactory())
    report(client, f"/posts/{SLUG}/report/")
    db.session.expire_all()
    # The dismissed report does not count again.
    assert db.session.get(Post, post.id).status == POST.PUBLISHED
    count = db.session.execute(select(func.count()).select_from(Report)).scalar_one()
    assert count == 2
