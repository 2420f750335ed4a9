"""Forms for writing posts; validation uses the same rules as the services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField
from wtforms import RadioField
from wtforms import SearchField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import Optional
from wtforms.validators import ValidationError

from portal.posts import constants as POST
from portal.posts import services


class TagsField(StringField):
    """Tag names as one line of text: "Python, Flask"; shows a post's tags the same way."""

    def _value(self) -> str:
        if isinstance(self.data, list | tuple):
            return ", ".join(str(tag) for tag in self.data)
        return super()._value()


class PostForm(FlaskForm):
    """Title and Markdown body; the button pressed says publish or keep as a draft."""

    title = StringField(
        _l("Title"),
        validators=[InputRequired(message=_l("A title is required."))],
    )
    body = TextAreaField(
        _l("Body"),
        validators=[InputRequired(message=_l("Write something in the body."))],
        description=_l(
            "Markdown: **bold**, *italic*, [links](https://example.org), lists, "
            "code and tables. HTML is shown as text."
        ),
    )

    publish_at = DateTimeLocalField(
        _l("Publish at"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description=_l(
            "Leave empty to publish when you press Publish; a later time schedules the post."
        ),
    )

    tags = TagsField(
        _l("Tags"),
        description=_l(
            "Separate tags with commas, for example: travel, night trains. "
            "Readers find posts by them."
        ),
    )

    def validate_title(self, field: StringField) -> None:
        try:
            field.data = services.clean_title(field.data or "")
        except services.PostError as error:
            raise ValidationError(str(error)) from None

    def validate_body(self, field: TextAreaField) -> None:
        try:
            field.data = services.clean_body(field.data or "")
            services.check_links(current_user, field.data)
        except services.PostError as error:
            raise ValidationError(str(error)) from None

    def validate_tags(self, field: TagsField) -> None:
        # A form sent without the field at all (a script, an old page) keeps the tags.
        if not field.raw_data:
            field.data = None
            return
        try:
            field.data = services.clean_tags(str(field.raw_data[0]))
        except services.PostError as error:
            raise ValidationError(str(error)) from None


class StatusForm(FlaskForm):
    """A moderator's publish / hide / draft buttons on the post page."""

    status = RadioField(
        _l("Status"),
        choices=[SelectChoice(name, name.title()) for name in POST.STATUS.values()],
        validators=[InputRequired()],
    )


class PreviewForm(FlaskForm):
    """The body the editor's live preview posts, with the editor's CSRF token.

    ``services.preview_html`` applies a save's rules (``BODY_MAX_LENGTH`` counts
    line breaks as the save does, after the browser's CR LF become LF), and
    ``MAX_FORM_MEMORY_SIZE`` refuses a larger request before it is read.
    """

    body = TextAreaField()


class SearchForm(FlaskForm):
    """The title search on /posts/ (a GET form: no CSRF token needed)."""

    class Meta:
        csrf = False

    q = SearchField(_l("Search titles"), validators=[Length(max=POST.TITLE_MAX_LENGTH)])
