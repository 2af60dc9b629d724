"""Safe loading: YAML and JSON, bounded, and never any exception but WorkflowValidationError."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automatosx.definition.loader import load_workflow, parse_document, parse_workflow
from automatosx.errors import WorkflowValidationError

MINIMAL = "name: wf\nsteps:\n  - key: a\n    agent: backend\n    prompt: hi\n"


def problem(data: bytes | str, source: str = "wf.yaml", **kwargs: object) -> str:
    with pytest.raises(WorkflowValidationError) as caught:
        parse_workflow(data, source=source, **kwargs)  # type: ignore[arg-type]
    assert caught.value.source == source
    return str(caught.value)


def test_yaml_and_json_load_to_equal_definitions() -> None:
    from_yaml = parse_workflow(MINIMAL, source="wf.yaml")
    document = {"name": "wf", "steps": [{"key": "a", "agent": "backend", "prompt": "hi"}]}
    from_json = parse_workflow(json.dumps(document).encode(), source="wf.json")
    assert from_yaml == from_json
    assert from_yaml.config.parallelism == 4  # the contract's defaults
    assert from_yaml.steps[0].parallel is True


def test_format_is_chosen_by_extension_then_by_content() -> None:
    document = {"name": "wf", "steps": [{"key": "a", "agent": "b", "prompt": "p"}]}
    assert parse_workflow(json.dumps(document), source="workflow.txt").name == "wf"
    assert parse_workflow("{name: wf, steps: [{key: a, agent: b, prompt: p}]}", source="x").name
    assert "invalid JSON" in problem("{name: wf}", source="wf.json")
    assert parse_workflow(json.dumps(document), source="x.yaml", fmt="json").name == "wf"


def test_load_workflow_reads_files_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "flow.yml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_workflow(path).name == "wf"
    with pytest.raises(WorkflowValidationError, match="no such file"):
        load_workflow(tmp_path / "absent.yaml")
    with pytest.raises(WorkflowValidationError, match="is a directory"):
        load_workflow(tmp_path)


def test_bom_is_accepted_and_yaml_keys_stay_text() -> None:
    text = "\ufeff" + MINIMAL + "agents:\n  x:\n    provider: command\n    command: [a]\n"
    text += "    env: {on: yes, 1.5: 2024-01-01}\n"
    document = parse_document(text.encode("utf-8"), source="wf.yaml")
    # keys are text ("on" is not True), timestamps stay text, values follow YAML 1.1
    assert document["agents"]["x"]["env"] == {"on": True, "1.5": "2024-01-01"}
    assert document["name"] == "wf"


def test_merge_keys_and_small_aliases_work() -> None:
    text = "name: wf\nx-retry: &retry {maxRetries: 2, retryDelayMs: 10}\n"
    assert "x-retry: unknown field" in problem(text + MINIMAL.removeprefix("name: wf\n"))
    text = (
        "name: wf\nsteps:\n"
        "  - &base {key: a, agent: backend, prompt: hi, retryPolicy: {maxRetries: 2}}\n"
        "  - <<: *base\n    key: b\n    dependencies: [a]\n"
    )
    definition = parse_workflow(text, source="wf.yaml")
    assert definition.steps[1].retry_policy == definition.steps[0].retry_policy
    assert definition.steps[1].prompt == "hi"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name: caf\xe9\n", "not UTF-8 text: invalid byte 0xe9 at line 1"),
        (b"name: a\x00b\n", "binary content"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary content"),
        (b"\x89PNG\r\n\x1a\n", "not UTF-8 text: invalid byte 0x89 at line 1"),
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "the file is a list; expected a map"),
        ("just words", "the file is a string"),
        ("name: wf\nname: again\n", "line 2, column 1: duplicate key 'name'"),
        ("{name: a, name: b}", "line 1, column 11: duplicate key 'name'"),
        ("a: [1, 2\nb: 3\n", "line 2, column 2: invalid YAML"),
        ("x: !!python/object/apply:os.system ['echo pwned']", "YAML tags are not allowed"),
        ("x: !!python/name:os.system", "found '!!python/name:os.system'"),
        ("x: !include other.yaml", "found '!include'"),
        ("x: !!binary aGVsbG8=", "YAML tags are not allowed"),
        ("x: !!str 1", "YAML tags are not allowed"),
        ("x: *nowhere", "alias '*nowhere' names no earlier anchor"),
        ("a: &a [*a]", "names no earlier anchor"),
        ("a: 1\n---\nb: 2\n", "one YAML document"),
        ("a: .nan", "'.nan' is not a finite number"),
        ("a: " + "9" * 5000, "is not a usable number"),
        ("? [a, b]\n: c\n", "mapping keys must be plain text"),
        ("a: \x01", "control characters are not allowed"),
    ],
)
def test_bad_input_is_one_clear_validation_error(data: bytes | str, message: str) -> None:
    assert message in problem(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "a", "name": "b"}', "duplicate key 'name' in a JSON object"),
        ('{"name": "a",}', "line 1, column 14: invalid JSON"),
        ('{"a": NaN}', "NaN is not a finite number"),
        ('{"a": -Infinity}', "-Infinity is not a finite number"),
        ("[1, 2]", "the file is a list; expected a map"),
    ],
)
def test_bad_json_is_one_clear_validation_error(text: str, message: str) -> None:
    assert message in problem(text, source="wf.json")


def test_alias_bomb_fails_fast_with_bounded_memory() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    tracemalloc.start()
    started = time.perf_counter()
    message = problem("\n".join(lines))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "expands to more than 1000000 values" in message
    assert peak < 50 * 1024 * 1024, peak  # 10**12 "lol"s would need terabytes
    assert elapsed < 30  # a sanity bound, not a speed test: an expanding load never ends


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        "a: " + "{b: " * 10_000 + "1" + "}" * 10_000,
        "".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "v\n",
        "[" * 101 + "]" * 101,
    ],
)
def test_deep_nesting_fails_without_recursion_error(text: str) -> None:
    message = problem(text)
    assert "nesting" in message


def test_deep_json_nesting_fails_without_recursion_error() -> None:
    assert "nesting is deeper than 100 levels" in problem("[" * 10_000 + "]" * 10_000, "x.json")
    assert "nesting is deeper than 100 levels" in problem("[" * 500 + "]" * 500, "x.json")
    nested = json.dumps({"a": [[[[1]]]]})
    assert "nesting" not in problem(nested, "x.json")  # shallow: fails only on the schema


def test_size_limit_is_checked_before_parsing(tmp_path: Path) -> None:
    assert "larger than the limit of 100 bytes" in problem("a: b\n" * 30, max_bytes=100)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * 200)
    with pytest.raises(WorkflowValidationError, match="larger than the limit of 1000 bytes"):
        load_workflow(big, max_bytes=1000)


def assert_only_validation_errors(data: bytes | str, source: str) -> None:
    """Either a definition or a WorkflowValidationError with clear issues: nothing else."""
    try:
        definition = parse_workflow(data, source=source)
    except WorkflowValidationError as exc:
        assert exc.issues and all(issue.message for issue in exc.issues)
        assert str(exc).startswith(f"{source}: ")
    else:
        assert definition.steps


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_validation_errors(data: bytes) -> None:
    for source in ("fuzz.yaml", "fuzz.json", "fuzz"):
        assert_only_validation_errors(data, source)


YAMLISH = st.text(alphabet="{}[]:-,&*!?|>'\"\n #%@`abc12.\t\\~=<", max_size=300)


@settings(max_examples=600, deadline=None)
@given(YAMLISH)
def test_yaml_like_text_raises_only_validation_errors(text: str) -> None:
    for source in ("fuzz.yaml", "fuzz.json"):
        assert_only_validation_errors(text, source)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = st.sampled_from(["name", "steps", "key", "agent", "prompt", "dependencies", "config"])


STEP_LIKE = st.lists(st.dictionaries(FIELDS, JSON_VALUES, max_size=4), max_size=3)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(FIELDS, JSON_VALUES | STEP_LIKE, max_size=5))
def test_random_documents_raise_only_validation_errors(document: dict[str, object]) -> None:
    for text, source in ((json.dumps(document), "doc.json"), (json.dumps(document), "doc.yaml")):
        assert_only_validation_errors(text, source)
