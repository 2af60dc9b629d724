"""The OpenAPI document's description of each body (SPEC sections 7, 10 and 11).

These models only *describe*: every body is built by `automatosx.views` (the CLI's
`--format json` documents) and sent as it is, never re-serialized through them, so a shape
is defined once. They allow extra keys, since a document may carry more than the contract
names (the fuzzing tests check each response against them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(Body):
    error: str = Field(description="What was wrong, in one line.")


class Workflow(Body):
    name: str
    version: str
    description: str | None
    totalExecutions: int
    successfulExecutions: int
    successRate: float | None
    avgDurationMs: float | None


class Run(Body):
    executionId: str
    workflowName: str
    state: str
    triggeredBy: str | None
    priority: int
    startedAt: str | None
    completedAt: str | None
    durationMs: int | None
    orphaned: bool
    parentExecutionId: str | None


class Step(Body):
    state: str
    attempts: int
    durationMs: int | None
    agent: str | None
    provider: str | None
    error: str | None


class Execution(Run):
    """`status`: a run's fields (`views.documents.run_fields`) and the rest."""

    workflowId: str
    resumeCount: int
    error: str | None
    steps: dict[str, Step]
    stepResults: dict[str, Any]
    context: dict[str, Any]


class Event(Body):
    id: int
    executionId: str
    type: str
    stepKey: str | None
    data: dict[str, Any]
    createdAt: str


class Checkpoint(Body):
    id: str
    executionId: str
    state: str
    label: str | None
    createdBy: str
    createdAt: str
    sizeBytes: int
    completedSteps: list[str]
    pendingSteps: list[str]


class GraphNode(Body):
    key: str
    state: str
    level: int


class Graph(Body):
    nodes: list[GraphNode]
    edges: list[list[str]] = Field(description="[from, to]: `to` depends on `from`.")


class Pending(Body):
    executionId: str
    stepKey: str


class Stats(Body):
    since: str
    workflows: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class Attempt(Body):
    attempt: int
    state: str


class Accepted(Body):
    executionId: str
    state: str


class Decision(BaseModel):
    """An approval's decision, as `ax workflow approve|reject --comment` gives it."""

    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=10_000)
    by: str | None = Field(
        default=None, max_length=200, description="Who decides (default: the server's user)."
    )
