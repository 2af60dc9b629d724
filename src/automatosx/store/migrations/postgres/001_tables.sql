-- The seven tables of the source design, as in the SQLite schema: epoch-second timestamps
-- (double precision), integer millisecond durations, JSON as `json` (keeps key order and the
-- exact text). Execution IDs use the "C" collation so ID-prefix lookups are index range scans.

CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT,
    author TEXT,
    tags JSON NOT NULL DEFAULT '[]',
    definition JSON NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    total_executions INTEGER NOT NULL DEFAULT 0,
    successful_executions INTEGER NOT NULL DEFAULT 0,
    failed_executions INTEGER NOT NULL DEFAULT 0,
    avg_duration_ms DOUBLE PRECISION,
    UNIQUE (name, version)
);

CREATE TABLE workflow_steps (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    position INTEGER NOT NULL,
    agent TEXT NOT NULL,
    prompt TEXT NOT NULL,
    parallel BOOLEAN NOT NULL DEFAULT TRUE,
    optional BOOLEAN NOT NULL DEFAULT FALSE,
    timeout_ms INTEGER,
    retry_policy JSON,
    output_schema JSON,
    PRIMARY KEY (workflow_id, key)
);

CREATE TABLE workflow_dependencies (
    workflow_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    PRIMARY KEY (workflow_id, step_key, depends_on),
    FOREIGN KEY (workflow_id, step_key)
        REFERENCES workflow_steps (workflow_id, key) ON DELETE CASCADE,
    FOREIGN KEY (workflow_id, depends_on)
        REFERENCES workflow_steps (workflow_id, key) ON DELETE CASCADE
);

CREATE TABLE workflow_executions (
    id TEXT COLLATE "C" PRIMARY KEY,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN (
        'idle', 'parsing', 'validating', 'building_graph', 'scheduling', 'executing',
        'awaiting_completion', 'creating_checkpoint', 'restoring_checkpoint',
        'aggregating_results', 'completed', 'failed', 'paused', 'cancelled')),
    context JSON NOT NULL DEFAULT '{}',
    triggered_by TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    parent_execution_id TEXT COLLATE "C"
        REFERENCES workflow_executions (id) ON DELETE SET NULL,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION,
    duration_ms INTEGER,
    resume_count INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    lease_epoch INTEGER NOT NULL DEFAULT 0,
    control_request TEXT CHECK (control_request IN ('pause', 'cancel')),
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX workflow_executions_by_workflow ON workflow_executions (workflow_id, created_at);
CREATE INDEX workflow_executions_by_created ON workflow_executions (created_at);
CREATE INDEX workflow_executions_by_state ON workflow_executions (state);
CREATE INDEX workflow_executions_by_parent ON workflow_executions (parent_execution_id);

CREATE TABLE workflow_step_executions (
    execution_id TEXT COLLATE "C" NOT NULL
        REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN (
        'pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    agent TEXT,
    provider TEXT,
    model TEXT,
    output JSON,
    error_kind TEXT,
    error_message TEXT,
    started_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION,
    duration_ms INTEGER,
    tokens_in BIGINT,
    tokens_out BIGINT,
    cost_usd DOUBLE PRECISION,
    PRIMARY KEY (execution_id, step_key, attempt)
);

CREATE TABLE workflow_checkpoints (
    id TEXT PRIMARY KEY,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    execution_id TEXT COLLATE "C" NOT NULL
        REFERENCES workflow_executions (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    context JSON NOT NULL DEFAULT '{}',
    completed_steps JSON NOT NULL DEFAULT '[]',
    pending_steps JSON NOT NULL DEFAULT '[]',
    label TEXT,
    created_by TEXT NOT NULL CHECK (created_by IN ('automatic', 'user', 'pause')),
    created_at DOUBLE PRECISION NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workflow_checkpoints_by_execution ON workflow_checkpoints (execution_id, created_at);
CREATE INDEX workflow_checkpoints_by_created ON workflow_checkpoints (created_at);

CREATE TABLE workflow_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id TEXT COLLATE "C" NOT NULL
        REFERENCES workflow_executions (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN (
        'workflow_started', 'workflow_completed', 'workflow_failed', 'workflow_paused',
        'workflow_resumed', 'workflow_cancelled', 'step_started', 'step_completed',
        'step_failed', 'step_retrying', 'step_skipped', 'step_cancelled',
        'checkpoint_created', 'checkpoint_restored')),
    step_key TEXT,
    data JSON NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX workflow_events_by_execution ON workflow_events (execution_id, id);
CREATE INDEX workflow_events_by_created ON workflow_events (created_at);
