"""The forms of the "your data" pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired
from wtforms.validators import Length

from portal.privacy import constants as PRIVACY
from portal.users.forms import LimitedPasswordField
from portal.users.mfa import CODE_MAX_LENGTH


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class DeleteAccountForm(FlaskForm):
    """The password, a code where a second factor is set up, and what becomes of the content."""

    password = LimitedPasswordField(_l("Your password"))
    code = StringField(
        _l("Code"),
        validators=[Length(max=CODE_MAX_LENGTH)],
        filters=[_strip],
        description=_l(
            "The six digits your authenticator app shows now, or one of your recovery codes."
        ),
        render_kw={"inputmode": "text", "spellcheck": "false", "autocapitalize": "off"},
    )
    content = RadioField(
        _l("Your posts and comments"),
        choices=[
            SelectChoice(PRIVACY.DELETE_CONTENT, _l("Delete them with my account")),
            SelectChoice(PRIVACY.KEEP_CONTENT, _l("Keep them on the site under “Deleted user”")),
        ],
        validators=[InputRequired(message=_l("Choose what becomes of your posts and comments."))],
    )
