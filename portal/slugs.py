"""Readable, unique URL parts made from titles and names."""

from __future__ import annotations

from collections.abc import Collection

from slugify import slugify as transliterate
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from portal.database import LIKE_ESCAPE
from portal.database import escape_like
from portal.extensions import db


def slugify(text: str, *, max_length: int, fallback: str) -> str:
    """Return ``text`` as lowercase ASCII words joined by hyphens, or ``fallback``.

    Every script is transliterated ("Crème brûlée" -> "creme-brulee",
    "Привет мир" -> "privet-mir", "Καλημέρα" -> "kalemera", "日本語" ->
    "ri-ben-yu"); anything that is not a letter or digit separates words. Only
    new objects get a slug, so a change here never moves an existing address.
    """
    slug = transliterate(text, max_length=max_length, word_boundary=False, separator="-")
    return slug.strip("-") or fallback


def unique_slug(
    column: InstrumentedAttribute[str],
    base: str,
    *,
    max_length: int,
    reserved: Collection[str] = (),
) -> str:
    """Return ``base``, or ``base-2``, ``base-3``..., whichever ``column`` does not hold yet.

    One query reads every value that starts with ``base``; the unique index
    still has the last word if two requests pick the same value at once.
    """
    base = base[: max_length - 8].rstrip("-")
    starts = column.like(f"{escape_like(base)}%", escape=LIKE_ESCAPE)
    taken = set(db.session.execute(select(column).where(starts)).scalars())
    taken.update(reserved)
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
