"""The live view of a running execution for people: one row per step with its state,
attempt, elapsed time and a spinner while it runs.

It is fed the operations the engine has just committed (so it shows only what is durable)
and redraws a few times a second on stderr, leaving stdout to the final summary. Large
workflows show the running steps and the most recent changes, plus counts, not every row;
a forEach step is one row whatever its number of items, with a bar and a count of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from automatosx.cli.output import STATE_STYLES, human_duration
from automatosx.definition.models import WorkflowDefinition
from automatosx.store.approvals import decision_command
from automatosx.store.events import ApprovalRequested, StepStarted
from automatosx.store.records import AppendEvent, PutInstance, StepInstanceRecord, WriteOp

MAX_ROWS = 25
MAX_WAITING_LINES = 5  # approval commands shown under the table; `pending` lists them all
_SETTLED = frozenset({"completed", "failed", "skipped", "cancelled"})
_EVENT_STATES = {
    "step_started": "running",
    "step_completed": "completed",
    "step_failed": "failed",
    "step_retrying": "retrying",
    "step_skipped": "skipped",
    "step_cancelled": "cancelled",
    "approval_requested": "waiting",
}
_GATE_ENDS = frozenset({"approval_granted", "approval_rejected", "step_cancelled"})


@dataclass
class _StepRow:
    key: str
    agent: str
    state: str = "pending"
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    changed: float = 0.0
    items: dict[str, str] | None = None  # a forEach step: each item's state

    def progress(self) -> Text:
        """A forEach step's items as a bar and a count: one line for 1,000 instances."""
        if self.items is None:
            return Text("")
        total = len(self.items)
        done = sum(1 for state in self.items.values() if state in _SETTLED)
        running = sum(1 for state in self.items.values() if state == "running")
        width = 20
        filled = width * done // total if total else width
        bar = Text("█" * filled, style="green") + Text("░" * (width - filled), style="dim")
        return bar + Text(f" {done}/{total}" + (f" ({running} running)" if running else ""))


class LiveProgress:
    def __init__(self, definition: WorkflowDefinition, console: Console) -> None:
        self.title = definition.name
        self.rows = {s.key: _StepRow(s.key, s.does) for s in definition.steps}
        self.console = console
        self.spinner = Spinner("dots", style="blue")
        self.waiting: dict[str, str] = {}  # approval gates (items too): the approving command
        self.live = Live(
            get_renderable=self.render,
            console=console,
            refresh_per_second=8,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def __enter__(self) -> LiveProgress:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def seed(self, records: Sequence[StepInstanceRecord]) -> None:
        """Start from what a resumed execution already did."""
        for record in records:
            if record.state == "waiting":
                self.waiting[record.key] = decision_command(
                    "approve", record.execution_id, record.key
                )
            if record.parent_key is not None:
                self._note_item(record)
                continue
            row = self.rows.get(record.key)
            if row is not None:
                row.state, row.attempt = record.state, record.attempt
                row.started, row.ended = record.started_at, record.completed_at

    def _note_item(self, record: StepInstanceRecord) -> None:
        row = self.rows.get(record.parent_key or "")
        if row is not None:
            if row.items is None:
                row.items = {}
            row.items[record.key] = record.state

    def on_commit(self, ops: Sequence[WriteOp]) -> None:
        for op in ops:
            if isinstance(op, PutInstance) and op.instance.parent_key is not None:
                self._note_item(op.instance)
                continue
            if not isinstance(op, AppendEvent) or op.step_key is None:
                continue
            if isinstance(op.event, ApprovalRequested):
                self.waiting[op.step_key] = op.event.approve_command
            elif op.type in _GATE_ENDS:
                self.waiting.pop(op.step_key, None)
            row = self.rows.get(op.step_key)
            state = _EVENT_STATES.get(op.type)
            if row is None or state is None:
                continue
            at = op.at or time.time()
            row.state, row.changed = state, at
            if isinstance(op.event, StepStarted):
                row.attempt = op.event.attempt
                row.started, row.ended = at, None
            elif state != "retrying":
                row.ended = at

    def render(self) -> RenderableType:
        now = time.time()
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        shown = list(self.rows.values())
        if len(shown) > MAX_ROWS:
            active = [r for r in shown if r.state in ("running", "retrying")]
            recent = sorted(
                (r for r in shown if r.state not in ("pending", "running", "retrying")),
                key=lambda r: r.changed,
                reverse=True,
            )
            shown = (active + recent)[:MAX_ROWS]
        table = Table(show_edge=False, pad_edge=False, header_style="bold", box=None)
        for column in ("", "Step", "State", "Attempt", "Elapsed", "Agent", "Items"):
            table.add_column(column, no_wrap=True)
        for row in shown:
            marker: RenderableType = self.spinner if row.state == "running" else Text(" ")
            elapsed = None
            if row.started is not None:
                elapsed = ((row.ended or now) - row.started) * 1000
            style = STATE_STYLES.get(row.state, "yellow")
            table.add_row(
                marker,
                row.key,
                Text(row.state, style=style),
                str(row.attempt or "-"),
                human_duration(elapsed),
                row.agent,
                row.progress(),
            )
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return Group(Text(f"{self.title}: {summary}", style="bold"), table, *self._waiting())

    def _waiting(self) -> list[Text]:
        """Under the table, exactly what approves each waiting gate."""
        commands = list(self.waiting.values())
        lines = [Text(f"waiting: {command}", style="yellow") for command in commands]
        if len(lines) > MAX_WAITING_LINES:
            more = len(lines) - MAX_WAITING_LINES
            lines = lines[:MAX_WAITING_LINES]
            lines.append(Text(f"... and {more} more: ax workflow pending", style="yellow"))
        return lines
