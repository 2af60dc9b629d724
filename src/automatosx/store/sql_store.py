"""The `Store` logic shared by SQLite and PostgreSQL.

The SQL here is portable (`?` placeholders, `ON CONFLICT`, `RETURNING`); a dialect supplies
how a transaction starts (`BEGIN IMMEDIATE` vs `BEGIN`), how a row is locked for a
read-then-write decision (nothing on SQLite, whose write transaction already excludes other
writers; `FOR UPDATE` on PostgreSQL), how plain reads run, and full-text search.

Fencing: `write` and `renew_lease` compare the caller's lease (owner and epoch) with the row
inside the same transaction that applies the change, so a runner whose lease was taken over
changes nothing and learns it through `LeaseLostError`.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, cast

from automatosx.errors import LeaseLostError, NotFoundError, StateConflictError
from automatosx.store import children, workflow_sql
from automatosx.store.approvals import ApprovalQueries
from automatosx.store.cache import CacheQueries
from automatosx.store.codec import ColumnCodec, load_json
from automatosx.store.dispatch import DispatchQueries
from automatosx.store.provider_slots import ProviderSlotQueries
from automatosx.store.records import (
    TERMINAL_STATES,
    CheckpointRecord,
    ControlRequest,
    EventRecord,
    ExecutionRecord,
    Lease,
    PruneResult,
    StepExecutionRecord,
    StepInstanceRecord,
    WorkflowRecord,
    WriteOp,
)
from automatosx.store.rows import (
    CHECKPOINT_COLUMNS,
    EVENT_COLUMNS,
    EXECUTION_COLUMNS,
    EXECUTION_FROM,
    INSTANCE_COLUMNS,
    STEP_COLUMNS,
    checkpoint_from_row,
    event_from_row,
    execution_from_row,
    instance_from_row,
    step_from_row,
    workflow_from_row,
)
from automatosx.store.stats import StatsQueries
from automatosx.store.turns import TurnQueries
from automatosx.store.write_ops import Connection, apply_ops

if TYPE_CHECKING:
    from automatosx.definition.models import WorkflowDefinition

MIN_PREFIX_LENGTH = 8
_ID_PREFIX = re.compile(r"^[0-9a-f-]+$")
_TERMINAL_SQL = "('completed', 'failed', 'cancelled')"
SELECT_EXECUTION = f"SELECT {EXECUTION_COLUMNS} FROM {EXECUTION_FROM}"
VIEWS = ("workflow_execution_summary", "workflow_step_summary", "workflow_recent_runs")


class SqlStore(
    ApprovalQueries,
    CacheQueries,
    DispatchQueries,
    ProviderSlotQueries,
    TurnQueries,
    StatsQueries,
    ABC,
):
    """Implements `automatosx.store.base.Store` over a dialect's connections."""

    dialect: ClassVar[str]
    connections_can_drop: ClassVar[bool] = False
    lock_row: ClassVar[str] = ""  # appended to a SELECT whose row the transaction will change
    checkpoint_order: ClassVar[str] = "created_at DESC"

    def __init__(self, codec: ColumnCodec) -> None:
        self.codec = codec
        self._lease_check_sql = (
            f"SELECT lease_owner, lease_epoch FROM workflow_executions WHERE id = ?{self.lock_row}"
        )
        self._control_check_sql = (
            f"SELECT state, control_request FROM workflow_executions WHERE id = ?{self.lock_row}"
        )

    # ---- what a dialect provides ----
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction that holds the database's (or the row's) write lock."""

    @abstractmethod
    def _fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read-only query, outside any write transaction."""

    @abstractmethod
    def search_workflows(self, query: str) -> list[WorkflowRecord]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._fetch_all(sql, params)
        return rows[0] if rows else None

    # ---- workflows ----
    def upsert_workflow(self, definition: WorkflowDefinition) -> WorkflowRecord:
        with self._transaction() as db:
            return workflow_sql.upsert_workflow(db, definition, self.codec)

    def get_workflow(self, name_or_id: str, version: str | None = None) -> WorkflowRecord:
        select = workflow_sql.SELECT_WORKFLOW
        if version is None:
            row = self._fetch_one(f"{select} WHERE w.id = ?", (name_or_id,))
            if row is not None:
                return workflow_from_row(row)
        versions = [
            workflow_from_row(r)
            for r in self._fetch_all(f"{select} WHERE w.name = ?", (name_or_id,))
        ]
        if not versions:
            names = [r[0] for r in self._fetch_all("SELECT DISTINCT name FROM workflows")]
            hint = workflow_sql.closest_name_hint(name_or_id, names)
            raise NotFoundError(f"no workflow named {name_or_id!r}{hint}")
        if version is None:
            return max(versions, key=workflow_sql.version_order)
        for record in versions:
            if record.version == version:
                return record
        stored = ", ".join(r.version for r in sorted(versions, key=workflow_sql.version_order))
        raise NotFoundError(
            f"workflow {name_or_id!r} has no version {version!r} (stored: {stored})"
        )

    def list_workflows(self) -> list[WorkflowRecord]:
        rows = self._fetch_all(f"{workflow_sql.SELECT_WORKFLOW} ORDER BY w.name, w.version")
        return [workflow_from_row(r) for r in rows]

    # ---- executions ----
    def create_execution(
        self,
        *,
        workflow_id: str,
        context: dict[str, Any],
        triggered_by: str,
        priority: int,
        owner: str,
        lease_seconds: float,
        parent_execution_id: str | None = None,
        workdir: str | None = None,
        execution_id: str | None = None,
        opening_ops: Sequence[WriteOp] = (),
    ) -> tuple[ExecutionRecord, Lease]:
        execution_id = execution_id or str(uuid.uuid4())
        now = time.time()
        expires = now + lease_seconds
        with self._transaction() as db:
            if (
                db.execute("SELECT 1 FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
                is None
            ):
                raise NotFoundError(f"no workflow with ID {workflow_id!r}")
            if parent_execution_id is not None and (
                db.execute(
                    "SELECT 1 FROM workflow_executions WHERE id = ?", (parent_execution_id,)
                ).fetchone()
                is None
            ):
                raise NotFoundError(f"no execution with ID {parent_execution_id!r}")
            db.execute(
                "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, "
                "priority, parent_execution_id, created_at, lease_owner, lease_expires_at, "
                "lease_epoch, updated_at, workdir, definition) VALUES (?, ?, 'idle', ?, ?, ?, "
                "?, ?, ?, ?, 1, ?, ?, (SELECT definition FROM workflows WHERE id = ?))",
                (
                    execution_id, workflow_id, self.codec.json(context),
                    self.codec.text(triggered_by), priority, parent_execution_id, now, owner,
                    expires, now, workdir, workflow_id,
                ),
            )  # fmt: skip
            if opening_ops:
                apply_ops(db, execution_id, opening_ops, self.codec, now)
            row = db.execute(f"{SELECT_EXECUTION} WHERE e.id = ?", (execution_id,)).fetchone()
        return execution_from_row(row), Lease(execution_id, owner, 1, expires)

    def execution_definition(self, execution_id: str) -> dict[str, Any]:
        row = self._fetch_one(
            "SELECT definition FROM workflow_executions WHERE id = ?", (execution_id,)
        )
        if row is None or row[0] is None:
            raise NotFoundError(f"no definition stored for execution {execution_id!r}")
        return cast("dict[str, Any]", load_json(row[0]))

    def execution_subworkflows(self, execution_id: str) -> dict[str, Any]:
        return children.read_subworkflows(
            self._fetch_one(children.SELECT_SUBWORKFLOWS, (execution_id,))
        )

    def get_execution(self, id_or_prefix: str) -> ExecutionRecord:
        key = id_or_prefix.strip().lower()
        row = self._fetch_one(f"{SELECT_EXECUTION} WHERE e.id = ?", (key,))
        if row is not None:
            return execution_from_row(row)
        if len(key) < MIN_PREFIX_LENGTH or not _ID_PREFIX.match(key):
            hint = (
                ""
                if len(key) >= MIN_PREFIX_LENGTH
                else (f" (an ID prefix needs at least {MIN_PREFIX_LENGTH} characters)")
            )
            raise NotFoundError(f"no execution with ID {id_or_prefix!r}{hint}")
        rows = self._fetch_all(
            f"{SELECT_EXECUTION} WHERE e.id >= ? AND e.id < ? ORDER BY e.id LIMIT 3",
            (key, key + "~"),
        )
        if not rows:
            raise NotFoundError(f"no execution with ID {id_or_prefix!r}")
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:2]) + (", ..." if len(rows) > 2 else "")
            raise NotFoundError(
                f"execution ID prefix {id_or_prefix!r} is ambiguous: it matches {shown}; "
                "give more characters"
            )
        return execution_from_row(rows[0])

    def list_executions(
        self,
        *,
        workflow_name: str | None = None,
        limit: int = 20,
        states: Sequence[str] | None = None,
        before: str | None = None,
    ) -> list[ExecutionRecord]:
        where: list[str] = []
        params: list[Any] = []
        if before is not None:  # keyset pagination on the listing's own order
            where.append(
                "(e.created_at < c.created_at OR (e.created_at = c.created_at AND e.id < c.id))"
            )
        if workflow_name is not None:
            where.append("w.name = ?")
            params.append(workflow_name)
        if states is not None:
            if not states:
                return []
            where.append(f"e.state IN ({', '.join('?' for _ in states)})")
            params.extend(states)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        cursor = ""
        if before is not None:
            cursor = " JOIN workflow_executions c ON c.id = ?"
            params.insert(0, before)
        params.append(max(limit, 0))
        rows = self._fetch_all(
            f"{SELECT_EXECUTION}{cursor}{clause} ORDER BY e.created_at DESC, e.id DESC LIMIT ?",
            params,
        )
        return [execution_from_row(r) for r in rows]

    # ---- leases (fencing) ----
    def acquire_lease(
        self, execution_id: str, owner: str, lease_seconds: float, *, now: float | None = None
    ) -> Lease:
        now = time.time() if now is None else now
        with self._transaction() as db:
            row = db.execute(
                "SELECT state, lease_owner, lease_expires_at, lease_epoch "
                f"FROM workflow_executions WHERE id = ?{self.lock_row}",
                (execution_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no execution with ID {execution_id!r}")
            state, holder, expires_at, epoch = row
            if state in TERMINAL_STATES:
                raise StateConflictError(f"execution {execution_id} is already {state}")
            if (
                holder is not None
                and holder != owner
                and expires_at is not None
                and expires_at > now
            ):
                raise StateConflictError(
                    f"execution {execution_id} is being run by {holder} (its lease is live for "
                    f"another {expires_at - now:.0f}s)"
                )
            epoch = int(epoch) + 1
            db.execute(
                "UPDATE workflow_executions SET lease_owner = ?, lease_expires_at = ?, "
                "lease_epoch = ?, last_write_seq = NULL, updated_at = ? WHERE id = ?",
                (owner, now + lease_seconds, epoch, time.time(), execution_id),
            )
        return Lease(execution_id, owner, epoch, now + lease_seconds)

    def renew_lease(
        self, lease: Lease, lease_seconds: float
    ) -> tuple[Lease, ControlRequest | None]:
        now = time.time()
        expires = now + lease_seconds
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE workflow_executions SET lease_expires_at = ?, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND lease_epoch = ? RETURNING control_request",
                (expires, now, lease.execution_id, lease.owner, lease.epoch),
            ).fetchall()
        if not rows:
            raise LeaseLostError(_lease_lost(lease))
        return Lease(lease.execution_id, lease.owner, lease.epoch, expires), rows[0][0]

    def release_lease(self, lease: Lease) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE workflow_executions SET lease_owner = NULL, lease_expires_at = NULL, "
                "updated_at = ? WHERE id = ? AND lease_owner = ? AND lease_epoch = ?",
                (time.time(), lease.execution_id, lease.owner, lease.epoch),
            )

    # ---- control from any process ----
    def control_request(self, execution_id: str) -> ControlRequest | None:
        row = self._fetch_one(
            "SELECT control_request FROM workflow_executions WHERE id = ?", (execution_id,)
        )
        return None if row is None else cast("ControlRequest | None", row[0])

    def request_control(self, execution_id: str, request: ControlRequest) -> ExecutionRecord:
        execution_id = self.get_execution(execution_id).id
        with self._transaction() as db:
            state, pending = db.execute(self._control_check_sql, (execution_id,)).fetchone()
            if state in TERMINAL_STATES:
                raise StateConflictError(f"execution {execution_id} is already {state}")
            if request == "pause" and state == "paused":
                raise StateConflictError(f"execution {execution_id} is already paused")
            if not (pending == "cancel" and request == "pause"):  # a cancel is never downgraded
                db.execute(
                    "UPDATE workflow_executions SET control_request = ?, updated_at = ? "
                    "WHERE id = ?",
                    (request, time.time(), execution_id),
                )
            row = db.execute(f"{SELECT_EXECUTION} WHERE e.id = ?", (execution_id,)).fetchone()
        return execution_from_row(row)

    # ---- fenced writes ----
    def write(self, lease: Lease, ops: Sequence[WriteOp], *, seq: int | None = None) -> None:
        now = time.time()
        with self._transaction() as db:
            if seq is None:
                row = db.execute(self._lease_check_sql, (lease.execution_id,)).fetchone()
                if row is None or row[0] != lease.owner or row[1] != lease.epoch:
                    raise LeaseLostError(_lease_lost(lease))
            elif not self._claim_write(db, lease, seq):
                return  # applied already: it committed before its connection dropped
            apply_ops(db, lease.execution_id, ops, self.codec, now)

    def _claim_write(self, db: Connection, lease: Lease, seq: int) -> bool:
        """Fence and record write number `seq` in one statement; False if the execution
        recorded it (or a later one) already. Raises LeaseLostError if the lease moved on."""
        claimed = db.execute(
            "UPDATE workflow_executions SET last_write_seq = ? WHERE id = ? AND lease_owner = ? "
            "AND lease_epoch = ? AND COALESCE(last_write_seq, 0) < ?",
            (seq, lease.execution_id, lease.owner, lease.epoch, seq),
        ).rowcount
        if claimed:
            return True
        row = db.execute(
            "SELECT lease_owner, lease_epoch, last_write_seq FROM workflow_executions WHERE id = ?",
            (lease.execution_id,),
        ).fetchone()
        if row is None or row[0] != lease.owner or row[1] != lease.epoch:
            raise LeaseLostError(_lease_lost(lease))
        return False

    # ---- reads ----
    def list_instances(self, execution_id: str) -> list[StepInstanceRecord]:
        rows = self._fetch_all(
            f"SELECT {INSTANCE_COLUMNS} FROM workflow_step_instances WHERE execution_id = ? "
            "ORDER BY position, COALESCE(item_index, -1)",
            (execution_id,),
        )
        return [instance_from_row(r) for r in rows]

    def list_step_executions(
        self, execution_id: str, *, instances: Sequence[StepInstanceRecord] | None = None
    ) -> list[StepExecutionRecord]:
        rows = self._fetch_all(
            f"SELECT {STEP_COLUMNS} FROM workflow_step_executions WHERE execution_id = ? "
            "ORDER BY step_key, attempt",
            (execution_id,),
        )
        history = [step_from_row(r) for r in rows]
        moved = {(a.step_key, a.attempt) for a in history}
        for instance in self.list_instances(execution_id) if instances is None else instances:
            latest = instance.latest_attempt()
            if latest is not None and (latest.step_key, latest.attempt) not in moved:
                history.append(latest)
        return sorted(history, key=lambda a: (a.step_key, a.attempt))

    def list_checkpoints(
        self, execution_id: str, limit: int | None = None
    ) -> list[CheckpointRecord]:
        sql = (
            f"SELECT {CHECKPOINT_COLUMNS} FROM workflow_checkpoints WHERE execution_id = ? "
            f"ORDER BY {self.checkpoint_order}"
        )
        params: list[Any] = [execution_id]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(limit, 0))
        return [checkpoint_from_row(r) for r in self._fetch_all(sql, params)]

    def latest_checkpoint(self, execution_id: str) -> CheckpointRecord | None:
        found = self.list_checkpoints(execution_id, limit=1)
        return found[0] if found else None

    def list_events(
        self, execution_id: str, *, after_id: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM workflow_events WHERE execution_id = ? AND id > ? "
            "ORDER BY id"
        )
        params: list[Any] = [execution_id, after_id]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(limit, 0))
        return [event_from_row(r) for r in self._fetch_all(sql, params)]

    def latest_event_id(self) -> int:
        row = self._fetch_one("SELECT MAX(id) FROM workflow_events")
        return int(row[0]) if row is not None and row[0] is not None else 0

    # ---- retention ----
    def prune(self, older_than_seconds: float, *, now: float | None = None) -> PruneResult:
        """Deletes checkpoints older than the age, except the newest one of each unfinished
        execution (a paused run must stay resumable), and events older than the age of
        finished executions (an unfinished run keeps its whole audit log)."""
        cutoff = (time.time() if now is None else now) - older_than_seconds
        with self._transaction() as db:
            checkpoints = db.execute(
                "DELETE FROM workflow_checkpoints WHERE created_at < ? AND NOT ("
                " execution_id IN (SELECT id FROM workflow_executions"
                f"  WHERE state NOT IN {_TERMINAL_SQL})"
                " AND id = (SELECT id FROM workflow_checkpoints newest"
                "  WHERE newest.execution_id = workflow_checkpoints.execution_id"
                f"  ORDER BY {self.checkpoint_order} LIMIT 1))",
                (cutoff,),
            ).rowcount
            events = db.execute(
                "DELETE FROM workflow_events WHERE created_at < ? AND execution_id IN ("
                f" SELECT id FROM workflow_executions WHERE state IN {_TERMINAL_SQL})",
                (cutoff,),
            ).rowcount
        return PruneResult(checkpoints=checkpoints, events=events)

    # ---- extras beyond the protocol ----
    def fetch_view(self, view: str) -> list[dict[str, Any]]:
        """Rows of one of the schema's views (`VIEWS`) as dicts, for reports and tests."""
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
        return list(self._fetch_dicts(f"SELECT * FROM {view}"))

    @abstractmethod
    def _fetch_dicts(self, sql: str) -> Iterator[dict[str, Any]]: ...


def _lease_lost(lease: Lease) -> str:
    return (
        f"lost the lease on execution {lease.execution_id} (epoch {lease.epoch}): another "
        "runner took it over"
    )
