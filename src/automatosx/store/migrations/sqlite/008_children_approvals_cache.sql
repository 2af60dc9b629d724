-- Sub-workflows, approval gates and the result cache (SPEC section 8).

-- A sub-workflow step's child execution, created in the transaction that starts the step
-- (recovery attaches to it, never starts a second one); a step answered from the cache.
ALTER TABLE workflow_step_instances ADD COLUMN child_execution_id TEXT;
-- The sub-workflow files an execution may run (the tree its loader read, as JSON), kept
-- with it like its definition: a resume never reads the files again.
ALTER TABLE workflow_executions ADD COLUMN subworkflows TEXT;
ALTER TABLE workflow_step_instances ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
-- A cached step: the execution whose call produced its output, and what that call cost
-- (its own tokens and cost are zero; usage reports show this as money saved).
ALTER TABLE workflow_step_instances ADD COLUMN cached_from TEXT;
ALTER TABLE workflow_step_instances ADD COLUMN saved_usd REAL;

-- One row per approval gate that opened: what it asks, its absolute deadline (a restart
-- keeps it) and, once given, the decision. The first decision wins: it is written only
-- where none is (compare-and-set), by whichever process gives it.
CREATE TABLE workflow_approvals (
    execution_id TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_key TEXT NOT NULL,
    message TEXT,
    requested_at REAL NOT NULL,
    expires_at REAL,
    on_timeout TEXT NOT NULL DEFAULT 'reject' CHECK (on_timeout IN ('reject', 'approve')),
    decision TEXT CHECK (decision IN ('approved', 'rejected')),
    decided_by TEXT,
    comment TEXT,
    decided_at REAL,
    PRIMARY KEY (execution_id, step_key)
);
CREATE INDEX workflow_approvals_open ON workflow_approvals (requested_at)
    WHERE decision IS NULL;

-- The approval gates' events (approval_requested, approval_granted, approval_rejected) join
-- the event types the log accepts. SQLite cannot change a CHECK in place: the table is
-- rebuilt under the same name, with its IDs and its AUTOINCREMENT counter, so an event ID
-- is never handed out twice.
CREATE TABLE workflow_events_v8 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (type IN (
        'workflow_started', 'workflow_completed', 'workflow_failed', 'workflow_paused',
        'workflow_resumed', 'workflow_cancelled', 'step_started', 'step_completed',
        'step_failed', 'step_retrying', 'step_skipped', 'step_cancelled',
        'checkpoint_created', 'checkpoint_restored', 'approval_requested', 'approval_granted',
        'approval_rejected')),
    step_key TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
INSERT INTO workflow_events_v8 (id, execution_id, type, step_key, data, created_at)
    SELECT id, execution_id, type, step_key, data, created_at FROM workflow_events;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'workflow_events_v8', seq FROM sqlite_sequence WHERE name = 'workflow_events'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'workflow_events_v8');
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE(
    (SELECT seq FROM sqlite_sequence WHERE name = 'workflow_events'), 0))
    WHERE name = 'workflow_events_v8';
DROP TABLE workflow_events;
ALTER TABLE workflow_events_v8 RENAME TO workflow_events;
CREATE INDEX workflow_events_by_execution ON workflow_events (execution_id, id);

-- The result cache: one entry per request key (SHA-256 of what decides an answer). An
-- entry outlives the execution that produced it (no foreign key). While a runner calls
-- the provider for a key it holds the key's lease, so a second runner waits for its answer
-- instead of paying for the same call.
CREATE TABLE workflow_cache (
    key TEXT PRIMARY KEY,
    output TEXT,
    provider TEXT,
    model TEXT,
    agent TEXT,
    tokens_in INTEGER,
    tokens_out INTEGER,
    cost_usd REAL,
    execution_id TEXT,
    step_key TEXT,
    created_at REAL NOT NULL,
    expires_at REAL,
    hits INTEGER NOT NULL DEFAULT 0,
    last_hit_at REAL,
    lease_owner TEXT,
    lease_expires_at REAL
);
CREATE INDEX workflow_cache_created ON workflow_cache (created_at);
