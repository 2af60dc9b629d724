-- Step instances: the durable unit of an execution. One row per step of the definition (and,
-- later, per instance created at run time, such as review[3] with its parent), holding the
-- instance's whole state and its latest attempt; workflow_step_executions keeps the attempts
-- before it (a row is moved there when the next attempt starts). Readiness, checkpoints,
-- recovery and every reader derive from these two tables.
--
-- Executions from before this version get their instances from their definition and their
-- attempts: the completed attempt, else the latest one, decides the state; a step that never
-- started is pending (cancelled when the execution has ended); a failed attempt of an
-- unfinished execution that its retry rules would retry was waiting out its backoff, so the
-- step is pending again. Each execution also records its working directory from now on.

CREATE TABLE workflow_step_instances (
    execution_id TEXT COLLATE "C" NOT NULL
        REFERENCES workflow_executions (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN (
        'pending', 'running', 'waiting', 'completed', 'failed', 'skipped', 'cancelled')),
    parent_key TEXT,
    item_index INTEGER,
    attempt INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    agent TEXT,
    provider TEXT,
    model TEXT,
    output JSON,
    error_kind TEXT,
    error_message TEXT,
    started_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION,
    duration_ms INTEGER,
    retry_at DOUBLE PRECISION,
    tokens_in BIGINT,
    tokens_out BIGINT,
    cost_usd DOUBLE PRECISION,
    skip_reason TEXT CHECK (skip_reason IN ('condition_false', 'upstream_failed')),
    items JSON,
    PRIMARY KEY (execution_id, key)
);

ALTER TABLE workflow_executions ADD COLUMN workdir TEXT;

-- The sequence number of the lease holder's last write (PostgreSQL runners number their
-- writes, so a write resent after a dropped connection is applied at most once).
ALTER TABLE workflow_executions ADD COLUMN last_write_seq INTEGER;

INSERT INTO workflow_step_instances (execution_id, key, step_key, position, state, agent)
SELECT e.id, s.value ->> 'key', s.value ->> 'key', s.n - 1, 'pending', s.value ->> 'agent'
FROM workflow_executions e,
     json_array_elements(e.definition -> 'steps') WITH ORDINALITY AS s (value, n)
WHERE e.definition IS NOT NULL AND json_typeof(e.definition -> 'steps') = 'array';

UPDATE workflow_step_instances SET
    attempt = COALESCE((SELECT MAX(a.attempt) FROM workflow_step_executions a
        WHERE a.execution_id = workflow_step_instances.execution_id
          AND a.step_key = workflow_step_instances.key AND a.started_at IS NOT NULL), 0),
    failures = (SELECT COUNT(*) FROM workflow_step_executions a
        WHERE a.execution_id = workflow_step_instances.execution_id
          AND a.step_key = workflow_step_instances.key AND a.state = 'failed');

UPDATE workflow_step_instances SET
    (state, agent, provider, model, output, error_kind, error_message, started_at,
     completed_at, duration_ms, tokens_in, tokens_out, cost_usd) = (
        SELECT a.state, COALESCE(a.agent, workflow_step_instances.agent), a.provider, a.model,
               a.output, a.error_kind, a.error_message, a.started_at, a.completed_at,
               a.duration_ms, a.tokens_in, a.tokens_out, a.cost_usd
        FROM workflow_step_executions a
        WHERE a.execution_id = workflow_step_instances.execution_id
          AND a.step_key = workflow_step_instances.key
        ORDER BY (a.state = 'completed') DESC, a.attempt DESC
        LIMIT 1)
WHERE EXISTS (SELECT 1 FROM workflow_step_executions a
    WHERE a.execution_id = workflow_step_instances.execution_id
      AND a.step_key = workflow_step_instances.key);

UPDATE workflow_step_instances SET skip_reason = 'upstream_failed' WHERE state = 'skipped';

UPDATE workflow_step_instances SET state = 'cancelled'
WHERE state = 'pending' AND execution_id IN (
    SELECT id FROM workflow_executions WHERE state IN ('completed', 'failed', 'cancelled'));

UPDATE workflow_step_instances SET state = 'pending'
WHERE state = 'failed'
  AND execution_id IN (
      SELECT id FROM workflow_executions WHERE state NOT IN ('completed', 'failed', 'cancelled'))
  AND COALESCE(error_kind, 'provider_error') NOT IN ('cancelled', 'template_error')
  AND failures < 1 + COALESCE(
      (SELECT (s.value -> 'retryPolicy' ->> 'maxRetries')::integer
       FROM workflow_executions e, json_array_elements(e.definition -> 'steps') s (value)
       WHERE e.id = workflow_step_instances.execution_id
         AND s.value ->> 'key' = workflow_step_instances.key),
      (SELECT (e.definition -> 'config' ->> 'maxRetries')::integer
       FROM workflow_executions e WHERE e.id = workflow_step_instances.execution_id),
      0)
  AND CASE
      WHEN (SELECT json_typeof(s.value -> 'retryPolicy' -> 'retryableErrors')
            FROM workflow_executions e, json_array_elements(e.definition -> 'steps') s (value)
            WHERE e.id = workflow_step_instances.execution_id
              AND s.value ->> 'key' = workflow_step_instances.key) = 'array'
      THEN COALESCE(error_kind, 'provider_error') IN (
            SELECT r.value
            FROM workflow_executions e, json_array_elements(e.definition -> 'steps') s (value),
                 json_array_elements_text(s.value -> 'retryPolicy' -> 'retryableErrors') r (value)
            WHERE e.id = workflow_step_instances.execution_id
              AND s.value ->> 'key' = workflow_step_instances.key)
      ELSE COALESCE(error_kind, 'provider_error') <> 'auth_error'
  END;

DROP VIEW workflow_step_summary;

-- A step's attempts: those in the history (before its latest) and the latest, which the
-- instance row holds; sums count each attempt once.
CREATE VIEW workflow_step_summary AS
SELECT
    i.execution_id,
    i.key AS step_key,
    i.attempt AS attempts,
    i.state,
    CASE WHEN i.attempt = 0 THEN NULL
         ELSE COALESCE(i.duration_ms, 0) + COALESCE(SUM(a.duration_ms), 0) END
        AS total_duration_ms,
    CASE WHEN i.tokens_in IS NULL AND COUNT(a.tokens_in) = 0 THEN NULL
         ELSE COALESCE(i.tokens_in, 0) + COALESCE(SUM(a.tokens_in), 0) END AS tokens_in,
    CASE WHEN i.tokens_out IS NULL AND COUNT(a.tokens_out) = 0 THEN NULL
         ELSE COALESCE(i.tokens_out, 0) + COALESCE(SUM(a.tokens_out), 0) END AS tokens_out,
    CASE WHEN i.cost_usd IS NULL AND COUNT(a.cost_usd) = 0 THEN NULL
         ELSE COALESCE(i.cost_usd, 0) + COALESCE(SUM(a.cost_usd), 0) END AS cost_usd,
    COALESCE(MIN(a.started_at), i.started_at) AS first_started_at,
    i.completed_at AS last_completed_at
FROM workflow_step_instances i
LEFT JOIN workflow_step_executions a
    ON a.execution_id = i.execution_id AND a.step_key = i.key AND a.attempt < i.attempt
GROUP BY i.execution_id, i.key;
