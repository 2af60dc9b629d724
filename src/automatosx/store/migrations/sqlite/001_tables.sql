-- The seven tables of the source design (workflows, executions, steps, step executions,
-- checkpoints, dependencies, events). Timestamps are epoch seconds (REAL), durations integer
-- milliseconds, JSON values compact text. Execution IDs are UUID strings.

CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT,
    author TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    definition TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    total_executions INTEGER NOT NULL DEFAULT 0,
    successful_executions INTEGER NOT NULL DEFAULT 0,
    failed_executions INTEGER NOT NULL DEFAULT 0,
    avg_duration_ms REAL,
    UNIQUE (name, version)
);

CREATE TABLE workflow_steps (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    position INTEGER NOT NULL,
    agent TEXT NOT NULL,
    prompt TEXT NOT NULL,
    parallel INTEGER NOT NULL DEFAULT 1,
    optional INTEGER NOT NULL DEFAULT 0,
    timeout_ms INTEGER,
    retry_policy TEXT,
    output_schema TEXT,
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
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN (
        'idle', 'parsing', 'validating', 'building_graph', 'scheduling', 'executing',
        'awaiting_completion', 'creating_checkpoint', 'restoring_checkpoint',
        'aggregating_results', 'completed', 'failed', 'paused', 'cancelled')),
    context TEXT NOT NULL DEFAULT '{}',
    triggered_by TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    parent_execution_id TEXT REFERENCES workflow_executions (id) ON DELETE SET NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    completed_at REAL,
    duration_ms INTEGER,
    resume_count INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    lease_owner TEXT,
    lease_expires_at REAL,
    lease_epoch INTEGER NOT NULL DEFAULT 0,
    control_request TEXT CHECK (control_request IN ('pause', 'cancel')),
    updated_at REAL NOT NULL
);
CREATE INDEX workflow_executions_by_workflow ON workflow_executions (workflow_id, created_at);
CREATE INDEX workflow_executions_by_created ON workflow_executions (created_at);
CREATE INDEX workflow_executions_by_state ON workflow_executions (state);
CREATE INDEX workflow_executions_by_parent ON workflow_executions (parent_execution_id);

CREATE TABLE workflow_step_executions (
    execution_id TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN (
        'pending', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    agent TEXT,
    provider TEXT,
    model TEXT,
    output TEXT,
    error_kind TEXT,
    error_message TEXT,
    started_at REAL,
    completed_at REAL,
    duration_ms INTEGER,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost_usd REAL,
    PRIMARY KEY (execution_id, step_key, attempt)
);

CREATE TABLE workflow_checkpoints (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '{}',
    completed_steps TEXT NOT NULL DEFAULT '[]',
    pending_steps TEXT NOT NULL DEFAULT '[]',
    label TEXT,
    created_by TEXT NOT NULL CHECK (created_by IN ('automatic', 'user', 'pause')),
    created_at REAL NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workflow_checkpoints_by_execution ON workflow_checkpoints (execution_id, created_at);
CREATE INDEX workflow_checkpoints_by_created ON workflow_checkpoints (created_at);

CREATE TABLE workflow_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN (
        'workflow_started', 'workflow_completed', 'workflow_failed', 'workflow_paused',
        'workflow_resumed', 'workflow_cancelled', 'step_started', 'step_completed',
        'step_failed', 'step_retrying', 'step_skipped', 'step_cancelled',
        'checkpoint_created', 'checkpoint_restored')),
    step_key TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX workflow_events_by_execution ON workflow_events (execution_id, id);
CREATE INDEX workflow_events_by_created ON workflow_events (created_at);
