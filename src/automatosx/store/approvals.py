"""The store's side of approval gates: the decision's compare-and-set and the reads around it.

A gate's row of `workflow_approvals` is inserted by the runner with the instance moving to
`waiting` (`records.OpenApproval`, a fenced write). The decision is the one thing written
from outside the runner's lease, by whichever process gives it: a person's `approve` or
`reject`, or the deadline. It is a compare-and-set (`... WHERE decision IS NULL`), so of
two racing deciders exactly one changes the row; the runner then applies the winning
decision to the instance under its lease (the decider never touches the instance, which
only its runner writes). Both conditions are checked by the UPDATE itself, inside one
statement: SQLite runs it under the database's write lock, PostgreSQL re-checks the WHERE
on the row it waited for, so neither lets a second decision through.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from automatosx.store.records import ApprovalDecision, ApprovalRecord, OnTimeout
from automatosx.store.write_ops import Connection

APPROVAL_COLUMNS = (
    "a.execution_id, a.step_key, a.message, a.requested_at, a.expires_at, a.on_timeout, "
    "a.decision, a.decided_by, a.comment, a.decided_at"
)
_WAITING = (
    "JOIN workflow_step_instances i ON i.execution_id = a.execution_id AND i.key = a.step_key "
    "AND i.state = 'waiting'"
)
_STILL_WAITING = (
    "EXISTS (SELECT 1 FROM workflow_step_instances i WHERE i.execution_id = ? AND i.key = ? "
    "AND i.state = 'waiting')"
)
DECIDE = (
    "UPDATE workflow_approvals SET decision = ?, decided_by = ?, comment = ?, decided_at = ? "
    "WHERE execution_id = ? AND step_key = ? AND decision IS NULL "
    f"AND (expires_at IS NULL OR expires_at > ?) AND {_STILL_WAITING}"
)
# The deadline decides as of the deadline: `decided_at` is the moment it passed, whenever
# the process that noticed it (the runner, a resume, a late `approve`) did.
EXPIRE = (
    "UPDATE workflow_approvals SET decided_by = 'timeout', decision = CASE on_timeout "
    "WHEN 'approve' THEN 'approved' ELSE 'rejected' END, "
    "decided_at = expires_at WHERE execution_id = ? AND step_key = ? AND decision IS NULL "
    f"AND expires_at IS NOT NULL AND expires_at <= ? AND {_STILL_WAITING}"
)
TIMEOUT_DECIDER = "timeout"


def decision_command(verb: str, execution_id: str, key: str) -> str:
    """What a person types to decide a gate, as the event, the live view, `status` and
    `pending` all show it (a forEach item's key is quoted: `gate[2]` is a glob pattern to
    the shell)."""
    return f"ax workflow {verb} {execution_id} {shlex.quote(key)}"


@dataclass(frozen=True)
class PendingApproval:
    """A gate waiting for a person, with the name of the workflow it belongs to."""

    approval: ApprovalRecord
    workflow_name: str


class _Dialect(Protocol):
    """What the queries need from `SqlStore`."""

    def _transaction(self) -> AbstractContextManager[Connection]: ...

    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


def approval_from_row(row: Any) -> ApprovalRecord:
    return ApprovalRecord(
        execution_id=row[0],
        step_key=row[1],
        message=row[2],
        requested_at=float(row[3]),
        expires_at=None if row[4] is None else float(row[4]),
        on_timeout=cast("OnTimeout", row[5]),
        decision=cast("ApprovalDecision | None", row[6]),
        decided_by=row[7],
        comment=row[8],
        decided_at=None if row[9] is None else float(row[9]),
    )


class ApprovalQueries:
    """Mixed into `SqlStore`: the approval methods of the `Store` protocol."""

    def decide_approval(
        self: _Dialect,
        execution_id: str,
        step_key: str,
        decision: ApprovalDecision,
        *,
        by: str,
        comment: str | None,
        now: float,
    ) -> bool:
        """Record a person's decision if none is recorded, the gate still waits and its
        deadline has not passed at `now`; True if this call recorded it."""
        with self._transaction() as db:
            changed = db.execute(
                DECIDE,
                (decision, by, comment, now, execution_id, step_key, now, execution_id, step_key),
            ).rowcount
        return changed == 1

    def expire_approval(self: _Dialect, execution_id: str, step_key: str, *, now: float) -> bool:
        """Record the timeout's decision (the gate's `onTimeout`, by "timeout") if the
        deadline has passed at `now` and nothing was decided; True if this call did."""
        with self._transaction() as db:
            changed = db.execute(
                EXPIRE, (execution_id, step_key, now, execution_id, step_key)
            ).rowcount
        return changed == 1

    def get_approval(self: _Dialect, execution_id: str, step_key: str) -> ApprovalRecord | None:
        rows = self._fetch_all(
            f"SELECT {APPROVAL_COLUMNS} FROM workflow_approvals a "
            "WHERE a.execution_id = ? AND a.step_key = ?",
            (execution_id, step_key),
        )
        return approval_from_row(rows[0]) if rows else None

    def waiting_approvals(
        self: _Dialect, execution_id: str, *, decided_only: bool = False
    ) -> list[ApprovalRecord]:
        """The execution's gates whose instance is `waiting` (the decided ones only, with
        `decided_only`: the decisions its runner has still to apply). One query on the
        primary keys, what a runner asks each control tick while a gate waits."""
        decided = " AND a.decision IS NOT NULL" if decided_only else ""
        rows = self._fetch_all(
            f"SELECT {APPROVAL_COLUMNS} FROM workflow_approvals a {_WAITING} "
            f"WHERE a.execution_id = ?{decided} ORDER BY a.requested_at, a.step_key",
            (execution_id,),
        )
        return [approval_from_row(row) for row in rows]

    def pending_approvals(self: _Dialect) -> list[PendingApproval]:
        """Every gate waiting for a decision, in unfinished executions, oldest first."""
        rows = self._fetch_all(
            f"SELECT {APPROVAL_COLUMNS}, w.name FROM workflow_approvals a {_WAITING} "
            "JOIN workflow_executions e ON e.id = a.execution_id "
            "JOIN workflows w ON w.id = e.workflow_id "
            "WHERE a.decision IS NULL AND e.state NOT IN ('completed', 'failed', 'cancelled') "
            "ORDER BY a.requested_at, a.execution_id, a.step_key"
        )
        return [PendingApproval(approval_from_row(row), row[10]) for row in rows]
