"""The gate, asked directly: every row of the access table and every invariant, per role.

The expected answers are written here from DESIGN.md's table, not derived
from the gate; the HTTP tests (test_access, test_admin_access) ask the same
questions through the pages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from flask_login import AnonymousUserMixin

from portal import security
from portal.security import ACCOUNT
from portal.security import ADD
from portal.security import ADMIN_SITE
from portal.security import AUDIT
from portal.security import CHANGE
from portal.security import CHANGE_ROLE
from portal.security import CHANGE_STATUS
from portal.security import COMMENT
from portal.security import DELETE
from portal.security import EMAIL
from portal.security import END_SESSIONS
from portal.security import EXPORT
from portal.security import MODERATE
from portal.security import POST
from portal.security import RESET_SECOND_FACTOR
from portal.security import VIEW
from portal.users import constants as USER
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
# Who asks: a visitor, a NEW and an ACTIVE account, staff, an admin, and an
# operator at manage.py (no account at all).
ACTORS = ("anonymous", "new", "user", "staff", "admin", "system")


def actor(kind: str):
    if kind == "anonymous":
        return AnonymousUserMixin()
    if kind == "system":
        return None
    factory = {
        "new": factories.NewUserFactory,
        "user": factories.UserFactory,
        "staff": factories.StaffFactory,
        "admin": factories.AdminFactory,
    }[kind]
    return factory()


# (action, subject): the answer for anonymous, new, user, staff, admin, system.
KINDS = {
    (VIEW, ADMIN_SITE): "---+++",
    (VIEW, ACCOUNT): "---+++",
    (EXPORT, ACCOUNT): "---+++",
    (ADD, ACCOUNT): "----++",
    (CHANGE, ACCOUNT): "----++",
    (DELETE, ACCOUNT): "----++",
    (CHANGE_ROLE, ACCOUNT): "----++",
    (CHANGE_STATUS, ACCOUNT): "---+++",
    (END_SESSIONS, ACCOUNT): "---+++",
    (RESET_SECOND_FACTOR, ACCOUNT): "----++",
    (VIEW, POST): "++++++",
    (ADD, POST): "--++++",
    (CHANGE, POST): "---+++",
    (DELETE, POST): "---+++",
    (MODERATE, POST): "---+++",
    (EXPORT, POST): "---+++",
    (VIEW, COMMENT): "---+++",
    (ADD, COMMENT): "--++++",
    (CHANGE, COMMENT): "---+++",
    (DELETE, COMMENT): "---+++",
    (MODERATE, COMMENT): "---+++",
    (EXPORT, COMMENT): "---+++",
    (VIEW, EMAIL): "---+++",
    (ADD, EMAIL): "---+++",
    (CHANGE, EMAIL): "---+++",
    (DELETE, EMAIL): "----++",
    (VIEW, AUDIT): "----++",
    (ADD, AUDIT): "------",
    (CHANGE, AUDIT): "------",
    (DELETE, AUDIT): "------",
}


@pytest.mark.parametrize("who", ACTORS)
@pytest.mark.parametrize(("action", "subject"), list(KINDS), ids=lambda x: str(x))
def test_every_row_of_the_table_for_every_role(app, who, action, subject):
    expected = KINDS[(action, subject)][ACTORS.index(who)] == "+"
    assert security.can(actor(who), action, subject) is expected


def test_an_unknown_question_is_a_programming_error(app):
    with pytest.raises(ValueError):
        security.can(None, "fly", POST)
    with pytest.raises(ValueError):
        security.can(None, VIEW, "weather")


# -- rows: posts and comments --------------------------------------------------


@pytest.mark.parametrize(
    ("who", "own", "others", "others_draft"),
    [
        ("anonymous", None, "-", "-"),
        ("new", "+", "-", "-"),
        ("user", "+", "-", "-"),
        ("staff", "+", "+", "+"),
        ("admin", "+", "+", "+"),
    ],
)
def test_authors_edit_their_own_posts_and_moderators_any(app, who, own, others, others_draft):
    asking = actor(who)
    theirs = factories.PostFactory()
    draft = factories.DraftFactory()
    if own is not None:
        mine = factories.PostFactory(author=asking)
        assert security.can(asking, CHANGE, mine) is (own == "+")
        assert security.can(asking, DELETE, mine) is (own == "+")
        assert security.can(asking, VIEW, factories.DraftFactory(author=asking))
    assert security.can(asking, CHANGE, theirs) is (others == "+")
    assert security.can(asking, DELETE, theirs) is (others == "+")
    assert security.can(asking, VIEW, theirs)  # published: everyone
    assert security.can(asking, VIEW, draft) is (others_draft == "+")
    assert security.can(asking, VIEW, factories.HiddenPostFactory()) is (others_draft == "+")


def test_authors_edit_a_comment_while_it_waits_and_delete_it_any_time(app):
    author = factories.UserFactory()
    waiting = factories.CommentFactory(author=author)
    approved = factories.ApprovedCommentFactory(author=author)
    assert security.can(author, CHANGE, waiting)
    assert not security.can(author, CHANGE, approved)
    assert security.can(author, DELETE, approved)
    other = factories.UserFactory()
    assert not security.can(other, CHANGE, waiting)
    assert not security.can(other, DELETE, waiting)
    staff = factories.StaffFactory()
    assert security.can(staff, CHANGE, approved)
    assert security.can(staff, DELETE, approved)


# -- rows and invariants: accounts ---------------------------------------------


@pytest.mark.parametrize(
    ("who", "user_target", "staff_target", "admin_target"),
    [
        ("user", "-", "-", "-"),
        ("staff", "+", "-", "-"),
        ("admin", "+", "+", "+"),
        ("system", "+", "+", "+"),
    ],
)
def test_status_of_user_accounts_is_for_staff_and_of_staff_accounts_for_admins(
    app, who, user_target, staff_target, admin_target
):
    asking = actor(who)
    factories.AdminFactory()  # so no target is the last active admin
    targets = (factories.UserFactory(), factories.StaffFactory(), factories.AdminFactory())
    for target, expected in zip(targets, (user_target, staff_target, admin_target), strict=True):
        allowed = security.can(asking, CHANGE_STATUS, target, status=USER.INACTIVE)
        assert allowed is (expected == "+"), target


@pytest.mark.parametrize(
    ("who", "user_target", "staff_target", "admin_target"),
    [
        ("anonymous", "-", "-", "-"),
        ("new", "-", "-", "-"),
        ("user", "-", "-", "-"),
        ("staff", "+", "-", "-"),
        ("admin", "+", "+", "+"),
        ("system", "+", "+", "+"),
    ],
)
def test_sessions_of_user_accounts_are_for_staff_to_end_and_of_staff_accounts_for_admins(
    app, who, user_target, staff_target, admin_target
):
    asking = actor(who)
    targets = (factories.UserFactory(), factories.StaffFactory(), factories.AdminFactory())
    for target, expected in zip(targets, (user_target, staff_target, admin_target), strict=True):
        assert security.can(asking, END_SESSIONS, target) is (expected == "+"), target


@pytest.mark.parametrize(
    ("who", "user_target", "staff_target", "admin_target"),
    [
        ("anonymous", "-", "-", "-"),
        ("new", "-", "-", "-"),
        ("user", "-", "-", "-"),
        ("staff", "-", "-", "-"),
        ("admin", "+", "+", "+"),
        ("system", "+", "+", "+"),
    ],
)
def test_only_admins_and_operators_reset_another_accounts_second_factor(
    app, who, user_target, staff_target, admin_target
):
    asking = actor(who)
    targets = (factories.UserFactory(), factories.StaffFactory(), factories.AdminFactory())
    for target, expected in zip(targets, (user_target, staff_target, admin_target), strict=True):
        assert security.can(asking, RESET_SECOND_FACTOR, target) is (expected == "+"), target


@pytest.mark.parametrize("who", ["user", "staff", "admin"])
def test_nobody_resets_their_own_second_factor(app, who):
    asking = actor(who)
    assert not security.can(asking, RESET_SECOND_FACTOR, asking)


@pytest.mark.parametrize("who", ["new", "user", "staff", "admin"])
def test_everyone_may_end_their_own_sessions(app, who):
    # Staff on their own STAFF account too, which they could not do to another one.
    asking = actor(who)
    assert security.can(asking, END_SESSIONS, asking)


def test_nobody_changes_their_own_role_or_status_or_deletes_themselves(app):
    factories.AdminFactory()
    admin = factories.AdminFactory()
    assert security.refusal(admin, CHANGE_ROLE, admin, role=USER.STAFF) == (
        "You cannot change your own role."
    )
    assert security.refusal(admin, CHANGE_STATUS, admin, status=USER.INACTIVE) == (
        "You cannot change your own status."
    )
    assert security.refusal(admin, CHANGE, admin, role=USER.STAFF, status=USER.ACTIVE) == (
        "You cannot change your own role or status."
    )
    assert security.refusal(admin, DELETE, admin) == "You cannot delete your own account here."
    # A rename of oneself is fine.
    assert security.can(admin, CHANGE, admin, role=USER.ADMIN, status=USER.ACTIVE)


def test_the_last_active_admin_is_never_demoted_disabled_or_deleted(app):
    boss = factories.AdminFactory()
    factories.AdminFactory(status=USER.INACTIVE)  # an admin, but not an active one
    # Only an operator could try: any other admin would be a second active one.
    lone = security.LAST_ADMIN
    assert security.refusal(None, CHANGE_ROLE, boss, role=USER.STAFF) == lone
    assert security.refusal(None, CHANGE_STATUS, boss, status=USER.INACTIVE) == lone
    assert security.refusal(None, CHANGE, boss, role=USER.ADMIN, status=USER.NEW) == lone
    assert security.refusal(None, DELETE, boss) == lone
    # What keeps them an active admin is allowed, a rename included.
    assert security.can(None, CHANGE_ROLE, boss, role=USER.ADMIN)
    assert security.can(None, CHANGE_STATUS, boss, status=USER.ACTIVE)
    assert security.can(None, CHANGE, boss, role=USER.ADMIN, status=USER.ACTIVE)


def test_with_a_second_active_admin_either_may_be_demoted(app):
    boss = factories.AdminFactory()
    other = factories.AdminFactory()
    assert security.can(other, CHANGE_ROLE, boss, role=USER.STAFF)
    assert security.can(other, CHANGE_STATUS, boss, status=USER.INACTIVE)
    assert security.can(other, DELETE, boss)


def test_the_placeholder_of_deleted_accounts_cannot_be_deleted(app):
    placeholder = factories.UserFactory(handle=USER.DELETED_HANDLE, status=USER.INACTIVE)
    message = "The placeholder for deleted accounts cannot be deleted."
    assert security.refusal(None, DELETE, placeholder) == message
    assert security.refusal(factories.AdminFactory(), DELETE, placeholder) == message


def test_the_accounts_condition_matches_the_gate(app):
    from sqlalchemy import select

    from portal.extensions import db
    from portal.users.models import User

    people = [
        factories.NewUserFactory(),
        factories.UserFactory(),
        factories.StaffFactory(),
        factories.AdminFactory(),
        factories.StaffFactory(status=USER.NEW),
    ]
    for action, subject in ((ADD, POST), (MODERATE, POST), (VIEW, ADMIN_SITE)):
        condition = security.accounts_that_can(User, action, subject)
        found = set(db.session.execute(select(User.id).where(condition)).scalars())
        assert found == {p.id for p in people if security.can(p, action, subject)}


# -- nobody else decides -------------------------------------------------------

GATE_MODULES = {"portal/security.py", "portal/users/models.py"}
# A role tested against a role constant, or the model's shortcuts for it.
ROLE_TEST = re.compile(
    r"\.is_(admin|staff)\b"
    r"|(==|!=|\bin\b|\.in_\()\s*\(*\s*USER\.(ADMIN|STAFF|USER)\b"
    r"|USER\.(ADMIN|STAFF|USER)\s*(==|!=)"
)


def python_sources() -> list[Path]:
    return sorted(
        path
        for folder in ("portal", "admin_views", "config")
        for path in (ROOT / folder).rglob("*.py")
    ) + [ROOT / "manage.py"]


def test_no_code_outside_the_gate_compares_roles():
    found = []
    for path in python_sources():
        name = path.relative_to(ROOT).as_posix()
        if name in GATE_MODULES:
            continue
        ast.parse(path.read_text(encoding="utf-8"))  # a real module, not a stray file
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if not ROLE_TEST.search(code):
                continue
            found.append(f"{name}:{number}: {line.strip()}")
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"is_(admin|staff)\b|_permission\b|\.role\b\s*(==|!=)", line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "ask portal.security.can instead:\n" + "\n".join(found)
