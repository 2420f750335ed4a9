"""Forms for writing posts; validation uses the same rules as the services."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms import SearchField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import ValidationError

from portal.posts import constants as POST
from portal.posts import services


class PostForm(FlaskForm):
    """Title and Markdown body; the button pressed says publish or keep as a draft."""

    title = StringField(
        "Title",
        validators=[InputRequired(message="A title is required.")],
    )
    body = TextAreaField(
        "Body",
        validators=[InputRequired(message="Write something in the body.")],
        description="Markdown: **bold**, *italic*, [links](https://example.org), lists, "
        "code and tables. HTML is shown as text.",
    )

    def validate_title(self, field: StringField) -> None:
        try:
            field.data = services.clean_title(field.data or "")
        except services.PostError as error:
            raise ValidationError(str(error)) from None

    def validate_body(self, field: TextAreaField) -> None:
        try:
            field.data = services.clean_body(field.data or "")
        except services.PostError as error:
            raise ValidationError(str(error)) from None


class StatusForm(FlaskForm):
    """A moderator's publish / hide / draft buttons on the post page."""

    status = RadioField(
        "Status",
        choices=[SelectChoice(name, name.title()) for name in POST.STATUS.values()],
        validators=[InputRequired()],
    )


class SearchForm(FlaskForm):
    """The title search on /posts/ (a GET form: no CSRF token needed)."""

    class Meta:
        csrf = False

    q = SearchField("Search titles", validators=[Length(max=POST.TITLE_MAX_LENGTH)])
