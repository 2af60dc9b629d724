-- Faster statistics (`ax workflow stats`, SPEC section 11).
--
-- Each completed execution's critical path (parallel efficiency is the mean of critical
-- path / duration): the longest chain of its dependency edges, each step weighed by the sum
-- of its attempts' durations, in milliseconds. Written in the transaction that completes
-- the execution (store/write_ops.py, RecordCriticalPath), so the statistics read one number
-- instead of walking every chain of every execution. Executions completed before this
-- version have none (NULL); the statistics walk their chains as before.

ALTER TABLE workflow_executions ADD COLUMN critical_path_ms INTEGER;

-- The error groups read only the instances that failed or carry an error (a few in a
-- hundred); this index holds just those, so the statistics no longer read every instance
-- row of the window twice.
CREATE INDEX workflow_step_instances_with_errors ON workflow_step_instances (execution_id)
    WHERE state = 'failed' OR error_kind IS NOT NULL;
