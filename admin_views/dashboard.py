"""The back office's home page: what needs attention, and how the site grows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

from flask_admin import AdminIndexView
from flask_admin import expose
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import Date
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import select

from admin_views.access import SecureViewMixin
from portal.comments import services as comments
from portal.database import utcnow
from portal.emails.services import queue_stats
from portal.extensions import db
from portal.formatting import format_age
from portal.posts import constants as POST
from portal.posts import services as posts
from portal.posts.models import Post
from portal.users import constants as USER
from portal.users.models import User

CHART_DAYS = 30


def _day(column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as the database spells it."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def per_day(column: Any, days: int) -> list[int]:
    """Count rows per UTC day over the last ``days`` days (oldest first, today last)."""
    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    day = _day(column)
    since = datetime.combine(first, time(), tzinfo=UTC)
    rows = db.session.execute(select(day, func.count()).where(column >= since).group_by(day))
    counts: dict[date, int] = {}
    for value, count in rows:
        key = value if isinstance(value, date) else date.fromisoformat(str(value))
        counts[key] = count
    return [counts.get(first + timedelta(days=offset), 0) for offset in range(days)]


def accounts_by_role_and_status() -> dict[str, dict[str, int]]:
    rows = db.session.execute(
        select(User.role, User.status, func.count()).group_by(User.role, User.status)
    )
    table = {role: dict.fromkeys(USER.STATUS.values(), 0) for role in USER.ROLE.values()}
    for role, status, count in rows:
        table[USER.ROLE[role]][USER.STATUS[status]] = count
    return table


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: list[int]


def line_chart(series: list[Series], days: int, width: int = 720, height: int = 220) -> Markup:
    """Draw daily counts as an inline SVG: no script, no external asset, CSP-safe."""
    pad_left, pad_bottom, pad_top = 40, 24, 12
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    peak = max([1, *(value for line in series for value in line.values)])
    step = plot_w / max(days - 1, 1)

    def point(index: int, value: int) -> str:
        x = pad_left + index * step
        y = pad_top + plot_h - (value / peak) * plot_h
        return f"{x:.1f},{y:.1f}"

    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
            'role="img" aria-labelledby="chart-title" class="dashboard-chart">'
            '<title id="chart-title">{title}</title>'
        ).format(w=width, h=height, title=", ".join(line.label for line in series)),
        Markup(
            '<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#adb5bd"/>'
            '<line x1="{x}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#adb5bd"/>'
            '<text x="{tx}" y="{ty}" font-size="11" text-anchor="end" fill="#6c757d">{peak}</text>'
            '<text x="{tx}" y="{bottom}" font-size="11" text-anchor="end" fill="#6c757d">0</text>'
        ).format(
            x=pad_left,
            top=pad_top,
            bottom=pad_top + plot_h,
            right=pad_left + plot_w,
            tx=pad_left - 4,
            ty=pad_top + 10,
            peak=peak,
        ),
    ]
    today = utcnow().date()
    for index in (0, days // 2, days - 1):
        label = (today - timedelta(days=days - 1 - index)).strftime("%d %b")
        parts.append(
            Markup(
                '<text x="{x:.1f}" y="{y}" font-size="11" text-anchor="middle" '
                'fill="#6c757d">{label}</text>'
            ).format(x=pad_left + index * step, y=height - 6, label=label)
        )
    for line in series:
        points = " ".join(point(index, value) for index, value in enumerate(line.values))
        parts.append(
            Markup(
                '<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                "<title>{label}: {total} in {days} days</title></polyline>"
            ).format(
                colour=line.colour,
                points=points,
                label=line.label,
                total=sum(line.values),
                days=days,
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


class DashboardView(SecureViewMixin, AdminIndexView):
    """Accounts, posts, the moderation queue, the email queue and 30 days of growth."""

    @expose("/")
    def index(self) -> str:
        signups = Series("Sign-ups", "#2450a6", per_day(User.created_at, CHART_DAYS))
        new_posts = Series("Posts", "#1a7f37", per_day(Post.created_at, CHART_DAYS))
        post_counts = posts.count_by_status()
        return self.render(
            "admin/index.html",
            user=current_user,
            accounts=accounts_by_role_and_status(),
            posts={POST.STATUS[status]: count for status, count in post_counts.items()},
            pending_comments=comments.pending_count(),
            email_stats=queue_stats(),
            format_age=format_age,
            chart=line_chart([signups, new_posts], CHART_DAYS),
            series=[signups, new_posts],
        )
