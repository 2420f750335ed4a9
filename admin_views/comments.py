"""Comments as a moderation queue: waiting ones first, decided in bulk."""

from __future__ import annotations

from typing import Any

from flask import flash
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import TextAreaField
from wtforms.validators import Length
from wtforms.validators import Optional

from admin_views.actions import selected_ids
from admin_views.base import SecureModelView
from admin_views.formatters import author_of
from admin_views.formatters import choice_label
from admin_views.formatters import status_badge
from admin_views.formatters import stored_html
from admin_views.lists import CappedCount
from portal import security
from portal.audit import constants as AUDIT
from portal.comments import constants as COMMENT
from portal.comments import services
from portal.comments.models import Comment
from portal.extensions import db


class ReasonForm(FlaskForm):
    reason = TextAreaField(
        "Reason (optional)",
        validators=[Optional(), Length(max=COMMENT.REASON_MAX_LENGTH)],
        description="Kept with the decision and in the audit trail.",
    )


_status = status_badge(
    COMMENT.STATUS,
    {
        COMMENT.PENDING: "warning",
        COMMENT.APPROVED: "success",
        COMMENT.REJECTED: "secondary",
        COMMENT.SPAM: "danger",
    },
)


def _excerpt(view: Any, context: Any, model: Comment, name: str) -> str:
    # Plain text, escaped by the template: never the author's markup in a list.
    text = " ".join(model.body.split())
    return text if len(text) <= 140 else text[:139] + "…"


def _post(view: Any, context: Any, model: Comment, name: str) -> str:
    return model.post.title


class CommentView(SecureModelView):
    """Every comment; the menu shows how many wait."""

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

    column_list = ("id", "status", "post", "author", "body", "created_at", "moderated_at")
    column_labels = {
        "id": "#",
        "body": "Comment",
        "author.email": "Author email",
        "post.title": "Post title",
    }
    column_searchable_list = ("author.email",)
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
    column_labels_detail = {"body_html": "Comment"}
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

    # The menu shows every admin page, so its count stops here: "1,000+ waiting".
    menu_count_cap = 1000

    def menu_label(self) -> str:
        waiting = services.pending_count(up_to=self.menu_count_cap)
        if not waiting:
            return str(self.name)
        return f"{self.name} ({CappedCount.of(waiting, self.menu_count_cap)} waiting)"

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

    @action("approve", "Approve", None)
    def action_approve(self, ids: Any) -> Any:
        return self.ask_for_input("approve", ids)

    @action("reject", "Reject", None)
    def action_reject(self, ids: Any) -> Any:
        return self.ask_for_input("reject", ids)

    @action("spam", "Mark as spam", None)
    def action_spam(self, ids: Any) -> Any:
        return self.ask_for_input("spam", ids)

    @action("delete", "Delete", "Delete the selected comments?")
    def action_delete(self, ids: Any) -> None:
        count = services.delete_many(self.selection(selected_ids(ids)), actor=current_user)
        flash(f"{count} comment(s) deleted.", "success")

    def apply_action(self, name: str, models: list[Any], form: Any) -> None:
        status = {"approve": COMMENT.APPROVED, "reject": COMMENT.REJECTED, "spam": COMMENT.SPAM}
        try:
            changed = services.moderate(
                models, status[name], actor=current_user, reason=form.reason.data
            )
        except services.CommentError as error:
            db.session.rollback()
            flash(str(error), "error")
            return
        flash(f"{changed} comment(s) marked {COMMENT.STATUS[status[name]]}.", "success")
