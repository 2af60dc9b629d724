"""The store's side of analytics (`ax workflow stats`, SPEC section 11): named SQL queries.

Every figure is computed by the database over the executions that started within the
window (`started_at >= since`, found through `workflow_executions_by_started`); Python only
receives a few rows per workflow and step. The queries are the same on SQLite and
PostgreSQL except for the fragments in `_DIALECT`: reading the steps and edges of an
execution that ran another definition than its workflow's stored one (JSON functions
differ; the others' graph is `workflow_steps` and `workflow_dependencies`), and masking an
error message (`regexp_replace` on PostgreSQL; on SQLite the same three expressions in
Python, registered on the connection as `ax_mask_error`, see `register_sqlite_functions`).

The shapes they share:

- **a run** is a step instance that reached an outcome (`completed`, or `failed`, which a
  step can be before any attempt, e.g. its `if` failed to evaluate): forEach items count,
  under their parent's step key, and the forEach step itself (its fan-out) does not.
  Cancelled and skipped instances are not runs. `retried`: a run of more than one attempt.
- **a run's duration** is the sum of its attempts' durations (backoff between them not
  included); a forEach step's is its span, first item started to last item ended.
- **percentiles** are nearest-rank: the value at rank ceil(p * n / 100) of n sorted values,
  picked with ROW_NUMBER and COUNT windows, so both stores give the same integer.
- **the critical path** of a completed execution is the longest chain of its dependency
  edges, weighing each step (the file's steps, a forEach step as one) by its duration. It
  is computed once, in the write that completes the execution (`longest_chain_ms`, one
  visit per step and edge), and stored; for an execution completed before it was stored, a
  recursive CTE walks every chain from the steps that depend on nothing, a row per path
  prefix (cheap for chains, trees, fan-outs and diamonds; a DAG of many interleaved layers
  multiplies its paths). An execution's efficiency (critical path / duration) is at most
  1: each step's duration is rounded to the millisecond, so a path of short steps can add
  up to a few milliseconds more than the execution took.
- **usage** (tokens, cost) sums every attempt of every instance, once each: the history
  rows before an instance's latest attempt, and the instance row itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from graphlib import TopologicalSorter
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import sqlite3

TERMINAL = "('completed', 'failed', 'cancelled')"

# Error messages are grouped with these masked, in this order (both stores apply exactly
# these expressions; their syntax means the same to Python's `re` and PostgreSQL's regex).
UUID_PATTERN = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# A run of 8+ hex digits with a digit among them, not inside a longer word.
HEX_ID_PATTERN = "(?<![0-9A-Za-z_])(?=[0-9A-Fa-f]*[0-9])[0-9A-Fa-f]{8,}(?![0-9A-Za-z_])"
NUMBER_PATTERN = "[0-9]+([.][0-9]+)?"
MASKS: tuple[tuple[str, str], ...] = (
    (UUID_PATTERN, "<id>"),
    (HEX_ID_PATTERN, "<id>"),
    (NUMBER_PATTERN, "<n>"),
)
_COMPILED_MASKS = tuple((re.compile(pattern), replacement) for pattern, replacement in MASKS)


@lru_cache(maxsize=4096)  # the same error recurs: each retry, each execution
def mask_error(message: str | None) -> str | None:
    """`message` with its IDs and numbers masked: errors that differ only by them group."""
    if message is None:
        return None
    for pattern, replacement in _COMPILED_MASKS:
        message = pattern.sub(replacement, message)
    return message


def register_sqlite_functions(conn: sqlite3.Connection) -> None:
    """`ax_mask_error(text)` on a SQLite connection (PostgreSQL has `regexp_replace`)."""
    conn.create_function("ax_mask_error", 1, mask_error, deterministic=True)


# ---- what the queries return ----


@dataclass(frozen=True)
class WorkflowStats:
    """One workflow (by name, all versions) over the window."""

    name: str
    executions: int  # started within the window
    completed: int
    failed: int
    finished: int  # completed, failed or cancelled
    p50_duration_ms: int | None  # of the finished ones
    p95_duration_ms: int | None
    parallel_efficiency: float | None  # mean critical path / duration of the completed ones
    checkpoint_overhead_ms: float | None  # mean per finished execution of checkpoint writes
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None


@dataclass(frozen=True)
class StepStats:
    """One step (by workflow name and step key) over the window; see the module for runs."""

    workflow_name: str
    step_key: str
    position: int  # its index in the file (of the newest definition that has it)
    runs: int
    failed: int
    retried: int
    retried_completed: int
    p50_duration_ms: int | None
    p95_duration_ms: int | None
    cost_usd: float | None  # every attempt of its instances, cancelled ones included
    tokens_in: int | None  # likewise
    tokens_out: int | None


@dataclass(frozen=True)
class ErrorStats:
    """Failed attempts of one step with one kind and masked message."""

    kind: str | None
    message: str | None  # masked (`mask_error`)
    workflow_name: str
    step_key: str
    count: int
    last_seen_at: float | None  # when the latest of them ended


@dataclass(frozen=True)
class StatsReport:
    workflows: list[WorkflowStats]
    steps: list[StepStats]
    errors: list[ErrorStats]


# ---- the queries ----

_RECENT = (
    "recent AS (SELECT e.id, e.workflow_id, w.name, e.state, e.duration_ms "
    "FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id "
    "WHERE e.started_at >= ?{name})"
)


def _earlier(column: str) -> str:
    """The sum of `column` over instance `i`'s attempts before its latest (the latest is
    the instance row; a history row with its number is the same attempt, written again
    when it was cancelled). Only a retried instance has any: the lookup is skipped for
    the others."""
    return (
        f"CASE WHEN i.attempt > 1 THEN (SELECT SUM(a.{column}) FROM workflow_step_executions a"
        " WHERE a.execution_id = i.execution_id AND a.step_key = i.key"
        " AND a.attempt < i.attempt) END"
    )


# Nearest rank ceil(p * n / 100), in integer arithmetic both stores share.
_PERCENTILES = (
    "MAX(CASE WHEN pos = (50 * n + 99) / 100 THEN ms END) AS p50,"
    " MAX(CASE WHEN pos = (95 * n + 99) / 100 THEN ms END) AS p95"
)

# Per workflow: executions by state, percentiles of the finished ones' durations, and the
# mean time the finished ones' checkpoints took to write (an execution with a checkpoint
# from before they were timed is left out of that mean).
EXECUTIONS = (
    "WITH {recent}, "
    "timed AS (SELECT r.name, r.state, r.duration_ms,"
    f" CASE WHEN r.state IN {TERMINAL} THEN (SELECT CASE WHEN COUNT(*) = COUNT(c.write_ms)"
    "  THEN COALESCE(SUM(c.write_ms), 0) END"
    "  FROM workflow_checkpoints c WHERE c.execution_id = r.id) END AS checkpoint_ms"
    " FROM recent r), "
    "ranked AS (SELECT name, duration_ms AS ms,"
    " ROW_NUMBER() OVER (PARTITION BY name ORDER BY duration_ms) AS pos,"
    " COUNT(*) OVER (PARTITION BY name) AS n"
    f" FROM recent WHERE state IN {TERMINAL} AND duration_ms IS NOT NULL), "
    f"percentiles AS (SELECT name, {_PERCENTILES} FROM ranked GROUP BY name), "
    "counts AS (SELECT name, COUNT(*) AS executions,"
    " SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END) AS completed,"
    " SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed,"
    f" SUM(CASE WHEN state IN {TERMINAL} THEN 1 ELSE 0 END) AS finished,"
    " AVG(checkpoint_ms) AS checkpoint_ms FROM timed GROUP BY name) "
    "SELECT c.name, c.executions, c.completed, c.failed, c.finished, p.p50, p.p95,"
    " c.checkpoint_ms FROM counts c LEFT JOIN percentiles p ON p.name = c.name"
)

# Per step: its runs (see the module), their percentiles, and the usage of every attempt of
# its instances, from one pass over the instances. The totals count the timed runs (`n`),
# so ranking them takes one sort (ROW_NUMBER) instead of a second window for their count.
STEPS = (
    "WITH {recent}, "
    "instances AS (SELECT e.name, i.step_key, i.position, i.state, i.attempt,"
    " CASE WHEN i.items IS NULL AND i.state IN ('completed', 'failed')"
    "  AND (i.attempt > 0 OR i.state = 'failed') THEN 1 ELSE 0 END AS run,"
    f" COALESCE(i.duration_ms, 0) + COALESCE({_earlier('duration_ms')}, 0) AS ms,"
    f" i.cost_usd, {_earlier('cost_usd')} AS earlier_cost_usd,"
    f" i.tokens_in, {_earlier('tokens_in')} AS earlier_tokens_in,"
    f" i.tokens_out, {_earlier('tokens_out')} AS earlier_tokens_out"
    " FROM recent e JOIN workflow_step_instances i ON i.execution_id = e.id), "
    "totals AS (SELECT name, step_key, MIN(position) AS position, SUM(run) AS runs,"
    " SUM(CASE WHEN run = 1 AND attempt > 0 THEN 1 ELSE 0 END) AS n,"  # the timed runs
    " SUM(CASE WHEN run = 1 AND state = 'failed' THEN 1 ELSE 0 END) AS failed,"
    " SUM(CASE WHEN run = 1 AND attempt > 1 THEN 1 ELSE 0 END) AS retried,"
    " SUM(CASE WHEN run = 1 AND attempt > 1 AND state = 'completed' THEN 1 ELSE 0 END)"
    "  AS retried_completed,"
    " SUM(cost_usd) AS cost_usd, SUM(earlier_cost_usd) AS earlier_cost_usd,"
    " SUM(tokens_in) AS tokens_in, SUM(earlier_tokens_in) AS earlier_tokens_in,"
    " SUM(tokens_out) AS tokens_out, SUM(earlier_tokens_out) AS earlier_tokens_out"
    " FROM instances GROUP BY name, step_key), "
    "ranked AS (SELECT name, step_key, ms,"
    " ROW_NUMBER() OVER (PARTITION BY name, step_key ORDER BY ms) AS pos"
    " FROM instances WHERE run = 1 AND attempt > 0), "
    "percentiles AS (SELECT r.name, r.step_key,"
    " MAX(CASE WHEN r.pos = (50 * t.n + 99) / 100 THEN r.ms END) AS p50,"
    " MAX(CASE WHEN r.pos = (95 * t.n + 99) / 100 THEN r.ms END) AS p95"
    " FROM ranked r JOIN totals t ON t.name = r.name AND t.step_key = r.step_key"
    " WHERE r.pos IN ((50 * t.n + 99) / 100, (95 * t.n + 99) / 100)"
    " GROUP BY r.name, r.step_key) "
    "SELECT t.name, t.step_key, t.position, t.runs, t.failed, t.retried, t.retried_completed,"
    " p.p50, p.p95, t.cost_usd, t.earlier_cost_usd, t.tokens_in, t.earlier_tokens_in,"
    " t.tokens_out, t.earlier_tokens_out "
    "FROM totals t LEFT JOIN percentiles p ON p.name = t.name AND p.step_key = t.step_key"
)

# The critical path of each completed execution: the one stored as it completed (see
# STEP_RUN_MS below), else (executions completed before it was stored) every dependency
# chain, walked from the steps that depend on nothing as (step, running total) rows; the
# longest total reaching a step nothing depends on is the path. An execution's graph (its
# steps and edges) is its workflow's `workflow_steps` and `workflow_dependencies` when it ran
# the workflow's stored definition (the common case: read once per workflow), else read from
# its own definition. Each step's duration is looked up by primary key as the walk reaches it.
_RUN_MS = f"COALESCE(i.duration_ms, 0) + COALESCE({_earlier('duration_ms')}, 0)"
PARALLEL_EFFICIENCY = (
    "WITH RECURSIVE {recent}, "
    "done AS (SELECT r.id, r.name, r.duration_ms, x.critical_path_ms AS stored,"
    " CASE WHEN CAST(x.definition AS TEXT) = CAST(w.definition AS TEXT)"
    "  THEN r.workflow_id ELSE r.id END AS graph"
    " FROM recent r JOIN workflow_executions x ON x.id = r.id"
    " JOIN workflows w ON w.id = r.workflow_id"
    " WHERE r.state = 'completed' AND r.duration_ms > 0), "
    "walked AS (SELECT id, graph FROM done WHERE stored IS NULL), "
    "drifted AS (SELECT d.id, x.definition FROM walked d"
    " JOIN workflow_executions x ON x.id = d.id WHERE d.graph = d.id), "
    "graphs AS (SELECT DISTINCT graph FROM walked), "
    "edges AS (SELECT d.workflow_id AS graph, d.step_key, d.depends_on"
    " FROM workflow_dependencies d WHERE d.workflow_id IN (SELECT graph FROM graphs)"
    " UNION ALL {json_edges}), "
    "steps AS (SELECT s.workflow_id AS graph, s.key FROM workflow_steps s"
    " WHERE s.workflow_id IN (SELECT graph FROM graphs) UNION ALL {json_steps}), "
    "roots AS (SELECT graph, key FROM steps s WHERE NOT EXISTS ("
    " SELECT 1 FROM edges x WHERE x.graph = s.graph AND x.step_key = s.key)), "
    "chains (execution_id, graph, key, total) AS ("
    f" SELECT e.id, e.graph, i.key, {_RUN_MS} FROM walked e"
    " JOIN roots r ON r.graph = e.graph"
    " JOIN workflow_step_instances i ON i.execution_id = e.id AND i.key = r.key"
    " UNION ALL"
    " SELECT c.execution_id, c.graph, x.step_key, c.total + ("
    f"  SELECT {_RUN_MS} FROM workflow_step_instances i"
    "  WHERE i.execution_id = c.execution_id AND i.key = x.step_key)"
    " FROM chains c JOIN edges x ON x.graph = c.graph AND x.depends_on = c.key), "
    "critical AS (SELECT c.execution_id, MAX(c.total) AS ms FROM chains c WHERE NOT EXISTS ("
    " SELECT 1 FROM edges x WHERE x.graph = c.graph AND x.depends_on = c.key)"
    " GROUP BY c.execution_id"
    " UNION ALL SELECT id, stored FROM done WHERE stored IS NOT NULL) "
    "SELECT d.name, AVG(CASE WHEN c.ms >= d.duration_ms THEN 1.0"
    " ELSE CAST(c.ms AS DOUBLE PRECISION) / d.duration_ms END) "
    "FROM critical c JOIN done d ON d.id = c.execution_id GROUP BY d.name"
)

# The critical path of one execution, as it completes: each step's run time (the forEach
# step's own row, its span), weighed in Python by `longest_chain_ms`; the result is stored
# (`RecordCriticalPath`) and PARALLEL_EFFICIENCY reads it. Walking every chain in SQL, as it
# does for executions completed before the column existed, multiplies with the paths of a
# DAG; this visits each step and edge once.
STEP_RUN_MS = (
    f"SELECT i.key, {_RUN_MS} FROM workflow_step_instances i"
    " WHERE i.execution_id = ? AND i.parent_key IS NULL"
)


def longest_chain_ms(dependencies: Mapping[str, Sequence[str]], run_ms: Mapping[str, int]) -> int:
    """The heaviest chain of `dependencies` (step -> what it depends on, acyclic), each step
    weighing its `run_ms` (0 when it has none): the critical path PARALLEL_EFFICIENCY's
    recursive walk finds, in one visit per step and edge."""
    chain: dict[str, int] = {}
    for key in TopologicalSorter(dependencies).static_order():
        before = max((chain[d] for d in dependencies.get(key, ())), default=0)
        chain[key] = before + run_ms.get(key, 0)
    return max(chain.values(), default=0)


# Failed attempts: the history's, and each instance's latest when it failed (for good, or
# waiting for its retry); a forEach step's own failure repeats its item's and is left out.
# The instances are found through `workflow_step_instances_with_errors` (migration 011),
# which holds only those failed or with an error: its condition is repeated word for word
# as the first term, the form in which SQLite's planner recognises a partial index.
ERROR_GROUPS = (
    "WITH {recent}, "
    "failures AS ("
    " SELECT e.name, i.step_key, i.error_kind AS kind, i.error_message AS message,"
    "  i.completed_at AS at"
    " FROM recent e JOIN workflow_step_instances i ON i.execution_id = e.id"
    " WHERE (i.state = 'failed' OR i.error_kind IS NOT NULL)"
    " AND i.items IS NULL AND (i.state = 'failed' OR (i.state = 'pending'"
    "  AND i.attempt > 0 AND i.error_kind IS NOT NULL AND i.error_kind <> 'cancelled'))"
    " UNION ALL"
    " SELECT e.name, i.step_key, a.error_kind, a.error_message, a.completed_at"
    " FROM recent e JOIN workflow_step_executions a ON a.execution_id = e.id"
    " JOIN workflow_step_instances i ON i.execution_id = a.execution_id AND i.key = a.step_key"
    " WHERE a.state = 'failed'), "
    "masked AS (SELECT kind, {mask} AS message, name, step_key, at FROM failures) "
    "SELECT kind, message, name, step_key, COUNT(*), MAX(at) FROM masked "
    "GROUP BY kind, message, name, step_key"
)

# The steps and edges of the executions that ran another definition than their workflow's
# stored one (`drifted`), read from the definition they ran.
_SQLITE_JSON_STEPS = (
    "SELECT e.id, json_extract(s.value, '$.key')"
    " FROM drifted e, json_each(e.definition, '$.steps') s"
)
_SQLITE_JSON_EDGES = (
    "SELECT e.id, json_extract(s.value, '$.key'), d.value"
    " FROM drifted e, json_each(e.definition, '$.steps') s,"
    " json_each(s.value, '$.dependencies') d"
)
_PG_STEPS = (
    " FROM drifted e CROSS JOIN LATERAL json_array_elements(CASE WHEN"
    " json_typeof(e.definition -> 'steps') = 'array' THEN e.definition -> 'steps' END) AS s (value)"
)
_POSTGRES_JSON_STEPS = "SELECT e.id, s.value ->> 'key'" + _PG_STEPS
_POSTGRES_JSON_EDGES = (
    "SELECT e.id, s.value ->> 'key', d.value"
    + _PG_STEPS
    + " CROSS JOIN LATERAL json_array_elements_text(CASE WHEN json_typeof(s.value ->"
    " 'dependencies') = 'array' THEN s.value -> 'dependencies' END) AS d (value)"
)


def _regexp_masks(column: str) -> tuple[str, list[str]]:
    """`column` through each mask (patterns as parameters: they hold `?`)."""
    sql = column
    params: list[str] = []
    for pattern, replacement in MASKS:
        sql = f"regexp_replace({sql}, ?, ?, 'g')"
        params += [pattern, replacement]  # the innermost call's come first in the text
    return sql, params


# dialect -> the fragments that differ: an execution's own steps and edges, the mask
_DIALECT: dict[str, dict[str, str]] = {
    "sqlite": {
        "json_steps": _SQLITE_JSON_STEPS,
        "json_edges": _SQLITE_JSON_EDGES,
        "mask": "ax_mask_error(message)",
    },
    "postgres": {
        "json_steps": _POSTGRES_JSON_STEPS,
        "json_edges": _POSTGRES_JSON_EDGES,
        "mask": _regexp_masks("message")[0],
    },
}
_MASK_PARAMS = {"sqlite": [], "postgres": _regexp_masks("message")[1]}


class _Dialect(Protocol):
    """What the queries need from `SqlStore`."""

    @property
    def dialect(self) -> str: ...

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


_N = TypeVar("_N", int, float)


def _total(latest: Any, earlier: Any, kind: type[_N]) -> _N | None:
    """The instances' own figure plus their earlier attempts' (None: neither reported)."""
    if latest is None and earlier is None:
        return None
    return kind(latest or 0) + kind(earlier or 0)


def _sum(values: list[_N | None]) -> _N | None:
    """A workflow's usage: its steps' (None: none reported any)."""
    known = [value for value in values if value is not None]
    return sum(known[1:], known[0]) if known else None


class StatsQueries:
    """Mixed into `SqlStore`: the analytics method of the `Store` protocol."""

    def stats(self: _Dialect, *, since: float, workflow_name: str | None = None) -> StatsReport:
        """Statistics of the executions started at or after `since` (epoch seconds), of
        every workflow or of the one named; what each figure means is in the module."""
        recent = _RECENT.format(name="" if workflow_name is None else " AND w.name = ?")
        window: list[Any] = [since] if workflow_name is None else [since, workflow_name]
        fragments = _DIALECT[self.dialect]

        def rows(query: str, extra: Sequence[Any] = ()) -> list[Any]:
            return self._fetch_all(query.format(recent=recent, **fragments), [*window, *extra])

        efficiency = {r[0]: r[1] for r in rows(PARALLEL_EFFICIENCY)}
        steps = [
            StepStats(
                workflow_name=r[0], step_key=r[1], position=int(r[2]), runs=int(r[3]),
                failed=int(r[4]), retried=int(r[5]), retried_completed=int(r[6]),
                p50_duration_ms=_int(r[7]), p95_duration_ms=_int(r[8]),
                cost_usd=_total(r[9], r[10], float), tokens_in=_total(r[11], r[12], int),
                tokens_out=_total(r[13], r[14], int),
            )
            for r in rows(STEPS)
        ]  # fmt: skip
        workflows = []
        for name, count, completed, failed, finished, p50, p95, overhead in rows(EXECUTIONS):
            mine = [step for step in steps if step.workflow_name == name]
            workflows.append(
                WorkflowStats(
                    name=name, executions=int(count), completed=int(completed),
                    failed=int(failed), finished=int(finished), p50_duration_ms=_int(p50),
                    p95_duration_ms=_int(p95), parallel_efficiency=_float(efficiency.get(name)),
                    checkpoint_overhead_ms=_float(overhead),
                    tokens_in=_sum([step.tokens_in for step in mine]),
                    tokens_out=_sum([step.tokens_out for step in mine]),
                    cost_usd=_sum([step.cost_usd for step in mine]),
                )
            )  # fmt: skip
        errors = [
            ErrorStats(
                kind=r[0], message=r[1], workflow_name=r[2], step_key=r[3], count=int(r[4]),
                last_seen_at=_float(r[5]),
            )
            for r in rows(ERROR_GROUPS, _MASK_PARAMS[self.dialect])
        ]  # fmt: skip
        return StatsReport(workflows=workflows, steps=steps, errors=errors)
