"""Forms of the second-factor pages: one code, or the password and a code."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import Length

from portal.users.forms import LimitedPasswordField
from portal.users.mfa import CODE_MAX_LENGTH

CODE_HINT = _l("The six digits your authenticator app shows now.")
CODE_OR_RECOVERY_HINT = _l(
    "The six digits your authenticator app shows now, or one of your recovery codes."
)


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _code_field(hint: Any) -> StringField:
    return StringField(
        _l("Code"),
        validators=[DataRequired(), Length(max=CODE_MAX_LENGTH)],
        filters=[_strip],
        description=hint,
        render_kw={"inputmode": "text", "spellcheck": "false", "autocapitalize": "off"},
    )


class StartForm(FlaskForm):
    """The password, needed to set up an authenticator app."""

    password = LimitedPasswordField(_l("Your password"))


class EnrolForm(FlaskForm):
    """A code made from the new secret: it proves the app has the secret right."""

    code = _code_field(CODE_HINT)


class CodeForm(FlaskForm):
    """A code of the account's second factor: from the app, or a recovery code."""

    code = _code_field(CODE_OR_RECOVERY_HINT)


class DisableForm(FlaskForm):
    """The password and a code, both needed to turn the second factor off."""

    password = LimitedPasswordField(_l("Your password"))
    code = _code_field(CODE_OR_RECOVERY_HINT)
