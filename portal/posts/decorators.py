"""View decorators for writing: sign in first, then have a confirmed account."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from typing import TypeVar
from typing import cast

from flask import render_template
from flask_login import current_user

from portal import security
from portal.extensions import login_manager
from portal.forms import ActionForm

F = TypeVar("F", bound=Callable[..., Any])


def writer_required(view: F) -> F:
    """Send visitors to sign in; tell NEW accounts why they cannot write and how to fix it."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not security.can(current_user, security.ADD, security.POST):
            return render_template("posts/confirm_first.html", form=ActionForm()), 403
        return view(*args, **kwargs)

    return cast(F, wrapped)
