"""Workflow files for each benchmark shape, generated as plain data."""

from __future__ import annotations

from typing import Any

AGENTS = {
    "noop": {"provider": "python", "callable": "bench_agents:noop"},
    "anoop": {"provider": "python", "callable": "bench_agents:anoop"},
    "sleeper": {"provider": "python", "callable": "bench_agents:sleep"},
    "marker": {"provider": "python", "callable": "bench_agents:mark_start"},
    "blocker": {"provider": "python", "callable": "bench_agents:block_first_attempt"},
    "numbers": {"provider": "python", "callable": "bench_agents:numbers"},
}


def _workflow(name: str, steps: list[dict[str, Any]], parallelism: int = 4) -> dict[str, Any]:
    return {
        "name": name,
        "config": {"parallelism": parallelism},
        "agents": AGENTS,
        "steps": steps,
    }


def chain(n: int, agent: str = "noop") -> dict[str, Any]:
    steps = [
        {"key": f"s{i}", "agent": agent, "prompt": "x", "dependencies": [f"s{i - 1}"] if i else []}
        for i in range(n)
    ]
    return _workflow(f"chain-{n}", steps)


def fan_out(width: int, parallelism: int = 64) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"key": "root", "agent": "noop", "prompt": "x"}]
    steps += [
        {"key": f"w{i}", "agent": "noop", "prompt": "x", "dependencies": ["root"]}
        for i in range(width)
    ]
    steps.append(
        {
            "key": "join",
            "agent": "noop",
            "prompt": "x",
            "dependencies": [f"w{i}" for i in range(width)],
        }
    )
    return _workflow(f"fan-out-{width}", steps, parallelism=parallelism)


def for_each(width: int, parallelism: int = 64) -> dict[str, Any]:
    """The fan-out above, built at run time: a root's list of `width` numbers, one no-op
    item per number, then a join."""
    steps: list[dict[str, Any]] = [{"key": "root", "agent": "numbers", "prompt": str(width)}]
    steps.append(
        {
            "key": "each",
            "agent": "noop",
            "prompt": "{{n}}",
            "dependencies": ["root"],
            "forEach": {"items": "steps.root.output", "as": "n"},
        }
    )
    steps.append({"key": "join", "agent": "noop", "prompt": "x", "dependencies": ["each"]})
    return _workflow(f"for-each-{width}", steps, parallelism=parallelism)


def conditional_chain(n: int) -> dict[str, Any]:
    """`chain(n)` of async no-ops where every step but the first has an `if` on the step
    before it: the difference with the plain chain is what evaluating `if` costs."""
    data = chain(n, agent="anoop")
    data["name"] = f"conditional-chain-{n}"
    for i, step in enumerate(data["steps"][1:], start=1):
        step["if"] = f'steps.s{i - 1}.state == "completed" && steps.s{i - 1}.output == "ok"'
    return data


def diamond() -> dict[str, Any]:
    """A -> {B 1.0 s, C 0.1 s}; D 1.0 s after C; E after B and D. Critical path 1.1 s."""

    def sleeper(key: str, seconds: float, deps: list[str]) -> dict[str, Any]:
        return {"key": key, "agent": "sleeper", "prompt": str(seconds), "dependencies": deps}

    steps = [
        {"key": "A", "agent": "noop", "prompt": "x"},
        sleeper("B", 1.0, ["A"]),
        sleeper("C", 0.1, ["A"]),
        sleeper("D", 1.0, ["C"]),
        {"key": "E", "agent": "noop", "prompt": "x", "dependencies": ["B", "D"]},
    ]
    return _workflow("uneven-diamond", steps)


DIAMOND_CRITICAL_PATH_S = 1.1


def layered(n: int, width: int = 10) -> dict[str, Any]:
    """n steps in layers of `width`, each depending on one step of the layer before."""
    steps = []
    for i in range(n):
        deps = [f"s{i - width}"] if i >= width else []
        steps.append({"key": f"s{i}", "agent": "noop", "prompt": "x", "dependencies": deps})
    return _workflow(f"layered-{n}", steps, parallelism=16)


def first_step() -> dict[str, Any]:
    return _workflow("first-step", [{"key": "first", "agent": "marker", "prompt": "x"}])


def http_calls(n: int, base_url: str) -> dict[str, Any]:
    """n independent `openai`-provider steps, all allowed to run at once."""
    steps = [{"key": f"call{i}", "agent": "llm", "prompt": f"question {i}"} for i in range(n)]
    data = _workflow(f"http-{n}", steps, parallelism=n)
    data["agents"] = {"llm": {"provider": "openai", "baseUrl": base_url, "model": "bench-model"}}
    return data


def resumable_chain(done: int) -> dict[str, Any]:
    """`done` no-op steps, then `blocker` (which hangs on its first attempt, so the runner
    can be killed inside it), then one more step."""
    data = chain(done)
    data["name"] = f"resume-after-kill-{done}"
    data["steps"].append(
        {"key": "blocker", "agent": "blocker", "prompt": "x", "dependencies": [f"s{done - 1}"]}
    )
    data["steps"].append(
        {"key": "after", "agent": "noop", "prompt": "x", "dependencies": ["blocker"]}
    )
    return data


def cached_chain(n: int, *, cache: bool) -> dict[str, Any]:
    """`chain(n)` of async no-ops, each asking something else (so no step answers another
    from the result cache), with `config.cache` on or off: run the cached one twice and
    the second run's steps are all cache hits, against no-op steps of the same chain."""
    data = chain(n, agent="anoop")
    data["name"] = f"cached-chain-{n}" if cache else f"distinct-chain-{n}"
    data["config"]["cache"] = cache
    for i, step in enumerate(data["steps"]):
        step["prompt"] = f"x{i}"
    return data
