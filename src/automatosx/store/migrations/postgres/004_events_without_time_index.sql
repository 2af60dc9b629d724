-- Every step writes two events, and keeping the index on created_at up to date was about a
-- third of a step's write transaction (measured on SQLite). Its only reader was `prune`,
-- whose delete is limited to the events of finished executions and finds them through
-- workflow_events_by_execution instead; a prune is rare, a step is not.

DROP INDEX IF EXISTS workflow_events_by_created;
