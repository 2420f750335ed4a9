"""The suppression list: addresses broadcasts and notifications no longer go to.

An address gets here when a server refuses it for good (an SMTP 5xx), when
its owner unsubscribes, or when staff put it here. Account mail ignores the
list: a person must always be able to confirm an address or reset a password.

Each address has at most one row (unique on ``lower(address)``), naming the
one category it refuses or None for all. Writes are single statements that
check the row they change, so two unsubscribes arriving at once (a mail
client's one-click POST and the person's own click) both succeed and leave
one row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.audit import constants as AUDIT
from portal.audit import services as audit
from portal.database import utcnow
from portal.emails import constants as EMAIL
from portal.emails.addresses import InvalidHeader
from portal.emails.addresses import normalize_address
from portal.emails.models import Email
from portal.emails.models import Suppression
from portal.extensions import db


class SuppressionError(Exception):
    """A request the suppression rules refuse; the message is safe to show."""


@dataclass(frozen=True)
class Standing:
    """What an address refuses: the categories, and whether the person may undo it."""

    refused: frozenset[int]
    reason: str | None = None
    # Only a person's own unsubscribe may be undone by them; a bounce or staff's entry not.
    undoable: bool = True

    def allows(self, category: int) -> bool:
        return category == EMAIL.ACCOUNT or category not in self.refused


def clean(address: str) -> str:
    """Return ``address`` as the list keys it; raise ``SuppressionError`` if it is no address."""
    try:
        return normalize_address(address, field="address")
    except InvalidHeader as error:
        raise SuppressionError(str(error)) from None


def _check_category(category: int | None) -> None:
    if category is not None and category not in EMAIL.OPTIONAL_CATEGORIES:
        # Account mail can never be suppressed.
        raise SuppressionError(_("Account mail cannot be suppressed."))


def _key(address: str) -> Any:
    return func.lower(Suppression.address) == address.lower()


def find(address: str) -> Suppression | None:
    """Return the row for ``address`` in any case, or None."""
    try:
        wanted = clean(address)
    except SuppressionError:
        return None
    return db.session.execute(select(Suppression).where(_key(wanted))).scalar_one_or_none()


def standing(address: str) -> Standing:
    """Say which optional categories ``address`` refuses."""
    row = find(address)
    if row is None:
        return Standing(frozenset())
    refused = EMAIL.OPTIONAL_CATEGORIES if row.category is None else (row.category,)
    return Standing(frozenset(refused), row.reason, undoable=row.reason == EMAIL.REASON_UNSUBSCRIBE)


def _insert_if_absent(values: dict[str, Any]) -> bool:
    """Insert the row unless the address has one (``ON CONFLICT DO NOTHING``); tell which."""
    dialect = db.session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING, not the row count: an ORM-enabled INSERT may not report one.
    statement = make(Suppression).values(**values).on_conflict_do_nothing()
    inserted = db.session.execute(statement.returning(Suppression.id)).scalar_one_or_none()
    return inserted is not None


def suppress(
    address: str,
    *,
    reason: str,
    source: str,
    category: int | None = None,
    note: str | None = None,
) -> bool:
    """Put ``address`` on the list for ``category`` (None: all); return whether anything changed.

    Part of the caller's transaction. An address already refusing another
    category comes to refuse all; a bounce or staff's entry outranks an
    unsubscribe, so the person cannot undo it. Repeating a call changes nothing.
    """
    _check_category(category)
    if reason not in EMAIL.REASON:
        raise ValueError(f"unknown suppression reason {reason!r}")
    stored = clean(address)
    note = (note or "").strip()[: EMAIL.SUPPRESSION_NOTE_MAX_LENGTH] or None
    values = {
        "address": stored,
        "reason": reason,
        "category": category,
        "source": source,
        "note": note,
        "created_at": utcnow(),
    }
    if _insert_if_absent(values):
        return True
    changed = 0
    if reason != EMAIL.REASON_UNSUBSCRIBE:
        # A bounce or staff's entry outranks the person's own unsubscribe.
        done = db.session.execute(
            update(Suppression)
            .where(_key(stored), Suppression.reason == EMAIL.REASON_UNSUBSCRIBE)
            .values(reason=reason, source=source, note=note)
            .execution_options(synchronize_session=False)
        )
        changed += _rowcount(done)
    widen: ColumnElement[bool] = Suppression.category.is_not(None)
    if category is not None:
        widen = and_(widen, Suppression.category != category)
    done = db.session.execute(
        update(Suppression)
        .where(_key(stored), widen)
        .values(category=None)
        .execution_options(synchronize_session=False)
    )
    changed += _rowcount(done)
    if changed:
        _expire_loaded()
    return bool(changed)


def _expire_loaded() -> None:
    """Let loaded rows read what the statements wrote (and nothing else be expired)."""
    for instance in list(db.session.identity_map.values()):
        if isinstance(instance, Suppression):
            db.session.expire(instance)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def resubscribe(address: str, category: int) -> bool:
    """Undo a person's own unsubscribe from ``category``; return whether anything changed.

    Part of the caller's transaction. A bounce or staff's entry stays:
    ``SuppressionError`` says so.
    """
    _check_category(category)
    row = find(address)
    if row is None or not row.covers(category):
        return False
    if row.reason != EMAIL.REASON_UNSUBSCRIBE:
        raise SuppressionError(
            _(
                "Mail to this address is stopped because %(reason)s; "
                "only the site's staff can turn it back on.",
                reason=_reason_words(row.reason),
            )
        )
    if row.category is None:
        # Refusing all: what stays refused is every other category. One row
        # names one category, which is enough while there are two of them.
        (remaining,) = (other for other in EMAIL.OPTIONAL_CATEGORIES if other != category)
        row.category = remaining
    else:
        db.session.delete(row)
    db.session.flush()
    return True


def _reason_words(reason: str) -> str:
    if reason == EMAIL.REASON_BOUNCE:
        return _("the receiving server refused it for good")
    if reason == EMAIL.REASON_MANUAL:
        return _("the site's staff stopped it")
    return _("you unsubscribed")


def set_preferences(address: str, wanted: Iterable[int], *, source: str) -> bool:
    """Make ``address`` receive exactly the optional categories in ``wanted``; commit.

    Return whether anything changed. An unsubscribe is recorded as one;
    a category refused by a bounce or by staff raises ``SuppressionError``
    if the person asks for it back, and nothing changes.
    """
    wanted = set(wanted)
    current = standing(address)
    changed = False
    try:
        for category in EMAIL.OPTIONAL_CATEGORIES:
            if category in wanted and category in current.refused:
                changed |= resubscribe(address, category)
            elif category not in wanted and category not in current.refused:
                changed |= suppress(
                    address, reason=EMAIL.REASON_UNSUBSCRIBE, source=source, category=category
                )
    except SuppressionError:
        db.session.rollback()
        raise
    db.session.commit()
    return changed


def unsubscribe(address: str, category: int, *, source: str) -> bool:
    """Stop ``category`` mail to ``address`` at its owner's request; commit. Safe to repeat."""
    changed = suppress(address, reason=EMAIL.REASON_UNSUBSCRIBE, source=source, category=category)
    db.session.commit()
    return changed


# -- staff and operators ------------------------------------------------------------


def add(address: str, *, note: str | None = None, source: str) -> tuple[Suppression, bool]:
    """Suppress ``address`` for every optional category (staff or ``manage.py``); audited.

    Return the row and whether anything changed (an address already
    suppressed by a bounce or by staff stays as it was).
    """
    stored = clean(address)
    before = find(stored)
    changed = suppress(stored, reason=EMAIL.REASON_MANUAL, source=source, note=note)
    row = find(stored)
    assert row is not None
    if changed:
        audit.record(
            AUDIT.ACTION_CREATE if before is None else AUDIT.ACTION_UPDATE,
            AUDIT.OBJECT_EMAIL,
            summary=f"Suppressed {row.address} ({EMAIL.REASON[row.reason]})",
            changes={
                "suppression": [
                    None if before is None else f"{before.reason}, {before.category_name}",
                    f"{row.reason}, {row.category_name}",
                ]
            },
        )
    db.session.commit()
    return row, changed


def remove(row: Suppression) -> None:
    """Take ``row`` off the list (ADMIN only: the gate is asked by the caller); audited."""
    audit.record(
        AUDIT.ACTION_DELETE,
        AUDIT.OBJECT_EMAIL,
        summary=f"Removed {row.address} from the suppression list",
        changes={
            "suppression": [f"{row.reason}, {row.category_name}", None],
        },
    )
    db.session.execute(delete(Suppression).where(Suppression.id == row.id))
    db.session.commit()


# -- what the queue asks -----------------------------------------------------------


def covering(address: Any, category: int) -> ColumnElement[bool]:
    """The SQL condition: a suppression of ``address`` (a column) covers ``category``."""
    return exists().where(
        func.lower(Suppression.address) == func.lower(address),
        or_(Suppression.category.is_(None), Suppression.category == category),
    )


def blocked(emails: Iterable[Email]) -> dict[int, str]:
    """Return, by id, why each of ``emails`` must not be sent now (one query for all)."""
    optional = [email for email in emails if email.category != EMAIL.ACCOUNT]
    if not optional:
        return {}
    addresses = {email.to_address.lower() for email in optional}
    rows = db.session.execute(
        select(Suppression).where(func.lower(Suppression.address).in_(addresses))
    ).scalars()
    by_address = {row.address.lower(): row for row in rows}
    reasons: dict[int, str] = {}
    for email in optional:
        row = by_address.get(email.to_address.lower())
        if row is not None and row.covers(email.category):
            reasons[email.id] = (
                f"not sent: the address is on the suppression list "
                f"({EMAIL.REASON[row.reason]}, {row.category_name}) since "
                f"{row.created_at:%Y-%m-%d %H:%M} UTC"
            )
    return reasons


def is_suppressed(address: str, category: int) -> bool:
    """Tell whether mail of ``category`` must not go to ``address``."""
    return not standing(address).allows(category)
