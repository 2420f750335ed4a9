"""Forms of the sign-in provider pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm

from portal.users.forms import LimitedPasswordField


class LinkProviderForm(FlaskForm):
    """The account's password, typed again before a provider is linked to it."""

    password = LimitedPasswordField(_l("Your password"))
