"""The benchmark shapes on LangGraph with a SQLite checkpointer (durability="sync").

`python langgraph_shapes.py SHAPE SIZE DB MARK` prints one JSON line: {"seconds", "rssMb"}.
Shapes: chain (SIZE no-op nodes), fanout (root, SIZE parallel nodes, join), diamond (the
uneven diamond with sleeping nodes), first (one node that records when it ran in MARK).
"""

from __future__ import annotations

import json
import resource
import sqlite3
import sys
import time
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    n: int


def noop(state: State) -> dict[str, Any]:
    return {}


def sleeper(seconds: float) -> Any:
    def node(state: State) -> dict[str, Any]:
        time.sleep(seconds)
        return {}

    return node


def build(shape: str, size: int, mark: str) -> StateGraph[State]:
    graph = StateGraph(State)
    if shape == "chain":
        for i in range(size):
            graph.add_node(f"s{i}", noop)
            graph.add_edge(START if i == 0 else f"s{i - 1}", f"s{i}")
        graph.add_edge(f"s{size - 1}", END)
    elif shape == "fanout":
        graph.add_node("root", noop)
        graph.add_edge(START, "root")
        workers = [f"w{i}" for i in range(size)]
        for worker in workers:
            graph.add_node(worker, noop)
            graph.add_edge("root", worker)
        graph.add_node("join", noop)
        graph.add_edge(workers, "join")
        graph.add_edge("join", END)
    elif shape == "diamond":
        graph.add_node("A", noop)
        graph.add_node("B", sleeper(1.0))
        graph.add_node("C", sleeper(0.1))
        graph.add_node("D", sleeper(1.0))
        graph.add_node("E", noop)
        graph.add_edge(START, "A")
        graph.add_edge("A", "B")
        graph.add_edge("A", "C")
        graph.add_edge("C", "D")
        graph.add_edge(["B", "D"], "E")
        graph.add_edge("E", END)
    elif shape == "first":

        def first(state: State) -> dict[str, Any]:
            with open(mark, "a", encoding="utf-8") as handle:
                handle.write(f"{time.time()}\n")
            return {}

        graph.add_node("first", first)
        graph.add_edge(START, "first")
        graph.add_edge("first", END)
    else:
        raise SystemExit(f"unknown shape {shape}")
    return graph


def main() -> None:
    shape, size, db, mark = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    app = build(shape, size, mark).compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "bench"}, "recursion_limit": size + 10}
    start = time.perf_counter()
    app.invoke({"n": 0}, config, durability="sync")
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rssMb": rss}))


if __name__ == "__main__":
    main()
