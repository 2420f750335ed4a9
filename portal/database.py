"""The declarative base every model shares, time helpers for columns, LIKE escaping, backend DDL."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import DDL
from sqlalchemy import DateTime
from sqlalchemy import MetaData
from sqlalchemy import Table
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic revisions name the same thing on every
# database and a later migration can drop or alter it by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The escape character every LIKE pattern built with ``escape_like`` declares.
LIKE_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """Return ``text`` escaped for a LIKE pattern, so ``%`` and ``_`` in it match only themselves.

    Use it with ``column.like(f"{escape_like(text)}%", escape=LIKE_ESCAPE)``.
    """
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, PostgreSQL keeps one; this makes both hand back the
    same aware value so comparisons never mix naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive value (typed into an admin filter, say) is read as UTC,
            # the zone every screen shows.
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base class for all models."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Where the metadata notes the schema objects its models do not describe.
UNMODELLED = "unmodelled"


def add_backend_ddl(
    table: Table,
    dialect: str,
    *,
    create: Sequence[str],
    drop: Sequence[str] = (),
    objects: Iterable[str] = (),
) -> None:
    """Give ``table`` objects of one backend's own that no model can describe.

    A full-text index is one: FTS5 tables and triggers on SQLite, a generated
    ``tsvector`` column on PostgreSQL. ``create`` runs after the table is
    created on ``dialect`` (``create_all``, the tests' schema), ``drop`` after
    it is dropped; a revision creates the same. ``objects`` names them
    (``"table"``, ``"table.column"``, ``"table.index"``) for ``include_name``.
    """
    for statement in create:
        event.listen(table, "after_create", DDL(statement).execute_if(dialect=dialect))
    for statement in drop:
        event.listen(table, "after_drop", DDL(statement).execute_if(dialect=dialect))
    table.metadata.info.setdefault(UNMODELLED, set()).update(objects)


def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """Alembic's ``include_name``: compare every object but those ``add_backend_ddl`` made.

    Without it, comparing the database with the models would ask to drop them.
    """
    key = name if type_ == "table" else f"{parent_names.get('table_name')}.{name}"
    return key not in Base.metadata.info.get(UNMODELLED, ())


def render_migration_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Write our column types into Alembic revisions as plain SQLAlchemy types.

    Revisions then never import application code, which may change later.
    """
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False
