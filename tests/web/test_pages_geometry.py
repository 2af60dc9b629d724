"""The pure cores behind the pages: where the DAG's boxes go, the timeline's bars and gaps,
the analytics bars, which buttons a state allows, and how numbers are written."""

from __future__ import annotations

from typing import Any

import pytest

from automatosx.web import charts, dag_layout, svg, timeline
from automatosx.web.controls import allowed_actions
from automatosx.web.formatting import cost, duration, percent, when
from automatosx.web.step_panel import cut
from automatosx.web.timeline import Span, StepTimes, build_timeline


def node(key: str, level: int, state: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"key": key, "state": state, "level": level, "kind": "agent", "skipReason": None,
            **extra}  # fmt: skip


def test_a_diamond_is_drawn_in_columns_by_level_with_its_critical_path() -> None:
    graph = {
        "nodes": [node("plan", 0), node("left", 1), node("right", 1), node("join", 2)],
        "edges": [["plan", "left"], ["plan", "right"], ["left", "join"], ["right", "join"]],
        "criticalPath": ["plan", "right", "join"],
    }
    layout = dag_layout.layout_dag(graph)
    boxes = {box.key: box for box in layout.nodes}
    column = dag_layout.NODE_WIDTH + dag_layout.COLUMN_GAP
    row = dag_layout.NODE_HEIGHT + dag_layout.ROW_GAP
    margin = dag_layout.MARGIN
    assert {k: (b.x, b.y) for k, b in boxes.items()} == {
        "plan": (margin, margin),
        "left": (margin + column, margin),
        "right": (margin + column, margin + row),
        "join": (margin + 2 * column, margin),
    }
    assert layout.width == 2 * margin + 3 * dag_layout.NODE_WIDTH + 2 * dag_layout.COLUMN_GAP
    assert layout.height == 2 * margin + 2 * dag_layout.NODE_HEIGHT + dag_layout.ROW_GAP
    assert [k for k, b in boxes.items() if b.critical] == ["plan", "right", "join"]
    critical_edges = [(e.source, e.target) for e in layout.edges if e.critical]
    assert critical_edges == [("plan", "right"), ("right", "join")]
    first = layout.edges[0]  # plan -> left: from plan's right side to left's left side
    middle = margin + dag_layout.NODE_HEIGHT // 2
    assert first.d.startswith(f"M{margin + dag_layout.NODE_WIDTH},{middle} ")
    assert first.d.endswith(f" {margin + column},{middle}")


def test_a_column_is_ordered_by_its_dependencies_rows_not_by_the_file() -> None:
    # In file order `y` (needs b, the lower one) comes first: drawn in that order the
    # two edges would cross.
    graph = {
        "nodes": [node("a", 0), node("b", 0), node("y", 1), node("x", 1)],
        "edges": [["b", "y"], ["a", "x"]],
        "criticalPath": [],
    }
    boxes = {box.key: box for box in dag_layout.layout_dag(graph).nodes}
    assert boxes["x"].y < boxes["y"].y
    assert boxes["a"].y < boxes["b"].y  # no dependencies: the file's order


def test_skipped_steps_are_dimmed_and_a_fan_out_is_one_box_with_counts() -> None:
    graph = {
        "nodes": [
            node("plan", 0),
            node("review", 1, "running", items={"total": 12, "completed": 9, "running": 3}),
            node("maybe", 1, "skipped", skipReason="condition_false"),
            node("gate", 2, "waiting", kind="approval"),
            node("a-step-key-much-longer-than-a-box-is-wide", 2, "pending"),
        ],
        "edges": [["plan", "review"], ["plan", "maybe"], ["review", "gate"], ["maybe", "gate"]],
        "criticalPath": [],
    }
    layout = dag_layout.layout_dag(graph)
    boxes = {box.key: box for box in layout.nodes}
    assert len(layout.nodes) == 5
    assert boxes["review"].detail == "9/12 done, 3 running"
    assert boxes["maybe"].dimmed and boxes["maybe"].detail == "skipped: condition false"
    assert not boxes["review"].dimmed
    assert boxes["gate"].detail == "approval · waiting"
    dimmed = [(e.source, e.target) for e in layout.edges if e.dimmed]
    assert dimmed == [("plan", "maybe"), ("maybe", "gate")]
    long = boxes["a-step-key-much-longer-than-a-box-is-wide"]
    assert len(long.label) == dag_layout.LABEL_CHARS and long.label.endswith("…")
    assert long.title.startswith("a-step-key-much-longer-than-a-box-is-wide: ")


def test_an_empty_graph_draws_nothing() -> None:
    assert dag_layout.layout_dag({"nodes": [], "edges": []}) == dag_layout.DagLayout(0, 0, (), ())


def test_retries_are_separate_bars_with_the_backoff_between_them() -> None:
    t0 = 1000.0
    steps = [
        StepTimes("plan", "completed", (Span(1, "completed", t0, t0 + 1),)),
        StepTimes(
            "flaky", "completed",
            (Span(1, "failed", t0 + 1, t0 + 2), Span(2, "completed", t0 + 4, t0 + 5)),
        ),
        StepTimes("later", "pending", ()),
    ]  # fmt: skip
    chart = build_timeline(steps, now=t0 + 10, critical=["plan", "flaky"], origin=t0)
    per_second = timeline.CHART_WIDTH / 5  # origin .. the last end (nothing runs): 5 s
    left = timeline.LABEL_WIDTH
    plan, flaky, later = chart.rows
    assert [(b.x, b.width, b.state) for b in flaky.bars] == [
        (left + per_second, per_second, "failed"),
        (left + 4 * per_second, per_second, "completed"),
    ]
    assert [(g.x, g.width, g.title) for g in flaky.gaps] == [
        (left + 2 * per_second, 2 * per_second, "backoff 2.0 s")
    ]
    assert flaky.bars[0].title == "flaky attempt 1: failed in 1.0 s"
    assert plan.critical and flaky.critical and not later.critical
    assert later.bars == () and later.y == timeline.AXIS_HEIGHT + 2 * timeline.ROW_HEIGHT
    assert chart.span_ms == 5_000
    assert [t.label for t in chart.ticks] == ["0", "1 s", "2 s", "3 s", "4 s", "5 s"]
    assert chart.ticks[-1].x == left + timeline.CHART_WIDTH


def test_what_still_runs_or_waits_is_drawn_up_to_now() -> None:
    t0 = 50.0
    steps = [
        StepTimes("work", "running", (Span(1, "running", t0, None),)),
        StepTimes("gate", "waiting", (Span(1, "waiting", t0 + 1, None),)),
        StepTimes("retry", "pending", (Span(1, "failed", t0, t0 + 1),), retry_at=t0 + 3),
    ]
    chart = build_timeline(steps, now=t0 + 4)
    work, gate, retry = chart.rows
    assert work.bars[0].x == timeline.LABEL_WIDTH
    assert work.bars[0].width == timeline.CHART_WIDTH
    assert gate.bars[0].title == "gate attempt 1: waiting for a decision for 3.0 s"
    assert [g.title for g in retry.gaps] == ["backoff 2.0 s"]  # 1 s .. 3 s, still waiting


def test_an_instant_attempt_stays_visible_and_a_fan_out_is_one_thin_span() -> None:
    steps = [
        StepTimes("quick", "completed", (Span(1, "completed", 10.0, 10.0),)),
        StepTimes("review", "completed", (Span(0, "completed", 10.0, 20.0),), fan_out=True),
    ]
    quick, review = build_timeline(steps, now=30.0).rows
    assert quick.bars[0].width == timeline.MIN_BAR
    assert review.bars[0].fan_out and review.bars[0].title == "review: its items, in 10 s"


def test_ticks_are_round_numbers_at_any_scale() -> None:
    labels = {
        0.3: ["0", "50 ms", "100 ms", "150 ms", "200 ms", "250 ms", "300 ms"],
        95: ["0", "30 s", "1 min", "1.5 min"],
        3 * 3600 + 1: ["0", "1 h", "2 h", "3 h"],
    }
    for seconds, expected in labels.items():
        span = StepTimes("s", "completed", (Span(1, "completed", 0.0, seconds),))
        chart = build_timeline([span], now=seconds, origin=0.0)
        assert [t.label for t in chart.ticks] == expected, seconds


def test_bar_charts_scale_to_their_largest_value_or_a_fixed_maximum() -> None:
    chart = charts.bar_chart(
        [("fast", [100.0, 400.0]), ("slow", [None, 800.0])], ["p50", "p95"], duration
    )
    fast, slow = chart.groups
    assert [b.width for b in fast.bars] == [charts.BAR_AREA / 8, charts.BAR_AREA / 2]
    assert slow.bars[0].width == 0 and slow.bars[0].text == "no data"
    assert slow.bars[1].width == charts.BAR_AREA and slow.bars[1].text == "800 ms"
    assert slow.bars[1].title == "slow p95: 800 ms"
    group = 2 * (charts.BAR_HEIGHT + charts.BAR_GAP) - charts.BAR_GAP
    assert slow.bars[0].y == fast.bars[0].y + group + charts.GROUP_GAP
    rates = charts.bar_chart([("wf", [0.25])], ["success rate"], percent, maximum=1.0)
    assert rates.groups[0].bars[0].width == charts.BAR_AREA / 4
    assert rates.groups[0].bars[0].text == "25.0%"
    assert charts.bar_chart([], ["cost"], cost).groups == ()


@pytest.mark.parametrize(
    ("state", "flags", "expected"),
    [
        ("executing", {}, ("pause", "cancel")),
        ("scheduling", {}, ("pause", "cancel")),
        ("paused", {}, ("resume", "cancel")),
        ("executing", {"orphaned": True}, ("resume", "cancel")),
        ("executing", {"control_request": "pause"}, ("cancel",)),
        ("executing", {"control_request": "cancel"}, ()),
        ("paused", {"steered_by_parent": True}, ("cancel",)),
        ("completed", {}, ()),
        ("failed", {}, ()),
        ("cancelled", {}, ()),
        ("executing", {"read_only": True}, ()),
        ("paused", {"read_only": True}, ()),
    ],
)
def test_the_buttons_a_state_allows(
    state: str, flags: dict[str, Any], expected: tuple[str, ...]
) -> None:
    assert allowed_actions(state, **flags) == expected


def test_numbers_are_written_for_people() -> None:
    assert [duration(v) for v in (None, 12, 1234, 12_345, 61_000, 3_720_000)] == [
        "", "12 ms", "1.2 s", "12 s", "1 min 1 s", "1 h 2 min",
    ]  # fmt: skip
    assert [cost(v) for v in (None, 0.00123, 12.5)] == ["", "$0.0012", "$12.50"]
    assert percent(0.9876) == "98.8%" and percent(None) == ""
    assert when("2025-01-31T14:05:09.123Z") == "2025-01-31 14:05:09 UTC"


def test_long_texts_are_cut_and_structured_outputs_shown_as_json() -> None:
    assert cut("x" * 30, limit=10) == ("x" * 10, True)
    assert cut("short", limit=10) == ("short", False)
    assert cut({"a": [1]}) == ('{\n  "a": [\n    1\n  ]\n}', False)
    assert cut(None) == (None, False)


def test_the_drawings_escape_every_text_they_show() -> None:
    box = dag_layout.NodeBox(
        key="k", x=8, y=8, state="failed", kind="agent", label="<b>k</b>",
        detail='"quoted" & <i>', title="<script>x</script>", critical=True, dimmed=False,
    )  # fmt: skip
    drawn = str(svg.dag_svg(dag_layout.DagLayout(200, 60, (box,), ()), {"k": '/e?step=k&a="b"'}))
    assert "<b>" not in drawn and "<script>" not in drawn and "<i>" not in drawn
    assert "&lt;b&gt;k&lt;/b&gt;" in drawn and "&lt;script&gt;x&lt;/script&gt;" in drawn
    assert 'href="/e?step=k&amp;a=&#34;b&#34;"' in drawn
    assert '<g class="node state-failed kind-agent critical">' in drawn
    row = timeline.Row("k", "<k>", "running", 22, False, (
        timeline.Bar(200.0, 10.0, "running", 1, "<t>"),), ())  # fmt: skip
    chart = timeline.Timeline(1088, 46, 200, (row,), (timeline.Tick(200.0, "0"),), 1.0)
    drawn = str(svg.timeline_svg(chart))
    assert "<k>" not in drawn and "<t>" not in drawn and "&lt;k&gt;" in drawn
    assert '<rect class="attempt state-running" x="200.0" y="26" width="10.0"' in drawn
    assert str(svg.dag_svg(dag_layout.DagLayout(0, 0, (), ()), {})) == "<p>No steps.</p>"
