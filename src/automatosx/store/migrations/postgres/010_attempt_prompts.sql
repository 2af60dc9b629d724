-- The rendered prompt of each attempt (SPEC section 10: the dashboard shows each attempt's
-- prompt beside its output). Written, secrets masked, in the write that starts the attempt:
-- on the instance row for its latest attempt, moved with the rest of the attempt to
-- workflow_step_executions when the next one begins. Attempts stored before this version,
-- approval gates and sub-workflow steps have none (NULL).

ALTER TABLE workflow_step_instances ADD COLUMN prompt TEXT;
ALTER TABLE workflow_step_executions ADD COLUMN prompt TEXT;
