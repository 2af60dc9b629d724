"""The geometry of the analytics page's bar charts: horizontal bars, one group per label
(a workflow), one bar per series in it (p50 and p95), scaled to the largest value.

Pure: values in, SVG coordinates and texts out; the template copies them into attributes
(presentation attributes, not styles, which the CSP forbids). A missing value (None: no
finished execution to measure) draws no bar and says "no data".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

LABEL_WIDTH = 160
BAR_AREA = 360
VALUE_ROOM = 80  # the value's text after the longest bar
BAR_HEIGHT = 14
BAR_GAP = 3
GROUP_GAP = 10
LABEL_CHARS = 22


@dataclass(frozen=True)
class ChartBar:
    x: int
    y: int
    width: float
    series: int  # the index of its series: the class that colours it
    text: str  # the value as people read it
    text_x: float
    title: str


@dataclass(frozen=True)
class ChartGroup:
    label: str
    title: str
    y: int  # the baseline of its label
    bars: tuple[ChartBar, ...]


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    groups: tuple[ChartGroup, ...]
    series: tuple[str, ...]
    has_values: bool  # False: nothing measured in the window (the page says so instead)


def bar_chart(
    rows: Sequence[tuple[str, Sequence[float | None]]],
    series: Sequence[str],
    text: Callable[[float], str],
    *,
    maximum: float | None = None,
) -> BarChart:
    """A chart of `rows` (label, one value per series); `maximum` fixes the scale (1.0 for
    rates), else the largest value fills the width."""
    values = [v for _, row in rows for v in row if v is not None]
    top = maximum if maximum is not None else max(values, default=0.0)
    scale = BAR_AREA / top if top > 0 else 0.0
    per_group = len(series) * (BAR_HEIGHT + BAR_GAP) - BAR_GAP
    groups = []
    y = 0
    for label, row in rows:
        bars = []
        for index, value in enumerate(row):
            top_of_bar = y + index * (BAR_HEIGHT + BAR_GAP)
            width = 0.0 if value is None else max(round(value * scale, 1), 1.0)
            shown = "no data" if value is None else text(value)
            bars.append(
                ChartBar(
                    x=LABEL_WIDTH,
                    y=top_of_bar,
                    width=width,
                    series=index,
                    text=shown,
                    text_x=LABEL_WIDTH + width + 6,
                    title=f"{label} {series[index]}: {shown}",
                )
            )
        cut = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        groups.append(ChartGroup(cut, label, y + per_group // 2 + 4, tuple(bars)))
        y += per_group + GROUP_GAP
    return BarChart(
        width=LABEL_WIDTH + BAR_AREA + VALUE_ROOM,
        height=max(y - GROUP_GAP, 0),
        label_width=LABEL_WIDTH,
        groups=tuple(groups),
        series=tuple(series),
        has_values=bool(values),
    )
