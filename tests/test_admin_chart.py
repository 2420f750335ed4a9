"""The dashboard's 30-day chart: bars drawn on the server, described, and told as a table."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest

from admin_views.dashboard import GLYPH_WIDTH
from admin_views.dashboard import Series
from admin_views.dashboard import bar_chart
from tests import factories

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def admin(auth):
    person = factories.AdminFactory(created_at=datetime.now(UTC) - timedelta(days=90))
    assert auth.login(person.email).status_code == 302
    return person


@pytest.fixture
def growth(admin):
    """Sign-ups and posts on known days: today, 3 and 29 days ago, and one too old to show."""
    now = datetime.now(UTC)
    author = factories.UserFactory(created_at=now - timedelta(days=29))
    factories.UserFactory.create_batch(2, created_at=now - timedelta(days=3))
    factories.UserFactory(created_at=now - timedelta(days=45))
    factories.PostFactory.create_batch(3, author=author, created_at=now)
    factories.PostFactory(author=author, created_at=now - timedelta(days=3))
    factories.PostFactory(author=author, created_at=now - timedelta(days=40))
    today = now.date()
    return {
        today - timedelta(days=29): (1, 0),
        today - timedelta(days=3): (2, 1),
        today: (0, 3),
    }


def dashboard(client):
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def chart_svg(page):
    match = re.search(
        r'<svg xmlns="http://www.w3.org/2000/svg"[^>]*class="dashboard-chart".*?</svg>', page, re.S
    )
    assert match, "no chart"
    return ET.fromstring(match.group(0))


def test_the_chart_is_an_svg_with_a_title_and_a_description(client, growth):
    svg = chart_svg(dashboard(client))

    assert svg.get("role") == "img"
    title = svg.find(f"{SVG}title")
    desc = svg.find(f"{SVG}desc")
    assert title is not None and title.get("id") == svg.get("aria-labelledby")
    assert desc is not None and desc.get("id") == svg.get("aria-describedby")
    assert title.text == "Sign-ups and posts per day"
    description = " ".join("".join(desc.itertext()).split())
    assert "Sign-ups: 3 in 30 days." in description
    assert "Posts: 4 in 30 days." in description


def test_there_is_a_bar_for_each_series_on_each_day_with_data(client, growth):
    svg = chart_svg(dashboard(client))

    bars = svg.findall(f".//{SVG}rect")
    titles = sorted("".join(bar.find(f"{SVG}title").itertext()) for bar in bars)
    assert len(bars) == 4  # sign-ups 29 and 3 days ago, posts 3 days ago and today
    assert sum(title.startswith("Sign-ups, ") for title in titles) == 2
    assert sum(title.startswith("Posts, ") for title in titles) == 2
    assert any(title.endswith(": 3") and title.startswith("Posts, ") for title in titles)
    # The tallest bar reaches the top of the plot; no bar is drawn below the axis.
    heights = [float(bar.get("height")) for bar in bars]
    bottoms = {round(float(bar.get("y")) + float(bar.get("height")), 1) for bar in bars}
    assert len(bottoms) == 1
    assert max(heights) == pytest.approx(3 * min(heights), rel=0.01)
    for bar in bars:
        assert "chart-bar--" in bar.get("class")  # coloured by the stylesheet, not inline
        assert bar.get("fill") is None and bar.get("style") is None


def test_the_table_alternative_has_every_day_and_the_right_numbers(client, growth):
    page = dashboard(client)

    table = re.search(r"<details class=\"chart-table[^>]*>.*?</details>", page, re.S)
    assert table and "<caption>" in table.group(0)
    rows = dict(
        (
            date.fromisoformat(day),
            tuple(int(n) for n in re.findall(r'<td class="text-right">(\d+)</td>', cells)),
        )
        for day, cells in re.findall(r'<tr data-day="([\d-]+)">(.*?)</tr>', table.group(0), re.S)
    )
    assert len(rows) == 30
    for day, counts in rows.items():
        assert counts == growth.get(day, (0, 0)), day


def test_every_day_label_fits_inside_the_view_box(client, growth):
    svg = chart_svg(dashboard(client))

    _x, _y, width, height = (float(n) for n in svg.get("viewBox").split())
    labels = svg.findall(f".//{SVG}text[@class='chart-day']")
    assert len(labels) == 5  # every 7th day, back from today
    assert labels[-1].text == chart_day(datetime.now(UTC).date())
    for label in labels:
        half = len(label.text) * GLYPH_WIDTH / 2
        x = float(label.get("x"))
        assert label.get("text-anchor") == "middle"
        assert 0 <= x - half and x + half <= width, label.text
        assert float(label.get("y")) <= height


def chart_day(day):
    return f"{day.day} {day:%b}"


@pytest.mark.parametrize("peak", [1, 9, 12_345])
def test_long_labels_widen_the_view_box_instead_of_clipping(app, peak):
    today = date(2026, 12, 2)
    series = [Series("signups", "Sign-ups", [peak] * 30), Series("posts", "Posts", [0] * 30)]

    with app.test_request_context():
        chart = bar_chart(series, today)

    peak_label = len(f"{peak:,}") * GLYPH_WIDTH
    assert chart.plot_left - 4 - peak_label >= 0  # the y axis label fits on the left
    last = chart.day_labels[-1]
    assert last.text == "2 Dec"
    assert last.x + len(last.text) * GLYPH_WIDTH / 2 <= chart.width
    assert chart.bars[-1].x + chart.bars[-1].width <= chart.plot_right <= chart.width
    # Units stay close to CSS pixels at a phone's width (390 px less the page's margins).
    assert chart.width <= 390
