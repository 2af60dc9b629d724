"""One attempt of one step: call the router under the attempt's timeout, check the output.

The coroutine never raises for a step failure: it returns an `AttemptOutcome` so the engine
handles success and failure in the same place. Cancellation (cancel, lease loss, the
workflow timeout) propagates as `CancelledError` after the provider has killed what it
started; a per-attempt timeout becomes the failure kind `timeout`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automatosx.agents.base import ProviderCall, ProviderResult, StepRunner
from automatosx.errors import StepError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from automatosx.runtime.cache_policy import CacheUse


@dataclass(frozen=True)
class AttemptOutcome:
    step_key: str
    attempt: int
    started_at: float
    finished_at: float
    result: ProviderResult | None = None
    error: StepError | None = None
    cache: CacheUse | None = None  # a success the result cache answered, or will store


async def run_attempt(
    runner: StepRunner,
    call: ProviderCall,
    *,
    started_at: float,
    validator: Validator | None,
) -> AttemptOutcome:
    error: StepError
    try:
        if call.timeout_s is None:
            result = await runner.run(call)
        else:
            async with asyncio.timeout(call.timeout_s):
                result = await runner.run(call)
        if validator is not None:
            check_output(validator, result.output)
        return AttemptOutcome(call.step_key, call.attempt, started_at, time.time(), result)
    except TimeoutError:
        assert call.timeout_s is not None
        error = StepError(
            "timeout", f"attempt {call.attempt} exceeded its {call.timeout_s * 1000:.0f} ms timeout"
        )
    except StepError as exc:
        error = exc
    except Exception as exc:  # a provider bug must fail the step, not the engine
        error = StepError("provider_error", f"{type(exc).__name__}: {exc}")
    return AttemptOutcome(call.step_key, call.attempt, started_at, time.time(), error=error)


def compile_output_schema(schema: dict[str, Any]) -> Validator:
    """The validator for a step's `outputSchema` (its `$schema` draft, else 2020-12).
    Raises `SchemaError` for a schema that is itself invalid. (jsonschema is imported only
    when a workflow uses `outputSchema`: it is a noticeable part of start-up.)"""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    validator_class = validator_for(schema, default=Draft202012Validator)
    validator_class.check_schema(schema)
    _check_refs(schema, validator_class.META_SCHEMA.get("$schema", ""))
    return validator_class(schema)


# Keywords whose values are data, not subschemas: a {"$ref": ...} inside them is not a ref.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


def _check_refs(schema: dict[str, Any], dialect: str) -> None:
    """Raise `SchemaError` for a `$ref` that cannot be resolved from the schema itself.

    jsonschema resolves refs lazily, so a broken one would only surface mid-run, as an
    internal error, on the first output that reaches it. Nothing is fetched: a ref to
    another document (a URL, a file) is unresolvable here too, as it would be at run time.
    """
    from jsonschema.exceptions import SchemaError
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012, specification_with

    specification = specification_with(dialect, default=DRAFT202012)
    root = specification.create_resource(schema)
    base_uri = root.id() or ""
    registry: Registry[Any] = Registry().with_resource(base_uri, root).crawl()

    def walk(node: Any, resolver: Any, path: str) -> None:
        if isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, resolver, f"{path}/{index}")
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("$id"), str):
            resolver = resolver.in_subresource(specification.create_resource(node))
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                where = path or "(root)"
                raise SchemaError(f"$ref {ref!r} at {where} cannot be resolved") from None
        for key, value in node.items():
            if key not in _DATA_KEYWORDS:
                walk(value, resolver, f"{path}/{key}")

    walk(schema, registry.resolver(base_uri=base_uri), "")


def check_output(validator: Validator, output: Any) -> None:
    """Raise `invalid_output` naming where the output breaks the step's `outputSchema`."""
    problem = next(iter(validator.iter_errors(output)), None)
    if problem is not None:
        where = "/".join(str(p) for p in problem.absolute_path) or "(root)"
        raise StepError(
            "invalid_output", f"output does not match outputSchema at {where}: {problem.message}"
        )
