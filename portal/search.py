"""Substring search over a few text columns, and the trigram indexes that keep it fast.

A search is words: every word must appear, in any case, somewhere in one of
the columns (an AND of words, each an OR of columns), so "User 4" finds
"Demo User 42" and "example.com" finds every address there. A word is
matched literally: ``%`` and ``_`` in it are escaped.

On PostgreSQL each searched column has a GIN index over its trigrams
(``pg_trgm``'s ``gin_trgm_ops``), which serves ``ILIKE '%word%'``; the
query uses ``ILIKE`` on the bare column so that it and the index agree. A
word shorter than three characters has no trigram, so it narrows the rows
the other words found rather than finding any itself.

SQLite has no such index: ``ILIKE`` becomes ``lower(column) LIKE
lower(pattern)``, a scan of the table, which stays quick at the sizes an
embedded database holds (see bench/README.md).

Revision 0009 creates the same indexes; they are backend objects the models
cannot describe (an operator class from an extension), declared here with
``trigram_indexes`` and left out when the schema is compared to the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Table
from sqlalchemy import and_
from sqlalchemy import event
from sqlalchemy import false
from sqlalchemy import or_
from sqlalchemy import text
from sqlalchemy import true

from portal.database import LIKE_ESCAPE
from portal.database import add_backend_ddl
from portal.database import escape_like

# A search longer than this is cut: no field holds more, and each word costs a scan.
MAX_WORDS = 8
TRIGRAM_EXTENSION = "pg_trgm"


def search_words(phrase: str | None) -> list[str]:
    """Split ``phrase`` into the words a search matches, each once, at most ``MAX_WORDS``."""
    words = dict.fromkeys((phrase or "").split())
    return list(words)[:MAX_WORDS]


def matches_every_word(columns: Sequence[Any], phrase: str | None) -> Any:
    """Return a condition: each word of ``phrase`` is inside one of ``columns``, in any case.

    No words match every row; no columns match none.
    """
    words = search_words(phrase)
    if not words:
        return true()
    if not columns:
        return false()
    return and_(*(contains_word(columns, word) for word in words))


def contains_word(columns: Sequence[Any], word: str) -> Any:
    """Return a condition: ``word`` is inside one of ``columns``, in any case."""
    pattern = f"%{escape_like(word)}%"
    return or_(*(column.ilike(pattern, escape=LIKE_ESCAPE) for column in columns))


def trigram_index_name(table: str, column: str) -> str:
    return f"ix_{table}_{column}_trgm"


def trigram_indexes(table: Table, *columns: str) -> None:
    """Give ``table`` a trigram GIN index per column on PostgreSQL (none on SQLite)."""
    names = [trigram_index_name(table.name, column) for column in columns]

    def create(target: Table, connection: Connection, **kwargs: Any) -> None:
        if connection.dialect.name != "postgresql":
            return
        schema = trigram_schema(connection)
        for name, column in zip(names, columns, strict=True):
            connection.execute(
                text(
                    f"CREATE INDEX {name} ON {table.name} "
                    f"USING gin ({column} {schema}.gin_trgm_ops)"
                )
            )

    event.listen(table, "after_create", create)
    add_backend_ddl(table, "postgresql", create=[], objects=[f"{table.name}.{n}" for n in names])


def trigram_schema(connection: Connection) -> str:
    """Install ``pg_trgm`` unless it is there; return its schema, quoted for SQL.

    A new install goes to ``public``, which outlives any schema a test or
    a bench makes and drops (dropping a schema drops the extensions in it).
    """
    connection.execute(text(f"CREATE EXTENSION IF NOT EXISTS {TRIGRAM_EXTENSION} SCHEMA public"))
    schema = connection.execute(
        text(
            "SELECT quote_ident(n.nspname) FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :name"
        ),
        {"name": TRIGRAM_EXTENSION},
    ).scalar_one()
    return str(schema)
