"""Every example runs end to end, from the repository root as the README shows.

The code-review and file-review examples run on the embedded `local` model (no key, no
network); the other two on the deterministic command agent. The table view ends with the
final steps' results. code-review reads the code it reviews (`--context-file`), as
`make example` runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RunAx

ROOT = Path(__file__).resolve().parents[1]
REVIEWED = "src/automatosx/definition/graph.py"
EXAMPLES = {
    "code-review.yaml": ({"filePath": REVIEWED}, ["generate-report"]),
    "data-pipeline.yaml": (
        {"datasetPath": "examples/data/orders.csv", "warehouse": "analytics"},
        None,
    ),
    "deployment.yaml": ({"service": "payments-api", "version": "2.4.0"}, ["promote-production"]),
    "file-review.yaml": (
        {"change": "edits src/automatosx/definition/graph.py and src/automatosx/runtime/engine.py"},
        ["report"],
    ),
}


FILES = {"code-review.yaml": ["--context-file", f"code={REVIEWED}"]}


@pytest.mark.timeout(900)  # the local model on 2 cores: code-review takes 2-3 minutes
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_to_completion(run_ax: RunAx, name: str) -> None:
    context, final = EXAMPLES[name]
    path = str(ROOT / "examples" / name)
    args = ["workflow", "run", path, "--context", json.dumps(context), *FILES.get(name, [])]
    result = run_ax(*args, cwd=ROOT, timeout=840)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "completed" in result.stdout
    for key in final or []:
        assert f"Result of {key}" in result.stdout

    runs = json.loads(run_ax("workflow", "runs", "--format", "json").stdout)
    status = json.loads(
        run_ax("workflow", "status", runs[0]["executionId"], "--format", "json").stdout
    )
    assert status["state"] == "completed"
    if name == "file-review.yaml":  # the deep review runs only for a high-risk change
        assert status["steps"].pop("deep-security")["state"] in ("completed", "skipped")
        files = status["stepResults"]["triage"]["files"]
        assert 1 <= status["steps"]["review"]["items"] == len(files) <= 4
        assert len(status["stepResults"]["review"]) == len(files)
    assert all(step["state"] == "completed" for step in status["steps"].values())
    if name == "code-review.yaml":
        assert {step["provider"] for step in status["steps"].values()} == {"local"}
        assert status["context"]["code"] == (ROOT / REVIEWED).read_text()  # stored as read
        # The model read the code: the functions it names are the file's (most of them; a
        # 0.5B model may still invent one).
        functions = status["stepResults"]["parse-changes"]["functions"]
        defined = [name for name in functions if f"def {name}(" in status["context"]["code"]]
        assert functions and len(defined) >= len(functions) / 2, functions
        assert status["tokensOut"] > 0
