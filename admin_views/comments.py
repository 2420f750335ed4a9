"""Comments as a moderation queue: waiting ones first, decided one at a time or in bulk."""

from __future__ import annotations

from typing import Any

from flask import flash
from flask import url_for
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import TextAreaField
from wtforms.validators import Length
from wtforms.validators import Optional

from admin_views import menu
from admin_views.actions import selected_ids
from admin_views.base import SecureModelView
from admin_views.formatters import author_of
from admin_views.formatters import choice_label
from admin_views.formatters import status_badge
from admin_views.formatters import stored_html
from admin_views.history import HistoryMixin
from admin_views.moderation import DECISION_COLUMN
from admin_views.moderation import Decision
from admin_views.moderation import DecisionRefused
from admin_views.moderation import DecisionsMixin
from admin_views.moderation import decision_buttons
from portal import security
from portal.audit import constants as AUDIT
from portal.comments import constants as COMMENT
from portal.comments import services
from portal.comments.models import Comment
from portal.extensions import db
from portal.i18n import name_label
from portal.markup import shorten_html
from portal.pagination import encode_cursor


class ReasonForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (optional)"),
        validators=[Optional(), Length(max=COMMENT.REASON_MAX_LENGTH)],
        description=_l("Kept with the decision and in the audit trail."),
    )


# What each decision, one-step or bulk, sets.
DECISION_STATUS = {"approve": COMMENT.APPROVED, "reject": COMMENT.REJECTED, "spam": COMMENT.SPAM}

_status = status_badge(
    COMMENT.STATUS,
    {
        COMMENT.PENDING: "warning",
        COMMENT.APPROVED: "success",
        COMMENT.REJECTED: "secondary",
        COMMENT.SPAM: "danger",
    },
)


# The characters of a comment's text a list row shows.
EXCERPT_LENGTH = 200


def _excerpt(view: Any, context: Any, model: Comment, name: str) -> Markup:
    # As the post page shows it: the HTML sanitised when it was saved, its
    # text shortened without ever cutting the markup.
    return Markup('<div class="comment-excerpt">{}</div>').format(
        Markup(shorten_html(model.body_html, EXCERPT_LENGTH))
    )


def _post(view: Any, context: Any, model: Comment, name: str) -> Markup | str:
    # Linked to its public page, when visitors may open it.
    post = model.post
    if not post.is_published:
        return post.title
    return Markup('<a href="{}">{}</a>').format(url_for("posts.detail", slug=post.slug), post.title)


class CommentView(HistoryMixin, DecisionsMixin, SecureModelView):
    """Every comment; the menu shows how many wait, and each waiting row is decided in one step."""

    audit_type = AUDIT.OBJECT_COMMENT
    subject = security.COMMENT
    operations = {
        "delete": security.DELETE,
        "export": security.EXPORT,
        "view_details": security.VIEW,
    }
    action_rules = {
        "approve": security.MODERATE,
        "reject": security.MODERATE,
        "spam": security.MODERATE,
        "delete": security.DELETE,
    }
    input_actions = {"approve": ReasonForm, "reject": ReasonForm, "spam": ReasonForm}
    # One step each, no reason asked; the bulk actions above keep their reason page.
    decisions = (
        Decision("approve", _l("Approve"), "a", "success"),
        Decision("reject", _l("Reject"), "r", "secondary"),
        Decision("spam", _l("Spam"), "s", "danger"),
    )
    has_site_pages = True
    list_template = "admin/comments/list.html"

    column_list = (
        "id",
        "status",
        "post",
        "author",
        "body",
        DECISION_COLUMN,
        "created_at",
        "moderated_at",
    )
    column_labels = {
        "id": _l("#"),
        "status": _l("Status"),
        "post": _l("Post"),
        "author": _l("Author"),
        "body": _l("Comment"),
        DECISION_COLUMN: _l("Decide"),
        "body_html": _l("Comment"),
        "author.email": _l("Author email"),
        "post.title": _l("Post title"),
        "created_at": _l("Written"),
        "updated_at": _l("Last changed"),
        "moderated_by": _l("Decided by"),
        "moderated_at": _l("Decided"),
        "moderation_reason": _l("Reason"),
    }
    column_searchable_list = ("author.email", "author.name")
    column_filters = ("status", "created_at", "moderated_at", "author.email", "post.title")
    column_choices = {"status": list(COMMENT.STATUS.items())}
    column_sortable_list = ("id", "status", "created_at")
    # The queue: waiting comments first, oldest first (one index serves it).
    column_default_sort = [("status", False), ("created_at", False)]
    column_formatters = {
        "status": _status,
        "body": _excerpt,
        "post": _post,
        "author": author_of,
        DECISION_COLUMN: decision_buttons,
    }
    column_details_list = (
        "id",
        "status",
        "post",
        "author",
        "created_at",
        "updated_at",
        "moderated_by",
        "moderated_at",
        "moderation_reason",
        "body_html",
    )
    column_labels_detail = {"body_html": _l("Comment")}
    column_formatters_detail = {
        "status": _status,
        "post": _post,
        "author": author_of,
        "body_html": stored_html,
    }
    column_export_list = (
        "id",
        "status",
        "post.title",
        "author.email",
        "body",
        "created_at",
        "moderated_at",
        "moderation_reason",
    )
    column_formatters_export = {"status": choice_label(COMMENT.STATUS)}
    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)

    def row_name(self, model: Comment) -> str:
        return _("comment #%(id)s", id=model.id)

    def is_waiting(self, model: Comment) -> bool:
        return model.status == COMMENT.PENDING

    def apply_decision(self, model: Comment, decision: Decision) -> str:
        status = DECISION_STATUS[decision.name]
        try:
            services.moderate([model], status, actor=current_user)
        except services.CommentError as error:
            raise DecisionRefused(str(error)) from None
        return _(
            "Comment #%(id)s marked %(status)s.",
            id=model.id,
            status=name_label(COMMENT.STATUS[status]),
        )

    def site_url(self, model: Comment) -> str | None:
        # Approved under a published post: the post's page, from this comment on.
        if model.status != COMMENT.APPROVED or not model.post.is_published:
            return None
        start = encode_cursor(model.created_at, model.id - 1)
        return url_for(
            "posts.detail", slug=model.post.slug, after=start, _anchor=f"comment-{model.id}"
        )

    def menu_label(self) -> str:
        return menu.waiting_label(self.name, "comments")

    def selection(self, ids: list[int]) -> list[Any]:
        if not ids:
            return []
        return list(
            db.session.execute(
                select(Comment)
                .options(joinedload(Comment.author), joinedload(Comment.post))
                .where(Comment.id.in_(ids))
                .order_by(Comment.id)
            ).scalars()
        )

    def delete_model(self, model: Comment) -> bool:
        services.delete_comment(model, actor=current_user)
        return True

    @action("approve", _l("Approve"), None)
    def action_approve(self, ids: Any) -> Any:
        return self.ask_for_input("approve", ids)

    @action("reject", _l("Reject"), None)
    def action_reject(self, ids: Any) -> Any:
        return self.ask_for_input("reject", ids)

    @action("spam", _l("Mark as spam"), None)
    def action_spam(self, ids: Any) -> Any:
        return self.ask_for_input("spam", ids)

    @action("delete", _l("Delete"), _l("Delete the selected comments?"))
    def action_delete(self, ids: Any) -> None:
        count = services.delete_many(self.selection(selected_ids(ids)), actor=current_user)
        flash(_("%(count)s comment(s) deleted.", count=count), "success")

    def apply_action(self, name: str, models: list[Any], form: Any) -> None:
        status = DECISION_STATUS
        try:
            changed = services.moderate(
                models, status[name], actor=current_user, reason=form.reason.data
            )
        except services.CommentError as error:
            db.session.rollback()
            flash(str(error), "error")
            return
        flash(
            _(
                "%(count)s comment(s) marked %(status)s.",
                count=changed,
                status=name_label(COMMENT.STATUS[status[name]]),
            ),
            "success",
        )
