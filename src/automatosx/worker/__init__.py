"""`ax worker`: processes on any number of machines that run submitted executions (SPEC
section 9), on procrastinate's PostgreSQL job queue in the store's own database.

`ax workflow submit` stores an execution `queued` and defers its first turn in the same
transaction (`store.queue_jobs`). Nothing drives an execution: it moves on by turns
(`runtime.turn`), each one transaction under the execution's row lock that records what
happened, decides what is ready (the engine's own turn function) and defers the jobs that
follows. A worker claims jobs (procrastinate: `FOR UPDATE SKIP LOCKED`, LISTEN/NOTIFY
wake-ups, worker heartbeats) of two kinds: an attempt on its provider's queue (`attempt`),
whose outcome it records in the execution's next turn, and a turn for everything else
(`turns`). The store stays the authority: an attempt's answer counts only from the worker
that runs it now, so a worker that froze and wakes up late is refused. A worker that dies is
found by its missing heartbeats, and its jobs run again elsewhere (`reaper`).

- `queue`: the procrastinate app on the store's database, and its schema.
- `attempt`: the job that runs one dispatched attempt and takes the turn with its outcome.
- `turns`: the job that takes one turn of an execution.
- `provider_limits`: `AX_PROVIDER_LIMITS`, slots in the store shared by every worker.
- `reaper`: stalled jobs retried, stopped dispatches re-deferred, unattended executions
  given a turn.
- `serve`: the worker process (concurrency, queues, graceful drain on SIGTERM).
"""
