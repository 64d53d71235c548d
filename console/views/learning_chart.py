"""The geometry of the learning screen's chart: accuracy, edit rate and auto-send rate over
the desk's promoted versions, as SVG coordinates the template draws.

Every rate is a share between 0 and 1, so all series share one y axis from 0% to 100%. A
version that lacks a metric (a first triage model is scored on the held-out split only, with
no drafts or routes) leaves a gap in that series; the line joins the points that exist."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 76
# The legend's row above the plot, and how far apart its entries are.
LEGEND_Y, LEGEND_STEP = 16, 150
# Newer versions first to go when there are more than this many to draw.
MAX_COLUMNS = 24
# metric key, legend name, CSS class (the line's colour and dash are in console.css).
SERIES = (
    ("category_accuracy", "Accuracy", "series-accuracy"),
    ("edit_rate", "Edit rate", "series-edit"),
    ("auto_send_rate", "Auto-send rate", "series-auto"),
)
Y_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _at(coordinate: float) -> str:
    # Formatted here, not in the template, so no locale puts a decimal comma into the SVG.
    return f"{coordinate:.1f}"


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: float
    # The version it belongs to, e.g. "triage v2".
    column: str

    @property
    def cx(self) -> str:
        return _at(self.x)

    @property
    def cy(self) -> str:
        return _at(self.y)

    @property
    def shown(self) -> str:
        return f"{self.value:.1%}"


@dataclass(frozen=True)
class Series:
    key: str
    name: str
    css: str
    points: tuple[Point, ...]
    # Where its legend entry starts.
    legend_x: int = 0

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.cx},{p.cy}" for p in self.points)

    @property
    def legend_line_end(self) -> int:
        return self.legend_x + 24

    @property
    def legend_text_x(self) -> int:
        return self.legend_x + 30


@dataclass(frozen=True)
class Tick:
    at: float
    label: str

    @property
    def pos(self) -> str:
        return _at(self.at)


@dataclass(frozen=True)
class Chart:
    columns: tuple[str, ...]
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    # A sentence for screen readers: where each series started and where it stands now.
    summary: str
    # Rows of the table shown beside the chart: the version, then each series' value.
    table: tuple[tuple[str, tuple[str, ...]], ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def point_count(self) -> int:
        return sum(len(s.points) for s in self.series)

    @property
    def x_label_y(self) -> int:
        return self.height - 8

    @property
    def y_label_x(self) -> int:
        return 16

    @property
    def middle_x(self) -> str:
        return _at((self.left + self.right) / 2)

    @property
    def middle_y(self) -> str:
        return _at((self.top + self.bottom) / 2)

    @property
    def legend_y(self) -> int:
        return LEGEND_Y

    @property
    def y_tick_x(self) -> int:
        return self.left - 8

    @property
    def x_tick_y(self) -> int:
        return self.bottom + 16


def _share(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return min(max(float(raw), 0.0), 1.0)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def build_chart(columns: Sequence[tuple[str, Mapping[str, Any]]]) -> Chart | None:
    """``columns``: (label, metrics) per version, oldest first. None when there is nothing
    to draw."""
    columns = list(columns)[-MAX_COLUMNS:]
    if not columns:
        return None
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    if len(columns) == 1:
        xs = [LEFT + plot_width / 2]
    else:
        xs = [LEFT + i * plot_width / (len(columns) - 1) for i in range(len(columns))]

    def y_of(value: float) -> float:
        return TOP + (1 - value) * plot_height

    series = []
    for index, (key, name, css) in enumerate(SERIES):
        points = []
        for x, (label, metrics) in zip(xs, columns, strict=True):
            value = _share(metrics.get(key))
            if value is not None:
                points.append(Point(x=x, y=y_of(value), value=value, column=label))
        series.append(
            Series(
                key=key,
                name=name,
                css=css,
                points=tuple(points),
                legend_x=LEFT + index * LEGEND_STEP,
            )
        )
    table = tuple(
        (label, tuple(_percent(_share(metrics.get(key))) for key, _, _ in SERIES))
        for label, metrics in columns
    )
    return Chart(
        columns=tuple(label for label, _ in columns),
        series=tuple(series),
        x_ticks=tuple(Tick(at=x, label=label) for x, (label, _) in zip(xs, columns, strict=True)),
        y_ticks=tuple(Tick(at=y_of(v), label=f"{v:.0%}") for v in Y_TICKS),
        summary=_summary(series, columns[0][0], columns[-1][0]),
        table=table,
    )


def _summary(series: list[Series], first: str, last: str) -> str:
    parts = []
    for line in series:
        if not line.points:
            parts.append(f"{line.name.lower()}: not measured")
        elif len(line.points) == 1:
            parts.append(f"{line.name.lower()} {line.points[0].value:.1%}")
        else:
            start, end = line.points[0], line.points[-1]
            parts.append(f"{line.name.lower()} {start.value:.1%} → {end.value:.1%}")
    span = first if first == last else f"from {first} to {last}"
    return f"{span}: " + "; ".join(parts) + "."
