"""The expression evaluator (definition/expressions.py) agrees with cel-python's own.

Expressions are evaluated by calling cel-python's transpiled lambdas directly (a fast path
past its activation machinery): every expression here is also evaluated by cel-python's
documented `Runner.evaluate`, and the two must give the same value, or both fail."""

from __future__ import annotations

import threading
from typing import Any

import celpy
import pytest
from celpy.evaluation import CELEvalError

from automatosx.definition.expressions import (
    Expression,
    cel_value,
    compile_expression,
    step_value,
)
from automatosx.errors import StepError

CONTEXT = {"mode": "full", "files": ["a.py", "b.md", "c.py"], "n": 3, "limits": {"max": 2}}
STEPS = {"triage": ({"risk": "high", "scores": [1, 5, 9]}, "completed"), "parse-changes": (
    ["x"], "completed"
)}  # fmt: skip

AGREEING = [
    'context.mode == "full" && context.n > 2',
    'context.files.exists(f, f.endsWith(".md"))',
    'context.files.all(f, f.contains("."))',
    'context.files.exists_one(f, f.startsWith("b"))',
    'context.files.filter(f, f.endsWith(".py"))',
    "context.files.map(f, size(f))",
    "context.files.map(f, context.files.filter(g, g == f).size())",  # nested comprehension
    "has(context.limits.max) && !has(context.limits.min)",
    "has(context.limits.max)",
    "context.files.exists(f, has(context.limits.max)) || has(steps.triage.output.nope)",
    "type(context.n) == int",
    "double(context.n) / 2.0",
    "context.n % 2 == 1 ? 'odd' : 'even'",
    'steps.triage.output.risk in ["high", "critical"]',
    "steps.triage.output.scores.all(s, s < 10) && steps.triage.state == 'completed'",
    'size(steps["parse-changes"].output) == 1',
    '"a.py" in context.files',
    "{'k': context.n}.k + 1",
    'context.mode.matches("^f")',
    '!context.files.exists(f, f == "z") && size(context.files) >= 3',
    'context.mode + "-" + string(context.n)',
    'timestamp("2026-01-01T00:00:00Z") < timestamp("2026-06-01T00:00:00Z")',
    'duration("90s") > duration("1m")',
    "context.limits.max == 2u || context.limits.max == 2",
]
FAILING = [
    ("context.n / 0", "divide"),
    ("context.missing == 1", "missing"),
    ("context.__class__.__mro__ == 1", "no such member"),  # no reflection into Python
    ("int(context.mode) > 1", ""),
    ("steps.triage.output.scores[7] > 0", ""),
]


def compiled(source: str) -> Expression:
    expression, issues = compile_expression(
        source, path="if", is_upstream=lambda key: True, known_steps=frozenset(STEPS)
    )
    assert expression is not None, issues
    return expression


def steps_for(expression: Expression) -> dict[str, Any]:
    return {key: step_value(*STEPS[key]) for key in expression.steps}


def reference(source: str) -> Any:
    """cel-python's own evaluation, through its public API."""
    environment = celpy.Environment()
    program = environment.program(environment.compile(source))
    steps = celpy.celtypes.MapType(
        {celpy.celtypes.StringType(k): step_value(*v) for k, v in STEPS.items()}
    )
    return program.evaluate({"context": cel_value(CONTEXT), "steps": steps})


def plain(value: Any) -> Any:
    """A value of cel-python's as the JSON-like Python a step sees."""
    types = celpy.celtypes
    conversions = [
        (types.BoolType, bool), (types.IntType, int), (types.DoubleType, float),
        (bool, bool), (str, str),
    ]  # fmt: skip
    for cel_type, python_type in conversions:
        if isinstance(value, cel_type):
            return python_type(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    raise AssertionError(f"unexpected value {value!r}")


@pytest.mark.parametrize("source", AGREEING)
def test_the_fast_path_gives_what_cel_python_gives(source: str) -> None:
    expression = compiled(source)
    ours = expression.evaluate(cel_value(CONTEXT), steps_for(expression))
    theirs = plain(reference(source))
    assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize(("source", "words"), FAILING)
def test_a_failing_expression_is_an_expression_error_as_in_cel_python(
    source: str, words: str
) -> None:
    expression = compiled(source)
    with pytest.raises(StepError) as raised:
        expression.evaluate(cel_value(CONTEXT), steps_for(expression))
    assert raised.value.kind == "expression_error"
    assert raised.value.message.startswith(f"{source}: ") and words in raised.value.message
    try:
        outcome = reference(source)
    except CELEvalError:
        return
    assert isinstance(outcome, CELEvalError)


def test_evaluations_on_many_threads_do_not_see_each_others_values() -> None:
    """cel-python's own runner keeps its activation in a module global; ours does not, so
    expressions evaluated at once on the engine's loop and on limit threads stay apart."""
    expression = compiled("context.files.map(f, f + context.mode)")
    wrong: list[Any] = []

    def work(mode: str) -> None:
        context = cel_value({"files": ["a", "b"], "mode": mode})
        for _ in range(200):
            value = expression.evaluate(context, {})
            if value != ["a" + mode, "b" + mode]:
                wrong.append(value)

    threads = [threading.Thread(target=work, args=(str(i),)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
