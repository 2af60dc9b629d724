"""Data flows one way: no module imports from a room above its own (ARCHITECTURE.md).

Every import of every module counts, including those inside functions and under
TYPE_CHECKING: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "automatosx"
BOTTOM = {"errors", "secrets", "priority", "settings"}
# room -> the rooms it may import from (besides itself and the bottom modules)
ALLOWED: dict[str, set[str]] = {
    "bottom": set(),
    "definition": set(),
    "store": {"definition"},
    "agents": {"definition"},
    "views": {"store", "definition"},
    "runtime": {"definition", "store", "agents"},
    "api": {"definition", "store", "agents", "views", "runtime", "telemetry"},
    "cli": {
        "definition",
        "store",
        "agents",
        "views",
        "runtime",
        "api",
        "package",
        "web",
        "telemetry",
        "worker",
    },
    "web": {"definition", "store", "agents", "views", "runtime", "api"},
    "telemetry": {"definition", "store", "views"},  # readers of the store, like views
    "worker": {"definition", "store", "agents", "runtime", "api"},  # runs what the API runs
    "package": {"api"},  # automatosx/__init__.py: the API's names, loaded on first use
}


def room_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    head = parts[1]
    return "bottom" if head in BOTTOM else head


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "automatosx":  # `from automatosx import priority`
                found += [
                    "automatosx" if alias.name.startswith("__") else f"automatosx.{alias.name}"
                    for alias in node.names
                ]
            elif node.module.startswith("automatosx."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("automatosx.")]
    return found


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_no_module_imports_from_a_room_above_its_own() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50
    rooms = {room_of(module_name(path)) for path in modules}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)  # a new room needs a rule here
    wrong = []
    for path in modules:
        source = module_name(path)
        room = room_of(source)
        for target in imports_of(path):
            target_room = room_of(target)
            if target_room in (room, "bottom") or target_room in ALLOWED[room]:
                continue
            wrong.append(f"{source} ({room}) imports {target} ({target_room})")
    assert not wrong, "\n".join(wrong)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from automatosx.cli.output import console\n")
    assert imports_of(bad) == ["automatosx.cli.output"]
    assert "cli" not in ALLOWED["store"]
    assert "cli" not in ALLOWED["api"]  # the CLI uses the API, never the other way round
