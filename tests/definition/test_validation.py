"""Validation: every problem of a file, each with its field path, reported together."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from automatosx.definition.validation import format_path, validate_document
from automatosx.errors import WorkflowValidationError

VALID: dict[str, Any] = {
    "name": "review",
    "config": {"parallelism": 2, "maxRetries": 1},
    "agents": {"fake": {"provider": "command", "command": ["python3", "agent.py"]}},
    "steps": [
        {"key": "parse", "agent": "fake", "prompt": "Parse {{filePath}}"},
        {"key": "scan", "agent": "security", "prompt": "Scan {{ parse.functions }}",
         "dependencies": ["parse"], "retryPolicy": {"maxRetries": 3}},
        {"key": "report", "agent": "writer", "prompt": "{{scan.result}} {{parse}}",
         "dependencies": ["scan"]},
    ],
}  # fmt: skip


def issues_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(WorkflowValidationError) as caught:
        validate_document(document, source="wf.yaml")
    return [str(issue) for issue in caught.value.issues]


def edited(**changes: Any) -> dict[str, Any]:
    """VALID with `steps__1__retryPolicy__maxRetries="x"`-style edits applied."""
    document = copy.deepcopy(VALID)
    for dotted, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split("__")]
        target: Any = document
        for part in parents:
            target = target[part]
        target[last] = value
    return document


def test_a_valid_document_gives_an_immutable_definition_with_defaults() -> None:
    definition = validate_document(VALID)
    assert definition.config.parallelism == 2
    assert definition.config.checkpoint_interval == 60000
    assert definition.steps[1].retry_policy is not None
    assert definition.steps[1].retry_policy.max_retries == 3
    assert definition.agents["fake"].provider_order() == ["command"]
    with pytest.raises(ValueError):
        definition.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"steps__1__retryPolicy__maxRetries": "x"},
            "steps[1].retryPolicy.maxRetries: Input should be a valid integer",
        ),
        (
            {"steps__1__retryPolicy__maxRetries": -1},
            "steps[1].retryPolicy.maxRetries: Input should be greater than or equal to 0",
        ),
        (
            {"steps__1__retryPolicy__retryableErrors": ["oops"]},
            "steps[1].retryPolicy.retryableErrors[0]: Input should be 'timeout'",
        ),
        (
            {"config__parallelism": 0},
            "config.parallelism: Input should be greater than or equal to 1",
        ),
        ({"steps__0__parallel": "sometimes"}, "steps[0].parallel: Input should be a valid boolean"),
        (
            {"steps__0__dependancies": []},
            "steps[0].dependancies: unknown field (did you mean 'dependencies'?)",
        ),
        ({"steps__0__max_retries": 1}, "steps[0].max_retries: unknown field"),
        (
            {"config__max_retries": 1},
            "config.max_retries: unknown field (did you mean 'maxRetries'?)",
        ),
        ({"colour": "red"}, "colour: unknown field (allowed: name, description, version"),
        ({"name": "has spaces"}, "name: invalid name 'has spaces': a workflow name is 1-128"),
        ({"steps__2__key": "bad key"}, "steps[2].key: invalid name 'bad key': a step key is 1-64"),
        ({"steps": []}, "steps: List should have at least 1 item"),
        (
            {"agents__fake__provider": "telepathy"},
            "agents.fake.provider: Input should be 'claude-code'",
        ),
        (
            {"agents__fake__command": []},
            "agents.fake: provider 'command' needs a non-empty 'command'",
        ),
        (
            {"agents__fake__providers": ["python"]},
            "agents.fake: give either 'provider' or 'providers'",
        ),
        ({"agents__fake__callable": "not a callable"}, "agents.fake.callable: invalid name"),
        (
            {"steps__1__dependencies": ["parse", "ghost"]},
            "steps[1].dependencies[1]: unknown step 'ghost'",
        ),
        (
            {"steps__1__dependencies": ["scan"]},
            "steps[1].dependencies[0]: step 'scan' depends on itself",
        ),
        (
            {"steps__2__key": "parse"},
            "steps[2].key: duplicate step key 'parse' (first at steps[0])",
        ),
        (
            {"steps__0__dependencies": ["report"]},
            "steps[0].dependencies: dependency cycle: parse -> report -> scan -> parse",
        ),
        (
            {"steps__2__dependencies": ["parse"]},
            "steps[2].prompt: {{scan.result}} refers to step 'scan', which is not upstream",
        ),
        (
            {"steps__0__prompt": "{{parse}}"},
            "steps[0].prompt: {{parse}} refers to step 'parse' itself",
        ),
        (
            {"steps__2__prompt": "{{ scna.result }}"},
            "steps[2].prompt: {{ scna.result }} refers to unknown step 'scna' (did you mean 'scan'",
        ),
    ],
)
def test_each_rule_names_its_path(changes: dict[str, Any], expected: str) -> None:
    found = issues_of(edited(**changes))
    assert any(issue.startswith(expected) for issue in found), found


def test_all_problems_of_a_file_are_reported_together() -> None:
    document = edited(
        config__parallelism="many",
        steps__0__colour="red",
        steps__1__retryPolicy__maxRetries="x",
        steps__2__dependencies=["ghost"],
    )
    found = issues_of(document)
    assert [issue.split(":")[0] for issue in found] == [
        "config.parallelism",
        "steps[0].colour",
        "steps[1].retryPolicy.maxRetries",
        "steps[2].dependencies[0]",
        "steps[2].prompt",  # checked with the unknown dependency left out: scan and parse
        "steps[2].prompt",  # are no longer upstream of report
    ]


def test_a_step_without_a_key_still_lets_other_rules_run() -> None:
    document = edited(steps__0__key=None, steps__1__dependencies=["parse"])
    found = issues_of(document)
    assert found[0].startswith("steps[0].key: Input should be a valid string")
    assert "steps[1].dependencies[0]: unknown step 'parse'" in found


def test_context_names_are_not_errors_and_result_alias_of_upstream_is_fine() -> None:
    document = edited(steps__2__prompt="{{ filePath }} {{ settings.mode }} {{ parse.result }}")
    assert validate_document(document).steps[2].prompt.startswith("{{ filePath }}")


def test_non_map_documents_are_refused() -> None:
    assert issues_of([1, 2]) == ["the file is a list; expected a map with 'name' and 'steps'"]  # type: ignore[arg-type]


def test_issue_count_is_capped() -> None:
    document = edited(
        steps=[{"key": f"s{i}", "agent": "a", "prompt": "p", "x": 1} for i in range(150)]
    )
    found = issues_of(document)
    assert len(found) == 101
    assert found[-1] == "... and 50 more problems"


def test_format_path() -> None:
    assert (
        format_path(("steps", 1, "retryPolicy", "maxRetries")) == "steps[1].retryPolicy.maxRetries"
    )
    assert format_path(("agents", "my agent", "model")) == "agents['my agent'].model"
    assert format_path(()) == ""
