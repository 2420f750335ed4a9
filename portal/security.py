"""Roles become Flask-Principal needs; every access check uses these permissions."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_login import current_user
from flask_principal import AnonymousIdentity
from flask_principal import Identity
from flask_principal import Permission
from flask_principal import RoleNeed
from flask_principal import UserNeed
from flask_principal import identity_loaded

from portal.extensions import principal
from portal.users import constants as USER

admin_need = RoleNeed("admin")
staff_need = RoleNeed("staff")
# Writing public content: an account that confirmed its email, or any staff.
writer_need = RoleNeed("writer")
# Publishing, hiding, editing and deleting anyone's posts and comments.
moderator_need = RoleNeed("moderator")

admin_permission = Permission(admin_need)
staff_permission = Permission(staff_need)
writer_permission = Permission(writer_need)
moderator_permission = Permission(moderator_need)


def needs_for(user: Any) -> set[Any]:
    """Return the needs an account holds: its id, its role, and what they imply."""
    needs: set[Any] = {UserNeed(user.id), RoleNeed(USER.ROLE[user.role])}
    if user.role == USER.ADMIN:
        needs |= {admin_need, staff_need, moderator_need}
    elif user.role == USER.STAFF:
        needs |= {staff_need, moderator_need}
    if user.status == USER.ACTIVE or user.role in (USER.ADMIN, USER.STAFF):
        needs.add(writer_need)
    return needs


def _load_identity() -> Identity:
    if current_user.is_authenticated:
        return Identity(current_user.id, auth_type="session")
    return AnonymousIdentity()


def _on_identity_loaded(sender: Flask, identity: Identity) -> None:
    identity.user = current_user
    if current_user.is_authenticated and identity.id == current_user.id:
        identity.provides.update(needs_for(current_user))


def init_security(app: Flask) -> None:
    """Derive the identity from the logged-in account on every request."""
    if _load_identity not in principal.identity_loaders:
        principal.identity_loader(_load_identity)
    identity_loaded.connect_via(app)(_on_identity_loaded)
    app.jinja_env.globals.update(
        staff_permission=staff_permission,
        admin_permission=admin_permission,
        writer_permission=writer_permission,
        moderator_permission=moderator_permission,
    )
