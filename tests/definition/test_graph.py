"""The dependency graph: order, levels, reach, critical path and cycle reports."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automatosx.definition.graph import build_graph, graph_from_dependencies
from automatosx.definition.validation import validate_document
from automatosx.errors import WorkflowValidationError

DIAMOND = [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])]


def test_diamond_order_levels_and_neighbours() -> None:
    graph = graph_from_dependencies(DIAMOND)
    assert graph.topological_order == ("a", "b", "c", "d")
    assert graph.levels == (("a",), ("b", "c"), ("d",))
    assert graph.dependencies["d"] == ("b", "c")
    assert graph.dependents["a"] == ("b", "c")
    assert graph.level_of("d") == 2
    assert graph.upstream("d") == {"a", "b", "c"}
    assert graph.downstream("b") == {"d"}
    assert graph.upstream("a") == frozenset()


def test_order_breaks_ties_by_file_order_even_when_file_is_not_sorted() -> None:
    graph = graph_from_dependencies([("z", ["y"]), ("x", []), ("y", []), ("w", ["x"])])
    assert graph.topological_order == ("x", "y", "z", "w")
    assert graph.levels == (("x", "y"), ("z", "w"))


def test_critical_path_uses_durations_and_defaults_to_one_per_step() -> None:
    graph = graph_from_dependencies(DIAMOND)
    assert graph.critical_path() == (["a", "b", "d"], 3.0)
    assert graph.critical_path({"a": 1, "b": 2, "c": 10, "d": 1}) == (["a", "c", "d"], 12.0)
    assert graph.critical_path({"c": 5}, default=0.5) == (["a", "c", "d"], 6.0)


def test_build_graph_from_a_definition() -> None:
    definition = validate_document(
        {
            "name": "wf",
            "steps": [
                {"key": "one", "agent": "backend", "prompt": "p"},
                {"key": "two", "agent": "backend", "prompt": "{{one}}", "dependencies": ["one"]},
            ],
        }
    )
    graph = build_graph(definition)
    assert graph.keys == ("one", "two")
    assert graph.levels == (("one",), ("two",))


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("a", ["a"])], "steps[0].dependencies[0]: step 'a' depends on itself"),
        ([("a", ["nope"])], "steps[0].dependencies[0]: unknown step 'nope'"),
        ([("a", []), ("a", [])], "steps[1].key: duplicate step key 'a' (first at steps[0])"),
        (
            [("a", []), ("b", ["a", "a"])],
            "steps[1].dependencies[1]: dependency 'a' is listed twice",
        ),
        (
            [("a", ["c"]), ("b", ["a"]), ("c", ["b"])],
            "steps[0].dependencies: dependency cycle: a -> c -> b -> a",
        ),
    ],
)
def test_structural_problems_are_reported_with_paths(
    steps: list[tuple[str, list[str]]], expected: str
) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        graph_from_dependencies(steps)
    assert str(caught.value.issues[0]).startswith(expected)


def test_each_separate_cycle_is_reported_once_and_dependents_of_cycles_are_not() -> None:
    steps = [
        ("a", ["b"]),
        ("b", ["a"]),
        ("tail", ["a"]),  # depends on a cycle, is not on one
        ("p", ["a", "q"]),  # first dependency leads into the other cycle
        ("q", ["p"]),
    ]
    with pytest.raises(WorkflowValidationError) as caught:
        graph_from_dependencies(steps)
    messages = [issue.message for issue in caught.value.issues]
    assert len(messages) == 2
    assert messages[0].startswith("dependency cycle: a -> b -> a")
    assert messages[1].startswith("dependency cycle: p -> q -> p")


def test_all_structural_problems_come_together() -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        graph_from_dependencies([("a", ["a"]), ("b", ["ghost"]), ("b", [])])
    assert len(caught.value.issues) == 3


# ---- properties --------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn, max_steps: int = 25) -> list[tuple[str, list[str]]]:
    """A random DAG (edges only to earlier-created steps) listed in a random file order."""
    count = draw(st.integers(1, max_steps))
    keys = [f"s{i}" for i in range(count)]
    deps = {
        key: draw(st.lists(st.sampled_from(keys[:i]), unique=True)) if i else []
        for i, key in enumerate(keys)
    }
    file_order = draw(st.permutations(keys))
    return [(key, deps[key]) for key in file_order]


def brute_upstream(deps: dict[str, list[str]], key: str) -> set[str]:
    found: set[str] = set()
    todo = list(deps[key])
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(deps[current])
    return found


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_random_dags_order_respects_dependencies_and_levels_are_minimal(
    steps: list[tuple[str, list[str]]], data: st.DataObject
) -> None:
    deps = dict(steps)
    graph = graph_from_dependencies(steps)
    position = {key: i for i, key in enumerate(graph.topological_order)}
    assert sorted(position) == sorted(deps)
    for key, key_deps in deps.items():
        for dep in key_deps:
            assert position[dep] < position[key]
        expected_level = 1 + max((graph.level_of(d) for d in key_deps), default=-1)
        assert graph.level_of(key) == expected_level
        assert key in graph.levels[expected_level]
        assert graph.upstream(key) == brute_upstream(deps, key)
        assert {k for k in deps if graph.is_upstream(k, key)} == graph.upstream(key)
        for dep in key_deps:
            assert key in graph.dependents[dep]
    assert sum(len(level) for level in graph.levels) == len(deps)
    assert all(graph.levels)  # no empty level: levels are minimal and contiguous

    durations = {key: data.draw(st.integers(0, 20)) for key in deps}
    path, total = graph.critical_path({k: float(v) for k, v in durations.items()})
    for earlier, later in itertools.pairwise(path):
        assert earlier in deps[later]
    assert total == sum(durations[k] for k in path)
    finish: dict[str, int] = {}
    for key in graph.topological_order:
        finish[key] = durations[key] + max((finish[d] for d in deps[key]), default=0)
    assert total == max(finish.values())


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20).flatmap(lambda n: st.permutations([f"s{i}" for i in range(n)])))
def test_a_file_already_in_dependency_order_keeps_its_order(keys: list[str]) -> None:
    chain = [(key, [keys[i - 1]] if i and i % 3 else []) for i, key in enumerate(keys)]
    assert graph_from_dependencies(chain).topological_order == tuple(keys)


@st.composite
def digraphs(draw: st.DrawFn) -> list[tuple[str, list[str]]]:
    """Any directed graph without self-loops, often with cycles."""
    count = draw(st.integers(2, 12))
    keys = [f"n{i}" for i in range(count)]
    return [
        (key, draw(st.lists(st.sampled_from([k for k in keys if k != key]), unique=True)))
        for key in keys
    ]


def assert_is_real_cycle(message: str, deps: dict[str, list[str]]) -> None:
    assert message.startswith("dependency cycle: ")
    path = message.removeprefix("dependency cycle: ").split(" (")[0].split(" -> ")
    assert len(path) >= 3 and path[0] == path[-1]
    assert len(set(path[:-1])) == len(path) - 1
    for step, needed in itertools.pairwise(path):
        assert needed in deps[step]


@settings(max_examples=300, deadline=None)
@given(digraphs())
def test_random_graphs_either_order_or_report_real_cycles(
    steps: list[tuple[str, list[str]]],
) -> None:
    deps = dict(steps)
    try:
        graph = graph_from_dependencies(steps)
    except WorkflowValidationError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert_is_real_cycle(issue.message, deps)
        return
    position = {key: i for i, key in enumerate(graph.topological_order)}
    assert all(position[d] < position[k] for k, ds in deps.items() for d in ds)


@settings(max_examples=200, deadline=None)
@given(dags(max_steps=15), st.data())
def test_closing_a_path_into_a_loop_is_always_reported(
    steps: list[tuple[str, list[str]]], data: st.DataObject
) -> None:
    deps = {key: list(d) for key, d in steps}
    with_upstream = [key for key in deps if brute_upstream(deps, key)]
    if not with_upstream:
        deps["s0"] = ["extra"]
        deps["extra"] = ["s0"]
    else:
        key = data.draw(st.sampled_from(sorted(with_upstream)))
        ancestor = data.draw(st.sampled_from(sorted(brute_upstream(deps, key))))
        deps[ancestor].append(key)  # ancestor now needs its own descendant
    with pytest.raises(WorkflowValidationError) as caught:
        graph_from_dependencies(list(deps.items()))
    for issue in caught.value.issues:
        assert_is_real_cycle(issue.message, deps)


def test_long_cycles_are_cut_in_the_middle_of_the_message() -> None:
    ring = [("x0", ["x99"])] + [(f"x{i}", [f"x{i - 1}"]) for i in range(1, 100)]
    with pytest.raises(WorkflowValidationError) as caught:
        graph_from_dependencies(ring)
    message = caught.value.issues[0].message
    assert message.startswith("dependency cycle: x0 -> x99 -> x98 -> ")
    assert "-> ... 71 more ... -> x0 (each step depends on the next)" in message


def test_very_long_chains_and_cycles_need_no_recursion() -> None:
    count = 20_000
    chain = [("s0", [])] + [(f"s{i}", [f"s{i - 1}"]) for i in range(1, count)]
    graph = graph_from_dependencies(chain)
    assert len(graph.levels) == count
    assert graph.is_upstream("s0", f"s{count - 1}")
    assert not graph.is_upstream(f"s{count - 1}", "s0")
    looped = [("s0", [f"s{count - 1}"]), *chain[1:]]
    with pytest.raises(WorkflowValidationError, match="dependency cycle: s0 -> s19999"):
        graph_from_dependencies(looped)
