"""The dependency graph of a workflow: order, levels, critical path, up- and downstream.

Everything here is computed once from an immutable definition and is itself immutable, so the
engine, the CLI and the web UI all see the same plan. Ties are always broken by the order of
steps in the file, so the same file gives the same order, levels and cycle report every time.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING

from automatosx.errors import ValidationIssue, WorkflowValidationError

if TYPE_CHECKING:
    from automatosx.definition.models import WorkflowDefinition


@dataclass(frozen=True)
class WorkflowGraph:
    """A validated DAG of step keys. Build it with `build_graph`, not by hand."""

    dependencies: Mapping[str, tuple[str, ...]]
    """step -> its direct dependencies, in file order."""
    dependents: Mapping[str, tuple[str, ...]]
    """step -> the steps that depend on it directly, in file order."""
    topological_order: tuple[str, ...]
    """Every step after all its dependencies; among ready steps the earliest in the file first."""
    levels: tuple[tuple[str, ...], ...]
    """levels[n]: steps whose longest chain of dependencies has n steps (file order inside)."""
    step_levels: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """step -> its level."""

    @property
    def keys(self) -> tuple[str, ...]:
        """Step keys in file order."""
        return tuple(self.dependencies)

    def level_of(self, key: str) -> int:
        return self.step_levels[key]

    def is_upstream(self, candidate: str, key: str) -> bool:
        """Whether `candidate` is a direct or transitive dependency of `key` (constant time
        after one pass over the graph, so checking every placeholder of a big file is cheap)."""
        position = self._positions[candidate]
        return bool(self._upstream_bits[key] >> position & 1)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.topological_order)}

    @cached_property
    def _upstream_bits(self) -> dict[str, int]:
        """step -> an integer whose bit n is set when the n-th step in topological order is
        upstream of it."""
        bits: dict[str, int] = {}
        for key in self.topological_order:
            mask = 0
            for dep in self.dependencies[key]:
                mask |= bits[dep] | (1 << self._positions[dep])
            bits[key] = mask
        return bits

    def upstream(self, key: str) -> frozenset[str]:
        """Every step `key` needs, directly or transitively (not `key` itself)."""
        return _reach(key, self.dependencies)

    def downstream(self, key: str) -> frozenset[str]:
        """Every step that needs `key`, directly or transitively (not `key` itself)."""
        return _reach(key, self.dependents)

    def critical_path(
        self, durations: Mapping[str, float] | None = None, *, default: float = 1.0
    ) -> tuple[list[str], float]:
        """The chain of dependent steps with the largest total duration, and that total.

        This is the shortest possible makespan with unlimited parallelism, which is what eager
        scheduling approaches. Steps missing from `durations` count as `default`.
        """
        weights = durations or {}
        finish: dict[str, float] = {}
        via: dict[str, str | None] = {}
        for key in self.topological_order:
            best: str | None = None
            for dep in self.dependencies[key]:
                if best is None or finish[dep] > finish[best]:
                    best = dep
            start = finish[best] if best is not None else 0.0
            finish[key] = start + float(weights.get(key, default))
            via[key] = best
        if not finish:
            return [], 0.0
        end = max(self.topological_order, key=lambda k: finish[k])
        path: list[str] = []
        cursor: str | None = end
        while cursor is not None:
            path.append(cursor)
            cursor = via[cursor]
        path.reverse()
        return path, finish[end]


def _reach(key: str, edges: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    if key not in edges:
        raise KeyError(key)
    seen: set[str] = set()
    stack = list(edges[key])
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(edges[current])
    return frozenset(seen)


_last_built: tuple[WorkflowDefinition, WorkflowGraph] | None = None


def build_graph(definition: WorkflowDefinition) -> WorkflowGraph:
    """The graph of a definition; raises WorkflowValidationError listing every structural
    problem (duplicate keys, unknown or repeated dependencies, self-dependencies, cycles).

    The last graph built is reused for the same (immutable) definition object: `validate`
    and `run` each ask for it twice, and for 10,000 steps a build costs ~50 ms."""
    global _last_built
    if _last_built is not None and _last_built[0] is definition:
        return _last_built[1]
    graph = graph_from_dependencies([(s.key, s.dependencies) for s in definition.steps])
    _last_built = (definition, graph)
    return graph


def graph_from_dependencies(steps: Sequence[tuple[str, Sequence[str]]]) -> WorkflowGraph:
    """The graph of `(key, dependencies)` pairs in file order (the form tests generate)."""
    issues = structure_issues(steps)
    if issues:
        raise WorkflowValidationError(issues)
    index = {key: i for i, (key, _) in enumerate(steps)}
    deps = {key: tuple(d) for key, d in steps}
    dependents: dict[str, list[str]] = {key: [] for key in index}
    for key, step_deps in deps.items():
        for dep in step_deps:
            dependents[dep].append(key)
    order = _topological_order(deps, dependents, index)
    if len(order) < len(index):
        done = set(order)
        raise WorkflowValidationError(
            [
                ValidationIssue(
                    f"steps[{index[cycle[0]]}].dependencies",
                    f"dependency cycle: {_cycle_text(cycle)} (each step depends on the next)",
                )
                for cycle in _cycles({k: v for k, v in deps.items() if k not in done}, index)
            ]
        )
    step_levels: dict[str, int] = {}
    for key in order:
        step_levels[key] = 1 + max((step_levels[d] for d in deps[key]), default=-1)
    grouped: list[list[str]] = [[] for _ in range(1 + max(step_levels.values(), default=-1))]
    for key in index:
        grouped[step_levels[key]].append(key)
    return WorkflowGraph(
        dependencies=MappingProxyType(deps),
        dependents=MappingProxyType({k: tuple(v) for k, v in dependents.items()}),
        topological_order=tuple(order),
        levels=tuple(tuple(level) for level in grouped),
        step_levels=MappingProxyType(step_levels),
    )


def _cycle_text(cycle: list[str], shown: int = 30) -> str:
    """`a -> b -> a`; a very long cycle is cut in the middle so the message stays readable."""
    steps = [*cycle, cycle[0]]
    if len(steps) > shown:
        hidden = len(steps) - shown
        steps = [*steps[: shown - 1], f"... {hidden} more ...", steps[-1]]
    return " -> ".join(steps)


def structure_issues(steps: Sequence[tuple[str, Sequence[str]]]) -> list[ValidationIssue]:
    """Duplicate step keys, unknown, repeated and self dependencies (cycles are found later,
    once these are absent)."""
    issues: list[ValidationIssue] = []
    first_at: dict[str, int] = {}
    for i, (key, _) in enumerate(steps):
        if key in first_at:
            issues.append(
                ValidationIssue(
                    f"steps[{i}].key",
                    f"duplicate step key '{key}' (first at steps[{first_at[key]}])",
                )
            )
        else:
            first_at[key] = i
    for i, (key, step_deps) in enumerate(steps):
        seen: set[str] = set()
        for j, dep in enumerate(step_deps):
            where = f"steps[{i}].dependencies[{j}]"
            if dep == key:
                issues.append(ValidationIssue(where, f"step '{key}' depends on itself"))
            elif dep not in first_at:
                issues.append(ValidationIssue(where, f"unknown step '{dep}'"))
            elif dep in seen:
                issues.append(ValidationIssue(where, f"dependency '{dep}' is listed twice"))
            seen.add(dep)
    return issues


def _topological_order(
    deps: Mapping[str, tuple[str, ...]],
    dependents: Mapping[str, list[str]],
    index: Mapping[str, int],
) -> list[str]:
    """Kahn's algorithm, always taking the ready step that comes first in the file; steps on
    a cycle are left out."""
    waiting = {key: len(d) for key, d in deps.items()}
    ready = [index[k] for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    keys = list(index)
    order: list[str] = []
    while ready:
        key = keys[heapq.heappop(ready)]
        order.append(key)
        for child in dependents[key]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, index[child])
    return order


def _cycles(remaining: Mapping[str, tuple[str, ...]], index: Mapping[str, int]) -> list[list[str]]:
    """One cycle per tangle (strongly connected group) among the steps Kahn could not order.

    Inside a tangle every step has a dependency in the same tangle, so walking from any of
    them must come back to a step already seen: that loop is a real cycle. Steps that merely
    depend on a tangle form no tangle of their own and are not reported.
    """
    by_file_order = sorted(remaining, key=index.__getitem__)
    tangle_of: dict[str, frozenset[str]] = {}
    for component in _strongly_connected(remaining, by_file_order):
        if len(component) > 1:
            tangle_of.update(dict.fromkeys(component, component))
    cycles: list[list[str]] = []
    reported: set[frozenset[str]] = set()
    for start in by_file_order:
        tangle = tangle_of.get(start)
        if tangle is None or tangle in reported:
            continue
        reported.add(tangle)
        walk: list[str] = []
        position: dict[str, int] = {}
        cursor = start
        while cursor not in position:
            position[cursor] = len(walk)
            walk.append(cursor)
            cursor = next(d for d in remaining[cursor] if d in tangle)
        cycle = walk[position[cursor] :]
        first = min(range(len(cycle)), key=lambda i: index[cycle[i]])
        cycles.append(cycle[first:] + cycle[:first])
    return cycles


def _strongly_connected(
    edges: Mapping[str, Sequence[str]], roots: Sequence[str]
) -> list[frozenset[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit), in linear
    time; edges to nodes outside `edges` are ignored."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[frozenset[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)

    for root in roots:
        if root in order:
            continue
        visit(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, children = work[-1]
            descended = False
            for child in children:
                if child not in edges:
                    continue
                if child not in order:
                    visit(child)
                    work.append((child, iter(edges[child])))
                    descended = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], order[child])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == order[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(frozenset(component))
    return components
