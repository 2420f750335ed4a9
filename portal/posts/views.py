"""Public post pages: the lists, a post with its comments, writing, profiles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_login import login_required
from markupsafe import Markup
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
from portal.formatting import from_reader_time
from portal.formatting import show_datetime
from portal.formatting import to_reader_time
from portal.forms import ActionForm
from portal.i18n import name_label
from portal.markup import render_post
from portal.pagination import BadCursor
from portal.pagination import Page
from portal.posts import constants as POST
from portal.posts import search
from portal.posts import services
from portal.posts.decorators import writer_required
from portal.posts.forms import PostForm
from portal.posts.forms import PreviewForm
from portal.posts.forms import SearchForm
from portal.posts.forms import StatusForm
from portal.posts.models import Post
from portal.posts.models import Tag
from portal.users import services as user_services

bp = Blueprint("posts", __name__)


def writer_key() -> str:
    """Rate-limit key for saving posts and comments: the account, whatever its address."""
    if current_user.is_authenticated:
        return f"account:{current_user.id}"
    return get_remote_address()


def _post_write_limit() -> str:
    return str(current_app.config["POST_WRITE_LIMIT"])


def is_not_newcomer() -> bool:
    """Exempt from the newcomers' limits: anyone but an account younger than NEW_ACCOUNT_DAYS."""
    return not user_services.is_newcomer(current_user)


def _new_account_post_limit() -> str:
    return str(current_app.config["NEW_ACCOUNT_POST_WRITE_LIMIT"])


# Every save renders Markdown, so new posts and edits share one limit per account;
# newcomers' saves also count towards a tighter one.
post_write_limit = limiter.shared_limit(
    _post_write_limit, scope="post-write", key_func=writer_key, methods=["POST"]
)
new_account_post_limit = limiter.shared_limit(
    _new_account_post_limit,
    scope="post-write-new-account",
    key_func=writer_key,
    methods=["POST"],
    exempt_when=is_not_newcomer,
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


def _publish_at(form: PostForm) -> datetime | None:
    # The form's time is the writer's wall-clock time; it is stored in UTC.
    return from_reader_time(form.publish_at.data) if form.publish_at.data else None


def _previewing() -> bool:
    return request.form.get("action") == "preview"


def _preview(form: PostForm) -> Markup | None:
    """The body as it will be published, when the Preview button was pressed."""
    if request.method != "POST" or not _previewing() or not form.body.data:
        return None
    return Markup(render_post(form.body.data))


def _publish_choice() -> bool | None:
    # The button pressed: "publish", "draft", or "save" (keep the status as it is).
    return {"publish": True, "draft": False}.get(request.form.get("action", ""))


def _tag_or_404(slug: str) -> Tag:
    tag = services.get_tag(slug)
    if tag is None:
        abort(404)
    return tag


@bp.route("/posts/")
def index() -> str:
    """All published posts, newest first; with ``q``, the posts that match it, best first.

    With ``tag``, either list holds only the posts that carry that tag.
    """
    form = SearchForm(request.args)
    query = form.q.data.strip() if form.validate() and form.q.data else ""
    slug = request.args.get("tag", "")
    tag = _tag_or_404(slug) if slug else None
    if query:
        try:
            results = search.search_page(query, page=request.args.get("page"), tag=tag)
        except search.BadPage:
            abort(404)
        return render_template(
            "posts/search.html", results=results, form=form, query=query, tag=tag
        )
    try:
        if tag is None:
            page = services.published_page(**_cursors())
        else:
            page = services.posts_tagged(tag, **_cursors())
    except BadCursor:
        abort(400)
    return render_template("posts/index.html", page=page, form=form, query=query, tag=tag)


@bp.route("/tags/<slug>/")
def tag(slug: str) -> str:
    """The published posts that carry one tag, newest first, with a link to its feed."""
    found = _tag_or_404(slug)
    try:
        page = services.posts_tagged(found, **_cursors())
    except BadCursor:
        abort(400)
    return render_template("posts/tag.html", tag=found, page=page, form=SearchForm(request.args))


@bp.route("/posts/new/", methods=["GET", "POST"])
@writer_required
@post_write_limit
@new_account_post_limit
def new() -> str | Response:
    """Write a post; publish it now or keep it as a draft."""
    form = PostForm()
    if form.validate_on_submit() and not _previewing():
        try:
            post = services.create_post(
                current_user,
                form.title.data,
                form.body.data,
                publish=_publish_choice() is True,
                publish_at=_publish_at(form),
                tags=form.tags.data or (),
            )
        except services.PostError as error:
            flash(str(error), "error")
        else:
            flash(_saved_message(post), "success")
            return redirect(url_for("posts.detail", slug=post.slug))
    return render_template("posts/form.html", form=form, post=None, preview=_preview(form))


def _saved_message(post: Post) -> str:
    if post.is_scheduled:
        return _(
            "Your post is scheduled: readers will see it from %(time)s.",
            time=show_datetime(post.published_at),
        )
    if post.is_published:
        return _("Your post is published.")
    if post.is_pending:
        return _("Your post is waiting for review: readers will see it once staff approve it.")
    return _("Draft saved.")


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
        # A tag renamed in the back office changes the page, not the post.
        "|".join(tag.name for tag in post.tags),
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
@new_account_post_limit
def edit(slug: str) -> str | Response:
    """Change a post's title and body; its address stays the same."""
    post = _editable_post(slug)
    form = PostForm(obj=post)
    if request.method == "GET" and post.published_at is not None and post.is_scheduled:
        form.publish_at.data = to_reader_time(post.published_at)
    if form.validate_on_submit() and not _previewing():
        try:
            services.update_post(
                post,
                form.title.data,
                form.body.data,
                actor=current_user,
                publish=_publish_choice(),
                publish_at=_publish_at(form),
                tags=form.tags.data,
            )
        except services.PostError as error:
            flash(str(error), "error")
        else:
            flash(
                _saved_message(post) if post.is_scheduled else _("Your changes are saved."),
                "success",
            )
            return redirect(url_for("posts.detail", slug=post.slug))
    return render_template("posts/form.html", form=form, post=post, preview=_preview(form))


@bp.route("/posts/<slug>/delete/", methods=["GET", "POST"])
def delete(slug: str) -> str | Response:
    """Ask, then delete a post and the comments under it."""
    post = _editable_post(slug)
    form = ActionForm()
    if form.validate_on_submit():
        operations.delete_post(post, actor=current_user)
        flash(_("“%(title)s” is deleted.", title=post.title), "success")
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
        flash(_("The post is now %(status)s.", status=name_label(POST.STATUS[status])), "success")
    return redirect(url_for("posts.detail", slug=post.slug))


def _post_preview_limit() -> str:
    return str(current_app.config["POST_PREVIEW_LIMIT"])


@bp.route("/posts/preview/", methods=["POST"])
@writer_required
@limiter.limit(_post_preview_limit, scope="post-preview", key_func=writer_key)
def preview() -> ResponseReturnValue:
    """Return the body as it will be published: the editor's live preview fetches it."""
    form = PreviewForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        html = Markup(services.preview_html(form.body.data or ""))
    except services.PostError as error:
        return Markup('<p class="error">%s</p>') % str(error), 422
    return html


@bp.route("/users/me/posts/")
@login_required
def mine() -> Response:
    """The signed-in account's own posts in every state, with how many each state holds."""
    state = request.args.get("state") or None
    if state is not None and state not in POST.OWN_STATES:
        abort(404)
    try:
        page = services.own_page(current_user, state, **_cursors())
    except BadCursor:
        abort(400)
    response = make_response(
        render_template(
            "posts/mine.html",
            page=page,
            state=state,
            counts=services.own_counts(current_user),
        )
    )
    # An account page: drafts and scheduled titles stay out of every cache.
    response.headers["Cache-Control"] = "no-store"
    return response


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
