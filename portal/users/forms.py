"""One form per account screen; each owns its validation."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf import RecaptchaField
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import ValidationError

from portal.users import constants as USER
from portal.users import services

PASSWORD_HINT = "At least {min} characters. A few uncommon words make a strong password."


class LimitedPasswordField(PasswordField):
    """A password input held to the configured ``PASSWORD_MAX_LENGTH``.

    The limits are read when a form is built, inside a request, so the
    validator, the input's ``maxlength`` and the hint follow the app's settings.
    With ``hint`` the field says the configured ``PASSWORD_MIN_LENGTH``.
    """

    def __init__(self, label: str, *, hint: bool = False, **kwargs: Any) -> None:
        config = current_app.config
        # Length here only refuses; a long password is never cut short.
        kwargs["validators"] = [InputRequired(), Length(max=config["PASSWORD_MAX_LENGTH"])]
        if hint:
            kwargs["description"] = PASSWORD_HINT.format(min=config["PASSWORD_MIN_LENGTH"])
        super().__init__(label, **kwargs)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class NameMixin:
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=USER.NAME_MAX_LENGTH)],
        filters=[_strip],
    )


class NewPasswordMixin:
    """A new password typed twice and checked against the password policy."""

    password = LimitedPasswordField("Password", hint=True)
    confirm = PasswordField(
        "Repeat password",
        validators=[
            InputRequired(),
            EqualTo("password", message="The passwords do not match."),
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
        "Email",
        validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)],
        filters=[_strip],
    )


class RegisterForm(NameMixin, EmailMixin, NewPasswordMixin, FlaskForm):
    accept_tos = BooleanField(
        "I accept the terms of service",
        validators=[DataRequired(message="Please accept the terms of service to register.")],
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
        "Email",
        validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)],
        filters=[_strip],
    )
    password = LimitedPasswordField("Password")
    remember = BooleanField("Keep me signed in on this device")


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
        "Email",
        validators=[DataRequired(), Length(max=USER.EMAIL_MAX_LENGTH)],
        filters=[_strip],
        description="A new address takes effect once you follow the link we send to it.",
    )
    notify_comments = BooleanField("Email me when a comment on my posts is approved")
    notify_new_device = BooleanField("Email me when my account signs in from a new device")


class ChangePasswordForm(NewPasswordMixin, FlaskForm):
    current_password = LimitedPasswordField("Current password")

    def __init__(self, *args: Any, user_inputs: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inputs = user_inputs

    def password_inputs(self) -> tuple[str, ...]:
        return self._inputs
