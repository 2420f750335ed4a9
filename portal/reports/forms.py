"""The report form: a reason, and a note if the reader wants to say more."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired
from wtforms.validators import ValidationError

from portal.reports import constants as REPORT
from portal.reports import services

# How each reason reads on the form.
REASON_LABELS = {
    REPORT.SPAM: _l("Spam or advertising"),
    REPORT.ABUSE: _l("Abusive, hateful or harassing"),
    REPORT.OFF_TOPIC: _l("Off-topic"),
    REPORT.OTHER: _l("Something else"),
}


class ReportForm(FlaskForm):
    """Why this post or comment should not be here."""

    reason = RadioField(
        _l("Why are you reporting this?"),
        choices=[
            SelectChoice(REPORT.REASON[value], label) for value, label in REASON_LABELS.items()
        ],
        validators=[InputRequired(message=_l("Choose why you report this."))],
    )
    note = TextAreaField(
        _l("Anything staff should know? (optional)"),
        description=_l(
            "Plain text, at most %(count)d characters. Only staff read it; "
            "the author never learns who reported.",
            count=REPORT.NOTE_MAX_LENGTH,
        ),
        render_kw={"maxlength": REPORT.NOTE_MAX_LENGTH, "rows": 4},
    )

    def validate_note(self, field: TextAreaField) -> None:
        try:
            field.data = services.clean_note(field.data)
        except services.ReportError as error:
            raise ValidationError(str(error)) from None

    @property
    def reason_value(self) -> int:
        return REPORT.reason_by_name(self.reason.data)
