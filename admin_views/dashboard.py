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
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user
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
    """One row of daily counts; ``key`` names its CSS class (``chart-bar--<key>``)."""

    key: str
    label: str
    values: list[int]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class Bar:
    series: str
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class BarChart:
    """Daily counts laid out as grouped bars in SVG units; the template draws them.

    The view box is computed from the labels, so the last day's label always
    fits inside it, and its units are close to CSS pixels at a phone's width.
    """

    days: list[date]
    series: list[Series]
    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    peak: int
    bars: list[Bar]
    day_labels: list[Label]

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:g} {self.height:g}"

    def rows(self) -> list[tuple[date, list[int]]]:
        """The table alternative: each day with each series' count."""
        return [
            (day, [line.values[index] for line in self.series])
            for index, day in enumerate(self.days)
        ]


FONT_SIZE = 11
# An average glyph of the system sans at FONT_SIZE, generous so labels never clip.
GLYPH_WIDTH = 0.62 * FONT_SIZE
BAR_WIDTH = 4
SLOT_WIDTH = 10
LABEL_EVERY = 7
PLOT_HEIGHT = 140


def day_label(day: date) -> str:
    return format_date(day, "d MMM")


def bar_chart(series: list[Series], today: date) -> BarChart:
    """Lay out a bar per series per day, oldest first; label every 7th day back from today."""
    count = len(series[0].values)
    days = [today - timedelta(days=count - 1 - index) for index in range(count)]
    peak = max([1, *(value for line in series for value in line.values)])
    labelled = range(count - 1, -1, -LABEL_EVERY)
    texts = {index: day_label(days[index]) for index in labelled}

    def half(text: str) -> float:
        return len(text) * GLYPH_WIDTH / 2

    plot_left = len(f"{peak:,}") * GLYPH_WIDTH + 10
    plot_width = count * SLOT_WIDTH
    # The labels are centred under their day: the first and last may reach past the plot.
    centre = [plot_left + (index + 0.5) * SLOT_WIDTH for index in range(count)]
    left_reach = min(centre[index] - half(text) for index, text in texts.items())
    right_reach = max(centre[index] + half(text) for index, text in texts.items())
    shift = max(0.0, 2 - left_reach)
    plot_left += shift
    width = max(plot_left + plot_width + 4, right_reach + shift + 4)
    plot_top = FONT_SIZE
    plot_bottom = plot_top + PLOT_HEIGHT
    height = plot_bottom + FONT_SIZE + 10
    group = len(series) * BAR_WIDTH
    bars = []
    for position, line in enumerate(series):
        for index, value in enumerate(line.values):
            if not value:
                continue
            tall = value / peak * PLOT_HEIGHT
            x = plot_left + index * SLOT_WIDTH + (SLOT_WIDTH - group) / 2 + position * BAR_WIDTH
            bars.append(
                Bar(
                    line.key,
                    round(x, 1),
                    round(plot_bottom - tall, 1),
                    BAR_WIDTH,
                    round(tall, 1),
                    _(
                        "%(series)s, %(day)s: %(count)s",
                        series=line.label,
                        day=day_label(days[index]),
                        count=value,
                    ),
                )
            )
    labels = [
        Label(round(centre[index] + shift, 1), plot_bottom + FONT_SIZE + 4, text)
        for index, text in sorted(texts.items())
    ]
    return BarChart(
        days=days,
        series=series,
        width=round(width, 1),
        height=height,
        plot_left=round(plot_left, 1),
        plot_right=round(plot_left + plot_width, 1),
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        peak=peak,
        bars=bars,
        day_labels=labels,
    )


class DashboardView(SecureViewMixin, AdminIndexView):
    """Accounts, posts, the moderation queue, the email queue and 30 days of growth."""

    @expose("/")
    def index(self) -> str:
        signups = Series("signups", _("Sign-ups"), per_day(User.created_at, CHART_DAYS))
        new_posts = Series("posts", _("Posts"), per_day(Post.created_at, CHART_DAYS))
        post_counts = posts.count_by_status()
        return self.render(
            "admin/index.html",
            user=current_user,
            accounts=accounts_by_role_and_status(),
            posts={POST.STATUS[status]: count for status, count in post_counts.items()},
            pending_comments=comments.pending_count(),
            email_stats=queue_stats(),
            format_age=format_age,
            chart=bar_chart([signups, new_posts], utcnow().date()),
        )
