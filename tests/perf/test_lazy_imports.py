"""What a command imports: heavy modules stay out of the paths that do not need them.

Start-up time is mostly imports; these tests keep the lazy ones lazy (no timings involved):
`ax --version` loads none of the project's dependencies, and `ax workflow run --format json`
of a python-provider workflow loads no HTTP client, no Rich and no PyYAML, neither before
its first step nor for the JSON document at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
from automatosx.cli.main import main
try:
    main({args!r})
except SystemExit:
    pass
sys.stderr.write("\\nLOADED=" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _loaded(args: list[str], cwd: Path, db: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "AX_DB": str(db), "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    marker = proc.stderr.rpartition("LOADED=")[2]
    assert marker, proc.stderr
    return set(json.loads(marker))


def test_version_imports_none_of_the_dependencies(tmp_path: Path) -> None:
    loaded = _loaded(["--version"], tmp_path, tmp_path / "ax.db")
    assert "automatosx" in loaded
    heavy = {"pydantic", "typer", "rich", "httpx", "yaml", "sqlite3", "asyncio"}
    assert heavy & loaded == set()


def test_a_json_run_of_python_steps_imports_no_http_client_rich_or_yaml(tmp_path: Path) -> None:
    (tmp_path / "quiet_agent.py").write_text(
        "import json, sys\n"
        "def answer(prompt, **_):\n"
        "    with open('at-first-step.json', 'w') as handle:\n"
        "        json.dump(sorted(sys.modules), handle)\n"
        "    return 'ok'\n"
    )
    workflow = {
        "name": "lazy",
        "agents": {"local-fn": {"provider": "python", "callable": "quiet_agent:answer"}},
        "steps": [{"key": "only", "agent": "local-fn", "prompt": "hi"}],
    }
    (tmp_path / "flow.json").write_text(json.dumps(workflow))
    loaded = _loaded(
        ["workflow", "run", "flow.json", "--format", "json"], tmp_path, tmp_path / "ax.db"
    )
    at_first_step = set(json.loads((tmp_path / "at-first-step.json").read_text()))
    assert "automatosx.runtime.engine" in at_first_step
    assert {"httpx", "rich", "yaml"} & at_first_step == set()
    assert {"httpx", "rich", "yaml"} & loaded == set()  # nor for the JSON document after


IMPORT_PROBE = """
import json, sys
import automatosx as ax
names = sorted(ax.__all__)
listed = sorted(dir(ax))
before = sorted(sys.modules)
error = ax.StepError
after_error = sorted(sys.modules)
client = ax.Client
after_client = sorted(sys.modules)
resolved = {name: getattr(ax, name).__module__ for name in names if name != "__version__"}
print(json.dumps({"names": names, "dir": listed, "before": before, "after_error": after_error,
                  "after_client": after_client, "resolved": resolved}))
"""


def test_import_automatosx_stays_light_and_loads_the_api_on_first_use(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    heavy = {"pydantic", "typer", "rich", "httpx", "yaml", "sqlite3", "asyncio", "psycopg"}
    # `import automatosx`, `__all__` and `dir()` load nothing: not the API, no dependency.
    assert heavy & set(found["before"]) == set()
    assert not [m for m in found["before"] if m.startswith("automatosx.")]
    # `ax.StepError` loads the errors module only; `ax.Client` the API, still no database.
    assert [m for m in found["after_error"] if m.startswith("automatosx.")] == ["automatosx.errors"]
    assert "automatosx.api.client" in found["after_client"]
    assert {"sqlite3", "psycopg", "rich", "typer"} & set(found["after_client"]) == set()
    # Every name of SPEC section 12 is there, listed, and resolves.
    spec = {
        "Workflow", "load_workflow", "run_workflow", "run_workflow_async", "Client",
        "WorkflowValidationError", "StepError",
    }  # fmt: skip
    assert spec <= set(found["names"]) <= set(found["dir"])
    assert found["resolved"]["run_workflow"] == "automatosx.api.running"
    assert found["resolved"]["WorkflowValidationError"] == "automatosx.errors"


RACE_PROBE = """
import json, threading
import automatosx as ax
names = ["run_workflow", "Client", "Workflow", "ExecutionResult", "load_workflow",
         "RunningLoopError", "StepStatus", "run_workflow_async"]
barrier = threading.Barrier(len(names))
errors = []
def get(name):
    barrier.wait()
    try:
        getattr(ax, name)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=get, args=(name,)) for name in names]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(errors))
"""


def test_threads_reaching_for_different_api_names_at_once_all_get_them(tmp_path: Path) -> None:
    """A first use from several threads at once (a service's workers, a thread running a
    workflow while another reads its status) must not deadlock the lazy imports: each fresh
    interpreter here has its threads start together (importing the API's submodules in two
    orders at once used to fail most of these rounds)."""
    for _ in range(6):
        proc = subprocess.run(
            [sys.executable, "-c", RACE_PROBE],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == []
