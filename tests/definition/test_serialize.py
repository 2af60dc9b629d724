"""Serialization round-trips and the published JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automatosx.cli.output import neutralise
from automatosx.definition.loader import load_workflow, parse_document, parse_workflow
from automatosx.definition.models import WorkflowDefinition
from automatosx.definition.serialize import to_json, to_yaml, workflow_json_schema
from automatosx.definition.validation import validate_document
from automatosx.errors import ERROR_KINDS

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
TRICKY = st.sampled_from(
    ["yes", "no", "on", "null", "~", "1.0", "0x1F", "2024-01-01", "12:30", "- a", "a: b",
     "#c", " lead", "trail ", "'q'", '"dq"', "{{x}}", "*a", "&a", "!tag", "", "multi\nline\n",
     "tab\there", "ünï©ødé ✓", "\u2028sep", "nul\x00byte", "\x85nel", "<<", "\x1b[31mred",
     "rtl\u202eltr", "two\nlines \u2066isolate"]
)  # fmt: skip
TEXT = TRICKY | st.text(max_size=30)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False,
    allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@st.composite
def definitions(draw: st.DrawFn) -> WorkflowDefinition:
    keys = ["k-" + key for key in draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))]
    steps: list[dict[str, Any]] = []
    for i, key in enumerate(keys):
        step: dict[str, Any] = {"key": key, "agent": draw(NAMES), "prompt": draw(TEXT)}
        if i and draw(st.booleans()):
            step["dependencies"] = draw(st.lists(st.sampled_from(keys[:i]), unique=True))
            step["prompt"] += "".join(f" {{{{ {d}.result }}}}" for d in step["dependencies"])
        if draw(st.booleans()):
            step["retryPolicy"] = {
                "maxRetries": draw(st.integers(0, 100)),
                "retryBackoffMultiplier": draw(st.floats(1.0, 100.0)),
                "retryableErrors": draw(st.none() | st.lists(st.sampled_from(ERROR_KINDS))),
            }
        if draw(st.booleans()):
            step["outputSchema"] = draw(st.dictionaries(TEXT, JSON, max_size=3))
        step["optional"] = draw(st.booleans())
        steps.append(step)
    document: dict[str, Any] = {
        "name": draw(st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True)),
        "description": draw(st.none() | TEXT),
        "version": draw(TEXT),
        "tags": draw(st.lists(TEXT, max_size=3)),
        "config": {"parallelism": draw(st.integers(1, 64)), "continueOnError": draw(st.booleans())},
        "agents": {
            draw(NAMES): {"provider": "command", "command": draw(st.lists(TEXT, min_size=1)),
                          "env": draw(st.dictionaries(TEXT, TEXT, max_size=3)),
                          "temperature": draw(st.floats(0, 2))}
        },
        "steps": steps,
    }  # fmt: skip
    return validate_document(document)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_yaml_and_json_round_trip_to_equal_definitions(definition: WorkflowDefinition) -> None:
    assert parse_workflow(to_yaml(definition), source="out.yaml") == definition
    # as `ax workflow show` prints it, control characters neutralised: still the same
    assert parse_workflow(neutralise(to_yaml(definition)), source="shown.yaml") == definition
    assert parse_workflow(to_json(definition), source="out.json") == definition
    assert parse_workflow(to_json(definition, indent=None), source="out") == definition


def test_examples_round_trip_and_leave_defaults_out() -> None:
    for path in EXAMPLES:
        definition = load_workflow(path)
        text = to_yaml(definition)
        assert parse_workflow(text, source="x.yaml") == definition
        assert "maxRetries: 0" not in text and "parallel: true" not in text
        assert "&" not in text.replace("&&", "")  # no anchors written


def test_schema_is_draft_2020_12_with_camel_case_names_and_no_extras() -> None:
    schema = workflow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["name", "steps"]
    assert schema["additionalProperties"] is False
    step = schema["$defs"]["StepSpec"]
    assert {"retryPolicy", "timeoutMs", "outputSchema"} <= set(step["properties"])
    assert step["additionalProperties"] is False


def test_schema_accepts_every_example_and_rejects_what_validation_rejects() -> None:
    validator = jsonschema.Draft202012Validator(workflow_json_schema())
    for path in EXAMPLES:
        document = parse_document(path.read_bytes(), source=str(path))
        assert list(validator.iter_errors(document)) == [], path
    bad = parse_document(EXAMPLES[0].read_bytes(), source="x.yaml")
    bad["steps"][0]["retryPolicy"] = {"maxRetries": "three"}
    bad["steps"][1]["colour"] = "red"
    messages = [e.message for e in validator.iter_errors(bad)]
    assert len(messages) == 2
