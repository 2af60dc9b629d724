"""`ax worker`: processes on any number of machines that run submitted executions (SPEC
section 9), on procrastinate's PostgreSQL job queue in the store's own database.

`ax workflow submit` stores an execution `queued` and defers its drive job in the same
transaction (`store.queue_jobs`); a worker claims the job (procrastinate: `FOR UPDATE SKIP
LOCKED`, LISTEN/NOTIFY wake-ups, worker heartbeats), takes the execution's lease and drives
it with the engine, exactly as `ax workflow run` would (`drive`), except that each step
attempt is a job on its provider's queue (`queue_executor`), run by any worker that has
that provider (`attempt`) and answered through the store (`answers`). The store stays the
authority: every write of the driver is fenced by the lease, and an attempt's answer counts
only from the worker that runs it now, so a worker that froze and wakes up late is refused.
A worker that dies is found by its missing heartbeats, and its jobs run again elsewhere
(`reaper`), an execution resuming from its step records.

- `queue`: the procrastinate app on the store's database, and its schema.
- `drive`: the job that drives one execution.
- `queue_executor`, `wire`: its attempts dispatched as jobs, the call and outcome as JSON.
- `attempt`: the job that runs one dispatched attempt.
- `answers`: where drivers wait for answers (LISTEN/NOTIFY, a slow poll behind it).
- `provider_limits`: `AX_PROVIDER_LIMITS`, slots in the store shared by every worker.
- `reaper`: stalled jobs retried; submitted executions without a runner or a job given one.
- `serve`: the worker process (concurrency, queues, graceful drain on SIGTERM).
"""
