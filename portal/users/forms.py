"""One form per account screen; each owns its validation."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf import RecaptchaField
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import PasswordField
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import ValidationError

from portal import i18n
from portal.users import constants as USER
from portal.users import services


class LimitedPasswordField(PasswordField):
    """A password input held to the configured ``PASSWORD_MAX_LENGTH``.

    The limits are read when a form is built, inside a request, so the
    validator, the input's ``maxlength`` and the hint follow the app's settings.
    With ``hint`` the field says the configured ``PASSWORD_MIN_LENGTH``.
    """

    def __init__(self, label: Any, *, hint: bool = False, **kwargs: Any) -> None:
        config = current_app.config
        # Length here only refuses; a long password is never cut short.
        kwargs["validators"] = [InputRequired(), Length(max=config["PASSWORD_MAX_LENGTH"])]
        if hint:
            kwargs["description"] = _l(
                "At least %(min)s characters. A few uncommon words make a strong password.",
                min=config["PASSWORD_MIN_LENGTH"],
            )
        super().__init__(label, **kwargs)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class NameMixin:
    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=USER.NAME_MAX_LENGTH)],
        filters=[_strip],
    )


class NewPasswordMixin:
    """A new password typed twice and checked against the password policy."""

    password = LimitedPasswordField(_l("Password"), hint=True)
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[
            InputRequired(),
            EqualTo("password", message=_l("The passwords do not match.")),
        ],
    )

    def password_inputs(self) -> tuple[str, ...]:
        """Words the password must not lean on: the person's name and address."""
        return ()

    def validate_password(self, field: PasswordField) -> None:
        problem = services.password_problem(field.data or "", self.password_inputs())
        if problem:
            raise ValidationError(problem)


class EmailMixin:
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)],
        filters=[_strip],
    )


class RegisterForm(NameMixin, EmailMixin, NewPasswordMixin, FlaskForm):
    accept_tos = BooleanField(
        _l("I accept the terms of service"),
        validators=[DataRequired(message=_l("Please accept the terms of service to register."))],
    )

    def password_inputs(self) -> tuple[str, ...]:
        return (self.name.data or "", self.email.data or "")

    def validate_email(self, field: EmailField) -> None:
        # Whether another account has the address is for its owner to hear
        # (``services.register`` tells them), never for this page to say.
        try:
            field.data = services.clean_email(field.data or "")
        except services.AccountError as error:
            raise ValidationError(str(error)) from None


class CaptchaRegisterForm(RegisterForm):
    recaptcha = RecaptchaField()


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)],
        filters=[_strip],
    )
    password = LimitedPasswordField(_l("Password"))
    remember = BooleanField(_l("Keep me signed in on this device"))


class ForgotPasswordForm(EmailMixin, FlaskForm):
    pass


class ResetPasswordForm(NewPasswordMixin, FlaskForm):
    def __init__(self, *args: Any, user_inputs: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inputs = user_inputs

    def password_inputs(self) -> tuple[str, ...]:
        return self._inputs


class ProfileForm(NameMixin, FlaskForm):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)],
        filters=[_strip],
        description=_l("A new address takes effect once you follow the link we send to it."),
    )
    notify_comments = BooleanField(_l("Email me when a comment on my posts is approved"))
    notify_new_device = BooleanField(_l("Email me when my account signs in from a new device"))
    # Empty means "follow the browser" (language) or "the site's zone" (time zone).
    locale = SelectField(
        _l("Language"),
        validate_choice=False,
        description=_l("Pages and emails use it. Unset, pages follow your browser."),
    )
    timezone = SelectField(
        _l("Time zone"),
        validate_choice=False,
        description=_l("Every time shown to you is in this zone."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.locale.choices = [("", _("Same as my browser")), *i18n.language_choices()]
        default_zone = current_app.config["BABEL_DEFAULT_TIMEZONE"]
        self.timezone.choices = [
            ("", _("The site's time zone (%(zone)s)", zone=default_zone)),
            *((zone, zone.replace("_", " ")) for zone in i18n.timezones()),
        ]
        if self.locale.data is None:
            self.locale.data = ""
        if self.timezone.data is None:
            self.timezone.data = ""

    def validate_locale(self, field: SelectField) -> None:
        if field.data and not i18n.is_language(field.data):
            raise ValidationError(_("Choose one of the languages in the list."))

    def validate_timezone(self, field: SelectField) -> None:
        if field.data and not i18n.is_timezone(field.data):
            raise ValidationError(_("Choose a time zone from the list, such as Europe/Berlin."))


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = LimitedPasswordField(_l("Current password"))

    def __init__(self, *args: Any, user_inputs: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inputs = user_inputs

    def password_inputs(self) -> tuple[str, ...]:
        return self._inputs
