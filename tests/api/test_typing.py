"""The API's types as a consumer sees them: `mypy --strict` on a small program passes, and
misusing the API is caught (so the types are real, not `Any`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONSUMER = Path(__file__).with_name("typed_consumer.py")


def _mypy(*files: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_consumer_module_type_checks_and_misuse_is_caught(tmp_path: Path) -> None:
    good = tmp_path / "consumer.py"
    good.write_text(CONSUMER.read_text())
    bad = tmp_path / "misuse.py"
    bad.write_text(
        "import automatosx as ax\n"
        "result = ax.run_workflow('flow.yaml', context=3)\n"
        "count: int = result.state\n"
        "ax.Client().approve('id')\n"
        "ax.StepError('no-such-kind', 'x')\n"
    )
    # Run outside the repository: mypy finds the installed package (and its py.typed).
    checked = _mypy(good, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    caught = _mypy(bad, cwd=tmp_path)
    assert caught.returncode == 1, caught.stdout
    lines = {line.split(":")[1] for line in caught.stdout.splitlines() if line.startswith("misuse")}
    assert lines == {"2", "3", "4", "5"}, caught.stdout
