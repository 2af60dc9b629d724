"""Where each step of an execution's DAG is drawn: the geometry of the dashboard's graph.

A pure function of the graph document (`views.graph`): columns are the steps' levels (the
longest chain of dependencies before each), so every edge points right; inside a column the
steps are ordered by the mean row of the steps they depend on (one barycenter sweep, which
untangles most crossings at a cost linear in the edges), file order breaking ties. A
forEach step is one node however many items it fanned out to (its counts in the label),
so a thousand-item fan-out draws as one box. Coordinates are SVG user units; the template
only copies them into attributes (no inline styles: the CSP forbids them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

NODE_WIDTH = 176
NODE_HEIGHT = 44
COLUMN_GAP = 56
ROW_GAP = 14
MARGIN = 8
LABEL_CHARS = 22  # what fits a node at the dashboard's font size

SKIP_REASONS = {"condition_false": "condition false", "upstream_failed": "upstream failed"}


@dataclass(frozen=True)
class NodeBox:
    key: str
    x: int
    y: int
    state: str
    kind: str
    label: str  # the key, cut to fit
    detail: str  # the second line: state, or a fan-out's counts
    title: str  # the full text, for the tooltip and screen readers
    critical: bool
    dimmed: bool  # skipped: drawn faded


@dataclass(frozen=True)
class EdgePath:
    source: str
    target: str
    d: str  # the SVG path
    critical: bool
    dimmed: bool


@dataclass(frozen=True)
class DagLayout:
    width: int
    height: int
    nodes: tuple[NodeBox, ...]
    edges: tuple[EdgePath, ...]


def layout_dag(graph: Mapping[str, Any]) -> DagLayout:
    """The drawing of a graph document (`{"nodes", "edges", "criticalPath"}`)."""
    nodes: Sequence[Mapping[str, Any]] = graph["nodes"]
    edges: Sequence[Sequence[str]] = graph["edges"]
    if not nodes:
        return DagLayout(0, 0, (), ())
    rows = _rows(nodes, edges)
    columns = 1 + max(int(node["level"]) for node in nodes)
    tallest = 1 + max(rows.values())
    critical = list(graph.get("criticalPath") or [])
    on_path = set(critical)
    path_edges = set(pairwise(critical))
    boxes: dict[str, NodeBox] = {}
    for node in nodes:
        key = node["key"]
        detail, title = _texts(node)
        boxes[key] = NodeBox(
            key=key,
            x=MARGIN + int(node["level"]) * (NODE_WIDTH + COLUMN_GAP),
            y=MARGIN + rows[key] * (NODE_HEIGHT + ROW_GAP),
            state=node["state"],
            kind=node.get("kind") or "agent",
            label=_cut(key, LABEL_CHARS),
            detail=detail,
            title=title,
            critical=key in on_path,
            dimmed=node["state"] == "skipped",
        )
    paths = tuple(
        EdgePath(
            source,
            target,
            _curve(boxes[source], boxes[target]),
            critical=(source, target) in path_edges,
            dimmed=boxes[source].dimmed or boxes[target].dimmed,
        )
        for source, target in edges
    )
    return DagLayout(
        width=2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP,
        height=2 * MARGIN + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP,
        nodes=tuple(boxes.values()),
        edges=paths,
    )


def _rows(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Sequence[str]]) -> dict[str, int]:
    """Each node's row inside its column: columns in level order, each sorted by the mean
    row of its dependencies (already placed, since they sit in earlier columns)."""
    columns: dict[int, list[str]] = {}
    for node in nodes:
        columns.setdefault(int(node["level"]), []).append(node["key"])
    dependencies: dict[str, list[str]] = {}
    for source, target in edges:
        dependencies.setdefault(target, []).append(source)
    rows: dict[str, int] = {}
    for level in sorted(columns):
        weights: dict[str, tuple[float, int]] = {}
        for order, key in enumerate(columns[level]):
            placed = [rows[dep] for dep in dependencies.get(key, ()) if dep in rows]
            weights[key] = (sum(placed) / len(placed) if placed else float(order), order)
        for row, key in enumerate(sorted(weights, key=weights.__getitem__)):
            rows[key] = row
    return rows


def _texts(node: Mapping[str, Any]) -> tuple[str, str]:
    state = node["state"]
    kind = node.get("kind") or "agent"
    detail = state
    reason = node.get("skipReason")
    if state == "skipped" and reason:
        detail = f"skipped: {SKIP_REASONS.get(reason, reason)}"
    items = node.get("items")
    if items is not None:
        total = int(items.get("total", 0))
        done = int(items.get("completed", 0))
        others = ", ".join(
            f"{count} {name}"
            for name, count in items.items()
            if name not in ("total", "completed") and count
        )
        detail = f"{done}/{total} done" + (f", {others}" if others else "")
    prefix = {"approval": "approval", "workflow": "sub-workflow"}.get(kind)
    if prefix is not None:
        detail = f"{prefix} · {detail}"
    return detail, f"{node['key']}: {detail}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _curve(source: NodeBox, target: NodeBox) -> str:
    """A horizontal S-curve from the right side of `source` to the left side of `target`."""
    x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2
    x2, y2 = target.x, target.y + NODE_HEIGHT // 2
    bend = max((x2 - x1) // 2, COLUMN_GAP // 2)
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
