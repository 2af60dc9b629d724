"""ReadySet: the eager-scheduling view the engine uses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automatosx.definition.graph import ReadySet, graph_from_dependencies
from tests.definition.test_graph import dags

DIAMOND = [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]), ("e", [])]


def test_steps_become_ready_as_soon_as_their_own_dependencies_are_done() -> None:
    ready = ReadySet(graph_from_dependencies(DIAMOND))
    assert ready.take_ready() == ["a", "e"]
    assert ready.take_ready() == []  # never handed out twice
    ready.mark_done("a")
    assert ready.take_ready() == ["b", "c"]
    ready.mark_done("c")
    assert ready.take_ready() == []  # d still waits for b, whatever "level" c was on
    ready.mark_done("b")
    assert ready.take_ready() == ["d"]
    assert ready.running == {"d", "e"}
    ready.mark_done("d")
    assert not ready.is_finished()
    ready.mark_done("e")
    assert ready.is_finished()


def test_resume_skips_steps_already_done() -> None:
    ready = ReadySet(graph_from_dependencies(DIAMOND), done=["a", "b", "e"])
    assert ready.take_ready() == ["c"]
    ready.mark_done("c")
    assert ready.take_ready() == ["d"]
    ready.mark_done("d")
    assert ready.is_finished()


def test_a_failed_step_drops_its_downstream_and_the_rest_finishes() -> None:
    ready = ReadySet(graph_from_dependencies(DIAMOND))
    ready.take_ready()
    ready.mark_done("a")
    ready.take_ready()
    assert ready.mark_failed("b") == ["d"]
    ready.mark_done("c")
    assert ready.take_ready() == []
    ready.mark_done("e")
    assert ready.is_finished()
    assert ready.done == {"a", "c", "e"}


def test_marking_a_step_that_is_not_running_is_an_error() -> None:
    ready = ReadySet(graph_from_dependencies(DIAMOND))
    with pytest.raises(ValueError, match="not running"):
        ready.mark_done("b")
    ready.take_ready()
    ready.mark_done("a")
    with pytest.raises(ValueError, match="not running"):
        ready.mark_done("a")
    with pytest.raises(KeyError):
        ReadySet(graph_from_dependencies(DIAMOND), done=["ghost"])


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_random_completion_orders_run_every_step_once_after_its_dependencies(
    steps: list[tuple[str, list[str]]], data: st.DataObject
) -> None:
    graph = graph_from_dependencies(steps)
    already = graph.topological_order[: data.draw(st.integers(0, len(steps)))]
    ready = ReadySet(graph, done=already)
    finished = set(already)
    handed_out: list[str] = []
    running: list[str] = []
    while not ready.is_finished():
        for key in ready.take_ready():
            assert all(dep in finished for dep in graph.dependencies[key])
            handed_out.append(key)
            running.append(key)
        assert running, "not finished but nothing runs and nothing is ready"
        key = running.pop(data.draw(st.integers(0, len(running) - 1)))
        ready.mark_done(key)
        finished.add(key)
    assert len(handed_out) == len(set(handed_out))
    assert set(handed_out) | set(already) == set(graph.keys)
    assert not set(handed_out) & set(already)
