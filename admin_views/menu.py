"""The counts in the back office's menu, read in one statement per request.

"Comments (3 waiting)", "Posts (1 waiting)" and "Reports (2 open)" show on
every admin page, so their three capped counts are one SELECT of three
scalar subqueries, kept on ``g`` for the rest of the request.
"""

from __future__ import annotations

from typing import Any

from flask import g
from flask_babel import gettext as _
from sqlalchemy import select

from admin_views.lists import CappedCount
from portal.comments import services as comments
from portal.extensions import db
from portal.posts import services as posts
from portal.reports import services as reports

# Past this many the label says "1,000+": a count that costs the same with a million.
MENU_COUNT_CAP = 1000


def menu_counts() -> dict[str, int]:
    """Return the waiting comments and posts and the reported items, each capped."""
    counts: dict[str, int] | None = g.get("admin_menu_counts")
    if counts is None:
        row = db.session.execute(
            select(
                comments.pending_count_query(up_to=MENU_COUNT_CAP)
                .scalar_subquery()
                .label("comments"),
                posts.pending_count_query(up_to=MENU_COUNT_CAP).scalar_subquery().label("posts"),
                reports.open_item_count_query(up_to=MENU_COUNT_CAP)
                .scalar_subquery()
                .label("reports"),
            )
        ).one()
        counts = {name: int(value) for name, value in row._mapping.items()}
        g.admin_menu_counts = counts
    return counts


def waiting_label(name: Any, key: str) -> str:
    """``name``, and how many wait behind it when any do: "Comments (3 waiting)"."""
    waiting = menu_counts()[key]
    if not waiting:
        return str(name)
    count = CappedCount.of(waiting, MENU_COUNT_CAP)
    return _("%(name)s (%(count)s waiting)", name=name, count=count)
