"""Write audit events. Service functions call ``record`` in the transaction they commit.

The actor, the source and the client address come from the request when
there is one; outside a request (a ``manage.py`` command) the event names the
command and the operating-system user who ran it.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any

import click
from flask import has_request_context
from flask import request
from flask_login import current_user

from portal.audit import constants as AUDIT
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.extensions import db
from portal.urls import is_admin_path

MASK = "••••••"
SECRET_WORDS = ("password", "secret", "token", "hash", "key")
VALUE_MAX_LENGTH = 500


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    context = click.get_current_context(silent=True)
    command = context.command_path if context is not None else "system task"
    return f"{command} (run by {user})"


def is_secret(field: str) -> bool:
    """Tell whether a field's values must never be stored: passwords, hashes, tokens, keys."""
    lowered = field.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= VALUE_MAX_LENGTH else text[: VALUE_MAX_LENGTH - 1] + "…"


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Return ``{field: [old, new]}`` for the fields that changed, secrets masked."""
    changes: dict[str, list[Any]] = {}
    for field in after:
        old, new = before.get(field), after[field]
        if old == new:
            continue
        changes[field] = [MASK, MASK] if is_secret(field) else [_plain(old), _plain(new)]
    return changes


def _actor() -> tuple[int | None, str, str, str | None]:
    """Return (actor id, label, source, address) for the code running now."""
    if has_request_context():
        source = AUDIT.SOURCE_ADMIN if is_admin_path(request.path) else AUDIT.SOURCE_SITE
        if current_user.is_authenticated:
            label = f"{current_user.name} <{current_user.email}>"
            return current_user.id, label, source, request.remote_addr
        return None, "anonymous", source, request.remote_addr
    return None, _operator(), AUDIT.SOURCE_CLI, None


def record(
    action: str,
    object_type: str,
    object_id: Any = None,
    *,
    summary: str,
    changes: Mapping[str, list[Any]] | None = None,
) -> AuditEvent:
    """Add an event to the current transaction; it is kept only if the change commits."""
    actor_id, label, source, address = _actor()
    masked = {
        field: ([MASK, MASK] if is_secret(field) else [_plain(v) for v in values])
        for field, values in (changes or {}).items()
    }
    event = AuditEvent(
        created_at=utcnow(),
        actor_id=actor_id,
        actor_label=label[:300],
        source=source,
        address=address,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        summary=summary[:500],
        changes=masked,
    )
    db.session.add(event)
    return event
