"""The comment form; validation uses the same rule as the service."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import InputRequired
from wtforms.validators import ValidationError

from portal.comments import services


class CommentForm(FlaskForm):
    body = TextAreaField(
        _l("Your comment"),
        validators=[InputRequired(message=_l("Write something in your comment."))],
        description=_l("Plain text, with *italic*, **bold**, `code` and links."),
    )

    def validate_body(self, field: TextAreaField) -> None:
        try:
            field.data = services.clean_body(field.data or "")
            services.check_links(current_user, field.data)
        except services.CommentError as error:
            raise ValidationError(str(error)) from None
