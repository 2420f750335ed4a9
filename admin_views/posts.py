"""Posts: staff find, edit, publish, hide and delete them, and review the ones that wait."""

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
from wtforms import SelectField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired
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
from portal import operations
from portal import security
from portal.audit import constants as AUDIT
from portal.extensions import db
from portal.i18n import NAME_LABELS
from portal.i18n import name_label
from portal.posts import constants as POST
from portal.posts import services
from portal.posts.forms import PostForm
from portal.posts.models import Post


class PostEditForm(PostForm):
    """The public post form (same checks, same messages) plus the status staff set."""

    body = TextAreaField(
        _l("Body (Markdown)"),
        validators=[InputRequired(message=_l("Write something in the body."))],
        render_kw={"rows": 16},
    )
    status = SelectField(
        _l("Status"),
        choices=[SelectChoice(name, NAME_LABELS[name]) for name in POST.STATUS.values()],
    )


_status = status_badge(
    POST.STATUS,
    {
        POST.PUBLISHED: "success",
        POST.DRAFT: "info",
        POST.HIDDEN: "danger",
        POST.PENDING: "warning",
    },
)


class ReviewReasonForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (optional)"),
        validators=[Optional(), Length(max=POST.REASON_MAX_LENGTH)],
        description=_l("Kept in the audit trail."),
    )


# What each review decision, one-step or bulk, sets.
REVIEW_STATUS = {"approve": POST.PUBLISHED, "reject": POST.HIDDEN}


def _review_buttons(view: Any, context: Any, model: Post, name: str) -> Markup:
    # Only posts that wait have anything to decide; the rest show nothing.
    if not model.is_pending:
        return Markup("")
    return decision_buttons(view, context, model, name)


class PostView(HistoryMixin, DecisionsMixin, SecureModelView):
    """Every post, whatever its status; those waiting for review are decided in one step."""

    audit_type = AUDIT.OBJECT_POST
    subject = security.POST
    operations = {
        "edit": security.CHANGE,
        "delete": security.DELETE,
        "export": security.EXPORT,
        "view_details": security.VIEW,
    }
    action_rules = {
        "approve": security.MODERATE,
        "reject": security.MODERATE,
        "publish": security.MODERATE,
        "hide": security.MODERATE,
        "delete": security.DELETE,
    }
    input_actions = {"approve": ReviewReasonForm, "reject": ReviewReasonForm}
    # Posts that wait for review: one step each, no reason asked (the bulk
    # actions keep their reason page), as the comments queue does.
    decisions = (
        Decision("approve", _l("Approve"), "a", "success"),
        Decision("reject", _l("Reject"), "r", "secondary"),
    )
    list_template = "admin/posts/list.html"

    column_list = (
        "id",
        "title",
        "author",
        "status",
        DECISION_COLUMN,
        "comment_count",
        "published_at",
        "created_at",
    )
    label_attribute = "title"
    column_labels = {
        "id": _l("#"),
        "title": _l("Title"),
        "slug": _l("Address"),
        "author": _l("Author"),
        "author.email": _l("Author email"),
        "status": _l("Status"),
        "comment_count": _l("Comments"),
        "published_at": _l("Published"),
        "created_at": _l("Written"),
        "updated_at": _l("Last changed"),
        "body_html": _l("Body"),
        DECISION_COLUMN: _l("Review"),
    }
    column_searchable_list = ("title",)
    column_filters = ("status", "author.email", "published_at", "created_at", "updated_at")
    column_choices = {"status": list(POST.STATUS.items())}
    column_sortable_list = ("id", "published_at", "created_at")
    column_default_sort = ("id", True)
    column_formatters = {
        "status": _status,
        "author": author_of,
        DECISION_COLUMN: _review_buttons,
    }
    column_details_list = (
        "id",
        "title",
        "slug",
        "author",
        "status",
        "comment_count",
        "created_at",
        "updated_at",
        "published_at",
        "body_html",
    )
    column_formatters_detail = {"status": _status, "author": author_of, "body_html": stored_html}
    column_export_list = (
        "id",
        "title",
        "slug",
        "author.email",
        "status",
        "comment_count",
        "created_at",
        "published_at",
    )
    column_formatters_export = {"status": choice_label(POST.STATUS)}
    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)

    has_site_pages = True

    def row_name(self, model: Post) -> str:
        return _("the post “%(title)s”", title=self.object_label(model))

    def is_waiting(self, model: Post) -> bool:
        return model.is_pending

    def apply_decision(self, model: Post, decision: Decision) -> str:
        status = REVIEW_STATUS[decision.name]
        try:
            services.review([model], status, actor=current_user)
        except services.PostError as error:
            raise DecisionRefused(str(error)) from None
        return _(
            "%(name)s is now %(status)s.",
            name=self.row_name(model),
            status=name_label(POST.STATUS[status]),
        )

    def menu_label(self) -> str:
        return menu.waiting_label(self.name, "posts")

    def selection(self, ids: list[int]) -> list[Any]:
        return self._selected(ids)

    @action("approve", _l("Approve"), None)
    def action_approve(self, ids: Any) -> Any:
        return self.ask_for_input("approve", ids)

    @action("reject", _l("Reject"), None)
    def action_reject(self, ids: Any) -> Any:
        return self.ask_for_input("reject", ids)

    def apply_action(self, name: str, models: list[Any], form: Any) -> None:
        try:
            changed = services.review(
                models, REVIEW_STATUS[name], actor=current_user, reason=form.reason.data
            )
        except services.PostError as error:
            db.session.rollback()
            flash(str(error), "error")
            return
        flash(
            _(
                "%(count)s post(s) marked %(status)s.",
                count=changed,
                status=name_label(POST.STATUS[REVIEW_STATUS[name]]),
            ),
            "success",
        )

    def site_url(self, model: Post) -> str | None:
        return url_for("posts.detail", slug=model.slug) if model.is_published else None

    def get_edit_form(self) -> type[FlaskForm]:
        return PostEditForm

    def edit_form(self, obj: Any = None) -> FlaskForm:
        form = PostEditForm(obj=obj)
        if obj is not None and not form.is_submitted():
            form.status.data = obj.status_name
        return form

    def update_model(self, form: Any, model: Post) -> bool:
        try:
            services.update_post(
                model, form.title.data, form.body.data, actor=current_user, tags=form.tags.data
            )
            services.set_status(model, POST.status_by_name(form.status.data), actor=current_user)
        except services.PostError as error:
            db.session.rollback()
            flash(str(error), "error")
            return False
        return True

    def delete_model(self, model: Post) -> bool:
        operations.delete_post(model, actor=current_user)
        return True

    def _selected(self, ids: Any) -> list[Post]:
        return list(
            db.session.execute(
                select(Post).options(joinedload(Post.author)).where(Post.id.in_(selected_ids(ids)))
            ).scalars()
        )

    @action("publish", _l("Publish"), _l("Publish the selected posts?"))
    def action_publish(self, ids: Any) -> None:
        changed = services.set_status_many(self._selected(ids), POST.PUBLISHED, actor=current_user)
        flash(_("%(count)s post(s) published.", count=changed), "success")

    @action("hide", _l("Hide"), _l("Hide the selected posts from everyone but their authors?"))
    def action_hide(self, ids: Any) -> None:
        changed = services.set_status_many(self._selected(ids), POST.HIDDEN, actor=current_user)
        flash(_("%(count)s post(s) hidden.", count=changed), "success")

    @action("delete", _l("Delete"), _l("Delete the selected posts and every comment under them?"))
    def action_delete(self, ids: Any) -> None:
        count = operations.delete_posts(self._selected(ids), actor=current_user)
        flash(_("%(count)s post(s) deleted.", count=count), "success")
