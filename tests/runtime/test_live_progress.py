"""The live view a person watches (`cli/live_progress.py`), fed the operations of a real
in-process run: a forEach step stays one row with a bar and a count, however many items."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console

from automatosx.cli.live_progress import LiveProgress
from automatosx.definition.validation import validate_document
from automatosx.runtime.control import start_execution
from automatosx.runtime.preparation import prepare_workflow
from automatosx.store.base import Store
from tests.runtime.support import AGENTS_DIR, step, workflow


def test_a_fan_out_of_200_items_is_one_row(store: Store, tmp_path: Path) -> None:
    data = workflow(
        [
            step("make", "x", agent="upper"),
            step(
                "each",
                "x {{n}}",
                ["make"],
                agent="upper",
                forEach={"items": "context.n", "as": "n"},
            ),
            step("after", "x", ["each"], agent="upper"),
        ],
        agents={"upper": {"provider": "python", "callable": "py_agents:async_upper"}},
        config={"parallelism": 16},
    )
    definition = validate_document(data)
    prepared = prepare_workflow(definition, workdir=AGENTS_DIR)
    console = Console(file=io.StringIO(), record=True, width=160, color_system=None)
    view = LiveProgress(definition, console)
    runner = start_execution(
        store, prepared, context={"n": list(range(200))}, on_commit=view.on_commit
    )
    assert asyncio.run(runner.run()).state == "completed"
    console.print(view.render())
    text = console.export_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) <= 6, text  # title, header, three steps: not 200 rows
    (each,) = [line for line in lines if " each " in f" {line} "]
    assert "200/200" in each and "█" in each
    assert "each[" not in text
