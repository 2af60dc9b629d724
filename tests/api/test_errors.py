"""Validation errors from the API: `WorkflowValidationError.problems`, each problem with
its path, raised before anything runs (no execution, no database file)."""

from __future__ import annotations

from pathlib import Path

from tests.api.support import env_for, python_ok


def test_validation_errors_carry_every_problem_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nsteps:\n  - key: a\n    agent: x\n    prompt: p\n    dependencies: [nope]\n"
    )
    got = python_ok(
        """
        import json
        import automatosx as ax

        def problems(call):
            try:
                call()
            except ax.WorkflowValidationError as exc:
                assert isinstance(exc, ax.AxError)
                return {"problems": exc.problems, "text": str(exc)}
            return None

        print(json.dumps({
            "dict": problems(lambda: ax.Workflow.from_dict({
                "name": "bad name!",
                "steps": [
                    {"key": "a", "agent": "x", "prompt": "p", "dependencies": ["missing"]},
                    {"key": "a", "agent": "x", "prompt": "p", "retryPolicy": {"maxRetries": -1}},
                ],
            })),
            "not_a_map": problems(lambda: ax.Workflow.from_dict([1, 2])),
            "file": problems(lambda: ax.load_workflow("bad.yaml")),
            "no_file": problems(lambda: ax.load_workflow("absent.yaml")),
            "agent": problems(lambda: ax.run_workflow(
                {"name": "w", "steps": [{"key": "s", "agent": "nobody-knows", "prompt": "p"}]},
                db="ax.db")),
            "context": problems(lambda: ax.run_workflow(
                {"name": "w", "steps": [{"key": "s", "agent": "a", "prompt": "{{topic}}"}]},
                agents={"a": lambda p, **_: p}, db="ax.db")),
            "not_json": problems(lambda: ax.run_workflow(
                {"name": "w", "steps": [{"key": "s", "agent": "a", "prompt": "p"}]},
                {"when": object()}, agents={"a": lambda p, **_: p}, db="ax.db")),
            "not_callable": problems(lambda: ax.run_workflow(
                {"name": "w", "steps": [{"key": "s", "agent": "a", "prompt": "p"}]},
                agents={"a": "not a function"}, db="ax.db")),
        }))
        """,
        cwd=tmp_path,
        env=env_for(tmp_path / "ax.db"),
    )
    paths = {name: [p["path"] for p in found["problems"]] for name, found in got.items()}
    assert paths["dict"] == [
        "name",
        "steps[1].retryPolicy.maxRetries",
        "steps[1].key",
        "steps[0].dependencies[0]",
    ]
    by_path = {p["path"]: p["message"] for p in got["dict"]["problems"]}
    assert by_path["steps[0].dependencies[0]"] == "unknown step 'missing'"
    assert by_path["steps[1].key"] == "duplicate step key 'a' (first at steps[0])"
    assert got["not_a_map"]["problems"] == [
        {"path": "", "message": "the file is a list; expected a map with 'name' and 'steps'"}
    ]
    assert got["file"]["problems"] == [
        {"path": "steps[0].dependencies[0]", "message": "unknown step 'nope'"}
    ]
    assert got["file"]["text"].startswith("bad.yaml: ")
    assert got["no_file"]["problems"][0]["message"] == "no such file"
    assert paths["agent"] == ["steps[0].agent"]
    assert "unknown agent 'nobody-knows'" in got["agent"]["problems"][0]["message"]
    assert paths["context"] == ["context"]
    assert "{{topic}}" in got["context"]["problems"][0]["message"]
    assert paths["not_json"] == ["context"]
    assert "JSON" in got["not_json"]["problems"][0]["message"]
    assert got["not_callable"]["problems"] == [
        {"path": "agents.a", "message": "expected a callable (sync or async), got str"}
    ]
    assert not (tmp_path / "ax.db").exists()  # nothing ran, nothing was created
