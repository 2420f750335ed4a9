"""Public post pages: the lists, a post with its comments, writing, profiles."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_limiter.util import get_remote_address
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import operations
from portal import security
from portal.cache import get_page
from portal.cache import keep_page
from portal.cache import page_key
from portal.comments import services as comment_services
from portal.comments.forms import CommentForm
from portal.extensions import limiter
from portal.extensions import login_manager
from portal.forms import ActionForm
from portal.pagination import BadCursor
from portal.pagination import Page
from portal.posts import constants as POST
from portal.posts import services
from portal.posts.decorators import writer_required
from portal.posts.forms import PostForm
from portal.posts.forms import SearchForm
from portal.posts.forms import StatusForm
from portal.posts.models import Post
from portal.users import services as user_services

bp = Blueprint("posts", __name__)


def writer_key() -> str:
    """Rate-limit key for saving posts and comments: the account, whatever its address."""
    if current_user.is_authenticated:
        return f"account:{current_user.id}"
    return get_remote_address()


def _post_write_limit() -> str:
    return str(current_app.config["POST_WRITE_LIMIT"])


# Every save renders Markdown, so new posts and edits share one limit per account.
post_write_limit = limiter.shared_limit(
    _post_write_limit, scope="post-write", key_func=writer_key, methods=["POST"]
)


def _cursors() -> dict[str, str | None]:
    return {"after": request.args.get("after"), "before": request.args.get("before")}


def _visible_post(slug: str) -> Post:
    """Return the post at ``slug`` if the visitor may see it; drafts and hidden ones 404."""
    post = services.get_by_slug(slug)
    if post is None or not security.can(current_user, security.VIEW, post):
        abort(404)
    return post


def _editable_post(slug: str) -> Post:
    post = _visible_post(slug)
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    if not security.can(current_user, security.CHANGE, post):
        abort(403)
    return post


def _publish_choice() -> bool | None:
    # The button pressed: "publish", "draft", or "save" (keep the status as it is).
    return {"publish": True, "draft": False}.get(request.form.get("action", ""))


@bp.route("/posts/")
def index() -> str:
    """All published posts, newest first, with a title search."""
    form = SearchForm(request.args)
    query = form.q.data.strip() if form.validate() and form.q.data else ""
    try:
        page = services.published_page(query=query, **_cursors())
    except BadCursor:
        abort(400)
    return render_template("posts/index.html", page=page, form=form, query=query)


@bp.route("/posts/new/", methods=["GET", "POST"])
@writer_required
@post_write_limit
def new() -> str | Response:
    """Write a post; publish it now or keep it as a draft."""
    form = PostForm()
    if form.validate_on_submit():
        try:
            post = services.create_post(
                current_user, form.title.data, form.body.data, publish=_publish_choice() is True
            )
        except services.PostError as error:
            flash(str(error), "error")
        else:
            flash("Your post is published." if post.is_published else "Draft saved.", "success")
            return redirect(url_for("posts.detail", slug=post.slug))
    return render_template("posts/form.html", form=form, post=None)


@bp.route("/posts/<slug>/")
def detail(slug: str) -> str:
    """One post with its approved comments; its author also sees their waiting ones."""
    post = _visible_post(slug)
    if not post.is_published:
        return render_post_page(post)
    # Readers who are not signed in share one rendering per version of the page.
    key = page_key(
        "post",
        post.id,
        post.updated_at.isoformat(),
        post.comment_count,
        request.args.get("after", ""),
        request.args.get("before", ""),
    )
    page = get_page(key)
    if page is None:
        page = render_post_page(post)
        keep_page(key, page)
    return page


def render_post_page(post: Post, comment_form: CommentForm | None = None) -> str:
    """Render the post page; the comment view reuses it to show a refused comment's errors.

    Forms are built only for those who see them: a reader's page then carries
    no CSRF token, sets no cookie, and can be kept by a shared cache.
    """
    try:
        comments: Page[Any] = comment_services.approved_page(post, **_cursors())
    except BadCursor:
        abort(400)
    can_comment = post.is_published and security.can(current_user, security.ADD, security.COMMENT)
    can_moderate = security.can(current_user, security.MODERATE, security.POST)
    if comment_form is None and can_comment:
        comment_form = CommentForm()
    return render_template(
        "posts/detail.html",
        post=post,
        comments=comments,
        waiting=comment_services.waiting_for(post, current_user),
        comment_form=comment_form,
        status_form=StatusForm() if can_moderate else None,
        can_edit=security.can(current_user, security.CHANGE, post),
        can_moderate=can_moderate,
        can_comment=can_comment,
    )


@bp.route("/posts/<slug>/edit/", methods=["GET", "POST"])
@post_write_limit
def edit(slug: str) -> str | Response:
    """Change a post's title and body; its address stays the same."""
    post = _editable_post(slug)
    form = PostForm(obj=post)
    if form.validate_on_submit():
        try:
            services.update_post(
                post, form.title.data, form.body.data, actor=current_user, publish=_publish_choice()
            )
        except services.PostError as error:
            flash(str(error), "error")
        else:
            flash("Your changes are saved.", "success")
            return redirect(url_for("posts.detail", slug=post.slug))
    return render_template("posts/form.html", form=form, post=post)


@bp.route("/posts/<slug>/delete/", methods=["GET", "POST"])
def delete(slug: str) -> str | Response:
    """Ask, then delete a post and the comments under it."""
    post = _editable_post(slug)
    form = ActionForm()
    if form.validate_on_submit():
        operations.delete_post(post, actor=current_user)
        flash(f"“{post.title}” is deleted.", "success")
        return redirect(url_for("posts.index"))
    return render_template("posts/delete.html", post=post, form=form)


@bp.route("/posts/<slug>/status/", methods=["POST"])
def set_status(slug: str) -> ResponseReturnValue:
    """A moderator publishes, hides or unpublishes a post from its page."""
    post = _visible_post(slug)
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    if not security.can(current_user, security.MODERATE, security.POST):
        abort(403)
    form = StatusForm()
    if not form.validate_on_submit():
        abort(400)
    status = POST.status_by_name(form.status.data)
    if services.set_status(post, status, actor=current_user):
        flash(f"The post is now {POST.STATUS[status]}.", "success")
    return redirect(url_for("posts.detail", slug=post.slug))


@bp.route("/users/<handle:handle>/")
def profile(handle: str) -> str:
    """Someone's public profile: their name and their published posts."""
    person = user_services.get_by_handle(handle)
    if person is None:
        abort(404)
    try:
        page = services.posts_by(person, **_cursors())
    except BadCursor:
        abort(400)
    return render_template("posts/profile.html", person=person, page=page)
