-- Executions run by `ax worker` processes (SPEC section 9) need PostgreSQL: a SQLite store
-- never holds one (`ax workflow submit` and `ax worker` refuse it), so its state CHECK keeps
-- its list (`queued` is never written here). The column keeps both schemas alike: NULL for
-- every execution a foreground `run` drives.

ALTER TABLE workflow_executions ADD COLUMN queue_name TEXT;
