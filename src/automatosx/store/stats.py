"""The store's side of analytics (`ax workflow stats`, SPEC section 11): named SQL queries.

Every figure is computed by the database over the executions that started within the
window (`started_at >= since`, found through `workflow_executions_by_started`); Python only
receives a few rows per workflow and step. The queries are the same on SQLite and
PostgreSQL except for two fragments, each in `_DIALECT`: reading an execution's
dependency edges from the definition it ran (JSON functions differ) and masking an error
message (`regexp_replace` on PostgreSQL; on SQLite the same three expressions in Python,
registered on the connection as `ax_mask_error`, see `register_sqlite_functions`).

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
  edges, weighing each step (the file's steps, a forEach step as one) by its duration: a
  recursive CTE walks every chain from the steps that depend on nothing (UNION keeps one
  row per step and running total). That is linear in the chains' distinct totals: chains,
  trees, fan-outs and diamonds cost little; only a DAG of many interleaved layers, each
  step depending on several of the layer before, multiplies them.
- **usage** (tokens, cost) sums every attempt of every instance, once each: the history
  rows before an instance's latest attempt, and the instance row itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

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
    "recent AS (SELECT e.id, w.name, e.state, e.duration_ms "
    "FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id "
    "WHERE e.started_at >= ?{name})"
)
# Each history row of an attempt before its instance's latest (the latest is the instance
# row; a history row with its number is the same attempt, written when it was cancelled).
_EARLIER_ATTEMPTS = (
    "FROM {executions} e JOIN workflow_step_executions a ON a.execution_id = e.id "
    "JOIN workflow_step_instances i ON i.execution_id = a.execution_id AND i.key = a.step_key "
    "WHERE a.attempt < i.attempt"
)

WORKFLOW_TOTALS = (
    "WITH {recent}, "
    "attempts AS ("
    " SELECT i.execution_id, i.tokens_in, i.tokens_out, i.cost_usd"
    " FROM recent e JOIN workflow_step_instances i ON i.execution_id = e.id"
    " UNION ALL"
    " SELECT a.execution_id, a.tokens_in, a.tokens_out, a.cost_usd "
    + _EARLIER_ATTEMPTS.format(executions="recent")
    + "), "
    "usage AS (SELECT execution_id, SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out,"
    " SUM(cost_usd) AS cost_usd FROM attempts GROUP BY execution_id) "
    "SELECT e.name, COUNT(*),"
    " SUM(CASE WHEN e.state = 'completed' THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN e.state = 'failed' THEN 1 ELSE 0 END),"
    f" SUM(CASE WHEN e.state IN {TERMINAL} THEN 1 ELSE 0 END),"
    " SUM(u.tokens_in), SUM(u.tokens_out), SUM(u.cost_usd) "
    "FROM recent e LEFT JOIN usage u ON u.execution_id = e.id GROUP BY e.name"
)

# Nearest rank ceil(p * n / 100), in integer arithmetic both stores share.
_PERCENTILES = (
    "MAX(CASE WHEN pos = (50 * n + 99) / 100 THEN ms END) AS p50,"
    " MAX(CASE WHEN pos = (95 * n + 99) / 100 THEN ms END) AS p95"
)

DURATION_PERCENTILES = (
    "WITH {recent}, "
    "ranked AS (SELECT name, duration_ms AS ms,"
    " ROW_NUMBER() OVER (PARTITION BY name ORDER BY duration_ms) AS pos,"
    " COUNT(*) OVER (PARTITION BY name) AS n"
    f" FROM recent WHERE state IN {TERMINAL} AND duration_ms IS NOT NULL) "
    f"SELECT name, {_PERCENTILES} FROM ranked GROUP BY name"
)

CHECKPOINT_OVERHEAD = (
    "WITH {recent}, "
    "spent AS (SELECT e.id, e.name, COALESCE(SUM(c.write_ms), 0) AS ms,"
    " COUNT(c.id) AS checkpoints, COUNT(c.write_ms) AS measured"
    " FROM recent e LEFT JOIN workflow_checkpoints c ON c.execution_id = e.id"
    f" WHERE e.state IN {TERMINAL} GROUP BY e.id, e.name) "
    "SELECT name, AVG(ms) FROM spent WHERE measured = checkpoints GROUP BY name"
)

# The critical path: every dependency chain of each completed execution, from the steps
# that depend on nothing, as (step, running total); the longest total is the path.
PARALLEL_EFFICIENCY = (
    "WITH RECURSIVE {recent}, "
    "done AS (SELECT r.id, r.name, r.duration_ms, x.definition FROM recent r"
    " JOIN workflow_executions x ON x.id = r.id"
    " WHERE r.state = 'completed' AND r.duration_ms > 0), "
    "earlier AS (SELECT a.execution_id, a.step_key AS key, SUM(a.duration_ms) AS ms "
    + _EARLIER_ATTEMPTS.format(executions="done")
    + " GROUP BY a.execution_id, a.step_key), "
    "nodes AS (SELECT i.execution_id, i.key, COALESCE(i.duration_ms, 0) + COALESCE(h.ms, 0) AS ms"
    " FROM done e JOIN workflow_step_instances i ON i.execution_id = e.id"
    " LEFT JOIN earlier h ON h.execution_id = i.execution_id AND h.key = i.key"
    " WHERE i.parent_key IS NULL), "
    "edges AS ({edges}), "
    "chains (execution_id, key, total) AS ("
    " SELECT n.execution_id, n.key, n.ms FROM nodes n WHERE NOT EXISTS ("
    "  SELECT 1 FROM edges x WHERE x.execution_id = n.execution_id AND x.step_key = n.key)"
    " UNION"
    " SELECT c.execution_id, x.step_key, c.total + n.ms FROM chains c"
    " JOIN edges x ON x.execution_id = c.execution_id AND x.depends_on = c.key"
    " JOIN nodes n ON n.execution_id = x.execution_id AND n.key = x.step_key), "
    "critical AS (SELECT execution_id, MAX(total) AS ms FROM chains GROUP BY execution_id) "
    "SELECT d.name, AVG(CAST(c.ms AS DOUBLE PRECISION) / d.duration_ms) "
    "FROM critical c JOIN done d ON d.id = c.execution_id GROUP BY d.name"
)

STEP_RUNS = (
    "WITH {recent}, "
    "earlier AS (SELECT a.execution_id, a.step_key AS key, SUM(a.duration_ms) AS ms,"
    " SUM(a.cost_usd) AS cost_usd "
    + _EARLIER_ATTEMPTS.format(executions="recent")
    + " GROUP BY a.execution_id, a.step_key), "
    "instances AS (SELECT e.name, i.step_key, i.position, i.state, i.attempt,"
    " CASE WHEN i.items IS NULL AND i.state IN ('completed', 'failed')"
    "  AND (i.attempt > 0 OR i.state = 'failed') THEN 1 ELSE 0 END AS run,"
    " COALESCE(i.duration_ms, 0) + COALESCE(h.ms, 0) AS ms,"
    " i.cost_usd, h.cost_usd AS earlier_cost_usd"
    " FROM recent e JOIN workflow_step_instances i ON i.execution_id = e.id"
    " LEFT JOIN earlier h ON h.execution_id = i.execution_id AND h.key = i.key), "
    "ranked AS (SELECT name, step_key, ms,"
    " ROW_NUMBER() OVER (PARTITION BY name, step_key ORDER BY ms) AS pos,"
    " COUNT(*) OVER (PARTITION BY name, step_key) AS n"
    " FROM instances WHERE run = 1 AND attempt > 0), "
    f"percentiles AS (SELECT name, step_key, {_PERCENTILES} FROM ranked GROUP BY name, step_key), "
    "totals AS (SELECT name, step_key, MIN(position) AS position, SUM(run) AS runs,"
    " SUM(CASE WHEN run = 1 AND state = 'failed' THEN 1 ELSE 0 END) AS failed,"
    " SUM(CASE WHEN run = 1 AND attempt > 1 THEN 1 ELSE 0 END) AS retried,"
    " SUM(CASE WHEN run = 1 AND attempt > 1 AND state = 'completed' THEN 1 ELSE 0 END)"
    "  AS retried_completed,"
    " SUM(cost_usd) AS cost_usd, SUM(earlier_cost_usd) AS earlier_cost_usd"
    " FROM instances GROUP BY name, step_key) "
    "SELECT t.name, t.step_key, t.position, t.runs, t.failed, t.retried, t.retried_completed,"
    " p.p50, p.p95, t.cost_usd, t.earlier_cost_usd "
    "FROM totals t LEFT JOIN percentiles p ON p.name = t.name AND p.step_key = t.step_key"
)

# Failed attempts: the history's, and each instance's latest when it failed (for good, or
# waiting for its retry); a forEach step's own failure repeats its item's and is left out.
ERROR_GROUPS = (
    "WITH {recent}, "
    "failures AS ("
    " SELECT e.name, i.step_key, i.error_kind AS kind, i.error_message AS message,"
    "  i.completed_at AS at"
    " FROM recent e JOIN workflow_step_instances i ON i.execution_id = e.id"
    " WHERE i.items IS NULL AND (i.state = 'failed' OR (i.state = 'pending'"
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

_SQLITE_EDGES = (
    "SELECT e.id AS execution_id, json_extract(s.value, '$.key') AS step_key,"
    " d.value AS depends_on"
    " FROM done e, json_each(e.definition, '$.steps') s, json_each(s.value, '$.dependencies') d"
)
_POSTGRES_EDGES = (
    "SELECT e.id AS execution_id, s.value ->> 'key' AS step_key, d.value AS depends_on"
    " FROM done e"
    " CROSS JOIN LATERAL json_array_elements(CASE WHEN json_typeof(e.definition -> 'steps')"
    "  = 'array' THEN e.definition -> 'steps' END) AS s (value)"
    " CROSS JOIN LATERAL json_array_elements_text(CASE WHEN json_typeof(s.value ->"
    "  'dependencies') = 'array' THEN s.value -> 'dependencies' END) AS d (value)"
)


def _regexp_masks(column: str) -> tuple[str, list[str]]:
    """`column` through each mask (patterns as parameters: they hold `?`)."""
    sql = column
    params: list[str] = []
    for pattern, replacement in MASKS:
        sql = f"regexp_replace({sql}, ?, ?, 'g')"
        params += [pattern, replacement]  # the innermost call's come first in the text
    return sql, params


# dialect -> (dependency edges of the executions in `done`, the mask of `message`, its params)
_DIALECT: dict[str, tuple[str, str, list[str]]] = {
    "sqlite": (_SQLITE_EDGES, "ax_mask_error(message)", []),
    "postgres": (_POSTGRES_EDGES, *_regexp_masks("message")),
}


class _Dialect(Protocol):
    """What the queries need from `SqlStore`."""

    @property
    def dialect(self) -> str: ...

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class StatsQueries:
    """Mixed into `SqlStore`: the analytics method of the `Store` protocol."""

    def stats(self: _Dialect, *, since: float, workflow_name: str | None = None) -> StatsReport:
        """Statistics of the executions started at or after `since` (epoch seconds), of
        every workflow or of the one named; what each figure means is in the module."""
        recent = _RECENT.format(name="" if workflow_name is None else " AND w.name = ?")
        window: list[Any] = [since] if workflow_name is None else [since, workflow_name]
        edges, mask, mask_params = _DIALECT[self.dialect]

        def rows(query: str, extra: Sequence[Any] = ()) -> list[Any]:
            sql = query.format(recent=recent, edges=edges, mask=mask)
            return self._fetch_all(sql, [*window, *extra])

        percentiles = {r[0]: r[1:] for r in rows(DURATION_PERCENTILES)}
        efficiency = {r[0]: r[1] for r in rows(PARALLEL_EFFICIENCY)}
        overhead = {r[0]: r[1] for r in rows(CHECKPOINT_OVERHEAD)}
        workflows = []
        for name, count, completed, failed, finished, t_in, t_out, cost in rows(WORKFLOW_TOTALS):
            p50, p95 = percentiles.get(name, (None, None))
            workflows.append(
                WorkflowStats(
                    name=name, executions=int(count), completed=int(completed),
                    failed=int(failed), finished=int(finished), p50_duration_ms=_int(p50),
                    p95_duration_ms=_int(p95), parallel_efficiency=_float(efficiency.get(name)),
                    checkpoint_overhead_ms=_float(overhead.get(name)), tokens_in=_int(t_in),
                    tokens_out=_int(t_out), cost_usd=_float(cost),
                )
            )  # fmt: skip
        steps = [
            StepStats(
                workflow_name=r[0], step_key=r[1], position=int(r[2]), runs=int(r[3]),
                failed=int(r[4]), retried=int(r[5]), retried_completed=int(r[6]),
                p50_duration_ms=_int(r[7]), p95_duration_ms=_int(r[8]),
                cost_usd=None if r[9] is None and r[10] is None
                else float(r[9] or 0) + float(r[10] or 0),
            )
            for r in rows(STEP_RUNS)
        ]  # fmt: skip
        errors = [
            ErrorStats(
                kind=r[0], message=r[1], workflow_name=r[2], step_key=r[3], count=int(r[4]),
                last_seen_at=_float(r[5]),
            )
            for r in rows(ERROR_GROUPS, mask_params)
        ]  # fmt: skip
        return StatsReport(workflows=workflows, steps=steps, errors=errors)
