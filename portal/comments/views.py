"""Comment actions: write under a post, edit while pending, delete."""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import security
from portal.comments import constants as COMMENT
from portal.comments import services
from portal.comments.forms import CommentForm
from portal.comments.models import Comment
from portal.extensions import limiter
from portal.extensions import login_manager
from portal.forms import ActionForm
from portal.posts import services as post_services
from portal.posts.decorators import writer_required
from portal.posts.views import is_not_newcomer
from portal.posts.views import render_post_page
from portal.posts.views import writer_key
from portal.urls import MAX_ROW_ID

bp = Blueprint("comments", __name__)


def _comment_write_limit() -> str:
    return str(current_app.config["COMMENT_WRITE_LIMIT"])


def _new_account_comment_limit() -> str:
    return str(current_app.config["NEW_ACCOUNT_COMMENT_WRITE_LIMIT"])


# Every save renders Markdown, so new comments and edits share one limit per account;
# newcomers' saves also count towards a tighter one.
comment_write_limit = limiter.shared_limit(
    _comment_write_limit, scope="comment-write", key_func=writer_key, methods=["POST"]
)
new_account_comment_limit = limiter.shared_limit(
    _new_account_comment_limit,
    scope="comment-write-new-account",
    key_func=writer_key,
    methods=["POST"],
    exempt_when=is_not_newcomer,
)

# A comment id in a link: a number no row can have is no page (404), and never
# reaches the database, which would refuse it.
COMMENT_ID = f"int(max={MAX_ROW_ID}):comment_id"


def _comment_for_change(comment_id: int) -> Comment:
    """Return a comment the visitor may see: approved on a visible post, or their own.

    Anyone else's unpublished comment answers 404, as if it did not exist.
    """
    if not current_user.is_authenticated:
        abort(login_manager.unauthorized())
    comment = services.get(comment_id)
    if comment is None or not security.can(current_user, security.VIEW, comment.post):
        abort(404)
    visible = (
        comment.status == COMMENT.APPROVED
        or comment.author_id == current_user.id
        or security.can(current_user, security.MODERATE, security.COMMENT)
    )
    if not visible:
        abort(404)
    return comment


def _back_to(comment: Comment) -> str:
    return url_for("posts.detail", slug=comment.post.slug, _anchor=f"comment-{comment.id}")


@bp.route("/posts/<slug>/comments/", methods=["POST"])
@writer_required
@comment_write_limit
@new_account_comment_limit
def create(slug: str) -> str | Response:
    """Add a comment under a published post."""
    post = post_services.get_by_slug(slug)
    if post is None or not security.can(current_user, security.VIEW, post):
        abort(404)
    form = CommentForm()
    if form.validate_on_submit():
        try:
            comment = services.add_comment(post, current_user, form.body.data)
        except services.CommentError as error:
            flash(str(error), "error")
            return redirect(url_for("posts.detail", slug=post.slug))
        if comment.status == COMMENT.PENDING:
            flash(_("Thank you. Your comment will appear once a moderator approves it."), "info")
        else:
            flash(_("Your comment is published."), "success")
        return redirect(_back_to(comment))
    return render_post_page(post, form)


@bp.route(f"/comments/<{COMMENT_ID}>/edit/", methods=["GET", "POST"])
@comment_write_limit
@new_account_comment_limit
def edit(comment_id: int) -> str | Response:
    """Change a comment while it waits for moderation."""
    comment = _comment_for_change(comment_id)
    if not security.can(current_user, security.CHANGE, comment):
        abort(403)
    form = CommentForm(obj=comment)
    if form.validate_on_submit():
        try:
            services.update_comment(comment, form.body.data, actor=current_user)
        except services.CommentError as error:
            flash(str(error), "error")
        else:
            flash(_("Your comment is updated."), "success")
            return redirect(_back_to(comment))
    return render_template("comments/edit.html", comment=comment, form=form)


@bp.route(f"/comments/<{COMMENT_ID}>/delete/", methods=["GET", "POST"])
def delete(comment_id: int) -> str | Response:
    """Ask, then delete a comment."""
    comment = _comment_for_change(comment_id)
    if not security.can(current_user, security.DELETE, comment):
        abort(403)
    form = ActionForm()
    if form.validate_on_submit():
        slug = comment.post.slug
        services.delete_comment(comment, actor=current_user)
        flash(_("The comment is deleted."), "success")
        return redirect(url_for("posts.detail", slug=slug))
    return render_template("comments/delete.html", comment=comment, form=form)
