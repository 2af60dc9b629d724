-- The source design's three views and its derived-data triggers: execution start/end
-- times and duration, workflow statistics when an execution reaches a terminal state,
-- checkpoint payload size, and `updated_at` on workflows. Statistics of executions that
-- finished before this version are backfilled.

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
    AVG(CASE WHEN e.state IN ('completed', 'failed', 'cancelled') THEN e.duration_ms END)
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

-- Start and end times when a writer changed the state without giving them.
CREATE TRIGGER workflow_execution_timestamps
AFTER UPDATE OF state ON workflow_executions
WHEN (NEW.started_at IS NULL AND NEW.state NOT IN ('idle', 'cancelled'))
  OR (NEW.completed_at IS NULL AND NEW.state IN ('completed', 'failed', 'cancelled'))
BEGIN
    UPDATE workflow_executions SET
        started_at = CASE WHEN started_at IS NULL AND NEW.state NOT IN ('idle', 'cancelled')
                          THEN (julianday('now') - 2440587.5) * 86400.0 ELSE started_at END,
        completed_at = CASE WHEN completed_at IS NULL
                                 AND NEW.state IN ('completed', 'failed', 'cancelled')
                            THEN (julianday('now') - 2440587.5) * 86400.0 ELSE completed_at END
    WHERE id = NEW.id;
END;

CREATE TRIGGER workflow_execution_duration
AFTER UPDATE OF completed_at ON workflow_executions
WHEN NEW.completed_at IS NOT NULL AND NEW.started_at IS NOT NULL
BEGIN
    UPDATE workflow_executions
    SET duration_ms = CAST(ROUND((NEW.completed_at - NEW.started_at) * 1000) AS INTEGER)
    WHERE id = NEW.id;
END;

CREATE TRIGGER workflow_update_stats
AFTER UPDATE OF state ON workflow_executions
WHEN NEW.state IN ('completed', 'failed', 'cancelled')
 AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
BEGIN
    UPDATE workflows SET
        total_executions = total_executions + 1,
        successful_executions = successful_executions + (NEW.state = 'completed'),
        failed_executions = failed_executions + (NEW.state = 'failed'),
        avg_duration_ms = (
            SELECT AVG((x.completed_at - x.started_at) * 1000)
            FROM workflow_executions x
            WHERE x.workflow_id = NEW.workflow_id
              AND x.state IN ('completed', 'failed', 'cancelled')
              AND x.started_at IS NOT NULL AND x.completed_at IS NOT NULL)
    WHERE id = NEW.workflow_id;
END;

CREATE TRIGGER workflow_checkpoint_size
AFTER INSERT ON workflow_checkpoints
BEGIN
    UPDATE workflow_checkpoints
    SET size_bytes = length(CAST(NEW.state AS BLOB)) + length(CAST(NEW.context AS BLOB))
                   + length(CAST(NEW.completed_steps AS BLOB))
                   + length(CAST(NEW.pending_steps AS BLOB))
    WHERE id = NEW.id;
END;

CREATE TRIGGER workflow_updated_at
AFTER UPDATE OF name, version, description, author, tags, definition ON workflows
WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE workflows SET updated_at = (julianday('now') - 2440587.5) * 86400.0
    WHERE id = NEW.id;
END;

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
SET duration_ms = CAST(ROUND((completed_at - started_at) * 1000) AS INTEGER)
WHERE duration_ms IS NULL AND completed_at IS NOT NULL AND started_at IS NOT NULL;

UPDATE workflow_checkpoints
SET size_bytes = length(CAST(state AS BLOB)) + length(CAST(context AS BLOB))
               + length(CAST(completed_steps AS BLOB)) + length(CAST(pending_steps AS BLOB));
