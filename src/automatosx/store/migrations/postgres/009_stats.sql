-- Analytics (`ax workflow stats`, SPEC section 11). The statistics are computed by the
-- store's queries (store/stats.py) over the executions started within a window, so the
-- executions are found by their start time. A checkpoint records how long writing it took
-- (its snapshot's encoding and its insert, in milliseconds): the only cost a checkpoint
-- adds to a run, which nothing recorded before. Checkpoints from before this version have
-- none (NULL), and the statistics leave their executions out of that figure.

CREATE INDEX workflow_executions_by_started ON workflow_executions (started_at);

ALTER TABLE workflow_checkpoints ADD COLUMN write_ms DOUBLE PRECISION;
