"""The agent registry: who answers a step, found by name.

Three layers, later ones overriding earlier ones by name (SPEC section 4): the built-in
profiles below, then `.automatosx/agents/*.yaml` in the working directory (one agent per file,
named by the file's stem or its `name:` key), then the workflow's inline `agents:`. The
built-ins carry a role and a system prompt but no provider: a user (or the providers room)
says which provider serves them.
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


class AgentRegistry:
    """Agents by name, each remembering where it was defined (for `ax agent show`)."""

    def __init__(self, agents: Mapping[str, RegisteredAgent]) -> None:
        self._agents = dict(agents)

    @classmethod
    def load(
        cls, *, workdir: Path | None = None, inline: Mapping[str, AgentSpec] | None = None
    ) -> AgentRegistry:
        """Built-ins, then the working directory's agent files, then inline agents."""
        agents = {n: RegisteredAgent(n, s, "builtin") for n, s in builtin_agents().items()}
        for name, spec, path in _agent_files(workdir or Path.cwd()):
            agents[name] = RegisteredAgent(name, spec, str(path))
        for name, spec in (inline or {}).items():
            agents[name] = RegisteredAgent(name, spec, "workflow")
        return cls(agents)

    def __contains__(self, name: object) -> bool:
        return name in self._agents

    def __iter__(self) -> Iterator[RegisteredAgent]:
        return iter(sorted(self._agents.values(), key=lambda a: a.name))

    def names(self) -> list[str]:
        return sorted(self._agents)

    def entry(self, name: str) -> RegisteredAgent:
        try:
            return self._agents[name]
        except KeyError:
            known = ", ".join(self.names())
            raise NotFoundError(f"unknown agent {name!r} (known agents: {known})") from None

    def get(self, name: str) -> AgentSpec:
        """The agent's spec; NotFoundError naming the known agents if it does not exist."""
        return self.entry(name).spec


def _agent_files(workdir: Path) -> Iterator[tuple[str, AgentSpec, Path]]:
    folder = workdir / AGENTS_DIR
    if not folder.is_dir():
        return
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        data = _read_agent_file(path)
        name = str(data.pop("name", path.stem))
        try:
            spec = AgentSpec.model_validate(data)
        except ValidationError as exc:
            issues = [
                ValidationIssue(".".join(str(p) for p in err["loc"]), err["msg"])
                for err in exc.errors()
            ]
            raise WorkflowValidationError(issues, source=str(path)) from None
        yield name, spec, path


def _read_agent_file(path: Path) -> dict[str, Any]:
    """The workflow files' bounded YAML reader (no tags, no alias bombs), bounded size, and
    a mapping at the top."""
    if path.stat().st_size > AGENT_FILE_MAX_BYTES:
        raise WorkflowValidationError(
            [ValidationIssue("", f"file is larger than {AGENT_FILE_MAX_BYTES} bytes")], str(path)
        )
    import yaml  # only when there are agent files: PyYAML costs ~15 ms of start-up

    from automatosx.definition.safe_yaml import YamlLimitError, load_yaml

    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, YamlLimitError, UnicodeDecodeError) as exc:
        message = " ".join(str(exc).split())
        raise WorkflowValidationError([ValidationIssue("", message)], str(path)) from None
    if not isinstance(data, dict):
        raise WorkflowValidationError(
            [ValidationIssue("", "an agent file must be a mapping of agent fields")], str(path)
        )
    return data
