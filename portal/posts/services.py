"""The post rules. Public pages, admin screens and commands all call these."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import ColumnElement
from sqlalchemy import Row
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import security
from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import utcnow
from portal.extensions import db
from portal.formatting import show_number
from portal.markup import MarkupTooCostly
from portal.markup import link_count
from portal.markup import render_post
from portal.pagination import Page
from portal.pagination import keyset_page
from portal.posts import constants as POST
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.posts.models import post_tags
from portal.slugs import slugify
from portal.slugs import unique_slug
from portal.users import services as users
from portal.users.models import User


class PostError(Exception):
    """A request the post rules refuse; the message is safe to show."""


# -- checking input ------------------------------------------------------------


def clean_title(title: str) -> str:
    """Return ``title`` trimmed; raise ``PostError`` if empty, overlong or holding control chars."""
    title = (title or "").strip()
    if not title:
        raise PostError(_("A title is required."))
    if len(title) > POST.TITLE_MAX_LENGTH:
        raise PostError(_("A title has at most %(count)d characters.", count=POST.TITLE_MAX_LENGTH))
    # Cc: the C0 controls, DEL and the C1 controls (U+0080-U+009F), which terminals obey too.
    if any(unicodedata.category(char) == "Cc" for char in title):
        raise PostError(_("A title cannot contain control characters or line breaks."))
    return title


def clean_body(body: str) -> str:
    """Return ``body`` with line endings made uniform; raise ``PostError`` if it cannot be saved.

    Blank, too long, or too costly to render (``render_post`` says so; it keeps
    the result, so the save that follows does not render it again).
    """
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise PostError(_("Write something in the body."))
    if len(body) > POST.BODY_MAX_LENGTH:
        raise PostError(
            _("A post has at most %(count)s characters.", count=show_number(POST.BODY_MAX_LENGTH))
        )
    if "\x00" in body:
        raise PostError(_("The body contains a character that is not allowed."))
    try:
        render_post(body)
    except MarkupTooCostly as error:
        raise PostError(_(str(error))) from None
    return body


def check_links(author: Any, body: str) -> None:
    """Refuse (``PostError``) a newcomer's body with more than ``NEW_ACCOUNT_MAX_LINKS`` links.

    Links are counted in the rendered Markdown, autolinks included.
    """
    most = int(current_app.config["NEW_ACCOUNT_MAX_LINKS"])
    if not users.is_newcomer(author) or link_count(render_post(body)) <= most:
        return
    raise PostError(
        _(
            "New accounts can put at most %(count)d link(s) in a post; remove some and save again.",
            count=most,
        )
    )


_SPACES = re.compile(r"\s+")


def clean_tag_name(name: str) -> str:
    """Return one tag name tidied (spaces, a leading "#"); raise ``PostError`` if unusable."""
    name = _SPACES.sub(" ", unicodedata.normalize("NFC", name or "")).strip().lstrip("#").strip()
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise PostError(_("A tag cannot contain control characters."))
    if not name:
        raise PostError(_("A tag needs a name."))
    if len(name) > POST.TAG_NAME_MAX_LENGTH:
        raise PostError(
            _(
                "A tag has at most %(count)d characters; “%(tag)s…” is longer.",
                count=POST.TAG_NAME_MAX_LENGTH,
                tag=name[: POST.TAG_NAME_MAX_LENGTH],
            )
        )
    if not any(char.isalnum() for char in name):
        raise PostError(_("A tag needs at least one letter or digit: “%(tag)s”.", tag=name))
    return name


def clean_tags(tags: str | Iterable[str]) -> list[str]:
    """Return the tag names in ``tags`` (comma-separated text, or names), tidied, each once.

    Case aside, a name given twice counts once (the first spelling wins); empty
    ones ("a, , b") are skipped. Raise ``PostError`` for a name that cannot be
    a tag or for more than ``POST_MAX_TAGS`` of them.
    """
    pieces = tags.split(",") if isinstance(tags, str) else list(tags)
    names: dict[str, str] = {}
    for piece in pieces:
        if not piece.strip():
            continue
        name = clean_tag_name(piece)
        names.setdefault(name.casefold(), name)
    most = int(current_app.config["POST_MAX_TAGS"])
    if len(names) > most:
        raise PostError(
            ngettext(
                "A post can have at most %(num)d tag; you gave %(given)d.",
                "A post can have at most %(num)d tags; you gave %(given)d.",
                most,
                given=len(names),
            )
        )
    return list(names.values())


# -- review: posts that wait for staff -------------------------------------------


def needs_review(author: Any) -> bool:
    """Tell whether ``author``'s posts wait for staff (``POSTS_REQUIRE_APPROVAL``).

    "all": everyone's; "new": accounts younger than ``POSTS_REVIEW_ACCOUNT_DAYS``
    days or with fewer than ``POSTS_REVIEW_MIN_APPROVED`` published posts;
    "off": nobody's. Staff and admins never wait.
    """
    mode = current_app.config["POSTS_REQUIRE_APPROVAL"]
    if mode == POST.REVIEW_OFF or security.can(author, security.MODERATE, security.POST):
        return False
    if mode == POST.REVIEW_ALL:
        return True
    days = int(current_app.config["POSTS_REVIEW_ACCOUNT_DAYS"])
    if author.created_at > utcnow() - timedelta(days=days):
        return True
    wanted = int(current_app.config["POSTS_REVIEW_MIN_APPROVED"])
    published = db.session.execute(
        select(func.count()).select_from(
            select(Post.id)
            .where(Post.author_id == author.id, Post.status == POST.PUBLISHED)
            .limit(wanted)
            .subquery()
        )
    ).scalar_one()
    return int(published) < wanted


def publishing_status(author: Any) -> int:
    """The status ``author``'s post gets when they publish it: PUBLISHED, or PENDING."""
    return POST.PENDING if needs_review(author) else POST.PUBLISHED


REVIEW_ACTIONS = {POST.PUBLISHED: AUDIT.ACTION_APPROVE, POST.HIDDEN: AUDIT.ACTION_REJECT}


def review(posts: Iterable[Post], status: int, *, actor: Any, reason: str | None = None) -> int:
    """Approve (PUBLISHED) or reject (HIDDEN) posts that wait; return how many changed.

    Posts that no longer wait are left as they are. Each decision is audited
    with who made it and why.
    """
    if status not in REVIEW_ACTIONS:
        raise PostError(_("Choose approve or reject."))
    if not security.can(actor, security.MODERATE, security.POST):
        raise PostError(_("Only staff can review posts."))
    reason = (reason or "").strip() or None
    if reason and len(reason) > POST.REASON_MAX_LENGTH:
        raise PostError(
            _("A reason has at most %(count)d characters.", count=POST.REASON_MAX_LENGTH)
        )
    now = utcnow()
    changed = 0
    for post in posts:
        if post.status != POST.PENDING:
            continue
        audit.record(
            REVIEW_ACTIONS[status],
            AUDIT.OBJECT_POST,
            post.id,
            summary=f"“{post.title}” by {post.author.email}: "
            f"{POST.STATUS[post.status]} → {POST.STATUS[status]}"
            + (f" ({reason})" if reason else ""),
            changes={
                "status": [POST.STATUS[post.status], POST.STATUS[status]],
                **({"reason": [None, reason]} if reason else {}),
            },
        )
        _apply_status(post, status)
        post.updated_at = now
        changed += 1
    db.session.commit()
    return changed


def approve_post(post: Post, *, actor: Any, reason: str | None = None) -> bool:
    """Publish a post that waits for review; return False if it no longer waited."""
    return review([post], POST.PUBLISHED, actor=actor, reason=reason) == 1


def reject_post(post: Post, *, actor: Any, reason: str | None = None) -> bool:
    """Hide a post that waits for review (its author cannot publish it again)."""
    return review([post], POST.HIDDEN, actor=actor, reason=reason) == 1


def pending_count_query(*, up_to: int | None = None) -> Select[Any]:
    """Count posts waiting for review, stopping past ``up_to``, in a statement run with others."""
    waiting = select(Post.id).where(Post.status == POST.PENDING)
    if up_to is not None:
        waiting = waiting.limit(up_to + 1)
    return select(func.count()).select_from(waiting.subquery())


def _check_status(status: int) -> None:
    if status not in POST.STATUS:
        raise PostError(f"Unknown status {status!r}.")


# -- writing -------------------------------------------------------------------


def _publication_time(publish_at: datetime | None, now: datetime) -> datetime:
    # A time to come schedules the post; none, or one already past, publishes it now.
    return publish_at if publish_at is not None and publish_at > now else now


def _first_publication(status: int, publish_at: datetime | None, now: datetime) -> datetime | None:
    if status == POST.PUBLISHED:
        return _publication_time(publish_at, now)
    if status == POST.PENDING and publish_at is not None and publish_at > now:
        return publish_at  # approval before then schedules it
    return None


def create_post(
    author: User,
    title: str,
    body: str,
    *,
    publish: bool = False,
    publish_at: datetime | None = None,
    tags: str | Iterable[str] = (),
) -> Post:
    """Write a new post as a draft, or published when ``publish``: now, or at ``publish_at``.

    Published, it waits for review (PENDING) when ``needs_review`` says so; a
    time to come is kept, so approval before that time schedules it. ``tags``
    that do not exist yet are created.
    """
    if not security.can(author, security.ADD, security.POST):
        raise PostError(_("Confirm your email address before you write."))
    title, body = clean_title(title), clean_body(body)
    check_links(author, body)
    names = clean_tags(tags)
    status = publishing_status(author) if publish else POST.DRAFT
    now = utcnow()
    for _attempt in range(3):
        post = Post(
            author=author,
            tags=tags_named(names),
            title=title,
            slug=unique_slug(
                Post.slug,
                slugify(title, max_length=POST.SLUG_MAX_LENGTH, fallback="post"),
                max_length=POST.SLUG_MAX_LENGTH,
                reserved=POST.RESERVED_SLUGS,
            ),
            body=body,
            body_html=render_post(body),
            status=status,
            created_at=now,
            updated_at=now,
            published_at=_first_publication(status, publish_at, now),
        )
        db.session.add(post)
        try:
            db.session.commit()
        except IntegrityError:
            # Another request took the same slug between our read and our write.
            db.session.rollback()
            continue
        return post
    raise PostError(_("Could not save the post just now; please try again."))


def update_post(
    post: Post,
    title: str,
    body: str,
    *,
    actor: Any,
    publish: bool | None = None,
    publish_at: datetime | None = None,
    tags: str | Iterable[str] | None = None,
) -> Post:
    """Change a post's title, body and ``tags`` (None: as they are); ``publish`` sets its status.

    Its slug stays. Authors may move their own post between draft and published, but a post
    staff have hidden stays hidden until staff publish it again. Publishing
    with ``publish_at`` (re)schedules a post not yet public; without it, a
    scheduled post is published now.
    """
    if not security.can(actor, security.CHANGE, post):
        raise PostError(_("You cannot edit this post."))
    before = _audited_fields(post)
    post.title, post.body = clean_title(title), clean_body(body)
    check_links(actor, post.body)
    if tags is not None:
        post.tags = tags_named(clean_tags(tags))
    post.body_html = render_post(post.body)
    post.updated_at = utcnow()
    if publish is not None:
        # A published post stays published when edited; one not yet public may wait.
        wanted = (
            (POST.PUBLISHED if post.status == POST.PUBLISHED else publishing_status(actor))
            if publish
            else POST.DRAFT
        )
        if post.status == POST.HIDDEN and not security.can(actor, security.MODERATE, security.POST):
            if publish:
                raise PostError(_("Staff have hidden this post; it cannot be published again."))
        else:
            was_public, was_scheduled = post.is_published, post.is_scheduled
            _apply_status(post, wanted)
            if post.status == POST.PUBLISHED and not was_public:
                # A post readers already see keeps its time; others publish now or at theirs.
                if was_scheduled or publish_at is not None:
                    post.published_at = _publication_time(publish_at, utcnow())
    if _by_moderator(actor, post):
        changes = audit.diff(before, _audited_fields(post))
        if changes:
            audit.record(
                AUDIT.ACTION_UPDATE,
                AUDIT.OBJECT_POST,
                post.id,
                summary=f"Edited “{post.title}”",
                changes=changes,
            )
    db.session.commit()
    return post


def _audited_fields(post: Post) -> dict[str, Any]:
    return {
        "title": post.title,
        "body": post.body,
        "status": POST.STATUS[post.status],
        "tags": ", ".join(tag.name for tag in post.tags),
    }


def _by_moderator(actor: Any, post: Post) -> bool:
    # Authors changing their own posts are not audited; staff acting on anyone's are.
    return (
        security.can(actor, security.MODERATE, security.POST)
        or getattr(actor, "id", None) != post.author_id
    )


def _record_status(post: Post, old: int, reason: str | None = None) -> None:
    audit.record(
        AUDIT.ACTION_SET_STATUS,
        AUDIT.OBJECT_POST,
        post.id,
        summary=f"“{post.title}”: {POST.STATUS[old]} → {POST.STATUS[post.status]}"
        + (f" ({reason})" if reason else ""),
        changes={"status": [POST.STATUS[old], POST.STATUS[post.status]]},
    )


def _apply_status(post: Post, status: int) -> bool:
    if post.status == status:
        return False
    post.status = status
    if status == POST.PUBLISHED and post.published_at is None:
        post.published_at = utcnow()
    return True


def set_status(post: Post, status: int, *, actor: Any, reason: str | None = None) -> bool:
    """Publish, hide or unpublish ``post``; return False if it already had ``status``.

    ``reason`` goes into the audit event (the reports that hid it, say).
    """
    _check_status(status)
    if not security.can(actor, security.MODERATE, security.POST):
        if not security.can(actor, security.CHANGE, post):
            raise PostError(_("You cannot change this post."))
        if status == POST.HIDDEN or post.status == POST.HIDDEN:
            raise PostError(_("Only staff can hide a post or show a hidden one."))
        if status == POST.PUBLISHED and not post.is_published:
            status = publishing_status(actor)
    old = post.status
    changed = _apply_status(post, status)
    if changed:
        post.updated_at = utcnow()
        if security.can(actor, security.MODERATE, security.POST):
            _record_status(post, old, reason)
        db.session.commit()
    return changed


def set_status_many(posts: Iterable[Post], status: int, *, actor: Any) -> int:
    """Moderate several posts at once; return how many changed."""
    _check_status(status)
    if not security.can(actor, security.MODERATE, security.POST):
        raise PostError(_("Only staff can moderate posts."))
    changed = 0
    now = utcnow()
    for post in posts:
        old = post.status
        if _apply_status(post, status):
            post.updated_at = now
            _record_status(post, old)
            changed += 1
    db.session.commit()
    return changed


def check_delete(post: Post, *, actor: Any) -> None:
    """Refuse (``PostError``) unless ``actor`` may delete ``post``: its author, or a moderator.

    ``portal.operations.delete_post`` deletes it, with the comments under it.
    """
    if not security.can(actor, security.CHANGE, post):
        raise PostError(_("You cannot delete this post."))


def check_delete_many(actor: Any) -> None:
    """Refuse (``PostError``) a bulk delete unless ``actor`` is a moderator."""
    if not security.can(actor, security.MODERATE, security.POST):
        raise PostError(_("Only staff can delete other people's posts."))


def record_delete(post: Post, *, actor: Any) -> None:
    """Note the deletion of ``post`` in the audit trail, unless a writer deletes their own."""
    if not _by_moderator(actor, post):
        return
    audit.record(
        AUDIT.ACTION_DELETE,
        AUDIT.OBJECT_POST,
        post.id,
        summary=f"Deleted “{post.title}” by {post.author.email} "
        f"and its {post.comment_count} approved comment(s)",
        changes={"title": [post.title, None], "status": [POST.STATUS[post.status], None]},
    )


# -- tags ----------------------------------------------------------------------


def _find_tag(name: str) -> Tag | None:
    # The same lower() as the unique index, so a lookup and the index agree.
    return db.session.execute(
        select(Tag).where(func.lower(Tag.name) == func.lower(name))
    ).scalar_one_or_none()


def _new_tag(name: str) -> Tag:
    slug = unique_slug(
        Tag.slug,
        slugify(name, max_length=POST.TAG_SLUG_MAX_LENGTH, fallback="tag"),
        max_length=POST.TAG_SLUG_MAX_LENGTH,
    )
    return Tag(name=name, slug=slug, created_at=utcnow())


def tags_named(names: Iterable[str]) -> list[Tag]:
    """Return the tags with these (clean) names, in their order; create the missing ones.

    Each new tag is written in a savepoint: if another request creates the
    same one at that moment, its row is used instead of failing the save.
    """
    wanted = list(dict.fromkeys(names))
    # One query for the tags that exist (by the unique index's lower()); one per new tag.
    existing = (
        {
            tag.name.lower(): tag
            for tag in db.session.execute(
                select(Tag).where(
                    func.lower(Tag.name).in_([func.lower(literal(name)) for name in wanted])
                )
            ).scalars()
        }
        if wanted
        else {}
    )
    tags: list[Tag] = []
    for name in wanted:
        tag = existing.get(name.lower())
        if tag is None:
            tag = _new_tag(name)
            try:
                with db.session.begin_nested():
                    db.session.add(tag)
            except IntegrityError:
                tag = _find_tag(name)
                if tag is None:
                    raise PostError(
                        _("Could not save the tags just now; please try again.")
                    ) from None
        if tag not in tags:
            tags.append(tag)
    return tags


def _check_tag_staff(actor: Any, action: str) -> None:
    if not security.can(actor, action, security.TAG):
        raise PostError(_("Only staff can manage tags."))


def _check_tag_name_free(name: str, tag: Tag | None = None) -> None:
    other = _find_tag(name)
    if other is not None and other is not tag:
        raise PostError(_("There is already a tag “%(name)s”.", name=other.name))


def create_tag(name: str, *, actor: Any) -> Tag:
    """Add a tag no post carries yet (staff, in the back office)."""
    _check_tag_staff(actor, security.ADD)
    name = clean_tag_name(name)
    _check_tag_name_free(name)
    tag = _new_tag(name)
    db.session.add(tag)
    db.session.flush()
    audit.record(
        AUDIT.ACTION_CREATE,
        AUDIT.OBJECT_TAG,
        tag.id,
        summary=f"Created tag “{tag.name}”",
        changes={"name": [None, tag.name], "slug": [None, tag.slug]},
    )
    _commit_tag()
    return tag


def rename_tag(tag: Tag, name: str, *, actor: Any) -> Tag:
    """Give a tag another name; its address (slug) stays, so links to it keep working."""
    _check_tag_staff(actor, security.CHANGE)
    name = clean_tag_name(name)
    _check_tag_name_free(name, tag)
    if name != tag.name:
        audit.record(
            AUDIT.ACTION_UPDATE,
            AUDIT.OBJECT_TAG,
            tag.id,
            summary=f"Renamed tag “{tag.name}” to “{name}”",
            changes={"name": [tag.name, name]},
        )
        tag.name = name
        _commit_tag()
    return tag


def delete_tags(tags: Iterable[Tag], *, actor: Any) -> int:
    """Delete tags; the posts that carried them stay, without them. Return how many went."""
    _check_tag_staff(actor, security.DELETE)
    count = 0
    for tag in tags:
        audit.record(
            AUDIT.ACTION_DELETE,
            AUDIT.OBJECT_TAG,
            tag.id,
            summary=f"Deleted tag “{tag.name}”",
            changes={"name": [tag.name, None], "slug": [tag.slug, None]},
        )
        db.session.execute(post_tags.delete().where(post_tags.c.tag_id == tag.id))
        db.session.delete(tag)
        count += 1
    db.session.commit()
    return count


def delete_tag(tag: Tag, *, actor: Any) -> None:
    """Delete one tag; the posts that carried it stay, without it."""
    delete_tags([tag], actor=actor)


def _commit_tag() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        # Another request took the name (or the slug) between our check and our write.
        db.session.rollback()
        raise PostError(_("Could not save the tag just now; please try again.")) from None


def get_tag(slug: str) -> Tag | None:
    """Return the tag at /tags/<slug>/, or None."""
    return db.session.execute(select(Tag).where(Tag.slug == slug)).scalar_one_or_none()


def tagged(tag: Tag) -> ColumnElement[bool]:
    """The condition "the post carries ``tag``", to add to ``published()`` and its kin."""
    return exists().where(post_tags.c.post_id == Post.id, post_tags.c.tag_id == tag.id)


def posts_tagged(
    tag: Tag, *, after: str | None = None, before: str | None = None
) -> Page[Row[Any]]:
    """Return a page of the published posts that carry ``tag``, newest first."""
    return _page(_published().where(tagged(tag)), after, before)


# -- reading -------------------------------------------------------------------


def _published() -> Select[*tuple[Any, ...]]:
    # The columns a list shows, with the author's, in one statement whatever the
    # page size; rows rather than objects, since lists only read them.
    return (
        select(
            Post.id,
            Post.title,
            Post.slug,
            Post.published_at,
            Post.comment_count,
            User.name.label("author_name"),
            User.handle.label("author_handle"),
        )
        .join(User, User.id == Post.author_id)
        .where(is_public())
    )


def is_public() -> ColumnElement[bool]:
    """The one rule for what readers see: published, at a time that has come.

    A post published for a later time is scheduled; no job flips it, the
    clock does. ``Post.is_published`` says the same of one loaded post.
    """
    return and_(Post.status == POST.PUBLISHED, Post.published_at <= utcnow())


def _page(
    statement: Select[*tuple[Any, ...]], after: str | None, before: str | None
) -> Page[Row[Any]]:
    return keyset_page(
        statement,
        Post.published_at,
        Post.id,
        lambda row: (row.published_at, row.id),
        per_page=current_app.config["POSTS_PER_PAGE"],
        after=after,
        before=before,
    )


def published() -> Select[*tuple[Any, ...]]:
    """Return the statement behind every public list: the posts readers may see, as list rows.

    Feeds, the sitemap and search build on it, so what is public is decided once.
    """
    return _published()


def published_page(*, after: str | None = None, before: str | None = None) -> Page[Row[Any]]:
    """Return a page of published posts, newest first (``portal.posts.search`` finds by words)."""
    return _page(_published(), after, before)


def posts_by(
    author: User, *, after: str | None = None, before: str | None = None
) -> Page[Row[Any]]:
    """Return a page of ``author``'s published posts, newest first."""
    return _page(_published().where(Post.author_id == author.id), after, before)


def get_by_slug(slug: str) -> Post | None:
    """Return the post at /posts/<slug>/ with its author and tags, whatever its status."""
    # Joined, not loaded after: the post page stays one statement for the post.
    return (
        db.session.execute(
            select(Post)
            .options(joinedload(Post.author), joinedload(Post.tags))
            .where(Post.slug == slug)
        )
        .unique()
        .scalar_one_or_none()
    )


def count_by_status() -> dict[int, int]:
    """Return how many posts have each status (for the dashboard)."""
    rows = db.session.execute(select(Post.status, func.count()).group_by(Post.status))
    counts = dict.fromkeys(POST.STATUS, 0)
    counts.update({status: count for status, count in rows})
    return counts


# -- an author's own posts -------------------------------------------------------


def _own_states(now: datetime) -> dict[str, ColumnElement[bool]]:
    # One condition per list of "Your posts"; they never overlap, so the counts
    # add up to the author's posts and a filter shows what its count says.
    scheduled = and_(Post.status == POST.PUBLISHED, Post.published_at > now)
    public = and_(
        Post.status == POST.PUBLISHED, or_(Post.published_at.is_(None), Post.published_at <= now)
    )
    return {
        POST.STATUS[POST.DRAFT]: Post.status == POST.DRAFT,
        POST.SCHEDULED: scheduled,
        POST.STATUS[POST.PUBLISHED]: public,
        POST.STATUS[POST.PENDING]: Post.status == POST.PENDING,
        POST.STATUS[POST.HIDDEN]: Post.status == POST.HIDDEN,
    }


def _own_state(now: datetime) -> ColumnElement[str]:
    return case(*((condition, state) for state, condition in _own_states(now).items()))


def own_counts(author: User) -> dict[str, int]:
    """Count ``author``'s posts in each of ``POST.OWN_STATES``, in one grouped query."""
    states = (
        select(_own_state(utcnow()).label("state")).where(Post.author_id == author.id).subquery()
    )
    # Grouped outside the subquery: PostgreSQL would not match a CASE with bound
    # parameters in the select list to the same CASE in GROUP BY.
    rows = db.session.execute(select(states.c.state, func.count()).group_by(states.c.state))
    counts = dict.fromkeys(POST.OWN_STATES, 0)
    counts.update({state: int(count) for state, count in rows if state in counts})
    return counts


def own_page(
    author: User,
    state: str | None = None,
    *,
    after: str | None = None,
    before: str | None = None,
) -> Page[Row[Any]]:
    """Return a page of ``author``'s posts in any status (or in ``state``), newest written first.

    Ordered by creation, not by the last edit, so saving a post while paging
    does not move it to another page.
    """
    now = utcnow()
    statement = select(
        Post.id,
        Post.title,
        Post.slug,
        Post.created_at,
        Post.updated_at,
        Post.published_at,
        _own_state(now).label("state"),
    ).where(Post.author_id == author.id)
    if state is not None:
        statement = statement.where(_own_states(now)[state])
    return keyset_page(
        statement,
        Post.created_at,
        Post.id,
        lambda row: (row.created_at, row.id),
        per_page=current_app.config["POSTS_PER_PAGE"],
        after=after,
        before=before,
    )


def preview_html(body: str) -> str:
    """Return the HTML ``body`` would be published as; empty for a blank body.

    The editor's live preview calls this: the body goes through the checks
    and the rendering a save does, so the preview is what readers will see.
    Raise ``PostError`` for a body a save would refuse (too long, too costly).
    """
    if not (body or "").strip():
        return ""
    return render_post(clean_body(body))
