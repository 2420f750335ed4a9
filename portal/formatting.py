"""Small text helpers shared by the pages, the admin and the commands."""

from __future__ import annotations


def format_age(seconds: float) -> str:
    """Say how long ``seconds`` is in the two largest units: ``3d 4h``, ``5m 2s``."""
    remaining = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return " ".join(parts[:2])
