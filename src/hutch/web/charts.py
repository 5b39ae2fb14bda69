"""Server-side SVG charts (pygal) for the dashboard, delivered as images with a text alternative."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pygal
from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from markupsafe import Markup, escape
from pygal.style import Style

from hutch.i18n import current_language

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1d2330",
    foreground_strong="#1d2330",
    foreground_subtle="#4f5868",
    colors=("#2458c6", "#1b6e44", "#b3261e", "#8a5a00", "#6b3fa0", "#00707a"),
    font_family="system-ui, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    title_font_size=14,
)


def _image(chart: pygal.Graph, alt: str) -> Markup:
    svg = chart.render(is_unicode=True)
    data = base64.b64encode(svg.encode()).decode()
    return Markup(f'<img class="chart" src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}">')  # noqa: S704 - escaped above


def _config(kind: type[pygal.Graph], title: str, labels: Sequence[str]) -> pygal.Graph:
    chart = kind(
        style=STYLE,
        title=title,
        height=300,
        width=800,
        js=(),
        x_label_rotation=30,
        show_minor_x_labels=False,
        legend_at_bottom=True,
        truncate_legend=30,
        print_values=False,
        margin=16,
        include_x_axis=True,
    )
    chart.x_labels = list(labels)
    chart.x_labels_major = list(labels)[:: max(1, len(labels) // 10)]
    return chart


def weekly_when_long(
    labels: Sequence[str], series: Mapping[str, Sequence[float]], days: int
) -> tuple[list[str], dict[str, list[float]]]:
    """Past 90 days, one point a week (labelled by its first day): readable, and quick to draw."""
    if days <= 90:
        return list(labels), {name: list(values) for name, values in series.items()}
    starts = list(range(0, len(labels), 7))
    return [labels[i] for i in starts], {
        name: [float(sum(values[i : i + 7])) for i in starts] for name, values in series.items()
    }


def line(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], alt: str) -> Markup:
    chart = _config(pygal.Line, title, labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return _image(chart, alt)


def bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], alt: str) -> Markup:
    chart = _config(pygal.StackedBar, title, labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return _image(chart, alt)


class RecentCharts:
    """Drawn charts kept for a short while: drawing is the costliest part of a usage page (a fifth of the
    API's time under the soak's mix), and the numbers behind them move by the minute at most."""

    def __init__(self, seconds: float = 60.0, size: int = 1000) -> None:
        self.seconds = seconds
        self.size = size
        self._kept: dict[tuple[str, ...], tuple[float, Any]] = {}

    def get(self, key: tuple[str, ...]) -> Any | None:
        kept = self._kept.get(key)
        if kept is None or time.monotonic() - kept[0] > self.seconds:
            return None
        return kept[1]

    def put(self, key: tuple[str, ...], value: Any) -> None:
        if len(self._kept) >= self.size:
            self._kept.clear()  # rare, and cheaper than tracking ages: everything is redrawn once
        self._kept[key] = (time.monotonic(), value)


def number(value: float, digits: int = 0) -> str:
    """``value`` as the language of the moment writes numbers (1,234.5 in English, 1234,5 in Spanish)."""
    try:
        locale = Locale.parse(current_language())
    except (ValueError, UnknownLocaleError):
        locale = Locale("en")
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(round(value, digits), format=pattern, locale=locale)


def describe(sentence: str, total: float, days: int) -> str:
    """The text alternative's summary line, what the chart adds up to: ``sentence`` (translated, with
    ``%(num)s`` and ``%(days)s``) filled with the total, written in the language of the moment."""
    return sentence % {"num": number(total), "days": days}
