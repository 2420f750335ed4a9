"""View decorators that apply the named permissions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from typing import TypeVar
from typing import cast

from flask_login import current_user
from flask_principal import Permission

from portal.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])


def permission_required(permission: Permission) -> Callable[[F], F]:
    """Send anonymous visitors to the login page; answer 403 to those without ``permission``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            with permission.require(http_exception=403):
                return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
