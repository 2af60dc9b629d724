-- A submitted execution whose worker let it go because only approval gates wait for people
-- (SPEC section 9: a waiting gate holds no worker): until when nothing can happen without
-- a decision, that is its gates' earliest deadline (a far-off time when none has one). The
-- workers' reaper leaves it alone until then; a decision gives it a job at once, and the
-- runner that takes it up again clears it. NULL for every other execution.

ALTER TABLE workflow_executions ADD COLUMN idle_until DOUBLE PRECISION;
