"""Report a post or a comment: a page with a form, which works without script."""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from portal import security
from portal.comments import constants as COMMENT
from portal.comments import services as comment_services
from portal.extensions import login_manager
from portal.posts import services as post_services
from portal.reports import services
from portal.reports.forms import ReportForm
from portal.urls import MAX_ROW_ID

bp = Blueprint("reports", __name__)


def _page(target: services.Target, back: str) -> str | Response | tuple[str, int]:
    """Show the form, or file the report; refuse clearly who may not report this."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    problem = security.refusal(current_user, security.REPORT, target)
    if problem:
        return render_template(
            "reports/refused.html", target=target, problem=_(problem), back=back
        ), 403
    if services.has_reported(current_user, target):
        flash(_("You have already reported this. Staff will look at it."), "info")
        return redirect(back)
    form = ReportForm()
    if form.validate_on_submit():
        try:
            services.file_report(current_user, target, form.reason_value, form.note.data)
        except services.AlreadyReported as error:
            flash(str(error), "info")
        except services.ReportError as error:
            flash(str(error), "error")
            return render_template("reports/form.html", target=target, form=form, back=back)
        else:
            flash(_("Thank you. Staff will look at your report."), "success")
        return redirect(back)
    return render_template("reports/form.html", target=target, form=form, back=back)


@bp.route("/posts/<slug>/report/", methods=["GET", "POST"])
def report_post(slug: str) -> str | Response | tuple[str, int]:
    """Report a published post to staff."""
    post = post_services.get_by_slug(slug)
    if post is None or not post.is_published:
        abort(404)
    return _page(post, url_for("posts.detail", slug=post.slug))


@bp.route(f"/comments/<int(max={MAX_ROW_ID}):comment_id>/report/", methods=["GET", "POST"])
def report_comment(comment_id: int) -> str | Response | tuple[str, int]:
    """Report an approved comment to staff."""
    comment = comment_services.get(comment_id)
    if comment is None or comment.status != COMMENT.APPROVED or not comment.post.is_published:
        abort(404)
    back = url_for("posts.detail", slug=comment.post.slug, _anchor=f"comment-{comment.id}")
    return _page(comment, back)
