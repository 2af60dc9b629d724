"""`ax workflow validate | graph | schema` through the real CLI, on the examples and on a
corpus of bad files (tests/definition/bad/): exit 2, the right message, no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import RunAx

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
BAD = Path(__file__).parent / "bad"

BAD_FILES: dict[str, list[str]] = {
    "malformed.yaml": ["line 6, column 8: invalid YAML: did not find expected ',' or ']'"],
    "wrong-types.yaml": [
        "config.parallelism: Input should be a valid integer",
        "steps[1].retryPolicy.maxRetries: Input should be a valid integer",
    ],
    "unknown-key.yaml": ["steps[0].dependancies: unknown field (did you mean 'dependencies'?)"],
    "duplicate-key.yaml": ["line 6, column 5: duplicate key 'prompt'"],
    "duplicate-key.json": ["duplicate key 'name' in a JSON object"],
    "duplicate-step-keys.yaml": ["steps[1].key: duplicate step key 'build' (first at steps[0])"],
    "self-dependency.yaml": ["steps[0].dependencies[0]: step 'loop' depends on itself"],
    "cycle.yaml": ["dependency cycle: step-a -> step-c -> step-b -> step-a"],
    "missing-dependency.yaml": ["steps[1].dependencies[0]: unknown step 'biuld'"],
    "placeholder-unknown-step.yaml": [
        "steps[1].prompt: {{ parse-change.result }} refers to unknown step 'parse-change' "
        "(did you mean 'parse-changes'?)"
    ],
    "placeholder-not-upstream.yaml": [
        "steps[2].prompt: {{ check.issues.0 }} refers to step 'check', which is not upstream "
        "of 'report'"
    ],
    "empty-steps.yaml": ["steps: List should have at least 1 item"],
    "alias-bomb.yaml": ["the document expands to more than 1000000 values"],
    "deep-nesting.yaml": ["exceeded maximum nesting depth"],
    "deep-nesting.json": ["nesting is deeper than 100 levels"],
    "non-utf8.yaml": ["not UTF-8 text: invalid byte 0xe9 at line 1"],
    "binary.yaml": ["binary content (NUL bytes)"],
    "python-tag.yaml": [
        "line 1, column 7: YAML tags are not allowed (found '!!python/object/apply:os.system')"
    ],
    "many-problems.yaml": [
        "name: invalid name 'many problems'",
        "config.parallelism: Input should be greater than or equal to 1",
        "steps[0].timeoutMs: Input should be greater than 0",
        "steps[1].dependencies[0]: unknown step 'ghost'",
        "steps[0].prompt: {{ b.result }} refers to step 'b', which is not upstream of 'a'",
    ],
}


def test_every_bad_file_has_an_expectation() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(BAD_FILES)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_refused_with_every_problem_named(name: str, run_ax: RunAx) -> None:
    path = BAD / name
    for command in ("validate", "graph"):
        result = run_ax("workflow", command, str(path))
        result.assert_clean_error(2)
        lines = result.stderr.splitlines()
        assert all(line.startswith(f"error: {path}: ") for line in lines), result.stderr
        for expected in BAD_FILES[name]:
            assert any(expected in line for line in lines), (expected, result.stderr)
        assert len(lines) == len(BAD_FILES[name]), result.stderr
        assert result.stdout == ""


def test_yaml_tag_runs_nothing(run_ax: RunAx, tmp_path: Path) -> None:
    run_ax("workflow", "validate", str(BAD / "python-tag.yaml")).assert_clean_error(2)
    assert not (tmp_path / "pwned").exists()


def test_file_over_the_size_limit(run_ax: RunAx, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.write(b"name: big\nsteps: [{key: a, agent: b, prompt: p}]\n")
        handle.write(b"# " + b"x" * 1022 + b"\n")
        handle.write((b"#" * 1023 + b"\n") * (10 * 1024))
    assert big.stat().st_size > 10 * 1024 * 1024
    result = run_ax("workflow", "validate", str(big))
    result.assert_clean_error(2)
    assert "larger than the limit of 10485760 bytes" in result.stderr


def test_missing_file_and_directory(run_ax: RunAx, tmp_path: Path) -> None:
    result = run_ax("workflow", "validate", "absent.yaml")
    result.assert_clean_error(2)
    assert result.stderr == "error: absent.yaml: no such file\n"
    result = run_ax("workflow", "graph", str(tmp_path))
    result.assert_clean_error(2)
    assert "is a directory" in result.stderr


def test_validate_json_reports_errors_on_stdout_too(run_ax: RunAx) -> None:
    result = run_ax("workflow", "validate", str(BAD / "wrong-types.yaml"), "--format", "json")
    result.assert_clean_error(2)
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert [e["path"] for e in document["errors"]] == [
        "config.parallelism",
        "steps[1].retryPolicy.maxRetries",
    ]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_and_draw(example: Path, run_ax: RunAx) -> None:
    table = run_ax("workflow", "validate", str(example))
    assert table.returncode == 0, table.stderr
    assert "is valid" in table.stdout and "level 0:" in table.stdout

    summary = json.loads(run_ax("workflow", "validate", str(example), "--format", "json").stdout)
    assert summary["valid"] is True
    assert sum(len(level) for level in summary["levels"]) == summary["steps"]

    graph = json.loads(run_ax("workflow", "graph", str(example), "--format", "json").stdout)
    assert set(graph) >= {"nodes", "levels", "topologicalOrder", "criticalPath"}
    assert [n["stepKey"] for n in graph["nodes"]] == summary["topologicalOrder"]
    position = {key: i for i, key in enumerate(graph["topologicalOrder"])}
    for node in graph["nodes"]:
        assert node["stepKey"] in graph["levels"][node["level"]]
        assert all(position[d] < position[node["stepKey"]] for d in node["dependencies"])
    assert graph["levels"] == summary["levels"]

    mermaid = run_ax("workflow", "graph", str(example), "--format", "mermaid")
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart TD\n")
    assert mermaid.stdout.count("-->") == sum(len(n["dependencies"]) for n in graph["nodes"])
    dot = run_ax("workflow", "graph", str(example), "--format", "dot")
    assert dot.returncode == 0 and dot.stdout.startswith("digraph ")
    assert dot.stdout.count(" -> ") == sum(len(n["dependencies"]) for n in graph["nodes"])


def test_code_review_example_is_the_source_design(run_ax: RunAx) -> None:
    result = run_ax(
        "workflow", "graph", str(ROOT / "examples" / "code-review.yaml"), "--format", "json"
    )
    graph = json.loads(result.stdout)
    assert graph["levels"] == [
        ["parse-changes"],
        ["security-scan", "quality-check"],
        ["generate-report"],
    ]
    assert graph["criticalPath"] == ["parse-changes", "security-scan", "generate-report"]


def test_schema_command_prints_one_json_schema(run_ax: RunAx) -> None:
    result = run_ax("workflow", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "AutomatosX workflow"
    assert "retryPolicy" in schema["$defs"]["StepSpec"]["properties"]


def test_schema_titles_and_descriptions_speak_the_files_names(run_ax: RunAx) -> None:
    """Every title and description in the whole schema, as an editor shows them: a
    property's title is its key in the file (`timeoutMs`, not "Timeoutms"), and no text
    names a Python spelling (`retryable_errors`) or Python values (`None`)."""
    from automatosx.errors import ERROR_KINDS

    schema = json.loads(run_ax("workflow", "schema").stdout)
    titles: dict[str, str] = {}
    descriptions: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")
        if not isinstance(node, dict):
            return
        if isinstance(node.get("description"), str):
            descriptions.append(node["description"])
        for key, value in node.items():
            if key == "properties":
                for name, prop in value.items():
                    titles[f"{path}.{name}"] = prop.get("title")
                    assert prop.get("title") == name, (path, name, prop.get("title"))
            if isinstance(value, dict | list):
                walk(value, f"{path}.{key}")

    walk(schema, "")
    assert len(titles) > 40 and titles[".$defs.StepSpec.timeoutMs"] == "timeoutMs"
    assert titles[".$defs.StepSpec.if"] == "if" and titles[".$defs.ForEachSpec.as"] == "as"
    assert len(descriptions) >= 6
    for text in descriptions:
        snake = set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text)) - set(ERROR_KINDS)
        assert not snake, (snake, text)
        assert "None" not in text and "\n" not in text.replace("\n\n", ""), text
    property_names = {key.rsplit(".", 1)[1] for key in titles}
    for text in descriptions:  # every `name` quoted in a description is a key of the file
        for quoted in re.findall(r"`([^`]+)`", text):
            parts = set(quoted.split(".")) - {"context"}
            assert parts <= property_names, (quoted, text)


@pytest.mark.parametrize(
    ("name", "text", "written", "read_as"),
    [
        ("v.yaml", "version: 1.10\n", "1.10", "1.1"),  # the version once stored as "1.1"
        ("v.yaml", "version: 010\n", "010", "8"),  # YAML 1.1 octal
        ("v.yaml", "version: 1\n", "1", None),  # refused too, though it would read back
        ("v.json", '{"version": 2.50,\n', "2.50", "2.5"),
        ("v.yaml", "{version: 1.10,\n", "1.10", "1.1"),  # a flow mapping
    ],
)
def test_unquoted_version_is_refused_with_a_hint_to_quote_it(
    run_ax: RunAx, tmp_path: Path, name: str, text: str, written: str, read_as: str | None
) -> None:
    if text.startswith("{"):  # the same workflow, as a flow mapping (YAML) or JSON
        steps = '"steps": [{"key": "a", "agent": "backend", "prompt": "hi"}], "name": "w"}\n'
    else:
        steps = "name: w\nsteps:\n  - {key: a, agent: backend, prompt: hi}\n"
    path = tmp_path / name
    path.write_text(text + steps)
    result = run_ax("workflow", "validate", str(path))
    result.assert_clean_error()
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {path}: version: a version is text, not a number")
    assert line.endswith(f'quote it, as in version: "{written}"')
    assert (f"{written} is read as {read_as}" in line) is (read_as is not None)
    run_ax("workflow", "run", str(path)).assert_clean_error()


def test_validate_summary_counts_in_english(run_ax: RunAx, tmp_path: Path) -> None:
    agents = "agents: {cat: {provider: command, command: [cat]}}\n"
    one = tmp_path / "one.yaml"
    one.write_text("name: one\n" + agents + "steps:\n  - {key: a, agent: cat, prompt: hi}\n")
    two = tmp_path / "two.yaml"
    two.write_text(
        "name: two\n" + agents + "steps:\n  - {key: a, agent: cat, prompt: hi}\n"
        "  - {key: b, agent: cat, prompt: hi, dependencies: [a]}\n"
    )
    assert "is valid: 1 step in 1 level\n" in run_ax("workflow", "validate", str(one)).stdout
    assert "is valid: 2 steps in 2 levels\n" in run_ax("workflow", "validate", str(two)).stdout


def test_quoted_version_is_kept_as_written(run_ax: RunAx, tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text('name: w\nversion: "1.10"\nsteps:\n  - {key: a, agent: backend, prompt: hi}\n')
    result = run_ax("workflow", "validate", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] == "1.10"


def test_bad_format_option_is_a_usage_error(run_ax: RunAx) -> None:
    example = str(EXAMPLES[0])
    run_ax("workflow", "graph", example, "--format", "svg").assert_clean_error(2)


def test_validate_checks_agents_like_run_does(run_ax: RunAx, tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "name: bad-agent\n"
        "agents:\n"
        "  fine: {provider: command, command: [echo, hi]}\n"
        "steps:\n"
        "  - {key: a, agent: fine, prompt: hi}\n"
        "  - {key: b, agent: nobody-here, prompt: hi}\n"
    )
    result = run_ax("workflow", "validate", str(path))
    result.assert_clean_error(2)
    assert "steps[1].agent: unknown agent 'nobody-here'" in result.stderr
    assert str(path) in result.stderr
