"""An agent's `env` as its process sees it (SPEC section 4).

A value `${NAME}` is taken from the runner's environment at each attempt, so the workflow
file (and the copy of it each execution stores) holds the reference, never the secret. A
literal value under a secret-looking name is stored masked (`***`); resuming such an
execution takes the value from the runner's variable of the same name, or fails saying why,
and never hands the agent `***`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from automatosx.errors import StepError, ValidationIssue
from automatosx.secrets import MASK, declared_names, is_secret_name, reference_name


def resolve_agent_env(
    env: Mapping[str, str], environ: Mapping[str, str] | None = None, *, strict: bool = True
) -> dict[str, str]:
    """The values the agent's process gets. `strict`: an unresolvable value raises
    `StepError("provider_unavailable")`; otherwise it is left out."""
    source = os.environ if environ is None else environ
    resolved: dict[str, str] = {}
    for name, value in env.items():
        problem, real = _resolve(name, value, source)
        if problem is None and real is not None:
            resolved[name] = real
        elif strict:
            raise StepError("provider_unavailable", problem or f"env {name} has no value")
    return resolved


def env_issues(
    agents: Iterable[tuple[str, str, Mapping[str, str]]], environ: Mapping[str, str] | None = None
) -> list[ValidationIssue]:
    """One issue per (field path, agent, env) value that cannot be resolved now: checked
    before a run or resume starts, so it fails with exit 2 instead of mid-run."""
    source = os.environ if environ is None else environ
    issues = []
    for path, agent, env in agents:
        for name, value in env.items():
            problem, _ = _resolve(name, value, source)
            if problem is not None:
                issues.append(ValidationIssue(f"{path}.env.{name}", f"agent {agent!r}: {problem}"))
    return issues


def literal_secret_names(
    env: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """Names whose value is a literal secret (what `validate` warns about)."""
    declared = declared_names(environ)
    return [
        name
        for name, value in env.items()
        if is_secret_name(name, declared) and reference_name(value) is None and value != MASK
    ]


def _resolve(name: str, value: str, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    reference = reference_name(value)
    if reference is not None:
        if reference not in environ:
            return f"env {name} is ${{{reference}}}, but {reference} is not set", None
        return None, environ[reference]
    if value == MASK and is_secret_name(name, declared_names(environ)):
        # A literal secret the stored definition masked: only the runner can supply it.
        if name not in environ:
            return (
                f"env {name} held a literal secret, which is never stored; set {name} in "
                f"this shell before resuming, or write {name}: ${{{name}}} in the workflow file"
            ), None
        return None, environ[name]
    return None, value
