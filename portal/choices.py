"""Coded values (roles, statuses) looked up by their names; imports nothing.

The constants modules call this, so it must stay a leaf that any layer may import.
"""

from __future__ import annotations

from collections.abc import Mapping


def value_named(names: Mapping[int, str], name: str) -> int:
    """Return the code ``names`` labels ``name`` (any case, spaces trimmed); raise ``KeyError``."""
    wanted = name.strip().lower()
    for value, label in names.items():
        if label == wanted:
            return value
    raise KeyError(name)
