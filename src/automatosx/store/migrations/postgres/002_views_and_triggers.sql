-- The source design's three views and its derived-data triggers (as in the SQLite schema):
-- execution start/end times and duration, workflow statistics on a terminal state,
-- checkpoint payload size, `updated_at` on workflows. Existing rows are backfilled.

CREATE VIEW workflow_execution_summary AS
SELECT
    w.id AS workflow_id,
    w.name AS workflow_name,
    w.version AS workflow_version,
    COUNT(e.id) AS total_executions,
    COUNT(CASE WHEN e.state = 'completed' THEN 1 END) AS completed_executions,
    COUNT(CASE WHEN e.state = 'failed' THEN 1 END) AS failed_executions,
    COUNT(CASE WHEN e.state = 'cancelled' THEN 1 END) AS cancelled_executions,
    COUNT(CASE WHEN e.id IS NOT NULL
               AND e.state NOT IN ('completed', 'failed', 'cancelled') THEN 1 END)
        AS active_executions,
    AVG(CASE WHEN e.state IN ('completed', 'failed', 'cancelled') THEN e.duration_ms END)::float8
        AS avg_duration_ms,
    MAX(e.created_at) AS last_execution_at
FROM workflows w
LEFT JOIN workflow_executions e ON e.workflow_id = w.id
GROUP BY w.id, w.name, w.version;

CREATE VIEW workflow_step_summary AS
SELECT
    s.execution_id,
    s.step_key,
    COUNT(*) AS attempts,
    (SELECT l.state FROM workflow_step_executions l
      WHERE l.execution_id = s.execution_id AND l.step_key = s.step_key
      ORDER BY l.attempt DESC LIMIT 1) AS state,
    SUM(s.duration_ms) AS total_duration_ms,
    SUM(s.tokens_in) AS tokens_in,
    SUM(s.tokens_out) AS tokens_out,
    SUM(s.cost_usd) AS cost_usd,
    MIN(s.started_at) AS first_started_at,
    MAX(s.completed_at) AS last_completed_at
FROM workflow_step_executions s
GROUP BY s.execution_id, s.step_key;

CREATE VIEW workflow_recent_runs AS
SELECT
    e.id AS execution_id,
    w.name AS workflow_name,
    w.version AS workflow_version,
    e.state,
    e.triggered_by,
    e.priority,
    e.created_at,
    e.started_at,
    e.completed_at,
    e.duration_ms,
    e.error
FROM workflow_executions e
JOIN workflows w ON w.id = e.workflow_id
ORDER BY e.created_at DESC
LIMIT 100;

-- Start/end times when a writer changed the state without giving them, then the duration.
CREATE FUNCTION workflow_execution_duration() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.started_at IS NULL AND NEW.state <> 'idle' THEN
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

CREATE TRIGGER workflow_execution_duration
BEFORE UPDATE OF state, started_at, completed_at ON workflow_executions
FOR EACH ROW EXECUTE FUNCTION workflow_execution_duration();

CREATE FUNCTION workflow_update_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE workflows SET
        total_executions = total_executions + 1,
        successful_executions = successful_executions
            + CASE WHEN NEW.state = 'completed' THEN 1 ELSE 0 END,
        failed_executions = failed_executions + CASE WHEN NEW.state = 'failed' THEN 1 ELSE 0 END,
        avg_duration_ms = (
            SELECT AVG((x.completed_at - x.started_at) * 1000)
            FROM workflow_executions x
            WHERE x.workflow_id = NEW.workflow_id
              AND x.state IN ('completed', 'failed', 'cancelled')
              AND x.started_at IS NOT NULL AND x.completed_at IS NOT NULL)
    WHERE id = NEW.workflow_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER workflow_update_stats
AFTER UPDATE OF state ON workflow_executions
FOR EACH ROW
WHEN (NEW.state IN ('completed', 'failed', 'cancelled')
      AND OLD.state NOT IN ('completed', 'failed', 'cancelled'))
EXECUTE FUNCTION workflow_update_stats();

CREATE FUNCTION workflow_checkpoint_size() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.size_bytes := octet_length(NEW.state) + octet_length(NEW.context::text)
        + octet_length(NEW.completed_steps::text) + octet_length(NEW.pending_steps::text);
    RETURN NEW;
END;
$$;

CREATE TRIGGER workflow_checkpoint_size
BEFORE INSERT ON workflow_checkpoints
FOR EACH ROW EXECUTE FUNCTION workflow_checkpoint_size();

CREATE FUNCTION workflow_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at = OLD.updated_at THEN
        NEW.updated_at := extract(epoch FROM clock_timestamp());
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER workflow_updated_at
BEFORE UPDATE OF name, version, description, author, tags, definition ON workflows
FOR EACH ROW EXECUTE FUNCTION workflow_updated_at();

UPDATE workflows SET
    total_executions = (SELECT COUNT(*) FROM workflow_executions x
        WHERE x.workflow_id = workflows.id
          AND x.state IN ('completed', 'failed', 'cancelled')),
    successful_executions = (SELECT COUNT(*) FROM workflow_executions x
        WHERE x.workflow_id = workflows.id AND x.state = 'completed'),
    failed_executions = (SELECT COUNT(*) FROM workflow_executions x
        WHERE x.workflow_id = workflows.id AND x.state = 'failed'),
    avg_duration_ms = (SELECT AVG((x.completed_at - x.started_at) * 1000)
        FROM workflow_executions x
        WHERE x.workflow_id = workflows.id
          AND x.state IN ('completed', 'failed', 'cancelled')
          AND x.started_at IS NOT NULL AND x.completed_at IS NOT NULL);

UPDATE workflow_executions
SET duration_ms = round((completed_at - started_at) * 1000)::integer
WHERE duration_ms IS NULL AND completed_at IS NOT NULL AND started_at IS NOT NULL;

UPDATE workflow_checkpoints
SET size_bytes = octet_length(state) + octet_length(context::text)
    + octet_length(completed_steps::text) + octet_length(pending_steps::text);
