"""The execution page's two drawings as SVG markup: the DAG (`dag_layout`) and the Gantt
timeline (`timeline`).

They are written here rather than in a template because a 1,000-step execution draws
thousands of elements, and a Jinja macro spends most of the page's time on them (an
escape and a lookup per attribute); these functions write each element with one
f-string. Every text and attribute that comes from a file or an agent (step keys, titles,
links) goes through `escape`, numbers are formatted by Python, and nothing here is a
style: colours come from the classes in `static/app.css` (the CSP forbids inline style).
"""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup, escape

from automatosx.web.dag_layout import NODE_HEIGHT, NODE_WIDTH, DagLayout
from automatosx.web.timeline import BAR_HEIGHT, ROW_HEIGHT, Timeline


def dag_svg(layout: DagLayout, step_urls: Mapping[str, str]) -> Markup:
    """The DAG: an S-curve per edge (the critical path's thicker), a linked box per step
    with its key and its state or its items' counts."""
    if not layout.nodes:
        return Markup("<p>No steps.</p>")
    parts = [
        f'<svg class="dag" role="group" width="{layout.width}" height="{layout.height}" '
        f'viewBox="0 0 {layout.width} {layout.height}" '
        'aria-label="The steps and their dependencies">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto">'
        '<path class="arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>'
    ]
    for edge in layout.edges:
        kind = "edge" + (" critical" if edge.critical else "") + (" dimmed" if edge.dimmed else "")
        parts.append(f'<path class="{kind}" d="{edge.d}" marker-end="url(#arrow)"/>')
    for node in layout.nodes:
        title = escape(node.title)
        kind = (
            f"node state-{escape(node.state)} kind-{escape(node.kind)}"
            + (" critical" if node.critical else "")
            + (" dimmed" if node.dimmed else "")
        )
        parts.append(
            f'<a href="{escape(step_urls[node.key])}"><title>{title}</title>'  # its name
            f'<g class="{kind}">'
            f'<rect x="{node.x}" y="{node.y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6"/>'
            f'<text class="node-key" x="{node.x + 10}" y="{node.y + 18}">'
            f"{escape(node.label)}</text> "
            f'<text class="node-detail" x="{node.x + 10}" y="{node.y + 35}">'
            f"{escape(node.detail)}</text></g></a>"
        )
    parts.append("</svg>")
    return Markup("\n".join(parts))


def timeline_svg(timeline: Timeline) -> Markup:
    """The timeline: the time axis, then per row its label, backoff gaps and attempt bars
    (a fan-out's own row a thin span over its items)."""
    t = timeline
    parts = [
        f'<svg class="gantt" role="img" width="{t.width}" height="{t.height}" '
        f'viewBox="0 0 {t.width} {t.height}" aria-label="Timeline: one bar per attempt">'
    ]
    for tick in t.ticks:
        parts.append(
            f'<line class="tick" x1="{tick.x}" y1="18" x2="{tick.x}" y2="{t.height}"/>'
            f'<text class="tick-label" x="{tick.x}" y="13" text-anchor="middle">'
            f"{escape(tick.label)}</text>"
        )
    offset = t.bar_offset
    for index, row in enumerate(t.rows):
        key = escape(row.key)
        parts.append(
            f'<g class="row{" critical" if row.critical else ""} state-{escape(row.state)}">'
        )
        if index % 2:
            parts.append(
                f'<rect class="stripe" x="0" y="{row.y}" width="{t.width}" height="{ROW_HEIGHT}"/>'
            )
        full = f"<title>{key}</title>" if row.label != row.key else ""
        parts.append(
            f'<text class="row-label" x="{t.label_width - 8}" y="{row.y + 14}" '
            f'text-anchor="end">{escape(row.label)}{full}</text>'
        )
        middle = row.y + ROW_HEIGHT // 2
        for gap in row.gaps:
            end = round(gap.x + gap.width, 1)
            parts.append(
                f'<line class="backoff" x1="{gap.x}" y1="{middle}" x2="{end}" y2="{middle}">'
                f"<title>{key}: {escape(gap.title)}</title></line>"
            )
        for bar in row.bars:
            state = escape(bar.state)
            if bar.fan_out:
                parts.append(
                    f'<rect class="attempt fan-out state-{state}" x="{bar.x}" y="{middle - 2}" '
                    f'width="{bar.width}" height="4"><title>{escape(bar.title)}</title></rect>'
                )
            else:
                parts.append(
                    f'<rect class="attempt state-{state}" x="{bar.x}" y="{row.y + offset}" '
                    f'width="{bar.width}" height="{BAR_HEIGHT}" rx="2">'
                    f"<title>{escape(bar.title)}</title></rect>"
                )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("\n".join(parts))
