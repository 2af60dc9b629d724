-- Step attempts run by `ax worker` processes other than the one driving the execution
-- (SPEC section 9): the worker that holds an execution's lease dispatches each attempt as
-- a job on its provider's queue, and any worker listening there runs it. A row is the
-- attempt's mailbox: the call the worker makes (JSON, dropped once answered) and the outcome
-- the driver records through its own fenced transition. The instance row stays the step's
-- state; a row here is only transport. `worker` is who runs it now: a job retried after
-- its worker went silent is taken over, and the earlier worker's late answer is refused.

CREATE TABLE workflow_dispatched_attempts (
    id TEXT COLLATE "C" PRIMARY KEY,
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    step_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    queue_name TEXT NOT NULL,
    call TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'cancelled')),
    worker TEXT,
    outcome TEXT,
    job_id BIGINT,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION
);

CREATE INDEX workflow_dispatched_attempts_by_execution
    ON workflow_dispatched_attempts (execution_id);
