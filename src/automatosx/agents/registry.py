"""The agent registry: who answers a step, found by name.

Three layers, later ones overriding earlier ones by name (SPEC section 4): the built-in
profiles below, then `.automatosx/agents/*.yaml` in the working directory (one agent per file,
named by the file's stem or its `name:` key), then the workflow's inline `agents:`. The
built-ins carry a role and a system prompt but no provider: a user (or the providers room)
says which provider serves them.

A broken agent file (bad YAML, an unknown field, unreadable) breaks only the agent it
defines: the registry keeps the file and its problem under the agent's name, so `ax agent
list` still lists the others (with a warning naming the file), a workflow that never uses
that agent still runs, and asking for the agent is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from automatosx.definition.models import AgentSpec
from automatosx.errors import NotFoundError, ValidationIssue, WorkflowValidationError

AGENT_FILE_MAX_BYTES = 256 * 1024
AGENTS_DIR = Path(".automatosx") / "agents"

_BUILTIN_PROFILES: dict[str, tuple[str, str]] = {
    "backend": (
        "Backend engineer",
        "You are a senior backend engineer. Design and review server-side code, APIs, "
        "data models and performance with precision.",
    ),
    "frontend": (
        "Frontend engineer",
        "You are a senior frontend engineer. Build and review user interfaces with care for "
        "accessibility, state management and performance.",
    ),
    "security": (
        "Security engineer",
        "You are an application security engineer. Find vulnerabilities, explain their impact "
        "and propose concrete fixes.",
    ),
    "quality": (
        "Quality engineer",
        "You are a quality engineer. Review code for correctness, test coverage and "
        "maintainability, and propose tests.",
    ),
    "writer": (
        "Technical writer",
        "You are a technical writer. Turn findings into clear, well-structured documentation "
        "and reports.",
    ),
    "devops": (
        "DevOps engineer",
        "You are a DevOps engineer. Review build, deployment, infrastructure and operability.",
    ),
    "data": (
        "Data engineer",
        "You are a data engineer. Design and review schemas, pipelines and queries.",
    ),
    "product": (
        "Product manager",
        "You are a product manager. Clarify requirements, priorities and acceptance criteria.",
    ),
}


def builtin_agents() -> dict[str, AgentSpec]:
    """The built-in profiles (no provider: configuration decides who serves them)."""
    return {
        name: AgentSpec(
            role=role, description=f"Built-in {role.lower()} profile", system_prompt=prompt
        )
        for name, (role, prompt) in _BUILTIN_PROFILES.items()
    }


@dataclass(frozen=True)
class RegisteredAgent:
    name: str
    spec: AgentSpec
    source: str  # "builtin", the agent file's path, or "workflow"


@dataclass(frozen=True)
class BrokenAgent:
    """An agent whose file could not be used: the file and what is wrong with it."""

    name: str
    source: str  # the agent file's path
    error: WorkflowValidationError

    @property
    def problem(self) -> str:
        """What is wrong, without the file name (the error's text starts with it)."""
        return str(self.error).removeprefix(f"{self.source}: ")


class AgentRegistry:
    """Agents by name, each remembering where it was defined (for `ax agent show`), and the
    agents whose files are broken."""

    def __init__(
        self,
        agents: Mapping[str, RegisteredAgent],
        broken: Mapping[str, BrokenAgent] | None = None,
    ) -> None:
        self._agents = dict(agents)
        self.broken: dict[str, BrokenAgent] = dict(broken or {})

    @classmethod
    def load(
        cls, *, workdir: Path | None = None, inline: Mapping[str, AgentSpec] | None = None
    ) -> AgentRegistry:
        """Built-ins, then the working directory's agent files, then inline agents. A
        broken file replaces the agent it names (a broken `backend.yaml` does not silently
        fall back to the built-in backend); an inline agent of that name replaces both."""
        agents = {n: RegisteredAgent(n, s, "builtin") for n, s in builtin_agents().items()}
        broken: dict[str, BrokenAgent] = {}
        for found in _agent_files(workdir or Path.cwd()):
            if isinstance(found, BrokenAgent):
                agents.pop(found.name, None)
                broken[found.name] = found
            else:
                broken.pop(found.name, None)
                agents[found.name] = found
        for name, spec in (inline or {}).items():
            broken.pop(name, None)
            agents[name] = RegisteredAgent(name, spec, "workflow")
        return cls(agents, broken)

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def __iter__(self) -> Iterator[RegisteredAgent]:
        return iter(sorted(self._agents.values(), key=lambda a: a.name))

    def names(self) -> list[str]:
        return sorted(self._agents)

    def entry(self, name: str) -> RegisteredAgent:
        """The agent; its file's validation error if the file is broken, NotFoundError
        naming the known agents if there is no such agent."""
        try:
            return self._agents[name]
        except KeyError:
            if name in self.broken:
                raise self.broken[name].error from None
            known = ", ".join(self.names())
            raise NotFoundError(f"unknown agent {name!r} (known agents: {known})") from None

    def get(self, name: str) -> AgentSpec:
        """The agent's spec; NotFoundError naming the known agents if it does not exist."""
        return self.entry(name).spec


def _agent_files(workdir: Path) -> Iterator[RegisteredAgent | BrokenAgent]:
    folder = workdir / AGENTS_DIR
    if not folder.is_dir():
        return
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        name = path.stem
        try:
            data = _read_agent_file(path)
            given = data.pop("name", name)
            name = given if isinstance(given, str) and given else name
            yield RegisteredAgent(name, _agent_spec(data, path), str(path))
        except WorkflowValidationError as exc:
            yield BrokenAgent(name, str(path), exc)


def _agent_spec(data: dict[str, Any], path: Path) -> AgentSpec:
    try:
        return AgentSpec.model_validate(data)
    except ValidationError as exc:
        issues = [
            ValidationIssue(
                ".".join(str(p) for p in err["loc"]),
                _unknown_field(str(err["loc"][-1])) if err["type"] == "extra_forbidden"
                else err["msg"],
            )
            for err in exc.errors()
        ]  # fmt: skip
        raise WorkflowValidationError(issues, source=str(path)) from None


def _unknown_field(name: str) -> str:
    """As for workflow files: the closest field name, else the allowed ones."""
    import difflib

    allowed = [field.alias or key for key, field in AgentSpec.model_fields.items()]
    close = difflib.get_close_matches(name, [*allowed, "name"], n=1, cutoff=0.6)
    if close:
        return f"unknown field (did you mean '{close[0]}'?)"
    return "unknown field (allowed: " + ", ".join(["name", *allowed]) + ")"


def _read_agent_file(path: Path) -> dict[str, Any]:
    """The workflow files' reader (a regular file, bounded size, no YAML tags or alias
    bombs, errors with line and column), and a mapping at the top."""
    from automatosx.definition.loader import parse_document, read_file

    source = str(path)
    data = parse_document(
        read_file(path, max_bytes=AGENT_FILE_MAX_BYTES),
        source=source, fmt="yaml", max_bytes=AGENT_FILE_MAX_BYTES,
    )  # fmt: skip
    if not isinstance(data, dict):
        raise WorkflowValidationError(
            [ValidationIssue("", "an agent file must be a mapping of agent fields")], source
        )
    return data
