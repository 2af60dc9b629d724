"""The geometry of an execution's Gantt timeline: one row per step instance, one bar per
attempt, from its start to its end (or to `now` while it runs or waits).

Retries are separate bars on their step's row, so the gap between two of them is the
backoff the step waited out (drawn as a dashed span, and up to `retry_at` while it still
waits); an approval gate's bar is its wait for a decision; the critical path's rows are
marked. A pure function of plain values and an explicit `now`, so it is tested without a
clock and the page does one pass over what it already read.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from automatosx.web.formatting import duration

LABEL_WIDTH = 200
CHART_WIDTH = 880
ROW_HEIGHT = 20
BAR_HEIGHT = 12
AXIS_HEIGHT = 22
MIN_BAR = 2  # an instant attempt stays visible
LABEL_CHARS = 28
SECOND, MINUTE, HOUR = 1000, 60_000, 3_600_000
TICK_STEPS_MS = (
    *(1, 2, 5, 10, 20, 50, 100, 200, 500),
    *(s * SECOND for s in (1, 2, 5, 10, 15, 30)),
    *(m * MINUTE for m in (1, 2, 5, 10, 15, 30)),
    *(h * HOUR for h in (1, 2, 3, 6, 12, 24, 48, 168)),
)


@dataclass(frozen=True)
class Span:
    """One attempt: `end` None while it still runs (or, for a gate, waits)."""

    attempt: int
    state: str
    start: float  # epoch seconds
    end: float | None


@dataclass(frozen=True)
class StepTimes:
    key: str
    state: str  # the instance's state
    spans: tuple[Span, ...]
    retry_at: float | None = None  # waiting out a backoff until then (or `now`: still)
    fan_out: bool = False  # a forEach step: its one span covers its items' attempts


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    state: str
    attempt: int
    title: str
    fan_out: bool = False  # drawn thin: the items' rows below hold the attempts


@dataclass(frozen=True)
class Gap:
    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    state: str
    y: int  # top of the row
    critical: bool
    bars: tuple[Bar, ...]
    gaps: tuple[Gap, ...]


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    label_width: int
    rows: tuple[Row, ...]
    ticks: tuple[Tick, ...]
    span_ms: float  # what the chart's width stands for

    @property
    def bar_offset(self) -> int:
        return (ROW_HEIGHT - BAR_HEIGHT) // 2


def build_timeline(
    steps: Sequence[StepTimes],
    *,
    now: float,
    critical: Collection[str] = (),
    origin: float | None = None,
) -> Timeline:
    """Rows for `steps` in their order; time runs from `origin` (default: the first
    attempt's start) to the last end, `now` for anything unfinished."""
    starts = [span.start for step in steps for span in step.spans]
    first = origin if origin is not None else min(starts, default=now)
    last = first
    for step in steps:
        for span in step.spans:
            last = max(last, span.end if span.end is not None else now)
        if step.retry_at is not None:
            last = max(last, step.retry_at)
    span_ms = max((last - first) * 1000, 1.0)
    scale = CHART_WIDTH / span_ms

    def x_of(moment: float) -> float:
        return round(LABEL_WIDTH + max(moment - first, 0.0) * 1000 * scale, 1)

    rows = []
    on_path = set(critical)
    for index, step in enumerate(steps):
        bars: list[Bar] = []
        gaps: list[Gap] = []
        previous_end: float | None = None
        for span in step.spans:
            end = span.end if span.end is not None else now
            if previous_end is not None and span.start > previous_end:
                gaps.append(_gap(x_of(previous_end), x_of(span.start), span.start - previous_end))
            left, right = x_of(span.start), x_of(end)
            bars.append(
                Bar(
                    x=left,
                    width=max(round(right - left, 1), MIN_BAR),
                    state=span.state,
                    attempt=span.attempt,
                    title=_fan_out_title(step.key, span, end)
                    if step.fan_out
                    else _bar_title(step.key, span, end),
                    fan_out=step.fan_out,
                )
            )
            previous_end = end
        if step.retry_at is not None and previous_end is not None and step.retry_at > previous_end:
            gaps.append(_gap(x_of(previous_end), x_of(step.retry_at), step.retry_at - previous_end))
        rows.append(
            Row(
                key=step.key,
                label=step.key if len(step.key) <= LABEL_CHARS else step.key[:27] + "…",
                state=step.state,
                y=AXIS_HEIGHT + index * ROW_HEIGHT,
                critical=step.key in on_path,
                bars=tuple(bars),
                gaps=tuple(gaps),
            )
        )
    return Timeline(
        width=LABEL_WIDTH + CHART_WIDTH + 8,
        height=AXIS_HEIGHT + len(rows) * ROW_HEIGHT + 4,
        label_width=LABEL_WIDTH,
        rows=tuple(rows),
        ticks=_ticks(span_ms, scale),
        span_ms=span_ms,
    )


def _gap(left: float, right: float, seconds: float) -> Gap:
    return Gap(left, round(right - left, 1), f"backoff {duration(seconds * 1000)}")


def _fan_out_title(key: str, span: Span, end: float) -> str:
    took = duration((end - span.start) * 1000)
    return f"{key}: its items, {'running for' if span.end is None else 'in'} {took}"


def _bar_title(key: str, span: Span, end: float) -> str:
    took = duration((end - span.start) * 1000)
    if span.end is None:
        doing = "waiting for a decision" if span.state == "waiting" else span.state
        return f"{key} attempt {span.attempt}: {doing} for {took}"
    return f"{key} attempt {span.attempt}: {span.state} in {took}"


def _ticks(span_ms: float, scale: float) -> tuple[Tick, ...]:
    """Round-numbered ticks, about six across the chart."""
    step = next(
        (s for s in TICK_STEPS_MS if span_ms / s <= 6), math.ceil(span_ms / 6 / HOUR) * HOUR
    )
    count = math.floor(span_ms / step)
    return tuple(
        Tick(round(LABEL_WIDTH + i * step * scale, 1), _tick_label(i * step))
        for i in range(count + 1)
    )


def _tick_label(ms: float) -> str:
    if ms == 0:
        return "0"
    if ms < SECOND:
        return f"{ms:.0f} ms"
    if ms < MINUTE:
        return f"{ms / SECOND:g} s"
    if ms < HOUR:
        return f"{ms / MINUTE:g} min"
    return f"{ms / HOUR:g} h"
