"""The comment form; validation uses the same rule as the service."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import InputRequired
from wtforms.validators import ValidationError

from portal.comments import services


class CommentForm(FlaskForm):
    body = TextAreaField(
        "Your comment",
        validators=[InputRequired(message="Write something in your comment.")],
        description="Plain text, with *italic*, **bold**, `code` and links.",
    )

    def validate_body(self, field: TextAreaField) -> None:
        try:
            field.data = services.clean_body(field.data or "")
        except services.CommentError as error:
            raise ValidationError(str(error)) from None
