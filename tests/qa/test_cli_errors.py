"""Bad input through the real CLI: one `error:` line, exit 2, and the same wording whichever
command found the problem."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import RunAx


def test_run_names_the_file_for_agent_problems_like_validate(run_ax: RunAx, tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "name: x\nsteps:\n  - key: a\n    agent: nobody\n    prompt: hi\n"
    )
    for command in ("validate", "run"):
        result = run_ax("workflow", command, "wf.yaml")
        result.assert_clean_error(2)
        assert result.stderr.startswith("error: wf.yaml: steps[0].agent: unknown agent"), (
            command,
            result.stderr,
        )
