"""Forms of the site-wide pages."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms import SubmitField
from wtforms.validators import ValidationError

from portal import i18n


class LanguageForm(FlaskForm):
    """The language picker: one button per language, and the page to go back to."""

    language = SubmitField()
    next = HiddenField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = i18n.language_choices()

    def validate_language(self, field: SubmitField) -> None:
        # A submit button's value is the language it names; read what was posted.
        chosen = self.language.raw_data[0] if self.language.raw_data else ""
        if not i18n.is_language(chosen):
            raise ValidationError(_("Choose one of the languages in the list."))
        self.chosen = chosen
