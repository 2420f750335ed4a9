"""Posts: staff find, edit, publish, hide and delete them."""

from __future__ import annotations

from typing import Any

from flask import flash
from flask_admin.actions import action
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import SelectField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from admin_views.actions import selected_ids
from admin_views.base import SecureModelView
from admin_views.formatters import author_of
from admin_views.formatters import choice_label
from admin_views.formatters import status_badge
from admin_views.formatters import stored_html
from portal import operations
from portal import security
from portal.audit import constants as AUDIT
from portal.extensions import db
from portal.posts import constants as POST
from portal.posts import services
from portal.posts.forms import PostForm
from portal.posts.models import Post


class PostEditForm(PostForm):
    """The public post form (same checks, same messages) plus the status staff set."""

    body = TextAreaField(
        "Body (Markdown)",
        validators=[InputRequired(message="Write something in the body.")],
        render_kw={"rows": 16},
    )
    status = SelectField(
        "Status", choices=[SelectChoice(name, name.title()) for name in POST.STATUS.values()]
    )


_status = status_badge(
    POST.STATUS, {POST.PUBLISHED: "success", POST.DRAFT: "info", POST.HIDDEN: "danger"}
)


class PostView(SecureModelView):
    """Every post, whatever its status."""

    audit_type = AUDIT.OBJECT_POST
    subject = security.POST
    operations = {
        "edit": security.CHANGE,
        "delete": security.DELETE,
        "export": security.EXPORT,
        "view_details": security.VIEW,
    }
    action_rules = {
        "publish": security.MODERATE,
        "hide": security.MODERATE,
        "delete": security.DELETE,
    }

    column_list = ("id", "title", "author", "status", "comment_count", "published_at", "created_at")
    column_labels = {"id": "#", "comment_count": "Comments", "author.email": "Author email"}
    column_searchable_list = ("title",)
    column_filters = ("status", "author.email", "published_at", "created_at", "updated_at")
    column_choices = {"status": list(POST.STATUS.items())}
    column_sortable_list = ("id", "published_at", "created_at")
    column_default_sort = ("id", True)
    column_formatters = {"status": _status, "author": author_of}
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
    column_labels_detail = {"body_html": "Body"}
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

    def get_edit_form(self) -> type[FlaskForm]:
        return PostEditForm

    def edit_form(self, obj: Any = None) -> FlaskForm:
        form = PostEditForm(obj=obj)
        if obj is not None and not form.is_submitted():
            form.status.data = obj.status_name
        return form

    def update_model(self, form: Any, model: Post) -> bool:
        try:
            services.update_post(model, form.title.data, form.body.data, actor=current_user)
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

    @action("publish", "Publish", "Publish the selected posts?")
    def action_publish(self, ids: Any) -> None:
        changed = services.set_status_many(self._selected(ids), POST.PUBLISHED, actor=current_user)
        flash(f"{changed} post(s) published.", "success")

    @action("hide", "Hide", "Hide the selected posts from everyone but their authors?")
    def action_hide(self, ids: Any) -> None:
        changed = services.set_status_many(self._selected(ids), POST.HIDDEN, actor=current_user)
        flash(f"{changed} post(s) hidden.", "success")

    @action("delete", "Delete", "Delete the selected posts and every comment under them?")
    def action_delete(self, ids: Any) -> None:
        count = operations.delete_posts(self._selected(ids), actor=current_user)
        flash(f"{count} post(s) deleted.", "success")
