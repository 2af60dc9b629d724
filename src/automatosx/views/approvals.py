"""The `ax workflow pending --format json` entries (SPEC section 8): one per approval gate
waiting for a decision, across executions."""

from __future__ import annotations

from typing import Any

from automatosx.store.approvals import PendingApproval
from automatosx.views.timestamps import iso


def pending_document(pending: PendingApproval) -> dict[str, Any]:
    approval = pending.approval
    return {
        "executionId": approval.execution_id,
        "workflowName": pending.workflow_name,
        "stepKey": approval.step_key,
        "message": approval.message,
        "requestedAt": iso(approval.requested_at),
        "expiresAt": iso(approval.expires_at),  # null: it waits as long as it takes
    }
