"""Child executions of sub-workflow steps, in the store (SPEC section 8).

A child is an execution like any other (its own row, definition, lease, instances, events)
whose `parent_execution_id` names the execution that started it. It is created by the
parent's fenced write that starts the step (`CreateChildExecution`), so the step's
`child_execution_id` and the child's row appear together or not at all.

Each execution also keeps the sub-workflow files it may run (`subworkflows`: the tree the
loader read, each definition in its stored form), so a resume runs the files as they were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from automatosx.store.codec import ColumnCodec, load_json
from automatosx.store.records import CreateChildExecution, SetSubworkflows

if TYPE_CHECKING:
    from collections.abc import Mapping

    from automatosx.definition.subworkflows import Subworkflow
    from automatosx.store.write_ops import Connection

INSERT_CHILD = (
    "INSERT INTO workflow_executions (id, workflow_id, state, context, triggered_by, priority, "
    "parent_execution_id, created_at, lease_owner, lease_expires_at, lease_epoch, updated_at, "
    "workdir, definition, subworkflows) VALUES (?, ?, 'idle', ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, "
    "(SELECT definition FROM workflows WHERE id = ?), ?)"
)
SET_SUBWORKFLOWS = "UPDATE workflow_executions SET subworkflows = ?, updated_at = ? WHERE id = ?"
SELECT_SUBWORKFLOWS = "SELECT subworkflows FROM workflow_executions WHERE id = ?"


def subworkflows_text(children: Mapping[str, Subworkflow], codec: ColumnCodec) -> str | None:
    """The tree as its column holds it (each definition as `workflows` stores one)."""
    if not children:
        return None
    from automatosx.definition.subworkflows import subworkflows_document
    from automatosx.store.workflow_sql import stored_form

    return codec.json(subworkflows_document(children, stored_form))


def create_child(
    db: Connection, parent_id: str, op: CreateChildExecution, codec: ColumnCodec, now: float
) -> None:
    """The child's workflow (stored or updated by name and version, as `run` does), its
    execution row leased to its runner, then its step instances."""
    from automatosx.store.workflow_sql import upsert_workflow
    from automatosx.store.write_ops import apply_ops

    workflow = upsert_workflow(db, op.definition, codec)
    db.execute(
        INSERT_CHILD,
        (
            op.execution_id, workflow.id, codec.json(op.context), codec.text(op.triggered_by),
            op.priority, parent_id, now, op.lease_owner, op.lease_expires_at, now, op.workdir,
            workflow.id, subworkflows_text(op.subworkflows, codec),
        ),
    )  # fmt: skip
    apply_ops(db, op.execution_id, op.instances, codec, now)


def set_subworkflows(
    db: Connection, eid: str, op: SetSubworkflows, codec: ColumnCodec, now: float
) -> None:
    db.execute(SET_SUBWORKFLOWS, (subworkflows_text(op.subworkflows, codec), now, eid))


def read_subworkflows(row: Any) -> dict[str, Any]:
    """The stored tree of an execution (empty: it runs no sub-workflow)."""
    if row is None or row[0] is None:
        return {}
    return cast("dict[str, Any]", load_json(row[0]))
