"""`ax worker`: processes on any number of machines that run submitted executions (SPEC
section 9), on procrastinate's PostgreSQL job queue in the store's own database.

`ax workflow submit` stores an execution `queued` and defers its drive job in the same
transaction (`store.queue_jobs`); a worker claims the job (procrastinate: `FOR UPDATE SKIP
LOCKED`, LISTEN/NOTIFY wake-ups, worker heartbeats), takes the execution's lease and runs it
with the engine, exactly as `ax workflow run` would (`drive`). The store stays the
authority: every write is fenced by the lease, so a worker that froze and wakes up late is
refused. A worker that dies is found by its missing heartbeats, and its job runs again
elsewhere (`reaper`), resuming the execution from its step records.

- `queue`: the procrastinate app on the store's database, and its schema.
- `drive`: the job that runs one execution.
- `reaper`: stalled jobs retried; submitted executions without a runner or a job given one.
- `serve`: the worker process (concurrency, queues, graceful drain on SIGTERM).
"""
