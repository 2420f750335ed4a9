"""Tags: staff list, find, add, rename and delete them; writers add new ones as they tag posts."""

from __future__ import annotations

from typing import Any

from flask import flash
from flask import url_for
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import undefer
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import ValidationError

from admin_views.actions import selected_ids
from admin_views.base import SecureModelView
from admin_views.history import HistoryMixin
from portal import security
from portal.audit import constants as AUDIT
from portal.extensions import db
from portal.posts import services
from portal.posts.models import Tag


class TagForm(FlaskForm):
    """A tag's name; its address is made from it once, and a rename keeps the address."""

    name = StringField(
        _l("Name"),
        validators=[InputRequired(message=_l("A tag needs a name."))],
        description=_l("A rename keeps the tag's address, so links to it keep working."),
    )

    def validate_name(self, field: StringField) -> None:
        try:
            field.data = services.clean_tag_name(field.data or "")
        except services.PostError as error:
            raise ValidationError(str(error)) from None


class TagView(HistoryMixin, SecureModelView):
    """Every tag with how many posts carry it; deleting one leaves the posts, untagged."""

    audit_type = AUDIT.OBJECT_TAG
    # Whoever moderates posts manages their tags (staff and admins; the gate's "tag" rule).
    subject = security.TAG
    operations = {
        "create": security.ADD,
        "edit": security.CHANGE,
        "delete": security.DELETE,
        "view_details": security.VIEW,
    }
    action_rules = {"delete": security.DELETE}

    column_list = ("name", "slug", "post_count", "created_at")
    column_details_list = ("id", "name", "slug", "post_count", "created_at")
    label_attribute = "name"
    column_labels = {
        "id": _l("#"),
        "name": _l("Name"),
        "slug": _l("Address"),
        "post_count": _l("Posts"),
        "created_at": _l("Created"),
    }
    column_searchable_list = ("name",)
    column_filters = ("created_at",)
    column_sortable_list = ("name", "created_at")
    column_default_sort = [("name", False), ("id", False)]
    page_size = 50

    has_site_pages = True

    def get_query(self) -> Any:
        # The post counts come in the same statement as the page of tags.
        return super().get_query().options(undefer(Tag.post_count))

    def row_name(self, model: Tag) -> str:
        return _("the tag “%(name)s”", name=self.object_label(model))

    def site_url(self, model: Tag) -> str | None:
        return url_for("posts.tag", slug=model.slug)

    def get_create_form(self) -> type[FlaskForm]:
        return TagForm

    def get_edit_form(self) -> type[FlaskForm]:
        return TagForm

    def create_form(self, obj: Any = None) -> FlaskForm:
        return TagForm()

    def edit_form(self, obj: Any = None) -> FlaskForm:
        return TagForm(obj=obj)

    def create_model(self, form: Any) -> Tag | bool:
        try:
            tag = services.create_tag(form.name.data, actor=current_user)
        except services.PostError as error:
            db.session.rollback()
            flash(str(error), "error")
            return False
        return tag

    def update_model(self, form: Any, model: Tag) -> bool:
        try:
            services.rename_tag(model, form.name.data, actor=current_user)
        except services.PostError as error:
            db.session.rollback()
            flash(str(error), "error")
            return False
        return True

    @action("delete", _l("Delete"), _l("Delete the selected tags? Their posts stay, untagged."))
    def action_delete(self, ids: Any) -> None:
        tags = db.session.execute(select(Tag).where(Tag.id.in_(selected_ids(ids)))).scalars()
        try:
            count = services.delete_tags(list(tags), actor=current_user)
        except services.PostError as error:
            db.session.rollback()
            flash(str(error), "error")
            return
        flash(_("%(count)s tag(s) deleted.", count=count), "success")

    def delete_model(self, model: Tag) -> bool:
        try:
            services.delete_tag(model, actor=current_user)
        except services.PostError as error:
            db.session.rollback()
            flash(str(error), "error")
            return False
        return True
