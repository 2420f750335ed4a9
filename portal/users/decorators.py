"""View decorators that ask the gate."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from typing import TypeVar
from typing import cast

from flask import abort
from flask_login import current_user

from portal import security
from portal.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])


def allowed_to(action: str, subject: str) -> Callable[[F], F]:
    """Send anonymous visitors to the login page; answer 403 to those the gate refuses."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not security.can(current_user, action, subject):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
