"""Prompt placeholders: extraction, rendering rules of SPEC section 3, and their errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automatosx.definition.templates import (
    Placeholder,
    context_names,
    extract_placeholders,
    render,
    step_references,
)
from automatosx.definition.validation import validate_document
from automatosx.errors import StepError

OUTPUTS: dict[str, Any] = {
    "parse": {"functions": ["load", "save"], "meta": {"lines": 12, "ok": True}},
    "text": "plain words",
    "says": "the result is in",  # text that contains the word "result"
    "wrapped": {"result": "inner", "other": 1},
    "number": 42,
    "nothing": None,
}


def fill(template: str, **context: Any) -> str:
    return render(template, context=context, step_outputs=OUTPUTS, empty_steps={"flaky"})


def test_extract_finds_heads_and_paths_with_whitespace_allowed() -> None:
    found = extract_placeholders("A {{a}} B {{  b.c.0 }} C {{ step-key.result }}")
    assert found == [
        Placeholder("{{a}}", "a", ()),
        Placeholder("{{  b.c.0 }}", "b", ("c", "0")),
        Placeholder("{{ step-key.result }}", "step-key", ("result",)),
    ]


def test_text_that_is_not_a_placeholder_stays_literal() -> None:
    template = "Go: {{ .Name }}, maths: {{ a + b }}, empty: {{}}, open {{ x"
    assert extract_placeholders(template) == []
    assert fill(template) == template


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{text}}", "plain words"),
        ("{{ text.result }}", "plain words"),
        ("{{says.result}}", "the result is in"),  # the whole text, not a lookup into it
        ("{{parse}}", '{"functions":["load","save"],"meta":{"lines":12,"ok":true}}'),
        ("{{parse.result}}", '{"functions":["load","save"],"meta":{"lines":12,"ok":true}}'),
        ("{{parse.functions}}", '["load","save"]'),
        ("{{parse.functions.1}}", "save"),
        ("{{parse.result.functions.0}}", "load"),
        ("{{parse.meta.lines}}", "12"),
        ("{{parse.meta.ok}}", "true"),
        ("{{wrapped.result}}", "inner"),  # the output's own "result" key wins over the alias
        ("{{wrapped}}", '{"result":"inner","other":1}'),
        ("{{number}}", "42"),
        ("{{nothing}}", "null"),
        ("[{{flaky}}] [{{ flaky.anything.0 }}]", "[] []"),
        ("{{file}}", "a.py"),
        ("{{cfg.modes.0}}", "fast"),
        ("{{cfg}}", '{"modes":["fast"],"name":"ünï"}'),
    ],
)
def test_rendering_rules(template: str, expected: str) -> None:
    assert fill(template, file="a.py", cfg={"modes": ["fast"], "name": "ünï"}) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ missing }}", "{{ missing }}: 'missing' is not in the execution context"),
        ("{{parse.nope}}", "{{parse.nope}}: the output of step 'parse' has no key 'nope'"),
        ("{{parse.functions.7}}", "has no index '7' at functions (a list of 2)"),
        ("{{parse.functions.2}}", "has no index '2' at functions (a list of 2)"),  # one past
        ("{{parse.functions.-1}}", "has no index '-1'"),
        ("{{parse.functions.x}}", "has no index 'x'"),
        ("{{text.length}}", "the output of step 'text' is text at the top level"),
        ("{{number.0}}", "is a number at the top level, so it has no '0'"),
        ("{{file.x}}", "{{file.x}}: context value 'file' is text"),
    ],
)
def test_unresolvable_placeholders_fail_with_template_error(template: str, message: str) -> None:
    with pytest.raises(StepError) as caught:
        fill(template, file="a.py")
    assert caught.value.kind == "template_error"
    assert message in caught.value.message


def test_inserted_values_are_never_expanded_again_or_evaluated() -> None:
    outputs = {"evil": "{{secret}} {{__import__('os').system('x')}}"}
    rendered = render("{{evil}}", context={"secret": "s3cr3t"}, step_outputs=outputs)
    assert rendered == outputs["evil"]


def test_context_names_and_step_references_of_a_definition() -> None:
    definition = validate_document(
        {
            "name": "wf",
            "steps": [
                {"key": "a", "agent": "x", "prompt": "{{filePath}} {{ mode.kind }}"},
                {"key": "b", "agent": "x", "prompt": "{{a.result}} {{a}} {{lang}}",
                 "dependencies": ["a"]},
            ],
        }
    )  # fmt: skip
    assert context_names(definition) == {"filePath", "mode", "lang"}
    assert step_references(definition) == {"a": set(), "b": {"a"}}


@given(st.text(max_size=200))
def test_text_without_braces_renders_unchanged(text: str) -> None:
    plain = text.replace("{", "(").replace("}", ")")
    assert render(plain, context={}, step_outputs={}) == plain


# (no name characters but the placeholders': "{", "{", "x", "}", "}" would be a third one)
@given(st.lists(st.sampled_from(["{{a}}", "{{ b.k }}", "!", " ", "{", "}"]), max_size=30))
def test_rendering_replaces_exactly_the_placeholders(parts: list[str]) -> None:
    template = "".join(parts)
    rendered = render(template, context={"a": "A"}, step_outputs={"b": {"k": "B"}})
    expected = template.replace("{{a}}", "A").replace("{{ b.k }}", "B")
    assert rendered == expected
