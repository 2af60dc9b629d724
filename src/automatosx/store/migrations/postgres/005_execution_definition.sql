-- Each execution keeps the definition it started with. Workflows are stored by (name,
-- version), so running an edited file under the same version replaces the workflow's
-- definition; a paused or orphaned execution must still resume the steps it started with.
-- Executions from before this version take their workflow's current definition.

ALTER TABLE workflow_executions ADD COLUMN definition json;

UPDATE workflow_executions
SET definition = (SELECT w.definition FROM workflows w WHERE w.id = workflow_executions.workflow_id);
