"""The agent registry's layers and the router's checks before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from automatosx.agents.providers.command import CommandProvider
from automatosx.agents.registry import AgentRegistry
from automatosx.agents.router import Router
from automatosx.definition.models import AgentSpec
from automatosx.errors import NotFoundError, WorkflowValidationError

BUILTINS = {"backend", "frontend", "security", "quality", "writer", "devops", "data", "product"}


def agent_file(workdir: Path, name: str, text: str) -> Path:
    folder = workdir / ".automatosx" / "agents"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_builtins_then_files_then_inline(tmp_path: Path) -> None:
    agent_file(tmp_path, "backend.yaml", "provider: command\ncommand: [echo, hi]\nmodel: m1\n")
    agent_file(tmp_path, "other.yml", "name: reviewer\nprovider: python\ncallable: a.b:c\n")
    inline = {"reviewer": AgentSpec(provider="command", command=["true"])}
    registry = AgentRegistry.load(workdir=tmp_path, inline=inline)
    assert set(registry.names()) >= BUILTINS
    assert registry.get("security").role == "Security engineer"
    assert registry.get("security").system_prompt
    assert registry.get("security").provider_order() == []
    backend = registry.entry("backend")
    assert backend.spec.model == "m1" and backend.source.endswith("backend.yaml")
    assert registry.entry("reviewer").source == "workflow"
    assert registry.get("reviewer").command == ["true"]
    with pytest.raises(NotFoundError, match="known agents"):
        registry.get("nobody")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("provider: command\ncomand: [x]\n", "comand: unknown field (did you mean 'command'?)"),
        ("provider: !!python/object:os.system x\n", "tag"),
        ("- just\n- a list\n", "mapping"),
        ("role: [unclosed\n", "line 2, column 1"),
        ("provider: command\n\x00", "NUL"),
    ],
)
def test_bad_agent_files_break_only_their_agent(tmp_path: Path, text: str, expected: str) -> None:
    path = agent_file(tmp_path, "bad.yaml", text)
    agent_file(tmp_path, "fine.yaml", "provider: command\ncommand: [cat]\n")
    registry = AgentRegistry.load(workdir=tmp_path)
    assert "fine" in registry and "bad" not in registry and set(registry.names()) >= BUILTINS
    assert registry.broken["bad"].source == str(path)
    with pytest.raises(WorkflowValidationError) as caught:
        registry.get("bad")
    assert str(path) in str(caught.value) and expected in str(caught.value)
    (issue,) = Router(registry).check_agents([("steps[0].agent", "bad")])
    assert str(path) in issue.message and expected in issue.message


def test_a_broken_file_replaces_the_builtin_it_names_and_inline_replaces_both(
    tmp_path: Path,
) -> None:
    agent_file(tmp_path, "backend.yaml", "provider: [unclosed\n")
    with pytest.raises(WorkflowValidationError, match=r"backend\.yaml"):
        AgentRegistry.load(workdir=tmp_path).get("backend")  # not the built-in, silently
    inline = {"backend": AgentSpec(provider="command", command=["true"])}
    registry = AgentRegistry.load(workdir=tmp_path, inline=inline)
    assert registry.get("backend").command == ["true"] and not registry.broken


def test_router_names_every_unusable_agent(tmp_path: Path) -> None:
    inline = {
        "ghost": AgentSpec(provider="command", command=["no-such-program-ax"]),
        "fine": AgentSpec(provider="command", command=["true"]),
        "unbuilt": AgentSpec(provider="python", callable="a.b:c"),
    }
    only_command = {"command": CommandProvider()}
    router = Router(AgentRegistry.load(workdir=tmp_path, inline=inline), providers=only_command)
    uses = [
        ("steps[0].agent", "ghost"),
        ("steps[1].agent", "fine"),
        ("steps[2].agent", "writer"),
        ("steps[3].agent", "nope"),
        ("steps[4].agent", "unbuilt"),
    ]
    issues = {issue.path: issue.message for issue in router.check_agents(uses)}
    assert "steps[1].agent" not in issues
    assert "no-such-program-ax" in issues["steps[0].agent"]
    assert "has no provider" in issues["steps[2].agent"]
    assert "unknown agent 'nope'" in issues["steps[3].agent"]
    assert "'python' is not available" in issues["steps[4].agent"]
