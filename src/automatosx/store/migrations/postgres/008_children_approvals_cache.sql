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
ALTER TABLE workflow_step_instances ADD COLUMN saved_usd DOUBLE PRECISION;

-- One row per approval gate that opened: what it asks, its absolute deadline (a restart
-- keeps it) and, once given, the decision. The first decision wins: it is written only
-- where none is (compare-and-set), by whichever process gives it.
CREATE TABLE workflow_approvals (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_key TEXT NOT NULL,
    message TEXT,
    requested_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    on_timeout TEXT NOT NULL DEFAULT 'reject' CHECK (on_timeout IN ('reject', 'approve')),
    decision TEXT CHECK (decision IN ('approved', 'rejected')),
    decided_by TEXT,
    comment TEXT,
    decided_at DOUBLE PRECISION,
    PRIMARY KEY (execution_id, step_key)
);
CREATE INDEX workflow_approvals_open ON workflow_approvals (requested_at)
    WHERE decision IS NULL;

-- The approval gates' events (approval_requested, approval_granted, approval_rejected) join
-- the event types the log accepts (NOT VALID: the stored rows already satisfy the wider
-- check, so no scan of the whole log is needed).
ALTER TABLE workflow_events DROP CONSTRAINT IF EXISTS workflow_events_type_check;
ALTER TABLE workflow_events ADD CONSTRAINT workflow_events_type_check CHECK (type IN (
        'workflow_started', 'workflow_completed', 'workflow_failed', 'workflow_paused',
        'workflow_resumed', 'workflow_cancelled', 'step_started', 'step_completed',
        'step_failed', 'step_retrying', 'step_skipped', 'step_cancelled',
        'checkpoint_created', 'checkpoint_restored', 'approval_requested', 'approval_granted',
        'approval_rejected')) NOT VALID;

-- The result cache: one entry per request key (SHA-256 of what decides an answer). An
-- entry outlives the execution that produced it (no foreign key). While a runner calls
-- the provider for a key it holds the key's lease, so a second runner waits for its answer
-- instead of paying for the same call.
CREATE TABLE workflow_cache (
    key TEXT PRIMARY KEY,
    output JSON,
    provider TEXT,
    model TEXT,
    agent TEXT,
    tokens_in BIGINT,
    tokens_out BIGINT,
    cost_usd DOUBLE PRECISION,
    execution_id TEXT,
    step_key TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    hits INTEGER NOT NULL DEFAULT 0,
    last_hit_at DOUBLE PRECISION,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION
);
CREATE INDEX workflow_cache_created ON workflow_cache (created_at);
