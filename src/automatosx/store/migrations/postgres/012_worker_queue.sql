-- Executions run by `ax worker` processes (SPEC section 9). `ax workflow submit` stores an
-- execution in the new state `queued` (no runner yet; a worker's job takes it), and
-- `queue_name` marks it as the workers' (NULL: a foreground `run` drives it): resuming a
-- paused one queues it again rather than running it in the shell that asks, and
-- `ax workflow recover` leaves it to the workers. The job queue itself is procrastinate's
-- tables, in this same schema (`automatosx.worker.queue` creates them).

ALTER TABLE workflow_executions DROP CONSTRAINT IF EXISTS workflow_executions_state_check;
ALTER TABLE workflow_executions ADD CONSTRAINT workflow_executions_state_check CHECK (state IN (
    'idle', 'parsing', 'validating', 'building_graph', 'scheduling', 'executing',
    'awaiting_completion', 'creating_checkpoint', 'restoring_checkpoint',
    'aggregating_results', 'completed', 'failed', 'paused', 'cancelled', 'queued'));

ALTER TABLE workflow_executions ADD COLUMN queue_name TEXT;

-- A queued execution has not started: its start time is the worker's, not the submit's.
CREATE OR REPLACE FUNCTION workflow_execution_duration() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.started_at IS NULL AND NEW.state NOT IN ('idle', 'queued') THEN
        NEW.started_at := extract(epoch FROM clock_timestamp());
    END IF;
    IF NEW.completed_at IS NULL AND NEW.state IN ('completed', 'failed', 'cancelled') THEN
        NEW.completed_at := extract(epoch FROM clock_timestamp());
    END IF;
    IF NEW.completed_at IS NOT NULL AND NEW.started_at IS NOT NULL THEN
        NEW.duration_ms := round((NEW.completed_at - NEW.started_at) * 1000)::integer;
    END IF;
    RETURN NEW;
END;
$$;
